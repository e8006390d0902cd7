"""Claude Code's logins on the host, pure parts: where each kind is found, what `--login auto`
picks, what the container gets (never a token), the refusals, and the write-back of a refreshed
login into the user's credentials file."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from egress.gateway import KeySource
from launcher import logins
from launcher.login_claude import PLACEHOLDER_TOKEN, credentials_path, parse_credentials

ACCESS = "sk-ant-oat01-REAL-access-abcdef012345"
REFRESH = "sk-ant-ort01-REAL-refresh-abcdef012345"
LONG = "sk-ant-oat01-REAL-long-lived-abcdef012345"


def credentials(expires_ms: int | None = None, **oauth) -> dict:
    return {"claudeAiOauth": {"accessToken": ACCESS, "refreshToken": REFRESH,
                              "expiresAt": expires_ms if expires_ms is not None else int((time.time() + 3600) * 1000),
                              "scopes": ["user:inference", "user:profile", "user:sessions:claude_code"],
                              "subscriptionType": "max", "rateLimitTier": "default_claude_max_20x", **oauth},
            "mcpOAuth": {"some-server": {"accessToken": "not ours"}}}


def home_with(tmp_path: Path, data: dict | None) -> Path:
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    if data is not None:
        (home / ".claude" / ".credentials.json").write_text(json.dumps(data))
    return home


def context(home: Path, environ: dict | None = None, command: str | None = None, keys=()) -> logins.Context:
    return logins.context_from(list(keys), command, {"HOME": str(home), **(environ or {})})


# --- finding ----------------------------------------------------------------------------------------

def test_the_login_file_becomes_the_gateways_secret_and_the_containers_plan(tmp_path):
    found = logins.choose("claude", "auto", context(home_with(tmp_path, credentials())))
    assert found.kind == "claude/login" and found.origin.endswith("/home/.claude/.credentials.json")
    assert found.secret == {"kind": "claude/login", "access_token": ACCESS, "refresh_token": REFRESH,
                            "expires_at": found.secret["expires_at"],
                            "scopes": ["user:inference", "user:profile", "user:sessions:claude_code"]}
    assert found.details == {"subscription_type": "max", "rate_limit_tier": "default_claude_max_20x"}


def test_claude_config_dir_moves_the_file(tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / ".credentials.json").write_text(json.dumps(credentials()))
    ctx = context(home_with(tmp_path, None), {"CLAUDE_CONFIG_DIR": str(folder)})
    assert credentials_path(ctx) == folder / ".credentials.json"
    assert logins.choose("claude", "auto", ctx).kind == "claude/login"


def test_auto_prefers_a_key_given_then_the_environment_token_then_the_file(tmp_path):
    home = home_with(tmp_path, credentials())
    key = KeySource("anthropic", file=tmp_path / "key")
    assert logins.choose("claude", "auto", context(home, {"CLAUDE_CODE_OAUTH_TOKEN": LONG}, keys=[key])).kind == \
        "claude/api-key"
    found = logins.choose("claude", "auto", context(home, {"CLAUDE_CODE_OAUTH_TOKEN": LONG}))
    assert (found.kind, found.origin, found.secret) == (
        "claude/oauth-token", "$CLAUDE_CODE_OAUTH_TOKEN", {"kind": "claude/oauth-token", "access_token": LONG})
    assert logins.choose("claude", "claude/login", context(home, {"CLAUDE_CODE_OAUTH_TOKEN": LONG})).kind == \
        "claude/login"


def test_a_login_command_gives_either_kind_by_what_it_prints(tmp_path):
    home = home_with(tmp_path, None)
    script = tmp_path / "print"
    script.write_text(json.dumps(credentials()))
    found = logins.choose("claude", "auto", context(home, command=f"cat {script}"))
    assert (found.kind, found.origin) == ("claude/login", "--login-command")
    script.write_text(LONG + "\n")
    found = logins.choose("claude", "auto", context(home, command=f"cat {script}"))
    assert (found.kind, found.secret["access_token"]) == ("claude/oauth-token", LONG)
    with pytest.raises(logins.LoginError, match="exited 1"):
        logins.choose("claude", "auto", context(home, command="false"))


def test_nothing_found_says_what_was_looked_for_and_what_to_do(tmp_path):
    with pytest.raises(logins.NotFound) as error:
        logins.choose("claude", "auto", context(home_with(tmp_path, None)))
    text = str(error.value)
    assert "claude needs a credential" in text and ".credentials.json" in text and "--key-file anthropic=PATH" in text
    with pytest.raises(logins.LoginError, match="--login claude/login: no Claude Code login"):
        logins.choose("claude", "claude/login", context(home_with(tmp_path / "b", None)))
    with pytest.raises(logins.LoginError, match="--login codex/chatgpt: not a login kind of claude|"
                                                "--login claude/nope: not a login kind"):
        logins.choose("claude", "claude/nope", context(home_with(tmp_path / "c", None)))


@pytest.mark.parametrize("oauth, message", [
    ({"refreshToken": ""}, "holds no refresh token"),
    ({"expiresAt": None}, "expiresAt is not a time"),
    ({"accessToken": "has a space"}, "claudeAiOauth.accessToken is not a token"),
    ({"scopes": ["org:create_api_key", "user:profile"]}, "do not include user:inference"),
])
def test_an_unusable_login_file_is_refused_with_the_reason_and_no_token(tmp_path, oauth, message):
    with pytest.raises(logins.LoginError) as error:
        logins.choose("claude", "auto", context(home_with(tmp_path, credentials(**oauth))))
    assert message in str(error.value) and ACCESS not in str(error.value) and REFRESH not in str(error.value)


def test_a_file_without_a_login_and_a_link_are_refused(tmp_path):
    with pytest.raises(logins.LoginError, match="no 'claudeAiOauth' object"):
        parse_credentials(json.dumps({"mcpOAuth": {}}), "x")
    home = home_with(tmp_path, None)
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps(credentials()))
    os.symlink(target, home / ".claude" / ".credentials.json")
    with pytest.raises(logins.LoginError, match="Too many levels of symbolic links|symbolic link"):
        logins.choose("claude", "auto", context(home))


def test_the_placeholder_itself_is_not_taken_for_a_token(tmp_path):
    with pytest.raises(logins.LoginError, match="holds agent-run's placeholder"):
        logins.choose("claude", "auto", context(home_with(tmp_path, None), {"CLAUDE_CODE_OAUTH_TOKEN": PLACEHOLDER_TOKEN}))


def test_under_sudo_the_users_home_is_searched_not_roots(tmp_path):
    import pwd
    if os.geteuid() != 0:
        pytest.skip("the SUDO_USER rule applies to root only")
    user = pwd.getpwuid(0).pw_name
    assert logins.user_home({"SUDO_USER": user, "HOME": "/elsewhere"}) == Path(pwd.getpwnam(user).pw_dir)
    assert logins.user_home({"HOME": str(tmp_path)}) == tmp_path


# --- the container ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["claude/oauth-token", "claude/login"])
def test_the_container_gets_a_placeholder_token_and_the_gateway_never_a_key_variable(kind):
    box = logins.container_for(kind, "agent-gateway", {"subscription_type": "pro"})
    assert box.env["CLAUDE_CODE_OAUTH_TOKEN"] == PLACEHOLDER_TOKEN
    assert box.env["ANTHROPIC_BASE_URL"] == "http://agent-gateway:8081"
    assert box.env["CLAUDE_CODE_SUBSCRIPTION_TYPE"] == "pro"
    assert "ANTHROPIC_API_KEY" not in box.env and box.files == {} and box.args == ()


def test_the_api_keys_container_is_todays():
    assert logins.container_for("claude/api-key", "agent-gateway", {}).env == {
        "ANTHROPIC_API_KEY": "agent-sandbox-placeholder", "ANTHROPIC_BASE_URL": "http://agent-gateway:8081"}
    codex = logins.container_for("codex/api-key", "agent-gateway", {})
    assert codex.env == {"OPENAI_API_KEY": "agent-sandbox-placeholder"}
    assert 'model_providers.agent_gateway.base_url="http://agent-gateway:8082/v1"' in codex.args


# --- the write-back --------------------------------------------------------------------------------------

def renewed() -> dict:
    return {"kind": "claude/login", "access_token": "sk-ant-oat01-NEW-access-0123456789",
            "refresh_token": "sk-ant-ort01-NEW-refresh-0123456789", "expires_at": int(time.time() + 28800)}


def test_a_refreshed_login_goes_back_into_the_users_file_keeping_the_rest(tmp_path):
    home = home_with(tmp_path, credentials())
    ctx = context(home)
    found = logins.choose("claude", "auto", ctx)
    message = logins.give_back("claude/login", ctx, found.secret, renewed())
    assert "written back to" in message and "NEW" not in message
    data = json.loads((home / ".claude" / ".credentials.json").read_text())
    assert data["claudeAiOauth"]["accessToken"] == renewed()["access_token"]
    assert data["claudeAiOauth"]["refreshToken"] == renewed()["refresh_token"]
    assert data["claudeAiOauth"]["expiresAt"] == renewed()["expires_at"] * 1000
    assert data["claudeAiOauth"]["subscriptionType"] == "max" and data["mcpOAuth"]["some-server"]
    assert (home / ".claude" / ".credentials.json").stat().st_mode & 0o777 == 0o600


def test_a_file_the_users_own_claude_refreshed_meanwhile_is_left_alone(tmp_path):
    home = home_with(tmp_path, credentials())
    ctx = context(home)
    found = logins.choose("claude", "auto", ctx)
    (home / ".claude" / ".credentials.json").write_text(json.dumps(credentials(refreshToken="sk-ant-ort01-THEIRS-12345")))
    assert "changed during the run" in logins.give_back("claude/login", ctx, found.secret, renewed())
    assert "THEIRS" in (home / ".claude" / ".credentials.json").read_text()


def test_nothing_is_written_back_when_nothing_was_refreshed(tmp_path):
    home = home_with(tmp_path, credentials())
    ctx = context(home)
    found = logins.choose("claude", "auto", ctx)
    assert logins.give_back("claude/login", ctx, found.secret, dict(found.secret)) is None


def test_a_refused_kind_is_refused_by_name_and_skipped_by_auto(tmp_path):
    never = logins.HostKind("claude/test-refused", "claude", "a login that needs its token inside",
                            lambda ctx: logins.Found("claude/test-refused", "x", {}), logins.container_for,
                            refused="it cannot work without the real token inside the container; use claude/login",
                            auto_order=1)
    logins.KINDS.setdefault(never.name, never)
    try:
        with pytest.raises(logins.LoginError, match="--login claude/test-refused: it cannot work without the real "
                                                    "token inside the container; use claude/login"):
            logins.choose("claude", "claude/test-refused", context(home_with(tmp_path, None)))
        assert logins.choose("claude", "auto", context(home_with(tmp_path / "b", credentials()))).kind == "claude/login"
    finally:
        logins.KINDS.pop(never.name)
