"""No GitHub token reaches the CLI: agent-run gives the run's token to the credential gateway only
(docs/github.md), and a token set in the container's environment by anything else is removed."""

import json
from pathlib import Path

import pytest

from entrypoint import main
from entrypoint.integrity import Verified

ROOT = Path(__file__).resolve().parents[2]
NOTHING_VERIFIED = Verified(manifest={}, profile="autonomous", files={}, contents={})


@pytest.mark.parametrize("profile", ["autonomous", "ci"])
def test_github_tokens_in_the_environment_never_reach_the_cli(profile):
    runtime = json.loads((ROOT / "rendered" / profile / "etc" / "agent-sandbox" / "profiles" / f"{profile}.json")
                         .read_text())
    given = {"GH_TOKEN": "ghs_shortlived123", "GITHUB_TOKEN": "ghp_classic456", "GH_ENTERPRISE_TOKEN": "x",
             "GH_HOST": "github.localhost", "PATH": "/usr/bin"}
    env = main.run_environment(given, runtime, NOTHING_VERIFIED)
    assert not {"GH_TOKEN", "GITHUB_TOKEN", "GH_ENTERPRISE_TOKEN"} & set(env)
    assert env["GH_HOST"] == "github.localhost"  # the gateway's routing is not a secret


def test_the_old_token_file_variable_is_not_read(tmp_path):
    """agent-run no longer mounts a token file: the variable naming one means nothing now."""
    token = tmp_path / "github-token"
    token.write_text("ghs_shortlived123\n")
    env = main.run_environment({"AGENT_RUN_GITHUB_TOKEN_FILE": str(token), "PATH": "/usr/bin"},
                               {"environment": {"launcher_only": []}}, NOTHING_VERIFIED)
    assert "ghs_shortlived123" not in json.dumps(env)
