#!/usr/bin/env bash
# Build the Debian 12 image every Molecule scenario boots: systemd as PID 1, Python for
# Ansible. No registry is reachable, so the root filesystem comes from debootstrap and the
# plain-HTTP Debian mirror, and is imported as a single-layer image.
#
# The rootfs tarball is cached, so rebuilding the image (e.g. after `docker system prune`)
# costs seconds; an image that already exists is left alone.
#
# usage: base-image.sh IMAGE ROOTFS_TARBALL MIRROR
set -euo pipefail

image=${1:?usage: base-image.sh IMAGE ROOTFS_TARBALL MIRROR}
tarball=${2:?}
mirror=${3:?}

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "base-image: $image already present"
    exit 0
fi

# What every scenario needs before Ansible can do anything (python3, sudo, systemd), and
# what nearly every role installs anyway (ca-certificates, gnupg for apt keys, python3-apt
# for the apt module): baking them in saves each scenario that install.
packages=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,ca-certificates,gnupg,apt-transport-https

if [[ ! -s $tarball ]]; then
    command -v debootstrap >/dev/null || { echo "base-image: debootstrap is missing (make molecule-engine installs it)" >&2; exit 1; }
    rootfs=$(mktemp -d "${TMPDIR:-/tmp}/debian12-rootfs.XXXXXX")
    trap 'rm -rf "$rootfs"' EXIT
    echo "base-image: debootstrap bookworm from $mirror (a few minutes, once)"
    debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" \
        >"$tarball.debootstrap.log" 2>&1 \
        || { tail -n 30 "$tarball.debootstrap.log" >&2; exit 1; }

    # The same suites an official Debian 12 AMI uses, so roles see real security updates.
    security_mirror=${mirror%/debian}/debian-security
    cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security_mirror bookworm-security main
SOURCES
    # Units that cannot work in a container (no consoles, no udev, a read-only /sys
    # mount table) would leave `systemctl is-system-running` at "degraded".
    for unit in getty@tty1.service console-getty.service systemd-udevd.service \
                systemd-udev-trigger.service systemd-remount-fs.service \
                systemd-firstboot.service sys-kernel-config.mount; do
        ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
    done
    # Test instances only: dpkg skips fsync and documentation, which makes every
    # scenario's package installs markedly faster. Nothing a role checks lives there.
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90-molecule-speed" <<DPKG
force-unsafe-io
path-exclude=/usr/share/man/*
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/info/*
DPKG
    # systemd writes a fresh machine id on first boot of each container.
    : >"$rootfs/etc/machine-id"
    rm -f "$rootfs/var/lib/dbus/machine-id"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    # No package lists, and a lists folder that looks ancient: apt's cache_valid_time
    # must see a cache to refresh, as on a new host, not one "updated" at build time.
    touch -d @0 "$rootfs/var/lib/apt/lists"
    mkdir -p "$(dirname "$tarball")"
    tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
fi

docker import \
    --change 'ENV container=docker' \
    --change 'CMD ["/sbin/init"]' \
    "$tarball" "$image" >/dev/null
echo "base-image: imported $image from $tarball"
