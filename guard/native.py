"""The CLIs' own rule languages, as each CLI applies them to a command (docs/cli-facts.md).

Claude's `Bash(prefix *)` rules and Codex's `prefix_rule`s hold the literal forms of a rule
(guard/policy.py: Rule.literal_forms) and are emulated here from their observed behaviour.
Gemini's `commandRegex` policies are evaluated as Gemini does: the regex after `"command":"`,
searched in the JSON text of the tool's arguments. `agent-guard explain` shows all three; the
renderer's checks use the Gemini half on the regexes it writes.

The renderer tags every native deny message with the rule's id (`agent-sandbox ID: reason`), so a
refusal names its rule in any CLI; DENY_TAG is that format, read back here.
"""

from __future__ import annotations

import json
import re

from guard.shellparse import parse

DENY_TAG = "agent-sandbox {id}:"
_TAGGED = re.compile(r"agent-sandbox ([a-z0-9-]+):")
GEMINI_PREFIX = '"command":"'
GEMINI_POLICY_FILE = "agent-sandbox.toml"  # in /etc/gemini-cli/policies, or ~/.gemini/policies

# what Claude Code strips before matching a Bash(prefix) rule (observed), with how many
# positional arguments the wrapper takes first (timeout's duration)
_CLAUDE_STRIPS = {"timeout": 1, "time": 0, "nice": 0, "nohup": 0, "stdbuf": 0, "command": 0, "builtin": 0}
_CLAUDE_STRIP_OPTIONS_WITH_VALUE = ("-n", "-s", "-k", "-i", "-o", "-e")


def deny_message(rule_id: str, reason: str) -> str:
    """A rule's deny message in every CLI's own rules: the rule's id, then why."""
    return f"{DENY_TAG.format(id=rule_id)} {reason}"


def rule_id_of(message: str) -> str | None:
    match = _TAGGED.match(message)
    return match.group(1) if match else None


# ------------------------------------------------------------------ Claude and Codex: prefixes

def _claude_text(words: list[str]) -> str:
    while words:
        head = words[0].rsplit("/", 1)[-1]
        if head not in _CLAUDE_STRIPS:
            break
        words = words[1:]
        while words and words[0].startswith("-"):
            words = words[2:] if words[0] in _CLAUDE_STRIP_OPTIONS_WITH_VALUE else words[1:]
        words = words[_CLAUDE_STRIPS[head]:]
    if words:
        words = [words[0].rsplit("/", 1)[-1]] + words[1:]
    return " ".join(words)


def claude_hits(command: str, rules: list) -> list[str]:
    """Which rules Claude's `Bash(form *)` deny rules would refuse the command by (emulated)."""
    hits = []
    for cmd in parse(command):
        text = _claude_text([w.display() for w in cmd.words])
        for rule in rules:
            for form in rule.literal_forms():
                joined = " ".join(form)
                if text == joined or text.startswith(joined + " "):
                    hits.append(f"{rule.id} (Bash({joined} *) on `{text}`)")
                    break
    return hits


def _prefix_hit(tokens: list[str], form: tuple[str, ...]) -> bool:
    return len(tokens) >= len(form) and tuple(tokens[:len(form)]) == form


def codex_hits(command: str, rules: list) -> list[str]:
    """Which rules Codex's forbidden `prefix_rule`s would refuse the command by (emulated)."""
    hits = []
    for cmd in parse(command):
        if cmd.nested or cmd.assignments or any(w.static is None for w in cmd.words) or not cmd.words:
            continue
        tokens = [w.static for w in cmd.words]
        tokens[0] = tokens[0].rsplit("/", 1)[-1]
        for rule in rules:
            if any(_prefix_hit(tokens, form) for form in rule.literal_forms()):
                hits.append(f"{rule.id} (prefix_rule on `{' '.join(tokens)}`)")
    return hits


# ------------------------------------------------------------------ Gemini: commandRegex

def json_command_text(command: str) -> str:
    """The text Gemini matches: JSON.stringify of the args with sorted keys, as Node writes it."""
    return json.dumps({"command": command}, ensure_ascii=False, separators=(",", ":"))


def gemini_matches(regex: str, command: str) -> bool:
    return re.search(GEMINI_PREFIX + regex, json_command_text(command)) is not None


def gemini_policy_beside(runtime_path: str) -> str | None:
    """Where the Gemini policy file rendered with a runtime profile lies: beside
    /etc/agent-sandbox/profiles/ in an image, beside ~/.config/agent-sandbox/profiles/ in a home
    (`dot_config` and `dot_gemini` in the committed rendered/ tree)."""
    import os

    base = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(runtime_path))))
    name = os.path.basename(base)
    if name == "etc":
        return os.path.join(base, "gemini-cli", "policies", GEMINI_POLICY_FILE)
    if name in (".config", "dot_config"):
        dot = name[:-len("config")]
        return os.path.join(os.path.dirname(base), f"{dot}gemini", "policies", GEMINI_POLICY_FILE)
    return None


def gemini_deny_regexes(policy_path: str) -> dict[str, str]:
    """{rule id: commandRegex} of the deny rules in a rendered Gemini policy file."""
    import tomllib

    with open(policy_path, "rb") as handle:
        rules = tomllib.load(handle).get("rule", [])
    found = {}
    for rule in rules:
        rule_id = rule_id_of(rule.get("denyMessage", ""))
        if rule.get("decision") == "deny" and "commandRegex" in rule and rule_id:
            found[rule_id] = rule["commandRegex"]
    return found


def gemini_hits(command: str, regexes: dict[str, str]) -> list[str]:
    return [rule_id for rule_id, regex in regexes.items() if gemini_matches(regex, command)]
