"""The shared core of logins, pure parts: the kinds registry, the secret documents, the gateway's
config, and the credential objects that refresh (with a scripted token endpoint, no network)."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from egress import logins
from egress.gateway import render_gateway_config, write_secrets
from egress.gateway_server import ConfigError, parse_config, read_secret_file
from multidict import CIMultiDict

REAL_ACCESS = "sk-ant-oat01-REAL-access-0123456789"
REAL_REFRESH = "sk-ant-ort01-REAL-refresh-0123456789"


def login_doc(expires_in: float = 3600, **extra) -> dict:
    return {"kind": "claude/login", "access_token": REAL_ACCESS, "refresh_token": REAL_REFRESH,
            "expires_at": int(time.time() + expires_in), **extra}


class TokenEndpoint:
    """A scripted token endpoint: answers in order, records each request's fields."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    async def __call__(self, url, fields, body):
        self.calls.append((url, dict(fields), body))
        await asyncio.sleep(0.01)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, payload = answer
        return status, json.dumps(payload).encode()


def refreshing(doc, endpoint, notes=None, saved=None):
    return logins.credential_for(doc, logins.kind("claude/login"), endpoint, (notes if notes is not None else []).append,
                                 saved=saved)


# --- the registry and the secrets --------------------------------------------------------------------

def test_every_vendor_has_its_api_key_kind_with_todays_header():
    assert {k: (logins.kind(v).header, logins.kind(v).prefix) for k, v in logins.API_KEY_KINDS.items()} == {
        "anthropic": ("x-api-key", ""), "openai": ("authorization", "Bearer "), "gemini": ("x-goog-api-key", "")}
    assert all(logins.kind(v).refresh is None for v in logins.API_KEY_KINDS.values())


def test_an_unknown_kind_is_refused_by_name():
    with pytest.raises(logins.LoginError, match="'claude/nope': not known.*claude/login"):
        logins.kind("claude/nope")


def test_a_kind_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="registered twice"):
        logins.register(logins.kind("claude/api-key"))


def test_a_login_secret_is_checked_and_never_echoed():
    logins.parse_secret(json.dumps(login_doc()), "secret")
    broken = login_doc(access_token="has spaces in it " + REAL_ACCESS)
    with pytest.raises(logins.LoginError) as error:
        logins.parse_secret(json.dumps(broken), "secret file x")
    assert "access_token is not a token" in str(error.value) and REAL_ACCESS not in str(error.value)
    with pytest.raises(logins.LoginError, match="refresh_token is not a token"):
        logins.parse_secret(json.dumps({**login_doc(), "refresh_token": None}), "x")
    with pytest.raises(logins.LoginError, match="expires_at must be a number"):
        logins.parse_secret(json.dumps({**login_doc(), "expires_at": "soon"}), "x")
    with pytest.raises(logins.LoginError, match="not known"):
        logins.parse_secret(json.dumps({**login_doc(), "kind": "claude/other"}), "x")
    # A login that never refreshes needs no refresh token.
    logins.parse_secret(json.dumps({"kind": "claude/oauth-token", "access_token": REAL_ACCESS}), "x")


def test_the_secrets_folder_holds_a_key_as_text_and_a_login_as_json(tmp_path):
    import os
    write_secrets(tmp_path / "s", {"anthropic": login_doc(), "openai": "sk-openai-key-123456"},
                  uid=os.getuid(), gid=os.getgid())
    assert read_secret_file(str(tmp_path / "s"), "openai") == "sk-openai-key-123456"
    assert read_secret_file(str(tmp_path / "s"), "anthropic")["refresh_token"] == REAL_REFRESH
    with pytest.raises(ValueError, match="secret anthropic: .*access_token"):
        write_secrets(tmp_path / "t", {"anthropic": {**login_doc(), "access_token": ""}}, uid=os.getuid(),
                      gid=os.getgid())


# --- the config ------------------------------------------------------------------------------------------

def config(**kwargs):
    return json.loads(render_gateway_config(["anthropic"], agent_subnets=["10.0.0.0/24"], **kwargs))


def test_without_logins_the_route_is_todays_api_key_route():
    [route] = config()["routes"]
    assert route["credential"] == {"secret": "anthropic", "header": "x-api-key", "prefix": "",
                                   "login": "claude/api-key", "token_url": None}
    assert route["upstream"] == "https://api.anthropic.com" and route["answers"] == []


def test_a_login_route_names_its_kind_header_and_token_url():
    data = config(logins={"anthropic": "claude/login"}, token_urls={"anthropic": "http://10.1.1.1:8080/v1/oauth/token"},
                  renewed_dir="/run/agent-gateway/renewed")
    [route] = data["routes"]
    assert route["credential"] == {"secret": "anthropic", "header": "authorization", "prefix": "Bearer ",
                                   "login": "claude/login", "token_url": "http://10.1.1.1:8080/v1/oauth/token"}
    assert data["renewed_dir"] == "/run/agent-gateway/renewed"
    parsed = parse_config(json.dumps(data))
    assert parsed.routes[0].login == "claude/login" and parsed.renewed_dir == "/run/agent-gateway/renewed"


@pytest.mark.parametrize("kwargs, message", [
    ({"logins": {"anthropic": "codex/api-key"}}, "codex/api-key is for openai, not anthropic"),
    ({"logins": {"anthropic": "claude/nope"}}, "not known"),
    ({"logins": {"openai": "codex/api-key"}}, "not among the gateway's vendors"),
    ({"logins": {"anthropic": "claude/oauth-token"}, "token_urls": {"anthropic": "https://x/t"}}, "never refreshed"),
    ({"renewed_dir": "relative"}, "renewed_dir 'relative' must be an absolute path"),
])
def test_bad_logins_in_the_config_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        config(**kwargs)


def test_the_gateway_refuses_a_config_whose_login_it_does_not_know():
    data = config(logins={"anthropic": "claude/login"})
    data["routes"][0]["credential"]["login"] = "claude/unknown"
    with pytest.raises(ConfigError, match="routes/0/credential: key 'login'.*not known"):
        parse_config(json.dumps(data))


def test_a_config_from_before_logins_still_reads_as_the_api_key():
    data = config()
    del data["routes"][0]["credential"]["login"], data["routes"][0]["answers"], data["renewed_dir"]
    assert parse_config(json.dumps(data)).routes[0].login == "claude/api-key"


# --- credentials -------------------------------------------------------------------------------------------

def test_a_key_and_a_long_lived_token_never_refresh():
    async def go():
        key = logins.credential_for("sk-key-12345678", logins.kind("claude/api-key"), None, None)
        token = logins.credential_for({"kind": "claude/oauth-token", "access_token": REAL_ACCESS},
                                      logins.kind("claude/oauth-token"), None, None)
        return (await key.current(), await token.current(), await token.refresh_after_rejection("x"))
    assert asyncio.run(go()) == ("sk-key-12345678", "Bearer " + REAL_ACCESS, False)


def test_a_fresh_token_is_used_as_it_is():
    endpoint = TokenEndpoint()
    assert asyncio.run(refreshing(login_doc(3600), endpoint).current()) == "Bearer " + REAL_ACCESS
    assert endpoint.calls == []


def test_a_token_near_its_expiry_is_refreshed_once_for_many_concurrent_requests():
    endpoint = TokenEndpoint((200, {"access_token": "new-access-token-1", "refresh_token": "new-refresh-token-1",
                                    "expires_in": 3600}))
    notes, saved = [], []
    credential = refreshing(login_doc(60), endpoint, notes, saved.append)

    async def go():
        return await asyncio.gather(*(credential.current() for _ in range(20)))
    assert set(asyncio.run(go())) == {"Bearer new-access-token-1"}
    [(url, fields, body)] = endpoint.calls
    assert url == "https://platform.claude.com/v1/oauth/token" and body == "json"
    assert fields == {"grant_type": "refresh_token", "refresh_token": REAL_REFRESH,
                      "client_id": "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
                      "scope": "user:profile user:inference user:sessions:claude_code user:mcp_servers "
                               "user:file_upload user:plugins"}
    assert saved[-1]["refresh_token"] == "new-refresh-token-1" and saved[-1]["expires_at"] > time.time() + 3000
    assert notes[-1]["outcome"] == "refreshed" and notes[-1]["rotated"] is True
    assert REAL_REFRESH not in json.dumps(notes) and "new-access-token-1" not in json.dumps(notes)


def test_a_response_without_a_refresh_token_keeps_the_one_held():
    endpoint = TokenEndpoint((200, {"access_token": "new-access-token-1", "expires_in": 3600}))
    credential = refreshing(login_doc(0), endpoint)
    asyncio.run(credential.current())
    assert credential.doc["refresh_token"] == REAL_REFRESH and credential.doc["access_token"] == "new-access-token-1"


def test_a_rejected_token_is_refreshed_once_and_a_stale_rejection_not_again():
    endpoint = TokenEndpoint((200, {"access_token": "new-access-token-1", "expires_in": 3600}))
    credential = refreshing(login_doc(3600), endpoint)

    async def go():
        first = await credential.current()
        refreshed = await credential.refresh_after_rejection(first)
        again = await credential.refresh_after_rejection(first)   # a second request with the old token
        return refreshed, again, await credential.current()
    assert asyncio.run(go()) == (True, True, "Bearer new-access-token-1")
    assert len(endpoint.calls) == 1


@pytest.mark.parametrize("answer, reason", [
    ((400, {"error": "invalid_grant", "error_description": "secret detail"}), "answered 400 (invalid_grant)"),
    ((200, {"access_token": "x y"}), "no positive expires_in"),
    ((200, {"access_token": "bad token!", "expires_in": 60}), "access_token is not a token"),
    (OSError("refused"), "could not be reached (OSError)"),
])
def test_a_failed_refresh_is_logged_without_secrets_and_the_old_token_kept(answer, reason):
    notes = []
    credential = refreshing(login_doc(-10), TokenEndpoint(answer), notes)
    assert asyncio.run(credential.current()) == "Bearer " + REAL_ACCESS
    assert notes[-1]["outcome"] == "failed" and reason in notes[-1]["reason"]
    assert "secret detail" not in json.dumps(notes) and REAL_REFRESH not in json.dumps(notes)
    assert asyncio.run(credential.refresh_after_rejection("Bearer " + REAL_ACCESS)) is False


def test_a_failed_refresh_is_not_retried_at_every_request_while_the_token_lasts():
    endpoint = TokenEndpoint((500, {}), (200, {"access_token": "new-access-token-1", "expires_in": 3600}))
    credential = refreshing(login_doc(100), endpoint)

    async def go():
        await credential.current()
        await credential.current()
    asyncio.run(go())
    assert len(endpoint.calls) == 1


def test_required_headers_are_added_to_a_comma_list_once():
    headers = CIMultiDict({"anthropic-beta": "claude-code-20250219, oauth-2025-04-20"})
    logins.merge_required_headers(headers, {"anthropic-beta": "oauth-2025-04-20"})
    assert headers["anthropic-beta"] == "claude-code-20250219,oauth-2025-04-20"
    headers = CIMultiDict()
    logins.merge_required_headers(headers, {"anthropic-beta": "oauth-2025-04-20"})
    assert headers["anthropic-beta"] == "oauth-2025-04-20"


def test_headers_from_the_secret_replace_the_clients():
    kind = logins.GatewayKind("test/headers", "openai", "authorization", "Bearer ", "https://x", (),
                              required_headers={"x-beta": "one"},
                              secret_headers=lambda doc: {"chatgpt-account-id": doc["account_id"]})
    headers = CIMultiDict([("chatgpt-account-id", "the-agents-choice"), ("chatgpt-account-id", "another")])
    logins.add_login_headers(headers, kind, {"account_id": "acct-real"})
    assert headers.getall("chatgpt-account-id") == ["acct-real"] and headers["x-beta"] == "one"


def test_a_grant_of_its_own_replaces_the_refresh_token_grant():
    kind = logins.GatewayKind("test/grant", "gemini", "authorization", "Bearer ", "https://x", (),
                              refresh=logins.Refresh("https://oauth.example/token", {"scope": "s"}, "form",
                                                     grant=lambda doc: {"grant_type": "jwt-bearer",
                                                                        "assertion": "signed-" + doc["key_id"]}))
    doc = {"kind": "test/grant", "access_token": "placeholder-0123", "expires_at": 0, "key_id": "k1"}
    endpoint = TokenEndpoint((200, {"access_token": "new-access-token-1", "expires_in": 3600}))
    credential = logins.credential_for(doc, kind, endpoint, [].append)
    assert asyncio.run(credential.current()) == "Bearer new-access-token-1"
    assert endpoint.calls[0][1:] == ({"scope": "s", "grant_type": "jwt-bearer", "assertion": "signed-k1"}, "form")


def test_the_audit_lists_refreshes_and_answered_calls_apart(tmp_path):
    from launcher.audit import build_audit, format_audit
    lines = [{"time": "t", "vendor": "anthropic", "event": "refresh", "login": "claude/login", "why": "expiry",
              "outcome": "refreshed", "rotated": True},
             {"time": "t", "vendor": "anthropic", "event": "refresh", "login": "claude/login", "why": "rejected",
              "outcome": "failed", "reason": "the token endpoint answered 400 (invalid_grant)"},
             {"time": "t", "client": "10.0.0.10", "vendor": "gemini", "method": "GET", "path": "/computeMetadata/v1/x",
              "status": 200, "decision": "answer", "rule": "gemini:metadata", "reason": "answered by the gateway",
              "bytes_up": 0, "bytes_down": 40},
             {"time": "t", "client": "10.0.0.10", "vendor": "anthropic", "method": "POST", "path": "/v1/messages",
              "status": 200, "decision": "forward", "rule": "anthropic:messages", "reason": "", "bytes_up": 5,
              "bytes_down": 9}]
    (tmp_path / "gateway.log").write_text("".join(json.dumps(line) + "\n" for line in lines))
    audit = build_audit(None, tmp_path / "gateway.log", None)
    model = audit["model_api"]
    assert [(r["login"], r["outcome"]) for r in model["login_refreshes"]] == [
        ("claude/login", "failed"), ("claude/login", "refreshed")]
    assert [(r["path"], r["rule"]) for r in model["answered"]] == [("/computeMetadata/v1/x", "gemini:metadata")]
    assert model["refused"] == [] and audit["problems"] == []
    text = format_audit(audit)
    assert "login     anthropic claude/login refresh failed (1x)" in text
    assert "model answered gemini GET /computeMetadata/v1/x by the gateway (1x)" in text


def test_after_a_failed_refresh_neither_expiry_nor_401s_refresh_again_at_once():
    endpoint = TokenEndpoint((400, {"error": "invalid_grant"}))
    credential = refreshing(login_doc(-10), endpoint)

    async def go():
        values = await asyncio.gather(*(credential.current() for _ in range(10)))
        again = await credential.refresh_after_rejection(values[0])
        return again
    assert asyncio.run(go()) is False
    assert len(endpoint.calls) == 1


def test_a_login_can_name_its_upstream_from_its_details_and_a_stand_in_still_wins(tmp_path):
    from launcher import logins as host_logins
    from launcher.plan import Options, gateway_upstream
    kind = host_logins.HostKind("claude/test-upstream", "claude", "test", lambda ctx: None,
                                host_logins.container_for, upstream=lambda d: f"https://{d['location']}.example")
    host_logins.KINDS.setdefault(kind.name, kind)
    try:
        options = Options(cli="claude", cli_args=[], workspace=tmp_path, login=kind.name,
                          login_details={"location": "eu"})
        assert gateway_upstream(options, "anthropic") == {"anthropic": "https://eu.example"}
        assert gateway_upstream(options, "openai") is None
        options.upstreams = {"anthropic": "http://10.0.0.5:8080"}
        assert gateway_upstream(options, "anthropic") == {"anthropic": "http://10.0.0.5:8080"}
        assert gateway_upstream(Options(cli="claude", cli_args=[], workspace=tmp_path), "anthropic") is None
    finally:
        host_logins.KINDS.pop(kind.name)


def test_the_proxy_never_tunnels_to_token_endpoints_or_vertex_hosts():
    from egress.gateway import is_model_api_host, proxy_allowlist
    for host in ("platform.claude.com", "auth.openai.com", "oauth2.googleapis.com", "console.anthropic.com",
                 "aiplatform.eu.rep.googleapis.com", "europe-west4-aiplatform.googleapis.com"):
        assert is_model_api_host(host), host
    assert proxy_allowlist(["auth.openai.com", "github.com", "oauth2.googleapis.com"]) == ["github.com"]
