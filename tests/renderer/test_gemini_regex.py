"""Deny rules as Gemini commandRegex policies (renderer/gemini_regex.py): each rule's regex, Gemini's
loader check, agreement with the classifier on the corpus except the listed gaps, the same
answers in Node (where Gemini evaluates them) as in Python."""

import hashlib
import json
import shutil
import subprocess

import pytest
import yaml

from guard.native import GEMINI_PREFIX, gemini_matches
from guard.policy import compile_policy, parse_matcher, parse_rule, parse_tools
from render_helpers import CORPUS
from renderer.agreement import gap_problems, gemini_patterns, regex_disagreements
from renderer.gemini_regex import MAX_LENGTH, UNSAFE, check_loadable, rule_to_gemini_regex, rule_to_gemini_regexes

DENY = yaml.safe_load((CORPUS / "deny.yaml").read_text())
BENIGN = yaml.safe_load((CORPUS / "benign.yaml").read_text())
GAPS = yaml.safe_load((CORPUS / "regex_known_gaps.yaml").read_text())
DENY_CASES = [(rule, command) for rule, commands in DENY.items() for command in commands]
BENIGN_CASES = [command for commands in BENIGN.values() for command in commands]


def _regexes(runtime) -> dict:
    policy = compile_policy(runtime)
    return {f"{rule.id}#{index}": regex for rule in policy.rules if rule.decision == "deny"
            for index, regex in enumerate(rule_to_gemini_regexes(rule, policy.tools))}


def test_gemini_regexes_pass_geminis_loader_check(runtime):
    for rule_id, regex in _regexes(runtime).items():
        pattern = GEMINI_PREFIX + regex
        assert len(pattern) <= MAX_LENGTH, rule_id
        assert not UNSAFE.search(pattern), rule_id


def test_gemini_regexes_agree_with_classifier_except_listed_gaps(runtime):
    patterns = gemini_patterns(list(_regexes(runtime).values()))
    missed, extra = regex_disagreements(runtime, patterns, [c for _, c in DENY_CASES] + BENIGN_CASES)
    assert gap_problems(missed, extra, GAPS) == []


def test_gap_check_can_fail(runtime):
    missed, extra = regex_disagreements(runtime, [], ["gh secret list", "git status"])
    assert gap_problems(missed, extra, GAPS)[0] == "gemini regex missed (not in regex_known_gaps.yaml): 'gh secret list'"


def test_gemini_regexes_behave_the_same_in_node(runtime, tmp_path):
    node = shutil.which("node")
    assert node, "node is needed: Gemini CLI evaluates these regexes in Node (.ci/install-guard.sh installs it)"
    regexes = _regexes(runtime)
    commands = [c for _, c in DENY_CASES] + BENIGN_CASES
    (tmp_path / "in.json").write_text(json.dumps({"regexes": regexes, "commands": commands}))
    script = (
        "const fs=require('fs');const d=JSON.parse(fs.readFileSync(process.argv[1]));const out={};"
        "for(const [id,r] of Object.entries(d.regexes)){const re=new RegExp('\"command\":\"'+r);"
        "out[id]=d.commands.map(c=>re.test(JSON.stringify({command:c})));}"
        "process.stdout.write(JSON.stringify(out));"
    )
    result = subprocess.run([node, "-e", script, str(tmp_path / "in.json")], capture_output=True, text=True, check=True)
    in_node = json.loads(result.stdout)
    for rule_id, regex in regexes.items():
        in_python = [gemini_matches(regex, c) for c in commands]
        differ = [c for c, a, b in zip(commands, in_python, in_node[rule_id]) if a != b]
        assert differ == [], f"{rule_id}: Python and Node disagree on {differ[:5]}"


def test_gemini_regex_ignores_harmless_mentions(runtime):
    regexes = _regexes(runtime)
    for command in ["echo 'gh secret'", 'git commit -m "do not gh secret"', "grep -rn 'git push --force' .",
                    "python -c \"print('gh secret list')\"", "git log --grep='npm publish'",
                    'time grep "git push -f" .', "sudo -u me grep -r 'gh secret' ."]:
        assert not any(gemini_matches(r, command) for r in regexes.values()), command


TOOLS = parse_tools({"git": {"options_with_value": ["-C", "-c"], "flags": ["--no-pager"]}})


def regex_for(command, *matchers, tools=TOOLS):
    raw = {"id": "r", "reason": "why", "command": command}
    if matchers:
        raw["any_of"] = list(matchers)
    return rule_to_gemini_regex(parse_rule(raw, "r", decision="deny"), tools)


@pytest.mark.parametrize("command,hit", [
    ("git push --force", True), ("git push origin main --force", True), ("git push -uf origin", True),
    ("git push --forc", True),  # git takes an unambiguous abbreviation
    ("git -C repo push -f", True), ("/usr/bin/git push -f", True), ("sudo -u me git push -f", True),
    ("bash -c 'git push -f'", True), ("git push origin main", False), ("git pull -f", False),
    ("echo 'git push -f'", False), ("git status; git push -f", True),
])
def test_a_flag_rule(command, hit):
    assert gemini_matches(regex_for(["git", "push"], {"flag": ["--force", "-f"]}), command) is hit


@pytest.mark.parametrize("command,hit", [
    ("gh api -X DELETE x", True), ("gh api --method=delete x", True), ("gh api x -XDELETE", True),
    ("gh api -X GET x", False), ("gh api x", False),
])
def test_an_option_rule_takes_its_value_in_any_case(command, hit):
    assert gemini_matches(regex_for(["gh", "api"], {"option": ["-X", "--method"], "value": "DELETE"}), command) is hit


def test_an_arg_glob_and_a_rule_without_matchers():
    assert gemini_matches(regex_for(["git", "push"], {"flag": ["-f"]}, {"arg": "+*"}), "git push origin +main")
    bare = regex_for(["gh", ["secret", "variable"]])
    assert gemini_matches(bare, "gh secret list") and gemini_matches(bare, "gh variable set X")
    assert not gemini_matches(bare, "gh secrets")


def test_skip_args_of_the_program_are_skipped_between_command_words():
    regex = regex_for(["cargo", "publish"], tools=parse_tools({}))  # the built-in cargo +toolchain
    assert gemini_matches(regex, "cargo +nightly publish")


def test_a_regex_gemini_would_refuse_to_load_is_an_error():
    with pytest.raises(ValueError, match="characters"):
        check_loadable("a" * MAX_LENGTH)
    with pytest.raises(ValueError, match="quantified group"):
        check_loadable("(?:a+)+")
    many = {"flag": ["--" + hashlib.sha256(str(k).encode()).hexdigest()[:16] for k in range(200)]}
    with pytest.raises(ValueError, match="Split the rule"):
        regex_for(["git", "push"], many)


def test_every_matcher_kind_has_a_translation():
    from guard.policy import MATCHER_KINDS
    from renderer.gemini_regex import MATCHER_REGEX

    assert set(MATCHER_REGEX) == {kind.kind for kind in MATCHER_KINDS}
    assert parse_matcher({"arg": "x"}, "m").kind in MATCHER_REGEX
