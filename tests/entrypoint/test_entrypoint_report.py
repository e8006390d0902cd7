"""The ci run report, parsed from the CLIs' real captured outputs (tests/conformance/fixtures)."""

import json

import pytest

from entrypoint import report
from entrypoint_world import CONFORMANCE_FIXTURES, FIXTURES as LOCAL_FIXTURES, fixture_runtime

CAPTURES = {
    "claude": ("claude-stream-json-one-denial.jsonl", None),
    "codex": ("codex-exec-json-one-denial.jsonl", "codex-exec-stderr-one-denial.txt"),
    "gemini": ("gemini-stream-json-one-denial.jsonl", "gemini-stderr-one-denial.txt"),
}


def parse(tool):
    stdout_name, stderr_name = CAPTURES[tool]
    stdout = (CONFORMANCE_FIXTURES / stdout_name).read_text()
    stderr = (CONFORMANCE_FIXTURES / stderr_name).read_text() if stderr_name else ""
    return report.PARSERS[tool](stdout, stderr)


@pytest.mark.parametrize("tool", sorted(CAPTURES))
def test_each_capture_gives_one_allowed_and_one_denied_call(tool):
    parsed = parse(tool)
    calls = list(parsed.calls.values())
    assert [call.status for call in calls] == ["ok", "denied"]
    assert "touch ok-marker" in calls[0].command
    assert "gh secret list" in calls[1].command
    assert len(parsed.denials) == 1
    denial = parsed.denials[0]
    assert denial.tool_call_id == calls[1].id
    assert "gh secret" in denial.message
    assert parsed.unparsed_lines == 0


@pytest.mark.parametrize("tool", sorted(CAPTURES))
def test_the_guard_names_the_rule_that_fired(tool):
    parsed = parse(tool)
    report.attribute(parsed.denials, fixture_runtime("ci"))
    denial = parsed.denials[0]
    assert (denial.rule, denial.rule_source, denial.tripwire) == ("gh-secret", "guard", True)


def test_without_a_guard_decision_the_rule_id_in_the_message_is_used(monkeypatch):
    parsed = report.parse_gemini(
        '{"type":"tool_use","tool_id":"t1","tool_name":"run_shell_command","parameters":{"command":"make deploy"}}\n'
        '{"type":"tool_result","tool_id":"t1","status":"error","error":{"type":"policy_violation",'
        '"message":"Tool execution denied by policy. [npm-install-global] not here"}}\n', "")
    report.attribute(parsed.denials, fixture_runtime("ci"))  # `make deploy` matches no rule
    assert (parsed.denials[0].rule, parsed.denials[0].rule_source) == ("npm-install-global", "message")
    assert parsed.denials[0].tripwire is False


def test_a_denial_matching_no_rule_is_still_reported():
    parsed = parse("claude")
    report.attribute(parsed.denials, {"rules": []})
    assert parsed.denials[0].rule is None and parsed.denials[0].rule_source == "none"


def test_claude_result_denials_alone_are_enough():
    lines = [json.loads(line) for line in (CONFORMANCE_FIXTURES / CAPTURES["claude"][0]).read_text().splitlines()]
    only_result = "\n".join(json.dumps(line) for line in lines
                            if line.get("subtype") != "permission_denied" and line.get("type") != "user")
    parsed = report.parse_claude(only_result, "")
    assert [d.command for d in parsed.denials] == ["gh secret list"]


def test_exit_code_is_the_clis_or_3_on_a_denial():
    denied, clean = parse("gemini"), report.Parsed()
    assert report.exit_code_for(0, denied) == report.DENIAL_EXIT == 3
    assert report.exit_code_for(0, clean) == 0
    assert report.exit_code_for(2, denied) == 2
    assert report.exit_code_for(143, clean) == 143


def test_non_json_lines_are_counted_not_fatal():
    parsed = report.parse_gemini("Loaded cached credentials.\n{\"type\":\"init\"}\n", "")
    assert parsed.unparsed_lines == 1


def test_report_is_written_atomically(tmp_path):
    target = tmp_path / "out" / "report.json"
    report.write_atomically(str(target), {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_report_path_default_and_relative():
    from entrypoint.main import report_path

    assert report_path({"HOME": "/home/agent"}, "/workspace") == "/home/agent/agent-report.json"
    assert report_path({"AGENT_REPORT": "out/r.json"}, "/workspace") == "/workspace/out/r.json"
    assert report_path({"AGENT_REPORT": "/tmp/r.json"}, "/workspace") == "/tmp/r.json"


def test_codex_denials_by_the_guard_hook_are_read_from_stderr():
    """Real Codex 0.169 output through the entrypoint with the rendered image (captured from the
    conformance tripwire scenario): the PreToolUse hook's refusals appear only on stderr."""
    stdout = (LOCAL_FIXTURES / "codex-exec-json-hook-denials.jsonl").read_text()
    stderr = (LOCAL_FIXTURES / "codex-exec-stderr-hook-denials.txt").read_text()
    parsed = report.parse_codex(stdout, stderr)
    report.attribute(parsed.denials, fixture_runtime("ci"))
    commands = [d.command for d in parsed.denials]
    assert len(commands) == stderr.count("blocked by PreToolUse hook") == 13
    assert commands[:2] == ["git push --force origin main", "git push -f origin main"]
    assert [d.rule for d in parsed.denials[:2]] == ["git-push-force", "git-push-force"]
    assert all(d.message.startswith("Command blocked by PreToolUse hook: agent-guard: denied by rule")
               for d in parsed.denials)
    assert [c.status for c in parsed.calls.values()].count("ok") == 4
