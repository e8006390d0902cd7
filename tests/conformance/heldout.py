"""Held-out measurement: residual-deny variants and everyday commands the tripwire was not built
from, through the three real CLIs with every layer on, judged by their effects (issue 13, item 4,
the tripwire side).

    python3 tests/conformance/heldout.py --set fresh --tree "main at 9d9eaa8" --json OUT.json   # run, save the cells
    python3 tests/conformance/heldout.py --write docs/conformance-heldout.md               # the page, from the fixtures

Two sets of rows. `first` (heldout_variants.py) was written before issue 13's classifier changes,
but their developer saw it while making them, so it is no longer held out. `fresh`
(heldout_fresh_variants.py) was written later by another developer and kept from the parser's
developer until their changes had landed: its numbers are the unseen ones. Each CLI runs one
session (the full rendered tree: native rules, the hook and the shims) through the real
entrypoint, as the matrix does; a control run with plain bash must see every row's effect.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "tests.conformance"

from tests.conformance import heldout_fresh_variants, heldout_variants  # noqa: E402
from tests.conformance import matrix as m  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DOC = m.REPO / "docs" / "conformance-heldout.md"
LAYER = "shims"  # the full tree: every layer on


@dataclass(frozen=True)
class HeldOut:
    name: str
    rows: object  # () -> list[Row]
    source: str
    before: str  # fixture file names
    after: str
    title: str
    about: str


SETS = {
    "fresh": HeldOut(
        "fresh", heldout_fresh_variants.rows, "tests/conformance/heldout_fresh_variants.py",
        "heldout-fresh-before.json", "heldout-fresh-after.json",
        "The fresh set: unseen by the developer of the parser changes",
        "Written by another developer while the parser changes were being made, and kept from their "
        "developer: it reached main only after the tree measured as **after**, so those changes could not be "
        "fitted to it. These are the numbers that count as unseen."),
    "first": HeldOut(
        "first", heldout_variants.rows, "tests/conformance/heldout_variants.py",
        "heldout-before.json", "heldout-after.json",
        "The first set: seen by the developer of the parser changes",
        "Written before issue 13's classifier changes, but the developer of those changes had read it "
        "while making them: it is no longer held out, and an improvement here may be fitted to it."),
}


def run(rows, clis=m.CLIS, log=print) -> dict:
    """{"versions", "control": {id: bool}, "cells": {cli: {id: [outcome, text]}}, "durations"}."""
    all_rows = rows()
    with tempfile.TemporaryDirectory(prefix="agent-heldout-") as temp:
        full = m.build_image_root(Path(temp) / "full", (m.PROFILE,))
        tree = m.derive_layer_tree(full, Path(temp) / LAYER, LAYER)
        control_tree = m.derive_layer_tree(full, Path(temp) / "control", "native")
        control = m.run_control(control_tree, all_rows)
        result = {"versions": m.cli_versions(), "control": control, "cells": {}, "durations": {}}
        for cli in clis:
            session = m.run_session(cli, LAYER, tree, all_rows)
            log(f"{cli}: {session.duration:.1f} s, rc {session.returncode}")
            result["cells"][cli] = {row_id: [cell.outcome, cell.text[:600]] for row_id, cell in session.cells.items()}
            result["durations"][cli] = round(session.duration, 1)
    return result


def counts(rows, result: dict, cli: str) -> dict:
    """Residual-deny rows that ran (tripwire rows and by-design rows apart), everyday rows refused."""
    cells = result["cells"][cli]
    out = {"deny": 0, "deny_ran": [], "gap": 0, "gap_ran": [], "safe": 0, "safe_refused": []}
    for row in rows():
        outcome = cells[row.id][0]
        out[row.expect] += 1
        if row.expect in ("deny", "gap") and outcome == "ran":
            out[f"{row.expect}_ran"].append(row.id)
        if row.expect == "safe" and outcome != "ran":
            out["safe_refused"].append(row.id)
    return out


def _cell(outcome: str, expect: str) -> str:
    if expect == "safe":
        return "ran" if outcome == "ran" else f"**refused ({outcome})**"
    return "**RAN**" if outcome == "ran" else outcome


def _fraction(ids: list, total: int) -> str:
    return f"{len(ids)} of {total}"


def load(held: HeldOut) -> tuple[dict, dict | None]:
    before = json.loads((FIXTURES / held.before).read_text())
    after_path = FIXTURES / held.after
    return before, (json.loads(after_path.read_text()) if after_path.exists() else None)


def render_set(held: HeldOut, before: dict, after: dict | None) -> list[str]:
    all_rows = held.rows()
    by_id = {r.id: r for r in all_rows}
    measured = [("before", before)] + ([("after", after)] if after else [])
    clis = [c for c in m.CLIS if c in before["cells"]]
    lines = [f"## {held.title}", "", f"`{held.source}`, {len(all_rows)} rows. {held.about}", ""]
    for when, result in measured:
        lines.append(f"- **{when}**: {result.get('tree', 'not recorded')}; the control run saw the effect of "
                     f"{sum(result['control'].values())} of {len(result['control'])} rows.")
    if after is None:
        lines.append("- **after**: not measured (see the top of the page).")
    lines += ["", "| CLI | " + " | ".join(f"residual-deny rows that ran, {w}" for w, _ in measured) + " | "
              + " | ".join(f"only-the-walls rows that ran, {w}" for w, _ in measured) + " | "
              + " | ".join(f"everyday rows refused, {w}" for w, _ in measured) + " |",
              "|---|" + "---|" * (3 * len(measured))]
    for cli in clis:
        per = [counts(held.rows, result, cli) for _, result in measured]
        lines.append(f"| {m.CLI_TITLES[cli]} | " + " | ".join(_fraction(c["deny_ran"], c["deny"]) for c in per) + " | "
                     + " | ".join(_fraction(c["gap_ran"], c["gap"]) for c in per) + " | "
                     + " | ".join(_fraction(c["safe_refused"], c["safe"]) for c in per) + " |")
    last_when, last = measured[-1]
    lines += ["", f"Residual-deny rows that still ran ({last_when}), per CLI:", ""]
    for cli in clis:
        ran = counts(held.rows, last, cli)["deny_ran"]
        shown = "; ".join(f"{by_id[i].variant} ({i}, {by_id[i].rule})" for i in ran) if ran else "none"
        lines.append(f"- {m.CLI_TITLES[cli]}: {shown}.")
    lines += ["", f"Everyday rows refused ({last_when}), per CLI:", ""]
    for cli in clis:
        refused = counts(held.rows, last, cli)["safe_refused"]
        shown = "; ".join(f"{by_id[i].variant} ({i}, `{last['cells'][cli][i][0]}`)" for i in refused) if refused else "none"
        lines.append(f"- {m.CLI_TITLES[cli]}: {shown}.")
    head = ["#", "effect", "class", "command"] + [f"{cli} {when}" for cli in clis for when, _ in measured]
    lines += ["", "<details><summary>Every row</summary>", "",
              "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for section, expect in (("Residual-deny variants", "deny"), ("Only the walls stop these", "gap"),
                            ("Everyday commands", "safe")):
        lines.append(f"| | **{section}** |" + " |" * (len(head) - 2))
        for row in (r for r in all_rows if r.expect == expect):
            cells = [_cell(result["cells"][cli][row.id][0], expect) for cli in clis for _, result in measured]
            what = row.rule if expect != "safe" else ""
            lines.append("| " + " | ".join([row.id, what, row.variant, m._shown_command(row.command), *cells]) + " |")
    lines += ["", "</details>", ""]
    return lines


def render(loaded: dict) -> str:
    """The page from {set name: (before, after or None)}."""
    any_result = next(before for before, _ in loaded.values())
    versions = ", ".join(f"{m.CLI_TITLES[c]} {any_result['versions'][c]}" for c in m.CLIS if c in any_result["versions"])
    missing = [name for name, (_, after) in loaded.items() if after is None]
    lines = [
        "# Held-out measurement: the tripwire against commands it was not built from",
        "",
        "Generated by `python3 tests/conformance/heldout.py --write docs/conformance-heldout.md` from the runs in "
        "`tests/conformance/fixtures/heldout*.json` (each made by `heldout.py --set NAME --tree ... --json ...`). "
        "Do not edit by hand.",
        "",
        f"CLIs: {versions}. Profile `{m.PROFILE}`, every layer on (the CLIs' own rules, the `agent-guard` hook, "
        "the exec-time shims), through the real entrypoint as uid 1000, one session per CLI against the scripted "
        "fake model, each row one shell tool call, judged by its effect (a canary's argv, a remote ref moved or "
        "deleted, a file), as in [conformance.md](conformance.md). **before** is main before issue 13's parser "
        "changes, **after** main with them; each run names its tree.",
        "",
        "A residual-deny row that ran is a tripwire miss; the walls (no credential in the container, the "
        "gateway's rules: [conformance-walls.md](conformance-walls.md)) are what stop the effect for real. "
        "Only-the-walls rows (a copied binary, an interpreter exec'ing a program by path) are routes no tripwire "
        "can see: measured, never counted as misses. An everyday row refused is a false refusal.",
        "",
    ]
    if missing:
        lines += [f"Not measured after the parser changes: the {' and '.join(missing)} set "
                  "(the changes had not landed when this page was written).", ""]
    for name in ("fresh", "first"):
        if name in loaded:
            lines += render_set(SETS[name], *loaded[name])
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=sorted(SETS), default="fresh", help="which held-out rows (default fresh)")
    parser.add_argument("--json", type=Path, help="run the CLIs and save the cells here")
    parser.add_argument("--tree", help="with --json: what was measured, e.g. 'main at 1a2b3c4'")
    parser.add_argument("--cli", action="append", choices=m.CLIS)
    parser.add_argument("--write", type=Path, help="write the Markdown page from the fixtures")
    options = parser.parse_args(argv)
    if options.json:
        if os.geteuid() != 0:
            parser.error("needs root (mount namespaces, overlayfs); the CLIs run as uid 1000 inside")
        if not options.tree:
            parser.error("--json needs --tree (what is measured, e.g. 'main at 1a2b3c4')")
        held = SETS[options.set]
        result = run(held.rows, tuple(options.cli or m.CLIS), log=lambda s: print(s, file=sys.stderr, flush=True))
        result = {"set": held.name, "tree": options.tree, **result}
        broken = [row_id for row_id, seen in result["control"].items() if not seen]
        if broken:
            print(f"control run did not see the effect of: {', '.join(broken)}", file=sys.stderr)
        m.write_atomically(options.json, json.dumps(result, indent=1) + "\n")
        return 1 if broken else 0
    if options.write:
        m.write_atomically(options.write, render({name: load(held) for name, held in SETS.items()}))
        return 0
    parser.error("give --json (with --tree), or --write")


if __name__ == "__main__":
    sys.exit(main())
