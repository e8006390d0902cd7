"""The podman commands a run's teardown is made of, and the run record: shared by the run itself
(launcher/execute.py), a sweep, and the guardian that tears a run down when agent-run dies."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

from launcher.plan import RunError


def run_command(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    # A session of its own: a second Ctrl-C on the terminal must not kill the teardown's commands.
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                              start_new_session=True)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout:.0f} s")


def must(argv: list[str], timeout: float = 120) -> None:
    done = run_command(argv, timeout)
    if done.returncode != 0:
        raise RunError(f"{shlex.join(argv[:4])}... failed ({done.returncode}): {done.stderr.strip()[-800:]}")


def _gone(done: subprocess.CompletedProcess) -> bool:
    text = done.stderr.lower()
    return done.returncode == 0 or "no such" in text or "not found" in text or "is not connected" in text


def remove_all(commands: list) -> list[str]:
    """Every container and network, each on its own; podman sometimes needs a second go right
    after a container exits (its storage is still busy)."""
    problems = []
    for argv in commands:
        for attempt in range(4):
            done = run_command(argv, 60)
            if _gone(done):
                break
            time.sleep(1 + attempt)
        else:
            problems.append(f"teardown: {shlex.join(argv)} failed: {done.stderr.strip()[-200:]}")
    return problems


def write_record(path: Path, fields: dict) -> None:
    current = {}
    if path.exists():
        current = json.loads(path.read_text())
    current.update(fields)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
