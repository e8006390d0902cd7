"""Logins on the host: which credential a run uses (an API key or a subscription login), where it
is found on the user's machine, what the gateway gets (the secret) and what the container gets (a
placeholder of the right shape, never the real token).

A login kind is one (CLI, kind) pair: `claude/api-key`, `claude/oauth-token`, `claude/login`,
`codex/api-key`, `codex/chatgpt`, `gemini/api-key`, `gemini/google`, `gemini/vertex`. The API keys
are defined here; the vendor modules (launcher/login_<vendor>.py) register the others. The gateway's
half of each kind (header, endpoints, refresh) is in egress/logins.py under the same name.

    agent-run claude --login auto          an API key if --key-file/--key-command is given, else the
                                           first login found on the host for that CLI
    agent-run login-check claude           which login, usable or not, when it expires
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from egress import logins as gateway_logins
from egress.gateway import VENDORS, KeySource, agent_environment, base_urls, read_key
from launcher import safefs

MAX_CREDENTIAL_BYTES = 256 * 1024
CLIS = {"claude": "anthropic", "codex": "openai", "gemini": "gemini"}


class LoginError(ValueError):
    """A login that cannot be used: the message says which CLI and kind, why, and what to do."""


class NotFound(LoginError):
    """No credential at all for the CLI (auto): the caller may say it its own way."""


# --- what a kind is --------------------------------------------------------------------------------

@dataclass
class Context:
    """Where the user's credentials are: their real home (not root's under sudo), their
    environment, the key sources and the --login-command given."""
    home: Path
    environ: dict
    key_sources: list = field(default_factory=list)          # [KeySource]
    login_command: tuple[str, ...] | None = None

    def key_source(self, vendor: str) -> KeySource | None:
        return next((s for s in self.key_sources if s.vendor == vendor), None)


@dataclass
class Found:
    """A credential found on the host. `secret` goes to the gateway only (a key, or a JSON
    document as egress.logins reads it); `details` are facts the container may know (a plan name,
    never a token); `origin` says where it came from, for messages."""
    kind: str
    origin: str
    secret: str | dict | KeySource = field(repr=False)
    details: dict = field(default_factory=dict)

    @property
    def expires_at(self) -> float | None:
        return self.secret.get("expires_at") if isinstance(self.secret, dict) else None


@dataclass(frozen=True)
class Container:
    """What the agent's container gets for a login: environment variables, files (container path ->
    text, bind-mounted read-only), and arguments put before the user's CLI arguments."""
    env: dict
    files: dict = field(default_factory=dict)
    args: tuple = ()


@dataclass(frozen=True)
class HostKind:
    name: str                                    # "claude/login"
    cli: str                                     # claude, codex, gemini
    title: str                                   # "Claude Code login (~/.claude/.credentials.json)"
    # The user's credential, or None where this kind has none on this host. Raises LoginError
    # when one is there but unusable (the message says why).
    find: Callable[[Context], Found | None]
    # What the container gets: (gateway host, the found login's details) -> Container.
    container: Callable[[str, dict], Container]
    # Gives a refreshed login back to where it was found (the vendor may have rotated the
    # refresh token): (context, the secret the run started with, the refreshed one) -> a message.
    write_back: Callable[[Context, dict, dict], str] | None = None
    # A kind no run can use without the real token inside: why, and what to use instead.
    refused: str | None = None
    # Tried in this order by --login auto (lower first); API keys are only chosen when given.
    auto_order: int = 100
    # The upstream for this login's details, where it depends on them (Vertex's location):
    # details -> "https://host", or None for the gateway kind's default.
    upstream: Callable[[dict], str | None] | None = None

    @property
    def vendor(self) -> str:
        return CLIS[self.cli]


# One line per vendor module: each registers its kinds when imported.
VENDOR_MODULES = ("launcher.login_claude", "launcher.login_codex", "launcher.login_gemini")
KINDS = gateway_logins.Registry(VENDOR_MODULES)
register = KINDS.register


def kinds_for(cli: str) -> list[HostKind]:
    KINDS.load()
    return sorted((k for k in KINDS.values() if k.cli == cli), key=lambda k: (k.auto_order, k.name))


def get(name: str, cli: str | None = None) -> HostKind:
    KINDS.load()
    kind = KINDS.get(name)
    if kind is None or (cli is not None and kind.cli != cli):
        known = ", ".join(k.name for k in (kinds_for(cli) if cli else KINDS.values()))
        raise LoginError(f"--login {name}: not a login kind{f' of {cli}' if cli else ''} (known: {known}, auto)")
    return kind


# --- helpers the vendor modules share ------------------------------------------------------------------

def user_home(environ: dict | None = None) -> Path:
    """The home of the user who runs agent-run: under sudo, SUDO_USER's, not root's."""
    environ = os.environ if environ is None else environ
    user = environ.get("SUDO_USER")
    if user and os.geteuid() == 0:
        try:
            return Path(pwd.getpwnam(user).pw_dir)
        except KeyError:
            pass
    return Path(environ.get("HOME") or Path.home())


def read_user_file(path: Path, what: str) -> bytes | None:
    """A credential file of the user's: a regular file, read without following a link at its last
    component, up to a cap; None when it does not exist."""
    try:
        fd = os.open(path, safefs.FILE_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise LoginError(f"{what} {path}: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not safefs.stat.S_ISREG(info.st_mode):
            raise LoginError(f"{what} {path}: {safefs.kind(info.st_mode)}, not a regular file")
        os.set_blocking(fd, True)
        data, more = safefs.read_fd_capped(fd, MAX_CREDENTIAL_BYTES)
    finally:
        os.close(fd)
    if more:
        raise LoginError(f"{what} {path}: larger than {MAX_CREDENTIAL_BYTES} bytes")
    return data


def run_login_command(command: tuple[str, ...], what: str, timeout: float = 30.0) -> bytes:
    """--login-command: prints the credential (a keychain export, a password manager)."""
    try:
        done = subprocess.run(list(command), capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LoginError(f"--login-command {shlex.join(command)!r} for {what}: {error}") from None
    if done.returncode != 0:
        raise LoginError(f"--login-command {shlex.join(command)!r} for {what}: exited {done.returncode}")
    return done.stdout[:MAX_CREDENTIAL_BYTES]


def token_from(value, what: str, origin: str) -> str:
    """A token read on the host; errors never include it."""
    try:
        return gateway_logins.check_token(value.strip() if isinstance(value, str) else value, what, origin)
    except gateway_logins.LoginError as error:
        raise LoginError(str(error)) from None


def json_credential(context: Context, cli: str, path: Path, what: str) -> tuple[str, str] | None:
    """(origin, text) of a login kept as a JSON document: --login-command's output when one is
    given (None when it printed something else: another kind's token), else the file's (None when
    there is no file)."""
    if context.login_command:
        output = run_login_command(context.login_command, cli).decode("utf-8", "replace").strip()
        return ("--login-command", output) if output.startswith("{") else None
    data = read_user_file(path, what)
    return None if data is None else (str(path), data.decode("utf-8", "replace"))


def write_back_file(path: Path, what: str, started_with: dict, renewed: dict,
                    holder: Callable[[dict], dict | None], refresh_field: str,
                    apply: Callable[[dict, dict], None]) -> str:
    """A refreshed login into the user's JSON credential file, if the login in it is still the one
    the run started with (the user's own CLI may have refreshed it meanwhile: then theirs wins).
    holder(document) is the object that holds the login (the document or a part of it), whose
    refresh_field is compared; apply(document, holder) writes the renewed tokens in."""
    data = read_user_file(path, what)
    try:
        current = json.loads(data) if data else None
    except ValueError:
        current = None
    place = holder(current) if isinstance(current, dict) else None
    if not isinstance(place, dict) or place.get(refresh_field) != started_with.get("refresh_token"):
        return f"{path} changed during the run; the gateway's refreshed login was not written back"
    apply(current, place)
    write_json_file(path, current)
    return (f"the refreshed login was written back to {path} (valid until "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(renewed['expires_at']))})")


def write_json_file(path: Path, data: dict, mode: int = 0o600) -> None:
    """A user's credential file rewritten in place of the old one, atomically, owned as before."""
    info = path.lstat()
    tmp = path.with_name(f".{path.name}.agent-run.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "w") as out:
            os.fchown(out.fileno(), info.st_uid, info.st_gid)
            out.write(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise


# --- the API keys, as before: --key-file / --key-command ----------------------------------------------

def _api_key_kind(cli: str) -> HostKind:
    vendor = CLIS[cli]

    def find(context: Context) -> Found | None:
        source = context.key_source(vendor)
        if source is None:
            return None
        return Found(f"{cli}/api-key", source.describe(), source)

    def container(gateway_host: str, details: dict) -> Container:
        return Container(agent_environment(gateway_host, [vendor]), args=tuple(codex_provider_args(gateway_host))
                         if cli == "codex" else ())

    return HostKind(f"{cli}/api-key", cli, f"{VENDORS[vendor].name} API key (--key-file / --key-command)", find,
                    container, auto_order=0)


def codex_provider_args(gateway_host: str) -> list[str]:
    """Codex reads no base URL from the environment: it is told the gateway as a model provider
    through -c overrides (the image's baked config.toml is left as it is)."""
    provider = "model_providers.agent_gateway"
    overrides = [
        'model_provider="agent_gateway"', f'{provider}.name="agent-gateway"',
        f'{provider}.base_url="{base_urls(gateway_host)["openai"]}"',
        f'{provider}.env_key="{VENDORS["openai"].placeholder_env}"', f'{provider}.wire_api="responses"',
    ]
    return [a for o in overrides for a in ("-c", o)]


for _cli in CLIS:
    register(_api_key_kind(_cli))


# --- choosing and reading ----------------------------------------------------------------------------

def choose(cli: str, requested: str, context: Context) -> Found:
    """The login a run of `cli` uses: --login KIND, or auto (an API key if given, else the first
    login found on the host). Reads the user's credential (an API key command runs later, in
    `secret_of`)."""
    if cli not in CLIS:
        raise LoginError(f"{cli!r}: not a CLI agent-run knows ({', '.join(CLIS)})")
    if requested != "auto":
        kind = get(requested, cli)
        if kind.refused:
            raise LoginError(f"--login {kind.name}: {kind.refused}")
        found = kind.find(context)
        if found is None:
            raise LoginError(f"--login {kind.name}: no {kind.title} found; {_how_to(cli)}")
        return found
    tried = []
    for kind in kinds_for(cli):
        if kind.refused:
            continue
        found = kind.find(context)
        if found is not None:
            return found
        tried.append(kind.title)
    raise NotFound(f"{cli} needs a credential and none was found (looked for: {'; '.join(tried)}); {_how_to(cli)}")


def _how_to(cli: str) -> str:
    vendor = CLIS[cli]
    return (f"pass --key-file {vendor}=PATH or --key-command {vendor}='COMMAND', or log in with {cli} on this "
            f"machine (docs/logins.md), or --login-command 'COMMAND' that prints the credential")


def secret_of(found: Found) -> str | dict:
    """The secret for the gateway (an API key command runs here)."""
    if isinstance(found.secret, KeySource):  # read only now: a --key-command may prompt
        return read_key(found.secret)
    return found.secret


def is_api_key(kind_name: str) -> bool:
    return kind_name.endswith("/api-key")


def container_for(kind_name: str, gateway_host: str, details: dict) -> Container:
    return get(kind_name).container(gateway_host, details)


def upstream_for(kind_name: str, details: dict) -> str | None:
    kind = get(kind_name)
    return kind.upstream(details) if kind.upstream else None


def context_from(key_sources: list, login_command: str | None, environ: dict | None = None) -> Context:
    environ = dict(os.environ if environ is None else environ)
    return Context(user_home(environ), environ, list(key_sources),
                   tuple(shlex.split(login_command)) if login_command else None)


def give_back(kind_name: str, context: Context, started_with, renewed: dict) -> str | None:
    """After a run: a login the gateway refreshed goes back where it was found (if it was a file
    the kind can update); the message says what happened, never a token."""
    kind = get(kind_name)
    if kind.write_back is None or not isinstance(started_with, dict):
        return None
    if renewed.get("refresh_token") == started_with.get("refresh_token") and \
            renewed.get("access_token") == started_with.get("access_token"):
        return None
    try:
        return kind.write_back(context, started_with, renewed)
    except (OSError, LoginError) as error:
        return f"{kind.name}: the refreshed login could not be written back: {error}"


# --- login-check ---------------------------------------------------------------------------------------

@dataclass
class CheckResult:
    kind: str
    origin: str
    usable: bool
    status: int | None
    expires_at: float | None
    refreshed: bool
    message: str


async def _check_async(found: Found, secret, upstream: str | None, token_url: str | None, ca_file: str | None,
                       timeout: float) -> tuple[int | None, str, bool, dict]:
    import aiohttp
    from multidict import CIMultiDict

    from egress.gateway_server import tls_context

    login = gateway_logins.kind(found.kind)
    notes = []
    saved = {}
    context = tls_context(ca_file)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        async def post(url, fields, body):
            form = {"json": fields} if body == "json" else {"data": fields}
            async with session.post(url, **form, allow_redirects=False, headers={"Accept": "application/json"},
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as answer:
                return answer.status, await answer.content.read(gateway_logins.MAX_REFRESH_RESPONSE + 1)

        credential = gateway_logins.credential_for(secret, login, post, notes.append, token_url, saved.update)
        method, target, body = login.check_call
        url = (upstream or login.default_upstream).rstrip("/") + target
        value = await credential.current()
        for attempt in range(2):
            headers = CIMultiDict({**login.check_headers, login.header: value})
            gateway_logins.add_login_headers(headers, login, gateway_logins.secret_of_credential(credential, secret))
            try:
                async with session.request(method, url, json=body, headers=headers, allow_redirects=False,
                                           timeout=aiohttp.ClientTimeout(total=timeout)) as answer:
                    status = answer.status
            except (aiohttp.ClientError, TimeoutError) as error:
                return None, f"the vendor could not be reached ({type(error).__name__})", bool(saved), saved
            if status == 401 and attempt == 0 and await credential.refresh_after_rejection(value):
                value = await credential.current()
                continue
            break
        failed = [n for n in notes if n.get("outcome") == "failed"]
        reason = f"; refresh failed: {failed[-1]['reason']}" if failed else ""
        return status, f"{method} {target.split('?')[0]} answered {status}{reason}", bool(saved), saved


def check(found: Found, context: Context, upstream: str | None = None, token_url: str | None = None,
          ca_file: str | None = None, timeout: float = 30.0) -> CheckResult:
    """One cheap authenticated call through the gateway's own credential code (refreshing first
    when the token is expired, and giving a refreshed login back to its file)."""
    secret = secret_of(found)
    status, message, refreshed, renewed = asyncio.run(_check_async(found, secret, upstream, token_url, ca_file,
                                                                   timeout))
    login = gateway_logins.kind(found.kind)
    usable = status is not None and status in login.check_accepts
    expires = renewed.get("expires_at") if renewed else (secret.get("expires_at") if isinstance(secret, dict)
                                                         else None)
    if renewed:
        back = give_back(found.kind, context, secret, renewed)
        if back:
            message += f"; {back}"
    return CheckResult(found.kind, found.origin, usable, status, expires, refreshed, message)


def format_check(result: CheckResult, now: float | None = None) -> str:
    now = time.time() if now is None else now
    lines = [f"login:   {result.kind} ({result.origin})"]
    if result.expires_at is None:
        lines.append("expires: no expiry known (a key or a long-lived token)")
    else:
        left = result.expires_at - now
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(result.expires_at))
        state = f"in {_duration(left)}" if left > 0 else f"{_duration(-left)} ago"
        lines.append(f"expires: {when} ({state}){'; refreshed by this check' if result.refreshed else ''}")
    lines.append(f"usable:  {'yes' if result.usable else 'NO'}: {result.message}")
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 86400:
        return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 60} min {seconds % 60} s"


def check_main(argv: list[str], prog: str = "agent-run login-check") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="Which login a run of CLI would use, whether the "
                                     "gateway could use it (one cheap authenticated call to the vendor) and when it "
                                     "expires. Exit 0: usable; 1: found but not usable; 2: none found or bad input.")
    parser.add_argument("cli", choices=sorted(CLIS))
    parser.add_argument("--login", default="auto", metavar="KIND",
                        help="a login kind (see docs/logins.md) or auto (default)")
    parser.add_argument("--key-file", action="append", default=[], metavar="VENDOR=PATH")
    parser.add_argument("--key-command", action="append", default=[], metavar="VENDOR=COMMAND")
    parser.add_argument("--login-command", metavar="COMMAND",
                        help="a command that prints the credential (a keychain export)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds for the check (default 30)")
    # Tests only: the vendor's stand-in.
    parser.add_argument("--gateway-upstream", help=argparse.SUPPRESS)
    parser.add_argument("--gateway-upstream-ca", help=argparse.SUPPRESS)
    parser.add_argument("--gateway-token-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        sources = key_sources_from(args.key_file, args.key_command)
        context = context_from(sources, args.login_command)
        found = choose(args.cli, args.login, context)
        upstream = args.gateway_upstream or upstream_for(found.kind, found.details)
        result = check(found, context, upstream, args.gateway_token_url, args.gateway_upstream_ca, args.timeout)
    except (LoginError, ValueError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(format_check(result))
    return 0 if result.usable else 1


def key_sources_from(key_files: list[str], key_commands: list[str]) -> list[KeySource]:
    def pair(text: str, flag: str) -> tuple[str, str]:
        vendor, sep, value = text.partition("=")
        if not sep or vendor not in VENDORS or not value:
            raise LoginError(f"{flag} {text!r}: expected VENDOR=VALUE with VENDOR one of {sorted(VENDORS)}")
        return vendor, value
    sources = [KeySource(v, file=Path(p)) for v, p in (pair(t, "--key-file") for t in key_files)]
    sources += [KeySource(v, command=tuple(shlex.split(c))) for v, c in (pair(t, "--key-command") for t in key_commands)]
    dup = sorted({s.vendor for s in sources if [x.vendor for x in sources].count(s.vendor) > 1})
    if dup:
        raise LoginError(f"two keys given for {', '.join(dup)}: pass one --key-file or --key-command each")
    return sources

