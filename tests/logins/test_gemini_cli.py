"""The real Gemini CLI (the pinned version) logged in with Google, holding only the placeholder the
launcher gives the container, works through agent-gateway across a refresh of the access token; what
it can read holds no real token (gemini_cli_run.py, in a network namespace of its own)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def test_the_real_cli_works_through_the_gateway_across_a_refresh(tmp_path):
    done = subprocess.run(["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "offline",
                           sys.executable, str(HERE / "gemini_cli_run.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["returncode"] == 0, (result["stdout"], result["stderr"])
    assert "Worked across a refresh." in result["stdout"]
    # The CLI's own start-up calls and three turns, every one with a token Google issued.
    paths = [r["path"] for r in result["requests"] if r["path"] != "/token"]
    assert paths[0] == "/v1internal:loadCodeAssist" and paths.count("/v1internal:streamGenerateContent") == 3
    assert result["refused"] == [] and len(result["issued"]) >= 1
    used = {r["authorization"] for r in result["requests"] if r["path"] != "/token"}
    assert f"Bearer {result['issued'][0]['token']}" in used     # the run crossed a refresh
    log = result["gateway_log"]
    assert [e["outcome"] for e in log if e.get("event") == "refresh"][:1] == ["refreshed"]
    assert all(e["decision"] in ("forward", "answer") for e in log if "decision" in e), log
    # Nothing the CLI or its tools could read holds a real token: its environment, /proc, its files.
    tokens = result["tokens"]
    assert result["env"]["GOOGLE_CLOUD_ACCESS_TOKEN"] == "ya29.agent-sandbox-placeholder"
    for seen in (json.dumps(result["env"]), result["seen_env"], result["seen_environ"], json.dumps(log)):
        assert not any(t in seen for t in tokens)
    assert "GOOGLE_CLOUD_ACCESS_TOKEN=ya29.agent-sandbox-placeholder" in result["seen_env"]
    assert result["files_with_token"] == []
