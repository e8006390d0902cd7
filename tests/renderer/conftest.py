import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path):
    """A copy of the project's profiles/ and rendered/ that a test may break."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "profiles", root / "profiles")
    if (REPO / "rendered").exists():
        shutil.copytree(REPO / "rendered", root / "rendered")
    return root


def run_render(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "renderer.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd or REPO, env=env,
    )


def tree_bytes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
