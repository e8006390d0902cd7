"""Each invariant catches the breakage it exists for (so a green --check means something)."""

import copy
import dataclasses
import json

import tomli_w

from renderer import invariants
from renderer.invariants import parse
from renderer.model import load
from renderer.outputs import render_profile


def broken(name, path, change):
    outs = dict(render_profile(load(name)))
    document = copy.deepcopy(parse(outs[path]))
    change(document)
    content = (json.dumps(document) if outs[path].format == "json" else tomli_w.dumps(document)).encode()
    outs[path] = dataclasses.replace(outs[path], content=content)
    return invariants.check({name: outs})


def test_clean():
    assert invariants.check({n: render_profile(load(n)) for n in ("autonomous", "ci", "interactive")}) == []


def test_tripwire_entry_missing_from_claude_managed_layer():
    problems = broken("autonomous", "/etc/claude-code/managed-settings.json",
                      lambda d: d["permissions"]["deny"].remove("Bash(npm publish *)"))
    assert any("'npm-publish' form 'npm publish' missing from claude" in p for p in problems), problems


def test_tripwire_entry_missing_from_codex_requirements():
    problems = broken("ci", "/etc/codex/requirements.toml",
                      lambda d: d["rules"]["prefix_rules"].pop(0))
    assert any("'gh-repo-destructive' missing from codex /etc/codex/requirements.toml" in p for p in problems), problems


def test_gemini_regex_that_misses_a_form():
    def weaken(d):
        rule = next(r for r in d["rule"] if "git-push-force" in r.get("denyMessage", ""))
        rule["commandRegex"] = r".*git\s+push\s+--force\b"
    problems = broken("autonomous", "/etc/gemini-cli/policies/agent-sandbox.toml", weaken)
    assert any("'git-push-force' form 'git push -f' not matched" in p for p in problems), problems


def test_gemini_yolo_setting_is_a_trap():
    problems = broken("autonomous", "/etc/gemini-cli/settings.json", lambda d: d.setdefault("general", {}).update(defaultApprovalMode="yolo"))
    assert problems  # the schema refuses the key first


def test_gemini_priority_over_999():
    def bump(d):
        d["rule"][0]["priority"] = 1000
    assert any("priority" in p for p in broken("ci", "/etc/gemini-cli/policies/agent-sandbox.toml", bump))


def test_codex_legacy_profiles_table():
    problems = broken("ci", "/home/agent/.codex/config.toml", lambda d: d.update(profiles={"ci": {"approval_policy": "never"}}))
    assert any("profiles" in p for p in problems), problems


def test_bypass_in_the_interactive_files():
    problems = broken("interactive", "~/.claude/settings.json", lambda d: d["permissions"].update(defaultMode="bypassPermissions"))
    assert any("bypass marker 'bypassPermissions'" in p for p in problems), problems
    problems = broken("interactive", "~/.codex/config.toml", lambda d: d.update(approval_policy="never"))
    assert any("must not bypass" in p or "'\"never\"'" in p for p in problems), problems


def test_downgrade_switch_in_a_bypass_profile():
    problems = broken("autonomous", "/home/agent/.claude/settings.json", lambda d: d["permissions"].update(disableBypassPermissionsMode="disable"))
    assert any("silently downgrades" in p for p in problems), problems


def test_unknown_key_fails_the_schema():
    problems = broken("autonomous", "/etc/claude-code/managed-settings.json", lambda d: d.update(permisions={}))
    assert any("permisions" in p and "claude-managed-settings" in p for p in problems), problems


def test_codex_hook_features_unpinned():
    problems = broken("autonomous", "/etc/codex/requirements.toml", lambda d: d.update(features={"hooks": True}))
    assert problems  # the schema and the hook invariant both refuse it


def test_gemini_hook_timeout_in_seconds_is_a_trap():
    def seconds(d):
        d["hooks"]["BeforeTool"][0]["hooks"][0]["timeout"] = 10
    problems = broken("ci", "/etc/gemini-cli/settings.json", seconds)
    assert any("timeout" in p for p in problems), problems


def test_a_regex_gemini_would_silently_drop():
    def quantified(d):
        rule = next(r for r in d["rule"] if "argsPattern" in r)
        rule["argsPattern"] = r'"file_path":"(?:[^"]*/)?\.env"'
    problems = broken("autonomous", "/etc/gemini-cli/policies/agent-sandbox.toml", quantified)
    assert any("fails gemini's loader check" in p for p in problems), problems


def test_a_problem_in_one_profile_does_not_hide_another():
    def tamper(name, path, change):
        outs = dict(render_profile(load(name)))
        document = copy.deepcopy(parse(outs[path]))
        change(document)
        outs[path] = dataclasses.replace(outs[path], content=json.dumps(document).encode())
        return outs

    rendered = {
        "autonomous": tamper("autonomous", "/etc/claude-code/managed-settings.json",
                             lambda d: d["permissions"]["deny"].remove("Bash(npm publish *)")),
        "interactive": tamper("interactive", "~/.claude/settings.json",
                              lambda d: d["permissions"].update(defaultMode="bypassPermissions")),
    }
    problems = invariants.check(rendered)
    assert any(p.startswith("autonomous: deny rule 'npm-publish'") for p in problems), problems
    assert any(p.startswith("interactive: interactive output") for p in problems), problems
