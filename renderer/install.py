"""render-profiles --install: merge an interactive profile into the user's own files.

Never a bypass profile. Existing files are backed up, unrelated keys the user set are kept (merge,
not clobber), and every file is parsed and merged in memory before the first one is written.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from datetime import datetime, timezone
from pathlib import Path

from renderer.model import load
from renderer.outputs import render_profile, to_json, to_toml
from renderer.paths import write_file_atomic


class InstallError(Exception):
    pass


def merge(existing: object, ours: object) -> object:
    """Mappings merge key by key, lists keep the user's entries and add ours, scalars: ours."""
    if isinstance(existing, dict) and isinstance(ours, dict):
        out = dict(existing)
        for key, value in ours.items():
            out[key] = merge(existing[key], value) if key in existing else value
        return out
    if isinstance(existing, list) and isinstance(ours, list):
        return existing + [item for item in ours if item not in existing]
    return ours


def _parse(path: Path, fmt: str) -> object:
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text) if fmt == "json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InstallError(f"{path}: not valid {fmt.upper()} ({exc}); fix or move it away and run again; nothing was changed") from None


def plan(root: Path, profile: str, home: Path) -> list[tuple[Path, bytes, bool]]:
    model = load(profile, root)
    if model.bypass:
        raise InstallError(
            f"profile '{profile}' bypasses approvals; bypass configs are written only into an image root "
            f"(render-profiles --image-root DIR), never into a home folder"
        )
    steps = []
    for path, out in render_profile(model).items():
        target = home / path.removeprefix("~/")
        content = out.content
        if target.exists() and out.format in ("json", "toml"):
            ours = json.loads(out.content) if out.format == "json" else tomllib.loads(out.content.decode())
            merged = merge(_parse(target, out.format), ours)
            content = to_json(merged) if out.format == "json" else to_toml(merged)
        steps.append((target, content, target.exists()))
    return steps


def install(root: Path, profile: str, home: Path) -> int:
    if not home.is_dir():
        raise InstallError(f"home folder {home} does not exist")
    steps = plan(root, profile, home)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for target, content, existed in steps:
        if existed and target.read_bytes() == content:
            print(f"unchanged {target}")
            continue
        if existed:
            backup = target.with_name(f"{target.name}.agent-sandbox-backup-{stamp}")
            shutil.copy2(target, backup)
            print(f"backed up {target} -> {backup.name}")
        write_file_atomic(target, content, 0o644)
        print(f"{'merged into' if existed else 'wrote'} {target}")
    return 0
