"""Gemini CLI, driven for real against the fake Gemini server, as uid 1000 in yolo mode."""

from pathlib import Path

from .drivers import drive, event_kinds, stream_events
from .fakes import Scenario, ToolCall
from .sandbox import make_config_tree
from .scenarios import (DENIED_COMMAND, DENY_REASON, FINAL_TEXT, SAFE_COMMAND, SAFE_MARKER,
                        deny_gh_secret_files, one_denial_scenario)

FIXTURE = Path(__file__).parent / "fixtures" / "gemini-stream-json-one-denial.jsonl"


def test_safe_command_runs_in_yolo_without_a_prompt(tmp_path):
    run = drive("gemini", Scenario([SAFE_COMMAND], FINAL_TEXT), tmp_path, machine_output=False, timeout=120)
    try:
        assert run.result.returncode == 0, run.result.stderr
        assert (run.sandbox.workspace / SAFE_MARKER).exists()
        assert [t.is_error for t in run.server.tool_results] == [False]
        assert FINAL_TEXT in run.result.stdout
    finally:
        run.sandbox.cleanup()


def test_without_a_rule_the_canary_sees_the_command(tmp_path):
    run = drive("gemini", Scenario([DENIED_COMMAND]), tmp_path, timeout=120)
    try:
        assert run.result.returncode == 0, run.result.stderr
        assert run.sandbox.canary_calls() == [DENIED_COMMAND.split()]
    finally:
        run.sandbox.cleanup()


def test_admin_policy_denies_and_the_refusal_reaches_the_model(tmp_path):
    tree = make_config_tree(tmp_path, deny_gh_secret_files("gemini"))
    run = drive("gemini", one_denial_scenario(), tree, timeout=120)
    try:
        assert run.result.returncode == 0, run.result.stderr
        assert "Security Warning" not in run.result.stderr  # /etc/gemini-cli passed the ownership check
        assert (run.sandbox.workspace / SAFE_MARKER).exists()
        assert run.sandbox.canary_calls() == []
        allowed, denied = run.server.tool_results
        assert allowed.is_error is False
        assert denied.is_error is True and DENY_REASON in denied.text
        results = [e for e in stream_events(run.result.stdout) if e.get("type") == "tool_result"]
        assert [r["status"] for r in results] == ["success", "error"]
        assert results[1]["error"]["type"] == "policy_violation"
        assert event_kinds("gemini", run.result.stdout) == event_kinds("gemini", FIXTURE.read_text()), \
            "stream-json changed shape: re-run tests/conformance/capture_fixtures.py and review the diff"
    finally:
        run.sandbox.cleanup()


def test_non_shell_tool_call_with_a_sandbox_path(tmp_path):
    write = lambda sb: Scenario([ToolCall("write_file", {"file_path": str(sb.workspace / "notes.txt"), "content": "hi\n"})])
    run = drive("gemini", write, tmp_path, timeout=120)
    try:
        assert run.result.returncode == 0, run.result.stderr
        assert (run.sandbox.workspace / "notes.txt").read_text() == "hi\n"
        assert [t.is_error for t in run.server.tool_results] == [False]
    finally:
        run.sandbox.cleanup()
