"""What the interactive profile adds to the rule language and the classifier: none_of, the tools'
writing and running options (an allow rule never matches a command carrying one), the file
tiers on every write route the classifier sees, and the hook's answer on a workstation."""

import json
import os
import subprocess
import sys

import pytest

from guard.classify import Place, classify
from guard.policy import PolicyError, compile_policy, parse_rule
from renderer.model import load
from renderer.runtime import runtime_profile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOME = "/home/me"
PLACE = Place("/home/me/project", HOME, {})


@pytest.fixture(scope="module")
def interactive():
    return compile_policy(runtime_profile(load("interactive")))


def decide(policy, command, place=PLACE):
    return classify(command, policy, place=place)


@pytest.mark.parametrize("command", [
    "git log --oneline -5", "git status --short", "git diff HEAD~1", "git grep -n TODO", "git fetch origin",
    "git ls-remote origin", "git show -p HEAD", "git log -p", "sort notes.txt", "rg TODO src", "fd -e py",
    "gh pr list", "gh pr view 12", "cat README.md", "date +%F", "go env GOPATH", "cargo metadata",
])
def test_reading_commands_are_allowed(interactive, command):
    decision = decide(interactive, command)
    assert decision.decision == "allow", decision


@pytest.mark.parametrize("command", [
    "git log -1 --output=/home/me/x",
    "git log -1 --output /home/me/x",
    "git log -1 --outp=/home/me/x",  # git takes an unambiguous abbreviation
    "git fetch --upload-pack='touch /tmp/x; git-upload-pack' origin",
    "git ls-remote --upload-pack='touch /tmp/x' origin",
    "git grep -O'touch /tmp/x' TODO",
    "git grep -nO TODO",  # inside a cluster
    "git -c core.fsmonitor='touch /tmp/x' status",
    "git -C sub -c core.pager=x log",
    "W=x git --config-env=core.fsmonitor=W status",
    "git show --ext-diff HEAD",
    "git -p log",
    "git log $OPTIONS",  # not known before it runs: it could be --output
    "sort -o /tmp/out notes.txt",
    "sort --compress-program=sh notes.txt",
    "rg --pre ./evil TODO",
    "fd -x rm",
    "gh pr view 12 --web",
    "date -s 2020-01-01",
    "go env -w GOFLAGS=-x",
    "cargo --config build.rustc-wrapper=x metadata",
])
def test_a_writing_or_running_option_makes_an_allowed_command_ask(interactive, command):
    decision = decide(interactive, command)
    assert decision.decision == "ask", decision


def test_the_subcommand_position_matters_for_git_c(interactive):
    assert decide(interactive, "git log -c").decision == "allow"  # combined diff, not a config value
    assert decide(interactive, "git -c x=y log").decision == "ask"


@pytest.mark.parametrize("command, rule", [
    ("rm -rf sub", "rm-recursive-root"),
    ("git push origin main --force", "git-push-force"),
    ("git clean -fdx", "git-clean-force"),
    ("git checkout .", "git-checkout-discard"),
    ("cat .env", "files-blocked"),
    ("cat < .env", "files-blocked"),
    ("echo 'alias git=true' >> ~/.bashrc", "files-read-only"),
    ("echo x > $HOME/.profile", "files-read-only"),
    ("echo x > ${HOME}/.profile", "files-read-only"),
    ("tee -a /home/me/.codex/config.toml", "files-read-only"),
    ("git log -1 --output=/home/me/.claude/settings.json", "files-read-only"),
    ("git log -1 --output ~/.bashrc", "files-read-only"),
    ("sort -o ../.bashrc notes.txt", "files-read-only"),
    ("cp /tmp/x ~/.gemini/policies/agent-sandbox.toml", "files-read-only"),
    ("sed -i s/deny/allow/ /home/me/.config/agent-sandbox/profiles/interactive.json", "files-read-only"),
    ("{ echo x; } > ~/.zshrc", "files-read-only"),
    ("echo '[alias] st = !sh' >> ~/.gitconfig", "files-read-only"),
])
def test_denied_and_protected(interactive, command, rule):
    decision = decide(interactive, command)
    assert (decision.decision, decision.rule) == ("deny", rule), decision


def test_the_clis_folder_variables_move_the_protected_folders(interactive):
    place = Place("/work", HOME, {"CODEX_HOME": "/srv/codex", "GEMINI_CLI_HOME": "/srv/g"})
    assert decide(interactive, "echo x >> /srv/codex/config.toml", place).rule == "files-read-only"
    assert decide(interactive, "echo x >> /srv/g/.gemini/settings.json", place).rule == "files-read-only"
    assert decide(interactive, "echo x >> /srv/codex-notes.txt", place).decision == "ask"


@pytest.mark.parametrize("command", ["echo hi > notes.txt", "git log > log.txt", "ls >> listing"])
def test_a_redirection_to_a_file_asks(interactive, command):
    decision = decide(interactive, command)
    assert (decision.decision, decision.rule) == ("ask", "writes-a-file"), decision


@pytest.mark.parametrize("command", ["git status 2>/dev/null", "ls >/dev/null 2>&1", "test -f .env && echo present",
                                     "cat ~/.bashrc"])
def test_harmless_redirections_names_and_reads_stay_allowed(interactive, command):
    assert decide(interactive, command).decision == "allow"


def test_none_of_in_the_rule_language():
    rule = parse_rule({"id": "x", "reason": "r", "command": ["tool", "read"], "none_of": [{"flag": ["--write"]}]},
                      "rule", decision="allow")
    policy = compile_policy({"posture": "interactive", "rules": [rule.to_json()]})
    assert classify("tool read a b", policy).decision == "allow"
    assert classify("tool read a --write=b", policy).decision == "ask"
    assert classify("tool read -- --write", policy).decision == "allow"  # after --, a file name
    assert rule.to_json()["none_of"] == [{"flag": ["--write"]}]
    with pytest.raises(PolicyError, match="none_of"):
        parse_rule({"id": "x", "reason": "r", "command": ["t"], "none_of": {"flag": ["-x"]}}, "rule")


def test_a_tools_writing_option_must_be_an_option_name():
    with pytest.raises(PolicyError, match="tools.git.writes_or_runs"):
        compile_policy({"tools": {"git": {"writes_or_runs": ["output"]}}})


def run_hook(cli, command, env_extra=None):
    event = {"tool_name": "run_shell_command" if cli == "gemini" else "Bash", "tool_input": {"command": command},
             "cwd": "/home/me/project"}
    env = {**os.environ, "PYTHONPATH": REPO, "HOME": HOME, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "guard.cli", "hook", cli, "--profile", "interactive"],
                          input=json.dumps(event), capture_output=True, text=True, env=env, cwd=REPO)


@pytest.mark.parametrize("cli", ["claude", "codex", "gemini"])
def test_the_hook_refuses_a_deny_in_every_cli(cli):
    result = run_hook(cli, "git push origin main --force")
    assert result.returncode == 2 and "git-push-force" in result.stderr and result.stdout == ""


def test_the_hook_makes_claude_ask_and_leaves_codex_and_gemini_to_their_own_rules():
    claude = run_hook("claude", "git log -1 --output=/tmp/x")
    answer = json.loads(claude.stdout)["hookSpecificOutput"]
    assert claude.returncode == 0 and answer["permissionDecision"] == "ask"
    assert answer["permissionDecisionReason"].startswith("agent-guard asks: ")
    for cli in ("codex", "gemini"):  # Codex's hooks cannot ask; Gemini's "ask" ends a headless session
        result = run_hook(cli, "git log -1 --output=/tmp/x")
        assert (result.returncode, result.stdout) == (0, "")


def test_the_hook_says_nothing_for_an_allowed_command():
    result = run_hook("claude", "git status")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_explain_tells_which_layers_a_workstation_has(interactive):
    from guard.explain import explain

    runtime = runtime_profile(load("interactive"))
    bare = explain("git clean -fdx", runtime, {}, "x.toml", {"user": None, "system": None})
    assert "no exec-time shims (they exist only in the image)" in bare
    assert "exec-time shims (the argv" not in bare and "the shims (all three) still refuse it" not in bare
    assert "nothing else refuses it here: the hook is not installed" in bare
    assert "admin layer (--system): no: the agent could undo the user files" in bare
    installed = explain("git clean -fdx", runtime, {}, "x.toml", {"user": "/home/me/.config/agent-sandbox/install-state.json",
                                                                  "system": None})
    assert "only the agent-guard hook refuses it (installed here)" in installed
    assert "agent-guard (the hook of Claude, Codex and Gemini; classify): deny, rule git-clean-force" in installed
