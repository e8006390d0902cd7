# Sourced by the .ci/install-*.sh scripts: Debian packages at pinned versions.
# The pins are Debian 12's versions when they were written. A point release or a security update
# replaces a version on the mirror, and a CI run must not fail because Debian moved on: when a
# pinned version is gone, bookworm's current version of the same package is taken and printed.

apt_install_pinned() {  # LABEL NAME=VERSION...
    local label=$1 pin have
    shift
    local -a missing=()
    for pin in "$@"; do
        have="$(dpkg-query -W -f='${Version}' "${pin%%=*}" 2>/dev/null || true)"
        [[ "$have" == "${pin#*=}" ]] || missing+=("$pin")
    done
    ((${#missing[@]})) || return 0
    export DEBIAN_FRONTEND=noninteractive
    [[ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ]] || apt-get update -qq
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        echo "$label: pinned versions not on the mirror; taking bookworm's current ones:" >&2
        apt-get install -y -qq --no-install-recommends "${missing[@]%%=*}" >/dev/null
        dpkg-query -W -f="$label:   \${Package} \${Version}\n" "${missing[@]%%=*}" >&2
    fi
}

apt_download_pinned() {  # LABEL NAME=VERSION: the .deb into the current folder, same fallback
    local label=$1 pin=$2
    apt-get download -qq "$pin" 2>/dev/null || {
        echo "$label: $pin not on the mirror; taking bookworm's current ${pin%%=*}" >&2
        apt-get download -qq "${pin%%=*}"
    }
}
