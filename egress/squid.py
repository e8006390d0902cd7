"""Render the allowlisting Squid configuration from a profile's network allowlist."""
from __future__ import annotations

import ipaddress
import re

from egress.gateway import MODEL_API_HOST_PATTERNS, MODEL_API_HOSTS, check_subnets
from egress.templating import render_template

DEFAULT_INCLUDE_DIR = "/etc/squid/agent-sandbox.d"
# The agents' network: agent-run gives each run one /24 inside it.
AGENT_SUPERNET = "10.213.0.0/16"
DEFAULT_LOG_DIR = "/var/log/squid"

# Checked after the allowlist. 198.18.0.0/15 (benchmark) is deliberately absent: it is not routed on
# the internet either, and the namespace tests live there.
BLOCKED_RANGES = (
    "0.0.0.0/8",          # "this network"
    "10.0.0.0/8",         # private
    "100.64.0.0/10",      # CGNAT (also Alibaba's metadata address)
    "127.0.0.0/8",        # loopback
    "169.254.0.0/16",     # link-local, cloud metadata 169.254.169.254
    "172.16.0.0/12",      # private
    "192.0.0.0/24",       # IETF protocol assignments
    "192.168.0.0/16",     # private
    "224.0.0.0/4",        # multicast
    "240.0.0.0/4",        # reserved, broadcast
    # ::/96 holds :: (unspecified) and ::1 (loopback): listing those too would make Squid drop
    # ::/96 ("is a subnetwork of"), silently.
    "::/96",              # IPv4-compatible (deprecated): ::10.0.0.5 is 10.0.0.5 to some stacks
    "64:ff9b::/96",       # NAT64 well-known prefix: reaches any IPv4 address, private ones too
    "64:ff9b:1::/48",     # NAT64 local-use prefix
    "2002::/16",          # 6to4: embeds an IPv4 address
    "fc00::/7",           # ULA (AWS IPv6 metadata fd00:ec2::254 is here)
    "fe80::/10",          # link-local
    "fec0::/10",          # site-local (deprecated, still routed inside some networks)
    "ff00::/8",           # multicast
)

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_domain(entry: str) -> str:
    """Return the entry in Squid dstdomain form or raise ValueError naming it.

    "api.anthropic.com" is that host only; ".github.com" is github.com and every subdomain.
    """
    if not isinstance(entry, str):
        raise ValueError(f"network.allow entry {entry!r} is not a string")
    domain = entry.strip().lower()
    wildcard = domain.startswith(".")
    name = domain[1:] if wildcard else domain
    problem = _domain_problem(name)
    if problem:
        raise ValueError(
            f"network.allow entry {entry!r}: {problem}; write a host name such as "
            f"'api.example.com', or '.example.com' for the domain and its subdomains"
        )
    return ("." if wildcard else "") + name


def _domain_problem(name: str) -> str | None:
    if not name:
        return "empty"
    if len(name) > 253:
        return "longer than 253 characters"
    if any(c in name for c in "*/:@ ?#[]\\"):
        return "a host name only: no scheme, port, path, user or wildcard"
    try:
        ipaddress.ip_address(name)
        return "IP addresses are never allowed, only names"
    except ValueError:
        pass
    labels = name.split(".")
    if len(labels) < 2:
        return "a single label would allow a whole top-level domain"
    bad = [label for label in labels if not _LABEL.match(label)]
    if bad:
        return f"invalid label {bad[0]!r} (letters, digits and inner hyphens, 1 to 63 characters)"
    if labels[-1].isdigit():
        return "the last label is numeric, which reads as an IP address"
    return None


def normalize_allowlist(entries: list[str]) -> list[str]:
    """Validate, deduplicate, and drop entries already covered by a ".domain" entry.

    Squid refuses a dstdomain list that holds both a domain and one of its subdomains.
    """
    domains = sorted({normalize_domain(e) for e in entries})
    wildcards = {d for d in domains if d.startswith(".")}

    def covered(domain: str) -> bool:
        name = domain.lstrip(".")
        parts = name.split(".")
        parents = {"." + ".".join(parts[i:]) for i in range(len(parts))}
        parents.discard(domain)
        return bool(parents & wildcards)

    return [d for d in domains if not covered(d)]


def render_squid(
    allow_domains: list[str],
    *,
    agent_subnets: list[str],
    listen_port: int = 3128,
    include_dir: str | None = None,
) -> str:
    """The squid.conf text. Raises ValueError naming the first bad allowlist entry or subnet."""
    if not (isinstance(listen_port, int) and 0 < listen_port < 65536):
        raise ValueError(f"listen_port {listen_port!r} is not a TCP port")
    include = include_dir or DEFAULT_INCLUDE_DIR
    if not include.startswith("/") or any(c.isspace() for c in include):
        raise ValueError(f"include_dir {include!r} must be an absolute path without spaces")
    return render_template(
        "squid.conf.j2",
        allow_domains=normalize_allowlist(allow_domains),
        agent_subnets=check_subnets(agent_subnets, "Squid"),
        listen_port=listen_port,
        include_dir=include.rstrip("/"),
        log_dir=DEFAULT_LOG_DIR,
        blocked_ranges=BLOCKED_RANGES,
        model_api_hosts=MODEL_API_HOSTS,
        model_api_patterns=MODEL_API_HOST_PATTERNS,
    )


def squid_image_files(allow_domains: list[str], *, agent_subnets: list[str] | None = None) -> dict[str, bytes]:
    """What the proxy image holds, by path relative to its root: the config and the include
    directory with the one file Squid needs to find there (an empty glob is fatal)."""
    conf = render_squid(allow_domains, agent_subnets=agent_subnets or [AGENT_SUPERNET])
    site = "# Site settings for the agent-sandbox proxy (hosts_file, dns_nameservers, extra agent sources).\n"
    return {"etc/squid/squid.conf": conf.encode(),
            f"{DEFAULT_INCLUDE_DIR.lstrip('/')}/00-site.conf": site.encode()}
