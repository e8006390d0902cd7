"""The rule language (guard/policy.py): reading rules, refusing bad ones, the literal forms the
CLIs' prefix rules hold, and the JSON written back. How an argv matches is in test_classify.py."""

import pytest

from guard.classify import classify
from guard.policy import (MATCHER_KINDS, Arg, Flag, Option, PolicyError, ToolOptions, compile_policy, deny_programs,
                          parse_matcher, parse_rule)


def profile(*rules, posture="bypass", tools=None):
    return {"posture": posture, "rules": list(rules), "tools": tools or {}}


@pytest.mark.parametrize("runtime,fragment", [
    (profile({"id": "Bad Id", "reason": "r", "command": ["git"]}), "rules[0].id"),
    (profile({"id": "a", "reason": "r", "command": []}), "rules[0] (a).command"),
    (profile({"id": "a", "reason": "", "command": ["git"]}), "rules[0] (a).reason"),
    (profile({"id": "a", "reason": "r", "command": ["git"], "decision": "block"}), "rules[0] (a).decision"),
    (profile({"id": "a", "reason": "r", "command": ["git"], "any_of": [{"flag": ["force"]}]}), "any_of[0].flag"),
    (profile({"id": "a", "reason": "r", "command": ["git"], "any_of": [{"option": ["-X"]}]}), "any_of[0]"),
    (profile({"id": "a", "reason": "r", "command": ["git"], "any_of": [{"regex": "x"}]}), "any_of[0]"),
    (profile({"id": "a", "reason": "r", "command": ["git"]}, {"id": "a", "reason": "r", "command": ["gh"]}),
     "duplicate"),
    ({"posture": "yolo"}, "posture"),
    ({"rules": [], "tools": {"git": {"options_with_value": ["C"]}}}, "tools.git"),
    ({"rules": [], "default_decision": "maybe"}, "default_decision"),
])
def test_bad_profile_is_an_error_naming_the_key(runtime, fragment):
    with pytest.raises(PolicyError) as err:
        compile_policy(runtime)
    assert fragment in str(err.value)
    with pytest.raises(PolicyError):
        classify("ls", runtime)



FORCE = {"id": "git-push-force", "reason": "Force-pushing rewrites shared history.", "command": ["git", "push"],
         "any_of": [{"flag": ["--force", "-f"]}, {"arg": "+*"}]}
API_DELETE = {"id": "gh-api-delete", "reason": "API delete.", "command": ["gh", "api"],
              "any_of": [{"option": ["-X", "--method"], "value": "DELETE"}]}
REPO = {"id": "gh-repo", "reason": "Repo change.", "command": ["gh", "repo", ["delete", "archive"]]}


def test_literal_forms_are_the_command_words_then_each_matchers_literal_tail():
    assert parse_rule(REPO, "r").literal_forms() == [("gh", "repo", "delete"), ("gh", "repo", "archive")]
    # an arg glob has no literal form: a prefix rule cannot hold "+*"
    assert parse_rule(FORCE, "r").literal_forms() == [("git", "push", "--force"), ("git", "push", "-f")]
    assert parse_rule(API_DELETE, "r").literal_forms() == [
        ("gh", "api", "-X", "DELETE"), ("gh", "api", "-XDELETE"),
        ("gh", "api", "--method", "DELETE"), ("gh", "api", "--method=DELETE")]


def test_a_profile_rule_takes_decision_and_tripwire_from_where_it_is_written():
    rule = parse_rule(FORCE, "tripwire/0", decision="deny", tripwire=True, source="common.yaml")
    assert (rule.decision, rule.tripwire, rule.source) == ("deny", True, "common.yaml")
    assert rule.to_json() == {**FORCE, "command": [["git"], ["push"]], "decision": "deny", "tripwire": True}
    assert parse_rule(rule.to_json(), "rules[0]") == parse_rule(FORCE, "x", decision="deny", tripwire=True)


def test_every_rule_of_the_rendered_profile_reads_back_the_same(runtime):
    for index, raw in enumerate(runtime["rules"]):
        assert parse_rule(raw, f"rules[{index}]").to_json() == raw


def test_matcher_kinds_are_told_apart_by_their_keys():
    keys = [kind.keys for kind in MATCHER_KINDS]
    assert len(set(keys)) == len(keys) and len({kind.kind for kind in MATCHER_KINDS}) == len(keys)
    assert parse_matcher({"flag": ["-f"]}, "m") == Flag(("-f",))
    assert parse_matcher({"option": ["-X"], "value": "DELETE"}, "m") == Option(("-X",), "DELETE")
    assert parse_matcher({"arg": ":*"}, "m") == Arg(":*")
    with pytest.raises(PolicyError, match=r"m: unknown matcher keys \['flag', 'value'\]"):
        parse_matcher({"flag": ["-f"], "value": "x"}, "m")


def test_matchers_are_the_same_test_whatever_the_order_of_their_names():
    assert Flag(("-f", "--force")).identity() == Flag(("--force", "-f")).identity()
    assert Flag(("-f",)).identity() != Option(("-f",), "x").identity()


def test_deny_programs_are_the_basenames_deny_rules_name():
    rules = [parse_rule(FORCE, "a", decision="deny"), parse_rule({**REPO, "command": ["/usr/bin/gh", "repo"]}, "b"),
             parse_rule({"id": "ls", "reason": "r", "command": [["ls", "cat"]]}, "c", decision="allow")]
    assert deny_programs(rules) == ["gh", "git"]
    policy = compile_policy(profile(*(r.to_json() for r in rules)))
    assert policy.guarded == ("gh", "git") and set(policy.by_program) == {"cat", "gh", "git", "ls"}


def test_tool_options_keep_the_profiles_order_and_tell_what_an_option_takes():
    tools = compile_policy(profile(tools={"git": {"options_with_value": ["-C", "--git-dir"], "flags": ["-p"]}})).tools
    assert tools["git"].options_with_value == ("-C", "--git-dir") and tools["git"].flags == ("-p",)
    assert [tools["git"].kind(a) for a in ("-C", "-p", "--git-dir=x", "-Cdir", "--other", "-x")] == \
        ["value", "one", "one", "one", "unknown", "unknown"]
    assert tools["cargo"] == ToolOptions(skip_args=("+*",))  # rustup's `cargo +nightly publish`
