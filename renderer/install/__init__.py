"""render-profiles --install / --uninstall: the interactive profile into a user's files, or into
the CLIs' admin layer (--system), like a careful person would do it.

    plan    read every file the profile touches and the state of the last install, take the last
            install's changes out, merge the profile in (merge.py, strictness.py), all in memory;
            any file that cannot be read or merged stops here, before anything is written
    show    --dry-run: a unified diff per file; always: per file, what changed, in words
    write   back up each changed file, write each atomically, the state file last; if a write
            fails, the files already written are put back

Never a bypass profile. Symbolic links are refused, never followed. The admin layer is written
only as root, into folders that root owns and no one else may write.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sys
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

from renderer.install import documents, hooks, locations, merge, report, state
from renderer.install.locations import Target
from renderer.model import load
from renderer.outputs import render_profile, to_json
from renderer.paths import write_file_atomic


class InstallError(Exception):
    pass


@dataclass
class FileStep:
    target: Target
    before: bytes | None  # the file now (None: absent)
    after: bytes | None  # the file after (None: absent)
    entry: dict | None  # its state entry after (None: forgotten)
    notes: list = field(default_factory=list)
    replaced_edits: bool = False  # the project's own file, which someone had edited
    backup: bool = False  # keep a copy of the file as it was: it holds something of the user's

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass
class Plan:
    action: str  # install | uninstall
    layer: str  # user | system
    profile: str
    home: Path
    steps: list[FileStep]
    state_path: Path
    state_before: bytes | None
    state_after: bytes | None

    @property
    def changed(self) -> list[FileStep]:
        return [step for step in self.steps if step.changed]


# ------------------------------------------------------------------ reading

def read_regular(path: Path) -> bytes | None:
    """The file's bytes, None if absent; a symbolic link or anything but a regular file is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InstallError(f"{path} is a symbolic link (to {os.readlink(path)}); the install never follows links, "
                               f"which someone else could have planted: replace it with a copy of the file it points "
                               f"to (or point the CLI's folder variable at the real folder) and run again") from None
        raise InstallError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        if not os.path.stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise InstallError(f"{path} is not a regular file; move it away and run again")
        return handle.read()


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InstallError(f"{path}: not UTF-8 text ({exc}); fix or move it away and run again; nothing was changed") from None


def _ours(content: bytes, fmt: str):
    return json.loads(content) if fmt == "json" else tomllib.loads(content.decode())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _looks_rendered(data: bytes) -> bool:
    """A file an earlier render-profiles wrote (before the install kept a state file)."""
    if data.startswith(b"# Rendered by render-profiles"):
        return True
    try:
        document = json.loads(data)
    except ValueError:
        return False
    return isinstance(document, dict) and {"format", "profile", "rules"} <= set(document)


# ------------------------------------------------------------------ planning

def _same_settings(a: bytes, b: bytes, fmt: str) -> bool:
    return documents.plain(_ours(a, fmt)) == documents.plain(_ours(b, fmt))


def _merged_step(target: Target, ours: dict | None, fmt: str, entry: dict | None, trust=None) -> FileStep:
    """ours None: take the install out of this file (uninstall, or the profile dropped it).
    trust: for Codex's config.toml, a function of the merged text giving the hooks' trust."""
    before = read_regular(target.path)
    text = _decode(before, target.path) if before is not None else None
    try:
        document = documents.parse(text, fmt, target.path) if text is not None else documents.empty(fmt)
    except documents.DocumentError as exc:
        raise InstallError(str(exc)) from None
    notes = merge.unapply(document, entry["changes"], fmt) if entry and before is not None else []
    created = entry["created"] if entry else before is None
    original = entry.get("original") if entry else text
    if ours is None:
        if before is None:
            return FileStep(target, None, None, None, notes)
        if created and len(document) == 0:
            return FileStep(target, before, None, None, notes)
        after = documents.dump(document, fmt, like=text)
        if original is not None and _same_settings(after, original.encode(), fmt):
            after = original.encode()  # byte for byte what the user had
        return FileStep(target, before, after, None, notes, backup=True)
    try:
        changes, more = merge.apply(document, ours, target.kind, fmt)
        if trust is not None:
            trusted, note = trust(documents.dump(document, fmt).decode())
            if note:
                more.append(merge.Note("note", (), note))
            if trusted:
                extra, extra_notes = merge.apply(document, trusted, target.kind, fmt)
                changes, more = changes + extra, more + extra_notes
    except merge.MergeConflict as exc:
        raise InstallError(f"{target.path}: {exc}; fix or move it away and run again; nothing was changed") from None
    after = documents.dump(document, fmt, like=text)
    if before is not None and _same_settings(after, before, fmt):
        after = before
    new_entry = {"rendered": target.rendered, "kind": target.kind, "format": fmt, "created": created,
                 "changes": changes, "original": original}
    return FileStep(target, before, after, new_entry, notes + more, backup=before is not None)


def _owned_step(target: Target, content: bytes | None, entry: dict | None) -> FileStep:
    before = read_regular(target.path)
    edited = before is not None and entry is not None and _sha256(before) != entry.get("sha256")
    if content is None:
        return FileStep(target, before, None, None, replaced_edits=edited, backup=edited)
    if before is not None and entry is None and before != content and not _looks_rendered(before):
        raise InstallError(f"{target.path} exists and was not written by render-profiles; move it away (it would be "
                           f"replaced) and run again; nothing was changed")
    new_entry = {"rendered": target.rendered, "kind": "owned", "sha256": _sha256(content)}
    replaced = edited and before != content
    return FileStep(target, before, content, new_entry, replaced_edits=replaced, backup=replaced)


def _load_state(path: Path) -> tuple[bytes | None, dict | None]:
    data = read_regular(path)
    try:
        return data, state.parse(_decode(data, path) if data is not None else None, path)
    except state.StateError as exc:
        raise InstallError(str(exc)) from None


def _check_layer(layer: str) -> None:
    if layer == "system" and os.geteuid() != 0:
        raise InstallError("--system writes the CLIs' admin layer (/etc/claude-code, /etc/codex, /etc/gemini-cli), "
                           "which only root may write; that is what keeps the agent, running as you, from changing "
                           "it. Run it with sudo")


def _hook_commands(document) -> set[str]:
    if isinstance(document, dict):
        return set().union(*(_hook_commands(v) for v in document.values())) if document else set()
    if isinstance(document, list):
        return set().union(*(_hook_commands(v) for v in document)) if document else set()
    return {document} if isinstance(document, str) and " hook " in document and "agent-guard" in document else set()


def _codex_trust(target: Target, env: Mapping[str, str]):
    codex = hooks.codex_program(env)

    def trust(config_text: str):
        commands = {c for c in _hook_commands(documents.plain(tomllib.loads(config_text))) if " hook codex" in c}
        if not commands:
            return None, ""
        if codex is None:
            return None, ("codex is not on PATH, so its hash for the agent-guard hook could not be recorded: Codex "
                          "runs the hook only after you trust it (start codex, then /hooks), or install with --system")
        try:
            return hooks.codex_trust(config_text, target.path, commands, codex), ""
        except hooks.HookError as exc:
            return None, f"the agent-guard hook's trust was not recorded ({exc}): trust it in codex under /hooks"
    return trust


def plan_install(root: Path, profile: str, home: Path, env: Mapping[str, str], layer: str = "user",
                 guard: str | None = None) -> Plan:
    _check_layer(layer)
    model = load(profile, root)
    if model.bypass:
        raise InstallError(
            f"profile '{profile}' bypasses approvals; bypass configs are written only into an image root "
            f"(render-profiles --image-root DIR), never into a home folder or /etc")
    state_path = locations.state_path(layer, home)
    state_before, old = _load_state(state_path)
    if old is not None and old.get("profile") != profile:
        raise InstallError(f"{state_path}: profile '{old.get('profile')}' is installed; run render-profiles --uninstall "
                           f"{'--system ' if layer == 'system' else ''}first")
    old_files = old["files"] if old else {}
    steps: list[FileStep] = []
    seen: set[str] = set()
    outputs = {r: out for r, out in render_profile(model).items() if r.startswith("~/") == (layer == "user")}
    documents_of = {r: _ours(out.content, out.format) for r, out in outputs.items() if out.format in ("json", "toml")}
    guard_at = None
    if any(_hook_commands(d) for d in documents_of.values()):
        try:
            guard_at = hooks.guard_path(guard, env)
        except hooks.HookError as exc:
            raise InstallError(str(exc)) from None
    for rendered, out in outputs.items():
        try:
            target = locations.target(rendered, home, env)
        except locations.LocationError as exc:
            raise InstallError(str(exc)) from None
        key = str(target.path)
        seen.add(key)
        entry = old_files.get(key)
        if target.merged:
            ours = hooks.localize(documents_of[rendered], guard_at) if guard_at else documents_of[rendered]
            trust = _codex_trust(target, env) if target.kind == "codex-config" else None
            steps.append(_merged_step(target, ours, out.format, entry, trust))
        else:
            content = out.content
            if guard_at and out.format == "json" and _hook_commands(json.loads(content)):
                content = to_json(hooks.localize(json.loads(content), guard_at))
            steps.append(_owned_step(target, content, entry))
    steps += _forget_steps({k: v for k, v in old_files.items() if k not in seen}, layer)
    if layer == "system" and not steps:
        raise InstallError(f"profile '{profile}' renders nothing for the admin layer")
    new_state = state.empty(profile, layer)
    new_state["files"] = {str(step.target.path): step.entry for step in steps if step.entry is not None}
    new_state["folders"] = old["folders"] if old else []
    return Plan("install", layer, profile, home, steps, state_path, state_before, state.dump(new_state))


def _forget_steps(entries: Mapping[str, dict], layer: str) -> list[FileStep]:
    steps = []
    for path, entry in entries.items():
        target = Target(entry["rendered"], Path(path), entry["kind"], layer)
        if target.merged:
            steps.append(_merged_step(target, None, entry["format"], entry))
        else:
            steps.append(_owned_step(target, None, entry))
    return steps


def plan_uninstall(home: Path, layer: str = "user") -> Plan:
    _check_layer(layer)
    state_path = locations.state_path(layer, home)
    state_before, old = _load_state(state_path)
    if old is None:
        raise InstallError(f"nothing to uninstall: no install state at {state_path}")
    for path, entry in old["files"].items():
        expected = locations.MERGED.get(entry["rendered"], "owned" if locations.is_owned(entry["rendered"]) else None)
        if expected != entry["kind"] or not locations.could_be(path, entry["rendered"]):
            raise InstallError(f"{state_path}: files.{path} is not a file the install writes ({entry['rendered']}, "
                               f"{entry['kind']}); the state file was changed by someone else: check it, or move it "
                               f"away and remove the files by hand")
    return Plan("uninstall", layer, old.get("profile", "?"), home, _forget_steps(old["files"], layer),
                state_path, state_before, None)


# ------------------------------------------------------------------ writing

def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _check_system_folders(path: Path) -> None:
    """Every existing folder above an admin file must be root's and writable by root only: the
    CLIs skip (Gemini) or should not trust anything else, and it keeps the agent out."""
    for folder in path.parents:
        try:
            info = folder.lstat()
        except FileNotFoundError:
            continue
        if os.path.stat.S_ISLNK(info.st_mode):
            raise InstallError(f"{folder} is a symbolic link; the admin layer is written only into real folders")
        if info.st_uid != 0 or info.st_mode & 0o022:
            raise InstallError(f"{folder} is owned by uid {info.st_uid} with mode {info.st_mode & 0o777:04o}; the admin "
                               f"layer needs folders owned by root and writable by root only (chown root {folder}; "
                               f"chmod go-w {folder})")


def _make_folders(path: Path, mode: int, created: list[str]) -> None:
    missing = []
    for folder in [path.parent, *path.parent.parents]:
        if folder.exists() or folder.is_symlink():
            break
        missing.append(folder)
    for folder in reversed(missing):
        folder.mkdir(mode=mode)
        os.chmod(folder, mode)
        created.append(str(folder))


def execute(plan: Plan) -> list[str]:
    """Write the plan; return the backups made. All or nothing: a failed write puts back the
    files written before it."""
    system = plan.layer == "system"
    file_mode, folder_mode = 0o644, 0o755
    if system:
        for step in plan.changed:
            _check_system_folders(step.target.path)
    stamp = _stamp()
    written: list[tuple[Path, bytes | None, int | None]] = []
    backups: list[str] = []
    created_folders: list[str] = []
    try:
        for step in plan.changed:
            path = step.target.path
            mode = None
            if step.before is not None:
                mode = os.lstat(path).st_mode & 0o777
                if step.backup:
                    backup = path.with_name(f"{path.name}.agent-sandbox-backup-{stamp}")
                    shutil.copy2(path, backup, follow_symlinks=False)
                    backups.append(str(backup))
            written.append((path, step.before, mode))
            if step.after is None:
                path.unlink()
            else:
                _make_folders(path, folder_mode, created_folders)
                write_file_atomic(path, step.after, mode if mode is not None else file_mode)
        state_data = _state_with_folders(plan, created_folders)
        written.append((plan.state_path, plan.state_before, 0o600))
        if state_data is None:
            if plan.state_before is not None:
                plan.state_path.unlink()
        else:
            _make_folders(plan.state_path, 0o700 if not system else 0o755, [])
            write_file_atomic(plan.state_path, state_data, 0o600)
    except BaseException:
        for path, before, mode in reversed(written):
            if before is None:
                path.unlink(missing_ok=True)
            else:
                write_file_atomic(path, before, mode or file_mode)
        raise
    if plan.action == "uninstall":
        _remove_empty_folders(plan)
    return backups


def _state_with_folders(plan: Plan, created: list[str]) -> bytes | None:
    if plan.state_after is None:
        return None
    data = json.loads(plan.state_after)
    data["folders"] = list(dict.fromkeys([*data.get("folders", []), *created]))
    return state.dump(data)


def _remove_empty_folders(plan: Plan) -> None:
    old = json.loads(plan.state_before) if plan.state_before else {}
    for folder in sorted(old.get("folders", []), key=len, reverse=True):
        try:
            os.rmdir(folder)
        except OSError:
            pass  # not empty (the user's or a CLI's files): left as it is


# ------------------------------------------------------------------ the command

def run(root: Path, profile: str | None, home: Path, env: Mapping[str, str], *, uninstall: bool = False,
        system: bool = False, dry_run: bool = False, guard: str | None = None, out=sys.stdout) -> int:
    layer = "system" if system else "user"
    if not system and not home.is_dir():
        raise InstallError(f"home folder {home} does not exist")
    try:
        plan = plan_uninstall(home, layer) if uninstall else plan_install(root, profile, home, env, layer, guard)
    except (locations.LocationError, documents.DocumentError) as exc:
        raise InstallError(str(exc)) from None
    if dry_run:
        out.writelines(report.diff(plan))
    backups = [] if dry_run else execute(plan)
    out.write(report.summary(plan, backups, dry_run=dry_run, system_installed=_system_installed()))
    return 0


def _system_installed() -> bool:
    try:
        return read_regular(Path(locations.SYSTEM_STATE)) is not None
    except InstallError:
        return False


def install(root: Path, profile: str, home: Path) -> int:
    """The old entry point: install into `home` with this process's environment."""
    return run(root, profile, home, os.environ)
