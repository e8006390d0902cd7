"""gemini/google on the host: the CLI's cached login read into the gateway's secret, what the
container gets (never a token), login-check against Google's fake, and the refreshed login written
back to the user's file."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from launcher import login_gemini, logins
from tests.conformance.fakes import Scenario
from tests.logins.fake_google import GoogleAccount, GoogleFake

ROOT = Path(__file__).resolve().parents[2]


def cached_login(account: GoogleAccount, **extra) -> dict:
    """~/.gemini/oauth_creds.json as the CLI writes it (google-auth-library's credentials)."""
    return {"access_token": account.access_token, "refresh_token": account.refresh_token,
            "scope": "https://www.googleapis.com/auth/cloud-platform openid", "token_type": "Bearer",
            "id_token": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "expiry_date": int(account.access_expires_at * 1000), **extra}


def home_with(tmp_path: Path, creds: dict | None) -> Path:
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True)
    if creds is not None:
        (home / ".gemini" / "oauth_creds.json").write_text(json.dumps(creds, indent=2))
    return home


def context(home: Path, **environ) -> logins.Context:
    return logins.Context(home, {"HOME": str(home), **environ})


def test_the_cached_login_becomes_the_gateways_secret(tmp_path):
    account = GoogleAccount()
    found = logins.choose("gemini", "auto", context(home_with(tmp_path, cached_login(account)),
                                                    GOOGLE_CLOUD_PROJECT="my-project-1"))
    assert found.kind == "gemini/google" and found.origin.endswith("/home/.gemini/oauth_creds.json")
    assert found.secret == {"kind": "gemini/google", "access_token": account.access_token,
                            "refresh_token": account.refresh_token, "expires_at": int(account.access_expires_at)}
    assert found.details == {"project": "my-project-1"}


def test_the_container_gets_placeholders_and_the_setting_that_selects_the_login(tmp_path):
    account = GoogleAccount()
    found = logins.choose("gemini", "gemini/google", context(home_with(tmp_path, cached_login(account))))
    box = logins.container_for(found.kind, "gateway", found.details)
    assert box.env == {"GOOGLE_GENAI_USE_GCA": "true", "GOOGLE_CLOUD_ACCESS_TOKEN": "ya29.agent-sandbox-placeholder",
                       "CODE_ASSIST_ENDPOINT": "http://gateway:8083"}
    assert {path: json.loads(text) for path, text in box.files.items()} == {
        "/home/agent/.gemini/settings.json": {"security": {"auth": {"selectedType": "oauth-personal"}}}}
    everything = json.dumps([box.env, box.files, list(box.args)])
    assert account.access_token not in everything and account.refresh_token not in everything


@pytest.mark.parametrize("creds, message", [
    ({"access_token": "ya29.a-real-looking-token", "expiry_date": 1}, "holds no refresh token"),
    ({"type": "service_account", "private_key": "x"}, "'service_account' credentials, not a Google login"),
    ({"access_token": "ya29.agent-sandbox-placeholder", "refresh_token": "1//r-0123456789", "expiry_date": 1},
     "placeholder"),
])
def test_a_login_that_cannot_be_used_is_refused_saying_why(tmp_path, creds, message):
    with pytest.raises(logins.LoginError, match=message):
        logins.choose("gemini", "gemini/google", context(home_with(tmp_path, creds)))


def test_without_a_login_auto_says_what_to_do_and_encrypted_storage_is_named(tmp_path):
    home = home_with(tmp_path, None)
    with pytest.raises(logins.NotFound, match="Gemini CLI's Google login"):
        logins.choose("gemini", "auto", context(home))
    with pytest.raises(logins.LoginError, match="GEMINI_FORCE_ENCRYPTED_FILE_STORAGE=true .* --login-command"):
        logins.choose("gemini", "gemini/google", context(home, GEMINI_FORCE_ENCRYPTED_FILE_STORAGE="true"))


def test_a_login_command_that_prints_the_json_is_read_instead_of_the_file(tmp_path):
    account = GoogleAccount()
    script = tmp_path / "print-login"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(cached_login(account))}\nEOF\n")
    script.chmod(0o700)
    found = logins.choose("gemini", "gemini/google",
                          logins.Context(home_with(tmp_path, None), {}, login_command=(str(script),)))
    assert found.origin == "--login-command" and found.secret["refresh_token"] == account.refresh_token


def login_check(home: Path, fake: GoogleFake, *extra: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "launcher.cli", "login-check", "gemini", *extra,
                           "--gateway-upstream", fake.base_url, "--gateway-token-url", fake.token_url],
                          capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)


def test_login_check_refreshes_an_expired_login_and_writes_it_back(tmp_path):
    account = GoogleAccount(access_expires_at=time.time() - 120, lifetime=3600)
    home = home_with(tmp_path, cached_login(account))
    with GoogleFake(Scenario(("echo hi",), "Hello."), account) as fake:
        done = login_check(home, fake)
        seen = [(r.path, r.headers.get("authorization")) for r in fake.requests]
    assert done.returncode == 0, done.stderr
    [issued] = fake.issued
    assert "login:   gemini/google" in done.stdout and "refreshed by this check" in done.stdout
    assert "usable:  yes: POST /v1internal:loadCodeAssist answered 200" in done.stdout
    assert seen == [("/token", None), ("/v1internal:loadCodeAssist", f"Bearer {issued['token']}")]
    written = json.loads((home / ".gemini" / "oauth_creds.json").read_text())
    assert written["access_token"] == issued["token"] and written["refresh_token"] == account.refresh_token
    assert written["expiry_date"] // 1000 == int(issued["expires_at"]) and written["id_token"]
    assert account.access_token not in done.stdout + done.stderr and issued["token"] not in done.stdout


def test_login_check_says_a_revoked_login_is_not_usable(tmp_path):
    account = GoogleAccount(access_expires_at=time.time() - 120)
    home = home_with(tmp_path, cached_login(account, refresh_token="1//revoked-0123456789"))
    with GoogleFake(Scenario(("echo hi",), "Hello."), account) as fake:
        done = login_check(home, fake, "--login", "gemini/google")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "usable:  NO" in done.stdout and "invalid_grant" in done.stdout

