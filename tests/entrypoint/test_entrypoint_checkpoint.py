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


def trees(repo, commit):
    """The checkpoint's tree, its index commit's tree, its first parent and its message."""
    parents = git(repo, "rev-list", "--parents", "-n1", commit).split()[1:]
    work_tree, index_tree = git(repo, "rev-parse", f"{commit}^{{tree}}", f"{parents[-1]}^{{tree}}").split()
    return work_tree, index_tree, parents[:-1], git(repo, "log", "-1", "--format=%B", commit)


def both_paths(repo):
    """The fast path's commit and `git add`'s (the general path) for the same state."""
    opened = checkpoint.open_repo(str(repo))
    fast = checkpoint.fast_checkpoint_commit(opened, "claude", "agent checkpoint", 1_800_000_000)
    general = checkpoint._commit(opened, checkpoint.take_snapshot(opened), "agent checkpoint", "claude")
    return trees(repo, fast), trees(repo, general)


def test_the_fast_path_records_exactly_what_git_add_records(repo):
    os.symlink("staged.txt", repo / "link")
    write(repo, "run.sh", "#!/bin/sh\n")
    os.chmod(repo / "run.sh", 0o755)
    write(repo, "empty", "")
    write(repo, 'odd "name"\twith\\ spaces\nand a newline', "odd\n")
    write(repo, "ünïcode/fïle.txt", "u\n")
    git(repo, "rm", "-q", "--cached", "src/deep/module.py")  # staged deletion, file kept: untracked now
    os.unlink(repo / "unstaged.txt")
    write(repo, "unstaged.txt/now-a-folder.txt", "file turned folder\n")
    os.makedirs(repo / "nested")
    git(repo / "nested", "init", "-q")
    write(repo, "nested/inside.txt", "a nested repository is not recorded\n")
    before, index_before = state(repo), index_digest(repo)
    fast, general = both_paths(repo)
    assert fast == general
    assert state(repo) == before and index_digest(repo) == index_before
    listed = git(repo, "ls-tree", "-r", "--name-only", fast[0])
    assert "nested" not in listed and "unstaged.txt/now-a-folder.txt" in listed


def test_the_fast_path_matches_on_a_repository_without_commits(tmp_path):
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, "a.txt", "a\n")
    git(repo, "add", "a.txt")
    write(repo, "a.txt", "a, changed\n")
    write(repo, "b.txt", "b\n")
    fast, general = both_paths(repo)
    assert fast == general and fast[2] == []


@pytest.mark.parametrize("setup", ["attributes", "attributes-in-index-only", "autocrlf", "filemode", "conflict",
                                   "intent-to-add"])
def test_what_git_add_would_transform_takes_the_general_path(repo, setup):
    if setup.startswith("attributes"):
        write(repo, ".gitattributes", "*.txt text\n")
        (repo / "unstaged.txt").write_bytes(b"crlf\r\nlines\r\n")
        if setup == "attributes-in-index-only":
            git(repo, "add", ".gitattributes")
            os.unlink(repo / ".gitattributes")
    elif setup == "autocrlf":
        git(repo, "config", "core.autocrlf", "input")
        (repo / "unstaged.txt").write_bytes(b"crlf\r\nlines\r\n")
    elif setup == "filemode":
        git(repo, "config", "core.filemode", "false")
        os.chmod(repo / "unstaged.txt", 0o755)
    elif setup == "conflict":
        git(repo, "stash", "-q", "--include-untracked")
        git(repo, "checkout", "-q", "-b", "other")
        write(repo, "staged.txt", "other\n")
        git(repo, "commit", "-qam", "other")
        git(repo, "checkout", "-q", "main")
        write(repo, "staged.txt", "main\n")
        git(repo, "commit", "-qam", "main")
        subprocess.run(["git", "-C", str(repo), "merge", "-q", "other"], capture_output=True, env=GIT_ENV)
    else:
        write(repo, "later.txt", "intent\n")
        git(repo, "add", "-N", "later.txt")
    opened = checkpoint.open_repo(str(repo))
    with pytest.raises(checkpoint.SlowPath):
        checkpoint.fast_checkpoint_commit(opened, "claude", "agent checkpoint", 1_800_000_000)
    name = checkpoint.create(str(repo), "claude")
    general = checkpoint._commit(opened, checkpoint.take_snapshot(opened), "agent checkpoint", "claude")
    assert trees(repo, f"refs/agent/checkpoints/{name}")[:3] == trees(repo, general)[:3]
    if setup.startswith("attributes") or setup == "autocrlf":
        assert git(repo, "show", f"refs/agent/checkpoints/{name}:unstaged.txt") == "crlf\nlines\n"


def test_a_change_in_the_same_second_as_the_index_is_still_recorded(repo):
    """Racy git: same size, same mtime as recorded in the index, index written that same second.
    Only a content check finds it, and git does one only while the index file keeps its mtime."""
    git(repo, "config", "core.trustctime", "false")
    moment = 1_700_000_000
    write(repo, "same-second.txt", "aaaa\n")
    os.utime(repo / "same-second.txt", (moment, moment))
    git(repo, "add", "same-second.txt")
    write(repo, "same-second.txt", "bbbb\n")
    os.utime(repo / "same-second.txt", (moment, moment))
    os.utime(repo / ".git" / "index", (moment, moment))
    name = checkpoint.create(str(repo), "claude")
    assert git(repo, "show", f"refs/agent/checkpoints/{name}:same-second.txt") == "bbbb\n"
    opened = checkpoint.open_repo(str(repo))
    general = checkpoint._commit(opened, checkpoint.take_snapshot(opened), "agent checkpoint", "claude")
    assert git(repo, "show", f"{general}:same-second.txt") == "bbbb\n"


@pytest.fixture
def trusting_clock(monkeypatch):
    """Every file counts as old enough to be trusted by its stat data (no waiting in tests)."""
    monkeypatch.setattr(checkpoint, "RACY_MARGIN_NS", -10**18)


def matches_general_path(repo, name):
    opened = checkpoint.open_repo(str(repo))
    general = checkpoint._commit(opened, checkpoint.take_snapshot(opened), "agent checkpoint", "claude")
    return trees(repo, f"refs/agent/checkpoints/{name}")[:3] == trees(repo, general)[:3]


def test_repeated_checkpoints_reuse_what_is_unchanged_and_record_every_change(repo, trusting_clock):
    first = checkpoint.create(str(repo), "claude")
    assert (repo / ".git" / checkpoint.CACHE_FILE).exists()
    second = checkpoint.create(str(repo), "claude")
    assert trees(repo, f"refs/agent/checkpoints/{second}")[:2] == trees(repo, f"refs/agent/checkpoints/{first}")[:2]
    assert matches_general_path(repo, second)
    steps = [
        lambda: write(repo, "notes/another.md", "new untracked\n"),
        lambda: os.unlink(repo / "untracked.txt"),
        lambda: git(repo, "add", "unstaged.txt"),
        lambda: write(repo, "both.txt", "edited again\n"),
        lambda: os.chmod(repo / "both.txt", 0o755),
    ]
    for step in steps:
        step()
        assert matches_general_path(repo, checkpoint.create(str(repo), "claude"))


def test_a_same_size_change_with_the_old_mtime_is_not_hidden_by_the_cache(repo, trusting_clock):
    """Only the ctime tells this change apart: an editor (or an agent) may restore the mtime."""
    checkpoint.create(str(repo), "claude")
    before = os.stat(repo / "untracked.txt")
    (repo / "untracked.txt").write_text("NEW\n")
    os.utime(repo / "untracked.txt", ns=(before.st_atime_ns, before.st_mtime_ns))
    name = checkpoint.create(str(repo), "claude")
    assert git(repo, "show", f"refs/agent/checkpoints/{name}:untracked.txt") == "NEW\n"


def test_files_changed_just_before_the_checkpoint_are_not_trusted_by_stat():
    now = 1_800_000_000 * 10**9
    assert checkpoint.cacheable([now - 3 * 10**9, now - 3 * 10**9, 5, 1, 1, 0o100644], now)
    assert not checkpoint.cacheable([now - 3 * 10**9, now - 10**9, 5, 1, 1, 0o100644], now)
    assert not checkpoint.cacheable([now, now - 3 * 10**9, 5, 1, 1, 0o100644], now)


def test_a_stale_or_broken_cache_never_changes_what_is_recorded(repo, trusting_clock):
    import json
    cache_file = repo / ".git" / checkpoint.CACHE_FILE
    checkpoint.create(str(repo), "claude")
    cache = json.loads(cache_file.read_text())
    # Commits and blobs it names are gone (the checkpoints were deleted and pruned).
    cache["commit"] = cache["index_commit"] = "1" * 40
    cache_file.write_text(json.dumps(cache))
    assert matches_general_path(repo, checkpoint.create(str(repo), "claude"))
    cache = json.loads(cache_file.read_text())
    cache["head"] = "elsewhere"
    cache["files"] = {path: [entry[0], entry[1], "2" * 40] for path, entry in cache["files"].items()}
    cache_file.write_text(json.dumps(cache))
    assert matches_general_path(repo, checkpoint.create(str(repo), "claude"))
    cache = json.loads(cache_file.read_text())
    cache["index_tree"] = "3" * 40  # same HEAD and index, but the index tree it names is gone
    cache["status"] = "another state"
    cache_file.write_text(json.dumps(cache))
    assert matches_general_path(repo, checkpoint.create(str(repo), "claude"))
    cache_file.write_text("{not json")
    assert matches_general_path(repo, checkpoint.create(str(repo), "claude"))


def test_a_checkpoint_while_the_users_git_holds_the_index_lock(repo):
    """The user's git may be writing the index: the checkpoint reads the last complete one and
    neither waits for nor touches the lock."""
    lock = repo / ".git" / "index.lock"
    lock.write_bytes(b"half-written by another git")
    before, index_before = state(repo), index_digest(repo)
    name = checkpoint.create(str(repo), "claude")
    assert lock.read_bytes() == b"half-written by another git"
    lock.unlink()
    assert state(repo) == before and index_digest(repo) == index_before
    assert matches_general_path(repo, name)


def test_a_sha256_repository_takes_the_general_path(tmp_path):
    repo = tmp_path / "sha256"
    repo.mkdir()
    git(repo, "init", "-q", "--object-format=sha256", "-b", "main")
    write(repo, "a.txt", "a\n")
    opened = checkpoint.open_repo(str(repo))
    with pytest.raises(checkpoint.SlowPath):
        checkpoint.fast_checkpoint_commit(opened, "claude", "agent checkpoint", 1_800_000_000)
    name = checkpoint.create(str(repo), "claude")
    assert git(repo, "show", f"refs/agent/checkpoints/{name}:a.txt") == "a\n"
