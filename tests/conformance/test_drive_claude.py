"""Claude Code, driven for real against the fake Anthropic server, as uid 1000 in bypass mode."""

from pathlib import Path

from .drivers import drive, event_kinds, stream_events
from .fakes import Scenario, ToolCall
from .sandbox import make_config_tree
from .scenarios import (DENIED_COMMAND, FINAL_TEXT, SAFE_COMMAND, SAFE_MARKER, deny_gh_secret_files,
                        one_denial_scenario)

FIXTURE = Path(__file__).parent / "fixtures" / "claude-stream-json-one-denial.jsonl"


def test_safe_command_runs_in_bypass_without_a_prompt(tmp_path):
    run = drive("claude", Scenario([SAFE_COMMAND], FINAL_TEXT), tmp_path, machine_output=False, timeout=90)
    try:
        assert run.result.returncode == 0, run.result.stderr
        assert (run.sandbox.workspace / SAFE_MARKER).exists()
        assert [t.is_error for t in run.server.tool_results] == [False]
        assert FINAL_TEXT in run.result.stdout
    finally:
        run.sandbox.cleanup()


def test_without_a_rule_the_canary_sees_the_command(tmp_path):
    run = drive("claude", Scenario([DENIED_COMMAND]), tmp_path, timeout=90)
    try:
        assert run.result.returncode == 0, run.result.stderr
        assert run.sandbox.canary_calls() == [DENIED_COMMAND.split()]
    finally:
        run.sandbox.cleanup()


def test_managed_deny_rule_refuses_and_the_refusal_reaches_the_model(tmp_path):
    tree = make_config_tree(tmp_path, deny_gh_secret_files("claude"))
    run = drive("claude", one_denial_scenario(), tree, timeout=90)
    try:
        assert run.result.returncode == 0, run.result.stderr
        assert (run.sandbox.workspace / SAFE_MARKER).exists()
        assert run.sandbox.canary_calls() == []
        allowed, denied = run.server.tool_results
        assert allowed.is_error is False
        assert denied.is_error is True
        assert "has been denied" in denied.text and DENIED_COMMAND in denied.text
        events = stream_events(run.result.stdout)
        init = next(e for e in events if e.get("subtype") == "init")
        assert init["permissionMode"] == "bypassPermissions"
        denials = [e for e in events if e.get("type") == "system" and e.get("subtype") == "permission_denied"]
        assert len(denials) == 1 and denials[0]["tool_name"] == "Bash"
        assert event_kinds("claude", run.result.stdout) == event_kinds("claude", FIXTURE.read_text()), \
            "stream-json changed shape: re-run tests/conformance/capture_fixtures.py and review the diff"
    finally:
        run.sandbox.cleanup()


def test_non_shell_tool_call_with_a_sandbox_path(tmp_path):
    write = lambda sb: Scenario([ToolCall("Write", {"file_path": str(sb.workspace / "notes.txt"), "content": "hi\n"})])
    run = drive("claude", write, tmp_path, timeout=90)
    try:
        assert run.result.returncode == 0, run.result.stderr
        assert (run.sandbox.workspace / "notes.txt").read_text() == "hi\n"
        assert [t.is_error for t in run.server.tool_results] == [False]
    finally:
        run.sandbox.cleanup()
