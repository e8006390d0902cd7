"""The fast path (entrypoint/checkpoint/fastpath.py) records exactly what `git add` records, takes
the general path for whatever git would transform, and its stat cache never hides a change."""

import json
import os
import subprocess

import pytest

from checkpoint_repo import GIT_ENV, git, index_digest, state, trees, write
from entrypoint.checkpoint import fastpath, plumbing
from entrypoint.checkpoint.create import create, take_snapshot


def both_paths(repo):
    """The fast path's commit and `git add`'s (the general path) for the same state."""
    opened = plumbing.open_repo(str(repo))
    fast = fastpath.fast_checkpoint_commit(opened, "claude", "agent checkpoint", 1_800_000_000)
    general = plumbing.commit_snapshot(opened, take_snapshot(opened), "agent checkpoint", "claude")
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
    opened = plumbing.open_repo(str(repo))
    with pytest.raises(fastpath.SlowPath):
        fastpath.fast_checkpoint_commit(opened, "claude", "agent checkpoint", 1_800_000_000)
    name = create(str(repo), "claude")
    general = plumbing.commit_snapshot(opened, take_snapshot(opened), "agent checkpoint", "claude")
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
    name = create(str(repo), "claude")
    assert git(repo, "show", f"refs/agent/checkpoints/{name}:same-second.txt") == "bbbb\n"
    opened = plumbing.open_repo(str(repo))
    general = plumbing.commit_snapshot(opened, take_snapshot(opened), "agent checkpoint", "claude")
    assert git(repo, "show", f"{general}:same-second.txt") == "bbbb\n"


def matches_general_path(repo, name):
    opened = plumbing.open_repo(str(repo))
    general = plumbing.commit_snapshot(opened, take_snapshot(opened), "agent checkpoint", "claude")
    return trees(repo, f"refs/agent/checkpoints/{name}")[:3] == trees(repo, general)[:3]


def test_repeated_checkpoints_reuse_what_is_unchanged_and_record_every_change(repo, trusting_clock):
    first = create(str(repo), "claude")
    assert (repo / ".git" / fastpath.CACHE_FILE).exists()
    second = create(str(repo), "claude")
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
        assert matches_general_path(repo, create(str(repo), "claude"))


def test_a_same_size_change_with_the_old_mtime_is_not_hidden_by_the_cache(repo, trusting_clock):
    """Only the ctime tells this change apart: an editor (or an agent) may restore the mtime."""
    create(str(repo), "claude")
    before = os.stat(repo / "untracked.txt")
    (repo / "untracked.txt").write_text("NEW\n")
    os.utime(repo / "untracked.txt", ns=(before.st_atime_ns, before.st_mtime_ns))
    name = create(str(repo), "claude")
    assert git(repo, "show", f"refs/agent/checkpoints/{name}:untracked.txt") == "NEW\n"


def test_files_changed_just_before_the_checkpoint_are_not_trusted_by_stat():
    now = 1_800_000_000 * 10**9
    assert fastpath.cacheable([now - 3 * 10**9, now - 3 * 10**9, 5, 1, 1, 0o100644], now)
    assert not fastpath.cacheable([now - 3 * 10**9, now - 10**9, 5, 1, 1, 0o100644], now)
    assert not fastpath.cacheable([now, now - 3 * 10**9, 5, 1, 1, 0o100644], now)


def test_a_stale_or_broken_cache_never_changes_what_is_recorded(repo, trusting_clock):
    cache_file = repo / ".git" / fastpath.CACHE_FILE
    create(str(repo), "claude")
    cache = json.loads(cache_file.read_text())
    # Commits and blobs it names are gone (the checkpoints were deleted and pruned).
    cache["commit"] = cache["index_commit"] = "1" * 40
    cache_file.write_text(json.dumps(cache))
    assert matches_general_path(repo, create(str(repo), "claude"))
    cache = json.loads(cache_file.read_text())
    cache["head"] = "elsewhere"
    cache["files"] = {path: [entry[0], entry[1], "2" * 40] for path, entry in cache["files"].items()}
    cache_file.write_text(json.dumps(cache))
    assert matches_general_path(repo, create(str(repo), "claude"))
    cache = json.loads(cache_file.read_text())
    cache["index_tree"] = "3" * 40  # same HEAD and index, but the index tree it names is gone
    cache["status"] = "another state"
    cache_file.write_text(json.dumps(cache))
    assert matches_general_path(repo, create(str(repo), "claude"))
    cache_file.write_text("{not json")
    assert matches_general_path(repo, create(str(repo), "claude"))


def test_a_checkpoint_while_the_users_git_holds_the_index_lock(repo):
    """The user's git may be writing the index: the checkpoint reads the last complete one and
    neither waits for nor touches the lock."""
    lock = repo / ".git" / "index.lock"
    lock.write_bytes(b"half-written by another git")
    before, index_before = state(repo), index_digest(repo)
    name = create(str(repo), "claude")
    assert lock.read_bytes() == b"half-written by another git"
    lock.unlink()
    assert state(repo) == before and index_digest(repo) == index_before
    assert matches_general_path(repo, name)


def test_a_sha256_repository_takes_the_general_path(tmp_path):
    repo = tmp_path / "sha256"
    repo.mkdir()
    git(repo, "init", "-q", "--object-format=sha256", "-b", "main")
    write(repo, "a.txt", "a\n")
    opened = plumbing.open_repo(str(repo))
    with pytest.raises(fastpath.SlowPath):
        fastpath.fast_checkpoint_commit(opened, "claude", "agent checkpoint", 1_800_000_000)
    name = create(str(repo), "claude")
    assert git(repo, "show", f"refs/agent/checkpoints/{name}:a.txt") == "a\n"
