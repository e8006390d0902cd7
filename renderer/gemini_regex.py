"""Deny rules as Gemini CLI `commandRegex` admin policies.

Gemini tests `"command":"` + commandRegex against the JSON text of the tool arguments
(JSON.stringify with sorted keys), so everything here is written for the JSON-escaped
command: a double quote is `\\"`, a newline is `\\n`.

The regex must also pass Gemini's own loader check (packages/core/src/policy/utils.ts,
isSafeRegExp): at most 2048 characters and no match for `\\([^)]*[*+?{].*\\)[*+?{]`, which
rejects ANY group followed by a quantifier once a quantified group has opened. So no
group here is ever quantified: repetition is unrolled into `(?:X|)` chains, and spans are
character classes. `rule_to_gemini_regex` raises ValueError if a rule cannot fit;
`rule_to_gemini_regexes` splits a rule whose matchers do not fit together into one regex each.

It matches what the classifier denies as far as a regex can: the program at a command
boundary (start, `;`, `&`, `|`, `(`, `{`, backquote, newline, `bash -c '`, `eval '`,
`find -exec`), after wrappers and NAME=value words, by basename, quoted or not, or an
unknown `$word`; global options between the command words; flags anywhere later in the
same simple command. profiles/corpus/regex_known_gaps.yaml lists where it still differs.
"""

from __future__ import annotations

import re

from guard.native import GEMINI_PREFIX
from guard.policy import Arg, Endpoint, Flag, Matcher, Option, Rule, ToolOptions

MAX_LENGTH = 2048
UNSAFE = re.compile(r"\([^)]*[*+?{].*\)[*+?{]")  # Gemini's nested-quantifier heuristic


def unsafe(pattern: str) -> bool:
    return UNSAFE.search(pattern) is not None


_W = r"[^\s;&|]"  # a character of a shell word (roughly)
_Q = r"(?:\\\"|'|)"  # an optional quote around a word: \" in JSON text, or '
_END = r"(?=[\s;&|)`'\"]|\\|$)"  # the word ends here
# an argument's start: a quote, or a parameter expansion whose literal default it is (`${X:--f}`)
_OPEN = r"(?:\\\"|'|)(?:\$\{[A-Za-z_]\w*:?[-=+](?:\\\"|'|)|)"
_ARG_END = r"(?=[\s;&|)}`'\"]|\\|$)"  # an argument ends here (also at the `}` of such a default)
_WRAPPERS = ("sudo", "doas", "env", "command", "builtin", "exec", "nohup", "time", "timeout", "nice", "ionice",
             "stdbuf", "setsid", "xargs", "unbuffer", "chrt", "taskset", "coproc", r"npm\s+(?:exec|x)")
_SHELLS = r"(?:ba|da|z|k|mk|)sh"
_START = (
    r"(?:"
    r"|.*(?:[;&|{})`!]|\\n|\((?=[^'\\]))"  # after a command separator (a bare start is the empty alternative)
    rf"|.*\b(?:{_SHELLS}|su|runuser|script|flock|npx|npm)\s+[^;&|]*?-[A-Za-z]*c[A-Za-z]*\s+(?:'|\\\"|)"  # -c strings
    rf"|.*\b{_SHELLS}\s+<<<\s*(?:'|\\\"|)"
    r"|.*\b(?:eval\s+|trap\s+|alias\s+[^\s=;&|]+=)(?:'|\\\"|)"
    r"|.*\benv\s[^;&|]*?(?:-S|--split-string)(?:\s+|=|)(?:'|\\\"|)"
    r"|.*\s-(?:exec|execdir|ok|okdir)\s+"
    r"|.*\bwatch\s+(?:-n\s+[^\s;&|]+\s+|)"
    r")\s*(?:(?:if|then|do|else|elif|while|until|time|!)\s+|)"
)
_ASSIGNMENT = r"(?:[A-Za-z_]\w*=(?:'[^']*'|\\\"[^\"\\]*\\\"|[^\s;&|]*)\s+|)"
# a wrapper (or an unknown $word such as $SUDO), then its options and further wrappers, up to the program;
# the span stops at quotes so a mention inside a quoted argument is not taken for the command
_WRAPPED = rf"(?:(?:(?:{_W}*/|)(?:{'|'.join(_WRAPPERS)})|{_W}*\$[^\s;&|]*)(?:\s[^;&|'\"]*?|)\s+(?=[^'\\\\])|)"
_PRE = _ASSIGNMENT * 2 + _WRAPPED
_GLOBAL = rf"(?:\s+-{_W}*(?:\s+[^-\s;&|]{_W}*|)|)"
_DYNAMIC_WORD = rf"{_W}*\$[^\s;&|]*|\$\([^)]*\)|`[^`]*`"


_INNER_QUOTE = r"(?:\\\\|'|\\\"|)"  # g\h, g'h', g"h" are all gh to the shell


def _word(word: str) -> str:
    return _INNER_QUOTE.join(re.escape(ch) for ch in word)


def _alternatives(words) -> str:
    return "(?:" + "|".join(_word(w) for w in sorted(words)) + ")"


def _prefix_trie(names, minimum: int) -> str:
    """A regex for every prefix of `names` at least `minimum` long (git accepts abbreviations)."""
    trie: dict = {}
    for name in names:
        node = trie
        for ch in name:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node, depth: int) -> str:
        branches = [re.escape(ch) + emit(child, depth + 1) for ch, child in sorted(node.items()) if ch]
        optional = depth >= minimum
        if not branches:
            return ""
        if len(branches) == 1 and not optional:
            return branches[0]
        return "(?:" + "|".join(branches) + ("|" if optional else "") + ")"

    return emit(trie, 0)


def _case_insensitive(text: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in text)


def _glob(glob: str) -> str:
    out = []
    for ch in glob:
        if ch == "*":
            out.append(f"{_W}*")
        elif ch == "?":
            out.append(_W)
        else:
            out.append(re.escape(ch))
    return "".join(out)


def _long_or_short(m: Flag | Option, long_after: str, short_before: str, short_after: str) -> str:
    """A long name (or git's abbreviation of it) then long_after, or a short letter in a cluster."""
    parts = []
    if m.longs:
        parts.append(f"--{_prefix_trie(m.longs, 2)}{long_after}")
    if m.shorts:
        parts.append(f"{short_before}[{re.escape(m.shorts)}]{short_after}")
    return "|".join(parts)


def _flag(m: Flag) -> str:
    return _long_or_short(m, "(?=[=\\s;&|)}`'\"]|\\\\|$)", "-[A-Za-z0-9]*", f"[A-Za-z0-9]*{_Q}{_ARG_END}")


def _option(m: Option) -> str:
    value = "(?:" + "|".join(_case_insensitive(v) for v in m.values_as_written()) + ")"
    return _long_or_short(m, f"(?:\\s+|=){_OPEN}{value}{_Q}{_ARG_END}", "-[A-Za-z]*",
                          f"(?:\\s+|=|){_OPEN}{value}{_Q}{_ARG_END}")


def _arg(m: Arg) -> str:
    return f"{_glob(m.glob)}{_Q}{_ARG_END}"


def _endpoint(m: Endpoint) -> str:
    """The API path (after an optional `https://host/` or `/`), and where the rule names methods,
    a later -X/--method with one of them. A regex cannot tell that fields make gh POST, take the
    method before the path within Gemini's size limit, nor read a GraphQL document: a mutation
    rule takes the word `mutation` after the path (the corpus lists these differences)."""
    segments = [{"*": r"[^\s;&|/]*", "**": r"[^\s;&|]*"}.get(seg) or re.escape(seg) for seg in m._segments]
    path = rf"(?:[A-Za-z]+://[^\s;&|/]*/|/|){'/'.join(segments)}(?:\?[^\s;&|]*|){_Q}{_ARG_END}"
    if m.mutation:
        return path + r"[^;&|]*?\bmutation\b"
    if not m.methods:
        return path
    values = "|".join(_case_insensitive(method) for method in m.methods)
    return rf"{path}[^;&|]*?\s(?:-[A-Za-z]*X|--method)(?:\s+|=|){_OPEN}(?:{values}){_Q}{_ARG_END}"


MATCHER_REGEX = {Flag.kind: _flag, Option.kind: _option, Arg.kind: _arg, Endpoint.kind: _endpoint}  # one per kind


def _matcher(m: Matcher) -> str:
    return MATCHER_REGEX[m.kind](m)


def _spellings(words, options: list) -> str:
    """`|...` for the other words the programs run these subcommands for (npm pub: a prefix, as a
    trie, short enough for Gemini's limit; an alias as it is), or ""."""
    prefixes, others = [], set()
    for word in words:
        for table in options:
            spellings = table.spellings(word)
            shortest = min((len(s) for s in spellings if word.startswith(s)), default=0)
            if shortest:
                prefixes.append((word, shortest))
            others.update(s for s in spellings if not word.startswith(s))
    out = [_prefix_trie([word], shortest) for word, shortest in prefixes] + [re.escape(s) for s in sorted(others)]
    return "".join("|" + part for part in out)


def rule_to_gemini_regex(rule: Rule, tools: dict[str, ToolOptions]) -> str:
    """The commandRegex for one deny rule; ValueError if it cannot be expressed."""
    programs = sorted(rule.programs)
    globs = dict.fromkeys(g for p in programs for g in tools.get(p, ToolOptions()).skip_args)
    skips = [f"\\s+{_glob(g)}" for g in globs]
    between = f"(?:{_GLOBAL[3:-2]}|{'|'.join(skips)}|)" if skips else _GLOBAL
    regex = [_START, _PRE, f"(?:{_W}*/|){_INNER_QUOTE}(?:{_alternatives(programs)[3:-1]}|{_DYNAMIC_WORD}){_Q}"]
    for position, alternatives in enumerate(rule.command[1:]):
        spelled = _spellings(alternatives, [tools.get(p, ToolOptions()) for p in programs]) if position == 0 else ""
        words = f"(?:{_alternatives(alternatives)[3:-1]}{spelled}|{_DYNAMIC_WORD}){_Q}"
        if position == 0 and any(tools.get(p, ToolOptions()).dashed_subcommands for p in programs):
            dashed = "|".join(re.escape(word) for word in sorted(rule.command[1]))
            regex.append(f"(?:-(?:{dashed}){_Q}|{between * 3}\\s+{_Q}{words})")
            continue
        regex.append(between * 3)
        regex.append(f"\\s+{_Q}{words}")
    if rule.any_of:
        regex.append(r"[^;&|]*?\s" + _OPEN + "(?:" + "|".join(_matcher(m) for m in rule.any_of) + ")")
    else:
        regex.append(_END)
    result = "".join(regex)
    check_loadable(result, rule.id)
    return result


def rule_to_gemini_regexes(rule: Rule, tools: dict[str, ToolOptions]) -> list[str]:
    """The commandRegexes for one deny rule: one, or when its matchers do not fit in one regex
    together, one per matcher (Gemini denies when any of them matches); ValueError if even one
    matcher cannot fit."""
    try:
        return [rule_to_gemini_regex(rule, tools)]
    except ValueError:
        if len(rule.any_of) < 2:
            raise
    return [rule_to_gemini_regex(Rule(rule.id, rule.decision, rule.reason, rule.command, (matcher,), rule.tripwire,
                                      rule.source), tools) for matcher in rule.any_of]


def check_loadable(regex: str, rule_id: str = "?") -> None:
    """Raise ValueError unless Gemini's policy loader would accept this commandRegex (its length
    and its nested-quantifier check; that it compiles is held by render-profiles --check)."""
    pattern = GEMINI_PREFIX + regex
    if len(pattern) > MAX_LENGTH:
        raise ValueError(f"rule {rule_id}: the Gemini regex is {len(pattern)} characters; Gemini skips any "
                         f"over {MAX_LENGTH}. Split the rule into smaller ones.")
    if unsafe(pattern):
        raise ValueError(f"rule {rule_id}: the Gemini regex has a quantified group, which Gemini's loader rejects")
