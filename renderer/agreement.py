"""Where a rendered layer and the classifier disagree, over the project's corpus of commands.

render-profiles --check and the tests both call this, so the Gemini regexes and the shims' fast
path are held to the classifier in one way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from guard.classify import classify
from guard.native import GEMINI_PREFIX, json_command_text
from renderer.shims import takes_fast_path


@dataclass(frozen=True)
class Corpus:
    deny: dict  # rule id -> commands that must be denied by it
    benign: list
    gaps: dict  # {"missed": {command: why}, "extra": {command: why}}

    @property
    def commands(self) -> list[str]:
        return [c for commands in self.deny.values() for c in commands] + self.benign


def load_corpus(folder: Path) -> Corpus:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    def read(name: str):
        return yaml.load((folder / name).read_text(), Loader=loader)

    benign = read("benign.yaml")
    return Corpus(deny=read("deny.yaml"), benign=[c for group in benign.values() for c in group], gaps=read("regex_known_gaps.yaml"))


def decide_all(policy, commands: list[str]) -> dict[str, tuple[bool, list]]:
    """One classifier pass over the corpus: {command: (denied, argvs of guarded programs)}."""
    decided = {}
    for command in commands:
        trace: list = []
        decided[command] = (classify(command, policy, trace).decision == "deny", list(dict.fromkeys(trace)))
    return decided


def gemini_patterns(regexes: list[str]) -> list[re.Pattern]:
    """commandRegex values as Gemini applies them (after `"command":"`), compiled."""
    return [re.compile(GEMINI_PREFIX + regex) for regex in regexes]


def regex_disagreements(policy, patterns: list[re.Pattern], commands: list[str], decided: dict | None = None) -> tuple[list[str], list[str]]:
    """(missed, extra): commands the classifier denies that no Gemini pattern (gemini_patterns)
    matches, and the reverse."""
    decided = decided or decide_all(policy, commands)
    compiled = list(patterns)
    missed, extra = [], []
    for command in commands:
        denied = decided[command][0]
        text = json_command_text(command)
        matched = False
        for index, pattern in enumerate(compiled):
            if pattern.search(text):
                matched = True
                # the corpus lists a rule's variants together: the next command likely matches this one too
                compiled.insert(0, compiled.pop(index))
                break
        if denied and not matched:
            missed.append(command)
        elif matched and not denied:
            extra.append(command)
    return missed, extra


def gap_problems(missed: list[str], extra: list[str], gaps: dict) -> list[str]:
    """Every disagreement must be listed with its reason, and every listed one must still disagree."""
    problems = []
    for kind, found in (("missed", missed), ("extra", extra)):
        listed = set(gaps.get(kind) or {})
        problems += [f"gemini regex {kind} (not in regex_known_gaps.yaml): {c!r}" for c in sorted(set(found) - listed)]
        problems += [f"stale regex_known_gaps.yaml '{kind}' entry, the regex now agrees: {c!r}" for c in sorted(listed - set(found))]
    return problems


def shim_disagreements(policy, fast: dict, commands: list[str], decided: dict | None = None) -> list[str]:
    """Denied commands a guarded program's shim would wave through on its fast path (the runtime
    profile's `fast_path` table)."""
    decided = decided or decide_all(policy, commands)
    problems = []
    for command in commands:
        for argv in decided[command][1]:
            program = argv[0].rsplit("/", 1)[-1]
            # the cheap test first: only an argv the fast path would wave through needs the classifier
            if program not in fast or not takes_fast_path(argv, policy.options(program), fast[program]):
                continue
            if classify(list(argv), policy).decision == "deny":
                problems.append(f"the {program} shim's fast path skips the check for {' '.join(argv)!r} (from {command!r})")
    return problems
