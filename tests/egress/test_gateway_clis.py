"""Each real CLI (the conformance pins) reaches its fake vendor only through the gateway, holding
a placeholder key; the fake sees the real key, and nothing the agent can read holds it.
Each run happens in a fresh network namespace with only loopback (gateway_cli_run.py)."""
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


@pytest.mark.parametrize("cli", sorted(KEY_HEADER))
def test_cli_runs_through_the_gateway_with_a_placeholder(tmp_path, cli):
    done = subprocess.run(["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "offline",
                           sys.executable, str(HERE / "gateway_cli_run.py"), cli, str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads(done.stdout)
    assert run["returncode"] == 0, (run["stdout"], run["stderr"])
    header, prefix = KEY_HEADER[cli]
    assert run["turns"] == len(COMMANDS) + 1
    assert all(r["headers"].get(header) == prefix + REAL_KEY for r in run["requests"]), \
        [r["headers"].get(header) for r in run["requests"]]
    assert not any(PLACEHOLDER_KEY in v for r in run["requests"] for v in r["headers"].values())
    assert f"{KEY_ENV[cli]}={PLACEHOLDER_KEY}" in run["seen_env"]
    assert REAL_KEY not in run["seen_env"]
    assert run["environ_size"] > 0
    assert run["files_with_key"] == []
