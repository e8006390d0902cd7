"""The demo: a real agent CLI inside the rendered sandbox runs a safe command and is refused a
force push, with no account and no key. `python3 -m demo.demo [claude|codex|gemini]` from the
repository's root, as root, once the project and the pinned CLIs are installed (demo/run.sh does all).

Driven by the conformance harness (tests/conformance/session.py): the rendered image root at its real
paths in a private mount namespace, uid 1000, AGENT_SANDBOX=1, the CLI started by
agent-entrypoint, the model a scripted fake server on 127.0.0.1. Exit 0 only if the safe command
ran and the force push was refused with the remote's history unchanged.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from launcher.terminal import bold, green, red, use_colour
from tests.conformance.drivers import CLIS
from tests.conformance.fakes import Scenario
from tests.conformance.matrix import refusal_layer
from tests.conformance.session import container_sandbox, image_tree, run_session

REPO = Path(__file__).resolve().parents[1]

PACKAGES = {"claude": "@anthropic-ai/claude-code", "codex": "@openai/codex", "gemini": "@google/gemini-cli"}
NAMES = {"claude": "Claude Code", "codex": "Codex CLI", "gemini": "Gemini CLI"}
SAFE = "touch demo-ok"
REWRITE = "git commit --amend --allow-empty -q -m rewritten-by-the-agent"
FORCE_PUSH = "git push --force origin main"
MARKER = "demo-ok"
LAYER_WORDS = {
    "native": "{name}'s own deny rules, rendered into its admin settings",
    "hook": "the agent-guard hook in {name}'s admin settings (it parses the shell command)",
    "shim": "the agent-guard shim on PATH (it judges the argv at exec time)",
}
WHAT_NEXT = """What next (after `source .venv/bin/activate`):
  agent-guard explain -- 'git push -f origin main'   what each layer decides for a command, and why
  render-profiles --install interactive --dry-run    the interactive profile for your own CLIs (docs/interactive.md)
  agent-run claude -p "fix the failing test"         an unattended run in the real image, on a copy of your
                                                     repository; results come back as refs (docs/launcher.md)
  docs/conformance.md                                every rule in each real CLI, by layer"""


@dataclass(frozen=True)
class Facts:
    """What the run left behind, read from the sandbox and the fake server."""

    entrypoint_exit: int
    tool_results: tuple[str, ...]  # one per step the CLI reported back, in order
    marker_exists: bool
    local_rewritten: bool  # the workspace's main no longer on the remote: a force push would show
    remote_before: tuple[str, ...]
    remote_after: tuple[str, ...]
    rule: str | None  # the rule named in the force push's refusal


def verdict(facts: Facts) -> list[str]:
    """Why the demo failed; empty when the safe command ran and the force push was refused."""
    problems = []
    if facts.entrypoint_exit != 0:
        problems.append(f"agent-entrypoint exited {facts.entrypoint_exit}")
    if not facts.marker_exists:
        problems.append(f"the safe command did not run ({MARKER} is missing)")
    if len(facts.tool_results) < 3:
        problems.append(f"the CLI reported {len(facts.tool_results)} of 3 tool calls back to the model")
    if not facts.local_rewritten:
        problems.append("the local history was not rewritten, so a force push would have changed nothing")
    if facts.remote_after != facts.remote_before:
        problems.append("the remote's history changed: the force push ran")
    elif facts.rule is None:
        problems.append("the force push's refusal names no rule")
    return problems


def rule_named(text: str, rule_ids: list[str]) -> str | None:
    found = [r for r in rule_ids if re.search(rf"(?<![a-z0-9-]){re.escape(r)}(?![a-z0-9-])", text)]
    return max(found, key=len) if found else None


def pinned_version(cli: str) -> str:
    return json.loads((REPO / "package.json").read_text())["dependencies"][PACKAGES[cli]]


def refusal_sentence(text: str, rule: str | None, width: int = 160) -> str:
    """The part of the refusal that says why (the CLIs wrap it in their own words)."""
    lines = [part.strip() for part in text.splitlines() if part.strip()] or ["(empty)"]
    line = next((part for part in lines if rule and rule in part), lines[0])
    for lead in ("denied by rule", f"agent-sandbox {rule}"):
        if lead in line:
            line = line[line.index(lead):]
            break
    return line if len(line) <= width else line[: width - 3] + "..."


def run(cli: str) -> int:
    say = print
    colour = use_colour()
    with tempfile.TemporaryDirectory(prefix="agent-sandbox-demo-") as scratch:
        tree = image_tree(Path(scratch))
        runtime = json.loads((tree / "etc/agent-sandbox/profiles/autonomous.json").read_text())
        rule_ids = [rule["id"] for rule in runtime["rules"]]
        manifest = json.loads((tree / "etc/agent-sandbox/manifest.json").read_text())
        with container_sandbox(tree) as sandbox:
            before = tuple(sandbox.remote_log("main"))
            say(bold(f"agent-sandbox demo: {NAMES[cli]} {pinned_version(cli)}, for real, inside the rendered sandbox",
                     colour))
            say("  model    a scripted fake server on 127.0.0.1 (no account, no key)")
            say(f"  sandbox  private mount namespace, uid 1000, AGENT_SANDBOX=1, {len(manifest['files'])} baked "
                "files from render-profiles --image-root at their real paths")
            say(f"  remote   a bare git repository; main is {before[0][:12]} ({len(before)} commit)")
            say(f"  start    agent-entrypoint {cli} ...: guards, boundary preflight, baked files checked against the")
            say("           manifest, a checkpoint of the workspace, then the CLI with its permission bypass")
            session = run_session(cli, sandbox, Scenario([SAFE, REWRITE, FORCE_PUSH], "Done."), timeout=150)
            results = tuple(t.text for t in session.server.tool_results)
            after = tuple(sandbox.remote_log("main"))
            head = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(sandbox.workspace), "rev-parse",
                                   "HEAD"], capture_output=True, text=True).stdout.strip()
            facts = Facts(session.result.returncode, results, (sandbox.workspace / MARKER).exists(),
                          bool(head) and head not in before, before, after, rule_named(results[2], rule_ids) if len(results) > 2 else None)
            for line in session.result.stderr.splitlines():
                if line.startswith("agent-entrypoint: checkpoint"):
                    checkpoint = line.split()[2]
                    say(f"           agent-entrypoint: checkpoint {checkpoint} recorded (it goes with the sandbox)")
                elif line.startswith("agent-entrypoint: refused"):
                    say(f"           {line.strip()}")
            say("")
            say("The model asked for three commands:")
            ok = lambda text: green(text, colour)  # noqa: E731
            bad = lambda text: red(text, colour)  # noqa: E731
            outcomes = [
                ok("ran: demo-ok is in the workspace") if facts.marker_exists else bad("ran, but demo-ok is MISSING"),
                (ok("ran: ") if facts.local_rewritten else bad("did NOT run: "))
                + "the agent rewrote its local main (allowed: it is its own copy)",
                ok(f"REFUSED by rule {facts.rule}") if facts.rule else bad("not refused by any rule"),
            ]
            for number, (step, outcome) in enumerate(zip((SAFE, REWRITE, FORCE_PUSH), outcomes), 1):
                say(f"  {number}. {step:<62} {outcome if number <= len(results) else bad('never reported back')}")
            if len(results) > 2:
                layer = refusal_layer(cli, results[2])
                if layer:
                    say(f"     refused by: {LAYER_WORDS[layer].format(name=NAMES[cli])}")
                say(f"     the model was told: {refusal_sentence(results[2], facts.rule)}")
            same = ok("unchanged") if after == before else bad("CHANGED")
            say(f"The remote: main is {after[0][:12]} ({len(after)} commit), {same}.")
            problems = verdict(facts)
    say("")
    if problems:
        say(red("FAILED:", colour) + " " + "; ".join(problems))
        if session.result.stderr.strip():
            say("agent-entrypoint / CLI stderr (last lines):")
            say("\n".join(session.result.stderr.strip().splitlines()[-15:]))
        return 1
    say(green("OK:", colour) + f" the safe command ran without a prompt; the force push was refused by {facts.rule} "
        "and the remote's history is unchanged.")
    say("")
    say(WHAT_NEXT)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    cli = args[0] if args else "claude"
    if len(args) > 1 or cli not in CLIS:
        print(f"usage: python3 -m demo.demo [{'|'.join(CLIS)}]", file=sys.stderr)
        return 2
    return run(cli)


if __name__ == "__main__":
    sys.exit(main())
