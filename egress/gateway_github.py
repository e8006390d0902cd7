"""The gateway's GitHub and package-registry routes: the run's GitHub token added to what the
policy (egress/github_policy.py) lets through, and nothing else.

One GitHub listener (port 80 by default) serves both hosts by name, as gh expects of
`GH_HOST=github.localhost`: `github.localhost` is git smart HTTP (to https://github.com) and
`api.github.localhost` the REST and GraphQL API (to https://api.github.com). Inside the container
git reaches it through `url.http://github.localhost/.insteadOf https://github.com/` (and the ssh
forms) with `http.curloptResolve` naming the gateway's address (libcurl sends *.localhost to its own
loopback), gh through GH_HOST and `--add-host`. Plain HTTP on the run's internal network, which only
the agent and the gateway are on: no CA to make or trust.

A registry route (npm by default) forwards GET and HEAD (and npm's audit query) to the registry
with no credential at all.

Config: `add_github_routes(config_text, policy, ...)` adds a "github" section to the JSON that
egress.gateway.render_gateway_config wrote; agent-gateway reads it with `parse_github_section` and
starts one `GitHubRouteHandler` per route.
"""
from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass

from aiohttp import web
from yarl import URL

from egress import gateway_rules as rules
from egress.gateway import PLACEHOLDER_KEY
from egress.github_policy import (MAX_INSPECTED_BODY, Decision, Policy, ReceivePackInspector, api_needs_body,
                                  check_api, check_git, check_registry)

GITHUB_SECRET = "github"
GITHUB_PORT = 80
GIT_HOST, API_HOST = "github.localhost", "api.github.localhost"
UPSTREAMS = {"git": "https://github.com", "api": "https://api.github.com", "npm": "https://registry.npmjs.org",
             "pypi": "https://pypi.org", "crates": "https://crates.io"}
REGISTRY_PORTS = {"npm": 8086, "pypi": 8087, "crates": 8088}
# Hosts reached only through the gateway: the proxy must not tunnel to them, or an agent could
# use a token of its own (say, one planted in an issue it reads) to push or publish elsewhere.
WALLED_HOSTS = ("github.com", "api.github.com", "registry.npmjs.org", "crates.io", "upload.pypi.org")
MAX_DRAINED_BYTES = 2 * 1024 ** 3       # GitHub's own push limit
# The gateway runs as uid 65532 with no capability; gh reaches github.localhost on port 80 only, so
# the gateway's container lets unprivileged processes bind from port 80 (a setting of its own
# network namespace).
GATEWAY_CREATE_ARGS = ("--sysctl", f"net.ipv4.ip_unprivileged_port_start={GITHUB_PORT}")


# --- config --------------------------------------------------------------------------------------

def add_github_routes(config_text: str, policy: Policy, *, with_token: bool = True, port: int = GITHUB_PORT,
                      registries=("npm",), registry_ports: dict | None = None, upstreams: dict | None = None,
                      tls_names: dict | None = None) -> str:
    """config.json with a "github" section: the policy and the routes (no secret in it).
    with_token False: a run without a GitHub credential; GitHub is still reached only through the
    gateway, anonymously (public reads), so no token the agent finds can be used from the run."""
    config = json.loads(config_text)
    used = {route["port"] for route in config["routes"]}
    routes = [{"name": "github", "kind": "github", "port": port}]
    for registry in registries:
        if registry not in REGISTRY_PORTS:
            raise ValueError(f"registry {registry!r}: expected some of {sorted(REGISTRY_PORTS)}")
        routes.append({"name": registry, "kind": "registry", "port": (registry_ports or {}).get(registry,
                                                                                         REGISTRY_PORTS[registry])})
    for route in routes:
        if not (isinstance(route["port"], int) and 0 < route["port"] < 65536) or route["port"] in used:
            raise ValueError(f"gateway port for {route['name']}: {route['port']!r} is not a free TCP port number")
        used.add(route["port"])
        names = ("git", "api") if route["kind"] == "github" else (route["name"],)
        route["upstreams"] = {n: _https_origin((upstreams or {}).get(n, UPSTREAMS[n]), n) for n in names}
        route["tls_names"] = {n: (tls_names or {}).get(n) for n in names}
    config["github"] = {"policy": policy.to_json(), "secret": GITHUB_SECRET if with_token else None, "routes": routes}
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def _https_origin(url: str, name: str) -> str:
    parsed = URL(url)
    if parsed.scheme not in ("https", "http") or not parsed.host or parsed.path not in ("", "/") or parsed.query_string:
        raise ValueError(f"upstream for {name} {url!r}: expected https://host[:port] with no path")
    return str(parsed.origin())


@dataclass(frozen=True)
class GitHubRoute:
    name: str
    kind: str                  # github | registry
    port: int
    upstreams: dict            # git/api, or the registry's name -> URL
    tls_names: dict


@dataclass(frozen=True)
class GitHubSection:
    policy: Policy
    secret: str | None         # the secret file's name; None: forward without a token
    routes: tuple


def parse_github_section(data, origin: str) -> GitHubSection | None:
    """The "github" section of config.json, or None when there is none. Raises ValueError naming
    the key (agent-gateway turns it into its ConfigError)."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"{origin}: key 'github' must be an object")
    try:
        policy = Policy.from_json(data["policy"])
        routes = []
        for index, raw in enumerate(data["routes"]):
            where = f"{origin}: github/routes/{index}"
            kind = raw["kind"]
            names = ("git", "api") if kind == "github" else (raw["name"],)
            if kind not in ("github", "registry") or (kind == "registry" and raw["name"] not in REGISTRY_PORTS):
                raise ValueError(f"{where}: kind {kind!r} / name {raw.get('name')!r} unknown")
            upstreams = {n: _https_origin(raw["upstreams"][n], n) for n in names}
            if not isinstance(raw["port"], int) or not 0 < raw["port"] < 65536:
                raise ValueError(f"{where}: key 'port' is not a TCP port")
            routes.append(GitHubRoute(raw["name"], kind, raw["port"], upstreams,
                                      {n: raw.get("tls_names", {}).get(n) for n in names}))
        secret = data["secret"]
        if secret is not None and not isinstance(secret, str):
            raise ValueError(f"{origin}: key github/secret must be a name or null")
    except (KeyError, TypeError) as error:
        raise ValueError(f"{origin}: key github/{error} missing or malformed") from None
    return GitHubSection(policy, secret, tuple(routes))


# --- the agent's side ------------------------------------------------------------------------------

def agent_environment(gateway_address: str | None = None, registry_host: str = "agent-gateway",
                      registries=("npm",), registry_ports: dict | None = None, repository: str | None = None) -> dict:
    """What git, gh and npm need inside the container to go through the gateway; no credential at
    all (gh needs none for github.localhost; the gateway adds the run's token and drops whatever
    a client sends). gateway_address: git (libcurl) resolves
    every *.localhost name to 127.0.0.1 itself, ignoring /etc/hosts, so git is told the gateway's
    address for github.localhost (http.curloptResolve); gh reads /etc/hosts (--add-host)."""
    base = f"http://{GIT_HOST}/"
    config = [(f"url.{base}.insteadOf", source) for source in
              ("https://github.com/", "http://github.com/", "git@github.com:", "ssh://git@github.com/",
               "git://github.com/")]
    if gateway_address:
        config += [("http.curloptResolve", f"{host}:{GITHUB_PORT}:{gateway_address}") for host in (GIT_HOST, API_HOST)]
    # GIT_CONFIG_PARAMETERS (what `git -c` passes to its children) rather than GIT_CONFIG_COUNT/
    # KEY_n/VALUE_n: Codex's shell drops every variable named like *KEY*, which left git with a
    # count and no keys (observed: "missing config key GIT_CONFIG_KEY_0").
    env = {"GIT_CONFIG_PARAMETERS": git_config_parameters(config)}
    env.update({"GH_HOST": GIT_HOST, "GH_PROMPT_DISABLED": "1", "GH_NO_UPDATE_NOTIFIER": "1"})
    if repository:
        env["GH_REPO"] = f"{GIT_HOST}/{repository}"
    if "npm" in registries:
        env["NPM_CONFIG_REGISTRY"] = f"http://{registry_host}:{(registry_ports or {}).get('npm', REGISTRY_PORTS['npm'])}/"
    return env


def git_config_parameters(pairs) -> str:
    """git's own encoding of command-line configuration: 'key'='value' pairs, single-quoted."""
    def quoted(text: str) -> str:
        return "'" + text.replace("'", "'\\''") + "'"
    return " ".join(f"{quoted(key)}={quoted(value)}" for key, value in pairs)


def parse_git_config_parameters(text: str) -> list[tuple[str, str]]:
    """The pairs of a GIT_CONFIG_PARAMETERS value written by git_config_parameters (tests, --print)."""
    import shlex
    return [tuple(word.split("=", 1)) for word in shlex.split(text)]


def gateway_hosts(gateway_address: str) -> list[str]:
    """--add-host entries for the agent container."""
    return [f"{GIT_HOST}:{gateway_address}", f"{API_HOST}:{gateway_address}"]


def proxy_allowlist(allow) -> list[str]:
    """The allowlist without the hosts the gateway serves. A `.domain` entry covering one of them is
    refused rather than narrowed: the proxy would still tunnel to it."""
    kept = []
    for entry in allow:
        host = entry.strip().lower()
        if host.startswith("."):
            covered = [h for h in WALLED_HOSTS if h.endswith(host) or h == host[1:]]
            if covered:
                raise ValueError(f"network.allow entry {entry!r} would let the proxy reach {covered[0]}, which only "
                                 f"the gateway may reach; list the hosts of that domain one by one")
        if host not in WALLED_HOSTS:
            kept.append(entry)
    return kept


# --- the handlers ----------------------------------------------------------------------------------

def listeners(section: GitHubSection | None, config, secrets: dict, log, context) -> list[tuple]:
    """(name, port, handlers, handle) per GitHub or registry route, for agent-gateway's serve():
    one handler per upstream (git, api, a registry), the GitHub listener choosing by Host."""
    if section is None:
        return []
    handler = handler_class()
    out = []
    for route in section.routes:
        if route.kind == "registry":
            only = handler(route, route.name, config, section, "", log, context)
            out.append((route.name, route.port, [only], only.handle))
            continue
        token = secrets[section.secret] if section.secret else ""
        git = handler(route, "git", config, section, token, log, context)
        api = handler(route, "api", config, section, token, log, context)

        async def by_host(request, git=git, api=api):
            host = (request.host or "").rsplit(":", 1)[0].lower()
            return await (api if host == API_HOST else git).handle(request)
        out.append((route.name, route.port, [git, api], by_host))
    return out


def handler_class():
    """GitHubRouteHandler, built on agent-gateway's RouteHandler (imported late: the server module
    imports this one)."""
    from egress.gateway_server import Route, RouteHandler

    class GitHubRouteHandler(RouteHandler):
        """One upstream: git (github.com), api (api.github.com) or a registry."""

        def __init__(self, route: GitHubRoute, upstream: str, config, section: GitHubSection, secret: str, log,
                     context):
            self.github_route, self.upstream_name, self.policy = route, upstream, section.policy
            base = Route(name=route.name if route.kind == "registry" else f"github-{upstream}", port=route.port,
                         upstream=URL(route.upstreams[upstream]).with_path("/"),
                         tls_name=route.tls_names.get(upstream), secret=section.secret, header="authorization",
                         prefix="", errors=route.name, endpoints=())
            super().__init__(base, config, secret or PLACEHOLDER_KEY, log, context)
            if secret and upstream == "git":
                self.credential = "Basic " + base64.b64encode(f"x-access-token:{secret}".encode()).decode()
            elif secret and upstream == "api":
                self.credential = f"Bearer {secret}"
            else:
                self.credential = None

        def _refuse(self, exchange, refusal: rules.Refusal) -> web.Response:
            exchange.status, exchange.decision = refusal.status, refusal.decision
            exchange.rule, exchange.reason = refusal.rule, refusal.reason
            body = json.dumps({"message": f"refused by the agent-sandbox gateway: {refusal.rule}: {refusal.reason}",
                               "agent_sandbox": {"rule": refusal.rule, "decision": refusal.decision,
                                                 "reason": refusal.reason}}).encode()
            exchange.bytes_down = len(body)
            return web.Response(status=refusal.status, body=body, content_type="application/json")

        def _deny(self, exchange, decision: Decision) -> web.Response:
            return self._refuse(exchange, rules.refuse(403, decision.log_decision, decision.rule, decision.reason))

        async def _handle(self, request: web.Request, exchange) -> web.StreamResponse:
            if not self._allowed_source(request.remote):
                return self._refuse(exchange, rules.refuse(403, "deny_source", "agent-subnets",
                                                           "the client is not in an agent subnet"))
            if "upgrade" in request.headers:
                return self._refuse(exchange, rules.refuse(426, "deny_upgrade", "endpoint-allowlist",
                                                           "the gateway forwards plain HTTP requests only"))
            path, query = request.rel_url.raw_path, request.rel_url.raw_query_string
            headers = dict(request.headers)
            if self.upstream_name == "api":
                return await self._api(request, exchange, path, headers)
            if self.upstream_name == "git":
                result = check_git(self.policy, request.method, path, query, headers)
                if isinstance(result, ReceivePackInspector):
                    return await self._push(request, exchange, result)
                return await self._decided(request, exchange, result)
            return await self._decided(request, exchange, check_registry(self.policy, self.upstream_name,
                                                                         request.method, path, headers))

        async def _api(self, request, exchange, path, headers):
            if not api_needs_body(request.method, path):
                return await self._decided(request, exchange, check_api(self.policy, request.method, path, headers))
            body = None
            if request.headers.get("content-encoding", "identity").strip().lower() == "identity":
                body = await self._read_at_most(request, exchange, MAX_INSPECTED_BODY + 1)
            decision = check_api(self.policy, request.method, path, headers, body)
            return await self._decided(request, exchange, decision, body=body or b"")

        async def _push(self, request, exchange, inspector: ReceivePackInspector):
            """Read until the command list decides; the pack is never read before that."""
            chunks, decision = [], None
            try:
                async with asyncio.timeout(self.limits["client_body_timeout_s"]):
                    while decision is None:
                        chunk = await request.content.read(65536)
                        if not chunk:
                            decision = inspector.finish()
                            break
                        chunks.append(chunk)
                        exchange.bytes_up += len(chunk)
                        decision = inspector.feed(chunk)
            except TimeoutError:
                decision = inspector.finish()
            if decision.allowed:
                return await self._decided(request, exchange, decision, body=self._rest(request, exchange, chunks))
            await self._drain(request, exchange)
            refusal = inspector.refusal()
            if refusal is None:
                return self._deny(exchange, decision)
            exchange.status, exchange.decision, exchange.rule, exchange.reason = \
                200, decision.log_decision, decision.rule, decision.reason
            exchange.bytes_down = len(refusal[1])
            return web.Response(status=200, body=refusal[1], headers={"Content-Type": refusal[0],
                                                                      "Cache-Control": "no-cache"})

        async def _rest(self, request, exchange, chunks):
            for chunk in chunks:
                yield chunk
            while chunk := await request.content.read(65536):
                exchange.bytes_up += len(chunk)
                yield chunk

        async def _drain(self, request, exchange) -> None:
            """Read a refused push to its end (bounded), so that git reads the refusal rather than
            a broken pipe."""
            try:
                async with asyncio.timeout(self.limits["client_body_timeout_s"]):
                    while chunk := await request.content.read(65536):
                        exchange.bytes_up += len(chunk)
                        if exchange.bytes_up > MAX_DRAINED_BYTES:
                            break
            except TimeoutError:
                pass

        async def _read_at_most(self, request, exchange, cap: int) -> bytes | None:
            chunks = []
            try:
                async with asyncio.timeout(self.limits["client_body_timeout_s"]):
                    while chunk := await request.content.read(65536):
                        chunks.append(chunk)
                        exchange.bytes_up += len(chunk)
                        if exchange.bytes_up >= cap:
                            break
            except TimeoutError:
                return None
            return b"".join(chunks)

        async def _decided(self, request, exchange, decision: Decision, body=None):
            if not decision.allowed:
                return self._deny(exchange, decision)
            exchange.rule, exchange.reason = decision.rule, decision.reason
            if body is None and request.can_read_body:
                body = self._rest(request, exchange, [])
            return await self._forward(request, exchange, body)

        def _upstream_headers(self, request: web.Request, streamed: bool = False) -> dict:
            headers = super()._upstream_headers(request, streamed)
            headers.pop("authorization", None)
            if self.credential:
                headers["Authorization"] = self.credential
            encoding = request.headers.get("content-encoding")
            if encoding:
                headers["Content-Encoding"] = encoding
            return headers

    return GitHubRouteHandler
