"""Codex CLI, driven for real against the fake Responses server, as uid 1000 in bypass mode."""

from pathlib import Path

from .drivers import drive, event_kinds, stream_events
from .fakes import Scenario
from .sandbox import make_config_tree
from .scenarios import (DENIED_COMMAND, DENY_REASON, FINAL_TEXT, SAFE_COMMAND, SAFE_MARKER,
                        deny_gh_secret_files, one_denial_scenario)

FIXTURE = Path(__file__).parent / "fixtures" / "codex-exec-json-one-denial.jsonl"


def test_safe_command_runs_in_bypass_without_a_prompt(tmp_path):
    run = drive("codex", Scenario([SAFE_COMMAND], FINAL_TEXT), tmp_path, machine_output=False, timeout=90)
    try:
        assert run.result.returncode == 0, run.result.stderr
        assert (run.sandbox.workspace / SAFE_MARKER).exists()
        assert len(run.server.tool_results) == 1
        assert "Process exited with code 0" in run.server.tool_results[0].text
        assert FINAL_TEXT in run.result.stdout
    finally:
        run.sandbox.cleanup()


def test_without_a_rule_the_canary_sees_the_command(tmp_path):
    run = drive("codex", Scenario([DENIED_COMMAND]), tmp_path, timeout=90)
    try:
        assert run.result.returncode == 0, run.result.stderr
        assert run.sandbox.canary_calls() == [DENIED_COMMAND.split()]
    finally:
        run.sandbox.cleanup()


def test_etc_rules_forbid_and_the_refusal_reaches_the_model(tmp_path):
    tree = make_config_tree(tmp_path, deny_gh_secret_files("codex"))
    run = drive("codex", one_denial_scenario(), tree, timeout=90)
    try:
        assert run.result.returncode == 0, run.result.stderr
        assert (run.sandbox.workspace / SAFE_MARKER).exists()
        assert run.sandbox.canary_calls() == []
        allowed, denied = run.server.tool_results
        assert "Process exited with code 0" in allowed.text
        assert "Rejected(" in denied.text and DENY_REASON in denied.text
        rejected = [line for line in run.result.stderr.splitlines() if "Rejected(" in line]
        assert len(rejected) == 1 and DENIED_COMMAND in rejected[0]
        # exec --json does not report the refusal at all: the rejected call has no item.
        commands = [e["item"]["command"] for e in stream_events(run.result.stdout)
                    if e.get("type") == "item.completed" and e["item"].get("type") == "command_execution"]
        assert len(commands) == 1 and SAFE_COMMAND in commands[0]
        assert event_kinds("codex", run.result.stdout) == event_kinds("codex", FIXTURE.read_text()), \
            "exec --json changed shape: re-run tests/conformance/capture_fixtures.py and review the diff"
    finally:
        run.sandbox.cleanup()
