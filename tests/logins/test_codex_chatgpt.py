"""Codex's ChatGPT login (codex/chatgpt): the host side's reading and placeholders, the gateway's
kind, and the real agent-gateway process between a client and the fake ChatGPT."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from egress import login_codex as gateway  # noqa: E402
from egress import logins as gateway_logins  # noqa: E402
from fake_chatgpt import FakeChatGPT, jwt_claims  # noqa: E402
from launcher import login_codex, logins  # noqa: E402
from tests.conformance.fakes import Scenario  # noqa: E402
from tests.egress.gateway_process import GatewayProcess  # noqa: E402

SCENARIO = Scenario(("echo one",), "Done.")


@pytest.fixture
def fake():
    server = FakeChatGPT(SCENARIO, lifetime=3600).start()
    yield server
    server.stop()


def context_for(home: Path, **environ) -> logins.Context:
    return logins.Context(home=home, environ=environ)


def write_auth(home: Path, doc: dict) -> Path:
    path = home / ".codex" / "auth.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


# --- the placeholders --------------------------------------------------------------------------------

def test_the_placeholder_tokens_are_jwts_codex_reads_with_a_far_expiry_and_no_real_account():
    tokens = gateway.placeholder_tokens("pro")
    for name in ("access_token", "id_token"):
        claims = jwt_claims(tokens[name])
        assert claims["exp"] == gateway.PLACEHOLDER_EXPIRY > time.time() + 50 * 365 * 86400
        assert claims[gateway.AUTH_CLAIM]["chatgpt_account_id"] == gateway.PLACEHOLDER_ACCOUNT
        assert claims[gateway.AUTH_CLAIM]["chatgpt_plan_type"] == "pro"
    assert tokens["refresh_token"] == gateway.PLACEHOLDER
    assert gateway.placeholder_tokens("pro") == tokens  # the launcher's and the gateway's are the same bytes


def test_the_placeholder_is_refused_by_the_vendor(fake):
    assert not fake.accepts(gateway.placeholder_tokens("plus")["access_token"])
    assert fake.accepts(fake.login()["tokens"]["access_token"])


def test_the_container_gets_placeholders_and_the_gateway_settings_only(fake, tmp_path):
    write_auth(tmp_path, fake.login())
    found = logins.choose("codex", "auto", context_for(tmp_path))
    assert found.kind == "codex/chatgpt"
    box = logins.container_for(found.kind, "agent-gateway", found.details)
    text = json.dumps({"env": box.env, "files": box.files, "args": box.args})
    for name in ("access_token", "refresh_token", "id_token", "account_id"):
        assert found.secret[name] not in text
    assert "OPENAI_API_KEY" not in box.env
    assert box.env["CODEX_REFRESH_TOKEN_URL_OVERRIDE"] == "http://agent-gateway:8082/oauth/token"
    auth = json.loads(box.files["/home/agent/.codex/auth.json"])
    assert auth["auth_mode"] == "chatgpt" and auth["OPENAI_API_KEY"] is None
    assert auth["tokens"]["account_id"] == gateway.PLACEHOLDER_ACCOUNT
    assert jwt_claims(auth["tokens"]["id_token"])[gateway.AUTH_CLAIM]["chatgpt_plan_type"] == "plus"
    args = " ".join(box.args)
    assert 'chatgpt_base_url="http://agent-gateway:8082/backend-api/"' in args
    assert 'model_providers.agent_gateway_chatgpt.base_url="http://agent-gateway:8082/backend-api/codex"' in args
    assert "model_providers.agent_gateway_chatgpt.requires_openai_auth=true" in args


# --- reading the user's login --------------------------------------------------------------------------

def test_the_login_is_read_from_codex_home_or_the_home(fake, tmp_path):
    doc = fake.login()
    write_auth(tmp_path / "elsewhere", doc)
    found = login_codex.find(context_for(tmp_path, CODEX_HOME=str(tmp_path / "elsewhere" / ".codex")))
    assert found.origin == str(tmp_path / "elsewhere" / ".codex" / "auth.json")
    assert found.secret["refresh_token"] == doc["tokens"]["refresh_token"]
    assert found.secret["account_id"] == fake.account_id
    assert found.secret["expires_at"] == jwt_claims(doc["tokens"]["access_token"])["exp"]
    assert found.details == {"plan_type": "plus"}
    assert login_codex.find(context_for(tmp_path / "nobody")) is None


def test_a_login_command_prints_the_json(fake, tmp_path):
    source = tmp_path / "exported.json"
    source.write_text(json.dumps(fake.login()))
    context = logins.Context(home=tmp_path / "empty", environ={}, login_command=("cat", str(source)))
    found = login_codex.find(context)
    assert found.origin == "--login-command" and found.secret["account_id"] == fake.account_id


def test_an_api_key_in_auth_json_is_not_a_chatgpt_login(tmp_path):
    write_auth(tmp_path, {"OPENAI_API_KEY": "sk-real-key-1234", "tokens": None})
    with pytest.raises(logins.LoginError, match="holds an API key .* --key-file openai=PATH") as caught:
        logins.choose("codex", "auto", context_for(tmp_path))
    assert "sk-real-key-1234" not in str(caught.value)


@pytest.mark.parametrize("change, message", [
    (lambda t: t.update(id_token="not-a-jwt"), "tokens.id_token is not a JWT"),
    (lambda t: t.update(refresh_token=gateway.PLACEHOLDER), "placeholder, not a real login"),
    (lambda t: t.update(account_id=None, id_token=gateway.placeholder_tokens(None)["id_token"].replace(
        gateway.placeholder_tokens(None)["id_token"].split(".")[1], "e30")), "no ChatGPT account"),
    (lambda t: t.pop("refresh_token"), "tokens.refresh_token is not a token"),
])
def test_a_broken_login_is_refused_naming_the_key_never_the_token(fake, tmp_path, change, message):
    doc = fake.login()
    change(doc["tokens"])
    write_auth(tmp_path, doc)
    with pytest.raises(logins.LoginError, match=message) as caught:
        login_codex.find(context_for(tmp_path))
    for value in doc["tokens"].values():
        assert not value or len(value) < 40 or value not in str(caught.value)


def test_the_refreshed_login_goes_back_into_auth_json_unless_it_changed(fake, tmp_path):
    doc = fake.login()
    path = write_auth(tmp_path, {**doc, "extra": "kept"})
    context = context_for(tmp_path)
    started = login_codex.find(context).secret
    renewed = {**started, "access_token": "eyJ.new.access", "id_token": "eyJ.new.id", "refresh_token": "rt_new",
               "expires_at": int(time.time()) + 600}
    assert "written back" in logins.give_back("codex/chatgpt", context, started, renewed)
    saved = json.loads(path.read_text())
    assert saved["tokens"]["refresh_token"] == "rt_new" and saved["tokens"]["access_token"] == "eyJ.new.access"
    assert saved["tokens"]["account_id"] == fake.account_id and saved["extra"] == "kept"
    assert "changed during the run" in logins.give_back("codex/chatgpt", context, started,
                                                        {**renewed, "refresh_token": "rt_newer"})


def test_the_token_answer_of_a_refresh_is_read_from_the_new_access_tokens_expiry(fake):
    tokens = fake.login()["tokens"]
    update = gateway.parse_refresh({"access_token": tokens["access_token"], "id_token": tokens["id_token"],
                                    "refresh_token": tokens["refresh_token"]}, {})
    assert update["expires_at"] == jwt_claims(tokens["access_token"])["exp"]
    assert update["refresh_token"] == tokens["refresh_token"]
    with pytest.raises(gateway_logins.LoginError):
        gateway.parse_refresh({"access_token": "opaque-token-without-expiry"}, {})


def test_the_openai_body_check_judges_tools_inside_the_input():
    from egress.gateway_rules import check_body

    def body(*tools):
        return json.dumps({"model": "m", "input": [{"type": "additional_tools", "role": "developer", "tools": [
            {"type": "namespace", "name": "functions", "tools": list(tools)}]}]}).encode()
    client_tools = ({"type": "custom", "name": "exec"}, {"type": "function", "name": "wait"})
    assert check_body("openai", body(*client_tools), False) is None
    refusal = check_body("openai", body(*client_tools, {"type": "web_search"}), False)
    assert refusal.rule == "server-side-tools" and "web_search" in refusal.reason
    assert check_body("openai", body({"type": "mcp", "server_url": "https://x"}), True) is None


# --- the real gateway between a client and the fake ---------------------------------------------------

def Gateway(root: Path, secret: dict, fake: FakeChatGPT) -> GatewayProcess:
    """agent-gateway with the codex/chatgpt login, its upstream and its refresh sent to the fake."""
    return GatewayProcess(root, {"openai": secret}, {"openai": fake.base_url}, logins={"openai": "codex/chatgpt"},
                          token_urls={"openai": f"{fake.base_url}/oauth/token"})


def call(url: str, method: str = "GET", body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            raw = answer.read()
            status = answer.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    text = raw.decode()
    if text.startswith("event:") or text.startswith("data:"):
        return status, {"sse": text}
    return status, json.loads(text) if text else {}


PLACEHOLDER_HEADERS = {"authorization": "Bearer " + gateway.placeholder_tokens("plus")["access_token"],
                       "chatgpt-account-id": gateway.PLACEHOLDER_ACCOUNT}
TURN = {"model": "gpt-fake", "stream": True, "input": [{"type": "message", "role": "user",
                                                        "content": [{"type": "input_text", "text": "hi"}]}],
        "tools": [{"type": "function", "name": "exec_command", "parameters": {}}]}


def test_the_gateway_swaps_in_the_real_token_and_account_and_answers_the_account_calls(fake, tmp_path):
    secret, _ = login_codex.parse_auth_json(json.dumps(fake.login()), "test")
    with Gateway(tmp_path, secret, fake) as gw:
        base = gw.url("openai")
        status, _ = call(f"{base}/backend-api/codex/models?client_version=0.169.0", headers=PLACEHOLDER_HEADERS)
        assert status == 200
        status, answer = call(f"{base}/backend-api/codex/responses", "POST", TURN, PLACEHOLDER_HEADERS)
        assert status == 200 and "response.completed" in answer["sse"]
        status, accounts = call(f"{base}/backend-api/wham/accounts/check", headers=PLACEHOLDER_HEADERS)
        assert status == 200 and fake.account_id not in json.dumps(accounts)
        assert call(f"{base}/backend-api/wham/settings/user", headers=PLACEHOLDER_HEADERS) == (200, {})
        status, tokens = call(f"{base}/oauth/token", "POST", {"client_id": gateway.CLIENT_ID, "grant_type":
                                                               "refresh_token", "refresh_token": gateway.PLACEHOLDER})
        assert (status, tokens) == (200, gateway.placeholder_tokens("plus"))
        assert call(f"{base}/backend-api/wham/usage", headers=PLACEHOLDER_HEADERS)[0] == 404
        assert call(f"{base}/backend-api/ps/mcp", "POST", {}, PLACEHOLDER_HEADERS)[0] == 404
        log = gw.log()
    seen = [(r.method, r.path.split("?")[0]) for r in fake.requests]
    assert seen == [("GET", "/backend-api/codex/models"), ("POST", "/backend-api/codex/responses")]
    for request in fake.requests:
        assert request.headers["authorization"] == "Bearer " + secret["access_token"]
        assert request.headers["chatgpt-account-id"] == fake.account_id
    decisions = {(e.get("path"), e.get("decision")) for e in log if "path" in e}
    assert ("/backend-api/wham/accounts/check", "answer") in decisions
    assert ("/oauth/token", "answer") in decisions
    assert ("/backend-api/ps/mcp", "deny_endpoint") in decisions


def test_the_gateway_refreshes_before_expiry_and_after_a_revocation(tmp_path):
    # Tokens that live 2 s longer than the gateway's refresh margin: due for a refresh 2 s after.
    fake = FakeChatGPT(SCENARIO, lifetime=gateway_logins.REFRESH_MARGIN_S + 2).start()
    try:
        login = fake.login()
        secret, _ = login_codex.parse_auth_json(json.dumps(login), "test")
        with Gateway(tmp_path, secret, fake) as gw:
            turn = f"{gw.url('openai')}/backend-api/codex/responses"
            assert call(turn, "POST", TURN, PLACEHOLDER_HEADERS)[0] == 200
            assert fake.refreshes() == []
            time.sleep(2.5)
            assert call(turn, "POST", TURN, PLACEHOLDER_HEADERS)[0] == 200
            assert len(fake.refreshes()) == 1
            assert not fake.accepts(login["tokens"]["access_token"])      # the old token is retired
            fake.revoke_on_turn = 3                                       # the vendor revokes the new one early
            assert call(turn, "POST", TURN, PLACEHOLDER_HEADERS)[0] == 200
            log = gw.log()
        refreshes = [e for e in log if e.get("event") == "refresh"]
        assert [(e["why"], e["outcome"], e["rotated"]) for e in refreshes] == [("expiry", "refreshed", True),
                                                                             ("rejected", "refreshed", True)]
        assert [e["why"] for e in fake.rejections()] == ["revoked"]
        assert not any(e["event"] == "refresh_refused" for e in fake.events)
        assert len(fake.model_requests()) == 4                             # the revoked one, sent again
        text = (tmp_path / "log" / "access.log").read_text()
        assert secret["refresh_token"] not in text and secret["access_token"] not in text
    finally:
        fake.stop()


def test_a_server_tool_among_codexs_input_tools_is_refused(fake, tmp_path):
    secret, _ = login_codex.parse_auth_json(json.dumps(fake.login()), "test")
    body = {**TURN, "input": [{"type": "additional_tools", "role": "developer", "tools": [
        {"type": "namespace", "name": "functions", "tools": [{"type": "web_search"}]}]}, *TURN["input"]]}
    body.pop("tools")
    with Gateway(tmp_path, secret, fake) as gw:
        status, answer = call(f"{gw.url('openai')}/backend-api/codex/responses", "POST", body, PLACEHOLDER_HEADERS)
    assert status == 400 and answer["agent_sandbox"]["rule"] == "server-side-tools"
    assert not fake.model_requests()


def test_login_check_makes_one_authenticated_call_and_gives_a_refresh_back(tmp_path):
    fake = FakeChatGPT(SCENARIO, lifetime=gateway_logins.REFRESH_MARGIN_S - 60).start()   # due at once
    try:
        path = write_auth(tmp_path, fake.login())
        context = context_for(tmp_path)
        found = logins.choose("codex", "auto", context)
        result = logins.check(found, context, upstream=fake.base_url, token_url=f"{fake.base_url}/oauth/token")
        assert (result.kind, result.usable, result.status, result.refreshed) == ("codex/chatgpt", True, 200, True)
        assert "written back" in result.message
        saved = json.loads(path.read_text())["tokens"]
        assert fake.accepts(saved["access_token"]) and saved["refresh_token"] != found.secret["refresh_token"]
        assert [(r.method, r.path, r.headers["chatgpt-account-id"]) for r in fake.requests if r.path != "/oauth/token"] \
            == [("GET", "/backend-api/codex/models?client_version=0.169.0", fake.account_id)]
        gone = fake.base_url
        fake.stop()
        unusable = logins.check(logins.choose("codex", "auto", context), context, upstream=gone,
                                token_url=f"{gone}/oauth/token", timeout=5)
        assert not unusable.usable and "could not be reached" in unusable.message
    finally:
        fake.stop()


# --- the real Codex, with what the container gets, through the real gateway ---------------------------

CODEX = ROOT / "node_modules" / ".bin" / "codex"
RENDERED_CONFIG = ROOT / "rendered" / "autonomous" / "home" / "agent" / "dot_codex" / "config.toml"


def run_codex(tmp_path: Path, gw: GatewayProcess, details: dict, *codex_args: str) -> tuple:
    """`codex exec` with what the container gets (the gateway's port aside) and the image's rendered
    config, in a home of its own: (the finished process, that home)."""
    port = gw.ports["openai"]
    box = logins.container_for("codex/chatgpt", "127.0.0.1", details)
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(RENDERED_CONFIG.read_text())
    (home / "auth.json").write_text(box.files[login_codex.CONTAINER_AUTH])
    workspace = tmp_path / "work"
    workspace.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CODEX_HOME": str(home),
           **{k: v.replace(":8082", f":{port}") for k, v in box.env.items()}}
    args = [a.replace(":8082", f":{port}") for a in box.args]
    done = subprocess.run([str(CODEX), "exec", "--skip-git-repo-check", *args, *codex_args, "Do it."], cwd=workspace,
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    return done, home


def test_the_real_codex_works_with_the_placeholders_across_a_refresh(tmp_path):
    """Codex 0.169.0 with the container's auth.json, environment and arguments (the gateway's port
    aside), the image's rendered config, and the gateway on the loopback: it signs in with the
    placeholders, its turns cross a refresh of the real token, and nothing of the real login
    reaches it."""
    fake = FakeChatGPT(Scenario(("sleep 3 && echo one", "echo two"), "Finished."),
                       lifetime=gateway_logins.REFRESH_MARGIN_S + 2).start()
    try:
        secret, details = login_codex.parse_auth_json(json.dumps(fake.login()), "test")
        with Gateway(tmp_path / "gateway", secret, fake) as gw:
            done, home = run_codex(tmp_path, gw, details, "-m", "gpt-fake")
            log = gw.log()
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Finished." in done.stdout
        assert [t.text.split("Output:")[-1].strip() for t in fake.tool_results] == ["one", "two"]
        assert fake.refreshes() and all(e["outcome"] == "refreshed" for e in log if e.get("event") == "refresh")
        assert not fake.rejections()
        left = (home / "auth.json").read_text() + done.stdout + done.stderr
        for name in ("access_token", "refresh_token", "id_token"):
            assert secret[name] not in left
        for path in home.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert not any(secret[n].encode() in data for n in ("access_token", "refresh_token", "id_token"))
        paths = {(e["method"], e["path"]) for e in log if "path" in e}
        assert ("GET", "/backend-api/wham/accounts/check") in paths
        assert {(r.method, r.path.split("?")[0]) for r in fake.requests} <= {
            ("GET", "/backend-api/codex/models"), ("POST", "/backend-api/codex/responses"), ("POST", "/oauth/token")}
    finally:
        fake.stop()


def test_codexs_own_default_model_passes_the_body_check(tmp_path):
    """Without -m, Codex sends its default model's tools inside the input (additional_tools): the
    gateway judges them and forwards the turn."""
    fake = FakeChatGPT(SCENARIO).start()
    try:
        secret, details = login_codex.parse_auth_json(json.dumps(fake.login()), "test")
        with Gateway(tmp_path / "gateway", secret, fake) as gw:
            done, _ = run_codex(tmp_path, gw, details)
            log = gw.log()
        assert done.returncode == 0, done.stderr[-3000:]
        turns = fake.model_requests()
        assert turns and "tools" not in turns[0].body
        assert any(item.get("type") == "additional_tools" for item in turns[0].body["input"])
        assert [e["decision"] for e in log if e.get("path") == "/backend-api/codex/responses"] == ["forward"] * len(turns)
    finally:
        fake.stop()
