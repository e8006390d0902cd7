"""Issue 13: a literal default in a parameter expansion is a value the word may take. A variable
that is unset (or not known here) with a literal default is judged with the default, and, since
it may be set after all, also as unknown: deny if either reading denies."""

import pytest

from guard.classify import classify
from guard.shellparse import parse


def words_of(text):
    return [cmd.words for cmd in parse(text)][0]


@pytest.mark.parametrize("command,rule", [
    ("git push ${X:--f}", "git-push-force"),
    ("git push origin ${X:---force}", "git-push-force"),
    ('git push origin "${R:-+HEAD:main}"', "git-push-force"),
    ("git push origin ${R-+HEAD:main}", "git-push-force"),
    ('git push origin "${R:=+main}"', "git-push-force"),
    ("git push origin ${R:+--force}", "git-push-force"),  # :+ takes the word when R is set
    ("git push ${X:-origin +main}", "git-push-force"),  # an unquoted default splits into words
    ("git push origin ${R:-:main}", "git-push-delete"),
    ("git push origin ${F:-'--delete'} main", "git-push-delete"),
    ("gh api -X ${M:-DELETE} repos/o/r/issues/1", "gh-api-delete"),
    ('gh api --method="${M:-DELETE}" repos/o/r/issues/1', "gh-api-delete"),
    ("gh ${S:-secret} list", "gh-secret"),
    ("${G:-gh} secret list", "gh-secret"),
    ('git push origin "${R:-${S:-+main}}"', "git-push-force"),  # a default inside a default
    # A variable with a default in one word and another in a later command word: either may be set,
    # so the second word is still any command word (git push -f, with A=push).
    ("git ${A:-status} ${B:--f}", "git-push-force"),
])
def test_a_literal_default_is_judged(runtime, command, rule):
    decision = classify(command, runtime)
    assert decision.decision == "deny" and rule in decision.matched, decision


@pytest.mark.parametrize("command,rule", [
    ("R=+HEAD:main; git push origin $R", "git-push-force"),
    ("R='+HEAD:main'\ngit push origin \"$R\"", "git-push-force"),
    ("export F=--force; git push origin main $F", "git-push-force"),
    ("M=DELETE && gh api -X $M repos/o/r/issues/1", "gh-api-delete"),
    ("true || R=:main; git push origin $R", "git-push-delete"),  # a branch bash never runs still counts
])
def test_a_variable_set_earlier_in_the_command_line_is_judged_with_its_value(runtime, command, rule):
    decision = classify(command, runtime)
    assert decision.decision == "deny" and rule in decision.matched, decision


@pytest.mark.parametrize("command", [
    "git push origin ${BRANCH:-main}",
    'git push -u origin "${BRANCH:-$(git branch --show-current)}"',
    "git push origin HEAD:${TARGET:-agent/x}",
    "echo ${X:--f}",
    "R=main; git push origin $R",
    "R=+main git push origin $R",  # a prefix assignment is for the command's environment, not its words
    "npm test -- ${ARGS:---watch=false}",
    "X=1",
])
def test_everyday_defaults_stay_allowed(runtime, command):
    assert classify(command, runtime).decision == "allow"


def test_a_default_is_the_words_alternative_reading():
    plain, quoted, nested = words_of('x ${A:-a b} "${B:-+m}" ${C:-${D:-d}}')[1:]
    assert plain.static is None and quoted.static is None
    assert [text for _, text in plain.alternative] == ["a", " ", "b"]
    assert "".join(text for _, text in quoted.alternative) == "+m"
    assert "".join(text for _, text in nested.alternative) == "d"
    assert words_of("x ${A} $B ${A#x}")[1].alternative is None
    assert "".join(text for _, text in words_of("x ${A:-$}")[1].alternative) == "$"  # a literal $


def test_many_defaults_cost_two_readings_not_one_per_combination(runtime):
    command = "git " + " ".join(f"${{V{i}:-w{i}}}" for i in range(200)) + " push -f"
    assert classify(command, runtime).decision == "deny"
