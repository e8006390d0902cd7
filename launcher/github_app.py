"""The run's GitHub credential, on the host: it goes to the gateway, never into the agent's container.

Two sources:
- A GitHub App (the default when configured): per run, an installation token minted with a JWT
  (RS256, PyJWT + cryptography) signed by the app's private key, `repositories` narrowed to the
  workspace's repository and `permissions` to what a run needs (contents, pull requests and issues
  write, metadata read; never administration, secrets, variables, actions or workflows). GitHub
  gives it one hour; the launcher revokes it (`DELETE /installation/token`) at teardown.
- A command (`--github-token-command`, for a broker such as OpenBao/Vault with
  vault-plugin-secrets-github) or a file: its token is used as given. A classic personal access
  token (`ghp_`) or an OAuth token (`gho_`, what `gh auth token` prints) lives until someone
  revokes it and reaches every repository of its owner: refused unless --allow-long-lived-token.

Configuration (flags override the file): `--github-app-config FILE`, by default
`$XDG_CONFIG_HOME/agent-sandbox/github-app.toml` when it exists:

    app_id = 123456                      # or client_id = "Iv23li..."
    private_key_file = "github-app.pem"  # relative to this file's folder; mode 0600
    installation_id = 7890               # optional: otherwise looked up from the repository
    api_url = "https://api.github.com"   # optional
    [permissions]                        # optional: narrows the run's token further
    issues = "read"
"""
from __future__ import annotations

import argparse
import json
import os
import re
import ssl
import stat
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from egress import gateway_github
from egress.gateway import KeySource, read_secret
from egress.github_policy import Policy, check_repository, render_policy

DEFAULT_API = "https://api.github.com"
CONFIG_NAME = "github-app.toml"
# What a run's token may hold at most: what the gateway's policy lets an agent do (push its
# branches; open pull requests, issues and comments) and nothing the policy refuses.
RUN_PERMISSIONS = {"contents": "write", "pull_requests": "write", "issues": "write", "metadata": "read"}
LEVELS = {"read": 1, "write": 2}
LONG_LIVED_PREFIXES = {"ghp_": "a classic personal access token", "gho_": "an OAuth token (what `gh auth token` prints)"}
TOKEN_LIFETIME = 3600
JWT_LIFETIME = 540          # GitHub accepts at most ten minutes; iat is set 60 s back for clock drift
USER_AGENT = "agent-sandbox-launcher"
GITHUB_HOSTS = {"github.com", "www.github.com", "ssh.github.com"}


class GitHubError(ValueError):
    """Bad configuration or a refusal from GitHub; the message names the file, key or request."""


# --- the repository --------------------------------------------------------------------------------

_SCP = re.compile(r"^(?:[^@/:]+@)?([^@/:]+):(?!//)(.*)$")


def repository_from_url(url: str) -> str:
    """OWNER/NAME from a github.com remote URL: https://, http://, ssh://, git://, git@host:path."""
    url = url.strip()
    if "://" in url:
        parts = urlsplit(url)
        host, path = (parts.hostname or ""), parts.path
        if parts.scheme not in ("https", "http", "ssh", "git", "git+ssh", "ssh+git"):
            host = ""
    elif match := _SCP.match(url):
        host, path = match.groups()
    else:
        host, path = "", ""
    if host.lower() not in GITHUB_HOSTS:
        raise GitHubError(f"remote {url!r} is not a github.com repository; pass --github-repository OWNER/NAME")
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    try:
        return check_repository(path)
    except ValueError:
        raise GitHubError(f"remote {url!r}: expected github.com/OWNER/NAME; pass --github-repository OWNER/NAME") from None


# --- configuration ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class AppConfig:
    issuer: str                        # the app id (or client id): the JWT's iss
    private_key: bytes = field(repr=False)
    key_file: Path
    installation_id: int | None
    api_url: str
    permissions: dict
    source: str                        # where it came from, for messages and --print

    def describe(self) -> str:
        installation = f"installation {self.installation_id}" if self.installation_id else \
            "the installation looked up from the repository"
        return f"GitHub App {self.issuer} ({self.source}; key {self.key_file}; {installation}; {self.api_url})"


def default_config_path() -> Path:
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "agent-sandbox" / CONFIG_NAME


def load_app_config(path: Path | None = None, *, app_id: str | None = None, key_file: Path | None = None,
                    installation_id: str | None = None, api_url: str | None = None,
                    explicit_path: bool = False, read_key: bool = True) -> AppConfig | None:
    """The App configuration from the file (if any) and the flags, or None when neither names an app.
    read_key False (agent-run --print): the key file is named, not read. api_url: a stand-in's URL
    (agent-run's hidden --github-api-url, tests only), taken as given."""
    path = path or default_config_path()
    data: dict = {}
    where = "flags"
    if path.exists() or explicit_path:
        try:
            data = tomllib.loads(path.read_text())
        except OSError as error:
            raise GitHubError(f"{path}: {error.strerror or error}; fix the path given to --github-app-config") from None
        except tomllib.TOMLDecodeError as error:
            raise GitHubError(f"{path}: not valid TOML ({error})") from None
        where = str(path)
        unknown = sorted(set(data) - {"app_id", "client_id", "private_key_file", "installation_id", "api_url", "permissions"})
        if unknown:
            raise GitHubError(f"{path}: unknown key {unknown[0]!r}; expected app_id or client_id, private_key_file, "
                              f"installation_id, api_url, [permissions]")
    if not data and not app_id and not key_file:
        return None
    if "app_id" in data and "client_id" in data:
        raise GitHubError(f"{path}: give app_id or client_id, not both")
    issuer = app_id or data.get("app_id") or data.get("client_id")
    if issuer is None:
        raise GitHubError(f"{where}: no app_id; add app_id = <the App's id> (its settings page) or pass --github-app-id")
    issuer = str(issuer)
    if not re.fullmatch(r"[0-9]{1,12}|Iv[0-9A-Za-z.]{4,40}", issuer):
        raise GitHubError(f"{where}: app_id {issuer!r} is neither an App id (digits) nor a client id (Iv...)")
    key_path = key_file or data.get("private_key_file")
    if key_path is None:
        raise GitHubError(f"{where}: no private_key_file; add private_key_file = \"PATH.pem\" or pass --github-app-key")
    key_path = Path(os.path.expanduser(str(key_path)))
    if not key_path.is_absolute() and key_file is None:
        key_path = path.parent / key_path
    installation = installation_id if installation_id is not None else data.get("installation_id")
    if installation is not None:
        if not re.fullmatch(r"[0-9]{1,15}", str(installation)):
            raise GitHubError(f"{where}: installation_id {installation!r} is not a number")
        installation = int(installation)
    url = (api_url or data.get("api_url") or DEFAULT_API).rstrip("/")
    if not api_url:
        check_api_url(url, where)
    return AppConfig(issuer=issuer, private_key=read_private_key(key_path, where) if read_key else b"",
                     key_file=key_path,
                     installation_id=installation, api_url=url,
                     permissions=narrowed_permissions(data.get("permissions"), where), source=where)


def check_api_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback) or not parts.hostname \
            or parts.query or parts.username:
        raise GitHubError(f"{where}: api_url {url!r} must be https://HOST[/PATH] (plain http only on loopback)")


def read_private_key(path: Path, where: str) -> bytes:
    try:
        info = path.stat()
        text = path.read_bytes()
    except OSError as error:
        raise GitHubError(f"{where}: private_key_file {path}: {error.strerror or error}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise GitHubError(f"{where}: private_key_file {path} is readable by others (mode "
                          f"{stat.S_IMODE(info.st_mode):04o}); fix: chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(text, password=None)
    except (ValueError, TypeError):
        raise GitHubError(f"{where}: private_key_file {path} is not an unencrypted PEM private key "
                          f"(download a new one from the App's settings)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise GitHubError(f"{where}: private_key_file {path} is not an RSA key; GitHub Apps sign with RS256")
    return text


def narrowed_permissions(requested, where: str) -> dict:
    """RUN_PERMISSIONS, or less: a config may lower a level or drop a permission, never add one."""
    if requested is None:
        return dict(RUN_PERMISSIONS)
    if not isinstance(requested, dict):
        raise GitHubError(f"{where}: permissions must be a table, e.g. [permissions] issues = \"read\"")
    out = dict(RUN_PERMISSIONS)
    for name, level in requested.items():
        if name not in RUN_PERMISSIONS:
            raise GitHubError(f"{where}: permissions.{name}: a run's token never holds {name!r} (the gateway refuses "
                              f"what it would allow); allowed: {', '.join(sorted(RUN_PERMISSIONS))}")
        if level == "none" and name != "metadata":
            out.pop(name)
        elif level not in LEVELS or LEVELS[level] > LEVELS[RUN_PERMISSIONS[name]]:
            raise GitHubError(f"{where}: permissions.{name} = {level!r}: expected none, read"
                              f"{' or write' if RUN_PERMISSIONS[name] == 'write' else ''}")
        else:
            out[name] = level
    return out


# --- GitHub's API ----------------------------------------------------------------------------------

def app_jwt(config: AppConfig, now: float | None = None) -> str:
    now = int(time.time() if now is None else now)
    return jwt.encode({"iat": now - 60, "exp": now + JWT_LIFETIME, "iss": config.issuer},
                      config.private_key, algorithm="RS256")


def _call(method: str, url: str, credential: str, body: dict | None = None, timeout: float = 30.0,
          ca_file: str | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28", "User-Agent": USER_AGENT,
        "Authorization": f"Bearer {credential}", **({"Content-Type": "application/json"} if data else {})})
    context = ssl.create_default_context(cafile=ca_file) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise GitHubError(f"{method} {url}: {reason}") from None
    try:
        payload = json.loads(raw) if raw.strip() else {}
    except ValueError:
        payload = {}
    return status, payload if isinstance(payload, dict) else {}


def _refusal(what: str, status: int, payload: dict) -> GitHubError:
    message = str(payload.get("message") or "no message")[:300]
    hint = {401: " (the App id or key is wrong, or the host's clock is off)",
            404: " (is the App installed on this repository?)",
            422: " (the installation lacks a permission or the repository)"}.get(status, "")
    return GitHubError(f"{what}: GitHub answered {status}: {message}{hint}")


@dataclass
class InstallationToken:
    token: str = field(repr=False)
    repository: str
    permissions: dict
    expires_at: datetime
    api_url: str


def find_installation(config: AppConfig, repository: str, timeout: float = 30.0, ca_file: str | None = None) -> int:
    status, payload = _call("GET", f"{config.api_url}/repos/{repository}/installation", app_jwt(config),
                            timeout=timeout, ca_file=ca_file)
    if status != 200 or not isinstance(payload.get("id"), int):
        raise _refusal(f"looking up the App's installation on {repository}", status, payload)
    return payload["id"]


def mint_token(config: AppConfig, repository: str, timeout: float = 30.0, ca_file: str | None = None,
               now: float | None = None) -> InstallationToken:
    """An installation token for one repository and the config's permissions, checked to be no
    broader and to expire within the hour: a wider answer is refused, never used."""
    check_repository(repository)
    installation = config.installation_id or find_installation(config, repository, timeout, ca_file)
    name = repository.split("/")[1]
    what = f"minting a token for {repository} (installation {installation})"
    status, payload = _call("POST", f"{config.api_url}/app/installations/{installation}/access_tokens",
                            app_jwt(config, now), {"repositories": [name], "permissions": config.permissions},
                            timeout=timeout, ca_file=ca_file)
    if status != 201 or not isinstance(payload.get("token"), str):
        raise _refusal(what, status, payload)
    problem = _broader_than_asked(payload, config.permissions, repository, time.time() if now is None else now)
    if problem:
        try:
            revoke_token(config.api_url, payload["token"], timeout, ca_file)
        except GitHubError as error:
            problem += f"; revoking it failed too ({error})"
        raise GitHubError(f"{what}: {problem}; the token is not used")
    expires = datetime.strptime(payload["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return InstallationToken(payload["token"], repository, dict(payload["permissions"]), expires, config.api_url)


def _broader_than_asked(payload: dict, asked: dict, repository: str, now: float) -> str | None:
    granted = payload.get("permissions")
    if not isinstance(granted, dict) or any(LEVELS.get(level, 99) > LEVELS.get(asked.get(p, ""), 0)
                                            for p, level in granted.items()):
        return f"GitHub granted {granted!r}, more than the {asked!r} asked for"
    repos = payload.get("repositories")
    if payload.get("repository_selection") != "selected" or not isinstance(repos, list) \
            or [str(r.get("full_name", "")).lower() for r in repos if isinstance(r, dict)] != [repository.lower()]:
        return f"the token is not limited to {repository}"
    try:
        expires = datetime.strptime(str(payload.get("expires_at")), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return f"the token's expiry {payload.get('expires_at')!r} cannot be read"
    if expires.timestamp() > now + TOKEN_LIFETIME + 300:
        return f"the token does not expire within the hour ({payload['expires_at']})"
    return None


def revoke_token(api_url: str, token: str, timeout: float = 30.0, ca_file: str | None = None) -> None:
    status, payload = _call("DELETE", f"{api_url.rstrip('/')}/installation/token", token, timeout=timeout,
                            ca_file=ca_file)
    if status != 204:
        raise _refusal("revoking the run's GitHub token", status, payload)


# --- tokens from the user's command or file ------------------------------------------------------

def read_token(source: KeySource, timeout: float = 30.0) -> str:
    """A token from a file or a command's standard output; errors never include its text."""
    try:
        return read_secret(source, "GitHub token", timeout)
    except ValueError as error:
        raise GitHubError(str(error)) from None


def check_token(token: str, origin: str, allow_long_lived: bool) -> str:
    for prefix, what in LONG_LIVED_PREFIXES.items():
        if token.startswith(prefix) and not allow_long_lived:
            raise GitHubError(f"{origin} gives {what} ({prefix}...), which lives until revoked and reaches every "
                              f"repository of its owner; use a GitHub App (--github-app-config) or a broker's "
                              f"short-lived token, or pass --allow-long-lived-token to accept it")
    return token


# --- what agent-run calls ----------------------------------------------------------------------

@dataclass
class GitHubCredential:
    token: str = field(repr=False)
    repository: str
    source: str
    minted: InstallationToken | None = None     # revoked at teardown when set

    def secrets(self) -> dict:
        """For egress.gateway.write_secrets, beside the vendor key."""
        return {gateway_github.GITHUB_SECRET: self.token}

    def revoke(self, timeout: float = 10.0, ca_file: str | None = None) -> str | None:
        """Revoke a minted token; a problem is returned as a message (the token expires within the hour anyway)."""
        if self.minted is None:
            return None
        try:
            revoke_token(self.minted.api_url, self.token, timeout, ca_file)
        except GitHubError as error:
            return f"{error}; it expires at {self.minted.expires_at:%H:%M:%S} UTC"
        return None


@dataclass(frozen=True)
class GitHubOptions:
    app: AppConfig | None = None
    token_source: KeySource | None = None
    repository: str | None = None
    allow_long_lived: bool = False

    @property
    def configured(self) -> bool:
        return self.app is not None or self.token_source is not None

    def describe(self, repository: str) -> str:
        if self.token_source is not None:
            return f"GitHub token for {repository} from {self.token_source.describe()}, used as given"
        perms = ", ".join(f"{k}:{v}" for k, v in sorted(self.app.permissions.items()))
        return (f"mint a GitHub App installation token for {repository} ({perms}; one hour) with "
                f"{self.app.describe()}; revoke it at teardown")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The App's flags (--github-token-file and --github-token-command stay agent-run's own)."""
    group = parser.add_argument_group("GitHub App (a token per run, narrowed and revoked)")
    group.add_argument("--github-app-config", type=Path, metavar="FILE",
                       help=f"TOML with app_id, private_key_file, installation_id (default "
                            f"$XDG_CONFIG_HOME/agent-sandbox/{CONFIG_NAME} when it exists)")
    group.add_argument("--github-app-id", metavar="ID")
    group.add_argument("--github-app-key", type=Path, metavar="PEM")
    group.add_argument("--github-app-installation", metavar="ID")
    group.add_argument("--github-repository", metavar="OWNER/NAME", help="default: the workspace's origin remote")
    group.add_argument("--github-api-url", help=argparse.SUPPRESS)
    parser.add_argument("--allow-long-lived-token", action="store_true",
                        help="accept a classic personal access token (ghp_) or OAuth token (gho_)")


def options_from_args(args: argparse.Namespace, token_source: KeySource | None,
                      read_key: bool = True) -> GitHubOptions:
    app_flags = (args.github_app_config, args.github_app_id, args.github_app_key, args.github_app_installation)
    if token_source is not None and any(app_flags):
        raise GitHubError("give either a GitHub App (--github-app-*) or --github-token-file/--github-token-command")
    app = None
    if token_source is None:
        app = load_app_config(args.github_app_config, app_id=args.github_app_id, key_file=args.github_app_key,
                              installation_id=args.github_app_installation, api_url=args.github_api_url,
                              explicit_path=args.github_app_config is not None, read_key=read_key)
    repository = args.github_repository and check_repository(args.github_repository)
    return GitHubOptions(app=app, token_source=token_source, repository=repository,
                         allow_long_lived=args.allow_long_lived_token)


def obtain(options: GitHubOptions, repository: str, timeout: float = 30.0,
           ca_file: str | None = None) -> GitHubCredential | None:
    """The run's credential for repository (agent-run reads it from the workspace's origin remote,
    or --github-repository), or None when no GitHub source is configured."""
    if not options.configured:
        return None
    if options.token_source is not None:
        token = read_token(options.token_source, timeout)
        check_token(token, options.token_source.describe(), options.allow_long_lived)
        return GitHubCredential(token, repository, options.token_source.describe())
    minted = mint_token(options.app, repository, timeout, ca_file)
    return GitHubCredential(minted.token, repository, options.app.describe(), minted)


# --- the pieces of a run's plan --------------------------------------------------------------------

@dataclass(frozen=True)
class GitHubRunPieces:
    """What agent-run adds to a run for GitHub and the registries: pure data for its plan (no
    token: `GitHubCredential.secrets()` goes to the gateway's secrets folder when the run starts)."""
    gateway_config: str           # config.json with the GitHub and registry routes
    agent_env: dict               # git's insteadOf and resolve, GH_HOST, GH_REPO, npm's registry
    agent_add_hosts: list         # --add-host for the agent container
    gateway_create_args: list     # for the gateway container: port 80 without a capability
    proxy_allow: list             # the proxy's allowlist without the hosts the gateway serves
    policy: Policy


def run_pieces(*, repository: str | None, with_token: bool, tripwire, run_id: str, gateway_config_text: str,
               gateway_address: str | None, gateway_host: str, allow, registries=("npm",),
               upstreams: dict | None = None) -> GitHubRunPieces:
    """Every run walls GitHub and the registries, token or not: without a credential (with_token
    False, repository None) GitHub is read anonymously through the gateway and nothing is written.
    gateway_address: the gateway's address on the agent's network (None: a gateway shared by runs,
    whose agents' environments are made per run); gateway_host: its name there (agent-gateway); upstreams: stand-ins for github.com, api.github.com or a registry (tests)."""
    policy = render_policy(tripwire, repository=repository, run_id=run_id)
    config = gateway_github.add_github_routes(gateway_config_text, policy, with_token=with_token,
                                              registries=registries, upstreams=upstreams)
    return GitHubRunPieces(
        gateway_config=config,
        agent_env=gateway_github.agent_environment(gateway_address, registry_host=gateway_host, registries=registries,
                                                   repository=repository),
        agent_add_hosts=gateway_github.gateway_hosts(gateway_address),
        gateway_create_args=list(gateway_github.GATEWAY_CREATE_ARGS),
        proxy_allow=gateway_github.proxy_allowlist(allow),
        policy=policy,
    )
