"""The credential gateway, host side: the vendors, the gateway's JSON config (a pure function),
the agent's environment, and the credentials read on the host and handed to the gateway.

The agent's CLIs hold a placeholder key and a base URL pointing at the gateway (`agent-gateway`,
egress/gateway_server.py), which forwards only the model endpoints each CLI uses and adds the real
key. The key is read on the host (from a file or a command the user names), written into the
gateway's secrets folder on a tmpfs, read once by the gateway at start, and never appears on a
command line, in an environment, in the config, or in the agent's container.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from egress import logins as login_kinds

PLACEHOLDER_KEY = "agent-sandbox-placeholder"
# Where the gateway container finds its parts (the launcher bind-mounts the folders).
CONFIG_PATH = "/etc/agent-gateway/config.json"
SECRETS_DIR = "/run/agent-gateway/secrets"
STATE_DIR = "/var/lib/agent-gateway"
LOG_DIR = "/var/log/agent-gateway"
RENEWED_DIR = "/run/agent-gateway/renewed"   # refreshed logins, for the launcher to write back (a tmpfs)
READY_FILE = f"{STATE_DIR}/ready"
ACCESS_LOG = f"{LOG_DIR}/access.log"
GATEWAY_UID = GATEWAY_GID = 65532
CONFIG_FORMAT = 1
# Bounds on every request (seconds, bytes); render_gateway_config(limits=...) overrides them.
DEFAULT_LIMITS = {
    "max_request_bytes": 50 * 1024 * 1024,   # the vendors' own caps are 20 to 50 MB
    "client_body_timeout_s": 60,             # the whole request body from the agent
    "connect_timeout_s": 30,                 # TCP and TLS to the vendor
    "upstream_idle_timeout_s": 900,          # silence from the vendor between two reads
    "request_timeout_s": 3600,               # one request, from its first byte to its last
    "upstream_connections": 16,              # kept-alive connections per vendor
}


@dataclass(frozen=True)
class Vendor:
    name: str
    port: int
    default_upstream: str
    key_header: str
    key_prefix: str
    base_url_env: str | None      # the variable the CLI reads its base URL from (None: config file)
    placeholder_env: str


VENDORS: dict[str, Vendor] = {
    "anthropic": Vendor("anthropic", 8081, "https://api.anthropic.com", "x-api-key", "",
                        "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"),
    "openai": Vendor("openai", 8082, "https://api.openai.com", "authorization", "Bearer ",
                     None, "OPENAI_API_KEY"),
    "gemini": Vendor("gemini", 8083, "https://generativelanguage.googleapis.com", "x-goog-api-key", "",
                     "GOOGLE_GEMINI_BASE_URL", "GEMINI_API_KEY"),
}
# Which allowlisted host means the profile uses which vendor.
VENDOR_HOSTS = {"api.anthropic.com": "anthropic", "api.openai.com": "openai",
                "generativelanguage.googleapis.com": "gemini"}
# Hosts that serve model traffic on a credential: the proxy never tunnels to them, whatever the
# allowlist says (model traffic goes through the gateway, other vendors nowhere). Reached
# directly, they would take a key of the agent's choosing and carry data to an account of its
# choosing. Also the subscription backends (ChatGPT's, Google's Code Assist, Vertex), and the OAuth
# token endpoints the CLIs refresh their logins at: a login is refreshed by the gateway, which holds
# the refresh token (docs/logins.md); the container has nothing to refresh with.
OAUTH_TOKEN_HOSTS = ("platform.claude.com", "console.anthropic.com", "auth.openai.com", "oauth2.googleapis.com")
MODEL_API_HOSTS = (*VENDOR_HOSTS, "chatgpt.com", "cloudcode-pa.googleapis.com", "aiplatform.googleapis.com",
                   *OAUTH_TOKEN_HOSTS)
# Vertex's regional hosts (us-central1-aiplatform.googleapis.com and the like) and its multi-region
# ones (aiplatform.us.rep.googleapis.com, aiplatform.eu.rep.googleapis.com).
MODEL_API_HOST_PATTERNS = (r"[a-z0-9]-aiplatform\.googleapis\.com$", r"aiplatform\.[a-z0-9-]+\.rep\.googleapis\.com$")

# What a key may hold: printable, no spaces, nothing that could end a header (GitHub's tokens
# have underscores: ghs_..., github_pat_...).
_KEY = re.compile(r"^[A-Za-z0-9._~+/=_-]{8,4096}$")


def vendors_from_allowlist(allow: list[str]) -> list[str]:
    """The vendors whose API host the profile's network.allow names (exactly or by a .domain)."""
    found = []
    for host, vendor in VENDOR_HOSTS.items():
        if any(entry == host or (entry.startswith(".") and (host.endswith(entry) or host == entry[1:]))
               for entry in (e.strip().lower() for e in allow)):
            found.append(vendor)
    return sorted(found)


def is_model_api_host(host: str) -> bool:
    host = host.strip().lower().lstrip(".")
    return host in MODEL_API_HOSTS or any(re.search(p, host) for p in MODEL_API_HOST_PATTERNS)


def proxy_allowlist(allow) -> list[str]:
    """The allowlist without any model API host: the proxy never tunnels to one (the Squid config
    also denies them by name, so that a `.openai.com` entry cannot reach api.openai.com)."""
    return [entry for entry in allow if not is_model_api_host(entry) or entry.strip().startswith(".")]


# --- the gateway's config --------------------------------------------------------------------------

def _upstream(url: str, vendor: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username:
        raise ValueError(f"upstream for {vendor} {url!r}: expected https://host[:port] with no path")
    return f"{parts.scheme}://{parts.netloc}"


def check_subnets(agent_subnets, needed_by: str) -> list[str]:
    """The agents' source networks in canonical form (the proxy and the gateway serve only them)."""
    if not agent_subnets:
        raise ValueError(f"agent subnets: none given; {needed_by} must know which sources to serve")
    result = []
    for subnet in agent_subnets:
        try:
            result.append(str(ipaddress.ip_network(subnet, strict=True)))
        except (TypeError, ValueError) as error:
            raise ValueError(f"agent subnet {subnet!r} is not a network address: {error}") from None
    return result


def render_gateway_config(
    vendors: list[str],
    *,
    agent_subnets: list[str],
    model_server_tools: bool = False,
    listen_address: str = "0.0.0.0",
    ports: dict[str, int] | None = None,
    upstreams: dict[str, str] | None = None,
    upstream_tls_names: dict[str, str] | None = None,
    ca_file: str | None = None,
    secrets_dir: str = SECRETS_DIR,
    ready_file: str = READY_FILE,
    access_log: str = ACCESS_LOG,
    limits: dict | None = None,
    logins: dict[str, str] | None = None,
    token_urls: dict[str, str] | None = None,
    renewed_dir: str | None = None,
) -> str:
    """The gateway's config.json: one route per vendor, holding no secret.

    vendors: names from VENDORS (a run passes only its own CLI's). model_server_tools: the
    profile's network.model_server_tools. upstreams / upstream_tls_names / ports / ca_file override
    the production values (tests, mirrors); ca_file replaces the trusted roots (default: certifi's).
    logins: vendor -> login kind (egress.logins; default the vendor's API key); token_urls: vendor ->
    the refresh endpoint instead of the kind's (tests); renewed_dir: where the gateway leaves a
    refreshed login for the launcher to write back (a tmpfs folder; None: nowhere).
    """
    names = list(dict.fromkeys(vendors))
    unknown = [n for n in names if n not in VENDORS]
    if unknown or not names:
        raise ValueError(f"gateway vendors {list(vendors)!r}: expected some of {sorted(VENDORS)}")
    try:
        ipaddress.ip_address(listen_address)
    except ValueError:
        raise ValueError(f"listen address {listen_address!r} is not an IP address") from None
    for what, path in (("secrets_dir", secrets_dir), ("ready_file", ready_file), ("access_log", access_log),
                       ("ca_file", ca_file or "/"), ("renewed_dir", renewed_dir or "/")):
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"{what} {path!r} must be an absolute path")
    merged_limits = dict(DEFAULT_LIMITS)
    for key, value in (limits or {}).items():
        if key not in DEFAULT_LIMITS:
            raise ValueError(f"limits: unknown key {key!r}; expected some of {sorted(DEFAULT_LIMITS)}")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"limits: {key} must be a positive number, not {value!r}")
        merged_limits[key] = value
    chosen = {**login_kinds.API_KEY_KINDS, **(logins or {})}
    stray = sorted(set(logins or {}) - set(names)) + sorted(set(token_urls or {}) - set(names))
    if stray:
        raise ValueError(f"logins or token URLs for {stray}: not among the gateway's vendors {names}")
    routes = []
    used_ports = set()
    for name in names:
        vendor = VENDORS[name]
        try:
            login = login_kinds.kind(chosen[name])
        except login_kinds.LoginError as error:
            raise ValueError(str(error)) from None
        if login.vendor != name:
            raise ValueError(f"login kind {login.name} is for {login.vendor}, not {name}")
        token_url = (token_urls or {}).get(name)
        if token_url is not None and (login.refresh is None or urlsplit(token_url).scheme not in ("https", "http")):
            raise ValueError(f"token URL for {name} {token_url!r}: the login {login.name} "
                             + ("is never refreshed" if login.refresh is None else "needs an http(s) URL"))
        port = (ports or {}).get(name, vendor.port)
        if not (isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536) or port in used_ports:
            raise ValueError(f"gateway port for {name}: {port!r} is not a free TCP port number")
        used_ports.add(port)
        routes.append({
            "name": name,
            "port": port,
            "upstream": _upstream((upstreams or {}).get(name, login.default_upstream), name),
            "tls_name": (upstream_tls_names or {}).get(name),
            "credential": {"secret": name, "header": login.header, "prefix": login.prefix,
                           "login": login.name, "token_url": token_url},
            "errors": name,
            "endpoints": [asdict(e) for e in login.endpoints],
            "answers": [{"id": a.id, "method": a.method, "path": a.path} for a in login.answers],
        })
    config = {
        "format": CONFIG_FORMAT,
        "listen_address": listen_address,
        "agent_subnets": check_subnets(agent_subnets, "the gateway"),
        "model_server_tools": bool(model_server_tools),
        "secrets_dir": secrets_dir,
        "ready_file": ready_file,
        "access_log": access_log,
        "renewed_dir": renewed_dir,
        "ca_file": ca_file,
        "limits": merged_limits,
        "routes": routes,
    }
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def base_urls(gateway_host: str, ports: dict[str, int] | None = None) -> dict[str, str]:
    """The base URL each vendor's CLI must use (Codex appends /responses to its base_url)."""
    def url(name: str) -> str:
        return f"http://{gateway_host}:{(ports or {}).get(name, VENDORS[name].port)}"
    return {"anthropic": url("anthropic"), "openai": url("openai") + "/v1", "gemini": url("gemini")}


def agent_environment(gateway_host: str, vendors: list[str], ports: dict[str, int] | None = None) -> dict[str, str]:
    """What the agent container gets: base URLs and placeholder keys, never a real key."""
    urls = base_urls(gateway_host, ports)
    env = {}
    for name in vendors:
        vendor = VENDORS[name]
        env[vendor.placeholder_env] = PLACEHOLDER_KEY
        if vendor.base_url_env:
            env[vendor.base_url_env] = urls[name]
    return env


# --- keys: read on the host, handed to the gateway only --------------------------------------------

@dataclass(frozen=True)
class KeySource:
    vendor: str
    file: Path | None = None
    command: tuple[str, ...] | None = None

    def describe(self) -> str:
        return f"key file {self.file}" if self.file else f"key command {' '.join(self.command or ())!r}"


def validate_key(vendor: str, key: str, origin: str) -> str:
    key = key.strip()
    if not _KEY.match(key):
        # Never echo the key itself.
        raise ValueError(f"{origin} for {vendor}: not an API key (expected 8 to 4096 characters of "
                         f"letters, digits and ._~+/=_-; got {len(key)} characters)")
    if key == PLACEHOLDER_KEY:
        raise ValueError(f"{origin} for {vendor}: holds the placeholder, not a real key")
    return key


def read_secret(source: KeySource, what: str, timeout: float = 30.0) -> str:
    """A secret from a file or a command's standard output; errors never include its text."""
    if (source.file is None) == (source.command is None):
        raise ValueError(f"{what}: give exactly one of a file or a command")
    if source.file is not None:
        try:
            text = Path(source.file).read_text()
        except OSError as error:
            raise ValueError(f"{source.describe()} for {what}: {error.strerror or error}") from None
    else:
        try:
            done = subprocess.run(list(source.command), capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ValueError(f"{source.describe()} for {what}: {error}") from None
        if done.returncode != 0:
            raise ValueError(f"{source.describe()} for {what}: exited {done.returncode}")
        text = done.stdout
    return validate_key(what, text, source.describe())


def read_key(source: KeySource, timeout: float = 30.0) -> str:
    if source.vendor not in VENDORS:
        raise ValueError(f"key for {source.vendor!r}: expected one of {sorted(VENDORS)}")
    return read_secret(source, source.vendor, timeout)


def write_secrets(folder: Path, secrets: dict[str, str | dict], uid: int = GATEWAY_UID,
                  gid: int = GATEWAY_GID) -> None:
    """The gateway's secrets folder: one file per credential, named after it, mode 0400, owned by
    the gateway's user, in a 0500 folder of the same owner. Put the folder on a tmpfs (/run,
    /dev/shm), never on disk; delete it once the gateway is ready (it has read every file).
    A value is a key (a string) or a login's secret document (a dict, egress.logins)."""
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    for name, value in secrets.items():
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,63}", name):
            raise ValueError(f"secret name {name!r}: expected a lower-case word such as 'anthropic'")
        if isinstance(value, dict):
            try:
                value = login_kinds.secret_text(value)
            except login_kinds.LoginError as error:
                raise ValueError(f"secret {name}: {error}") from None
        else:
            value = validate_key(name, value, "secret")
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        try:
            os.fchmod(fd, 0o400)
            os.fchown(fd, uid, gid)
            with os.fdopen(fd, "w") as out:
                out.write(value + "\n")
            os.replace(tmp, folder / name)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    os.chown(folder, uid, gid)
    os.chmod(folder, 0o500)
