"""Each real CLI (the conformance pins) reaches its fake vendor only through agent-gateway, holding
a placeholder key: the fake sees the real key, nothing the agent can read holds it, every request
the CLI makes is one the gateway forwards, and a request for a server-side tool is refused with a
message the CLI shows. Each run happens in a fresh network namespace with only loopback
(gateway_cli_run.py)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from egress.gateway import PLACEHOLDER_KEY
from gateway_cli_run import COMMANDS, KEY_ENV, REAL_KEY

HERE = Path(__file__).parent
KEY_HEADER = {"claude": ("x-api-key", ""), "codex": ("authorization", "Bearer "), "gemini": ("x-goog-api-key", "")}
# The model endpoints each CLI used (method, path), observed through the gateway.
USED = {"claude": {("POST", "/v1/messages")}, "codex": {("POST", "/v1/responses")},
        "gemini": {("POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent")}}


def run(cli: str, workdir: Path, variant: str = "plain") -> dict:
    done = subprocess.run(["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "offline",
                           sys.executable, str(HERE / "gateway_cli_run.py"), cli, str(workdir), variant],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize("cli", sorted(KEY_HEADER))
def test_cli_runs_through_the_gateway_with_a_placeholder(tmp_path, cli):
    result = run(cli, tmp_path)
    assert result["returncode"] == 0, (result["stdout"], result["stderr"])
    header, prefix = KEY_HEADER[cli]
    assert result["turns"] == len(COMMANDS) + 1
    assert all(r["headers"].get(header) == prefix + REAL_KEY for r in result["requests"]), \
        [r["headers"].get(header) for r in result["requests"]]
    assert not any(PLACEHOLDER_KEY in v for r in result["requests"] for v in r["headers"].values())
    assert f"{KEY_ENV[cli]}={PLACEHOLDER_KEY}" in result["seen_env"]
    assert REAL_KEY not in result["seen_env"]
    assert result["environ_size"] > 0
    assert result["files_with_key"] == []
    log = result["gateway_log"]
    assert {(e["method"], e["path"]) for e in log} == USED[cli]
    assert all(e["decision"] == "forward" and e["status"] == 200 for e in log), log
    assert all(e["bytes_up"] > 0 and e["bytes_down"] > 0 for e in log)


@pytest.mark.parametrize("cli", ["claude", "gemini"])
def test_a_web_search_tool_call_is_refused_and_the_cli_goes_on(tmp_path, cli):
    result = run(cli, tmp_path, "server-tool")
    assert result["returncode"] == 0, result["stderr"]
    refused = [e for e in result["gateway_log"] if e["decision"] != "forward"]
    # (Claude asks twice for a web search that failed with a 400.)
    assert refused and {(e["decision"], e["rule"]) for e in refused} == {("deny_server_tool", "server-side-tools")}
    # The model sees the gateway's reason as the tool's result, and the scripted run continues.
    assert "agent-sandbox gateway refused this request (rule server-side-tools)" in result["tool_results"][0]
    assert result["turns"] == len(COMMANDS) + 2


def test_codex_with_its_web_search_on_is_refused_with_the_reason(tmp_path):
    result = run("codex", tmp_path, "server-tool")
    assert result["returncode"] != 0
    assert "agent-sandbox gateway refused this request (rule server-side-tools): tool type 'web_search'" \
        in result["stderr"]
    assert [e["decision"] for e in result["gateway_log"]] == ["deny_server_tool"]


def test_codex_with_its_built_in_provider_falls_back_from_websocket_at_once(tmp_path):
    result = run("codex", tmp_path, "openai-provider")
    assert result["returncode"] == 0, result["stderr"]
    decisions = [(e["method"], e["decision"]) for e in result["gateway_log"]]
    assert decisions[0] == ("GET", "deny_upgrade")  # one WebSocket attempt, refused with 426 ...
    assert decisions[1:] == [("POST", "forward")] * (len(COMMANDS) + 1)  # ... then plain HTTPS
    assert result["seconds"] < 20


def test_claude_start_up_call_is_refused_without_harm(tmp_path):
    # Without CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC (which the profiles set) Claude first sends
    # HEAD /api/hello; the gateway does not forward it, and the run works.
    result = run("claude", tmp_path, "startup-calls")
    assert result["returncode"] == 0
    assert [(e["method"], e["path"], e["decision"]) for e in result["gateway_log"]][0] == (
        "HEAD", "/api/hello", "deny_endpoint")
