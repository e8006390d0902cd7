"""Previewing and restoring a checkpoint (entrypoint/checkpoint/restore.py)."""

import os

import pytest

from checkpoint_repo import git, state, write
from entrypoint.checkpoint import restore
from entrypoint.checkpoint.create import create
from entrypoint.checkpoint.plumbing import CheckpointError


def test_restore_brings_back_staged_unstaged_and_untracked_exactly(repo):
    before = state(repo)
    name = create(str(repo), "claude")
    # The agent's session: edits, deletes, creates, stages and commits.
    write(repo, "unstaged.txt", "agent edit\n")
    os.unlink(repo / "untracked.txt")
    write(repo, "agent-made.txt", "agent\n")
    write(repo, "src/deep/module.py", "x = 2\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "agent commit")
    write(repo, "later.txt", "uncommitted agent file\n")

    with pytest.raises(CheckpointError, match="uncommitted work"):
        restore.restore(str(repo), restore.find(str(repo), name), force=False)
    assert (repo / "later.txt").exists()

    _, safety = restore.restore(str(repo), restore.find(str(repo), name), force=True)
    assert state(repo) == before
    # What was there before the restore is itself a checkpoint.
    assert git(repo, "show", f"refs/agent/checkpoints/{safety}:later.txt") == "uncommitted agent file\n"


def test_restore_without_uncommitted_work_needs_no_force(repo):
    before = state(repo)
    name = create(str(repo), "gemini")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "agent commits everything")
    restore.restore(str(repo), restore.find(str(repo), name), force=False)
    assert state(repo) == before


def test_preview_lists_what_would_change_and_changes_nothing(repo):
    name = create(str(repo), "claude")
    write(repo, "staged.txt", "agent\n")
    os.unlink(repo / "unstaged.txt")
    write(repo, "fresh.txt", "agent\n")
    before = state(repo)
    _repo, current, head_changes, work, index = restore.plan(str(repo), restore.find(str(repo), name))
    os.unlink(current.index_file)
    lines = restore.preview_lines(head_changes, work, index)
    assert lines == ["working tree:", "  delete fresh.txt", "  change staged.txt", "  create unstaged.txt"]
    assert state(repo) == before


def test_a_repository_without_commits_can_be_checkpointed_and_restored(tmp_path):
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, "a.txt", "a\n")
    git(repo, "add", "a.txt")
    write(repo, "b.txt", "b\n")
    before = {p: (repo / p).read_text() for p in ("a.txt", "b.txt")}
    name = create(str(repo), "claude")
    os.unlink(repo / "a.txt")
    write(repo, "c.txt", "c\n")
    restore.restore(str(repo), restore.find(str(repo), name), force=True)
    assert {p: (repo / p).read_text() for p in ("a.txt", "b.txt")} == before
    assert not (repo / "c.txt").exists()
    assert git(repo, "status", "--porcelain") == "A  a.txt\n?? b.txt\n"
