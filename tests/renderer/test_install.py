"""render-profiles --install interactive / --uninstall into real user homes, run as a user would.

Each home is a folder with the files a real user of the three CLIs has: stricter settings than the
profile's, comments, MCP servers, keys the install does not know. The install must keep all of
that, say what it changed, and give it back exactly on --uninstall.
"""

import json
import os
import stat
import tomllib
from pathlib import Path

import pytest
import yaml

from render_helpers import REPO, run_render

CLI_VARIABLES = ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME", "GEMINI_CLI_SYSTEM_SETTINGS_PATH")

CODEX_USER = """\
# my Codex settings: keep this comment
model = "o3"  # the one I like
approval_policy = "untrusted"   # I want to see everything
sandbox_mode = "read-only"

[mcp_servers.docs]
command = "docs-mcp"  # local docs server
args = ["--port", "0"]

[shell_environment_policy]
inherit = "core"
exclude = ["MY_SECRET"]

[profiles.fast]
model = "o4-mini"
"""

CLAUDE_USER = """\
{
    "model": "opus",
    "permissions": {
        "defaultMode": "plan",
        "allow": [
            "Bash(make docs)",
            "Bash(git status)"
        ]
    },
    "statusLine": {
        "type": "command",
        "command": "~/bin/status"
    },
    "cleanupPeriodDays": 90
}
"""

GEMINI_USER = """\
{
  "mcpServers": {
    "search": {"command": "search-mcp", "args": []}
  },
  "ui": {"theme": "GitHub"},
  "security": {"auth": {"selectedType": "gemini-api-key"}}
}
"""


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in CLI_VARIABLES}
    env.update(extra)
    return env


def install(home, *args, env=None, root=None):
    extra = ("--root", root) if root else ()
    return run_render("--install", "interactive", "--home", home, *extra, *args, env=env or clean_env())


def uninstall(home, *args, env=None):
    return run_render("--uninstall", "--home", home, *args, env=env or clean_env())


def user_home(tmp_path) -> Path:
    home = tmp_path / "home"
    for rel, text in ((".codex/config.toml", CODEX_USER), (".claude/settings.json", CLAUDE_USER),
                      (".gemini/settings.json", GEMINI_USER)):
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(text)
    return home


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and ".agent-sandbox-backup-" not in p.name}


def folders(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_dir())


# ------------------------------------------------------------------ a fresh home

def test_fresh_home_gets_every_file_and_only_the_rules_files_are_stamped(tmp_path):
    result = install(tmp_path)
    assert result.returncode == 0, result.stderr
    claude = json.loads((tmp_path / ".claude/settings.json").read_text())
    assert claude["permissions"]["disableBypassPermissionsMode"] == "disable"
    assert "Bash(git status *)" in claude["permissions"]["allow"]
    assert "Bash(git push --force *)" in claude["permissions"]["deny"]
    config = (tmp_path / ".codex/config.toml").read_text()
    assert tomllib.loads(config)["approval_policy"] == "on-request"
    assert "Do not edit" not in config and "Rendered" not in config, "the user's config.toml is not ours to stamp"
    for owned in (".codex/rules/agent-sandbox.rules", ".gemini/policies/agent-sandbox.toml"):
        assert (tmp_path / owned).read_text().startswith("# Rendered by render-profiles")
    assert json.loads((tmp_path / ".gemini/settings.json").read_text())["security"]["disableYoloMode"] is True
    state = tmp_path / ".config/agent-sandbox/install-state.json"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert "~/.codex/config.toml: created" in result.stdout
    assert "~/.codex/rules/agent-sandbox.rules: written (the project's own rules)" in result.stdout
    assert "Protections an agent could undo" in result.stdout and "--system" in result.stdout


# ------------------------------------------------------------------ a real user's home

def test_stricter_user_settings_are_kept_and_the_summary_says_so(tmp_path):
    home = user_home(tmp_path)
    result = install(home)
    assert result.returncode == 0, result.stderr
    codex = tomllib.loads((home / ".codex/config.toml").read_text())
    assert codex["approval_policy"] == "untrusted"
    assert codex["sandbox_mode"] == "read-only"
    assert codex["shell_environment_policy"]["inherit"] == "core"
    assert json.loads((home / ".claude/settings.json").read_text())["permissions"]["defaultMode"] == "plan"
    for line in ('kept your approval_policy = "untrusted"', 'kept your sandbox_mode = "read-only"',
                 'kept your shell_environment_policy.inherit = "core"', 'kept your permissions.defaultMode = "plan"'):
        assert line in result.stdout, result.stdout


def test_weaker_user_settings_are_replaced_and_the_summary_says_from_what(tmp_path):
    home = tmp_path
    (home / ".codex").mkdir()
    (home / ".codex/config.toml").write_text('approval_policy = "never"\nsandbox_mode = "danger-full-access"\n'
                                            '[shell_environment_policy]\nignore_default_excludes = true\n')
    (home / ".claude").mkdir()
    (home / ".claude/settings.json").write_text('{"permissions": {"defaultMode": "bypassPermissions"}}')
    (home / ".gemini").mkdir()
    (home / ".gemini/settings.json").write_text('{"security": {"disableYoloMode": false}}')
    result = install(home)
    assert result.returncode == 0, result.stderr
    codex = tomllib.loads((home / ".codex/config.toml").read_text())
    assert (codex["approval_policy"], codex["sandbox_mode"]) == ("on-request", "workspace-write")
    assert codex["shell_environment_policy"]["ignore_default_excludes"] is False
    assert json.loads((home / ".claude/settings.json").read_text())["permissions"]["defaultMode"] == "default"
    assert json.loads((home / ".gemini/settings.json").read_text())["security"]["disableYoloMode"] is True
    for line in ('approval_policy: "never" -> "on-request" (yours was less strict',
                 'sandbox_mode: "danger-full-access" -> "workspace-write"',
                 'permissions.defaultMode: "bypassPermissions" -> "default"',
                 'security.disableYoloMode: false -> true'):
        assert line in result.stdout, result.stdout


def test_comments_formatting_key_order_mcp_servers_and_custom_keys_survive(tmp_path):
    home = user_home(tmp_path)
    assert install(home).returncode == 0
    config = (home / ".codex/config.toml").read_text()
    for line in ("# my Codex settings: keep this comment", 'model = "o3"  # the one I like',
                 'approval_policy = "untrusted"   # I want to see everything', 'command = "docs-mcp"  # local docs server',
                 '[profiles.fast]'):
        assert line in config
    assert config.startswith(CODEX_USER.splitlines()[0])
    codex = tomllib.loads(config)
    assert codex["mcp_servers"]["docs"] == {"command": "docs-mcp", "args": ["--port", "0"]}
    assert codex["shell_environment_policy"]["exclude"][0] == "MY_SECRET" and "SSH_AUTH_SOCK" in codex["shell_environment_policy"]["exclude"]
    claude_text = (home / ".claude/settings.json").read_text()
    claude = json.loads(claude_text)
    assert list(claude)[:4] == ["model", "permissions", "statusLine", "cleanupPeriodDays"]
    assert claude_text.startswith('{\n    "model": "opus"'), "the file's own indentation is kept"
    assert claude["permissions"]["allow"][:2] == ["Bash(make docs)", "Bash(git status)"]
    gemini = json.loads((home / ".gemini/settings.json").read_text())
    assert gemini["mcpServers"] == {"search": {"command": "search-mcp", "args": []}} and gemini["ui"] == {"theme": "GitHub"}
    assert gemini["security"]["auth"] == {"selectedType": "gemini-api-key"}


def test_reinstall_changes_nothing_and_makes_no_backup(tmp_path):
    home = user_home(tmp_path)
    first = install(home)
    assert first.returncode == 0
    backups = sorted(p.name for p in home.rglob("*.agent-sandbox-backup-*"))
    assert len(backups) == 3  # one per file of the user's the install changed
    before = snapshot(home)
    again = install(home)
    assert again.returncode == 0, again.stderr
    assert "0 files changed" in again.stdout
    assert snapshot(home) == before
    assert sorted(p.name for p in home.rglob("*.agent-sandbox-backup-*")) == backups


def test_uninstall_gives_back_exactly_the_users_files(tmp_path):
    home = user_home(tmp_path)
    before, before_folders = snapshot(home), folders(home)
    assert install(home).returncode == 0
    result = uninstall(home)
    assert result.returncode == 0, result.stderr
    assert snapshot(home) == before, "byte for byte, the user's own files"
    assert folders(home) == before_folders, "the folders the install made are gone"
    assert "~/.codex/config.toml: restored to your own settings" in result.stdout
    assert uninstall(home).returncode == 2  # nothing left to uninstall


def test_uninstall_of_a_fresh_home_leaves_it_empty(tmp_path):
    assert install(tmp_path).returncode == 0
    assert uninstall(tmp_path).returncode == 0
    assert list(tmp_path.iterdir()) == []


def test_uninstall_keeps_what_the_user_changed_after_the_install(tmp_path):
    home = user_home(tmp_path)
    assert install(home).returncode == 0
    settings = home / ".claude/settings.json"
    claude = json.loads(settings.read_text())
    claude["permissions"]["allow"].append("Bash(make test)")
    claude["theme"] = "dark"
    claude["env"]["DISABLE_TELEMETRY"] = "0"  # the user's own decision, after the install
    settings.write_text(json.dumps(claude, indent=4))
    result = uninstall(home)
    assert result.returncode == 0, result.stderr
    after = json.loads(settings.read_text())
    assert after["permissions"]["allow"] == ["Bash(make docs)", "Bash(git status)", "Bash(make test)"]
    assert after["theme"] == "dark" and after["permissions"]["defaultMode"] == "plan"
    assert after["env"] == {"DISABLE_TELEMETRY": "0"}
    assert "left your env.DISABLE_TELEMETRY" in result.stdout
    assert "deny" not in after["permissions"] and "disableBypassPermissionsMode" not in after["permissions"]


def test_an_upgrade_that_drops_a_rule_removes_it_from_all_three_clis(tmp_path, project):
    home = user_home(tmp_path)
    assert install(home, root=project).returncode == 0
    profile_path = project / "profiles/interactive.yaml"
    profile = yaml.safe_load(profile_path.read_text())
    profile["commands"]["ask"] = [r for r in profile["commands"]["ask"] if r["id"] != "process-control"]
    profile_path.write_text(yaml.safe_dump(profile, sort_keys=False))
    result = install(home, root=project)
    assert result.returncode == 0, result.stderr
    claude = json.loads((home / ".claude/settings.json").read_text())
    assert "Bash(pkill *)" not in claude["permissions"]["ask"]
    assert claude["permissions"]["allow"][:2] == ["Bash(make docs)", "Bash(git status)"], "the user's own entries stay"
    assert "Bash(git push *)" in claude["permissions"]["ask"]
    assert '"pkill"' not in (home / ".codex/rules/agent-sandbox.rules").read_text()
    assert "pkill" not in (home / ".gemini/policies/agent-sandbox.toml").read_text()
    assert "process-control" not in (home / ".config/agent-sandbox/profiles/interactive.json").read_text()
    assert "permissions.ask: removed 16 entries (Bash(kill), Bash(kill *), Bash(pkill) and 13 more): " \
           "the profile no longer has them" in result.stdout
    assert "~/.codex/rules/agent-sandbox.rules: replaced with the profile's current rules" in result.stdout


def test_an_entry_the_user_had_before_the_install_stays_after_uninstall(tmp_path):
    home = user_home(tmp_path)  # the user already allows Bash(git status), which the profile also allows
    assert install(home).returncode == 0
    assert uninstall(home).returncode == 0
    assert json.loads((home / ".claude/settings.json").read_text())["permissions"]["allow"] == ["Bash(make docs)", "Bash(git status)"]


# ------------------------------------------------------------------ where the files go

def test_the_cli_folder_variables_are_honoured(tmp_path):
    home, claude_dir, codex_home, gemini_home = (tmp_path / n for n in ("home", "claude-cfg", "codex-home", "gemini-home"))
    for folder in (home, claude_dir, codex_home, gemini_home):
        folder.mkdir()
    env = clean_env(CLAUDE_CONFIG_DIR=str(claude_dir), CODEX_HOME=str(codex_home), GEMINI_CLI_HOME=str(gemini_home))
    result = install(home, env=env)
    assert result.returncode == 0, result.stderr
    assert (claude_dir / "settings.json").is_file()
    assert (codex_home / "config.toml").is_file() and (codex_home / "rules/agent-sandbox.rules").is_file()
    assert (gemini_home / ".gemini/settings.json").is_file() and (gemini_home / ".gemini/policies/agent-sandbox.toml").is_file()
    assert sorted(p.name for p in home.iterdir()) == [".config"], "only the guard's profile and the state in $HOME"
    assert f"{codex_home}/config.toml (from $CODEX_HOME): created" in result.stdout
    assert uninstall(home, env=clean_env()).returncode == 0, "the state remembers where the files went"
    assert [list(f.iterdir()) for f in (claude_dir, codex_home, gemini_home)] == [[], [], []]


def test_a_relative_cli_folder_variable_is_refused(tmp_path):
    result = install(tmp_path, env=clean_env(CODEX_HOME="codex"))
    assert result.returncode == 2
    assert "$CODEX_HOME is 'codex', a relative path" in result.stderr
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ refusals: nothing written

@pytest.mark.parametrize("rel, text, message", [
    (".gemini/settings.json", "{ not json", ".gemini/settings.json: not valid JSON"),
    (".codex/config.toml", "approval_policy = \n", ".codex/config.toml: not valid TOML"),
    (".gemini/settings.json", '{\n  // my theme\n  "ui": {"theme": "GitHub"}\n}\n', ".gemini/settings.json: has comments"),
    (".claude/settings.json", '{"permissions": "ask me"}', "permissions is the value \"ask me\" in your file; the profile needs a table"),
    (".claude/settings.json", '[1, 2]', ".claude/settings.json: expected a JSON object"),
])
def test_a_file_that_cannot_be_merged_stops_the_install_before_anything_is_written(tmp_path, rel, text, message):
    home = user_home(tmp_path)
    (home / rel).write_text(text)
    before = snapshot(home)
    result = install(home)
    assert result.returncode == 2
    assert message in result.stderr and "nothing was changed" in result.stderr, result.stderr
    assert snapshot(home) == before
    assert not (home / ".config").exists()


def test_a_symlinked_settings_file_is_refused_not_followed(tmp_path):
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    elsewhere = tmp_path / "dotfiles-settings.json"
    elsewhere.write_text("{}")
    (home / ".claude/settings.json").symlink_to(elsewhere)
    result = install(home)
    assert result.returncode == 2
    assert "is a symbolic link" in result.stderr and "never follows links" in result.stderr
    assert elsewhere.read_text() == "{}" and not (home / ".codex").exists()


def test_a_foreign_file_where_the_projects_own_file_goes_is_refused(tmp_path):
    (tmp_path / ".codex/rules").mkdir(parents=True)
    (tmp_path / ".codex/rules/agent-sandbox.rules").write_text("# my own rules\n")
    result = install(tmp_path)
    assert result.returncode == 2
    assert "agent-sandbox.rules exists and was not written by render-profiles" in result.stderr


def test_dry_run_prints_the_diff_per_file_and_writes_nothing(tmp_path):
    home = user_home(tmp_path)
    before = snapshot(home)
    result = install(home, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert snapshot(home) == before and not (home / ".config").exists()
    assert "--- a/~/.codex/config.toml\n+++ b/~/.codex/config.toml\n" in result.stdout
    assert "+check_for_update_on_startup = false\n" in result.stdout
    assert "--- /dev/null\n+++ b/~/.codex/rules/agent-sandbox.rules\n" in result.stdout
    assert "Nothing was written (--dry-run)." in result.stdout


def test_bypass_profiles_are_never_installed(tmp_path):
    for profile in ("autonomous", "ci"):
        result = run_render("--install", profile, "--home", tmp_path, env=clean_env())
        assert result.returncode == 2 and "bypasses approvals" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_system_and_dry_run_need_an_install_or_uninstall(tmp_path):
    result = run_render("--system", env=clean_env())
    assert result.returncode == 2 and "go with --install or --uninstall" in result.stderr


def test_the_codex_hook_is_installed_trusted_as_codex_itself_computes_it(tmp_path):
    """Codex runs a user-level hook only once trusted; the install records the hash Codex gives
    (codex app-server hooks/list), and Codex then lists the hook as trusted."""
    from renderer.install.hooks import _hooks_list

    codex = REPO / "node_modules" / ".bin" / "codex"
    env = clean_env(PATH=f"{codex.parent}:{os.environ['PATH']}")
    result = install(tmp_path, "--guard", "/opt/agent-sandbox/bin/agent-guard", env=env)
    assert result.returncode == 0, result.stderr
    config = tomllib.loads((tmp_path / ".codex/config.toml").read_text())
    assert list(config["hooks"]["state"]) == [f"{tmp_path}/.codex/config.toml:pre_tool_use:0:0"]
    listed = _hooks_list(str(codex), str(tmp_path / ".codex"))
    ours = [h for h in listed if h["command"].startswith("/opt/agent-sandbox/bin/agent-guard hook codex --profile interactive")]
    assert [h["trustStatus"] for h in ours] == ["trusted"]
    claude = json.loads((tmp_path / ".claude/settings.json").read_text())
    assert claude["hooks"]["PreToolUse"][0]["hooks"][0]["command"].startswith("/opt/agent-sandbox/bin/agent-guard hook claude")


def test_without_agent_guard_the_hooks_are_not_installed(tmp_path):
    result = install(tmp_path, env=clean_env(PATH="/usr/bin:/bin"))
    assert result.returncode == 2 and "agent-guard is not on PATH" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_uninstall_refuses_a_state_file_that_names_another_file(tmp_path):
    assert install(tmp_path).returncode == 0
    state_path = tmp_path / ".config/agent-sandbox/install-state.json"
    victim = tmp_path / "precious.txt"
    victim.write_text("mine\n")
    state = json.loads(state_path.read_text())
    entry = state["files"].pop(str(tmp_path / ".codex/rules/agent-sandbox.rules"))
    state["files"][str(victim)] = entry
    state_path.write_text(json.dumps(state))
    result = uninstall(tmp_path)
    assert result.returncode == 2 and "changed by someone else" in result.stderr
    assert victim.read_text() == "mine\n"
