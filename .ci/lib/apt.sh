# Sourced by the .ci/install-*.sh scripts: Debian packages at pinned versions.
# The pins are Debian 12's versions when they were written. A point release or a security update
# replaces a version on the mirror, and a CI run must not fail because Debian moved on: when a
# pinned version is gone, bookworm's current version of the same package is taken and printed.
# The mirror is asked first, so a green run's log has no apt error lines in it.

_apt_quiet() {  # apt-get, its debconf chatter about apt-utils dropped
    DEBIAN_FRONTEND=noninteractive apt-get "$@" </dev/null 2> >(grep -v '^debconf: delaying package configuration' >&2)
}

_apt_has_version() {  # NAME VERSION: is that exact version on the mirror?
    apt-cache madison "$1" 2>/dev/null | awk -F'|' -v v="$2" '{gsub(/ /, "", $2)} $2 == v {found=1} END {exit !found}'
}

apt_install_pinned() {  # LABEL NAME=VERSION...
    local label=$1 pin have name version
    shift
    local -a missing=() install=() moved=()
    for pin in "$@"; do
        have="$(dpkg-query -W -f='${Version}' "${pin%%=*}" 2>/dev/null || true)"
        [[ "$have" == "${pin#*=}" ]] || missing+=("$pin")
    done
    ((${#missing[@]})) || return 0
    [[ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ]] || _apt_quiet update -qq
    for pin in "${missing[@]}"; do
        name=${pin%%=*} version=${pin#*=}
        if _apt_has_version "$name" "$version"; then
            install+=("$pin")
        else
            install+=("$name")
            moved+=("$name")
        fi
    done
    _apt_quiet install -y -qq --no-install-recommends "${install[@]}" >/dev/null
    if ((${#moved[@]})); then
        echo "$label: Debian replaced these pinned versions; took bookworm's current ones:" >&2
        dpkg-query -W -f="$label:   \${Package} \${Version}\n" "${moved[@]}" >&2
    fi
}

apt_download_pinned() {  # LABEL NAME=VERSION: the .deb into the current folder, same fallback
    local label=$1 pin=$2
    if _apt_has_version "${pin%%=*}" "${pin#*=}"; then
        apt-get download -qq "$pin" </dev/null
    else
        echo "$label: $pin is no longer on the mirror; taking bookworm's current ${pin%%=*}" >&2
        apt-get download -qq "${pin%%=*}" </dev/null
    fi
}
