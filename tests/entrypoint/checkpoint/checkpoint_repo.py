"""A repository with every kind of change, and what the checkpoint tests read back from it."""

import hashlib
import os
import subprocess

from entrypoint.checkpoint import plumbing
from entrypoint.checkpoint.create import take_snapshot

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


def index_digest(repo):
    return hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest()


def trees(repo, commit):
    """The checkpoint's tree, its index commit's tree, its first parent and its message."""
    parents = git(repo, "rev-list", "--parents", "-n1", commit).split()[1:]
    work_tree, index_tree = git(repo, "rev-parse", f"{commit}^{{tree}}", f"{parents[-1]}^{{tree}}").split()
    return work_tree, index_tree, parents[:-1], git(repo, "log", "-1", "--format=%B", commit)


def general_commit(repo):
    """What git's own `git add` (the general path) records for the repository's state now."""
    opened = plumbing.open_repo(str(repo))
    return plumbing.commit_snapshot(opened, take_snapshot(opened), "agent checkpoint", "claude")
