#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine, for Molecule.
#
# The machines this project runs on (developers' and CI's) start bare, as root, without
# systemd: Debian's docker.io is installed if missing and its daemon is started by hand
# in the background. Safe to run again: an engine that already answers is left alone.
#
# usage: container-engine.sh LOG_FILE
set -euo pipefail

log_file=${1:?usage: container-engine.sh LOG_FILE}

if docker info >/dev/null 2>&1; then
    exit 0
fi

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
    echo "container-engine: installing ${missing[*]} from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

if ! pgrep -x dockerd >/dev/null; then
    mkdir -p "$(dirname "$log_file")"
    echo "container-engine: starting dockerd (log: $log_file)"
    # setsid: the daemon must outlive make and the shell that started it. It gets no
    # file descriptor of ours beyond 0-2: one inherited from a caller (the lock of
    # `flock LOCK make molecule`) would be held for as long as the daemon runs.
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-"; fi
        done 2>/dev/null
        exec setsid dockerd >>"$log_file" 2>&1 </dev/null
    ) &
fi

for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
        echo "container-engine: $(docker version --format 'engine {{.Server.Version}}') answers"
        exit 0
    fi
    sleep 1
done
echo "container-engine: dockerd did not answer within 60 s; last lines of $log_file:" >&2
tail -n 30 "$log_file" >&2 || true
exit 1
