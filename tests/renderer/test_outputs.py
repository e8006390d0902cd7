"""Each CLI's output for each profile: the right keys in the right layer, and the traps avoided."""

import json
import re

import pytest
import yaml

from render_helpers import REPO
from renderer import invariants
from renderer.model import load
from renderer.outputs import render_profile

# The residual deny list as profiles/common.yaml writes it (read without the renderer), so a rule
# added there the README's way is expected in every output without editing these tests.
COMMON_TRIPWIRE = yaml.safe_load((REPO / "profiles" / "common.yaml").read_text())["tripwire"]
TRIPWIRE = [rule["id"] for rule in COMMON_TRIPWIRE]
TRIPWIRE_PROGRAMS = {word for rule in COMMON_TRIPWIRE
                     for word in (rule["command"][0] if isinstance(rule["command"][0], list) else [rule["command"][0]])}


def outputs(name):
    return render_profile(load(name))


def doc(name, path):
    return invariants.parse(outputs(name)[path])


@pytest.mark.parametrize("name", ["autonomous", "ci"])
def test_claude_bypass(name):
    managed = doc(name, "/etc/claude-code/managed-settings.json")
    deny = managed["permissions"]["deny"]
    for rule in ("Bash(gh repo delete *)", "Bash(gh secret)", "Bash(git push --force *)", "Bash(git push -f *)",
                 "Bash(git push --force-with-lease *)", "Bash(gh api -X DELETE *)", "Bash(gh api --method DELETE *)",
                 "Bash(npm publish *)", "Bash(cargo publish *)", "Read(./.env)", "Read(**/credentials.json)", "Edit(./CLAUDE.md)"):
        assert rule in deny, rule
    assert "Read(./CLAUDE.md)" not in deny, "read-only files stay readable"
    hook = managed["hooks"]["PreToolUse"][0]
    assert hook["matcher"] == "Bash" and hook["hooks"][0]["command"].startswith("agent-guard hook claude; s=$?;")
    assert managed["allowManagedHooksOnly"] is True
    assert "defaultMode" not in managed["permissions"]
    user = doc(name, "/home/agent/.claude/settings.json")
    assert user["permissions"] == {"defaultMode": "bypassPermissions"}
    assert user["skipDangerousModePermissionPrompt"] is True
    assert user["env"]["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1" and user["env"]["DISABLE_TELEMETRY"] == "1"
    assert doc(name, "/etc/agent-sandbox/seed/home/.claude.json")["hasCompletedOnboarding"] is True


def test_claude_interactive():
    perms = doc("interactive", "~/.claude/settings.json")["permissions"]
    assert perms["defaultMode"] == "default" and perms["disableBypassPermissionsMode"] == "disable"
    assert "Bash(git status *)" in perms["allow"] and "Bash(git commit *)" in perms["ask"]
    assert "Bash(git push --force *)" in perms["deny"] and "Bash(git reset --hard *)" in perms["deny"]
    assert len(perms["allow"]) + len(perms["ask"]) + len(perms["deny"]) > 300
    assert not set(perms["allow"]) & set(perms["deny"])


@pytest.mark.parametrize("name", ["autonomous", "ci"])
def test_codex_bypass(name):
    config = doc(name, "/home/agent/.codex/config.toml")
    assert config["approval_policy"] == "never" and config["sandbox_mode"] == "danger-full-access"
    assert config["analytics"] == {"enabled": False} and config["features"]["unbounded_connection_retries"] is False
    assert config["shell_environment_policy"]["ignore_default_excludes"] is False
    assert "AWS_SECRET_ACCESS_KEY" in config["shell_environment_policy"]["exclude"]
    assert "profiles" not in config and "profile" not in config
    rules = outputs(name)["/etc/codex/rules/agent-sandbox.rules"].content.decode()
    for rule_id in TRIPWIRE:
        assert f'"agent-sandbox {rule_id}: ' in rules
    requirements = doc(name, "/etc/codex/requirements.toml")["rules"]["prefix_rules"]
    assert {r["justification"].split(":")[0].removeprefix("agent-sandbox ") for r in requirements} == set(TRIPWIRE)
    assert all(r["decision"] == "forbidden" for r in requirements)
    assert ("/home/agent/.codex/ci.config.toml" in outputs(name)) == (name == "ci")
    hooks = doc(name, "/etc/codex/requirements.toml")
    assert hooks["hooks"]["PreToolUse"][0]["hooks"][0]["command"].startswith("agent-guard hook codex; s=$?;")
    assert hooks["features"] == {"hooks": True, "unified_exec_tty": False}


def test_codex_ci_layer():
    layer = doc("ci", "/home/agent/.codex/ci.config.toml")
    assert layer["approval_policy"] == "never" and "profiles" not in layer


def test_codex_interactive():
    config = doc("interactive", "~/.codex/config.toml")
    assert config["approval_policy"] == "on-request" and config["sandbox_mode"] == "workspace-write"


@pytest.mark.parametrize("name", ["autonomous", "ci"])
def test_gemini_bypass(name):
    settings = doc(name, "/etc/gemini-cli/settings.json")
    # The auth type is a default (the lowest layer), so that a login can select its own in the
    # run's user settings; system settings would override every other layer.
    assert "auth" not in settings["security"]
    assert doc(name, "/etc/gemini-cli/system-defaults.json") == {"security": {"auth": {"selectedType": "gemini-api-key"}}}
    assert settings["privacy"]["usageStatisticsEnabled"] is False
    assert "defaultApprovalMode" not in settings.get("general", {}), "yolo is a flag; the setting is invalid"
    assert "exclude" not in settings.get("tools", {})
    hook = settings["hooks"]["BeforeTool"][0]["hooks"][0]
    assert hook["command"].startswith("agent-guard hook gemini; s=$?;") and hook["timeout"] == 10000
    policy = doc(name, "/etc/gemini-cli/policies/agent-sandbox.toml")["rule"]
    shell = [r for r in policy if r["toolName"] == "run_shell_command"]
    # the tripwire, and the home folder's read-only files (~/.bashrc, ~/.gitconfig) against the shell's writes
    assert {r["denyMessage"].split(":")[0].removeprefix("agent-sandbox ") for r in shell} == set(TRIPWIRE) | {
        "files-read-only"}
    home = next(r["commandRegex"] for r in shell if "files-read-only" in r["denyMessage"])
    for command in ("echo 'export PATH=/x:$PATH' >> ~/.bashrc", "tee -a $HOME/.gitconfig < x", "cp x ~/.zshenv"):
        assert re.search(home, json.dumps({"command": command})), command
    assert not re.search(home, json.dumps({"command": "cat ~/.bashrc"}))
    assert all(r["decision"] == "deny" and 0 <= r["priority"] <= 999 for r in policy)
    force = next(r["commandRegex"] for r in shell if "git-push-force" in r["denyMessage"])
    for command in ("git push --force", "git push origin main --force", "git -C dir push -f", "git push origin +main"):
        assert re.search(force, json.dumps({"command": command})), command
    for command in ("git push origin main", "git status"):
        assert not re.search(force, json.dumps({"command": command})), command


def test_gemini_file_tiers():
    policy = doc("autonomous", "/etc/gemini-cli/policies/agent-sandbox.toml")["rule"]
    files = [r for r in policy if "argsPattern" in r]
    def denied(tool, path):
        return any(tool in r["toolName"] and re.search(r["argsPattern"], json.dumps({"file_path": path}, separators=(",", ":"))) for r in files)
    assert denied("read_file", "/workspace/.env") and denied("write_file", "/workspace/app/.env.local")
    assert denied("replace", "/workspace/CLAUDE.md") and not denied("read_file", "/workspace/CLAUDE.md")
    assert denied("write_file", "/workspace/.gemini/settings.json")
    assert not denied("read_file", "/workspace/src/environment.py") and not denied("write_file", "/workspace/README.md")


def test_gemini_interactive():
    settings = doc("interactive", "~/.gemini/settings.json")
    assert settings["security"]["disableYoloMode"] is True
    policy = doc("interactive", "~/.gemini/policies/agent-sandbox.toml")["rule"]
    allow = [r for r in policy if r["decision"] == "allow"]
    assert allow and all("commandPrefix" in r or "commandRegex" in r for r in allow)
    git = next(r for r in allow if "commandRegex" in r and r["commandRegex"].startswith("(?:git\\s+status"))
    assert "output" in git["commandRegex"], "git's writing options are excluded from its allow rule"
    assert settings["hooks"]["BeforeTool"][0]["hooks"][0]["command"].startswith("agent-guard hook gemini --profile interactive")
    assert any(r["decision"] == "ask_user" for r in policy)


@pytest.mark.parametrize("name", ["autonomous", "ci", "interactive"])
def test_every_output_validates(name):
    rendered = {name: outputs(name)}
    assert invariants.check(rendered) == []


def test_runtime_profile_is_what_the_guard_reads():
    runtime = doc("ci", "/etc/agent-sandbox/profiles/ci.json")
    assert runtime["posture"] == "bypass" and runtime["output"] == "machine" and runtime["default_decision"] == "allow"
    assert {r["id"] for r in runtime["rules"] if r.get("tripwire")} == set(TRIPWIRE)
    assert TRIPWIRE_PROGRAMS <= set(runtime["guarded_programs"])
    assert runtime["guarded_programs"] == sorted(runtime["guarded_programs"])


@pytest.mark.parametrize("exit_code,expected,says_failed", [(0, 0, False), (2, 2, False), (1, 2, True), (127, 2, True), (139, 2, True)])
def test_hook_command_fails_closed_without_muddling_a_refusal(tmp_path, exit_code, expected, says_failed):
    """Run the rendered hook command through sh with a stand-in agent-guard exiting as given."""
    import os
    import subprocess
    from renderer.model import hook_command

    (tmp_path / "agent-guard").write_text(f"#!/bin/sh\necho 'agent-guard: denied by rule x' >&2\nexit {exit_code}\n")
    (tmp_path / "agent-guard").chmod(0o755)
    result = subprocess.run(["sh", "-c", hook_command("claude")], capture_output=True, text=True,
                            env={**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert result.returncode == expected
    assert ("the guard hook failed" in result.stderr) == says_failed
