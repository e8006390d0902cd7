"""The real Gemini CLI (the pinned version) logged in with Google, holding only the placeholder the
launcher gives the container, works through agent-gateway across a refresh of the access token; what
it can read holds no real token (gemini_cli_run.py, in a network namespace of its own)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def run(tmp_path: Path, kind: str) -> dict:
    done = subprocess.run(["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "offline",
                           sys.executable, str(HERE / "gemini_cli_run.py"), str(tmp_path), kind],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_real_cli_works_through_the_gateway_across_a_refresh(tmp_path):
    result = run(tmp_path, "gemini/google")
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


def test_the_real_cli_on_vertex_gets_a_placeholder_from_the_gateway_as_its_metadata_server(tmp_path):
    result = run(tmp_path, "gemini/vertex")
    assert result["returncode"] == 0, (result["stdout"], result["stderr"])
    assert "Worked across a refresh." in result["stdout"]
    calls = [r for r in result["requests"] if r["path"] != "/token"]
    model = "/v1beta1/projects/my-project-1/locations/us-central1/publishers/google/models/gemini-2.5-flash"
    assert [r["path"] for r in calls] == [f"{model}:streamGenerateContent"] * 3
    assert {r["authorization"] for r in calls} <= {f"Bearer {i['token']}" for i in result["issued"]}
    assert len(result["issued"]) >= 2 and result["refused"] == []      # minted, then minted again mid-run
    log = result["gateway_log"]
    answered = [e["rule"] for e in log if e.get("decision") == "answer"]
    assert answered[:2] == ["gemini:metadata_probe", "gemini:metadata_token"]
    for seen in (json.dumps(result["env"]), result["seen_env"], result["seen_environ"], json.dumps(log)):
        assert not any(t in seen for t in result["tokens"])
    assert "GCE_METADATA_HOST=127.0.0.1:" in result["seen_env"] and "GOOGLE_APPLICATION_CREDENTIALS" not in \
        result["seen_env"]
    assert result["files_with_token"] == []
