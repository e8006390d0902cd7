"""Each kind of bad input: a clear message naming file and key, exit 2, nothing written."""

import re

import pytest

from render_helpers import run_render, tree_bytes


def edit(path, old, new):
    text = path.read_text()
    assert old in text, f"fixture text not found in {path}: {old!r}"
    path.write_text(text.replace(old, new, 1))


def assert_refused(project, *fragments):
    before = tree_bytes(project / "rendered")
    result = run_render("--root", project)
    assert result.returncode == 2, result.stderr
    for fragment in fragments:
        assert re.search(fragment, result.stderr), f"{fragment!r} not in:\n{result.stderr}"
    assert tree_bytes(project / "rendered") == before, "bad input must leave rendered/ untouched"
    check = run_render("--root", project, "--check")
    assert check.returncode == 2, check.stderr


def test_yaml_syntax_error_names_file_line_and_column(project):
    edit(project / "profiles" / "autonomous.yaml", "posture: bypass", "posture: [bypass")
    assert_refused(project, r"autonomous\.yaml:\d+:\d+: YAML syntax error")


def test_schema_error_names_file_and_key_path(project):
    edit(project / "profiles" / "common.yaml", "  - id: gh-secret\n", "  - id: gh-secret\n    colour: red\n")
    assert_refused(project, r"common\.yaml: at key 'tripwire/1'", "colour")


def test_wrong_type_deep_in_a_rule_names_the_key(project):
    edit(project / "profiles" / "common.yaml", "value: DELETE", "value: [DELETE]")
    assert_refused(project, r"common\.yaml: at key 'tripwire/5/any_of/0")


def test_unknown_profile_lists_the_known_ones(project):
    result = run_render("--root", project, "--image-root", project / "out", "--profile", "autonomus")
    assert result.returncode == 2
    assert "unknown profile 'autonomus'" in result.stderr and "autonomous, ci, interactive" in result.stderr
    assert not (project / "out").exists()


def test_unknown_cli(project):
    result = run_render("--root", project, "--show", "autonomous", "--cli", "cursor")
    assert result.returncode == 2 and "unknown CLI 'cursor'" in result.stderr


def test_extends_cycle(project):
    edit(project / "profiles" / "common.yaml", "abstract: true", "abstract: true\nextends: ci")
    assert_refused(project, r"cycle .*ci -> autonomous -> common -> ci|cycle")


def test_extends_unknown_parent(project):
    edit(project / "profiles" / "ci.yaml", "extends: autonomous", "extends: autonomouss")
    assert_refused(project, r"ci\.yaml: at key 'extends': no profile 'autonomouss'")


def test_same_pattern_in_allow_and_deny(project):
    edit(project / "profiles" / "interactive.yaml", "  deny:\n", "  deny:\n    - id: no-status\n      reason: test\n      command: [git, status]\n")
    assert_refused(project, r"'git status' is both (allow|deny).*and (deny|allow)")


def test_bypass_profile_with_empty_deny_list(project):
    edit(project / "profiles" / "autonomous.yaml", "extends: common\n", "")
    assert_refused(project, r"autonomous\.yaml: profile 'autonomous' bypasses approvals but its deny list is empty")


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("command: [gh, secret]", "command: [gh, 'secret*']", r"the word 'secret\*' has a character"),
        ("command: [gh, secret]", "command: [/usr/bin/gh, secret]", r"must be a name, not a path"),
    ],
)
def test_pattern_that_cannot_be_rendered_faithfully(project, old, new, message):
    edit(project / "profiles" / "common.yaml", old, new)
    assert_refused(project, message)


def test_arg_only_matcher_has_no_native_form(project):
    edit(project / "profiles" / "common.yaml", "      - flag: [--delete, -d, --prune, --mirror]\n", "")
    assert_refused(project, r"only 'arg' matchers: no CLI's prefix rules can express")


def test_allow_rule_with_flags_would_allow_more_than_it_says(project):
    edit(project / "profiles" / "interactive.yaml", "      command: [git, fetch]\n", "      command: [git, fetch]\n      any_of:\n        - flag: [--all]\n")
    assert_refused(project, r"an allow rule with any_of would be rendered as a prefix allow")


@pytest.mark.parametrize("domain", ["10.0.0.1", "not a domain", "Example.COM", "-bad.example.com", "*.example.com", "localhost"])
def test_invalid_domain(project, domain):
    edit(project / "profiles" / "common.yaml", "    - pypi.org\n", f"    - pypi.org\n    - {domain!r}\n")
    assert_refused(project, r"at key 'network/allow/\d+': .* is not a valid domain")


def test_duplicate_rule_id(project):
    edit(project / "profiles" / "interactive.yaml", "    - id: git-fetch\n", "    - id: git-inspect\n")
    assert_refused(project, r"rule id 'git-inspect' is also used")


def test_profile_name_must_match_file(project):
    edit(project / "profiles" / "ci.yaml", "profile: ci", "profile: cii")
    assert_refused(project, r"ci\.yaml: at key 'profile': 'cii' must equal the file name 'ci'")


def test_rules_the_guard_cannot_compile_are_refused_at_render_time():
    """A rule that passed the schema but that the hook and shims could not load fails the render,
    not the first tool call in a container."""
    import dataclasses

    from guard.policy import Rule
    from renderer import runtime
    from renderer.model import ProfileError, load

    model = load("autonomous")
    first = model.rules[0]
    broken = Rule(first.id, first.decision, "", first.command, first.any_of, first.tripwire, first.source)
    with pytest.raises(ProfileError, match="the guard cannot compile its rules"):
        runtime.runtime_profile(dataclasses.replace(model, rules=(broken,) + model.rules[1:]))
