"""What an install (or uninstall) changes, for a person: a unified diff per file (--dry-run) and,
always, per file, what changed in words."""

from __future__ import annotations

import difflib
import json
import tomllib
from pathlib import Path

from renderer.install import merge
from renderer.install.documents import plain
from renderer.install.strictness import show

SHOWN_ENTRIES = 3


def display(path: Path, home: Path) -> str:
    try:
        return "~/" + str(path.relative_to(home))
    except ValueError:
        return str(path)


def diff(plan) -> list[str]:
    lines: list[str] = []
    for step in plan.changed:
        name = display(step.target.path, plan.home)
        a = (step.before or b"").decode(errors="replace").splitlines(keepends=True)
        b = (step.after or b"").decode(errors="replace").splitlines(keepends=True)
        chunk = list(difflib.unified_diff(a, b, f"a/{name}" if step.before is not None else "/dev/null",
                                          f"b/{name}" if step.after is not None else "/dev/null"))
        for index, line in enumerate(chunk):
            if not line.endswith("\n"):
                chunk[index] = line + "\n\\ No newline at end of file\n"
        lines += chunk
    return lines


def _document(data: bytes | None, fmt: str) -> dict:
    if data is None:
        return {}
    return plain(json.loads(data) if fmt == "json" else tomllib.loads(data.decode()))


def _entry(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _entries(values: list) -> str:
    shown = ", ".join(_entry(v) for v in values[:SHOWN_ENTRIES])
    more = len(values) - SHOWN_ENTRIES
    return shown + (f" and {more} more" if more > 0 else "")


def _plural(count: int, one: str, many: str = "") -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def setting_lines(step, uninstall: bool) -> list[str]:
    """Per setting: entries added to or removed from a list, values set, added or removed."""
    fmt = step.entry["format"] if step.entry else ("toml" if step.target.path.suffix == ".toml" else "json")
    before, after = merge.leaves(_document(step.before, fmt)), merge.leaves(_document(step.after, fmt))
    reasons = {note.path: note.text for note in step.notes if note.what == "set"}
    lines = []
    for path in [*before, *(p for p in after if p not in before)]:
        name = ".".join(path)
        old, new = before.get(path, merge.MISSING), after.get(path, merge.MISSING)
        if old == new:
            continue
        if isinstance(old, list) or isinstance(new, list):
            old_items = old if isinstance(old, list) else []
            new_items = new if isinstance(new, list) else []
            added = [v for v in new_items if v not in old_items]
            removed = [v for v in old_items if v not in new_items]
            if added:
                lines.append(f"{name}: added {_plural(len(added), 'entry', 'entries')} ({_entries(added)})")
            if removed:
                why = "the install had added them" if uninstall else "the profile no longer has them"
                lines.append(f"{name}: removed {_plural(len(removed), 'entry', 'entries')} "
                             f"({_entries(removed)}): {why}")
        elif old is merge.MISSING:
            lines.append(f"{name} = {show(new)}: added")
        elif new is merge.MISSING:
            lines.append(f"{name} = {show(old)}: removed (the install had added it)")
        elif path in reasons:
            lines.append(reasons[path])
        else:
            lines.append(f"{name}: {show(old)} -> {show(new)}" + (" (yours again)" if uninstall else ""))
    lines += [note.text for note in step.notes if note.what in ("kept", "left")]
    return lines


def step_lines(step, plan, backups: dict[str, str]) -> list[str]:
    name = display(step.target.path, plan.home) + (f" (from {step.target.via})" if step.target.via else "")
    uninstall = plan.action == "uninstall" or step.entry is None
    if not step.changed:
        status = "unchanged" if step.before is not None else "not there (nothing to do)"
    elif not step.target.merged:
        status = ("written (the project's own rules)" if step.before is None
                  else "removed (the project's own rules)" if step.after is None
                  else "replaced with the profile's current rules")
        if step.replaced_edits:
            status += "; someone had edited it since the install: the edited copy is kept as a backup"
    elif step.before is None:
        status = "created"
    elif step.after is None:
        status = "removed: the install had created it and it holds nothing of yours"
    else:
        status = "restored to your own settings" if plan.action == "uninstall" else "merged"
    backup = backups.get(str(step.target.path))
    lines = [f"{name}: {status}" + (f" (backup: {Path(backup).name})" if backup else "")]
    if step.target.merged and (step.changed or step.notes):
        lines += [f"    {line}" for line in setting_lines(step, uninstall)]
    return lines


UNDOABLE = (
    "Protections an agent could undo: these files are yours, and the agent runs as you. The profile's "
    "rules refuse the writes to them that the CLIs can see (their edit tools, redirections, cp, tee, sed -i, "
    "git --output), but a program they do not see into (python -c, a script) can still rewrite them: the "
    "deny rules, Claude's refusal of bypass mode, Gemini's refusal of yolo mode, the agent-guard hook. "
    "Codex's --yolo cannot be refused from a user file at all. `sudo render-profiles --install interactive "
    "--system` puts the deny rules, the hook and the bypass refusals into each CLI's admin layer (/etc), "
    "which the agent cannot write.")
SYSTEM_PRESENT = ("The admin layer is installed (/etc/agent-sandbox/install-state.json): its deny rules, hook "
                  "and bypass refusals are out of the agent's reach.")


def summary(plan, backups: list[str], *, dry_run: bool, system_installed: bool) -> str:
    by_file = {str(Path(b).parent / Path(b).name.split(".agent-sandbox-backup-")[0]): b for b in backups}
    verb = {"install": "installed", "uninstall": "uninstalled"}[plan.action]
    where = "the CLIs' admin layer (/etc)" if plan.layer == "system" else str(plan.home)
    head = (f"render-profiles: {'would have ' + verb if dry_run else verb} profile '{plan.profile}' "
            f"{'into' if plan.action == 'install' else 'from'} {where}: "
            f"{_plural(len(plan.changed), 'file')} {'to change' if dry_run else 'changed'}, "
            f"{len(plan.steps) - len(plan.changed)} unchanged")
    lines = [head]
    for step in plan.steps:
        lines += step_lines(step, plan, by_file)
    state_name = display(plan.state_path, plan.home)
    if plan.state_after is None:
        lines.append(f"{state_name}: removed (the install's record)")
    else:
        lines.append(f"{state_name}: the install's record of what it added (render-profiles --uninstall"
                     f"{' --system' if plan.layer == 'system' else ''} reads it)")
    if dry_run:
        lines.append("Nothing was written (--dry-run).")
    if plan.action == "install" and plan.layer == "user":
        lines.append(SYSTEM_PRESENT if system_installed else UNDOABLE)
    return "\n".join(lines) + "\n"
