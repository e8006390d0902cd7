"""agent-guard explain: for one command, what each layer would decide, and why.

The hook, the shims and the Gemini regexes are evaluated exactly (same code the image runs).
Claude's and Codex's own prefix rules are EMULATED from the behaviour recorded in
../shared/reference/CLI-FACTS.md, from the literal forms the renderer writes for each rule;
the output says so.
"""

from __future__ import annotations

from guard.classify import classify, executed_argvs
from guard.policy import Rule, compile_policy
from guard.cli import GuardError, _compiled, _split_options, load_runtime
from guard.shellparse import ShellSyntaxError, parse

# what Claude Code strips before matching a Bash(prefix) rule (observed)
_CLAUDE_STRIPS = {"timeout": 1, "time": 0, "nice": 0, "nohup": 0, "stdbuf": 0, "command": 0, "builtin": 0}


def _claude_text(words: list[str]) -> str:
    while words:
        head = words[0].rsplit("/", 1)[-1]
        if head not in _CLAUDE_STRIPS:
            break
        words = words[1:]
        while words and words[0].startswith("-"):
            words = words[2:] if words[0] in ("-n", "-s", "-k", "-i", "-o", "-e") else words[1:]
        words = words[_CLAUDE_STRIPS[head]:]
    if words:
        words = [words[0].rsplit("/", 1)[-1]] + words[1:]
    return " ".join(words)


def _prefix_hit(tokens: list[str], form: tuple[str, ...]) -> bool:
    return len(tokens) >= len(form) and tuple(tokens[:len(form)]) == form


def claude_native(command: str, rules: list[Rule]) -> list[str]:
    hits = []
    for cmd in parse(command):
        words = [w.display() for w in cmd.words]
        text = _claude_text(words)
        for rule in rules:
            for form in rule.literal_forms():
                joined = " ".join(form)
                if text == joined or text.startswith(joined + " "):
                    hits.append(f"{rule.id} (Bash({joined} *) on `{text}`)")
                    break
    return hits


def codex_native(command: str, rules: list[Rule]) -> list[str]:
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


def gemini_native(command: str, rules: list[dict], tools: dict) -> list[str]:
    from guard.gemini_regex import gemini_matches, rule_to_gemini_regex

    return [rule["id"] for rule in rules if gemini_matches(rule_to_gemini_regex(rule, tools), command)]


def shim_lines(command: str, runtime: dict) -> list[str]:
    from guard.shims import fast_path_words

    lines = []
    for argv in executed_argvs(command, runtime):
        program = argv[0].rsplit("/", 1)[-1]
        if any("$" in a for a in argv):
            lines.append(f"  {' '.join(argv)}: not known before it runs; the shim checks the argv it gets")
            continue
        decision = classify([program] + list(argv[1:]), runtime)
        fast = set(fast_path_words(runtime, program))
        positional = next((a for a in argv[1:] if not a.startswith("-")), None)
        route = "fast path (no Python)" if positional in fast and not any(
            a.startswith("-") for a in argv[1:argv.index(positional)]) else "checked by agent-guard"
        verdict = f"refused {decision.rule}: {decision.reason}" if decision.decision == "deny" else "runs"
        lines.append(f"  {' '.join(argv)}: {route}: {verdict}")
    return lines or ["  no guarded program is named in the text (a dynamic command word, a script or a program it"
                     " runs may still start one: that program's shim checks the argv it gets)"]


def explain(command: str, runtime: dict) -> str:
    policy = compile_policy(runtime)
    deny_rules = [rule for rule in policy.rules if rule.decision == "deny"]
    raw_deny_rules = [r for r in runtime.get("rules", []) if r.get("decision", "deny") == "deny"]
    decision = classify(command, policy)
    out = [f"command: {command}", f"profile: {runtime.get('profile', '?')} (posture {runtime.get('posture', '?')})", ""]
    verdict = f"{decision.decision}" + (f", rule {decision.rule}: {decision.reason}" if decision.rule else f": {decision.reason}")
    out.append(f"agent-guard (the Claude hook; classify): {verdict}")
    if decision.argv:
        out.append(f"  decided on: {' '.join(decision.argv)}")
    if len(decision.matched) > 1:
        out.append(f"  rules matched: {', '.join(decision.matched)}")
    out.append("")
    out.append("exec-time shims (the argv each guarded program would get):")
    out += shim_lines(command, runtime) if not decision.parse_error else ["  the text does not parse; bash would stop at the error"]
    out.append("")
    try:
        claude = claude_native(command, deny_rules)
        codex = codex_native(command, deny_rules)
    except ShellSyntaxError:
        claude = codex = None
    gemini = gemini_native(command, raw_deny_rules, runtime.get("tools", {}))
    out.append("each CLI's own deny rules (Claude and Codex emulated from CLI-FACTS.md; Gemini evaluated):")
    for name, hits in (("Claude Bash(prefix) rules", claude), ("Codex prefix_rule", codex),
                       ("Gemini commandRegex", gemini)):
        if hits is None:
            shown = "cannot say (the text does not parse)"
        else:
            shown = "deny: " + "; ".join(hits) if hits else "no rule matches"
        out.append(f"  {name}: {shown}")
    if decision.decision == "deny" and not decision.parse_error and (not claude or not codex or not gemini):
        out.append("  where a CLI's own rules miss it, the hook (Claude) and the shims (all three) still refuse it")
    return "\n".join(out) + "\n"


def cmd_explain(args: list[str]) -> int:
    options, rest = _split_options(args, {"--profile", "--profile-file"})
    if not rest:
        raise GuardError("explain needs -- COMMAND")
    runtime = load_runtime(options.get("--profile"), options.get("--profile-file"))
    _compiled(runtime, options.get("--profile-file") or f"profile {options.get('--profile') or 'autonomous'}")
    import sys

    sys.stdout.write(explain(" ".join(rest), runtime))
    return 0
