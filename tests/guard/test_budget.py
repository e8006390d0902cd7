"""The classifier's own time and work budget: past it a command is refused ("command too complex
to check"), never waved through, in every place the classifier runs (classify, the hooks, the
shims). Brace expansion is counted as it is made, so no input makes exponential work."""

import json
import random
import subprocess
import sys

import pytest

from guard import classify as classify_module
from guard.classify import TOO_COMPLEX_REASON, TOO_COMPLEX_RULE, classify
from guard.policy import Arg, Flag, Option, holds_after_some_end, holds_for_some_argument
from guard.shellparse import TooComplex, Word, brace_expand, parse

# the reported attack: a branch bash never runs, whose words double with every brace group
ATTACK = "true || echo " + "{a,b}" * 22 + "; /usr/bin/git push origin HEAD:main --force"


def word(text: str) -> Word:
    return parse(f"echo {text}")[0].words[1]


def test_the_reported_attack_is_refused_as_too_complex(runtime):
    decision = classify(ATTACK, runtime)
    assert (decision.decision, decision.rule) == ("deny", TOO_COMPLEX_RULE)
    assert decision.reason.startswith(TOO_COMPLEX_REASON)


def test_brace_expansion_stops_at_its_limit_instead_of_making_every_word():
    # 2**60 words: made in full, this would never return
    with pytest.raises(TooComplex, match="brace expansion"):
        brace_expand(word("{a,b}" * 60), 10_000)
    with pytest.raises(TooComplex):
        brace_expand(word("{1..1000000000}"), 10_000)


@pytest.mark.parametrize("text,expanded", [
    ("{01..03}", ["01", "02", "03"]), ("{a..e..2}", ["a", "c", "e"]), ("{10..1..4}", ["10", "6", "2"]),
    ("{-1..1}", ["-1", "0", "1"]), ("{1..300}", [str(n) for n in range(1, 301)]),  # no silent cut at 256
    ("{+,}main", ["+main", "main"]),
])
def test_brace_sequences_as_bash_makes_them(text, expanded):
    assert brace_expand(word(text), 10_000) == expanded


def test_a_branch_bash_never_runs_still_counts(runtime):
    assert classify("false && echo {a,b}{c,d} && gh secret list", runtime).rule == "gh-secret"
    assert classify("true || git push origin {+,}main", runtime).rule == "git-push-force"


def test_work_past_the_limit_is_refused(runtime, monkeypatch):
    command = "git status; " * 200
    assert classify(command, runtime).decision == "allow"
    monkeypatch.setattr(classify_module, "WORK_LIMIT", 2_000)
    decision = classify(command, runtime)
    assert (decision.decision, decision.rule) == ("deny", TOO_COMPLEX_RULE)
    assert "units of work" in decision.reason


def test_time_past_the_limit_is_refused(runtime, monkeypatch):
    monkeypatch.setattr(classify_module, "TIME_LIMIT", -1.0)
    for command in ("git status", ["git", "status"]):
        decision = classify(command, runtime)
        assert (decision.decision, decision.rule) == ("deny", TOO_COMPLEX_RULE)
        assert "took more than" in decision.reason


def test_an_interactive_profile_refuses_too(runtime, monkeypatch):
    monkeypatch.setattr(classify_module, "WORK_LIMIT", 10)
    decision = classify("git status --short --branch", {**runtime, "posture": "interactive"})
    assert (decision.decision, decision.rule) == ("deny", TOO_COMPLEX_RULE)


@pytest.mark.parametrize("command", [
    "nice " * 100_000 + "git status",  # every wrapper stripped copies the rest
    "git " + "$x -- " * 30_000 + "push",  # dynamic words and `--`s: as many ends as words
    "echo " + "$(ls) " * 60_000,  # a simple command per substitution
    "cat " + " ".join(f"f{n}.txt" for n in range(120_000)),  # every word held to the file tiers
    "x" * 1_100_000,
])
def test_adversarial_inputs_end_in_a_refusal(runtime, command):
    decision = classify(command, runtime)
    assert (decision.decision, decision.rule) == ("deny", TOO_COMPLEX_RULE), decision


def test_holding_matchers_after_many_ends_agrees_with_one_check_per_end():
    matchers = (Flag(("--force", "-f")), Option(("-X",), "DELETE"), Arg("+*"))
    vocabulary = ["--", "-f", "--force", "x", "+m", "-X", "DELETE", "-vf", None]
    rng = random.Random(13)
    for _ in range(3000):
        argv = [Word([(2, "$x")]) if w is None else Word.literal(w)
                for w in rng.choices(vocabulary, k=rng.randint(1, 9))]
        ends = sorted(rng.sample(range(len(argv) + 1), rng.randint(1, len(argv) + 1)))
        expected = any(holds_for_some_argument(matchers, argv[e:]) for e in ends)
        assert holds_after_some_end(matchers, argv, ends) == expected, ([w.display() for w in argv], ends)


def _guard(args, stdin, profile_file):
    return subprocess.run([sys.executable, "-m", "guard.cli", *args], input=stdin, capture_output=True, text=True)


def test_the_hook_blocks_the_attack_with_the_reason(runtime, tmp_path):
    profile = tmp_path / "autonomous.json"
    profile.write_text(json.dumps(runtime))
    event = json.dumps({"tool_name": "Bash", "tool_input": {"command": ATTACK}})
    result = _guard(["hook", "claude", "--profile-file", str(profile)], event, profile)
    assert result.returncode == 2 and f"denied by rule {TOO_COMPLEX_RULE}: {TOO_COMPLEX_REASON}" in result.stderr


def test_the_shim_refuses_an_argv_too_large_to_check(runtime, tmp_path):
    profile = tmp_path / "autonomous.json"
    profile.write_text(json.dumps(runtime))
    argv = ["push", "origin", *(f"refs/heads/b{n}" for n in range(40_000))]
    result = subprocess.run([sys.executable, "-m", "guard.cli", "shim", "--real", "/bin/false", "--profile-file",
                             str(profile), "git", "--", *argv], capture_output=True, text=True)
    assert result.returncode == 126 and f"refused {TOO_COMPLEX_RULE}: {TOO_COMPLEX_REASON}" in result.stderr
