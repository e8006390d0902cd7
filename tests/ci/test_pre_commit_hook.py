"""The pre-commit hook (.pre-commit-hooks.yaml) as a user's pre-commit runs it: from a repository
that keeps its own profiles/ and rendered/, through pre-commit's own install of this project."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=user@example.com", "-c", "user.name=user", *args],
                   check=True, capture_output=True)


def try_hook(user_repo: Path) -> subprocess.CompletedProcess:
    # try-repo takes this checkout as it is (a shadow copy with its uncommitted changes).
    return subprocess.run(["pre-commit", "try-repo", str(REPO), "render-profiles-check", "--all-files"],
                          cwd=user_repo, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


def test_the_hook_passes_a_clean_render_and_fails_drift_with_the_diff(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    git(user, "init", "-q")
    for folder in ("profiles", "rendered"):  # profiles/ holds the corpus too
        shutil.copytree(REPO / folder, user / folder)
    git(user, "add", "-A")
    git(user, "commit", "-qm", "profiles")

    clean = try_hook(user)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "render-profiles --check" in clean.stdout and "Passed" in clean.stdout

    common = user / "profiles" / "common.yaml"
    common.write_text(common.read_text().replace("Force-pushing rewrites shared history",
                                                 "Force-pushing rewrites everyone's history", 1))
    git(user, "commit", "-qam", "edit a reason, forget to re-render")
    drift = try_hook(user)
    assert drift.returncode == 1, drift.stdout + drift.stderr
    assert "Failed" in drift.stdout
    assert "+" in drift.stdout and "Force-pushing rewrites everyone's history" in drift.stdout
