"""A fake GitHub for the tests, judged by effect.

Two HTTP servers on loopback sharing one state: `api_url` (the REST and GraphQL API, the App
endpoints) and `git_url` (git smart HTTP through the real `git http-backend` CGI, on bare
repositories under root/OWNER/NAME.git). Like GitHub it:
- verifies an App's JWT against the app's public key (RS256 only, issuer = the app id, at most
  ten minutes long, not expired) and issues installation tokens (`ghs_...`, one hour) with the
  requested repositories and permissions, refusing a request that narrows neither, or asks for
  more than the installation has;
- requires a token for everything and checks its repositories and permissions per endpoint;
- revokes a token on `DELETE /installation/token`.
Every change is appended to `effects` (refs changed, repository deleted/archived/renamed/edited,
secrets and variables read or written, releases deleted, pull requests, issues and comments
created) so a test asserts what happened, not what a client printed.

`gate(request)` (optional) runs before anything is served and returns None to serve the request
or (status, headers, body) to answer instead: the tests put egress.github_policy there to prove
the policy on real clients' bytes.
"""
from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import graphql
import jwt

GIT_BACKEND = "/usr/lib/git-core/git-http-backend"
# GitHub refuses a push that adds or changes a workflow file unless the token holds the
# `workflows` permission (a workflow run on push would otherwise reach the repository's secrets).
WORKFLOW_HOOK = r"""#!/bin/sh
[ "$FAKE_GITHUB_WORKFLOWS" = write ] && exit 0
zero=0000000000000000000000000000000000000000
while read -r old new ref; do
    [ "$new" = "$zero" ] && continue
    if [ "$old" = "$zero" ]; then range="$new --not --all"; else range="$old..$new"; fi
    if git log --format= --name-only $range | grep -q '^\.github/workflows/'; then
        echo "refusing to allow a GitHub App to create or update workflow without workflows permission" >&2
        exit 1
    fi
done
"""
TOKEN_LIFETIME = 3600
LEVELS = {"read": 1, "write": 2, "admin": 3}


@dataclass
class Token:
    value: str
    repositories: set | None          # lower-case "owner/name"; None = every repository
    permissions: dict                 # name -> read | write | admin
    expires_at: float
    installation: int | None = None
    revoked: bool = False

    def allows(self, repository: str | None, permission: str, level: str) -> bool:
        if self.revoked or time.time() >= self.expires_at:
            return False
        if repository is not None and self.repositories is not None and repository.lower() not in self.repositories:
            return False
        return LEVELS.get(self.permissions.get(permission, ""), 0) >= LEVELS[level]


@dataclass
class Installation:
    id: int
    account: str
    repositories: list                # names ("owner/name")
    permissions: dict


@dataclass
class Request:
    server: str                       # api | git
    method: str
    path: str
    query: str
    headers: dict
    body: bytes


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class FakeGitHub:
    root: Path
    app_id: int
    public_key_pem: bytes
    installations: list = field(default_factory=list)
    gate: object = None
    effects: list = field(default_factory=list)
    tokens: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)
    repos: dict = field(default_factory=dict)        # "owner/name" lower -> settings dict
    lock: threading.Lock = field(default_factory=threading.Lock)
    effects_file: Path | None = None                 # each effect also as a JSON line (run standalone)

    # --- set-up ----------------------------------------------------------------------------------

    def create_repository(self, full_name: str, branches: dict | None = None, diverged: tuple = ()) -> Path:
        """A bare repository with one commit on main (and the given extra branches -> same commit;
        each `diverged` branch one commit further that main does not have: pushing main's history
        there is a forced update)."""
        owner, name = full_name.split("/")
        bare = self.root / owner / f"{name}.git"
        bare.parent.mkdir(parents=True, exist_ok=True)
        _git("init", "-q", "--bare", "-b", "main", str(bare))
        _git("-C", str(bare), "config", "http.receivepack", "true")
        hook = bare / "hooks" / "pre-receive"
        hook.write_text(WORKFLOW_HOOK)
        hook.chmod(0o755)
        work = self.root / ".seed" / full_name
        _git("init", "-q", "-b", "main", str(work))
        (work / "README.md").write_text(f"# {name}\n")
        _git("-C", str(work), "add", "README.md")
        _git("-C", str(work), "-c", "user.name=seed", "-c", "user.email=seed@example.com", "commit", "-q", "-m", "seed")
        _git("-C", str(work), "push", "-q", str(bare), "main", *[f"main:refs/heads/{b}" for b in branches or {}])
        for branch in diverged:
            _git("-C", str(work), "-c", "user.name=seed", "-c", "user.email=seed@example.com", "commit", "-q",
                 "--allow-empty", "-m", f"only on {branch}")
            _git("-C", str(work), "push", "-q", str(bare), f"HEAD:refs/heads/{branch}")
            _git("-C", str(work), "reset", "-q", "--hard", "HEAD~1")
        self.repos[full_name.lower()] = {"full_name": full_name, "archived": False, "private": True,
                                         "default_branch": "main", "secrets": {"DEPLOY_KEY": "s3cret"},
                                         "variables": {"ENV": "prod"}, "releases": {1: {"assets": [7]}},
                                         "id": len(self.repos) + 1000}
        return bare

    def bare(self, full_name: str) -> Path:
        owner, name = full_name.split("/")
        return self.root / owner / f"{name}.git"

    def refs(self, full_name: str) -> dict:
        out = _git("-C", str(self.bare(full_name)), "for-each-ref", "--format=%(objectname) %(refname)")
        return {line.split(" ", 1)[1]: line.split(" ", 1)[0] for line in out.splitlines() if line}

    def issue_token(self, repositories: list | None, permissions: dict, lifetime: float = TOKEN_LIFETIME,
                    prefix: str = "ghs_") -> str:
        value = prefix + secrets.token_urlsafe(27).replace("-", "A").replace("_", "B")
        self.tokens[value] = Token(value, None if repositories is None else {r.lower() for r in repositories},
                                   dict(permissions), time.time() + lifetime)
        return value

    def effect(self, kind: str, **details) -> None:
        with self.lock:
            self.effects.append({"kind": kind, **details, "time": time.time()})
            if self.effects_file is not None:
                with open(self.effects_file, "a") as out:
                    out.write(json.dumps(self.effects[-1]) + "\n")

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.effects]

    # --- servers ---------------------------------------------------------------------------------

    def start(self, address: str = "127.0.0.1", ports: tuple[int, int] = (0, 0),
              combined_port: int | None = None) -> "FakeGitHub":
        """combined_port: also one listener for both, by host name as github.com and
        api.github.com are told apart (api.* is the API): what a client holding the token itself
        would reach, with no gateway between."""
        self._servers = [_listen(_handler(self, role), address, port) for role, port in zip(("api", "git"), ports)]
        self.api_url = f"http://{address}:{self._servers[0].server_address[1]}"
        self.git_url = f"http://{address}:{self._servers[1].server_address[1]}"
        if combined_port is not None:
            self._servers.append(_listen(_handler(self, None), address, combined_port))
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    # --- authentication --------------------------------------------------------------------------

    def app_jwt(self, headers: dict) -> None:
        """GitHub's checks on an App JWT; raises Refused(401) like GitHub does."""
        token = _bearer(headers)
        if token is None:
            raise Refused(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(token, self.public_key_pem, algorithms=["RS256"], issuer=str(self.app_id),
                                options={"require": ["iat", "exp", "iss"]}, leeway=0)
        except jwt.InvalidTokenError as error:
            raise Refused(401, f"A JSON web token could not be decoded ({type(error).__name__})") from None
        if claims["exp"] - claims["iat"] > 600 + 60:
            raise Refused(401, "'Expiration time' claim ('exp') is too far in the future")

    def token_for(self, headers: dict, repository: str | None, permission: str, level: str) -> Token:
        value = _bearer(headers) or _basic_password(headers)
        token = self.tokens.get(value or "")
        if token is None or token.revoked or time.time() >= token.expires_at:
            raise Refused(401, "Bad credentials")
        if not token.allows(repository, permission, level):
            raise Refused(403, "Resource not accessible by integration")
        return token

    # --- the App endpoints -----------------------------------------------------------------------

    def installation(self, installation_id: int) -> Installation:
        for inst in self.installations:
            if inst.id == installation_id:
                return inst
        raise Refused(404, "Not Found")

    def access_tokens(self, installation_id: int, body: dict) -> dict:
        inst = self.installation(installation_id)
        names = body.get("repositories")
        permissions = body.get("permissions")
        if not names or not permissions:
            # GitHub would grant every repository and permission of the installation: the client
            # must narrow both, so the fake refuses an unscoped request.
            raise Refused(422, "unscoped token request: name repositories and permissions")
        full = [f"{inst.account}/{n}" for n in names]
        unknown = [f for f in full if f.lower() not in {r.lower() for r in inst.repositories}]
        if unknown:
            raise Refused(422, f"There is at least one repository that does not exist or is not accessible "
                               f"to the parent installation: {unknown}")
        for name, level in permissions.items():
            if LEVELS.get(inst.permissions.get(name, ""), 0) < LEVELS.get(level, 99):
                raise Refused(422, "The permissions requested are not granted to this installation.")
        value = self.issue_token(full, permissions)
        self.tokens[value].installation = installation_id
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.tokens[value].expires_at))
        self.effect("token-issued", installation=installation_id, repositories=full, permissions=permissions,
                    fingerprint=value[-8:])
        return {"token": value, "expires_at": expires, "permissions": permissions, "repository_selection": "selected",
                "repositories": [{"name": n, "full_name": f} for n, f in zip(names, full)]}


def _git(*args: str, env: dict | None = None) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, env=env, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr}")
    return done.stdout


def _bearer(headers: dict) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, credential = value.partition(" ")
    return credential.strip() if scheme.lower() in ("bearer", "token") and credential else None


def _basic_password(headers: dict) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, credential = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(credential).decode().partition(":")[2]
    except ValueError:
        return None


# --- the REST and GraphQL API --------------------------------------------------------------------

def _repo_settings(fake: FakeGitHub, owner: str, name: str) -> dict:
    settings = fake.repos.get(f"{owner}/{name}".lower())
    if settings is None:
        raise Refused(404, "Not Found")
    return settings


def _api(fake: FakeGitHub, request: Request) -> tuple[int, object]:
    method, path, headers = request.method, request.path.rstrip("/") or "/", request.headers
    body = json.loads(request.body) if request.body.strip() else {}
    if m := re.fullmatch(r"/app/installations/(\d+)/access_tokens", path):
        fake.app_jwt(headers)
        return 201, fake.access_tokens(int(m.group(1)), body)
    if m := re.fullmatch(r"/repos/([^/]+)/([^/]+)/installation", path):
        fake.app_jwt(headers)
        for inst in fake.installations:
            if f"{m.group(1)}/{m.group(2)}".lower() in {r.lower() for r in inst.repositories}:
                return 200, {"id": inst.id, "account": {"login": inst.account}}
        raise Refused(404, "Not Found")
    if path == "/installation/token" and method == "DELETE":
        token = fake.token_for(headers, None, "metadata", "read")
        token.revoked = True
        fake.effect("token-revoked", installation=token.installation)
        return 204, None
    if path == "/graphql" and method == "POST":
        return _graphql(fake, headers, body)
    m = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", path)
    if not m:
        raise Refused(404, "Not Found")
    owner, name, rest = m.group(1), m.group(2), m.group(3) or ""
    repository = f"{owner}/{name}"
    settings = _repo_settings(fake, owner, name)

    def need(permission: str, level: str) -> None:
        fake.token_for(headers, repository, permission, level)

    if rest == "":
        if method == "GET":
            need("metadata", "read")
            return 200, {k: settings[k] for k in ("full_name", "archived", "private", "default_branch", "id")}
        if method == "DELETE":
            # Recorded, not carried out: every later request is judged on its own.
            need("administration", "write")
            fake.effect("repo-deleted", repository=repository)
            return 204, None
        if method == "PATCH":
            need("administration", "write")
            for key, value in body.items():
                kind = {"archived": "repo-archived", "name": "repo-renamed"}.get(key, "repo-edited")
                settings[key] = value
                fake.effect(kind, repository=repository, key=key, value=value)
            return 200, {"full_name": settings["full_name"]}
    if rest == "/actions/secrets/public-key" and method == "GET":
        need("secrets", "read")
        fake.effect("secret-read", repository=repository, name="public-key")
        return 200, {"key_id": "568250167242549743", "key": base64.b64encode(b"k" * 32).decode()}
    if (m := re.fullmatch(r"/releases/tags/([^/]+)", rest)) and method == "GET":
        need("contents", "read")
        host = request.headers.get("host", "api.github.com")
        return 200, {"id": 1, "tag_name": m.group(1), "draft": False,
                     "url": f"http://{host}/repos/{repository}/releases/1", "assets": [{"id": 7}]}
    if m := re.fullmatch(r"/actions/(secrets|variables)(?:/([^/]+))?", rest):
        what = "secret" if m.group(1) == "secrets" else "variable"
        permission = "secrets" if what == "secret" else "actions_variables"
        store = settings[m.group(1)]
        if method == "GET":
            need(permission, "read")
            fake.effect(f"{what}-read", repository=repository, name=m.group(2))
            if m.group(2):
                return 200, {"name": m.group(2), "value": store.get(m.group(2))}
            return 200, {"total_count": len(store), m.group(1): [{"name": n} for n in store]}
        if method in ("PUT", "POST", "PATCH") and m.group(2):
            need(permission, "write")
            store[m.group(2)] = body.get("value") or body.get("encrypted_value")
            fake.effect(f"{what}-written", repository=repository, name=m.group(2))
            return 201, None
        if method == "DELETE" and m.group(2):
            need(permission, "write")
            store.pop(m.group(2), None)
            fake.effect(f"{what}-deleted", repository=repository, name=m.group(2))
            return 204, None
    if m := re.fullmatch(r"/releases/(assets/)?(\d+)", rest):
        if method == "DELETE":
            need("contents", "write")
            fake.effect("release-asset-deleted" if m.group(1) else "release-deleted", repository=repository,
                        id=int(m.group(2)))
            return 204, None
    if rest in ("/pulls", "/issues") and method == "POST":
        need("pull_requests" if rest == "/pulls" else "issues", "write")
        fake.effect("pull-request" if rest == "/pulls" else "issue", repository=repository, title=body.get("title"))
        return 201, {"number": len(fake.effects), "html_url": f"https://github.com/{repository}{rest}/1"}
    if re.fullmatch(r"/issues/\d+/comments", rest) and method == "POST":
        need("issues", "write")
        fake.effect("comment", repository=repository, body=body.get("body"))
        return 201, {"id": len(fake.effects)}
    if rest in ("/pulls", "/issues", "/commits") and method == "GET":
        need("metadata", "read")
        return 200, []
    if m := re.fullmatch(r"/git/refs/(.+)", rest):
        if method in ("PATCH", "DELETE"):
            need("contents", "write")
            fake.effect("ref-api", repository=repository, ref="refs/" + m.group(1), method=method)
            return 200, {}
    raise Refused(404, "Not Found")


GRAPHQL_PERMISSIONS = {"createPullRequest": "pull_requests", "addComment": "issues", "createIssue": "issues",
                       "deleteRef": "contents", "updateRef": "contents", "updateRefs": "contents",
                       "createCommitOnBranch": "contents", "mergePullRequest": "contents",
                       "archiveRepository": "administration", "updateRepository": "administration"}


def _graphql(fake: FakeGitHub, headers: dict, body: dict) -> tuple[int, object]:
    """Records each root field of a mutation as an effect (the fake has no schema: the name says
    what GitHub would do), after the token's permission for it."""
    token = fake.token_for(headers, None, "metadata", "read")
    document = graphql.parse(body["query"])
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, graphql.FragmentDefinitionNode)}

    def root_fields(selection_set):
        for selection in selection_set.selections:
            if isinstance(selection, graphql.FieldNode):
                yield selection
            elif isinstance(selection, graphql.InlineFragmentNode):
                yield from root_fields(selection.selection_set)
            else:
                yield from root_fields(fragments[selection.name.value].selection_set)

    data = {}
    for operation in document.definitions:
        if not isinstance(operation, graphql.OperationDefinitionNode):
            continue
        for selection in root_fields(operation.selection_set):
            name = selection.name.value
            if operation.operation == graphql.OperationType.MUTATION:
                permission = GRAPHQL_PERMISSIONS.get(name, "administration")
                if not token.allows(None, permission, "write"):
                    return 200, {"errors": [{"type": "FORBIDDEN", "message": "Resource not accessible by integration"}]}
                fake.effect(f"graphql:{name}")
            data[selection.alias.value if selection.alias else name] = {}
    return 200, {"data": data}


# --- git smart HTTP ----------------------------------------------------------------------------

_GIT_PATH = re.compile(r"^/([^/]+)/([^/]+?)(?:\.git)?/(info/refs|git-upload-pack|git-receive-pack)$")


def _git_http(fake: FakeGitHub, request: Request) -> tuple[int, dict, bytes]:
    m = _GIT_PATH.match(request.path)
    if not m:
        raise Refused(404, "Not Found")
    owner, name, endpoint = m.groups()
    repository = f"{owner}/{name}"
    _repo_settings(fake, owner, name)
    push = endpoint == "git-receive-pack" or "service=git-receive-pack" in request.query
    if not (_bearer(request.headers) or _basic_password(request.headers)):
        return 401, {"WWW-Authenticate": 'Basic realm="GitHub"'}, b"Authentication required\n"
    token = fake.token_for(request.headers, repository, "contents", "write" if push else "read")
    before = fake.refs(repository) if endpoint == "git-receive-pack" else None
    if endpoint == "git-upload-pack" and request.method == "POST":
        fake.effect("fetch", repository=repository)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": str(fake.root),
           "GIT_HTTP_EXPORT_ALL": "1", "REQUEST_METHOD": request.method, "QUERY_STRING": request.query,
           "PATH_INFO": f"/{owner}/{name}.git/{endpoint}", "REMOTE_USER": "x-access-token",
           "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": request.headers.get("content-type", ""),
           "CONTENT_LENGTH": str(len(request.body)), "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(fake.root),
           "FAKE_GITHUB_WORKFLOWS": token.permissions.get("workflows", "")}
    if "git-protocol" in request.headers:
        env["GIT_PROTOCOL"] = request.headers["git-protocol"]
    if "content-encoding" in request.headers:
        env["HTTP_CONTENT_ENCODING"] = request.headers["content-encoding"]
    done = subprocess.run([GIT_BACKEND], input=request.body, capture_output=True, env=env, timeout=120)
    head, _, out = done.stdout.partition(b"\r\n\r\n")
    status, response_headers = 200, {}
    for line in head.decode().split("\r\n"):
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = int(value.split()[0])
        elif key:
            response_headers[key] = value.strip()
    if before is not None:
        after = fake.refs(repository)
        for ref in sorted(set(before) | set(after)):
            old, new = before.get(ref), after.get(ref)
            if old == new:
                continue
            forced = bool(old and new) and subprocess.run(
                ["git", "-C", str(fake.bare(repository)), "merge-base", "--is-ancestor", old, new]).returncode != 0
            kind = "ref-deleted" if new is None else "ref-created" if old is None else \
                "ref-forced" if forced else "ref-updated"
            fake.effect(kind, repository=repository, ref=ref, old=old, new=new)
    return status, response_headers, out


# --- HTTP plumbing -------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _request(self, role: str) -> Request:
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        return Request(role, self.command, parts.path, parts.query, headers, self._body(headers))

    def _body(self, headers: dict) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(headers.get("content-length") or 0))

    def _reply(self, status: int, headers: dict, payload: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _serve(self):
        raise NotImplementedError

    def do_GET(self):
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET


def _listen(handler, address: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((address, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def _handler(fake: FakeGitHub, fixed_role: str | None):
    class Handler(_Handler):
        def _serve(self):
            role = fixed_role or ("api" if self.headers.get("Host", "").lower().startswith("api.") else "git")
            request = self._request(role)
            fake.requests.append(request)
            answer = fake.gate(request) if fake.gate is not None else None
            try:
                if answer is not None:
                    status, extra, payload = answer
                elif role == "git":
                    status, extra, payload = _git_http(fake, request)
                else:
                    status, data = _api(fake, request)
                    extra, payload = {"Content-Type": "application/json"}, b"" if data is None else json.dumps(data).encode()
            except Refused as refused:
                status, extra = refused.status, {"Content-Type": "application/json"}
                payload = json.dumps({"message": refused.message}).encode()
            self._reply(status, extra, payload)

    return Handler


# --- a fake package registry --------------------------------------------------------------------

@dataclass
class FakeRegistry:
    """npm-, PyPI- and crates.io-like: reads answer (npm packuments of `packages`), every write is
    recorded as an effect."""
    gate: object = None
    effects: list = field(default_factory=list)
    packages: dict = field(default_factory=dict)     # npm name -> versions
    effects_file: Path | None = None                 # each effect also as a JSON line (run standalone)

    def effect(self, kind: str, **details) -> None:
        self.effects.append({"kind": kind, **details, "time": time.time()})
        if self.effects_file is not None:
            with open(self.effects_file, "a") as out:
                out.write(json.dumps(self.effects[-1]) + "\n")

    def start(self, address: str = "127.0.0.1", port: int = 0) -> "FakeRegistry":
        registry = self

        class Handler(_Handler):
            def _serve(self):
                request = self._request("registry")
                status, payload = 404, {"error": "not found"}
                refusal = registry.gate(request.method, request.path, request.headers) if registry.gate else None
                name = request.path.lstrip("/")
                if refusal is not None:
                    status, payload = 403, {"error": refusal}
                elif request.method in ("PUT", "POST", "DELETE"):
                    kind = {"PUT": "publish", "POST": "upload", "DELETE": "unpublish"}[request.method]
                    if request.path.endswith("/yank"):
                        kind = "yank"
                    registry.effect(kind, path=request.path, bytes=len(request.body))
                    status, payload = 200, {"ok": True}
                elif request.method in ("GET", "HEAD") and name in registry.packages:
                    versions = registry.packages[name]
                    status, payload = 200, {"_id": name, "name": name, "_rev": "1-abc",
                                            "dist-tags": {"latest": versions[-1]},
                                            "versions": {v: {"name": name, "version": v,
                                                             "dist": {"tarball": f"{registry.url}/{name}/-/{name}-{v}.tgz"}}
                                                         for v in versions}}
                self._reply(status, {"Content-Type": "application/json"}, json.dumps(payload).encode())

        self._server = _listen(Handler, address, port)
        self.url = f"http://{address}:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main(argv: list[str] | None = None) -> int:
    """Run the fake on its own (in a test's network namespace, say): prints its URLs as one JSON
    line, appends every effect to --effects, serves until its standard input closes."""
    import argparse
    import sys
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--app-id", type=int, required=True)
    parser.add_argument("--public-key", type=Path, required=True, help="the App's public key (PEM)")
    parser.add_argument("--installation", type=int, required=True, help="its id; it holds every --repository")
    parser.add_argument("--permissions", default='{"metadata": "read", "contents": "write", "pull_requests": "write", '
                                                  '"issues": "write", "administration": "write", "secrets": "write"}')
    parser.add_argument("--repository", action="append", required=True, metavar="OWNER/NAME")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--api-port", type=int, default=0)
    parser.add_argument("--git-port", type=int, default=0)
    parser.add_argument("--effects", type=Path, required=True, help="JSON lines, one per effect")
    parser.add_argument("--combined-port", type=int, help="also serve git and the API on one port, by host name")
    parser.add_argument("--registry-port", type=int, help="also serve a fake npm registry on this port")
    parser.add_argument("--diverged-branch", action="append", default=[], metavar="NAME",
                        help="a branch one commit ahead of main's history (a push of main there is forced)")
    parser.add_argument("--branch", action="append", default=[], metavar="NAME", help="a branch at main")
    parser.add_argument("--broad-token", type=Path, action="append", default=[], metavar="FILE",
                        help="write a token with every permission of the installation, for every --repository, to "
                             "FILE (repeatable: one token per file)")
    args = parser.parse_args(argv)
    owners = {r.split("/")[0] for r in args.repository}
    if len(owners) != 1:
        parser.error("every --repository must have the same owner (one installation)")
    fake = FakeGitHub(root=args.root, app_id=args.app_id, public_key_pem=args.public_key.read_bytes(),
                      installations=[Installation(args.installation, owners.pop(), args.repository,
                                                  json.loads(args.permissions))], effects_file=args.effects)
    for repository in args.repository:
        fake.create_repository(repository, branches={"feature": None, **dict.fromkeys(args.branch)},
                               diverged=tuple(args.diverged_branch))
    for path in args.broad_token:
        path.write_text(fake.issue_token(args.repository, json.loads(args.permissions)) + "\n")
    fake.start(args.address, (args.api_port, args.git_port), args.combined_port)
    urls = {"api_url": fake.api_url, "git_url": fake.git_url}
    registry = None
    if args.registry_port is not None:
        registry = FakeRegistry(packages={"agent-sandbox-demo": ["1.0.0"]}, effects_file=args.effects)
        urls["registry_url"] = registry.start(args.address, args.registry_port).url
    print(json.dumps(urls), flush=True)
    sys.stdin.read()
    fake.stop()
    if registry is not None:
        registry.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
