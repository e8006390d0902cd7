"""The nginx credential gateway, kept only while agent-run still starts it: agent-gateway
(egress/gateway_server.py) replaces it, and this module goes when nothing imports it.

nginx in front of each model vendor, adding the real API key.

The agent's CLIs hold a placeholder key and a base URL pointing here. The real key is read on the
host at start (from a file or a command the user names), written into a root-only 0600 nginx
include next to the rendered config, and never appears on a command line or in an environment.
"""
from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from egress.gateway import PLACEHOLDER_KEY, validate_key
from egress.templating import render_template

DEFAULT_KEY_DIR = "/run/agent-gateway/keys"
DEFAULT_RUNTIME_DIR = "/var/lib/agent-gateway"
DEFAULT_LOG_DIR = "/var/log/agent-gateway"
DEFAULT_CA_FILE = "/etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class Upstream:
    url: str          # scheme://host[:port], no path
    address: str      # host:port for nginx's upstream block
    tls: bool
    tls_name: str     # the name the certificate must carry (SNI and verification)
    host_header: str


@dataclass(frozen=True)
class Vendor:
    name: str
    port: int
    default_upstream: str
    key_header: str
    key_prefix: str
    strip_headers: tuple[str, ...]
    paths: tuple[str, ...]
    base_url_env: str | None      # the variable the CLI reads its base URL from (None: config file)
    placeholder_env: str
    refuse_key_in_query: bool = False
    upstream: Upstream | None = field(default=None, compare=False)


NGINX_VENDORS: dict[str, Vendor] = {
    "anthropic": Vendor("anthropic", 8081, "https://api.anthropic.com", "x-api-key", "",
                        ("Authorization",), ("/v1/",), "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"),
    "openai": Vendor("openai", 8082, "https://api.openai.com", "Authorization", "Bearer ",
                     ("x-api-key",), ("/v1/",), None, "OPENAI_API_KEY"),
    "gemini": Vendor("gemini", 8083, "https://generativelanguage.googleapis.com", "x-goog-api-key", "",
                     ("Authorization",), ("/v1beta/", "/v1/", "/v1alpha/"), "GOOGLE_GEMINI_BASE_URL",
                     "GEMINI_API_KEY", refuse_key_in_query=True),
}
# What a key may hold: it is written inside a double-quoted nginx string, where "$" would expand.
_KEY = re.compile(r"^[A-Za-z0-9._~+/=-]{8,1024}$")


def parse_upstream(url: str, tls_name: str | None = None) -> Upstream:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.username:
        raise ValueError(f"upstream {url!r}: expected https://host[:port] with no path")
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Upstream(url=f"{parts.scheme}://{parts.netloc}", address=f"{parts.hostname}:{port}",
                    tls=parts.scheme == "https",
                    tls_name=tls_name or parts.hostname, host_header=tls_name or host_header)


def render_gateway(
    vendors: list[str] | None = None,
    *,
    agent_subnets: list[str],
    listen_address: str = "0.0.0.0",
    ports: dict[str, int] | None = None,
    upstreams: dict[str, str] | None = None,
    upstream_tls_names: dict[str, str] | None = None,
    key_dir: str = DEFAULT_KEY_DIR,
    runtime_dir: str = DEFAULT_RUNTIME_DIR,
    log_dir: str = DEFAULT_LOG_DIR,
    ca_file: str = DEFAULT_CA_FILE,
) -> str:
    """nginx.conf for the gateway. vendors: names from VENDORS (default all three).

    upstreams / upstream_tls_names / ports override the production values (tests, mirrors).
    """
    names = sorted(NGINX_VENDORS) if vendors is None else list(vendors)
    unknown = [n for n in names if n not in NGINX_VENDORS]
    if unknown or not names:
        raise ValueError(f"gateway vendors {names!r}: expected some of {sorted(NGINX_VENDORS)}")
    for subnet in agent_subnets or [None]:
        try:
            ipaddress.ip_network(subnet)
        except (TypeError, ValueError):
            raise ValueError(f"agent subnet {subnet!r} is not a network address") from None
    for path in (key_dir, runtime_dir, log_dir, ca_file):
        if not path.startswith("/") or re.search(r"[\s;{}'\"$]", path):
            raise ValueError(f"path {path!r} must be absolute, without spaces or nginx syntax")
    selected = []
    for name in names:
        vendor = NGINX_VENDORS[name]
        url = (upstreams or {}).get(name, vendor.default_upstream)
        upstream = parse_upstream(url, (upstream_tls_names or {}).get(name))
        port = (ports or {}).get(name, vendor.port)
        if not (isinstance(port, int) and 0 < port < 65536):
            raise ValueError(f"gateway port for {name}: {port!r} is not a TCP port")
        selected.append(_with(vendor, upstream=upstream, port=port))
    return render_template("gateway.nginx.conf.j2", vendors=selected, agent_subnets=agent_subnets,
                           listen_address=listen_address, key_dir=key_dir.rstrip("/"),
                           runtime_dir=runtime_dir.rstrip("/"), log_dir=log_dir.rstrip("/"), ca_file=ca_file)


def _with(vendor: Vendor, **changes) -> Vendor:
    from dataclasses import replace
    return replace(vendor, **changes)


def render_key_include(vendor: str, key: str) -> str:
    spec = NGINX_VENDORS[vendor]
    key = validate_key(vendor, key, "key")
    return f'proxy_set_header {spec.key_header} "{spec.key_prefix}{key}";\n'


def write_key_includes(key_dir: Path, keys: dict[str, str]) -> None:
    """One 0600 include per vendor in a 0700 directory, each written atomically."""
    key_dir = Path(key_dir)
    key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(key_dir, 0o700)
    for vendor, key in keys.items():
        text = render_key_include(vendor, key)
        fd, tmp = tempfile.mkstemp(dir=key_dir, prefix=f".{vendor}.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(text)
            os.replace(tmp, key_dir / f"{vendor}.conf")
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
