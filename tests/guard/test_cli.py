"""agent-guard as a process: classify, the Claude hook, explain; profile lookup and bad input."""

import json
from pathlib import Path
import os
import shutil
import subprocess
import sys

import pytest

from guard_helpers import load_runtime

GUARD = shutil.which("agent-guard")


def run(args, stdin="", env=None, **kw):
    assert GUARD, "agent-guard is not installed (pip install -e .)"
    full_env = {k: v for k, v in os.environ.items() if k != "AGENT_PROFILE"}
    full_env.update(env or {})
    return subprocess.run([GUARD, *args], input=stdin, capture_output=True, text=True, env=full_env, **kw)


@pytest.fixture
def profile_file(tmp_path):
    path = tmp_path / "autonomous.json"
    path.write_text(json.dumps(load_runtime()[1]))
    return path


def test_classify_stdin_one_json_line_per_command(profile_file):
    commands = ["git status", "git push origin main --force", "x=gh; $x secret list", "echo 'unterminated", ""]
    result = run(["classify", "--profile", "autonomous", "--profile-file", str(profile_file)],
                 stdin="\n".join(commands) + "\n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["command"] for line in lines] == commands[:4]  # blank lines are skipped
    assert [line["decision"] for line in lines] == ["allow", "deny", "deny", "deny"]
    assert [line["rule"] for line in lines] == [None, "git-push-force", "gh-secret", "parse-error"]
    assert lines[3]["reason"].startswith("could not be parsed: ")
    assert set(lines[0]) == {"command", "decision", "rule", "reason"}


def test_classify_one_command_after_double_dash(profile_file):
    result = run(["classify", "--profile-file", str(profile_file), "--", "bash -c 'npm publish'"])
    assert result.returncode == 0
    assert json.loads(result.stdout)["rule"] == "npm-publish"


def test_classify_profile_from_a_directory_of_rendered_profiles(tmp_path, profile_file):
    home = tmp_path / "home"
    (home / ".config/agent-sandbox/profiles").mkdir(parents=True)
    shutil.copy(profile_file, home / ".config/agent-sandbox/profiles/autonomous.json")
    result = run(["classify", "--profile", "autonomous", "--", "gh auth token"], env={"HOME": str(home)})
    assert json.loads(result.stdout)["rule"] == "gh-auth"


def test_classify_falls_back_to_the_checkouts_committed_render(tmp_path):
    # no rendered file anywhere (HOME is empty, /etc has none on a dev machine): the checkout's
    # rendered/autonomous, which render-profiles --check keeps current
    if os.path.exists("/etc/agent-sandbox/profiles/autonomous.json"):
        pytest.fail("this test expects a dev machine without /etc/agent-sandbox/profiles")
    result = run(["classify", "--profile", "autonomous", "--", "git push -f"], env={"HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rule"] == "git-push-force"


@pytest.mark.parametrize("args,fragment", [
    (["classify"], "needs --profile"),
    (["classify", "--profile", "../etc/passwd"], "not valid"),
    (["classify", "--profile", "no-such-profile"], "no-such-profile"),
    (["classify", "--profile-file", "/nonexistent/x.json"], "/nonexistent/x.json"),
    (["frobnicate"], "unknown command"),
])
def test_classify_bad_input(args, fragment, tmp_path):
    result = run(args, env={"HOME": str(tmp_path)})
    assert result.returncode == 2
    assert fragment in result.stderr


def test_classify_bad_profile_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"posture": "bypass", "rules": [{"id": "x", "reason": "r", "command": ["git"],
                                                                 "any_of": [{"flag": "force"}]}]}))
    result = run(["classify", "--profile-file", str(bad), "--", "ls"])
    assert result.returncode == 2
    assert str(bad) in result.stderr and "any_of[0].flag" in result.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    result = run(["classify", "--profile-file", str(broken), "--", "ls"])
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def hook(event, profile_file, raw=None, env=None):
    env = dict(env or {})
    return run(["hook", "claude", "--profile-file", str(profile_file)],
               stdin=raw if raw is not None else json.dumps(event), env=env)


def test_hook_blocks_a_deny_with_exit_2_naming_the_rule(profile_file):
    event = {"session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "Bash",
             "tool_input": {"command": "git -C repo push origin main -f", "description": "push"}}
    result = hook(event, profile_file)
    assert result.returncode == 2
    assert "git-push-force" in result.stderr and "Force-pushing" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("event", [
    {"tool_name": "Bash", "tool_input": {"command": "git status && pytest -q"}},
    {"tool_name": "Read", "tool_input": {"file_path": "/etc/passwd"}},
    {"tool_name": "Bash", "tool_input": {"command": "git commit -m 'never gh secret'"}},
])
def test_hook_lets_the_rest_through(event, profile_file):
    result = hook(event, profile_file)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_gemini_hook_judges_run_shell_command(profile_file):
    deny = {"hook_event_name": "BeforeTool", "tool_name": "run_shell_command",
            "tool_input": {"command": "bash -c 'gh secret list'", "description": "list"}}
    result = run(["hook", "gemini", "--profile-file", str(profile_file)], stdin=json.dumps(deny))
    assert result.returncode == 2 and "gh-secret" in result.stderr
    other = {"tool_name": "read_file", "tool_input": {"file_path": "x"}}
    result = run(["hook", "gemini", "--profile-file", str(profile_file)], stdin=json.dumps(other))
    assert result.returncode == 0
    result = run(["hook", "cursor", "--profile-file", str(profile_file)], stdin=json.dumps(other))
    assert result.returncode == 2 and "say which CLI" in result.stderr


@pytest.mark.parametrize("cli,fixture", [("claude", "claude-pretooluse"), ("codex", "codex-pretooluse"), ("gemini", "gemini-beforetool")])
def test_hook_on_each_clis_real_payload(cli, fixture, profile_file):
    """The stdin each real CLI sent its hook (captured in tests/fixtures/hooks), with the command swapped."""
    event = json.loads((Path(__file__).parents[1] / "fixtures" / "hooks" / f"{fixture}.json").read_text())
    event["tool_input"]["command"] = "git -C /workspace push origin main --force"
    denied = run(["hook", cli, "--profile-file", str(profile_file)], stdin=json.dumps(event))
    assert denied.returncode == 2 and "git-push-force" in denied.stderr
    event["tool_input"]["command"] = "git push origin main"
    assert run(["hook", cli, "--profile-file", str(profile_file)], stdin=json.dumps(event)).returncode == 0


@pytest.mark.parametrize("raw,fragment", [
    ("not json", "not JSON"),
    ("[]", "not a JSON object"),
    (json.dumps({"tool_name": "Bash", "tool_input": {}}), "no command string"),
    (json.dumps({"tool_name": "Bash", "tool_input": {"command": "echo 'x"}}), "could not be parsed"),
])
def test_hook_refuses_what_it_cannot_judge(raw, fragment, profile_file):
    result = hook(None, profile_file, raw=raw)
    assert result.returncode == 2
    assert fragment in result.stderr


def test_hook_profile_from_environment_and_missing_profile_blocks(tmp_path, profile_file):
    home = tmp_path / "home"
    (home / ".config/agent-sandbox/profiles").mkdir(parents=True)
    shutil.copy(profile_file, home / ".config/agent-sandbox/profiles/ci-test.json")
    event = json.dumps({"tool_name": "Bash", "tool_input": {"command": "gh secret list"}})
    ok = run(["hook", "claude"], stdin=event, env={"HOME": str(home), "AGENT_PROFILE": "ci-test"})
    assert ok.returncode == 2 and "gh-secret" in ok.stderr
    missing = run(["hook", "claude"], stdin=event, env={"HOME": str(home), "AGENT_PROFILE": "nope"})
    assert missing.returncode == 2 and "nope" in missing.stderr
    harmless = json.dumps({"tool_name": "Bash", "tool_input": {"command": "ls"}})
    missing = run(["hook", "claude"], stdin=harmless, env={"HOME": str(home), "AGENT_PROFILE": "nope"})
    assert missing.returncode == 2  # no profile: nothing is let through unjudged


# What the per-tool-call path may load beyond what the interpreter already had (docs/design.md,
# "Where speed matters"): the guard's own modules, the image layout and json, nothing else.
HOT_PATH_MODULES = {"guard", "guard.cli", "guard.runtime", "guard.policy", "guard.classify", "guard.shellparse", "guard.settings",
                    "guard.wrappers", "image", "image.layout", "json", "json.decoder", "json.scanner",
                    "json.encoder", "_json"}


@pytest.mark.parametrize("argv,stdin,code", [
    (["hook", "claude", "--profile-file", "{profile}"], {"tool_name": "Bash", "tool_input": {"command": "ls"}}, 0),
    (["hook", "claude", "--profile-file", "{profile}"], {"tool_name": "Bash", "tool_input": {"command": "git push -f"}}, 2),
    (["shim", "--profile-dir", "{folder}", "git", "--", "push", "--force"], None, 126),
])
def test_the_hook_and_the_shim_load_only_what_the_hot_path_allows(profile_file, argv, stdin, code):
    argv = [a.format(profile=profile_file, folder=profile_file.parent) for a in argv]
    script = ("import io, json, sys; before = set(sys.modules); argv, stdin = json.loads(sys.argv[1]);"
              "sys.argv = ['agent-guard', *argv]; sys.stdin = io.StringIO(stdin);"
              "from guard.cli import main; rc = main();"
              "print(json.dumps([rc, sorted(set(sys.modules) - before)]))")
    payload = json.dumps([argv, json.dumps(stdin) if stdin is not None else ""])
    result = subprocess.run([sys.executable, "-c", script, payload], capture_output=True, text=True,
                            env={**os.environ, "AGENT_PROFILE": profile_file.stem})
    rc, loaded = json.loads(result.stdout)
    assert rc == code, result.stderr
    assert sorted(set(loaded) - HOT_PATH_MODULES) == []


# the committed render: explain reads the Gemini policy rendered beside the runtime profile
RENDERED_PROFILE = Path(__file__).parents[2] / "rendered/autonomous/etc/agent-sandbox/profiles/autonomous.json"


def test_explain_names_every_layer():
    result = run(["explain", "--profile-file", str(RENDERED_PROFILE), "--", "git push origin main --force"])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "agent-guard (the Claude hook; classify): deny, rule git-push-force" in out
    assert "git push origin main --force: checked by agent-guard: refused git-push-force" in out
    assert "Claude Bash(prefix) rules: no rule matches" in out  # the flag at the end walks past Claude's own rule
    assert "Codex prefix_rule: no rule matches" in out
    assert "Gemini commandRegex: deny: git-push-force" in out


def test_explain_fast_path_and_native_hits():
    result = run(["explain", "--profile-file", str(RENDERED_PROFILE), "--", "git status && gh secret list"])
    out = result.stdout
    assert "git status: fast path (no Python): runs" in out
    assert "Claude Bash(prefix) rules: deny: gh-secret" in out
    assert "Codex prefix_rule: deny: gh-secret" in out
