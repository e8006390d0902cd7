"""The classifier's rule semantics (docs/design.md, "Command rule semantics") and its parsing."""

import pytest

from guard.classify import Decision, classify


def profile(*rules, posture="bypass", default=None, tools=None):
    runtime = {"posture": posture, "rules": list(rules), "tools": tools or {}}
    if default:
        runtime["default_decision"] = default
    return runtime


FORCE = {"id": "git-push-force", "decision": "deny", "reason": "Force-pushing rewrites shared history.",
         "command": ["git", "push"],
         "any_of": [{"flag": ["--force", "-f", "--force-with-lease"]}, {"arg": "+*"}]}
API_DELETE = {"id": "gh-api-delete", "decision": "deny", "reason": "API delete.", "command": ["gh", "api"],
              "any_of": [{"option": ["-X", "--method"], "value": "DELETE"}]}
REPO = {"id": "gh-repo", "decision": "deny", "reason": "Repo change.", "command": ["gh", "repo", ["delete", "archive"]]}
GIT_TOOLS = {"git": {"options_with_value": ["-C", "-c", "--git-dir"], "flags": ["--no-pager"]}}
RUNTIME = profile(FORCE, API_DELETE, REPO, tools=GIT_TOOLS)


def decide(command, runtime=RUNTIME) -> Decision:
    return classify(command, runtime)


@pytest.mark.parametrize("command", [
    "git push --force", "git push origin main --force", "git push -f origin", "git push -uf origin main",
    "git push -fu", "git push --force=true", "git push origin +main", "git push --force-with-lease=main:abc",
    "git -C dir push -f", "git -Cdir push -f", "git -c a=b -C dir --git-dir=.git push --force",
    "git --git-dir .git push -f", "git --no-pager push -f", "/usr/bin/git push -f",
    "git --unknown-option push -f",  # an option not in the table may or may not take a value: both are tried
])
def test_argv_patterns_that_match(command):
    d = decide(command)
    assert (d.decision, d.rule) == ("deny", "git-push-force")


@pytest.mark.parametrize("command", [
    "git push", "git push origin main", "git push origin HEAD:main", "git push --follow-tags",
    "git push origin -- -f",  # after -- an argument is positional, and -f is no refspec glob match
    "git commit -m push -f", "git status --force", "git -C push status -f", "gitx push -f",
])
def test_argv_patterns_that_do_not_match(command):
    assert decide(command).decision == "allow"


@pytest.mark.parametrize("command", [
    "gh api -X DELETE x", "gh api -XDELETE x", "gh api -X=delete x", "gh api --method DELETE x",
    "gh api --method=Delete x", "gh api x -X DELETE", "gh api -iX DELETE x",
])
def test_option_with_value(command):
    assert decide(command).rule == "gh-api-delete"


@pytest.mark.parametrize("command", ["gh api -X GET x", "gh api x", "gh api -X", "gh api --method POST -f a=DELETE x"])
def test_option_with_other_value(command):
    assert decide(command).decision == "allow"


def test_command_word_alternatives():
    assert decide("gh repo delete x").rule == "gh-repo"
    assert decide("gh repo archive x").rule == "gh-repo"
    assert decide("gh repo view x").decision == "allow"


def test_strictest_decision_and_defaults():
    rules = [
        {"id": "allow-status", "decision": "allow", "reason": "Read only.", "command": ["git", "status"]},
        {"id": "ask-reset", "decision": "ask", "reason": "Loses work.", "command": ["git", "reset"],
         "any_of": [{"flag": ["--hard"]}]},
        FORCE,
    ]
    interactive = profile(*rules, posture="interactive")
    assert decide("git status", interactive).decision == "allow"
    assert decide("ls", interactive).decision == "ask"  # no rule: interactive default
    assert decide("git status && ls", interactive).decision == "ask"
    d = decide("git status; git reset --hard; git push -f", interactive)
    assert (d.decision, d.rule) == ("deny", "git-push-force")
    assert d.matched[0] == "git-push-force" and set(d.matched) == {"allow-status", "ask-reset", "git-push-force"}
    assert decide("git reset --hard && git status", interactive).decision == "ask"
    assert decide("ls", profile(*rules)).decision == "allow"  # bypass default


@pytest.mark.parametrize("command", [
    "echo 'unterminated", 'echo "unterminated', "echo $(ls", "echo `ls", "(ls", "ls )", "if true; then ls",
    "for x in a; do ls", "case x in a) ls", "ls &&", "| ls", "fi", "echo ${x", "cat <(ls",
])
def test_unparsable_is_denied_in_bypass_and_asked_in_interactive(command):
    d = decide(command)
    assert (d.decision, d.rule, d.parse_error) == ("deny", "parse-error", True)
    assert d.reason.startswith("could not be parsed: ")
    d = decide(command, profile(FORCE, posture="interactive"))
    assert (d.decision, d.parse_error) == ("ask", True)


def test_parse_error_inside_nested_shell_string():
    d = decide("bash -c 'echo \"oops'")
    assert d.parse_error and d.decision == "deny"


@pytest.mark.parametrize("command", [
    "x=git; $x push -f", "$GIT push --force", "${GIT:-git} push -f", "$(which git) push -f", "`which git` push -f",
    "eval \"$cmd push -f\"", "/usr/bin/g?t push -f", "$SUDO git push -f",
])
def test_dynamic_command_word_is_tried_as_each_guarded_program(command):
    d = decide(command)
    assert (d.decision, d.rule) == ("deny", "git-push-force")


@pytest.mark.parametrize("command", ["$EDITOR notes.txt", "\"$@\"", "$PYTHON -m pytest -f", "eval \"$s\"", "$x push",
                                     "$CC $CFLAGS -o app main.c", "$PYTHON $SCRIPT --force", "$a " * 300])
def test_dynamic_command_word_with_harmless_arguments(command):
    assert decide(command).decision == "allow"


def test_dynamic_subcommand_of_a_known_program_matches_any_command_word():
    assert decide("git $op --force").rule == "git-push-force"
    assert decide("gh $group delete x").rule == "gh-repo"
    assert decide("git $op origin main").decision == "allow"


def test_dynamic_arguments_do_not_match_globs_unless_the_known_prefix_decides():
    assert decide("git push origin $BRANCH").decision == "allow"
    assert decide("git push origin \"$(git branch --show-current)\"").decision == "allow"
    assert decide("git push origin +$BRANCH").rule == "git-push-force"


def test_argv_input():
    assert decide(["git", "push", "origin", "main", "--force"]).rule == "git-push-force"
    assert decide(["git", "commit", "-m", "git push -f"]).decision == "allow"
    assert decide(["bash", "-c", "git push -f"]).rule == "git-push-force"
    assert decide([]).decision == "allow"
    with pytest.raises(TypeError):
        decide([1, 2])


def test_decision_names_the_simple_command():
    d = decide("echo ok && sudo git -C x push -f origin")
    assert d.argv == ("git", "-C", "x", "push", "-f", "origin")


@pytest.mark.parametrize("command,allowed", [
    ("cat <<'EOF'\n$(git push -f)\nEOF", True),  # quoted delimiter: the body is text
    ("cat <<EOF\n$(git push -f)\nEOF", False),  # unquoted: the substitution runs
    ("echo 'git push -f'", True),
    ("echo \"$(git push -f)\"", False),
    ("git commit -m \"git push -f\"", True),
    ("command -v git", True),
    ("command git push -f", False),
])
def test_text_versus_commands(command, allowed):
    assert (decide(command).decision == "allow") is allowed


def test_deterministic():
    commands = ["git push -f", "x=gh; $x secret", "ls", "echo 'x"]
    first = [decide(c) for c in commands]
    assert [decide(c) for c in commands] == first


@pytest.mark.parametrize("command,rule", [
    ("echo +HEAD:main | xargs git push origin", "git-push-force"),
    ("printf '+HEAD:main\\n' | xargs -I{} git push origin {}", "git-push-force"),
    ("echo :main | xargs -n1 git push origin", "git-push-delete"),
])
def test_xargs_runs_its_command_with_what_it_reads_when_that_is_known(runtime, command, rule):
    decision = classify(command, runtime)
    assert decision.decision == "deny" and rule in decision.matched, decision


@pytest.mark.parametrize("command", ["echo main | xargs git push origin", "git branch --merged | xargs git branch -d",
                                     "ls | xargs -I % echo %"])
def test_xargs_with_everyday_input_stays_allowed(runtime, command):
    assert classify(command, runtime).decision == "allow"


def test_a_shell_alias_is_judged_as_what_it_runs(runtime):
    decision = classify("alias gp='git push -f'\ngp origin main", runtime)
    assert decision.rule == "git-push-force" and "the alias gp would run it" in decision.reason
    assert classify("alias ll='ls -la'; ll", runtime).decision == "allow"
