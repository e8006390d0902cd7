"""Shared by the renderer tests: run render-profiles as a user would, read trees."""

import subprocess
import sys
from pathlib import Path

from renderer.model import load
from renderer.runtime import runtime_profile

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "profiles" / "corpus"


def runtime_of(name: str = "autonomous") -> dict:
    """The runtime profile the image ships for `name`, rendered from the repo's profiles/."""
    return runtime_profile(load(name))


def run_render(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "renderer.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd or REPO, env=env,
    )


def tree_bytes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
