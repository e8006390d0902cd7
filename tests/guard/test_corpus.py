"""The corpus: every deny variant caught, no benign command denied, the Gemini regexes in step."""

import json
import shutil
import subprocess

import pytest
import yaml

from guard_helpers import CORPUS
from guard.agreement import gap_problems, regex_disagreements, shim_disagreements
from guard.classify import classify
from guard.gemini_regex import GEMINI_PREFIX, UNSAFE, MAX_LENGTH, gemini_matches, rule_to_gemini_regex

DENY = yaml.safe_load((CORPUS / "deny.yaml").read_text())
BENIGN = yaml.safe_load((CORPUS / "benign.yaml").read_text())
GAPS = yaml.safe_load((CORPUS / "regex_known_gaps.yaml").read_text())
DENY_CASES = [(rule, command) for rule, commands in DENY.items() for command in commands]
BENIGN_CASES = [command for commands in BENIGN.values() for command in commands]
MAX_FALSE_DENY_RATE = 0.01


def test_corpus_shape():
    assert all(isinstance(c, str) and c for _, c in DENY_CASES)
    assert all(isinstance(c, str) and c for c in BENIGN_CASES)
    assert len(BENIGN_CASES) >= 300
    assert len(set(BENIGN_CASES)) == len(BENIGN_CASES)
    assert len({c for _, c in DENY_CASES}) == len(DENY_CASES)


def test_every_deny_rule_of_the_profile_has_corpus_cases(runtime):
    deny_rules = {r["id"] for r in runtime["rules"] if r.get("decision", "deny") == "deny" and r.get("tripwire")}
    assert deny_rules <= set(DENY), f"no corpus cases for {sorted(deny_rules - set(DENY))}"
    assert set(DENY) <= {r["id"] for r in runtime["rules"]}, "corpus names rules the profile does not have"


@pytest.mark.parametrize("rule,command", DENY_CASES, ids=[f"{r}:{c[:40]}" for r, c in DENY_CASES])
def test_deny_variant_is_caught(runtime, rule, command):
    d = classify(command, runtime)
    assert d.decision == "deny" and not d.parse_error, d
    assert rule in d.matched, f"denied by {d.matched}, expected {rule}"


def test_benign_corpus_false_deny_rate(runtime):
    denied = [(c, classify(c, runtime)) for c in BENIGN_CASES]
    denied = [(c, d.rule) for c, d in denied if d.decision == "deny"]
    assert len(denied) / len(BENIGN_CASES) < MAX_FALSE_DENY_RATE, denied
    # the corpus is 0% today: any new false deny is a regression to look at, not noise
    assert denied == []


def _regexes(runtime) -> dict:
    return {r["id"]: rule_to_gemini_regex(r, runtime.get("tools", {}))
            for r in runtime["rules"] if r.get("decision", "deny") == "deny"}


def test_gemini_regexes_pass_geminis_loader_check(runtime):
    for rule_id, regex in _regexes(runtime).items():
        pattern = GEMINI_PREFIX + regex
        assert len(pattern) <= MAX_LENGTH, rule_id
        assert not UNSAFE.search(pattern), rule_id


def test_gemini_regexes_agree_with_classifier_except_listed_gaps(runtime):
    missed, extra = regex_disagreements(runtime, list(_regexes(runtime).values()), [c for _, c in DENY_CASES] + BENIGN_CASES)
    assert gap_problems(missed, extra, GAPS) == []


def test_gap_check_can_fail(runtime):
    missed, extra = regex_disagreements(runtime, [], ["gh secret list", "git status"])
    assert gap_problems(missed, extra, GAPS)[0] == "gemini regex missed (not in regex_known_gaps.yaml): 'gh secret list'"


def test_shims_fast_path_never_skips_a_denied_command(runtime):
    assert shim_disagreements(runtime, runtime, [c for _, c in DENY_CASES]) == []
    broken = {**runtime, "fast_path": {**runtime["fast_path"], "git": runtime["fast_path"]["git"] + ["push"]}}
    assert shim_disagreements(broken, broken, ["git push --force"])


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
