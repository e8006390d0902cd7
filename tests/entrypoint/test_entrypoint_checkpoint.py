"""Checkpoints: recorded without touching the working tree or the index; previewed; restored."""

import hashlib
import os
import subprocess

import pytest

from entrypoint import checkpoint
from entrypoint.checkpoint import CheckpointError

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=GIT_ENV).stdout


def write(repo, name, text):
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def state(repo):
    """Everything a checkpoint must not change and a restore must bring back."""
    files = {}
    for folder, dirs, names in os.walk(repo):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in names:
            path = os.path.join(folder, name)
            files[os.path.relpath(path, repo)] = open(path, "rb").read()
    return {
        "files": files,
        "status": git(repo, "status", "--porcelain=v1", "--untracked-files=all", "--ignored"),
        "staged": git(repo, "diff", "--cached"),
        "unstaged": git(repo, "diff"),
        "head": git(repo, "rev-parse", "HEAD").strip(),
        "branch": git(repo, "symbolic-ref", "-q", "HEAD").strip(),
    }


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


def index_digest(repo):
    return hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest()


def test_creating_a_checkpoint_changes_neither_the_working_tree_nor_the_index(repo):
    before, index_before = state(repo), index_digest(repo)
    name = checkpoint.create(str(repo), "claude")
    assert state(repo) == before
    assert index_digest(repo) == index_before
    assert name.endswith("-claude")
    assert git(repo, "rev-parse", "--verify", "-q", f"refs/agent/checkpoints/{name}").strip()


def test_the_checkpoint_holds_head_index_worktree_and_untracked_not_ignored(repo):
    name = checkpoint.create(str(repo), "codex")
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


def test_restore_brings_back_staged_unstaged_and_untracked_exactly(repo):
    before = state(repo)
    name = checkpoint.create(str(repo), "claude")
    # The agent's session: edits, deletes, creates, stages and commits.
    write(repo, "unstaged.txt", "agent edit\n")
    os.unlink(repo / "untracked.txt")
    write(repo, "agent-made.txt", "agent\n")
    write(repo, "src/deep/module.py", "x = 2\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "agent commit")
    write(repo, "later.txt", "uncommitted agent file\n")

    with pytest.raises(CheckpointError, match="uncommitted work"):
        checkpoint.restore(str(repo), checkpoint.find(str(repo), name), force=False)
    assert (repo / "later.txt").exists()

    _, safety = checkpoint.restore(str(repo), checkpoint.find(str(repo), name), force=True)
    assert state(repo) == before
    # What was there before the restore is itself a checkpoint.
    assert git(repo, "show", f"refs/agent/checkpoints/{safety}:later.txt") == "uncommitted agent file\n"


def test_restore_without_uncommitted_work_needs_no_force(repo):
    before = state(repo)
    name = checkpoint.create(str(repo), "gemini")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "agent commits everything")
    checkpoint.restore(str(repo), checkpoint.find(str(repo), name), force=False)
    assert state(repo) == before


def test_preview_lists_what_would_change_and_changes_nothing(repo):
    name = checkpoint.create(str(repo), "claude")
    write(repo, "staged.txt", "agent\n")
    os.unlink(repo / "unstaged.txt")
    write(repo, "fresh.txt", "agent\n")
    before = state(repo)
    _repo, current, head_changes, work, index = checkpoint.plan(str(repo), checkpoint.find(str(repo), name))
    os.unlink(current.index_file)
    lines = checkpoint.preview_lines(head_changes, work, index)
    assert lines == ["working tree:", "  delete fresh.txt", "  change staged.txt", "  create unstaged.txt"]
    assert state(repo) == before


def test_the_command_lists_previews_and_restores_the_newest_by_default(repo, capsys):
    first = checkpoint.create(str(repo), "claude")
    write(repo, "untracked.txt", "changed after the first\n")
    second = checkpoint.create(str(repo), "codex")
    assert checkpoint.main(["-C", str(repo)]) == 0
    listed = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == [second, first]
    write(repo, "untracked.txt", "changed again\n")
    assert checkpoint.main(["-C", str(repo), "--preview"]) == 0
    assert capsys.readouterr().out == f"restoring {second} would:\nworking tree:\n  change untracked.txt\n"
    assert checkpoint.main(["-C", str(repo), "--checkpoint"]) == 1
    assert "uncommitted work" in capsys.readouterr().err
    assert checkpoint.main(["-C", str(repo), "--checkpoint", first, "--force"]) == 0
    assert (repo / "untracked.txt").read_text() == "new\n"


def test_unknown_checkpoint_and_empty_list(repo, capsys):
    assert checkpoint.main(["-C", str(repo), "--checkpoint", "nope"]) == 1
    assert "no checkpoints" in capsys.readouterr().err
    checkpoint.create(str(repo), "claude")
    assert checkpoint.main(["-C", str(repo), "--checkpoint", "nope"]) == 1
    assert "no checkpoint named 'nope'" in capsys.readouterr().err


def test_a_repository_without_commits_can_be_checkpointed_and_restored(tmp_path):
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, "a.txt", "a\n")
    git(repo, "add", "a.txt")
    write(repo, "b.txt", "b\n")
    before = {p: (repo / p).read_text() for p in ("a.txt", "b.txt")}
    name = checkpoint.create(str(repo), "claude")
    os.unlink(repo / "a.txt")
    write(repo, "c.txt", "c\n")
    checkpoint.restore(str(repo), checkpoint.find(str(repo), name), force=True)
    assert {p: (repo / p).read_text() for p in ("a.txt", "b.txt")} == before
    assert not (repo / "c.txt").exists()
    assert git(repo, "status", "--porcelain") == "A  a.txt\n?? b.txt\n"


def test_not_a_repository_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not a git repository"):
        checkpoint.create(str(tmp_path), "claude")
