"""Where bypass configs may be written (only into an image root) and atomic tree writes."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

MARKER = ".agent-image-root"
CONFIG_DIRS = (".claude", ".codex", ".gemini", ".claude.json", ".config/claude", ".config/gemini-cli")
CONFIG_ENV = ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME", "GEMINI_CLI_SYSTEM_SETTINGS_PATH")


class RefusedTarget(Exception):
    """A target that is, contains or lies inside a live config location."""


def home_folders() -> set[Path]:
    homes = {Path(os.path.expanduser("~")).resolve()}
    if os.environ.get("HOME"):
        homes.add(Path(os.environ["HOME"]).resolve())
    for entry in pwd.getpwall():
        if entry.pw_dir and entry.pw_dir != "/" and Path(entry.pw_dir).exists():
            homes.add(Path(entry.pw_dir).resolve())
    return homes


def live_locations() -> list[tuple[Path, str]]:
    """(path, why) for every place a CLI reads its settings from on this machine."""
    places: list[tuple[Path, str]] = [
        (Path("/etc"), "/etc holds the CLIs' system and managed settings"),
        (Path("/home"), "/home holds the users' home folders"),
        (Path("/root"), "/root is root's home folder"),
    ]
    for home in sorted(home_folders()):
        places.append((home, f"{home} is a home folder"))
        for sub in CONFIG_DIRS:
            places.append((home / sub, f"{home / sub} is a CLI's user settings"))
    for var in CONFIG_ENV:
        if os.environ.get(var):
            places.append((Path(os.environ[var]).resolve(), f"${var} points at a CLI's settings"))
    return places


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_image_root(target: Path) -> Path:
    """Refuse every route to a live config: the target itself, anything it contains, anything it
    sits in; and any existing folder that was not created as an image root."""
    resolved = target.expanduser().resolve()
    for place, why in live_locations():
        if _within(resolved, place):
            raise RefusedTarget(f"refusing to write bypass configs to {target}: it is inside {place} ({why}); choose a new or empty build folder such as ./build/image-root")
        if _within(place, resolved):
            raise RefusedTarget(f"refusing to write bypass configs to {target}: it contains {place} ({why}); choose a new or empty build folder such as ./build/image-root")
    empty_folder = resolved.is_dir() and not any(resolved.iterdir())
    if resolved.exists() and not empty_folder and not (resolved / MARKER).is_file():
        raise RefusedTarget(
            f"refusing to write into {target}: it is not empty and was not created as an image root (no {MARKER}); "
            f"give a new or empty folder and render-profiles will fill it"
        )
    return resolved


def _write_files(folder: Path, files: dict[str, bytes], modes: dict[str, int] | None = None) -> None:
    for name, content in files.items():
        path = folder / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        if modes and name in modes:
            path.chmod(modes[name])


def replace_tree(target: Path, files: dict[str, bytes], modes: dict[str, int] | None = None, marker: bool = False) -> None:
    """Build the whole tree beside the target, then swap it in with renames: all or nothing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    try:
        _write_files(staging, files, modes)
        if marker:
            (staging / MARKER).write_text("created by render-profiles --image-root\n")
        staging.chmod(0o755)
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rename(target, retired / "tree")
            os.rename(staging, target)
            shutil.rmtree(retired)
        else:
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_image_root(target: Path, files: dict[str, bytes], modes: dict[str, int]) -> None:
    replace_tree(target, files, modes, marker=True)


def write_file_atomic(path: Path, content: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
