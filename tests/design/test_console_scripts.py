"""Every console script answers --help and --version (subcommands --help too), with the project's
one version, and without running anything: a user's first two questions of any command."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SCRIPTS = PYPROJECT["project"]["scripts"]
SUBCOMMANDS = {
    "agent-guard": ["classify", "hook", "shim", "explain"],
    "agent-run": ["runs", "review", "apply", "discard"],
}


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    module, _, function = SCRIPTS[name].partition(":")
    code = f"import sys; from {module} import {function}; sys.exit({function}())"
    # AGENT_SANDBOX unset: agent-entrypoint must answer --help without its guards refusing
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": "/nonexistent"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=60)


def test_the_version_has_one_home_held_to_pyproject():
    from guard import __version__

    assert __version__ == PYPROJECT["project"]["version"]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_version_names_the_command_and_the_project_version(name):
    done = run_script(name, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{name} {PYPROJECT['project']['version']}", done.stdout + done.stderr


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_says_how_to_use_it(name):
    done = run_script(name, "--help")
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout and name in done.stdout


@pytest.mark.parametrize("name, sub", [(n, s) for n, subs in SUBCOMMANDS.items() for s in subs])
def test_every_subcommand_has_help(name, sub):
    done = run_script(name, sub, "--help")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "usage:" in done.stdout and sub in done.stdout


def test_every_python_package_is_in_the_wheel():
    """pyproject lists packages by hand (the flake reads the list); a subpackage left out installs
    editable but is missing from the wheel, the image and pre-commit's install."""
    found = sorted(str(init.parent.relative_to(REPO)).replace("/", ".")
                   for top in ("renderer", "entrypoint", "guard", "image", "egress", "launcher")
                   for init in (REPO / top).rglob("__init__.py"))
    assert sorted(PYPROJECT["tool"]["setuptools"]["packages"]) == found
