"""render-profiles --install interactive --system: the CLIs' admin layer, written as root, tested
in a private mount namespace whose /etc is an overlay (the host's /etc is never written)."""

import io
import json
import os
import stat
import subprocess
import sys
import tomllib

import pytest

from render_helpers import REPO
from renderer import install

GUARD = "/usr/local/bin/agent-guard"
ADMIN_REQUIREMENTS = """\
# set by the administrator
allowed_sandbox_modes = ["read-only"]  # nothing may write

[mcp_servers_policy]
allowed = ["docs"]
"""

@pytest.fixture
def etc(tmp_path):
    """(run, upper): run(*args) runs render-profiles in a namespace where /etc is an overlay whose
    upper layer is `upper` (what the run writes lands there)."""
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir(mode=0o755)
    work.mkdir()
    os.chmod(upper, 0o755)
    script = (f"mount -t overlay overlay -o lowerdir=/etc,upperdir={upper},workdir={work} /etc && exec \"$@\"")

    def run(*args):
        env = {k: v for k, v in os.environ.items() if k not in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME")}
        env["PATH"] = "/usr/bin:/bin"  # no codex: the admin layer's hooks need no trust
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                               sys.executable, "-m", "renderer.cli", "--root", str(REPO), *map(str, args)],
                              capture_output=True, text=True, env=env, cwd=tmp_path)
    return run, upper


def files(upper):
    return {str(p.relative_to(upper)): p for p in sorted(upper.rglob("*"))
            if p.is_file() and ".agent-sandbox-backup-" not in p.name}


def test_the_admin_layer_is_written_as_root_where_the_agent_cannot(etc):
    run, upper = etc
    result = run("--install", "interactive", "--system", "--guard", GUARD)
    assert result.returncode == 0, result.stderr
    written = files(upper)
    assert sorted(written) == ["agent-sandbox/install-state.json", "agent-sandbox/profiles/interactive.json",
                               "claude-code/managed-settings.d/agent-sandbox.json", "codex/requirements.toml",
                               "codex/rules/agent-sandbox.rules", "gemini-cli/policies/agent-sandbox.toml",
                               "gemini-cli/settings.json"]
    for path in [*written.values(), *(p for p in upper.rglob("*") if p.is_dir())]:
        info = path.stat()
        assert info.st_uid == 0 and not info.st_mode & 0o022, path
    claude = json.loads(written["claude-code/managed-settings.d/agent-sandbox.json"].read_text())
    assert claude["permissions"]["disableBypassPermissionsMode"] == "disable"
    assert claude["permissions"]["disableAutoMode"] == "disable"
    assert "Bash(git push --force *)" in claude["permissions"]["deny"] and "Edit(~/.bashrc)" in claude["permissions"]["deny"]
    assert claude["hooks"]["PreToolUse"][0]["hooks"][0]["command"].startswith(f"{GUARD} hook claude --profile interactive")
    requirements = tomllib.loads(written["codex/requirements.toml"].read_text())
    assert requirements["allowed_approval_policies"] == ["untrusted", "on-failure", "on-request"]
    assert requirements["allowed_sandbox_modes"] == ["read-only", "workspace-write"]
    assert requirements["features"] == {"hooks": True, "unified_exec_tty": False}
    assert requirements["hooks"]["PreToolUse"][0]["hooks"][0]["command"].startswith(f"{GUARD} hook codex")
    assert any(r["justification"].startswith("agent-sandbox git-push-force:") for r in requirements["rules"]["prefix_rules"])
    gemini = json.loads(written["gemini-cli/settings.json"].read_text())
    assert gemini["security"]["disableYoloMode"] is True and gemini["hooksConfig"]["enabled"] is True
    assert 'decision = "allow"' not in written["gemini-cli/policies/agent-sandbox.toml"].read_text()
    assert stat.S_IMODE(written["agent-sandbox/install-state.json"].stat().st_mode) == 0o600
    assert "into the CLIs' admin layer (/etc)" in result.stdout
    assert "Protections an agent could undo" not in result.stdout


def test_an_administrators_stricter_requirements_stay_and_come_back_exactly(etc):
    run, upper = etc
    (upper / "codex").mkdir(mode=0o755)
    (upper / "codex" / "requirements.toml").write_text(ADMIN_REQUIREMENTS)
    result = run("--install", "interactive", "--system", "--guard", GUARD)
    assert result.returncode == 0, result.stderr
    requirements = (upper / "codex" / "requirements.toml").read_text()
    assert 'allowed_sandbox_modes = ["read-only"]  # nothing may write' in requirements
    assert "# set by the administrator" in requirements and "[mcp_servers_policy]" in requirements
    assert tomllib.loads(requirements)["allowed_approval_policies"] == ["untrusted", "on-failure", "on-request"]
    assert 'kept your allowed_sandbox_modes = ["read-only"]' in result.stdout
    undone = run("--uninstall", "--system")
    assert undone.returncode == 0, undone.stderr
    assert sorted(files(upper)) == ["codex/requirements.toml"]
    assert (upper / "codex" / "requirements.toml").read_text() == ADMIN_REQUIREMENTS


def test_a_folder_others_may_write_is_refused_before_anything_is_written(etc):
    run, upper = etc
    (upper / "gemini-cli").mkdir()
    os.chmod(upper / "gemini-cli", 0o775)
    result = run("--install", "interactive", "--system", "--guard", GUARD)
    assert result.returncode == 2
    assert "/etc/gemini-cli is owned by uid 0 with mode 0775" in result.stderr and "chmod go-w" in result.stderr
    assert files(upper) == {}


def test_without_root_the_admin_layer_is_refused_and_says_why(monkeypatch, tmp_path):
    monkeypatch.setattr(install.os, "geteuid", lambda: 1000)
    with pytest.raises(install.InstallError, match="only root may write; .*Run it with sudo"):
        install.run(REPO, "interactive", tmp_path, {}, system=True, out=io.StringIO())
