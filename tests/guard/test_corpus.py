"""The corpus: every deny variant caught by the classifier, no benign command denied. The rendered
layers are held to it in tests/renderer (test_gemini_regex.py, test_shims.py)."""

import pytest
import yaml

from guard_helpers import CORPUS
from guard.classify import classify

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
