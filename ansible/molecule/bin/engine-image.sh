#!/usr/bin/env bash
# Build the image the scenarios boot whose role needs a Docker engine only as a
# prerequisite (kafka, clickhouse, spark, metabase, producer, processor): the base image
# plus Debian's docker.io and python3-requests, the packages the docker role installs.
# Their prepare step still runs the docker role, which configures the engine as in
# production (daemon.json, the private network); it just finds the packages there. The
# docker role's own scenario boots the bare base image and installs them from scratch.
#
# The packages come from the shared apt cache of the scenarios (downloaded once per
# machine), at the version the docker role pins. The package lists are removed again, and
# the lists folder dated 1970, as in the base image: apt in the scenario still sees a host
# that has never updated. The image is labelled with the base image's id and the version
# glob it was built for, and rebuilt when either changes.
#
# usage: engine-image.sh BASE_IMAGE IMAGE APT_ARCHIVES DOCKER_ROLE_DEFAULTS
set -euo pipefail

base=${1:?usage: engine-image.sh BASE_IMAGE IMAGE APT_ARCHIVES DOCKER_ROLE_DEFAULTS}
image=${2:?}
archives=$(cd "${3:?}" && pwd)
defaults=${4:?}

version=$(sed -n 's/^docker_io_version: *"\(.*\)"$/\1/p' "$defaults")
packages=$(sed -n '/^docker_python_packages:/,/^$/s/^  - //p' "$defaults" | paste -sd' ')
[[ -n $version && -n $packages ]] || { echo "engine-image: cannot read docker_io_version and docker_python_packages from $defaults" >&2; exit 1; }
base_id=$(docker image inspect --format '{{.Id}}' "$base")
wanted="$base_id docker.io=$version $packages"

if built=$(docker image inspect --format '{{index .Config.Labels "clickstream.built-from"}}' "$image" 2>/dev/null) \
    && [[ $built == "$wanted" ]]; then
    echo "engine-image: $image already present"
    exit 0
fi

previous=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
echo "engine-image: installing docker.io=$version $packages into $image"
container=$(docker create -v "$archives:/var/cache/apt/archives" "$base" bash -c "
    set -e
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        'docker.io=$version' $packages >/dev/null
    rm -rf /var/lib/apt/lists/*
    touch -d @0 /var/lib/apt/lists")
trap 'docker rm -f "$container" >/dev/null' EXIT
docker start -a "$container"
# The commit keeps the base image's ENV; the command is set back to systemd.
docker commit \
    --change 'CMD ["/sbin/init"]' \
    --change "LABEL clickstream.built-from=\"$wanted\"" \
    "$container" "$image" >/dev/null
# The image this one replaces would stay behind untagged. A container still using it
# keeps it (rmi refuses): nothing to do then.
if [[ -n $previous ]]; then
    docker rmi "$previous" >/dev/null 2>&1 || true
fi
echo "engine-image: built $image"
