"""Logins in the credential gateway: what a route holds when the user has a subscription login
rather than an API key, and the credential object that keeps its token fresh.

A login kind (`claude/oauth-token`, `codex/chatgpt`, `gemini/google`, ...) says, for the gateway:
the header and prefix the real token goes in, the endpoints forwarded (method, path, query, body
check: the model traffic and the CLI's own start-up calls), the calls the gateway answers itself
(so that account data never reaches the container, or where the placeholder would be refused),
and, for a token that expires, how to refresh it. The vendor modules (egress/login_<vendor>.py)
register their kinds here; API keys are kinds too (`claude/api-key`, ...) with today's rules.

The secret of a login is a JSON document (an API key stays a bare string):

    {"kind": "claude/login", "access_token": "...", "refresh_token": "...", "expires_at": 1767225600,
     ...anything else the kind needs (account ids, client ids)}

`Credential.current()` gives the header value, refreshing first under a lock when the token is
near its expiry; `Credential.refresh_after_rejection(value)` refreshes once when the vendor answered
401 to that value. Refreshes and their outcome go to the access log, never a token.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from egress.gateway_rules import ENDPOINTS, Endpoint

# What a token may hold: printable, no spaces, nothing that could end a header.
TOKEN = re.compile(r"^[A-Za-z0-9._~+/=_-]{8,8192}$")
# A token is refreshed this long before it expires (the vendors' own CLIs use a few minutes).
REFRESH_MARGIN_S = 300
RETRY_AFTER_FAILURE_S = 10
# Refresh requests: their own bounds (a refresh holds every request of the route).
REFRESH_TIMEOUT_S = 30
MAX_REFRESH_RESPONSE = 64 * 1024


class LoginError(ValueError):
    """A login secret or kind is unusable: the message names what and how to fix it, never a token."""


# --- kinds -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """A call the gateway answers itself: `respond(secret)` gives (status, JSON body) or
    (status, JSON body, response headers)."""
    id: str
    method: str
    path: str                                   # a regular expression, in full, on the raw path
    respond: Callable[[dict], tuple]


@dataclass(frozen=True)
class Refresh:
    """How a kind's access token is renewed: an OAuth 2 refresh-token grant by default.

    fields: constant body fields (client_id, scope, client_secret for the CLIs whose OAuth client
    is public). body: "json" or "form". parse: the token response -> the updated secret fields,
    default `oauth_fields` (access_token, refresh_token if rotated, expires_at from expires_in).
    grant: the secret -> the grant's own fields, in place of grant_type=refresh_token and the
    refresh token (a service account's JWT-bearer assertion); the secret then needs no refresh_token.
    """
    token_url: str
    fields: dict = field(default_factory=dict)
    body: str = "json"
    parse: Callable[[dict, dict], dict] | None = None
    from_secret: Callable[[dict], dict] | None = None   # body fields taken from the secret (its scopes)
    grant: Callable[[dict], dict] | None = None


@dataclass(frozen=True)
class GatewayKind:
    name: str                                   # "claude/login"
    vendor: str                                 # the route: anthropic, openai, gemini
    header: str                                 # where the real token goes
    prefix: str                                 # "Bearer " or ""
    default_upstream: str                       # where the model traffic goes
    endpoints: tuple[Endpoint, ...]             # forwarded
    answers: tuple[Answer, ...] = ()            # answered by the gateway itself
    refresh: Refresh | None = None              # None: the token never expires in our hands
    # Request headers the vendor needs with this credential, merged into the client's (comma
    # lists such as anthropic-beta get the value added if missing).
    required_headers: dict = field(default_factory=dict)
    # Upstream headers taken from the secret, replacing the client's (ChatGPT's account id):
    # the secret -> {header: value}.
    secret_headers: Callable[[dict], dict] | None = None
    # login-check's one cheap authenticated call: (method, path, JSON body or None).
    check_call: tuple[str, str, object] = ("GET", "/", None)
    check_headers: dict = field(default_factory=dict)
    # Statuses of the check call that mean the vendor accepted the credential (a refusal of the
    # body, after authentication, still proves the login).
    check_accepts: tuple[int, ...] = (200,)


class Registry(dict):
    """Login kinds by name, one side's (the gateway's here, the host's in launcher/logins.py). The
    vendor modules register theirs when imported; `load()` imports them, once, before a lookup."""

    def __init__(self, vendor_modules: tuple[str, ...]):
        super().__init__()
        self.vendor_modules = vendor_modules
        self.loaded = False

    def register(self, kind):
        if kind.name in self:
            raise ValueError(f"login kind {kind.name!r} is registered twice")
        self[kind.name] = kind
        return kind

    def load(self) -> None:
        if not self.loaded:
            self.loaded = True
            import importlib
            for module in self.vendor_modules:
                importlib.import_module(module)


# One line per vendor module: each registers its kinds when imported.
VENDOR_MODULES = ("egress.login_claude", "egress.login_codex", "egress.login_gemini")
KINDS: Registry = Registry(VENDOR_MODULES)
register = KINDS.register


def kind(name: str) -> GatewayKind:
    KINDS.load()
    try:
        return KINDS[name]
    except KeyError:
        raise LoginError(f"login kind {name!r}: not known to this gateway (known: {', '.join(sorted(KINDS))})") \
            from None


def kinds_for(vendor: str) -> list[GatewayKind]:
    KINDS.load()
    return [k for k in KINDS.values() if k.vendor == vendor]


# The API keys, as today: the vendor's key header, the model endpoints of egress.gateway_rules.
_API_KEY_HEADERS = {"anthropic": ("x-api-key", "", "https://api.anthropic.com", "claude"),
                    "openai": ("authorization", "Bearer ", "https://api.openai.com", "codex"),
                    "gemini": ("x-goog-api-key", "", "https://generativelanguage.googleapis.com", "gemini")}
_API_KEY_CHECKS = {"anthropic": ("GET", "/v1/models", None), "openai": ("GET", "/v1/models", None),
                   "gemini": ("GET", "/v1beta/models", None)}
for _vendor, (_header, _prefix, _upstream, _cli) in _API_KEY_HEADERS.items():
    register(GatewayKind(f"{_cli}/api-key", _vendor, _header, _prefix, _upstream, ENDPOINTS[_vendor],
                         check_call=_API_KEY_CHECKS[_vendor],
                         check_headers={"anthropic-version": "2023-06-01"} if _vendor == "anthropic" else {}))
API_KEY_KINDS = {vendor: f"{cli}/api-key" for vendor, (_, _, _, cli) in _API_KEY_HEADERS.items()}


# --- secrets -----------------------------------------------------------------------------------------

def check_token(value, what: str, origin: str) -> str:
    if not isinstance(value, str) or not TOKEN.match(value):
        length = len(value) if isinstance(value, str) else 0
        raise LoginError(f"{origin}: {what} is not a token (expected 8 to 8192 characters of letters, digits "
                         f"and ._~+/=_-; got {type(value).__name__} of {length} characters)")
    return value


def parse_secret(text: str, origin: str) -> dict:
    """A login's secret document, checked: its kind is known, its tokens are tokens."""
    try:
        doc = json.loads(text)
    except ValueError as error:
        raise LoginError(f"{origin}: not a JSON document ({error.msg})") from None
    if not isinstance(doc, dict):
        raise LoginError(f"{origin}: not a JSON object")
    login = kind(doc.get("kind") if isinstance(doc.get("kind"), str) else "")
    check_token(doc.get("access_token"), "access_token", origin)
    if login.refresh is not None:
        if login.refresh.grant is None:
            check_token(doc.get("refresh_token"), "refresh_token", origin)
        expires = doc.get("expires_at")
        if not isinstance(expires, (int, float)) or isinstance(expires, bool):
            raise LoginError(f"{origin}: expires_at must be a number of seconds since the epoch")
    return doc


def secret_text(doc: dict) -> str:
    """What the launcher writes into the gateway's secrets folder for a login."""
    parse_secret(json.dumps(doc), "login secret")
    return json.dumps(doc, sort_keys=True)


# --- credentials -------------------------------------------------------------------------------------

class Credential:
    """A route's credential: an API key or a token that never expires in the gateway's hands."""

    def __init__(self, value: str, prefix: str):
        self._value = prefix + value

    async def current(self) -> str:
        return self._value

    async def refresh_after_rejection(self, rejected: str) -> bool:
        """The vendor answered 401 to `rejected`: True if a new value is ready to try once."""
        return False

    @property
    def expires_at(self) -> float | None:
        return None


Post = Callable[[str, dict, str], Awaitable[tuple[int, bytes]]]   # (url, fields, body format) -> (status, body)
Note = Callable[[dict], None]                                     # an access-log entry


def oauth_fields(response: dict, doc: dict) -> dict:
    """The standard token response: access_token, expires_in, maybe a rotated refresh_token."""
    access = response.get("access_token")
    lifetime = response.get("expires_in")
    if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool) or lifetime <= 0:
        raise LoginError("the token response has no positive expires_in")
    update = {"access_token": check_token(access, "access_token", "the token response"),
              "expires_at": int(time.time() + lifetime)}
    if response.get("refresh_token") is not None:
        update["refresh_token"] = check_token(response["refresh_token"], "refresh_token", "the token response")
    return update


class RefreshingCredential(Credential):
    """A login whose access token expires: refreshed under a lock when within REFRESH_MARGIN_S of
    its expiry, and once after a 401. `post` sends the refresh request (the gateway's own HTTP
    client, with its TLS settings); `note` writes an access-log entry; `saved` gets the new
    document after each refresh (the gateway keeps it for the launcher to write back)."""

    def __init__(self, doc: dict, login: GatewayKind, post: Post, note: Note,
                 token_url: str | None = None, saved: Callable[[dict], None] | None = None):
        if login.refresh is None:
            raise LoginError(f"login kind {login.name}: has no refresh")
        self.doc = dict(doc)
        self.kind = login
        self.post, self.note, self.saved = post, note, saved
        self.token_url = token_url or login.refresh.token_url
        self.lock = asyncio.Lock()
        self.failed_at = 0.0

    @property
    def expires_at(self) -> float | None:
        return float(self.doc["expires_at"])

    def _value(self) -> str:
        return self.kind.prefix + self.doc["access_token"]

    def _due(self) -> bool:
        return self.doc["expires_at"] - time.time() < REFRESH_MARGIN_S

    async def current(self) -> str:
        if self._due():
            async with self.lock:
                # A failed refresh is tried again at most every RETRY_AFTER_FAILURE_S (meanwhile the
                # requests go with the token held; the vendor says whether it still works).
                if self._due() and time.time() - self.failed_at > RETRY_AFTER_FAILURE_S:
                    await self._refresh("expiry")
        return self._value()

    async def refresh_after_rejection(self, rejected: str) -> bool:
        async with self.lock:
            if self._value() != rejected:
                return True  # another request refreshed meanwhile
            if time.time() - self.failed_at < RETRY_AFTER_FAILURE_S:
                return False  # a refresh just failed: the vendor's 401 goes back as it is
            return await self._refresh("rejected")

    async def _refresh(self, why: str) -> bool:
        started = time.monotonic()
        entry = {"event": "refresh", "login": self.kind.name, "why": why}
        spec = self.kind.refresh
        grant = spec.grant(self.doc) if spec.grant else {"grant_type": "refresh_token",
                                                           "refresh_token": self.doc["refresh_token"]}
        fields = {**spec.fields, **(spec.from_secret(self.doc) if spec.from_secret else {}), **grant}
        try:
            async with asyncio.timeout(REFRESH_TIMEOUT_S):
                status, raw = await self.post(self.token_url, fields, spec.body)
            if status != 200:
                raise LoginError(f"the token endpoint answered {status}{_oauth_error(raw)}")
            try:
                response = json.loads(raw[:MAX_REFRESH_RESPONSE])
            except ValueError:
                raise LoginError("the token endpoint's answer is not JSON") from None
            if not isinstance(response, dict):
                raise LoginError("the token endpoint's answer is not a JSON object")
            update = (spec.parse or oauth_fields)(response, self.doc)
        except (LoginError, OSError, TimeoutError) as error:
            self.failed_at = time.time()
            reason = str(error) if isinstance(error, LoginError) else f"the token endpoint could not be reached " \
                                                                     f"({type(error).__name__})"
            self.note({**entry, "outcome": "failed", "reason": reason,
                       "duration_ms": round((time.monotonic() - started) * 1000, 1)})
            return False
        except Exception as error:  # aiohttp's errors: the route must keep serving
            self.failed_at = time.time()
            self.note({**entry, "outcome": "failed", "reason": f"refresh failed ({type(error).__name__})",
                       "duration_ms": round((time.monotonic() - started) * 1000, 1)})
            return False
        rotated = "refresh_token" in update and update["refresh_token"] != self.doc.get("refresh_token")
        self.doc.update(update)
        self.failed_at = 0.0
        self.note({**entry, "outcome": "refreshed", "rotated": rotated, "expires_at": int(self.doc["expires_at"]),
                   "duration_ms": round((time.monotonic() - started) * 1000, 1)})
        if self.saved:
            self.saved(dict(self.doc))
        return True


def _oauth_error(raw: bytes) -> str:
    """The OAuth error code of a refusal (invalid_grant, ...), never its whole text."""
    try:
        code = json.loads(raw[:MAX_REFRESH_RESPONSE]).get("error")
    except (ValueError, AttributeError):
        return ""
    if isinstance(code, dict):
        code = code.get("type")
    return f" ({code})" if isinstance(code, str) and re.fullmatch(r"[a-z_]{1,40}", code) else ""


def credential_for(secret: str | dict, login: GatewayKind, post: Post, note: Note,
                   token_url: str | None = None, saved=None) -> Credential:
    """The credential object of a route, from its secret (a bare key or a login document)."""
    if isinstance(secret, str):
        return Credential(secret, login.prefix)
    if login.refresh is None:
        return Credential(secret["access_token"], login.prefix)
    return RefreshingCredential(secret, login, post, note, token_url, saved)


def secret_of_credential(credential: Credential | None, secret) -> dict:
    """The login document a route holds now (refreshed, if it was)."""
    if isinstance(credential, RefreshingCredential):
        return credential.doc
    return secret if isinstance(secret, dict) else {}


def add_login_headers(headers, login: GatewayKind, doc: dict) -> None:
    """The headers a login needs upstream beside its token: the required values, and those
    taken from the secret (set, replacing whatever the client sent)."""
    merge_required_headers(headers, login.required_headers)
    if login.secret_headers is not None:
        for name, value in login.secret_headers(doc).items():
            headers[name] = value


def merge_required_headers(headers, required: dict) -> None:
    """headers: a CIMultiDict going upstream. A comma list gets each required value added."""
    for name, value in required.items():
        present = [v.strip() for v in headers.get(name, "").split(",") if v.strip()]
        for item in (v.strip() for v in value.split(",")):
            if item not in present:
                present.append(item)
        headers[name] = ",".join(present)
