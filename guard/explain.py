"""agent-guard explain: for one command, what each layer would decide, and why.

The hook and the shims are evaluated exactly (the classifier the image runs, the fast-path table
the shims were rendered from); the Gemini regexes too, read from the rendered policy file Gemini
loads. Claude's and Codex's own prefix rules are EMULATED from their observed behaviour
(docs/cli-facts.md), from the literal forms the renderer writes for each rule; the output says so.
"""

from __future__ import annotations

from guard.classify import classify, executed_argvs
from guard.native import claude_hits, codex_hits, gemini_hits
from guard.policy import compile_policy
from guard.shellparse import ShellSyntaxError


def shim_lines(command: str, runtime: dict) -> list[str]:
    lines = []
    fast_path = runtime.get("fast_path") or {}
    for argv in executed_argvs(command, runtime):
        program = argv[0].rsplit("/", 1)[-1]
        if any("$" in a for a in argv):
            lines.append(f"  {' '.join(argv)}: not known before it runs; the shim checks the argv it gets")
            continue
        decision = classify([program] + list(argv[1:]), runtime)
        fast = set(fast_path.get(program, ()))
        positional = next((a for a in argv[1:] if not a.startswith("-")), None)
        route = "fast path (no Python)" if positional in fast and not any(
            a.startswith("-") for a in argv[1:argv.index(positional)]) else "checked by agent-guard"
        verdict = f"refused {decision.rule}: {decision.reason}" if decision.decision == "deny" else "runs"
        lines.append(f"  {' '.join(argv)}: {route}: {verdict}")
    return lines or ["  no guarded program is named in the text (a dynamic command word, a script or a program it"
                     " runs may still start one: that program's shim checks the argv it gets)"]


def explain(command: str, runtime: dict, gemini_regexes: dict[str, str] | None, gemini_source: str = "") -> str:
    """The report. gemini_regexes: {rule id: commandRegex} from the rendered Gemini policy
    (gemini_source), or None when there is none to read."""
    policy = compile_policy(runtime)
    deny_rules = [rule for rule in policy.rules if rule.decision == "deny"]
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
        claude = claude_hits(command, deny_rules)
        codex = codex_hits(command, deny_rules)
    except ShellSyntaxError:
        claude = codex = None
    gemini = gemini_hits(command, gemini_regexes) if gemini_regexes is not None else None
    out.append("each CLI's own deny rules (Claude and Codex emulated from docs/cli-facts.md; Gemini evaluated):")
    for name, hits, unknown in (
            ("Claude Bash(prefix) rules", claude, "the text does not parse"),
            ("Codex prefix_rule", codex, "the text does not parse"),
            ("Gemini commandRegex", gemini, f"no rendered Gemini policy at {gemini_source or 'a known place'}")):
        if hits is None:
            shown = f"cannot say ({unknown})"
        else:
            shown = "deny: " + "; ".join(hits) if hits else "no rule matches"
        out.append(f"  {name}: {shown}")
    if decision.decision == "deny" and not decision.parse_error and [] in (claude, codex, gemini):
        out.append("  where a CLI's own rules miss it, the hook (Claude) and the shims (all three) still refuse it")
    return "\n".join(out) + "\n"
