"""Claude Code's logins through the real agent-gateway process, against the Anthropic OAuth fake on
loopback: the real token goes in `Authorization`, an expired token is refreshed before use and a
token the vendor refuses is refreshed and the request sent once more; the log says so and holds
no token; the refreshed login is left for the launcher."""
from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conformance.fakes import Scenario
from tests.egress.gateway_process import GatewayProcess
from tests.logins.fake_anthropic_oauth import AnthropicOAuthFake

PLACEHOLDER = "sk-ant-oat01-agent-sandbox-placeholder"
BODY = {"model": "claude-fake", "max_tokens": 5, "stream": True, "messages": [{"role": "user", "content": "hi"}]}


def new_tokens() -> dict:
    return {"access": "sk-ant-oat01-REAL-" + secrets.token_hex(12), "refresh": "sk-ant-ort01-REAL-" + secrets.token_hex(12),
            "oauth": "sk-ant-oat01-LONG-" + secrets.token_hex(12)}


@pytest.fixture
def world(tmp_path):
    tokens = new_tokens()
    out = tmp_path / "fake"
    out.mkdir()

    def start(access_expires_in: float, lifetime: float = 30, claimed: int = 3600):
        state = {"oauth_tokens": [tokens["oauth"]], "refresh_tokens": [tokens["refresh"]],
                 "access_tokens": {tokens["access"]: time.time() + access_expires_in},
                 "lifetime": lifetime, "claimed_lifetime": claimed}
        return AnthropicOAuthFake(Scenario(("echo hi",), "Hello."), state, out).start()
    return tokens, out, start


def post(url: str, token: str = PLACEHOLDER, beta: str = "claude-code-20250219,oauth-2025-04-20") -> tuple[int, str]:
    request = urllib.request.Request(url + "/v1/messages?beta=true", data=json.dumps(BODY).encode(), method="POST",
                                     headers={"authorization": f"Bearer {token}", "anthropic-beta": beta,
                                              "content-type": "application/json", "anthropic-version": "2023-06-01"})
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def events(out: Path) -> list[dict]:
    path = out / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def gateway(tmp_path, fake, secret, kind):
    return GatewayProcess(tmp_path / "gw", {"anthropic": secret}, {"anthropic": fake.base_url},
                          logins={"anthropic": kind},
                          token_urls={"anthropic": fake.base_url + "/v1/oauth/token"} if kind == "claude/login" else None)


def login_secret(tokens, expires_in: float) -> dict:
    return {"kind": "claude/login", "access_token": tokens["access"], "refresh_token": tokens["refresh"],
            "expires_at": int(time.time() + expires_in), "scopes": ["user:inference", "user:profile"]}


def test_the_placeholder_sent_to_the_vendor_directly_is_refused(world):
    tokens, out, start = world
    fake = start(3600)
    assert post(fake.base_url)[0] == 401
    assert post(fake.base_url, tokens["access"], beta="claude-code-20250219")[0] == 401  # no oauth beta
    assert post(fake.base_url, tokens["access"])[0] == 200
    assert [e["token_state"] for e in events(out)] == ["unknown", "no-oauth-beta", "ok"]


def test_a_long_lived_token_goes_in_the_bearer_header_with_the_oauth_beta(world, tmp_path):
    tokens, out, start = world
    fake = start(3600)
    with gateway(tmp_path, fake, {"kind": "claude/oauth-token", "access_token": tokens["oauth"]},
                 "claude/oauth-token") as gw:
        status, text = post(gw.url("anthropic"), beta="claude-code-20250219")  # the gateway adds the beta
    log = gw.log()
    assert status == 200 and "Hello." in text
    [request] = fake.requests
    assert request.headers["authorization"] == f"Bearer {tokens['oauth']}"
    assert "oauth-2025-04-20" in request.headers["anthropic-beta"].split(",")
    assert [(e["decision"], e["status"]) for e in log] == [("forward", 200)]
    assert tokens["oauth"] not in json.dumps(log)


def test_an_expired_login_is_refreshed_before_use_and_left_for_the_launcher(world, tmp_path):
    tokens, out, start = world
    fake = start(-60)   # the access token the user's file holds is already expired
    with gateway(tmp_path, fake, login_secret(tokens, -60), "claude/login") as gw:
        status, _ = post(gw.url("anthropic"))
        second, _ = post(gw.url("anthropic"))
        renewed = json.loads((gw.renewed_dir / "anthropic").read_text())
    log = gw.log()
    issued = json.loads((out / "issued.json").read_text())
    assert (status, second) == (200, 200)
    refreshes = [e for e in events(out) if e["what"] == "refresh"]
    assert [(e["ok"], e["scope"]) for e in refreshes] == [
        (True, "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload user:plugins")]
    assert [e["token_state"] for e in events(out) if e["what"] == "api"] == ["ok", "ok"]
    assert fake.requests[-1].headers["authorization"] == f"Bearer {issued['access'][-1]}"
    assert [e.get("event") or e["decision"] for e in log] == ["refresh", "forward", "forward"]
    assert log[0]["outcome"] == "refreshed" and log[0]["why"] == "expiry" and log[0]["rotated"] is True
    text = json.dumps(log)
    assert not any(t in text for t in (*issued["access"], *issued["refresh"]))
    assert renewed["access_token"] == issued["access"][-1] and renewed["refresh_token"] == issued["refresh"][-1]
    assert (gw.renewed_dir / "anthropic").stat().st_mode & 0o777 == 0o600


def test_a_token_the_vendor_refuses_is_refreshed_and_the_request_sent_once_more(world, tmp_path):
    tokens, out, start = world
    fake = start(-1)    # dead at the vendor, though the login says it has an hour left
    with gateway(tmp_path, fake, login_secret(tokens, 3600), "claude/login") as gw:
        status, text = post(gw.url("anthropic"))
    log = gw.log()
    assert status == 200 and "Hello." in text
    assert [e["token_state"] for e in events(out) if e["what"] == "api"] == ["expired", "ok"]
    assert [e.get("event") or e["decision"] for e in log] == ["refresh", "forward"]
    assert log[0]["why"] == "rejected" and "sent again once" in log[1]["reason"]


def test_a_refused_refresh_gives_the_cli_the_vendors_401_and_says_why_in_the_log(world, tmp_path):
    tokens, out, start = world
    fake = start(-1)
    secret = {**login_secret(tokens, 3600), "refresh_token": "sk-ant-ort01-REVOKED-" + secrets.token_hex(8)}
    with gateway(tmp_path, fake, secret, "claude/login") as gw:
        status, text = post(gw.url("anthropic"))
    log = gw.log()
    assert status == 401 and "authentication_error" in text
    assert log[0]["outcome"] == "failed" and "invalid_grant" in log[0]["reason"]
    assert (log[1]["decision"], log[1]["status"]) == ("forward", 401)


def test_only_the_model_endpoints_are_forwarded_on_a_login(world, tmp_path):
    tokens, out, start = world
    fake = start(3600)
    with gateway(tmp_path, fake, login_secret(tokens, 3600), "claude/login") as gw:
        for path in ("/v1/oauth/token", "/api/oauth/profile", "/api/claude_cli/bootstrap", "/v1/models"):
            request = urllib.request.Request(gw.url("anthropic") + path, data=b"{}", method="POST")
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code in (404, 405)
    log = gw.log()
    assert fake.requests == []
    assert {e["decision"] for e in log} <= {"deny_endpoint", "deny_method"}


def test_the_gateway_will_not_start_with_a_secret_of_another_kind(world, tmp_path):
    tokens, out, start = world
    fake = start(3600)
    with pytest.raises(RuntimeError, match="holds a claude/oauth-token login, but route anthropic is configured "
                                           "for claude/login"):
        with gateway(tmp_path, fake, {"kind": "claude/oauth-token", "access_token": tokens["oauth"]}, "claude/login"):
            pass


# --- agent-run login-check claude: one cheap call through the gateway's own credential code ----------

def login_check(home: Path, *args: str, env: dict | None = None) -> tuple[int, str, str]:
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "launcher.cli", "login-check", "claude", *args],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(home), "PYTHONPATH": str(Path(__file__).parents[2]),
                               **(env or {})})
    return done.returncode, done.stdout, done.stderr


def credentials_file(home: Path, tokens: dict, expires_in: float) -> Path:
    path = home / ".claude" / ".credentials.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"claudeAiOauth": {
        "accessToken": tokens["access"], "refreshToken": tokens["refresh"],
        "expiresAt": int((time.time() + expires_in) * 1000), "scopes": ["user:inference"], "subscriptionType": "pro"}}))
    return path


def test_login_check_reports_the_login_its_expiry_and_refreshes_an_expired_one_into_the_file(world, tmp_path):
    tokens, out, start = world
    fake = start(-60)
    home = tmp_path / "home"
    path = credentials_file(home, tokens, -60)
    code, text, err = login_check(home, "--gateway-upstream", fake.base_url,
                                  "--gateway-token-url", fake.base_url + "/v1/oauth/token")
    issued = json.loads((out / "issued.json").read_text())
    assert code == 0, err
    assert f"login:   claude/login ({path})" in text and "refreshed by this check" in text
    assert "usable:  yes: POST /v1/messages answered 200" in text and f"written back to {path}" in text
    saved = json.loads(path.read_text())["claudeAiOauth"]
    assert (saved["accessToken"], saved["refreshToken"]) == (issued["access"][-1], issued["refresh"][-1])
    assert saved["subscriptionType"] == "pro"
    assert not any(t in text + err for t in (*issued["access"], *issued["refresh"]))
    # The next check uses the written-back login as it is: no refresh.
    code, text, _ = login_check(home, "--gateway-upstream", fake.base_url)
    assert code == 0 and "refreshed" not in text and len(issued["access"]) == len(
        json.loads((out / "issued.json").read_text())["access"])


def test_login_check_says_not_usable_when_the_vendor_refuses_the_login(world, tmp_path):
    tokens, out, start = world
    fake = start(-60)
    home = tmp_path / "home"
    credentials_file(home, {**tokens, "refresh": "sk-ant-ort01-REVOKED-0123456789"}, -60)
    code, text, _ = login_check(home, "--gateway-upstream", fake.base_url,
                                "--gateway-token-url", fake.base_url + "/v1/oauth/token")
    assert code == 1
    assert "usable:  NO: POST /v1/messages answered 401; refresh failed: the token endpoint answered 400 " \
           "(invalid_grant)" in text


def test_login_check_of_a_long_lived_token_and_of_nothing(world, tmp_path):
    tokens, out, start = world
    fake = start(3600)
    home = tmp_path / "home"
    home.mkdir()
    code, text, _ = login_check(home, "--gateway-upstream", fake.base_url, env={"CLAUDE_CODE_OAUTH_TOKEN": tokens["oauth"]})
    assert code == 0 and "login:   claude/oauth-token ($CLAUDE_CODE_OAUTH_TOKEN)" in text
    assert "expires: no expiry known" in text
    code, text, _ = login_check(home, "--gateway-upstream", fake.base_url,
                                env={"CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-WRONG-0123456789"})
    assert code == 1 and "answered 401" in text
    code, text, err = login_check(home, "--gateway-upstream", fake.base_url)
    assert code == 2 and "claude needs a credential and none was found" in err


def test_a_call_the_login_answers_itself_never_reaches_the_vendor(world, tmp_path):
    from egress import logins
    from egress.gateway_rules import ENDPOINTS
    tokens, out, start = world
    fake = start(3600)
    kind = logins.KINDS.get("test/answers") or logins.register(logins.GatewayKind(
        "test/answers", "anthropic", "authorization", "Bearer ", "https://api.anthropic.com", ENDPOINTS["anthropic"],
        answers=(logins.Answer("profile", "GET", r"/api/oauth/profile",
                               lambda doc: (200, {"account": "placeholder"}, {"Metadata-Flavor": "Google"})),)))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[2])}
    # The gateway process must know the kind too: it is registered by a module the test names.
    (tmp_path / "sitecustomize.py").write_text(
        "from egress import logins\nfrom egress.gateway_rules import ENDPOINTS\n"
        "logins.register(logins.GatewayKind('test/answers', 'anthropic', 'authorization', 'Bearer ', "
        "'https://api.anthropic.com', ENDPOINTS['anthropic'], answers=(logins.Answer('profile', 'GET', "
        "r'/api/oauth/profile', lambda doc: (200, {'account': 'placeholder'}, {'Metadata-Flavor': 'Google'})),)))\n")
    env["PYTHONPATH"] = f"{tmp_path}:{env['PYTHONPATH']}"
    with GatewayProcess(tmp_path / "gw", {"anthropic": {"kind": kind.name, "access_token": tokens["oauth"]}},
                        {"anthropic": fake.base_url}, logins={"anthropic": kind.name}, env=env) as gw:
        with urllib.request.urlopen(gw.url("anthropic") + "/api/oauth/profile", timeout=10) as answer:
            status, headers, body = answer.status, answer.headers, json.loads(answer.read())
    log = gw.log()
    assert (status, body, headers["Metadata-Flavor"]) == (200, {"account": "placeholder"}, "Google")
    assert fake.requests == []
    assert [(e["decision"], e["rule"]) for e in log] == [("answer", "anthropic:profile")]
