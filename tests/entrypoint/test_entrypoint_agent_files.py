"""Files the agent can write in one session that would switch a layer off in the next: the real
entrypoint, as uid 1000 in its container-like world, parses each the way its CLI does and refuses
to start the CLI (exit 78, the file and the key named), and starts it when the file is harmless."""

import json
import os
import shlex

import pytest

from entrypoint import agent_files
from entrypoint_world import AGENT_UID

REFUSED = 78


def put(path, text):
    """A file in the workspace, owned by the agent as if it had written it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    workspace = next(p for p in path.parents if p.name == "workspace")
    for folder, _, files in os.walk(workspace):
        for name in [folder, *(os.path.join(folder, f) for f in files)]:
            os.lchown(name, AGENT_UID, AGENT_UID)


def home_file(world, relative, text):
    """A file in /home/agent (a tmpfs made inside the world), written as the agent would."""
    target = f"/home/agent/{relative}"
    world.setup += [f"mkdir -p {shlex.quote(os.path.dirname(target))}",
                    f"printf %s {shlex.quote(text)} > {shlex.quote(target)}",
                    f"chown -R 1000:1000 /home/agent/{shlex.quote(relative.split('/')[0])}"]


def refused(result, *needles):
    assert result.returncode == REFUSED, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert not any(result.has_record(f"{tool}.json") for tool in ("claude", "codex", "gemini"))


def started(result, tool):
    assert result.returncode == 0, result.stderr
    assert result.has_record(f"{tool}.json"), result.stderr


# ---- Gemini ------------------------------------------------------------------------------------

def test_a_json_escaped_hooks_config_key_is_read_as_the_key_gemini_reads(world):
    put(world.workspace / ".gemini/settings.json", '{"hooks\\u0043onfig": {"disabled": ["agent-guard"]}}')
    refused(world.run(["gemini", "-p", "x"]), f"{world.workspace}/.gemini/settings.json: configures hooksConfig")


def test_gemini_user_settings_with_comments_are_parsed_as_gemini_parses_them(world):
    home_file(world, ".gemini/settings.json", '{\n  // the UI\n  "ui": {"theme": "x"}, /* and */ "hooks": {}\n}')
    refused(world.run(["gemini", "-p", "x"]), "/home/agent/.gemini/settings.json: configures hooks,")


def test_gemini_settings_without_hook_keys_start_and_a_mention_in_a_string_is_no_key(world):
    home_file(world, ".gemini/settings.json", '{"model": {"disableLoopDetection": true}, "ui": {"title": "\\"hooks\\": off"}}')
    started(world.run(["gemini", "-p", "x"]), "gemini")


def test_gemini_settings_that_do_not_parse_refuse(world):
    put(world.workspace / ".gemini/settings.json", '{"ui": {"theme": "x"},}')
    refused(world.run(["gemini", "-p", "x"]), "does not parse as JSON", "so it cannot be checked")


def test_a_gemini_env_file_setting_bash_env_refuses(world):
    put(world.workspace / ".gemini/.env", "# mine\nexport BASH_ENV=/workspace/.rc\n")
    refused(world.run(["gemini", "-p", "x"]), f"{world.workspace}/.gemini/.env sets BASH_ENV, which Gemini CLI loads")


def test_a_project_env_file_with_application_settings_starts(world):
    # PATH is set already, and Gemini never replaces a variable that is set
    put(world.workspace / ".env", "DATABASE_URL=postgres://localhost/db\nDEBUG=1\nPATH=/usr/bin:/bin\n")
    started(world.run(["gemini", "-p", "x"]), "gemini")


def test_a_moved_system_settings_file_refuses(world):
    refused(world.run(["gemini", "-p", "x"], {"GEMINI_CLI_SYSTEM_SETTINGS_PATH": "/tmp/mine.json"}),
            "GEMINI_CLI_SYSTEM_SETTINGS_PATH is set")


# ---- Claude Code --------------------------------------------------------------------------------

def test_claude_local_settings_setting_path_refuse(world):
    put(world.workspace / ".claude/settings.local.json", json.dumps({"env": {"PATH": "/usr/local/bin:/usr/bin:/bin"}}))
    refused(world.run(["claude", "-p", "x"]),
            f"{world.workspace}/.claude/settings.local.json: env sets PATH, which Claude Code passes to every command")


@pytest.mark.parametrize("file,name", [
    ("settings.json", "BASH_ENV"), ("settings.local.json", "GIT_CONFIG_KEY_0"), ("settings.json", "GIT_CONFIG_PARAMETERS"),
    ("settings.local.json", "CARGO_ALIAS_SHIP"), ("settings.json", "BASH_FUNC_git%%"), ("settings.local.json", "CLAUDE_ENV_FILE"),
])
def test_claude_settings_env_taking_a_layer_away_refuses(world, file, name):
    put(world.workspace / ".claude" / file, json.dumps({"env": {"RUST_LOG": "debug", name: "x"}}))
    refused(world.run(["claude", "-p", "x"]), f"{world.workspace}/.claude/{file}: env sets {name}, which Claude Code passes")


def test_claude_project_settings_switching_hooks_off_refuse(world):
    put(world.workspace / ".claude/settings.json", json.dumps({"disableAllHooks": True}))
    refused(world.run(["claude", "-p", "x"]), "disableAllHooks would switch the agent-guard hook off")


def test_claude_settings_with_an_ordinary_variable_start(world):
    put(world.workspace / ".claude/settings.json", json.dumps({"env": {"RUST_LOG": "debug"}}))
    started(world.run(["claude", "-p", "x"]), "claude")


def test_a_settings_file_that_is_a_symbolic_link_refuses(world):
    target = world.workspace / "elsewhere.json"
    put(target, "{}")
    (world.workspace / ".claude").mkdir()
    (world.workspace / ".claude/settings.local.json").symlink_to(target)
    refused(world.run(["claude", "-p", "x"]), "is a symbolic link")


# ---- Codex --------------------------------------------------------------------------------------

def test_codex_project_config_setting_path_for_commands_refuses(world):
    put(world.workspace / ".codex/config.toml", '[shell_environment_policy.set]\nPATH = "/usr/bin:/bin"\n')
    refused(world.run(["codex", "exec", "x"]), ".codex/config.toml: shell_environment_policy.set sets PATH")


def test_codex_profile_config_setting_bash_env_refuses(world):
    put(world.workspace / ".codex/config.toml", '[profiles.ci.shell_environment_policy.set]\nBASH_ENV = "/x"\n')
    refused(world.run(["codex", "exec", "x"]), "profiles.ci.shell_environment_policy.set sets BASH_ENV")


# ---- shell start-up files (every CLI) -----------------------------------------------------------

@pytest.mark.parametrize("tool", ["claude", "codex", "gemini"])
def test_a_bashrc_function_named_after_a_guarded_program_refuses_every_cli(world, tool):
    home_file(world, ".bashrc", 'git() { /usr/bin/git "$@"; }\n')
    refused(world.run([tool, "-p", "x"] if tool != "codex" else [tool, "exec", "x"]),
            "/home/agent/.bashrc: defines a function 'git'")


@pytest.mark.parametrize("relative,text,needle", [
    (".profile", 'PATH="$HOME/bin:$PATH"\n', "/home/agent/.profile: sets PATH"),
    (".bash_profile", "export BASH_ENV=/workspace/rc\n", "sets BASH_ENV"),
    (".bashrc", "alias npm=/usr/bin/npm\n", "defines an alias 'npm'"),
    (".bashrc", ". /tmp/more.sh\n", "sources /tmp/more.sh"),
    (".bashrc", 'eval "$(cat /workspace/x)"\n', "runs 'eval'"),
    (".bashrc", "gh secret list >/dev/null 2>&1\n", "runs a command the profile denies at every shell start (gh-secret"),
    (".bashrc", "if then\n", "does not parse as a shell script"),
])
def test_start_up_files_that_would_drop_the_shims_refuse(world, relative, text, needle):
    home_file(world, relative, text)
    refused(world.run(["claude", "-p", "x"]), needle)


def test_an_ordinary_bashrc_starts(world):
    home_file(world, ".bashrc", '[ -z "$PS1" ] && return\nHISTSIZE=1000\nshopt -s histappend\n'
                                'alias ll="ls -l"\nexport PATH="$PATH:$HOME/.local/bin"\nexport EDITOR=vim\n'
                                ". /etc/os-release\n")
    started(world.run(["claude", "-p", "x"]), "claude")


# ---- git and cargo configuration (every CLI: the programs are the same) --------------------------

@pytest.mark.parametrize("relative,text,needle", [
    (".gitconfig", "[alias]\n\tship = push --force-with-lease\n",
     "/home/agent/.gitconfig: alias.ship runs `git push --force-with-lease`, which the profile denies (git-push-force)"),
    (".gitconfig", '[alias]\n\tsl = "!gh secret list"\n', "alias.sl runs `gh secret list`, which the profile denies"),
    (".config/git/config", '[remote "origin"]\n\tpush = +refs/heads/main:refs/heads/main\n',
     "/home/agent/.config/git/config: remote.origin.push = +refs/heads/main:refs/heads/main makes every `git push`"),
    (".gitconfig", '[remote "up"]\n\tmirror\n', "remote.up.mirror makes every `git push` to that remote force and delete"),
    (".gitconfig", "[core]\n\tpager = gh secret list #\n", "core.pager runs `gh secret list`, which the profile denies (gh-secret)"),
    (".gitconfig", "[alias\n", "/home/agent/.gitconfig does not parse as git configuration"),
])
def test_git_configuration_that_turns_a_clean_command_into_a_denied_one_refuses(world, relative, text, needle):
    home_file(world, relative, text)
    refused(world.run(["codex", "exec", "x"]), needle)


def test_a_git_include_is_judged_as_a_file_of_its_own(world):
    home_file(world, ".gitconfig", "[user]\n\tname = a\n[include]\n\tpath = ~/.more.gitconfig\n")
    home_file(world, ".more.gitconfig", '[remote "origin"]\n\tpush = :refs/heads/main\n')
    refused(world.run(["gemini", "-p", "x"]), "/home/agent/.more.gitconfig: remote.origin.push = :refs/heads/main")


def test_the_workspace_repository_configuration_is_judged(world):
    put(world.workspace / ".git/config", '[remote "origin"]\n\turl = ../r.git\n\tmirror = true\n')
    refused(world.run(["claude", "-p", "x"]), f"{world.workspace}/.git/config: remote.origin.mirror")


def test_an_ordinary_gitconfig_starts(world):
    home_file(world, ".gitconfig", '[user]\n\tname = A\n[core]\n\teditor = vim\n\thooksPath = .husky\n'
                                   '[alias]\n\tst = status -sb\n\tlg = "!git log --oneline -20"\n'
                                   '[remote "origin"]\n\tpush = HEAD:refs/for/main\n')
    started(world.run(["claude", "-p", "x"]), "claude")


@pytest.mark.parametrize("where,text,needle", [
    ("home", '[alias]\nship = "publish --no-verify"\n',
     "/home/agent/.cargo/config.toml: alias.ship runs `cargo publish --no-verify`, which the profile denies (cargo-publish)"),
    ("workspace", '[alias]\nz = ["yank", "--version", "1.0.0"]\n', ".cargo/config.toml: alias.z runs `cargo yank --version 1.0.0`"),
    ("workspace", "[alias\n", ".cargo/config.toml does not parse as TOML"),
])
def test_a_cargo_alias_for_a_denied_subcommand_refuses(world, where, text, needle):
    if where == "home":
        home_file(world, ".cargo/config.toml", text)
    else:
        put(world.workspace / ".cargo/config.toml", text)
    refused(world.run(["claude", "-p", "x"]), needle)


def test_ordinary_cargo_aliases_start(world):
    put(world.workspace / ".cargo/config.toml", '[alias]\nb = "build"\nt = ["test", "--workspace"]\n')
    started(world.run(["codex", "exec", "x"]), "codex")


@pytest.mark.parametrize("tool,relative,text,needle", [
    ("claude", ".mcp.json", {"mcpServers": {"x": {"command": "node", "args": ["s.js"], "env": {"PATH": "/usr/bin"}}}},
     ".mcp.json: mcpServers.x.env sets PATH, which the MCP server and everything it runs get"),
    ("gemini", ".gemini/settings.json", {"mcpServers": {"y": {"command": "python3", "env": {"BASH_ENV": "/w/rc"}}}},
     ".gemini/settings.json: mcpServers.y.env sets BASH_ENV"),
])
def test_an_mcp_server_environment_that_drops_the_shims_refuses(world, tool, relative, text, needle):
    put(world.workspace / relative, json.dumps(text))
    refused(world.run([tool, "-p", "x"]), needle)


def test_a_codex_mcp_server_environment_that_drops_the_shims_refuses(world):
    put(world.workspace / ".codex/config.toml", '[mcp_servers.z]\ncommand = "node"\nenv = { LD_PRELOAD = "/w/x.so" }\n')
    refused(world.run(["codex", "exec", "x"]), ".codex/config.toml: mcp_servers.z.env sets LD_PRELOAD")


# ---- the readers, against their CLIs' own parsers -----------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ('{"a": "x//y", // c\n "b": 1}', {"a": "x//y", "b": 1}),
    ('{"a": "\\"/*", /* c */ "b": [1, /*x*/ 2]}', {"a": '"/*', "b": [1, 2]}),
    ('{"a": 1}\r\n// end', {"a": 1}),
    ('{"k\\u0065y": true} /* unterminated', {"key": True}),
])
def test_gemini_settings_comments_are_stripped_as_strip_json_comments_does(text, expected):
    assert agent_files.json_object(text.encode(), comments=True) == expected


def test_dotenv_names_include_exported_colon_and_multi_line_values():
    data = b'# comment\nBASH_ENV=/x\nexport  A_B="one\nPATH=two"\nKEY: value\n  spaced.name = 1\nnot a line\n'
    assert agent_files.dotenv_keys(data) == ["BASH_ENV", "A_B", "PATH", "KEY", "spaced.name"]


@pytest.mark.parametrize("name,layer", [("PATH", True), ("BASH_FUNC_git%%", True), ("PYTHONPATH", True),
                                        ("LD_PRELOAD", True), ("GIT_CONFIG_KEY_0", True), ("CARGO_ALIAS_P", True),
                                        ("RUST_LOG", False), ("PATHS", False), ("EDITOR", False)])
def test_layer_variables(name, layer):
    assert agent_files.layer_variable(name) is layer
