"""--install interactive: merge into the user's files, back up, never clobber unrelated keys."""

import json
import tomllib

from render_helpers import run_render


def test_fresh_home(tmp_path):
    result = run_render("--install", "interactive", "--home", tmp_path)
    assert result.returncode == 0, result.stderr
    claude = json.loads((tmp_path / ".claude/settings.json").read_text())
    assert claude["permissions"]["disableBypassPermissionsMode"] == "disable"
    assert "Bash(git status *)" in claude["permissions"]["allow"]
    assert "Bash(git push --force *)" in claude["permissions"]["deny"]
    assert tomllib.loads((tmp_path / ".codex/config.toml").read_text())["approval_policy"] == "on-request"
    assert (tmp_path / ".codex/rules/agent-sandbox.rules").is_file()
    assert json.loads((tmp_path / ".gemini/settings.json").read_text())["security"]["disableYoloMode"] is True
    assert (tmp_path / ".gemini/policies/agent-sandbox.toml").is_file()


def test_merge_keeps_the_users_keys_and_backs_up(tmp_path):
    (tmp_path / ".claude").mkdir()
    mine = {"model": "opus", "permissions": {"allow": ["Bash(make deploy-docs)"], "defaultMode": "bypassPermissions"}, "statusLine": {"type": "command", "command": "x"}}
    (tmp_path / ".claude/settings.json").write_text(json.dumps(mine))
    (tmp_path / ".codex").mkdir()
    (tmp_path / ".codex/config.toml").write_text('model = "o3"\napproval_policy = "never"\n[mcp_servers.docs]\ncommand = "docs-mcp"\n')
    result = run_render("--install", "interactive", "--home", tmp_path)
    assert result.returncode == 0, result.stderr
    claude = json.loads((tmp_path / ".claude/settings.json").read_text())
    assert claude["model"] == "opus" and claude["statusLine"]["command"] == "x"
    assert claude["permissions"]["allow"][0] == "Bash(make deploy-docs)"
    assert "Bash(git log *)" in claude["permissions"]["allow"]
    assert claude["permissions"]["defaultMode"] == "default", "the profile's posture wins over a bypass the user had"
    codex = tomllib.loads((tmp_path / ".codex/config.toml").read_text())
    assert codex["model"] == "o3" and codex["mcp_servers"]["docs"]["command"] == "docs-mcp"
    assert codex["approval_policy"] == "on-request"
    backups = sorted(p.name for p in (tmp_path / ".claude").iterdir() if "backup" in p.name)
    assert len(backups) == 1 and json.loads((tmp_path / ".claude" / backups[0]).read_text()) == mine
    again = run_render("--install", "interactive", "--home", tmp_path)
    assert again.returncode == 0 and "unchanged" in again.stdout
    assert len([p for p in (tmp_path / ".claude").iterdir() if "backup" in p.name]) == 1


def test_unparsable_user_file_changes_nothing(tmp_path):
    (tmp_path / ".gemini").mkdir()
    (tmp_path / ".gemini/settings.json").write_text("{ not json")
    result = run_render("--install", "interactive", "--home", tmp_path)
    assert result.returncode == 2
    assert ".gemini/settings.json: not valid JSON" in result.stderr and "nothing was changed" in result.stderr
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [".gemini", ".gemini/settings.json"]
