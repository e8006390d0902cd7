"""The README's commands, from a terminal: the install scripts finish instead of stopping themselves."""
from __future__ import annotations

from pathlib import Path

from .terminal import run_on_terminal

REPO = Path(__file__).resolve().parents[2]


def test_install_clis_finishes_on_a_terminal_and_checks_all_three_clis():
    run = run_on_terminal(["bash", ".ci/install-clis.sh"], cwd=REPO, deadline=120)
    assert run.returncode is not None, f"still running after 120 s on a terminal:\n{run.output[-2000:]}"
    assert run.returncode == 0, run.output[-2000:]
    for cli in ("claude", "codex", "gemini"):
        assert f"install-clis: {cli} " in run.output and " ok" in run.output, run.output[-2000:]


def test_the_demo_finishes_on_a_terminal():
    run = run_on_terminal(["bash", "demo/run.sh"], cwd=REPO, deadline=300)
    assert run.returncode is not None, f"still running after 300 s on a terminal:\n{run.output[-3000:]}"
    assert run.returncode == 0, run.output[-3000:]
    assert "REFUSED by rule git-push-force" in run.output, run.output[-3000:]
    assert "\x1b[32m" in run.output     # on a terminal, colour (green for what ran as it should)
