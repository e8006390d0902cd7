"""Gemini CLI's Google login through the real agent-gateway process, against Google's fake on
loopback: the CLI's Code Assist calls go to the fake with the real token, an expired token is
refreshed with the refresh token and the CLI's own OAuth client, a token Google refuses is
refreshed and the request sent once more, the account-changing calls are refused and the metrics
answered by the gateway; the log holds no token."""
from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from egress import login_gemini
from tests.conformance.fakes import Scenario
from tests.egress.gateway_process import GatewayProcess
from tests.logins.fake_google import GEMINI_CLI_CLIENT_ID, GEMINI_CLI_CLIENT_SECRET, GoogleAccount, GoogleFake

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "node_modules" / "@google" / "gemini-cli" / "bundle"
PLACEHOLDER = "ya29.agent-sandbox-placeholder"
TURN = {"model": "gemini-2.5-flash", "project": "fake-gca-project-4242", "user_prompt_id": "u-1",
        "request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}}


def call(base: str, method: str, body: dict | None = None, token: str = PLACEHOLDER, query: str = "") -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/v1internal:{method}{query}", data=data,
                                     method="GET" if body is None else "POST",
                                     headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def secret_of(account: GoogleAccount, expires_at: float | None = None) -> dict:
    return {"kind": "gemini/google", "access_token": account.access_token, "refresh_token": account.refresh_token,
            "expires_at": int(account.access_expires_at if expires_at is None else expires_at)}


def gateway(tmp_path: Path, fake: GoogleFake, secret: dict) -> GatewayProcess:
    return GatewayProcess(tmp_path / "gw", {"gemini": secret}, {"gemini": fake.base_url},
                          logins={"gemini": "gemini/google"}, token_urls={"gemini": fake.token_url})


def test_the_oauth_client_is_the_one_the_pinned_cli_uses():
    """A refresh token only works with the client that obtained it: the gateway's must be the CLI's."""
    core = next(p for p in BUNDLE.glob("chunk-*.js") if b"var OAUTH_CLIENT_ID" in p.read_bytes())
    text = core.read_text()
    assert re.search(r'var OAUTH_CLIENT_ID = "([^"]+)"', text).group(1) == login_gemini.CLIENT_ID == GEMINI_CLI_CLIENT_ID
    assert re.search(r'var OAUTH_CLIENT_SECRET = "([^"]+)"', text).group(1) == login_gemini.CLIENT_SECRET \
        == GEMINI_CLI_CLIENT_SECRET
    # What the container's variables rely on: the base URL and the token given from outside.
    assert 'process.env["CODE_ASSIST_ENDPOINT"] ?? CODE_ASSIST_ENDPOINT' in text
    assert 'process.env["GOOGLE_GENAI_USE_GCA"] && process.env["GOOGLE_CLOUD_ACCESS_TOKEN"]' in text


def test_the_placeholder_sent_to_google_directly_is_refused():
    account = GoogleAccount()
    with GoogleFake(Scenario(("echo hi",), "Hello."), account) as fake:
        assert call(fake.base_url, "loadCodeAssist", {})[0] == 401
        assert call(fake.base_url, "loadCodeAssist", {}, token=account.access_token)[0] == 200
        assert [r["why"] for r in fake.refused] == ["unknown token"]


def test_an_expired_login_is_refreshed_with_the_clis_client_before_use(tmp_path):
    account = GoogleAccount(access_expires_at=time.time() - 60, lifetime=3600)
    with GoogleFake(Scenario(("echo hi",), "Hello."), account) as fake:
        with gateway(tmp_path, fake, secret_of(account)) as gw:
            first = call(gw.url("gemini"), "loadCodeAssist", {"metadata": {}})
            second = call(gw.url("gemini"), "streamGenerateContent", TURN, query="?alt=sse")
            renewed = json.loads((gw.renewed_dir / "gemini").read_text())
        log = gw.log()
        requests = fake.requests
    [issued] = fake.issued
    assert first[0] == 200 and json.loads(first[1])["cloudaicompanionProject"] == account.project
    assert second[0] == 200 and '"response"' in second[1] and "Hello." in second[1]
    [refresh, *model] = requests
    form = dict(pair.split("=", 1) for pair in refresh.body.split("&"))
    assert (form["grant_type"], form["client_id"]) == ("refresh_token", GEMINI_CLI_CLIENT_ID)
    assert [r.headers["authorization"] for r in model] == [f"Bearer {issued['token']}"] * 2
    assert fake.refused == []
    assert [e.get("event") or e["decision"] for e in log] == ["refresh", "forward", "forward"]
    assert log[0]["outcome"] == "refreshed" and log[0]["why"] == "expiry"
    assert not any(t in json.dumps(log) for t in (issued["token"], account.access_token, account.refresh_token))
    assert renewed["access_token"] == issued["token"] and renewed["refresh_token"] == account.refresh_token


def test_a_token_google_refuses_is_refreshed_and_the_request_sent_once_more(tmp_path):
    account = GoogleAccount(lifetime=3600)
    with GoogleFake(Scenario(("echo hi",), "Hello."), account) as fake:
        with gateway(tmp_path, fake, secret_of(account)) as gw:
            assert call(gw.url("gemini"), "retrieveUserQuota", {"project": account.project})[0] == 200
            fake.expire_all()   # revoked at Google, though the login says it has an hour left
            status, text = call(gw.url("gemini"), "generateContent", TURN)
        log = gw.log()
    assert status == 200 and "Hello." in text
    assert [r["why"] for r in fake.refused] == ["expired token"] and len(fake.issued) == 1
    assert [e.get("event") or e["decision"] for e in log] == ["forward", "refresh", "forward"]
    assert log[1]["why"] == "rejected" and "sent again once" in log[2]["reason"]


def test_a_refused_refresh_gives_the_cli_googles_401(tmp_path):
    account = GoogleAccount(access_expires_at=time.time() - 1)
    with GoogleFake(Scenario(("echo hi",), "Hello."), account) as fake:
        secret = {**secret_of(account), "refresh_token": "1//revoked-refresh-token"}
        with gateway(tmp_path, fake, secret) as gw:
            status, text = call(gw.url("gemini"), "loadCodeAssist", {})
        log = gw.log()
    assert status == 401 and "UNAUTHENTICATED" in text
    assert log[0]["outcome"] == "failed" and "invalid_grant" in log[0]["reason"]


def test_the_account_changing_calls_are_refused_and_the_metrics_answered_by_the_gateway(tmp_path):
    account = GoogleAccount()
    with GoogleFake(Scenario(("echo hi",), "Hello."), account) as fake:
        with gateway(tmp_path, fake, secret_of(account)) as gw:
            metrics = call(gw.url("gemini"), "recordCodeAssistMetrics", {"project": account.project, "metrics": []})
            refused = [call(gw.url("gemini"), method, {})[0]
                       for method in ("onboardUser", "setCodeAssistGlobalUserSetting", "embedContent")]
            search = call(gw.url("gemini"), "generateContent",
                          {**TURN, "request": {**TURN["request"], "tools": [{"googleSearch": {}}]}})
            token_path = urllib.request.Request(gw.url("gemini") + "/token", data=b"grant_type=refresh_token")
            with pytest.raises(urllib.error.HTTPError) as token_refused:
                urllib.request.urlopen(token_path, timeout=10)
        log = gw.log()
        seen = [r.path for r in fake.requests]
    assert metrics == (200, "{}")
    assert refused == [404, 404, 404] and token_refused.value.code == 404
    assert search[0] == 400 and "server-side-tools" in search[1]
    assert seen == []
    assert [(e["decision"], e["rule"]) for e in log][0] == ("answer", "gemini:metrics")
