"""A stand-in for Anthropic with subscription logins: the Messages API on OAuth bearer tokens and
the OAuth token endpoint, with short-lived access tokens so that a run crosses a refresh.

- POST /v1/messages: `Authorization: Bearer <token>` and the oauth-2025-04-20 beta, or 401. A token
  is accepted while it lives: a long-lived one (claude setup-token's) always, an access token until
  its real expiry, which is `lifetime` seconds after it was issued even though the token response
  says `claimed_lifetime` (so the gateway also meets a 401 on a token it believes fresh). Turns
  come from the conformance fake's scenario.
- POST /v1/oauth/token: Claude Code's refresh grant (JSON: grant_type, refresh_token, client_id,
  scope); the refresh token rotates (the old one is refused afterwards), as Anthropic's does.

Everything it decides goes to OUT/events.jsonl (which token, accepted or why refused), and every
token it issued to OUT/issued.json, for the tests to check from the host. Standard library only.

  python3 tests/logins/fake_anthropic_oauth.py STATE.json SCENARIO PORT OUT [ADDRESS]

STATE.json: {"oauth_tokens": [...], "access_tokens": {token: expiry epoch}, "refresh_tokens": [...],
"lifetime": s, "claimed_lifetime": s}.
"""
from __future__ import annotations

import json
import secrets
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.conformance import fakes  # noqa: E402

CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
OAUTH_BETA = "oauth-2025-04-20"


class AnthropicOAuthFake(fakes.AnthropicFake):
    def __init__(self, scenario, state: dict, out: Path):
        super().__init__(scenario)
        self.lock = threading.Lock()
        self.out = out
        self.oauth_tokens = set(state.get("oauth_tokens", []))
        self.access = dict(state.get("access_tokens", {}))
        self.refresh_tokens = set(state.get("refresh_tokens", []))
        self.lifetime = float(state.get("lifetime", 5))
        self.claimed = int(state.get("claimed_lifetime", self.lifetime))
        self.issued = {"access": list(self.access), "refresh": list(self.refresh_tokens),
                       "oauth": list(self.oauth_tokens)}
        self._save_issued()

    def _event(self, **entry) -> None:
        with open(self.out / "events.jsonl", "a") as log:
            log.write(json.dumps({"time": time.time(), **entry}) + "\n")

    def _save_issued(self) -> None:
        tmp = self.out / ".issued.json"
        tmp.write_text(json.dumps(self.issued))
        tmp.replace(self.out / "issued.json")

    def _token_state(self, token: str) -> str:
        if token in self.oauth_tokens:
            return "ok"
        expiry = self.access.get(token)
        if expiry is None:
            return "unknown"
        return "ok" if time.time() < expiry else "expired"

    def _handle_post(self, handler, body) -> None:
        path = handler.path.split("?")[0]
        if path == "/v1/oauth/token":
            return self._token(handler, body)
        auth = handler.headers.get("authorization", "")
        betas = [b.strip() for b in handler.headers.get("anthropic-beta", "").split(",")]
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        with self.lock:
            state = self._token_state(token) if token else "missing"
        if state == "ok" and OAUTH_BETA not in betas:
            state = "no-oauth-beta"
        self._event(what="api", path=path, token_state=state, token_tail=token[-6:])
        if state != "ok":
            message = {"expired": "OAuth token has expired.", "no-oauth-beta":
                       "OAuth authentication is currently not supported."}.get(state, "Invalid bearer token")
            fakes._send_json(handler, 401, {"type": "error", "error": {"type": "authentication_error",
                                                                       "message": message}})
            return
        super()._handle_post(handler, body)

    def _token(self, handler, body) -> None:
        fields = body if isinstance(body, dict) else {}
        refresh = fields.get("refresh_token")
        with self.lock:
            valid = (fields.get("grant_type") == "refresh_token" and fields.get("client_id") == CLIENT_ID
                     and isinstance(refresh, str) and refresh in self.refresh_tokens)
            if valid:
                self.refresh_tokens.discard(refresh)
                access = "sk-ant-oat01-fake-" + secrets.token_hex(16)
                new_refresh = "sk-ant-ort01-fake-" + secrets.token_hex(16)
                self.access[access] = time.time() + self.lifetime
                self.refresh_tokens.add(new_refresh)
                self.issued["access"].append(access)
                self.issued["refresh"].append(new_refresh)
                self._save_issued()
        self._event(what="refresh", ok=valid, client_id=fields.get("client_id"), scope=fields.get("scope"),
                    refresh_tail=(refresh or "")[-6:])
        if not valid:
            fakes._send_json(handler, 400, {"error": "invalid_grant", "error_description": "Invalid refresh token"})
            return
        fakes._send_json(handler, 200, {"token_type": "Bearer", "access_token": access, "refresh_token": new_refresh,
                                        "expires_in": self.claimed, "scope": fields.get("scope", "user:inference")})


def serve(state_path: Path, scenario_name: str, port: int, out: Path, address: str = "0.0.0.0") -> None:
    from tests.e2e.scenarios import SCENARIOS
    from tests.logins.scenarios import LOGIN_SCENARIOS

    class Bound(ThreadingHTTPServer):
        def __init__(self, _address, handler):
            super().__init__((address, port), handler)

    fakes.ThreadingHTTPServer = Bound
    scenario = {**SCENARIOS, **LOGIN_SCENARIOS}[scenario_name]
    AnthropicOAuthFake(scenario, json.loads(state_path.read_text()), out).start()
    (out / "ready").write_text(str(port))
    threading.Event().wait()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), *sys.argv[5:6])
