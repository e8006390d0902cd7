"""Creating a checkpoint (entrypoint/checkpoint/create.py): the working tree and the index stay as
they are, and the checkpoint holds HEAD, the index, the working tree and untracked files."""

import pytest

from checkpoint_repo import git, index_digest, state
from entrypoint.checkpoint.create import create
from entrypoint.checkpoint.plumbing import CheckpointError


def test_creating_a_checkpoint_changes_neither_the_working_tree_nor_the_index(repo):
    before, index_before = state(repo), index_digest(repo)
    name = create(str(repo), "claude")
    assert state(repo) == before
    assert index_digest(repo) == index_before
    assert name.endswith("-claude")
    assert git(repo, "rev-parse", "--verify", "-q", f"refs/agent/checkpoints/{name}").strip()


def test_the_checkpoint_holds_head_index_worktree_and_untracked_not_ignored(repo):
    name = create(str(repo), "codex")
    ref = f"refs/agent/checkpoints/{name}"
    files = set(git(repo, "ls-tree", "-r", "--name-only", ref).split())
    assert files == {".gitignore", "staged.txt", "unstaged.txt", "both.txt", "src/deep/module.py",
                     "untracked.txt", "notes/untracked-deep.md"}
    assert git(repo, "show", f"{ref}:both.txt") == "three (unstaged on top of staged)\n"
    head, index_commit = git(repo, "rev-list", "--parents", "-n1", ref).split()[1:]
    assert head == git(repo, "rev-parse", "HEAD").strip()
    assert git(repo, "show", f"{index_commit}:both.txt") == "two (staged)\n"
    assert git(repo, "show", f"{index_commit}:unstaged.txt") == "one\n"
    assert "deleted.txt" in git(repo, "ls-tree", "-r", "--name-only", index_commit)


def test_not_a_repository_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="is not in a git repository"):
        create(str(tmp_path), "claude")
