"""agent-gateway: the credential gateway, one route per model vendor.

    agent-gateway --config /etc/agent-gateway/config.json

Reads its config (egress.gateway.render_gateway_config) and, once, the credentials in the secrets
folder; listens on each route's port; creates the ready file when every route listens. Each request
from an agent subnet that matches one of the route's endpoints, with a body that asks the vendor to
fetch nothing, goes to the vendor over verified TLS with the client's credentials removed and the
real one added; the response streams back as it arrives. Everything else gets a JSON error that
names the rule. One JSON line per request goes to the access log, never a query string or a secret.

Python and aiohttp rather than nginx because the gateway reads request bodies (the server-side tool
refusal; next, git pkt-lines, GraphQL and OAuth refresh): see docs/egress.md.
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import errno
import ipaddress
import json
import os
import re
import resource
import signal
import ssl
import stat
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from egress import gateway_github, gateway_rules as rules, logins
from guard import __version__
from egress.gateway import CONFIG_FORMAT, CONFIG_PATH, DEFAULT_LIMITS, validate_key

PROG = "agent-gateway"
MAX_SECRET_BYTES = 64 * 1024
MAX_LOGGED_PATH = 512

# Never forwarded to the vendor: hop-by-hop headers, credentials of the client's choosing (another
# account), method overrides (a POST that the vendor would run as a DELETE), forwarding hints.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
              "host", "content-length", "expect", "content-encoding"}
CLIENT_CREDENTIALS = {"authorization", "proxy-authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie",
                      "x-goog-user-project", "x-goog-iam-authorization-token", "x-goog-iam-authority-selector",
                      "openai-organization", "openai-project"}
OVERRIDES = {"x-http-method-override", "x-http-method", "x-method-override"}
FORWARDING = {"forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip", "via"}
DROPPED_REQUEST_HEADERS = HOP_BY_HOP | CLIENT_CREDENTIALS | OVERRIDES | FORWARDING
DROPPED_RESPONSE_HEADERS = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
                            "upgrade", "content-length", "set-cookie"}


class BodyRefused(Exception):
    """A streamed request body broke a limit (the refusal is on the exchange)."""


class ConfigError(ValueError):
    """The config or a secret is unusable: the message names the file, the key and the fix."""


# --- config ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    name: str
    port: int
    upstream: URL
    tls_name: str | None
    secret: str
    header: str
    prefix: str
    errors: str
    endpoints: tuple[rules.Endpoint, ...]
    kind: str = "model"
    login: str = ""                       # the login kind (egress.logins); "" for GitHub's routes
    token_url: str | None = None          # the login's refresh endpoint, if not the kind's own
    answers: tuple[logins.Answer, ...] = ()


@dataclass(frozen=True)
class Config:
    listen_address: str
    agent_subnets: tuple
    model_server_tools: bool
    secrets_dir: str
    ready_file: str
    access_log: str
    ca_file: str | None
    limits: dict
    routes: tuple[Route, ...]
    github: gateway_github.GitHubSection | None = None     # GitHub and registry routes, if any
    renewed_dir: str | None = None        # where a refreshed login is left for the launcher


def _need(obj: dict, key: str, kind, where: str):
    if key not in obj:
        raise ConfigError(f"{where}: missing key {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{where}: key {key!r} must be {names}, not {type(value).__name__}")
    return value


def parse_config(text: str, origin: str = "config") -> Config:
    """The config as typed data; a ConfigError names the key that is wrong."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{origin}: not JSON ({error})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: not a JSON object")
    if data.get("format") != CONFIG_FORMAT:
        raise ConfigError(f"{origin}: key 'format' is {data.get('format')!r}; this agent-gateway reads "
                          f"format {CONFIG_FORMAT} (render it with egress.gateway.render_gateway_config)")
    try:
        subnets = tuple(ipaddress.ip_network(s) for s in _need(data, "agent_subnets", list, origin))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{origin}: key 'agent_subnets': {error}") from None
    if not subnets:
        raise ConfigError(f"{origin}: key 'agent_subnets' is empty: no client could be served")
    limits = dict(DEFAULT_LIMITS)
    for key, value in _need(data, "limits", dict, origin).items():
        if key not in DEFAULT_LIMITS or not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{origin}: key 'limits/{key}': expected one of {sorted(DEFAULT_LIMITS)} "
                              "with a positive number")
        limits[key] = value
    routes = []
    for index, route in enumerate(_need(data, "routes", list, origin)):
        where = f"{origin}: routes/{index}"
        if not isinstance(route, dict):
            raise ConfigError(f"{where}: not an object")
        upstream = URL(_need(route, "upstream", str, where))
        if upstream.scheme not in ("https", "http") or not upstream.host or upstream.path not in ("", "/"):
            raise ConfigError(f"{where}: key 'upstream' must be https://host[:port]")
        credential = _need(route, "credential", dict, where)
        endpoints = []
        for e_index, e in enumerate(_need(route, "endpoints", list, where)):
            e_where = f"{where}/endpoints/{e_index}"
            try:
                endpoint = rules.Endpoint(id=_need(e, "id", str, e_where), method=_need(e, "method", str, e_where),
                                          path=_need(e, "path", str, e_where), query=_need(e, "query", dict, e_where),
                                          body=e.get("body"))
                re.compile(endpoint.path)
                for pattern in endpoint.query.values():
                    re.compile(pattern)
            except (re.error, TypeError) as error:
                raise ConfigError(f"{e_where}: {error}") from None
            if endpoint.body is not None and endpoint.body not in rules.BODY_CHECKS:
                raise ConfigError(f"{e_where}: key 'body' {endpoint.body!r}: expected one of "
                                  f"{sorted(rules.BODY_CHECKS)}")
            endpoints.append(endpoint)
        port = _need(route, "port", int, where)
        if not 0 < port < 65536:
            raise ConfigError(f"{where}: key 'port' {port} is not a TCP port")
        errors = route.get("errors", "anthropic")
        kind = route.get("kind", "model")
        if kind not in ROUTE_KINDS:
            raise ConfigError(f"{where}: key 'kind' {kind!r}: expected one of {sorted(ROUTE_KINDS)}")
        login_name, token_url, answers = _login_of(route, credential, where)
        routes.append(Route(kind=kind, name=_need(route, "name", str, where), port=port,
                            upstream=upstream.with_path("/"), tls_name=route.get("tls_name"),
                            secret=_need(credential, "secret", str, f"{where}/credential"),
                            header=_need(credential, "header", str, f"{where}/credential").lower(),
                            prefix=_need(credential, "prefix", str, f"{where}/credential"),
                            errors=errors, endpoints=tuple(endpoints), login=login_name, token_url=token_url,
                            answers=answers))
    if not routes:
        raise ConfigError(f"{origin}: key 'routes' is empty")
    if len({r.port for r in routes}) != len(routes):
        raise ConfigError(f"{origin}: two routes share a port")
    ca_file = data.get("ca_file")
    if ca_file is not None and not isinstance(ca_file, str):
        raise ConfigError(f"{origin}: key 'ca_file' must be a path or null")
    renewed_dir = data.get("renewed_dir")
    if renewed_dir is not None and not (isinstance(renewed_dir, str) and renewed_dir.startswith("/")):
        raise ConfigError(f"{origin}: key 'renewed_dir' must be an absolute path or null")
    try:
        github = gateway_github.parse_github_section(data.get("github"), origin)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return Config(listen_address=_need(data, "listen_address", str, origin), agent_subnets=subnets,
                  model_server_tools=_need(data, "model_server_tools", bool, origin),
                  secrets_dir=_need(data, "secrets_dir", str, origin), ready_file=_need(data, "ready_file", str, origin),
                  access_log=_need(data, "access_log", str, origin), ca_file=ca_file, limits=limits,
                  routes=tuple(routes), github=github, renewed_dir=renewed_dir)


def _login_of(route: dict, credential: dict, where: str) -> tuple[str, str | None, tuple]:
    """The route's login kind (default: its vendor's API key), its token URL and the calls the
    gateway answers itself (each named in the config and known to the kind)."""
    name = credential.get("login")
    if name is None:
        name = logins.API_KEY_KINDS.get(route.get("name"), "")
        if not name:
            return "", None, ()
    try:
        kind = logins.kind(name if isinstance(name, str) else "")
    except logins.LoginError as error:
        raise ConfigError(f"{where}/credential: key 'login': {error}") from None
    token_url = credential.get("token_url")
    if token_url is not None and not (isinstance(token_url, str) and URL(token_url).scheme in ("https", "http")):
        raise ConfigError(f"{where}/credential: key 'token_url' must be an http(s) URL or null")
    by_id = {a.id: a for a in kind.answers}
    answers = []
    for index, answer in enumerate(route.get("answers") or []):
        known = by_id.get(answer.get("id")) if isinstance(answer, dict) else None
        if known is None:
            raise ConfigError(f"{where}/answers/{index}: not a call the login {name} answers "
                              f"(known: {sorted(by_id)})")
        answers.append(known)
    return name, token_url, tuple(answers)


def read_secret_file(folder: str, name: str) -> str | dict:
    """One credential: a regular file (no symlink, no FIFO) that only its owner, this process's
    user, can read. Errors name the file, never its content."""
    path = os.path.join(folder, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as error:
        problem = "a symbolic link" if error.errno == errno.ELOOP else error.strerror
        raise ConfigError(f"secret {name!r} ({path}): {problem}; the launcher writes one regular file per "
                          "credential into the secrets folder") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"secret {name!r} ({path}): not a regular file")
        if info.st_mode & 0o077 or info.st_uid != os.geteuid():
            raise ConfigError(f"secret {name!r} ({path}): mode {stat.S_IMODE(info.st_mode):04o} owner "
                              f"{info.st_uid}; it must be 0400 (or 0600) and owned by uid {os.geteuid()}, "
                              "which runs the gateway")
        data = os.read(fd, MAX_SECRET_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_BYTES:
        raise ConfigError(f"secret {name!r} ({path}): larger than {MAX_SECRET_BYTES} bytes")
    try:
        text = data.decode("ascii")
        if text.lstrip().startswith("{"):
            return logins.parse_secret(text, f"secret file {path}")
        return validate_key(name, text, f"secret file {path}")
    except (UnicodeDecodeError, ValueError) as error:
        raise ConfigError(str(error) if isinstance(error, ValueError) and not isinstance(error, UnicodeDecodeError)
                          else f"secret {name!r} ({path}): not ASCII") from None


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verification on, TLS 1.2 or newer; roots from ca_file, else certifi's bundle (pinned with
    the project, so the image needs no CA package of its own)."""
    if ca_file is None:
        import certifi
        ca_file = certifi.where()
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(f"ca_file {ca_file}: {error}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# --- the access log --------------------------------------------------------------------------------

class AccessLog:
    """JSON lines, one write(2) each on an O_APPEND descriptor: lines never interleave."""

    def __init__(self, path: str):
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640)
        except OSError as error:
            raise ConfigError(f"access_log {path}: {error.strerror}") from None
        if not stat.S_ISREG(os.fstat(self.fd).st_mode):
            os.close(self.fd)
            raise ConfigError(f"access_log {path}: not a regular file")

    def write(self, entry: dict) -> None:
        try:
            os.write(self.fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())
        except OSError as error:
            print(f"{PROG}: cannot write the access log: {error.strerror}", file=sys.stderr)

    def close(self) -> None:
        os.close(self.fd)


# --- requests ----------------------------------------------------------------------------------------

@dataclass
class Exchange:
    """What the log line says about one request."""
    route: Route
    client: str
    method: str
    path: str
    started: float = field(default_factory=time.monotonic)
    status: int = 0
    decision: str = "forward"
    rule: str = ""
    reason: str = ""
    bytes_up: int = 0
    bytes_down: int = 0
    body_refusal: rules.Refusal | None = None

    def entry(self) -> dict:
        path = self.path if len(self.path) <= MAX_LOGGED_PATH else self.path[:MAX_LOGGED_PATH] + "..."
        now = time.time()
        return {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
                "client": self.client, "vendor": self.route.name, "method": self.method, "path": path,
                "status": self.status, "decision": self.decision, "rule": self.rule, "reason": self.reason,
                "bytes_up": self.bytes_up, "bytes_down": self.bytes_down,
                "duration_ms": round((time.monotonic() - self.started) * 1000, 1)}


class RouteHandler:
    def __init__(self, route: Route, config: Config, secret: str | dict, log: AccessLog, context: ssl.SSLContext):
        self.route, self.config, self.log = route, config, log
        self.secret = secret
        # A model route's credential is its login's (egress.logins): a key, or a token it refreshes.
        self.login = logins.kind(route.login) if route.login else None
        self.login_credential: logins.Credential | None = None
        self.credential = route.prefix + secret if isinstance(secret, str) else None
        self.limits = config.limits
        self.context = context
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(ssl=self.context, limit=int(self.limits["upstream_connections"]),
                                         keepalive_timeout=60, ttl_dns_cache=60, force_close=False)
        # auto_decompress off: the bytes the vendor sends are the bytes the CLI gets.
        self.session = aiohttp.ClientSession(connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                                             skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"))
        if self.login is not None:
            self.login_credential = logins.credential_for(self.secret, self.login, self._post_token, self._note,
                                                          self.route.token_url, self._save_renewed)

    async def _post_token(self, url: str, fields: dict, body: str) -> tuple[int, bytes]:
        """A refresh request, with the route's TLS settings; the answer is read up to a cap."""
        form = {"json": fields} if body == "json" else {"data": fields}
        async with self.session.post(url, **form, allow_redirects=False,
                                     headers={"Accept": "application/json", "User-Agent": PROG},
                                     timeout=aiohttp.ClientTimeout(total=logins.REFRESH_TIMEOUT_S)) as answer:
            return answer.status, await answer.content.read(logins.MAX_REFRESH_RESPONSE + 1)

    def _note(self, entry: dict) -> None:
        now = time.time()
        self.log.write({"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
                        "vendor": self.route.name, **entry})

    def _save_renewed(self, doc: dict) -> None:
        """The refreshed login, for the launcher to give back to the user's own CLI (whose refresh
        token the vendor may have rotated); in a tmpfs folder the launcher reads at the end."""
        folder = self.config.renewed_dir
        if not folder:
            return
        tmp = os.path.join(folder, f".{self.route.secret}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(json.dumps(doc, sort_keys=True))
            os.replace(tmp, os.path.join(folder, self.route.secret))
        except OSError as error:
            print(f"{PROG}: cannot leave the refreshed login for the launcher: {error.strerror}", file=sys.stderr)

    async def close(self) -> None:
        if self.session:
            await self.session.close()

    def _allowed_source(self, remote: str | None) -> bool:
        try:
            address = ipaddress.ip_address((remote or "").split("%")[0])
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in subnet for subnet in self.config.agent_subnets)

    def _refuse(self, exchange: Exchange, refusal: rules.Refusal) -> web.Response:
        exchange.status, exchange.decision = refusal.status, refusal.decision
        exchange.rule, exchange.reason = refusal.rule, refusal.reason
        body = rules.error_body(self.route.errors, refusal)
        exchange.bytes_down = len(body)
        headers = {"Upgrade": "HTTP/1.1", "Connection": "close"} if refusal.status == 426 else None
        return web.Response(status=refusal.status, body=body, content_type="application/json", headers=headers)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        url = request.rel_url
        exchange = Exchange(self.route, request.remote or "", request.method, url.raw_path)
        try:
            return await self._handle(request, exchange)
        finally:
            self.log.write(exchange.entry())

    async def _handle(self, request: web.Request, exchange: Exchange) -> web.StreamResponse:
        if not self._allowed_source(request.remote):
            return self._refuse(exchange, rules.refuse(403, "deny_source", "agent-subnets",
                                                       "the client is not in an agent subnet"))
        if "upgrade" in request.headers:
            return self._refuse(exchange, rules.refuse(
                426, "deny_upgrade", "endpoint-allowlist",
                "the gateway forwards plain HTTPS requests only (no WebSocket); send the request as HTTP"))
        for answer in self.route.answers:
            if answer.method == request.method and re.fullmatch(answer.path, request.rel_url.raw_path):
                return self._answer(exchange, answer)
        endpoint, refusal = rules.match_endpoint(self.route.endpoints, request.method, request.rel_url.raw_path)
        if refusal:
            return self._refuse(exchange, refusal)
        raw_query = request.rel_url.raw_query_string
        refusal = (rules.check_query(endpoint, parse_qsl(raw_query, keep_blank_values=True))
                   or rules.check_headers(self.route.name, list(request.headers.items()),
                                          self.config.model_server_tools))
        if refusal:
            return self._refuse(exchange, refusal)
        exchange.rule = f"{self.route.name}:{endpoint.id}"
        if endpoint.body is None:
            # Nothing in the body decides: it streams through as it arrives, within the limits.
            return await self._forward(request, exchange, self._stream_body(request, exchange), streamed=True)
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding != "identity":
            return self._refuse(exchange, rules.refuse(415, "deny_body", "body-format",
                                                       f"content-encoding {rules._short(encoding)!r}: the gateway "
                                                       "reads bodies, send them uncompressed"))
        body, refusal = await self._read_body(request, exchange)
        if refusal is None:
            refusal = rules.check_body(endpoint.body, body, self.config.model_server_tools)
        if refusal:
            return self._refuse(exchange, refusal)
        return await self._forward(request, exchange, body)

    def _answer(self, exchange: Exchange, answer: logins.Answer) -> web.Response:
        """A start-up call the login's kind answers itself: nothing of it reaches the vendor."""
        status, payload, *extra = answer.respond(logins.secret_of_credential(self.login_credential, self.secret))
        body = json.dumps(payload).encode()
        exchange.status, exchange.decision, exchange.bytes_down = status, "answer", len(body)
        exchange.rule, exchange.reason = f"{self.route.name}:{answer.id}", "answered by the gateway"
        return web.Response(status=status, body=body, content_type="application/json",
                            headers=extra[0] if extra else None)

    def _too_large(self) -> rules.Refusal:
        cap = int(self.limits["max_request_bytes"])
        return rules.refuse(413, "deny_too_large", "request-size", f"the request body is larger than {cap} bytes")

    def _too_slow(self) -> rules.Refusal:
        return rules.refuse(408, "deny_timeout", "request-time",
                            f"the request body took longer than {self.limits['client_body_timeout_s']} s")

    async def _stream_body(self, request: web.Request, exchange: Exchange):
        """The body as it arrives; past a limit, the refusal is noted and the upload cut."""
        cap = int(self.limits["max_request_bytes"])
        while True:
            try:
                async with asyncio.timeout(self.limits["client_body_timeout_s"]):
                    chunk = await request.content.read(65536)
            except TimeoutError:
                exchange.body_refusal = self._too_slow()
                raise BodyRefused() from None
            if not chunk:
                return
            exchange.bytes_up += len(chunk)
            if exchange.bytes_up > cap:
                exchange.body_refusal = self._too_large()
                raise BodyRefused()
            yield chunk

    async def _read_body(self, request: web.Request, exchange: Exchange) -> tuple[bytes, rules.Refusal | None]:
        cap = int(self.limits["max_request_bytes"])
        too_large = self._too_large()
        if request.content_length is not None and request.content_length > cap:
            return b"", too_large
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.limits["client_body_timeout_s"]):
                while chunk := await request.content.read(65536):
                    size += len(chunk)
                    exchange.bytes_up = size
                    if size > cap:
                        return b"", too_large
                    chunks.append(chunk)
        except TimeoutError:
            return b"", self._too_slow()
        return b"".join(chunks), None

    def _upstream_headers(self, request: web.Request, streamed: bool = False) -> CIMultiDict:
        declared_hop = {h.strip().lower() for h in request.headers.get("connection", "").split(",")}
        headers = CIMultiDict()
        for name, value in request.headers.items():
            lower = name.lower()
            if lower in DROPPED_REQUEST_HEADERS or lower in declared_hop:
                if not (streamed and lower == "content-encoding"):  # a streamed body goes as it came
                    continue
            headers.add(name, value)
        if self.credential is not None:
            headers[self.route.header] = self.credential
        headers["Host"] = self.route.tls_name or self.route.upstream.raw_authority
        return headers

    async def _forward(self, request: web.Request, exchange: Exchange, body, streamed: bool = False) -> web.StreamResponse:
        target = URL(str(self.route.upstream).rstrip("/") + request.rel_url.raw_path_qs, encoded=True)
        timeout = aiohttp.ClientTimeout(total=None, connect=self.limits["connect_timeout_s"],
                                        sock_read=self.limits["upstream_idle_timeout_s"])
        response = web.StreamResponse()
        # A body held in memory can be sent again once after a 401 and a refresh.
        retry = self.login_credential is not None and isinstance(body, bytes)
        try:
            async with asyncio.timeout(self.limits["request_timeout_s"]):
                headers = self._upstream_headers(request, streamed=streamed)
                value = await self._add_login(headers)
                async with self.session.request(request.method, target, data=body, timeout=timeout,
                                                headers=headers, allow_redirects=False,
                                                server_hostname=self.route.tls_name) as first:
                    if not (first.status == 401 and retry
                            and await self.login_credential.refresh_after_rejection(value)):
                        return await self._relay(request, exchange, response, first)
                exchange.reason = "the vendor refused the token; sent again once with a refreshed one"
                await self._add_login(headers)
                async with self.session.request(request.method, target, data=body, timeout=timeout,
                                                headers=headers, allow_redirects=False,
                                                server_hostname=self.route.tls_name) as upstream:
                    return await self._relay(request, exchange, response, upstream)
        except BodyRefused:
            return self._refuse(exchange, exchange.body_refusal)
        except ConnectionError:
            if response.prepared:
                exchange.reason = "the client closed the connection mid-response"
                return response
            return self._upstream_failure(request, exchange, response, 502, "the vendor closed the connection")
        except aiohttp.ClientConnectorCertificateError:
            return self._upstream_failure(request, exchange, response, 502, "the vendor's TLS certificate did not verify")
        except aiohttp.ClientSSLError as error:
            return self._upstream_failure(request, exchange, response, 502,
                                          f"TLS to the vendor failed ({type(error).__name__})")
        except TimeoutError:
            return self._upstream_failure(request, exchange, response, 504, "the vendor did not answer in time")
        except aiohttp.ClientError as error:
            if exchange.body_refusal is not None and not response.prepared:
                return self._refuse(exchange, exchange.body_refusal)
            return self._upstream_failure(request, exchange, response, 502,
                                          f"the vendor could not be reached ({type(error).__name__})")

    async def _add_login(self, headers: CIMultiDict) -> str | None:
        """The login's current token (refreshed first if due) and the headers it needs."""
        if self.login_credential is None:
            return None
        value = await self.login_credential.current()
        headers[self.route.header] = value
        logins.add_login_headers(headers, self.login, logins.secret_of_credential(self.login_credential, self.secret))
        return value

    async def _relay(self, request: web.Request, exchange: Exchange, response: web.StreamResponse,
                     upstream: aiohttp.ClientResponse) -> web.StreamResponse:
        response.set_status(upstream.status, upstream.reason)
        for name, value in upstream.headers.items():
            if name.lower() not in DROPPED_RESPONSE_HEADERS:
                response.headers.add(name, value)
        if upstream.content_length is not None:
            response.content_length = upstream.content_length
        exchange.status = upstream.status
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
            exchange.bytes_down += len(chunk)
        await response.write_eof()
        return response

    def _upstream_failure(self, request: web.Request, exchange: Exchange, response: web.StreamResponse,
                          status: int, reason: str) -> web.StreamResponse:
        if response.prepared:
            # The status is already sent: cutting the connection is the only signal left.
            exchange.reason = f"{reason} (mid-response)"
            if request.transport is not None:
                request.transport.close()
            return response
        exchange.status, exchange.reason = status, reason
        body = rules.error_body(self.route.errors, rules.refuse(status, "forward", "upstream", reason))
        exchange.bytes_down = len(body)
        return web.Response(status=status, body=body, content_type="application/json")


# A route's kind names its handler: "model" for the vendors' APIs. Another kind (GitHub's git and
# REST, a registry) subclasses RouteHandler and registers here.
ROUTE_KINDS: dict[str, type[RouteHandler]] = {"model": RouteHandler}


# --- the process ---------------------------------------------------------------------------------------

def harden_process() -> None:
    """No core dumps and no ptrace or /proc/PID/mem by other processes of the same user: the
    credentials live in this process's memory."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_dumpable = 4
        libc.prctl(pr_set_dumpable, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _write_ready(path: str, config: Config) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as out:
        ports = {r.name: r.port for r in (*config.routes, *(config.github.routes if config.github else ()))}
        json.dump({"pid": os.getpid(), "ports": ports}, out)
        out.write("\n")
    os.replace(tmp, path)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


async def serve(config: Config, secrets: dict[str, str], stop: asyncio.Event) -> None:
    log = AccessLog(config.access_log)
    context = tls_context(config.ca_file)
    handlers, runners = [], []
    listeners = [(route.name, route.port, [ROUTE_KINDS[route.kind](route, config, secrets[route.secret], log, context)])
                 for route in config.routes]
    listeners = [(name, port, route_handlers, route_handlers[0].handle) for name, port, route_handlers in listeners]
    listeners += gateway_github.listeners(config.github, config, secrets, log, context)
    try:
        for name, port, route_handlers, handle in listeners:
            for handler in route_handlers:
                await handler.start()
                handlers.append(handler)
            app = web.Application(client_max_size=int(config.limits["max_request_bytes"]) + 1)
            app.router.add_route("*", "/{tail:.*}", handle)
            # auto_decompress off: a body goes upstream as the client sent it (and a compressed
            # body to an endpoint whose body is judged is refused, not inflated).
            runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=75,
                                   auto_decompress=False)
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, config.listen_address, port, reuse_address=True)
            try:
                await site.start()
            except OSError as error:
                raise ConfigError(f"route {name}: cannot listen on {config.listen_address}:{port}: "
                                  f"{error.strerror}") from None
        _write_ready(config.ready_file, config)
        print(f"{PROG}: ready: " + ", ".join(f"{r.name} on {config.listen_address}:{r.port} -> {r.upstream}"
                                             for r in config.routes), file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        _remove(config.ready_file)
        for runner in runners:
            await runner.cleanup()
        for handler in handlers:
            await handler.close()
        log.close()


def load(config_path: str) -> tuple[Config, dict[str, str]]:
    try:
        fd = os.open(config_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd) as source:
            if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
                raise ConfigError(f"config {config_path}: not a regular file")
            text = source.read(1024 * 1024)
    except OSError as error:
        raise ConfigError(f"config {config_path}: {error.strerror}") from None
    config = parse_config(text, f"config {config_path}")
    secrets = {route.secret: read_secret_file(config.secrets_dir, route.secret) for route in config.routes}
    for route in config.routes:
        secret = secrets[route.secret]
        if isinstance(secret, dict) and secret.get("kind") != route.login:
            raise ConfigError(f"secret {route.secret!r}: holds a {secret.get('kind')} login, but route {route.name} "
                              f"is configured for {route.login or 'an API key'}; the launcher writes both together")
        if isinstance(secret, str) and route.login and logins.kind(route.login).refresh is not None:
            raise ConfigError(f"secret {route.secret!r}: a bare key, but route {route.name} is configured for the "
                              f"login {route.login}, which needs its JSON document")
    if config.github and config.github.secret:
        secrets[config.github.secret] = read_secret_file(config.secrets_dir, config.github.secret)
    return config, secrets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="The credential gateway: forwards the agent's model "
                                     "requests to each vendor with the real credential, and nothing else.")
    parser.add_argument("--config", default=CONFIG_PATH, help=f"the JSON config (default {CONFIG_PATH})")
    parser.add_argument("--check", action="store_true", help="read the config and the secrets, then exit")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    harden_process()
    try:
        config, secrets = load(args.config)
        if args.check:
            print(f"{PROG}: {args.config}: {len(config.routes)} route(s), every secret readable", file=sys.stderr)
            return 0
        _remove(config.ready_file)
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(signum, stop.set)
        try:
            loop.run_until_complete(serve(config, secrets, stop))
        finally:
            loop.close()
        return 0
    except ConfigError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
