"""Google's side of the Gemini CLI's logins, for tests: the OAuth token endpoint, Code Assist (what
"Login with Google" talks to) and Vertex AI, in one scripted server.

What it checks is what Google checks: every Code Assist or Vertex request needs a bearer access
token that this server issued and that has not expired (else 401 UNAUTHENTICATED, as Google
answers); the token endpoint refreshes only with the real refresh token and the Gemini CLI's own
OAuth client, or with a JWT signed by the service account's private key (Vertex); refreshed tokens
live `lifetime` seconds, so that a run of a few dozen seconds crosses a refresh. A placeholder,
replayed directly, is refused like any unknown token.

The model turns reuse the conformance suite's scripted Gemini fake (tests/conformance/fakes.py):
Code Assist wraps the same request and response in {"request": ...} / {"response": ...}.

In-process:   GoogleFake(scenario, GoogleAccount(...)).start()
In a container (the end-to-end runs):
    python3 tests/logins/fake_google.py CONFIG.json PORT OUT
CONFIG.json: {"scenario": NAME, "account": {...GoogleAccount fields...}}; the server appends every
request to OUT/requests.jsonl and every token it issues to OUT/tokens.jsonl, then writes OUT/ready.
"""
from __future__ import annotations

import json
import secrets
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.conformance import fakes  # noqa: E402
from tests.conformance.fakes import GeminiFake, ToolResult, _send_json, _sse, _start_sse  # noqa: E402

# The Gemini CLI's own OAuth client (an installed application: its "secret" ships in the CLI).
# A refresh token is bound to the client that obtained it; tests/logins/test_login_gemini.py reads
# the pinned CLI's code to check that these are still the ones it uses.
GEMINI_CLI_CLIENT_ID = "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com"
GEMINI_CLI_CLIENT_SECRET = "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"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CODE_ASSIST_PREFIX = "/v1internal:"
TOKEN_PATH = "/token"


@dataclass
class GoogleAccount:
    """What Google knows about the user: the tokens it issued, the refresh token, the project."""
    access_token: str = field(default_factory=lambda: "ya29.fake-" + secrets.token_urlsafe(24))
    access_expires_at: float = field(default_factory=lambda: time.time() + 3600)
    refresh_token: str = field(default_factory=lambda: "1//fake-refresh-" + secrets.token_urlsafe(24))
    lifetime: float = 3600.0          # seconds a refreshed access token lives
    revoke_on_refresh: bool = False   # a refresh ends every access token issued before (stricter than Google)
    project: str = "fake-gca-project-4242"
    tier: str = "standard-tier"
    email: str = "user@example.com"
    onboarded: bool = True
    # Vertex: the service account whose key signs the token requests (PEM public key).
    service_account_email: str | None = None
    service_account_public_key: str | None = None
    token_audience: str | None = None  # the token_uri the key file names (a JWT's "aud")


class GoogleFake(GeminiFake):
    cli = "gemini"

    def __init__(self, scenario, account: GoogleAccount, *, bind: tuple[str, int] = ("127.0.0.1", 0),
                 out: Path | None = None):
        super().__init__(scenario)
        self.account = account
        self.bind = bind
        self.out = out
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {account.access_token: account.access_expires_at}
        self.issued: list[dict] = []        # every token the endpoint issued: grant, expiry
        self.refused: list[dict] = []       # every request refused for its credential: path, why

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> "GoogleFake":
        original = fakes.ThreadingHTTPServer
        bind = self.bind

        class Bound(original):
            def __init__(self, _address, handler):
                super().__init__(bind, handler)
        fakes.ThreadingHTTPServer = Bound
        try:
            return super().start()
        finally:
            fakes.ThreadingHTTPServer = original

    @property
    def token_url(self) -> str:
        return f"{self.base_url}{TOKEN_PATH}"

    def expire_all(self) -> None:
        """Every access token issued so far stops working now (Google revoked or expired them)."""
        with self.lock:
            self.tokens = {token: 0.0 for token in self.tokens}

    def valid(self, token: str) -> bool:
        with self.lock:
            return self.tokens.get(token, 0.0) > time.time()

    # -- recording ---------------------------------------------------------------------------------
    def _record_request(self, handler, body: Any) -> None:
        super()._record_request(handler, body)
        if self.out is not None:
            entry = {"method": handler.command, "path": handler.path,
                     "headers": {k.lower(): v for k, v in handler.headers.items()}, "body": body}
            with self.lock, open(self.out / "requests.jsonl", "a") as out:
                out.write(json.dumps(entry) + "\n")

    def _tool_results(self, body: dict) -> list[ToolResult]:
        inner = body.get("request") if isinstance(body.get("request"), dict) else body
        return super()._tool_results(inner)

    # -- routes ------------------------------------------------------------------------------------
    def _handle_get(self, handler) -> None:
        path = urlsplit(handler.path).path
        if path == "/tokeninfo":
            self._tokeninfo(handler, parse_qs(urlsplit(handler.path).query))
        elif not self._authorized(handler):
            return
        elif path == CODE_ASSIST_PREFIX + "getCodeAssistGlobalUserSetting":
            _send_json(handler, 200, {"freeTierDataCollectionOptin": False})
        elif path.startswith("/v1beta1/publishers/google/models/"):
            _send_json(handler, 200, {"name": path.removeprefix("/v1beta1/"), "versionId": "001"})
        else:
            _send_json(handler, 404, google_error(404, "NOT_FOUND", f"fake: no route GET {path}"))

    def _handle_post(self, handler, body: Any) -> None:
        path = urlsplit(handler.path).path
        if path == TOKEN_PATH:
            self._token(handler, parse_qs(body if isinstance(body, str) else ""))
        elif path == "/tokeninfo":
            self._tokeninfo(handler, parse_qs(body if isinstance(body, str) else ""))
        elif not self._authorized(handler):
            return
        elif path.startswith(CODE_ASSIST_PREFIX):
            self._code_assist(handler, path[len(CODE_ASSIST_PREFIX):], body)
        elif "/publishers/google/models/" in path and isinstance(body, dict) and self._is_turn_request(path, body):
            self._respond(handler, body, self._step(body))
        elif path.endswith(":countTokens"):
            _send_json(handler, 200, {"totalTokens": 42})
        else:
            _send_json(handler, 404, google_error(404, "NOT_FOUND", f"fake: no route POST {path}"))

    def _authorized(self, handler) -> bool:
        """Google's check: a bearer token it issued, not expired. Answers the 401 itself."""
        header = handler.headers.get("authorization") or ""
        token = header[len("Bearer "):] if header.startswith("Bearer ") else ""
        why = None
        if not token:
            why = "no bearer token"
        elif token not in self.tokens:
            why = "unknown token"
        elif not self.valid(token):
            why = "expired token"
        if handler.headers.get("x-goog-api-key"):
            why = why or "an API key next to the token"
        if why is None:
            return True
        with self.lock:
            self.refused.append({"path": urlsplit(handler.path).path, "why": why})
        _send_json(handler, 401, google_error(
            401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential."))
        return False

    def _issue(self, grant: str) -> dict:
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        expires_at = time.time() + self.account.lifetime
        with self.lock:
            if self.account.revoke_on_refresh:
                self.tokens = {old: 0.0 for old in self.tokens}
            self.tokens[token] = expires_at
            record = {"grant": grant, "token": token, "expires_at": expires_at}
            self.issued.append(record)
            if self.out is not None:
                with open(self.out / "tokens.jsonl", "a") as out:
                    out.write(json.dumps(record) + "\n")
        return {"access_token": token, "expires_in": int(self.account.lifetime), "token_type": "Bearer",
                "scope": CLOUD_PLATFORM_SCOPE}

    def _token(self, handler, form: dict) -> None:
        one = {key: values[0] for key, values in form.items() if len(values) == 1}
        grant = one.get("grant_type")
        if grant == "refresh_token":
            if one.get("client_id") != GEMINI_CLI_CLIENT_ID or one.get("client_secret") != GEMINI_CLI_CLIENT_SECRET:
                _send_json(handler, 401, {"error": "invalid_client", "error_description": "Unauthorized"})
            elif one.get("refresh_token") != self.account.refresh_token:
                _send_json(handler, 400, {"error": "invalid_grant", "error_description": "Bad Request"})
            else:
                _send_json(handler, 200, self._issue("refresh_token"))
            return
        if grant == JWT_BEARER:
            why = self._check_assertion(one.get("assertion", ""))
            if why:
                _send_json(handler, 400, {"error": "invalid_grant", "error_description": why})
            else:
                _send_json(handler, 200, self._issue("jwt-bearer"))
            return
        _send_json(handler, 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})

    def _check_assertion(self, assertion: str) -> str | None:
        account = self.account
        if not account.service_account_public_key:
            return "no service account is known"
        try:
            claims = jwt.decode(assertion, account.service_account_public_key, algorithms=["RS256"],
                                audience=account.token_audience or self.token_url, issuer=account.service_account_email,
                                options={"require": ["iss", "aud", "iat", "exp", "scope"]})
        except jwt.PyJWTError as error:
            return f"Invalid JWT: {error}"
        if claims["exp"] - claims["iat"] > 3600:
            return "Invalid JWT: the lifetime is longer than an hour"
        if CLOUD_PLATFORM_SCOPE not in str(claims["scope"]).split():
            return "Invalid JWT: the scope does not include cloud-platform"
        return None

    def _tokeninfo(self, handler, form: dict) -> None:
        token = (form.get("access_token") or [""])[0]
        header = handler.headers.get("authorization") or ""
        token = token or (header[len("Bearer "):] if header.startswith("Bearer ") else "")
        if not self.valid(token):
            _send_json(handler, 400, {"error": "invalid_token", "error_description": "Invalid Value"})
            return
        left = int(self.tokens[token] - time.time())
        _send_json(handler, 200, {"azp": GEMINI_CLI_CLIENT_ID, "aud": GEMINI_CLI_CLIENT_ID,
                                  "scope": CLOUD_PLATFORM_SCOPE, "exp": str(int(self.tokens[token])),
                                  "expires_in": left, "email": self.account.email})

    def _code_assist(self, handler, method: str, body: Any) -> None:
        account = self.account
        if method in ("streamGenerateContent", "generateContent"):
            if not isinstance(body, dict) or not isinstance(body.get("request"), dict):
                _send_json(handler, 400, google_error(400, "INVALID_ARGUMENT", "fake: no request"))
            elif body.get("project") != account.project:
                _send_json(handler, 403, google_error(403, "PERMISSION_DENIED", "fake: not the user's project"))
            else:
                self._respond(handler, body, self._step(body))
            return
        answers = {
            "loadCodeAssist": {"currentTier": {"id": account.tier, "name": "Gemini Code Assist (fake)"},
                               "allowedTiers": [{"id": account.tier, "isDefault": True}],
                               "cloudaicompanionProject": account.project} if account.onboarded
            else {"allowedTiers": [{"id": "free-tier", "isDefault": True}]},
            "onboardUser": {"done": True, "response": {"cloudaicompanionProject": {"id": account.project}}},
            "countTokens": {"totalTokens": 42},
            "listExperiments": {"experimentIds": [], "flags": []},
            "retrieveUserQuota": {"buckets": []},
            "recordCodeAssistMetrics": {},
            "fetchAdminControls": {},
        }
        if method not in answers:
            _send_json(handler, 404, google_error(404, "NOT_FOUND", f"fake: no Code Assist method {method}"))
        else:
            _send_json(handler, 200, answers[method])

    def _respond(self, handler, body, step):
        """The scripted turn: Code Assist wraps it ({"response": ...}), Vertex sends it as it is."""
        code_assist = isinstance(body.get("request"), dict)
        inner = body["request"] if code_assist else body
        chunk = self.turn(inner, step)
        if code_assist:
            chunk = {"response": chunk, "traceId": f"trace-{step}"}
        if urlsplit(handler.path).path.endswith(":generateContent"):
            _send_json(handler, 200, chunk)
            return
        _start_sse(handler)
        _sse(handler, chunk)


def google_error(code: int, status: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "status": status}}


def main(argv: list[str]) -> None:
    from tests.e2e.scenarios import SCENARIOS
    from tests.logins.scenarios import LOGIN_SCENARIOS
    scenarios = {**SCENARIOS, **LOGIN_SCENARIOS}
    config_path, port, out = Path(argv[0]), int(argv[1]), Path(argv[2])
    config = json.loads(config_path.read_text())
    account = GoogleAccount(**config["account"])
    GoogleFake(scenarios[config["scenario"]], account, bind=("0.0.0.0", port), out=out).start()
    (out / "ready").write_text(json.dumps({"port": port, "account": asdict(account)}))
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
