"""The demo (demo/demo.py, `python3 -m demo.demo` behind demo/run.sh) runs a real CLI and tells the truth about it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from .drivers import CLIS
from .sandbox import REPO_ROOT

_spec = importlib.util.spec_from_file_location("agent_sandbox_demo", REPO_ROOT / "demo" / "demo.py")
demo = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = demo  # dataclasses look their module up by name
_spec.loader.exec_module(demo)

GOOD = demo.Facts(entrypoint_exit=0, tool_results=("", "", "denied by rule git-push-force"), marker_exists=True,
                  local_rewritten=True, remote_before=("a",), remote_after=("a",), rule="git-push-force")


@pytest.mark.parametrize("cli", CLIS)
def test_the_demo_shows_a_real_cli_run_a_safe_command_and_be_refused_a_force_push(cli):
    done = subprocess.run([sys.executable, "-m", "demo.demo", cli], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any("touch demo-ok" in line and "ran: demo-ok is in the workspace" in line for line in lines), done.stdout
    assert any("git push --force origin main" in line and "REFUSED by rule git-push-force" in line
               for line in lines), done.stdout
    assert "the model was told: denied by rule git-push-force: Force-pushing rewrites shared history" in done.stdout
    assert "), unchanged." in done.stdout and any(line.startswith("OK:") for line in lines)
    # which layer refused, in words, read from the refusal the CLI handed the model
    assert any(line.strip().startswith("refused by: ") and ("agent-guard" in line or "own deny rules" in line)
               for line in lines), done.stdout
    assert "What next" in done.stdout and "agent-guard explain" in done.stdout and "agent-run" in done.stdout
    assert "restore with" not in done.stdout        # the sandbox and its checkpoint are gone at exit
    assert "\x1b[" not in done.stdout               # piped: no colour


def test_the_demo_names_each_layer_in_words():
    layer_of = demo.refusal_layer
    assert layer_of("claude", "PreToolUse:Bash hook error: agent-guard: denied by rule x") == "hook"
    assert layer_of("codex", "exec_command failed: Rejected(\"agent-sandbox x: ...\")") == "native"
    assert layer_of("gemini", "agent-guard: refused git-push-force: ...") == "shim"
    assert set(demo.LAYER_WORDS) == {"native", "hook", "shim"}


def test_the_verdict_passes_only_a_refused_force_push_after_a_safe_command_ran():
    assert demo.verdict(GOOD) == []
    ran = GOOD.__class__(**{**GOOD.__dict__, "remote_after": ("b", "a"), "rule": None})
    assert demo.verdict(ran) == ["the remote's history changed: the force push ran"]
    no_marker = GOOD.__class__(**{**GOOD.__dict__, "marker_exists": False})
    assert demo.verdict(no_marker) == ["the safe command did not run (demo-ok is missing)"]
    not_rewritten = GOOD.__class__(**{**GOOD.__dict__, "local_rewritten": False})
    assert "a force push would have changed nothing" in demo.verdict(not_rewritten)[0]
    refused_without_rule = GOOD.__class__(**{**GOOD.__dict__, "rule": None})
    assert demo.verdict(refused_without_rule) == ["the force push's refusal names no rule"]
    crashed = GOOD.__class__(**{**GOOD.__dict__, "entrypoint_exit": 78, "tool_results": ()})
    assert demo.verdict(crashed)[:2] == ["agent-entrypoint exited 78",
                                         "the CLI reported 0 of 3 tool calls back to the model"]


def test_the_rule_is_read_from_the_refusal_text_by_whole_id():
    ids = ["git-push", "git-push-force", "gh-secret"]
    assert demo.rule_named("agent-guard: denied by rule git-push-force: Force-pushing ...", ids) == "git-push-force"
    assert demo.rule_named("Permission to use Bash has been denied.", ids) is None


@pytest.mark.parametrize("command", [[sys.executable, "-m", "demo.demo", "cursor"], ["bash", "demo/run.sh", "cursor"]])
def test_an_unknown_cli_is_a_usage_error_before_anything_runs(command):
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "usage:" in done.stderr
