"""agent-guard explain on its own (guard/explain.py) and the emulation of each CLI's own rules it
reports (guard/native.py): what each layer decides, said plainly, and "cannot say" where a layer's
files are not there to read."""

from pathlib import Path

import pytest

from guard.explain import explain
from guard.native import claude_hits, codex_hits, gemini_deny_regexes, gemini_policy_beside, rule_id_of
from guard.policy import compile_policy

REPO = Path(__file__).resolve().parents[2]
RENDERED = REPO / "rendered"
FORCE = {"id": "git-push-force", "decision": "deny", "reason": "Force-pushing rewrites shared history.",
         "command": ["git", "push"], "any_of": [{"flag": ["--force", "-f"]}]}
SECRET = {"id": "gh-secret", "decision": "deny", "reason": "Secrets stay with people.", "command": ["gh", "secret"]}
RUNTIME = {"profile": "test", "posture": "bypass", "rules": [FORCE, SECRET], "tools": {},
           "fast_path": {"git": ["status", "log"], "gh": ["pr"]}}
DENY_RULES = compile_policy(RUNTIME).rules


def test_each_layer_is_named_with_its_decision():
    report = explain("git push origin main --force", RUNTIME, {"git-push-force": r".*git\s+push.*--force"}, "x.toml")
    assert "agent-guard (the Claude hook; classify): deny, rule git-push-force: Force-pushing" in report
    assert "git push origin main --force: checked by agent-guard: refused git-push-force" in report
    assert "Claude Bash(prefix) rules: no rule matches" in report
    assert "Codex prefix_rule: no rule matches" in report
    assert "Gemini commandRegex: deny: git-push-force" in report
    assert "the hook (Claude) and the shims (all three) still refuse it" in report


def test_the_fast_path_is_the_rendered_table():
    report = explain("git status && gh pr list", RUNTIME, {}, "x.toml")
    assert "git status: fast path (no Python): runs" in report
    assert "gh pr list: fast path (no Python): runs" in report
    assert "agent-guard (the Claude hook; classify): allow: no rule matches" in report


def test_without_a_rendered_gemini_policy_it_cannot_say():
    report = explain("gh secret list", RUNTIME, None, "/nowhere/agent-sandbox.toml")
    assert "Gemini commandRegex: cannot say (no rendered Gemini policy at /nowhere/agent-sandbox.toml)" in report
    assert "Claude Bash(prefix) rules: deny: gh-secret" in report
    assert "still refuse it" not in report  # Claude and Codex hold it; Gemini is unknown, not a miss


def test_text_that_does_not_parse():
    report = explain("git push -f 'oops", RUNTIME, {}, "x.toml")
    assert "deny, rule parse-error" in report
    assert "the text does not parse; bash would stop at the error" in report
    assert "Claude Bash(prefix) rules: cannot say (the text does not parse)" in report


@pytest.mark.parametrize("command,claude,codex", [
    ("gh secret list", True, True),
    ("timeout 5 gh secret list", True, False),  # Claude strips timeout before matching; Codex does not
    ("GH_TOKEN=x gh secret list", True, False),  # Claude drops the assignment; Codex does not match it
    ("/usr/bin/gh secret list", True, True),
    ("echo $(gh secret list)", True, False),  # Codex skips nested commands
])
def test_prefix_rules_are_emulated_as_observed(command, claude, codex):
    assert bool(claude_hits(command, DENY_RULES)) is claude
    assert bool(codex_hits(command, DENY_RULES)) is codex


def test_the_gemini_policy_lies_beside_the_runtime_profile():
    assert gemini_policy_beside("/etc/agent-sandbox/profiles/ci.json") == "/etc/gemini-cli/policies/agent-sandbox.toml"
    assert gemini_policy_beside("/home/u/.config/agent-sandbox/profiles/interactive.json") == \
        "/home/u/.gemini/policies/agent-sandbox.toml"
    assert gemini_policy_beside("/tmp/loose.json") is None
    committed = RENDERED / "interactive/user-home/dot_config/agent-sandbox/profiles/interactive.json"
    assert Path(gemini_policy_beside(str(committed))).is_file()


def test_the_rendered_gemini_policy_reads_back_by_rule_id():
    regexes = gemini_deny_regexes(str(RENDERED / "autonomous/etc/gemini-cli/policies/agent-sandbox.toml"))
    assert {"git-push-force", "gh-secret"} <= set(regexes) and all(regexes.values())
    assert rule_id_of("agent-sandbox gh-secret: why") == "gh-secret" and rule_id_of("files/blocked: x") is None
