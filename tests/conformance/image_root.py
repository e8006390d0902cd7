"""An image root as the image holds it, for the real-CLI runs: the rendered config tree plus what
the image installs beside it (the guard, entrypoint and image layout, the gateway's GraphQL policy
with graphql-core, and their commands).

pip puts console scripts under /root here, which uid 1000 cannot read, so the commands are small
wrappers around the system python in isolated mode (-I: no PYTHONPATH, no user site), as the
image's Python would run them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import graphql

REPO = Path(__file__).resolve().parents[2]
PYTHON_DIR = "usr/lib/agent-sandbox/python"
COMMANDS = {
    "agent-guard": "from guard.cli import main",
    "agent-entrypoint": "from entrypoint.main import main",
    "agent-checkpoint": "from entrypoint.checkpoint.cli import main",
}


def wrapper(import_line: str) -> str:
    return (
        "#!/bin/sh\n"
        f"exec /usr/bin/python3 -I -c 'import sys; sys.path.insert(0, \"/{PYTHON_DIR}\"); "
        f"{import_line}; sys.argv[0] = \"$0\"; sys.exit(main())' \"$@\"\n"
    )


def build_image_root(target: Path, profiles: tuple[str, ...] = ("autonomous", "ci")) -> Path:
    args = [a for p in profiles for a in ("--profile", p)]
    subprocess.run([sys.executable, "-m", "renderer.cli", "--root", str(REPO), "--image-root", str(target), *args],
                   check=True, capture_output=True, text=True)
    # image: image/layout.py; egress and graphql-core: the guard judges `gh api graphql` with the
    # gateway's own GraphQL policy, as in the image (without them it refuses every GraphQL call).
    sources = {package: REPO / package for package in ("guard", "entrypoint", "image", "egress")}
    sources["graphql"] = Path(graphql.__file__).parent
    for package, source in sources.items():
        shutil.copytree(source, target / PYTHON_DIR / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    bin_dir = target / "usr/local/bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, import_line in COMMANDS.items():
        path = bin_dir / name
        path.write_text(wrapper(import_line))
        path.chmod(0o755)
    return target
