#!/usr/bin/env bash
# What tests/image_podman needs on a fresh Debian 12 machine, as root: podman with runc,
# debootstrap, a docker client, then the Debian stand-ins of the three images
# (image/debian/build.py) built and loaded into podman as agent-image:test, egress-proxy:test
# and agent-gateway:test.
# Runs after install-clis.sh (the agent image copies node_modules), install-egress.sh (the proxy
# image takes the squid version it pinned) and `pip install -e .` (the images bake the trees
# from render-profiles, and the Python layer takes the versions installed here). Idempotent:
# the base, CLI and squid layers are cached in /var/cache/agent-sandbox/image-debian, and an
# image already loaded is not reloaded.
# Nothing here writes /etc/containers: podman is pointed at image/debian/containers.conf
# through CONTAINERS_CONF (here and in the tests). Safe to execute or to source.

_install_podman_image() (
    set -euo pipefail
    cd "$(dirname "${BASH_SOURCE[0]}")/.."
    export CONTAINERS_CONF="$PWD/image/debian/containers.conf"

    local -a wanted=(
        "podman=4.3.1+ds1-8+deb12u1+b3"
        "runc=1.1.5+ds1-1+deb12u1"
        "debootstrap=1.0.128+nmu2+deb12u2"
    )
    source .ci/lib/apt.sh
    apt_install_pinned install-podman-image "${wanted[@]}"
    # The tests drive podman with the docker client (through `podman system service`). Debian
    # ships the client only inside docker.io, whose daemon is not wanted here: take the client
    # binary out of the package instead of installing it.
    if ! command -v docker >/dev/null; then
        local deb_dir
        deb_dir="$(mktemp -d)"
        (cd "$deb_dir" && apt_download_pinned install-podman-image "docker.io=20.10.24+dfsg1-1+deb12u1+b6")
        dpkg-deb -x "$deb_dir"/docker.io_*.deb "$deb_dir/x"
        install -m 0755 "$deb_dir/x/usr/bin/docker" /usr/local/bin/docker
        rm -rf "$deb_dir"
    fi
    for tool in podman runc debootstrap docker; do
        command -v "$tool" >/dev/null || { echo "install-podman-image: $tool missing after install" >&2; exit 1; }
    done

    local cache="${AGENT_IMAGE_CACHE:-/var/cache/agent-sandbox/image-debian}"
    local started=$SECONDS
    # One build, three images (agent-image, egress-proxy, agent-gateway: image/contract.json),
    # sharing the Debian base layer (and the Python layer between agent and gateway); each is
    # loaded unless podman already holds that image id.
    # The lock: on a machine shared by several checkouts, one build at a time uses the cache.
    mkdir -p "$(dirname "$cache")"
    flock "$(dirname "$cache")/build.lock" python3 image/debian/build.py --cache "$cache" --tag test \
        --image agent --image proxy --image gateway --load
    # Old builds of the tags leave dangling images behind; they hold gigabytes.
    podman image prune --force >/dev/null
    echo "install-podman-image: agent-image:test, egress-proxy:test, agent-gateway:test loaded ($(( SECONDS - started )) s); $(podman --version)"
)

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    _install_podman_image || return 1
else
    _install_podman_image
fi
