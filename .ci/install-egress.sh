#!/usr/bin/env bash
# What tests/egress needs on a fresh Debian 12 machine, as root: Squid (the egress proxy), dnsmasq
# and nftables (the namespace lab), openssl (the test CA), podman and runc (agent-run against a
# real engine). The credential gateway is the project's own agent-gateway: pip installs it. Idempotent; safe to execute or to source.
# Nothing here writes /etc/containers: the podman tests point CONTAINERS_CONF at their own file.
# Versions are pinned to Debian 12's; when a security update has replaced one on the mirror, the
# current bookworm version is taken instead and the change is printed.

_install_egress() (
    set -euo pipefail
    export DEBIAN_FRONTEND=noninteractive
    pins=(
        squid=5.7-2+deb12u6
        dnsmasq-base=2.90-4~deb12u2
        nftables=1.0.6-2+deb12u2
        iproute2=6.1.0-3
        openssl=3.0.22-1~deb12u2
        podman=4.3.1+ds1-8+deb12u1+b3
        runc=1.1.5+ds1-1+deb12u1
    )
    source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
    apt_install_pinned install-egress "${pins[@]}"
    # Debian starts neither service from a package install here (policy-rc.d), and the tests run
    # their own instances; make sure no packaged instance holds a port either way.
    for service in squid; do
        if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
            systemctl stop "$service" || true
        fi
    done
    for tool in squid dnsmasq nft ip openssl podman runc; do
        command -v "$tool" >/dev/null || { echo "install-egress: $tool missing after install" >&2; exit 1; }
    done
    echo "install-egress: $(squid -v | head -1 | cut -c1-40); $(podman --version) ok"
)

_install_egress
