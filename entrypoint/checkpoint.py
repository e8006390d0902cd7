"""Checkpoints of a git workspace: HEAD, the index, the working tree and untracked (not ignored)
files, recorded without touching the working tree or the index.

A checkpoint is a commit under refs/agent/checkpoints/<UTC time>-<tool>, built like `git stash`:
its tree is the working tree (taken with a temporary GIT_INDEX_FILE copied from the real index, so
`git add -A` reuses the stat cache), its parents are HEAD and a commit of the index. Trailers
record where HEAD pointed. `agent-checkpoint` lists, previews and restores them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

REF_PREFIX = "refs/agent/checkpoints/"
ZERO = "0" * 40
IDENTITY = {
    "GIT_AUTHOR_NAME": "agent-checkpoint", "GIT_AUTHOR_EMAIL": "agent-checkpoint@localhost",
    "GIT_COMMITTER_NAME": "agent-checkpoint", "GIT_COMMITTER_EMAIL": "agent-checkpoint@localhost",
}


class CheckpointError(Exception):
    pass


@dataclass(frozen=True)
class Repo:
    top: str
    git_dir: str
    head: str | None  # commit, None when unborn
    head_ref: str | None  # refs/heads/x, None when detached

    @property
    def head_tree(self) -> str:
        return f"{self.head}^{{tree}}" if self.head else empty_tree(self)


@dataclass(frozen=True)
class Snapshot:
    work_tree: str
    index_tree: str
    index_file: str | None  # the temporary index holding work_tree with fresh stat data


@dataclass(frozen=True)
class Checkpoint:
    name: str
    commit: str
    date: str
    tool: str
    work_tree: str
    index_tree: str
    head: str | None
    head_ref: str | None


def _git_command(repo_dir: str, args: tuple, top: str | None) -> list[str]:
    # The workspace may belong to another uid (a bind mount); these calls only read it and write
    # refs and objects, so trust it for them. No hooks, no fsmonitor program from the repo config.
    return ["git", "-c", f"safe.directory={top or repo_dir}", "-c", "core.fsmonitor=false",
            "-c", "core.hooksPath=/dev/null", "-C", repo_dir, *args]


def _git_env(env: dict | None) -> dict:
    full_env = dict(os.environ)
    full_env.update(IDENTITY)
    if env:
        full_env.update(env)
    return full_env


def _failure(args: tuple, stderr: bytes, code: int) -> CheckpointError:
    while args[:1] == ("-c",):
        args = args[2:]
    message = stderr.decode("utf-8", "replace").strip().splitlines()
    return CheckpointError(f"git {' '.join(args[:2])} failed: {message[-1] if message else code}")


def git(repo_dir: str, *args: str, env: dict | None = None, check: bool = True, top: str | None = None,
        stdin: bytes | None = None) -> str:
    try:
        done = subprocess.run(_git_command(repo_dir, args, top), capture_output=True, env=_git_env(env),
                              input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)
    except FileNotFoundError:
        raise CheckpointError("git is not installed")
    if check and done.returncode != 0:
        raise _failure(args, done.stderr, done.returncode)
    return done.stdout.decode("utf-8", "surrogateescape").strip()


class Background:
    """A git command running while others do (the snapshot's steps use both cores)."""

    def __init__(self, repo_dir: str, *args: str, env: dict | None = None):
        self.args = args
        try:
            self.process = subprocess.Popen(_git_command(repo_dir, args, None), stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_git_env(env))
        except FileNotFoundError:
            raise CheckpointError("git is not installed")

    def result(self, check: bool = True) -> bytes:
        stdout, stderr = self.process.communicate()
        if check and self.process.returncode != 0:
            raise _failure(self.args, stderr, self.process.returncode)
        return stdout if self.process.returncode == 0 else b""


def open_repo(workspace: str) -> Repo:
    out = git(workspace, "rev-parse", "--show-toplevel", "--absolute-git-dir", top=workspace)
    top, git_dir = out.splitlines()[:2]
    head = git(top, "rev-parse", "-q", "--verify", "HEAD^{commit}", check=False) or None
    head_ref = git(top, "symbolic-ref", "-q", "HEAD", check=False) or None
    return Repo(top, git_dir, head, head_ref)


def empty_tree(repo: Repo) -> str:
    return git(repo.top, "hash-object", "-w", "-t", "tree", "--stdin", stdin=b"")


def _index_copy(repo: Repo, purpose: str) -> str:
    handle, path = tempfile.mkstemp(prefix=f"agent-checkpoint-{purpose}-", dir=repo.git_dir)
    os.close(handle)
    real_index = os.path.join(repo.git_dir, "index")
    if os.path.exists(real_index):
        # A copy keeps the stat cache, so git re-reads only files that changed.
        shutil.copyfile(real_index, path)
    else:
        os.unlink(path)  # git treats a missing index as empty
    return path


def take_snapshot(repo: Repo, keep_index: bool = False) -> Snapshot:
    """Trees of the index and of the working tree (with untracked, not ignored files).

    Three git processes run at once: write-tree of an index copy, `add -u` on a second copy, and
    the untracked listing; the untracked files are then added to the second copy.
    """
    index_copy = _index_copy(repo, "index")
    work_index = _index_copy(repo, "work")
    try:
        index_writer = Background(repo.top, "write-tree", env={"GIT_INDEX_FILE": index_copy})
        tracked = Background(repo.top, "add", "--update", "--", ":/", env={"GIT_INDEX_FILE": work_index})
        untracked = Background(repo.top, "ls-files", "-z", "--others", "--exclude-standard", "--", ":/")
        listing = untracked.result()
        tracked.result()
        index_tree = index_writer.result(check=False).decode().strip()
        if not index_tree:  # unmerged paths: record HEAD's tree for the index
            index_tree = git(repo.top, "rev-parse", repo.head_tree)
        env = {"GIT_INDEX_FILE": work_index}
        if listing:
            git(repo.top, "update-index", "--add", "-z", "--stdin", env=env, stdin=listing)
        work_tree = git(repo.top, "write-tree", env=env)
    except BaseException:
        _remove(work_index)
        raise
    finally:
        _remove(index_copy)
    if not keep_index:
        _remove(work_index)
        work_index = None
    return Snapshot(work_tree, index_tree, work_index)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _commit(repo: Repo, snapshot: Snapshot, title: str, tool: str) -> str:
    head_parent = ["-p", repo.head] if repo.head else []
    index_commit = git(repo.top, "commit-tree", snapshot.index_tree, *head_parent, "-m", f"index of {title}")
    message = (f"{title}\n\nAgent-Tool: {tool}\nAgent-Head: {repo.head or 'unborn'}\n"
               f"Agent-Head-Ref: {repo.head_ref or 'detached'}\n")
    return git(repo.top, "commit-tree", snapshot.work_tree, *head_parent, "-p", index_commit, "-m", message)


def _store(repo: Repo, commit: str, tool: str, now: float | None) -> str:
    moment = time.time() if now is None else now
    # Milliseconds keep names unique and make name order the time order.
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(moment)) + f".{int(moment * 1000) % 1000:03d}Z"
    base = f"{stamp}-{tool}"
    for attempt in range(1, 100):
        name = base if attempt == 1 else f"{base}-{attempt}"
        # Create-only: the zero old value makes update-ref fail if the name is taken.
        try:
            git(repo.top, "update-ref", "-m", "agent checkpoint", REF_PREFIX + name, commit, ZERO)
            return name
        except CheckpointError:
            if not git(repo.top, "rev-parse", "-q", "--verify", REF_PREFIX + name, check=False):
                raise
    raise CheckpointError(f"no free checkpoint name for {base}")


def create(workspace: str, tool: str, now: float | None = None) -> str:
    repo = open_repo(workspace)
    snapshot = take_snapshot(repo)
    commit = _commit(repo, snapshot, "agent checkpoint", tool)
    return _store(repo, commit, tool, now)


def _trailers(message: str) -> dict[str, str]:
    found = {}
    for line in message.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key.startswith("Agent-"):
            found[key] = value.strip()
    return found


def list_checkpoints(workspace: str) -> list[Checkpoint]:
    repo = open_repo(workspace)
    fmt = "%(refname)%00%(objectname)%00%(committerdate:iso-strict)%00%(tree)%00%(parent)%00%(contents)%01"
    out = git(repo.top, "for-each-ref", f"--format={fmt}", REF_PREFIX)
    checkpoints = []
    for record in out.split("\x01"):
        record = record.strip("\n")
        if not record:
            continue
        refname, commit, date, tree, parents, message = record.split("\x00", 5)
        trailers = _trailers(message)
        parent_list = parents.split()
        index_commit = parent_list[-1] if parent_list else None
        index_tree = git(repo.top, "rev-parse", f"{index_commit}^{{tree}}") if index_commit else tree
        head = trailers.get("Agent-Head")
        head_ref = trailers.get("Agent-Head-Ref")
        checkpoints.append(Checkpoint(
            name=refname[len(REF_PREFIX):], commit=commit, date=date, tool=trailers.get("Agent-Tool", "?"),
            work_tree=tree, index_tree=index_tree,
            head=None if head in (None, "unborn") else head,
            head_ref=None if head_ref in (None, "detached") else head_ref))
    checkpoints.sort(key=lambda c: c.name, reverse=True)
    return checkpoints


def find(workspace: str, name: str | None) -> Checkpoint:
    checkpoints = list_checkpoints(workspace)
    if not checkpoints:
        raise CheckpointError("no checkpoints in this repository")
    if name is None:
        return checkpoints[0]
    wanted = name[len(REF_PREFIX):] if name.startswith(REF_PREFIX) else name
    for checkpoint in checkpoints:
        if checkpoint.name == wanted:
            return checkpoint
    raise CheckpointError(f"no checkpoint named {name!r}; run agent-checkpoint to list them")


def _name_status(repo: Repo, old: str, new: str) -> list[str]:
    out = git(repo.top, "diff-tree", "-r", "--no-renames", "--name-status", old, new)
    return [line for line in out.splitlines() if line]


def _describe(line: str) -> str:
    status, _, path = line.partition("\t")
    verb = {"A": "create", "D": "delete", "M": "change", "T": "change type of"}.get(status[:1], status)
    return f"  {verb} {path}"


def plan(workspace: str, checkpoint: Checkpoint) -> tuple[Repo, Snapshot, list[str], list[str], list[str]]:
    repo = open_repo(workspace)
    current = take_snapshot(repo, keep_index=True)
    head_changes = []
    if checkpoint.head_ref != repo.head_ref:
        head_changes.append(f"  HEAD: {repo.head_ref or 'detached'} -> {checkpoint.head_ref or 'detached'}")
    if checkpoint.head != repo.head:
        head_changes.append(f"  {checkpoint.head_ref or 'HEAD'}: {(repo.head or 'unborn')[:12]} -> "
                            f"{(checkpoint.head or 'unborn')[:12]}")
    work = _name_status(repo, current.work_tree, checkpoint.work_tree)
    index = _name_status(repo, current.index_tree, checkpoint.index_tree)
    return repo, current, head_changes, work, index


def preview_lines(head_changes: list[str], work: list[str], index: list[str]) -> list[str]:
    if not (head_changes or work or index):
        return ["restoring would change nothing"]
    lines = []
    if head_changes:
        lines += ["HEAD:"] + head_changes
    if work:
        lines += ["working tree:"] + [_describe(line) for line in work]
    if index:
        lines += ["index (staged):"] + [_describe(line) for line in index]
    return lines


def restore(workspace: str, checkpoint: Checkpoint, force: bool) -> tuple[list[str], str | None]:
    """Returns what changed and the name of the safety checkpoint taken first (if any)."""
    repo, current, head_changes, work, index = plan(workspace, checkpoint)
    try:
        if not (head_changes or work or index):
            return ["restoring would change nothing"], None
        head_tree = git(repo.top, "rev-parse", repo.head_tree)
        uncommitted = current.work_tree != head_tree or current.index_tree != head_tree
        if uncommitted and (work or index) and not force:
            raise CheckpointError(
                "uncommitted work would be overwritten (the working tree or index differs from HEAD); "
                "commit it, or pass --force (a checkpoint of it is taken first)")
        safety = _store(repo, _commit(repo, current, "agent checkpoint before restore", "before-restore"),
                        "before-restore", None)
        # The temporary index holds the current working tree with fresh stat data, so reading the
        # checkpoint's tree over it with -u rewrites exactly the paths that differ.
        git(repo.top, "read-tree", "--reset", "-u", checkpoint.work_tree, env={"GIT_INDEX_FILE": current.index_file})
        _move_head(repo, checkpoint)
        git(repo.top, "read-tree", checkpoint.index_tree)
        git(repo.top, "update-index", "-q", "--refresh", check=False)
        return preview_lines(head_changes, work, index), safety
    finally:
        if current.index_file:
            _remove(current.index_file)


def _move_head(repo: Repo, checkpoint: Checkpoint) -> None:
    if checkpoint.head_ref:
        if checkpoint.head_ref != repo.head_ref:
            git(repo.top, "symbolic-ref", "HEAD", checkpoint.head_ref)
        if checkpoint.head:
            git(repo.top, "update-ref", "-m", "agent-checkpoint restore", checkpoint.head_ref, checkpoint.head)
        elif git(repo.top, "rev-parse", "-q", "--verify", checkpoint.head_ref, check=False):
            git(repo.top, "update-ref", "-d", checkpoint.head_ref)
    elif checkpoint.head:
        git(repo.top, "update-ref", "--no-deref", "-m", "agent-checkpoint restore", "HEAD", checkpoint.head)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="agent-checkpoint",
        description="List, preview and restore the workspace checkpoints the entrypoint records.")
    parser.add_argument("--checkpoint", nargs="?", const="", metavar="NAME",
                        help="restore this checkpoint (default: the newest)")
    parser.add_argument("--preview", action="store_true", help="show what restoring would change; change nothing")
    parser.add_argument("--force", action="store_true",
                        help="restore even over uncommitted work (a checkpoint of it is taken first)")
    parser.add_argument("-C", dest="workspace", default=".", help="the repository (default: the current folder)")
    args = parser.parse_args(argv)
    name = args.checkpoint or None
    try:
        if args.preview:
            checkpoint = find(args.workspace, name)
            _repo, current, head_changes, work, index = plan(args.workspace, checkpoint)
            _remove(current.index_file)
            print(f"restoring {checkpoint.name} would:")
            print("\n".join(preview_lines(head_changes, work, index)))
            return 0
        if args.checkpoint is not None:
            checkpoint = find(args.workspace, name)
            lines, safety = restore(args.workspace, checkpoint, args.force)
            if safety:
                print(f"saved the state before restoring as {safety}")
            print(f"restored {checkpoint.name}:")
            print("\n".join(lines))
            return 0
        for checkpoint in list_checkpoints(args.workspace):
            print(f"{checkpoint.name}\t{checkpoint.date}\t{checkpoint.tool}\t{checkpoint.commit[:12]}")
        return 0
    except CheckpointError as error:
        print(f"agent-checkpoint: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
