#!/usr/bin/env bash
# What tests/image_podman needs on a fresh Debian 12 machine, as root: podman with runc,
# debootstrap, a docker client, then the Debian stand-in image (image/debian/build.py) built
# and loaded into podman as agent-image:test.
# Runs after install-clis.sh (the image copies node_modules) and after `pip install -e .`
# (the image bakes the tree from render-profiles). Idempotent: the base and CLI layers are
# cached in /var/cache/agent-sandbox/image-debian, and an image already loaded is not reloaded.
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
    local archive="$cache/agent-image-test.tar"
    local started=$SECONDS
    python3 image/debian/build.py --cache "$cache" --output "$archive" --tag test
    local built loaded
    built="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["image_id"])' "$archive.json")"
    loaded="$(podman image inspect --format '{{.Id}}' agent-image:test 2>/dev/null || true)"
    if [[ "sha256:$loaded" != "$built" && "$loaded" != "$built" ]]; then
        podman load --quiet --input "$archive" >/dev/null
        loaded="$(podman image inspect --format '{{.Id}}' agent-image:test)"
        [[ "sha256:$loaded" == "$built" || "$loaded" == "$built" ]] || {
            echo "install-podman-image: podman has agent-image:test as $loaded, built $built" >&2; exit 1; }
    fi
    # Old builds of the tag leave dangling images behind; they hold gigabytes.
    podman image prune --force >/dev/null
    echo "install-podman-image: agent-image:test ${built:7:12} loaded ($(( SECONDS - started )) s); $(podman --version)"
)

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    _install_podman_image || return 1
else
    _install_podman_image
fi
