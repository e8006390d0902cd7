#!/usr/bin/env bash
# Installs what tests/image needs on a fresh Debian 12 machine: Debian's nix-bin, used to
# parse every .nix file and to evaluate the flake's wiring against a stub nixpkgs
# (nixpkgs itself is out of reach here, and Nix 2.8 is too old to evaluate it anyway),
# plus fakeroot and jq, with which the tests run the flake's customisation-layer script
# the way dockerTools does.
# Idempotent; safe to execute or to source (.ci/run sources it): the work runs in a subshell.

_install_image() (
    set -euo pipefail
    local -a wanted=("nix-bin=2.8.0-1.1+b1" "fakeroot=1.31-1.2" "jq=1.6-2.1+deb12u1")
    source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
    apt_install_pinned install-image "${wanted[@]}"
    command -v nix-instantiate >/dev/null || { echo "install-image: nix-instantiate missing after install" >&2; exit 1; }
    # Debian's nix.conf names a nixbld group it never creates; evaluation needs no build users.
    NIX_CONFIG='build-users-group =' nix --extra-experimental-features 'nix-command flakes' eval --expr '1 + 1' >/dev/null || {
        echo "install-image: nix cannot evaluate an expression" >&2; exit 1; }
    echo "install-image: $(nix --version) ok"
)

_install_image
