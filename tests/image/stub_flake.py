"""Evaluate a copy of the project's flake with nixpkgs replaced by tests/image/nix-stub,
in a private Nix store and HOME (nothing outside the test's tmp folder is written)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STUB = Path(__file__).resolve().parent / "nix-stub"
FLAKE_FILES = ["flake.nix", "flake.lock", "pyproject.toml", "image/contract.json", "package.json", "package-lock.json"]


def pyproject_dependencies() -> list[str]:
    """The names nix/package.nix derives from pyproject.toml's dependencies (nixpkgs spelling)."""
    specs = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return [re.sub(r"[_.]", "-", re.match(r"\s*([A-Za-z0-9_.-]+)", spec).group(1)).lower() for spec in specs]


def nix_tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} not found: install Debian's nix-bin (.ci/install-image.sh)"
    return path



class StubFlake:
    def __init__(self, tmp_path: Path, contract: dict | None = None) -> None:
        self.dir = tmp_path / "flake"
        for name in FLAKE_FILES:
            (self.dir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, self.dir / name)
        shutil.copytree(ROOT / "nix", self.dir / "nix")
        for extra in ("tests/test_x.py", "docs/x.md", "profiles/common.yaml", "renderer/__init__.py"):
            (self.dir / extra).parent.mkdir(parents=True, exist_ok=True)
            (self.dir / extra).write_text("")
        if contract is not None:
            (self.dir / "image" / "contract.json").write_text(json.dumps(contract))
        self.stub = tmp_path / "stub"
        shutil.copytree(STUB, self.stub)
        (self.stub / "python-packages.json").write_text(json.dumps(pyproject_dependencies()))
        self.store = tmp_path / "store"
        self.env = dict(os.environ, HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"))
        Path(self.env["HOME"]).mkdir()

    def command(self, *args: str) -> list[str]:
        return [
            nix_tool("nix"), *args,
            "--store", str(self.store),
            "--extra-experimental-features", "nix-command flakes",
            "--option", "substituters", "",
            "--no-write-lock-file",
            "--override-input", "nixpkgs", f"path:{self.stub}",
        ]

    def eval(self, attribute: str, apply: str):
        result = subprocess.run(
            [*self.command("eval", "--json", f"path:{self.dir}#{attribute}"), "--apply", apply],
            capture_output=True, text=True, env=self.env, timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)
