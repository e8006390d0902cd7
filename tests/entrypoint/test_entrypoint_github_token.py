"""The GitHub token agent-run copies into the container reaches gh as GH_TOKEN, and only that way."""

import pytest

from entrypoint import main
from entrypoint.integrity import Verified

RUNTIME = {"environment": {"launcher_only": ["AGENT_RUN_GITHUB_TOKEN_FILE", "SSH_AUTH_SOCK"], "quiet": {"DISABLE_TELEMETRY": "1"}}}
NOTHING_VERIFIED = Verified(manifest={}, profile="autonomous", files={}, contents={})


def test_token_file_becomes_gh_token_and_its_path_is_removed(tmp_path):
    token = tmp_path / "github-token"
    token.write_text("ghs_shortlived123\n")
    env = main.run_environment({"AGENT_RUN_GITHUB_TOKEN_FILE": str(token), "SSH_AUTH_SOCK": "/x", "PATH": "/usr/bin"}, RUNTIME, NOTHING_VERIFIED)
    assert env["GH_TOKEN"] == "ghs_shortlived123"
    assert "AGENT_RUN_GITHUB_TOKEN_FILE" not in env and "SSH_AUTH_SOCK" not in env
    assert env["DISABLE_TELEMETRY"] == "1"


def test_no_token_file_no_gh_token(tmp_path):
    env = main.run_environment({"PATH": "/usr/bin"}, RUNTIME, NOTHING_VERIFIED)
    assert "GH_TOKEN" not in env


@pytest.mark.parametrize("content", [None, "", "two words\n"])
def test_unreadable_or_odd_token_file_refuses(tmp_path, content):
    token = tmp_path / "github-token"
    if content is not None:
        token.write_text(content)
    with pytest.raises(main.Refusal) as refusal:
        main.run_environment({"AGENT_RUN_GITHUB_TOKEN_FILE": str(token)}, RUNTIME, NOTHING_VERIFIED)
    assert refusal.value.code == main.EXIT_CONFIG and "github-token" in refusal.value.lines[0]
