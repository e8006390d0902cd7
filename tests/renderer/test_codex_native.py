"""The rendered Codex files, judged by the pinned codex binary itself."""

import json
import subprocess
import tomllib

import pytest

from render_helpers import REPO

CODEX = REPO / "node_modules" / ".bin" / "codex"
RENDERED = REPO / "rendered"
PROVIDER_KEY = 'model_provider = "closed"\n'
PROVIDER_TABLE = """[model_providers.closed]
name = "closed"
base_url = "http://127.0.0.1:9/v1"
env_key = "CLOSED_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
"""


def execpolicy(rules, argv):
    out = subprocess.run([CODEX, "execpolicy", "check", "--rules", rules, "--", *argv], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("argv,rule", [
    (["git", "push", "--force", "origin", "main"], "git-push-force"),
    (["git", "push", "-f"], "git-push-force"),
    (["git", "push", "--force-with-lease"], "git-push-force"),
    (["git", "push", "--delete", "origin", "x"], "git-push-delete"),
    (["gh", "repo", "delete", "o/r", "--yes"], "gh-repo-destructive"),
    (["gh", "secret", "list"], "gh-secret"),
    (["gh", "api", "-X", "DELETE", "/repos/o/r"], "gh-api-delete"),
    (["gh", "api", "--method=DELETE", "/repos/o/r"], "gh-api-delete"),
    (["gh", "auth", "token"], "gh-auth"),
    (["npm", "publish"], "npm-publish"),
    (["cargo", "publish", "--dry-run"], "cargo-publish"),
])
def test_forbidden_in_the_admin_rules(argv, rule):
    result = execpolicy(RENDERED / "autonomous/etc/codex/rules/agent-sandbox.rules", argv)
    assert result["decision"] == "forbidden"
    assert any(m["prefixRuleMatch"]["justification"].startswith(f"agent-sandbox {rule}:") for m in result["matchedRules"])


@pytest.mark.parametrize("argv", [["git", "status"], ["git", "push", "origin", "main"], ["gh", "pr", "list"], ["npm", "test"]])
def test_safe_commands_are_not_matched(argv):
    assert execpolicy(RENDERED / "autonomous/etc/codex/rules/agent-sandbox.rules", argv)["matchedRules"] == []


def test_interactive_rules_ask_and_forbid_and_leave_reading_to_the_sandbox():
    """No allow rule: Codex runs an allow-listed command outside its sandbox (git log --output
    would write anywhere), so reading commands run in the sandbox, as Codex runs them by default."""
    rules = RENDERED / "interactive/user-home/dot_codex/rules/agent-sandbox.rules"
    assert execpolicy(rules, ["git", "status"]).get("decision") != "allow"
    assert execpolicy(rules, ["git", "commit", "-m", "x"])["decision"] == "prompt"
    assert execpolicy(rules, ["git", "push", "-f"])["decision"] == "forbidden"
    assert 'decision = "allow"' not in rules.read_text()


def run_codex_with(tmp_path, config_text, requirements=None):
    """codex exec --strict-config against a closed port: a config error exits before any request."""
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(PROVIDER_KEY + config_text + "\n" + PROVIDER_TABLE)
    script = 'exec "$@"'
    if requirements is not None:
        (tmp_path / "requirements.toml").write_text(requirements)
        (tmp_path / "upper").mkdir(); (tmp_path / "work").mkdir()
        script = (f"mount -t overlay overlay -o lowerdir=/etc,upperdir={tmp_path}/upper,workdir={tmp_path}/work /etc && "
                  f"mkdir -p /etc/codex && cp {tmp_path}/requirements.toml /etc/codex/ && exec \"$@\"")
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", str(CODEX), "exec", "--strict-config", "--skip-git-repo-check", "hi"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "CODEX_HOME": str(home), "CLOSED_KEY": "x", "HOME": str(tmp_path)},
    )


@pytest.mark.parametrize("name", ["autonomous/home/agent/dot_codex/config.toml", "ci/home/agent/dot_codex/config.toml", "interactive/user-home/dot_codex/config.toml"])
def test_config_passes_strict_config(tmp_path, name):
    result = run_codex_with(tmp_path, (RENDERED / name).read_text().split("\n", 1)[1])
    assert "Error loading config" not in result.stderr, result.stderr
    assert "Connection failed" in result.stderr, "got past config loading to the (closed) model port"


def test_strict_config_catches_a_bad_key_so_the_test_above_can_fail(tmp_path):
    text = (RENDERED / "autonomous/home/agent/dot_codex/config.toml").read_text().replace("check_for_update_on_startup", "check_for_updates_on_startup")
    result = run_codex_with(tmp_path, text)
    assert result.returncode != 0 and "unknown configuration field" in result.stderr


def test_requirements_are_read_without_warnings(tmp_path):
    ours = (RENDERED / "autonomous/etc/codex/requirements.toml").read_text()
    config = (RENDERED / "autonomous/home/agent/dot_codex/config.toml").read_text().split("\n", 1)[1]
    tomllib.loads(ours)
    (tmp_path / "a").mkdir()
    clean = run_codex_with(tmp_path / "a", config, requirements=ours)
    assert "requirements (" not in clean.stderr and "Connection failed" in clean.stderr, clean.stderr
    (tmp_path / "b").mkdir()
    broken = run_codex_with(tmp_path / "b", config, requirements="stray_key = 1\n" + ours)
    assert "is ignored" in broken.stderr, "a stray key draws a warning, so the clean run above is meaningful"
