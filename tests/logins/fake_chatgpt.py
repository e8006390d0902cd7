"""ChatGPT's backend and OpenAI's sign-in server, faked for Codex's ChatGPT login: the tests' vendor.

What it checks is what the real ones check, as far as Codex and the gateway can tell:
- Every backend call (`/backend-api/...`) needs `Authorization: Bearer <access token>` that this
  server signed, that has not expired and was not retired by a refresh, and a `chatgpt-account-id`
  header naming the token's account. Anything else gets 401. A placeholder (a well-formed JWT
  nobody signed) is refused like any forgery.
- `POST /oauth/token` takes Codex's refresh grant (JSON: client_id, grant_type=refresh_token,
  refresh_token). A refresh token works once: the grant rotates it, issues a new access and id
  token, and retires every access token issued before. A replayed refresh token is refused.
- Tokens live `lifetime` seconds (short in the tests, so that a run crosses a refresh).

The model itself is the conformance fake's Responses API (tests/conformance/fakes.py), on
`/backend-api/codex/responses`. Tokens are HS256 JWTs under a key only this process holds (the
real ones are RS256; what matters here is that nobody else can make one). Standard library only:
the end-to-end suite runs it with the host's python3 in a container.

    python3 tests/logins/fake_chatgpt.py SCENARIO PORT OUT [LIFETIME]

writes OUT/auth.json (what `codex login` leaves in ~/.codex), then OUT/ready; records each
request in OUT/requests.jsonl, each token event in OUT/events.jsonl and each token it issues in
OUT/issued.jsonl (for the test to look for where none may be).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.conformance import fakes  # noqa: E402

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"      # Codex's OAuth client at auth.openai.com
AUTH_CLAIM = "https://api.openai.com/auth"
ISSUER = "https://auth.openai.com"
TOKEN_PATH = "/oauth/token"
BACKEND = "/backend-api"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_claims(token: str) -> dict:
    """A JWT's claims, unverified (what Codex itself reads)."""
    return json.loads(_unb64(token.split(".")[1]))


class FakeChatGPT(fakes.OpenAIResponsesFake):
    def __init__(self, scenario, *, lifetime: float = 3600, account_id: str | None = None, plan: str = "plus",
                 email: str = "user@example.com", out: Path | None = None):
        super().__init__(scenario)
        self.lifetime = lifetime
        self.account_id = account_id or f"acct-{secrets.token_hex(6)}"
        self.user_id = f"user-{secrets.token_hex(6)}"
        self.plan, self.email, self.out = plan, email, out
        self._key = secrets.token_bytes(32)
        self._state = threading.Lock()
        self._live_access: set[str] = set()          # jti of the access tokens that still work
        self._live_refresh: set[str] = set()
        self._used_refresh: set[str] = set()
        self.events: list[dict] = []
        self.issued: list[dict] = []                 # every token set this server handed out
        self.revoke_on_turn: int | None = None       # retire the token of this model request (1-based)
        self._turns = 0

    # -- tokens --------------------------------------------------------------------------------------
    def _sign(self, claims: dict) -> str:
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims).encode())
        mac = hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(mac)}"

    def _verify(self, token: str) -> dict | None:
        try:
            head, body, mac = token.split(".")
            good = hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(_unb64(mac), good):
                return None
            return json.loads(_unb64(body))
        except (ValueError, TypeError):
            return None

    def _issue(self) -> dict:
        """A new access, id and refresh token (the caller holds the state lock)."""
        now = int(time.time())
        auth = {"chatgpt_account_id": self.account_id, "chatgpt_plan_type": self.plan,
                "chatgpt_user_id": self.user_id, "user_id": self.user_id}
        jti = secrets.token_hex(8)
        access = self._sign({"iss": ISSUER, "aud": ["https://api.openai.com/v1"], "sub": self.user_id,
                             "iat": now, "exp": now + int(self.lifetime), "jti": jti, "typ": "access",
                             "client_id": CLIENT_ID, AUTH_CLAIM: auth})
        id_token = self._sign({"iss": ISSUER, "aud": [CLIENT_ID], "sub": self.user_id, "iat": now,
                               "exp": now + int(self.lifetime), "email": self.email, "typ": "id", AUTH_CLAIM: auth})
        refresh = "rt_" + secrets.token_urlsafe(32)
        self._live_access.add(jti)
        self._live_refresh.add(refresh)
        issued = {"id_token": id_token, "access_token": access, "refresh_token": refresh}
        self.issued.append(issued)
        if self.out is not None:  # what a test looks for where it must not be
            with open(self.out / "issued.jsonl", "a") as sink:
                sink.write(json.dumps(issued) + "\n")
        return issued

    def login(self) -> dict:
        """What `codex login` leaves in ~/.codex/auth.json after signing in."""
        with self._state:
            tokens = self._issue()
        self._event({"event": "login"})
        return {"auth_mode": "chatgpt", "OPENAI_API_KEY": None,
                "tokens": {**tokens, "account_id": self.account_id},
                "last_refresh": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}

    def accepts(self, access_token: str) -> bool:
        """Whether a backend call with this token (and its account) would be served now."""
        return self._why_not(access_token) is None

    def _why_not(self, token: str) -> str | None:
        claims = self._verify(token)
        if claims is None or claims.get("typ") != "access":
            return "not a token this server signed"
        if claims.get("exp", 0) <= time.time():
            return "expired"
        with self._state:
            if claims.get("jti") not in self._live_access:
                return "retired by a refresh"
        return None

    def _event(self, entry: dict) -> None:
        entry = {"time": round(time.time(), 3), **entry}
        with self._record.lock:
            self.events.append(entry)
            if self.out is not None:
                with open(self.out / "events.jsonl", "a") as sink:
                    sink.write(json.dumps(entry) + "\n")

    def refreshes(self) -> list[dict]:
        return [e for e in self.events if e["event"] == "refresh"]

    def rejections(self) -> list[dict]:
        return [e for e in self.events if e["event"] == "rejected"]

    # -- HTTP ----------------------------------------------------------------------------------------
    def _record_request(self, handler, body):
        super()._record_request(handler, body)
        if self.out is not None:
            entry = {"method": handler.command, "path": handler.path,
                     "headers": {k.lower(): v for k, v in handler.headers.items()}, "body": body}
            with self._record.lock, open(self.out / "requests.jsonl", "a") as sink:
                sink.write(json.dumps(entry) + "\n")

    def _refuse(self, handler, why: str, code: str = "invalid_token") -> None:
        self._event({"event": "rejected", "path": handler.path.split("?")[0], "why": why})
        fakes._send_json(handler, 401, {"error": {"message": f"fake ChatGPT: {why}", "type": "invalid_request_error",
                                                  "code": code}})

    def _authorized(self, handler) -> bool:
        header = handler.headers.get("authorization") or ""
        if not header.startswith("Bearer "):
            self._refuse(handler, "no bearer token")
            return False
        token = header[len("Bearer "):]
        why = self._why_not(token)
        if why is not None:
            self._refuse(handler, why, "token_expired" if why == "expired" else "invalid_token")
            return False
        if handler.headers.get("chatgpt-account-id") != self._verify(token)[AUTH_CLAIM]["chatgpt_account_id"]:
            self._refuse(handler, "chatgpt-account-id does not name the token's account", "account_mismatch")
            return False
        return True

    def _handle_get(self, handler):
        path = handler.path.split("?")[0]
        if not path.startswith(BACKEND + "/"):
            return super()._handle_get(handler)
        if not self._authorized(handler):
            return
        if path == f"{BACKEND}/codex/models":
            fakes._send_json(handler, 200, {"models": []})
        elif path == f"{BACKEND}/wham/accounts/check":
            # What a leak would carry: the user's real account and email.
            fakes._send_json(handler, 200, {"accounts": [{"id": self.account_id, "email": self.email,
                                                          "plan_type": self.plan}]})
        elif path == f"{BACKEND}/wham/settings/user":
            fakes._send_json(handler, 200, {"email": self.email})
        else:
            fakes._send_json(handler, 404, {"detail": "Not Found"})

    def _handle_post(self, handler, body):
        path = handler.path.split("?")[0]
        if path == TOKEN_PATH:
            return self._token(handler, body)
        if not path.startswith(BACKEND + "/"):
            return fakes._send_json(handler, 404, {"detail": "Not Found"})
        if not self._authorized(handler):
            return
        if self._is_turn_request(path, body):
            self._turns += 1
            if self.revoke_on_turn == self._turns:
                # The vendor retires a token before its time (a password change, a sign-out elsewhere).
                with self._state:
                    self._live_access.discard(self._verify(handler.headers["authorization"][7:])["jti"])
                return self._refuse(handler, "revoked")
        super()._handle_post(handler, body)

    def _token(self, handler, body) -> None:
        if isinstance(body, str):
            body = dict(parse_qsl(body))
        fields = body if isinstance(body, dict) else {}
        if fields.get("grant_type") != "refresh_token" or fields.get("client_id") != CLIENT_ID:
            self._event({"event": "refresh_refused", "why": "not Codex's refresh grant"})
            return fakes._send_json(handler, 400, {"error": "invalid_request",
                                                   "error_description": "expected Codex's refresh_token grant"})
        token = fields.get("refresh_token")
        with self._state:
            if token in self._live_refresh:
                self._live_refresh.discard(token)
                self._used_refresh.add(token)
                self._live_access.clear()        # every earlier access token stops working
                issued = self._issue()
                why = None
            else:
                why = "refresh_token_reused" if token in self._used_refresh else "refresh_token_invalidated"
        if why:
            self._event({"event": "refresh_refused", "why": why})
            return fakes._send_json(handler, 401, {"error": {"message": f"fake ChatGPT: {why}",
                                                             "type": "invalid_request_error", "code": why}})
        self._event({"event": "refresh", "reason": fields.get("refresh_reason")})
        fakes._send_json(handler, 200, issued)


# What the scripted model has Codex do in the login runs.
SCENARIOS = {
    # Two turns a while apart (under the 10 s Codex waits for a command before it answers the
    # model): the gateway refreshes the short-lived token in between, and the test looks through the
    # running container from the host meanwhile.
    "across-refresh": fakes.Scenario(("printf 'one\\n' > one.txt && sleep 8",
                                      "git switch -q -c agent/login && git add one.txt && "
                                      "git commit -q -m 'Work across a token refresh'"),
                                     "Worked across a refresh."),
}


def main(argv: list[str]) -> None:
    from http.server import ThreadingHTTPServer
    scenario, port, out = SCENARIOS[argv[0]], int(argv[1]), Path(argv[2])
    lifetime = float(argv[3]) if len(argv) > 3 else 3600

    class OnEveryAddress(ThreadingHTTPServer):
        def __init__(self, address, handler):
            super().__init__(("0.0.0.0", port), handler)

    fakes.ThreadingHTTPServer = OnEveryAddress     # the gateway is another host
    fake = FakeChatGPT(scenario, lifetime=lifetime, out=out)
    (out / "auth.json").write_text(json.dumps(fake.login(), indent=2))
    fake.start()
    (out / "ready").write_text(str(port))
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
