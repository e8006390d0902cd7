import os

import pytest

from checkpoint_repo import git, write
from entrypoint.checkpoint import fastpath


@pytest.fixture
def repo(tmp_path):
    """A repository with staged, unstaged, untracked and ignored changes on top of one commit."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, ".gitignore", "*.log\nbuild/\n")
    write(repo, "staged.txt", "one\n")
    write(repo, "unstaged.txt", "one\n")
    write(repo, "both.txt", "one\n")
    write(repo, "deleted.txt", "bye\n")
    write(repo, "src/deep/module.py", "x = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    write(repo, "staged.txt", "two (staged)\n")
    git(repo, "add", "staged.txt")
    write(repo, "both.txt", "two (staged)\n")
    git(repo, "add", "both.txt")
    write(repo, "both.txt", "three (unstaged on top of staged)\n")
    write(repo, "unstaged.txt", "two (unstaged)\n")
    os.unlink(repo / "deleted.txt")
    write(repo, "untracked.txt", "new\n")
    write(repo, "notes/untracked-deep.md", "deep\n")
    write(repo, "debug.log", "ignored\n")
    write(repo, "build/out.bin", "ignored\n")
    return repo


@pytest.fixture
def trusting_clock(monkeypatch):
    """Every file counts as old enough to be trusted by its stat data (no waiting in tests)."""
    monkeypatch.setattr(fastpath, "RACY_MARGIN_NS", -10**18)
