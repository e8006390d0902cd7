"""Git plumbing for checkpoints: running git on a workspace that may belong to another uid, the
repository's HEAD, and the commit shape every checkpoint has (a tree, HEAD and a commit of the
index as parents, trailers saying where HEAD pointed)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass


REF_PREFIX = "refs/agent/checkpoints/"


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


def git_command(repo_dir: str, args: tuple, top: str | None) -> list[str]:
    # The workspace may belong to another uid (a bind mount); these calls only read it and write
    # refs and objects, so trust it for them. No hooks, no fsmonitor program from the repo config.
    return ["git", "-c", f"safe.directory={top or repo_dir}", "-c", "core.fsmonitor=false",
            "-c", "core.hooksPath=/dev/null", "-C", repo_dir, *args]


def git_env(env: dict | None) -> dict:
    full_env = dict(os.environ)
    full_env.update(IDENTITY)
    if env:
        full_env.update(env)
    return full_env


def failure(args: tuple, stderr: bytes, code: int) -> CheckpointError:
    while args[:1] == ("-c",):
        args = args[2:]
    message = stderr.decode("utf-8", "replace").strip().splitlines()
    return CheckpointError(f"git {' '.join(args[:2])} failed: {message[-1] if message else code}")


def git(repo_dir: str, *args: str, env: dict | None = None, check: bool = True, top: str | None = None,
        stdin: bytes | None = None) -> str:
    try:
        done = subprocess.run(git_command(repo_dir, args, top), capture_output=True, env=git_env(env),
                              input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)
    except FileNotFoundError:
        raise CheckpointError("git is not installed")
    if check and done.returncode != 0:
        raise failure(args, done.stderr, done.returncode)
    return done.stdout.decode("utf-8", "surrogateescape").strip()


def git_bytes(repo_dir: str, *args: str, env: dict | None = None, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(git_command(repo_dir, args, None), capture_output=True, env=git_env(env),
                              input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)
    except FileNotFoundError:
        raise CheckpointError("git is not installed")
    if done.returncode != 0:
        raise failure(args, done.stderr, done.returncode)
    return done.stdout


class Background:
    """A git command running while others do (the snapshot's steps use both cores)."""

    def __init__(self, repo_dir: str, *args: str, env: dict | None = None):
        self.args = args
        try:
            self.process = subprocess.Popen(git_command(repo_dir, args, None), stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=git_env(env))
        except FileNotFoundError:
            raise CheckpointError("git is not installed")

    def result(self, check: bool = True) -> bytes:
        stdout, stderr = self.process.communicate()
        if check and self.process.returncode != 0:
            raise failure(self.args, stderr, self.process.returncode)
        return stdout if self.process.returncode == 0 else b""


def open_repo(workspace: str) -> Repo:
    try:
        out = git(workspace, "rev-parse", "--show-toplevel", "--absolute-git-dir", top=workspace)
    except CheckpointError as error:
        if "not a git repository" not in str(error):
            raise
        raise CheckpointError(f"{os.path.abspath(workspace)} is not in a git repository; checkpoints live in the "
                              "workspace's repository: run this there, or pass -C DIR") from None
    top, git_dir = out.splitlines()[:2]
    head = Background(top, "rev-parse", "-q", "--verify", "HEAD^{commit}")
    head_ref = Background(top, "symbolic-ref", "-q", "HEAD")
    return Repo(top, git_dir, _text(head.result(check=False)) or None, _text(head_ref.result(check=False)) or None)


def _text(out: bytes) -> str:
    return out.decode("utf-8", "surrogateescape").strip()


def empty_tree(repo: Repo) -> str:
    return git(repo.top, "hash-object", "-w", "-t", "tree", "--stdin", stdin=b"")


def remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def commit_snapshot(repo: Repo, snapshot: Snapshot, title: str, tool: str) -> str:
    head_parent = ["-p", repo.head] if repo.head else []
    index_commit = git(repo.top, "commit-tree", snapshot.index_tree, *head_parent, "-m", f"index of {title}")
    message = checkpoint_message(repo, title, tool)
    return git(repo.top, "commit-tree", snapshot.work_tree, *head_parent, "-p", index_commit, "-m", message)


def checkpoint_message(repo: Repo, title: str, tool: str) -> str:
    """The checkpoint commit's message: its trailers are what `agent-checkpoint` reads back."""
    return (f"{title}\n\nAgent-Tool: {tool}\nAgent-Head: {repo.head or 'unborn'}\n"
            f"Agent-Head-Ref: {repo.head_ref or 'detached'}\n")
