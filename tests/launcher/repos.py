"""Small git repositories for the launcher's tests, made with the real git."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

IDENTITY = {"GIT_AUTHOR_NAME": "User", "GIT_AUTHOR_EMAIL": "user@example.com",
            "GIT_COMMITTER_NAME": "User", "GIT_COMMITTER_EMAIL": "user@example.com"}


def git(repo: Path, *args: str, input: bytes | None = None) -> str:
    return git_bytes(repo, *args, input=input).decode().strip()


def git_bytes(repo: Path, *args: str, input: bytes | None = None) -> bytes:
    """git as the repository's owner (a user's repository stays the user's)."""
    owner = repo.stat()
    switch = {"user": owner.st_uid, "group": owner.st_gid, "extra_groups": []} if owner.st_uid != os.geteuid() else {}
    env = {**os.environ, **IDENTITY, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
           "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"}
    done = subprocess.run(["git", *args], cwd=repo, env={**env, "HOME": "/nonexistent"} if switch else env,
                          capture_output=True, input=input, **switch)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def write(repo: Path, files: dict[str, str]) -> None:
    owner = repo.stat()
    for rel, text in files.items():
        path = repo / rel
        for folder in reversed([p for p in path.parents if repo in p.parents and not p.exists()]):
            folder.mkdir()
            os.chown(folder, owner.st_uid, owner.st_gid)
        path.write_text(text)
        os.chown(path, owner.st_uid, owner.st_gid)


USER = 4242  # an ordinary user who owns the repository; agent-run runs as root


def make_repo(root: Path, files: dict[str, str], name: str = "project", owner: int = 0) -> Path:
    """A repository with one commit holding `files`, on branch main, owned by `owner`."""
    repo = root / name
    repo.mkdir()
    os.chmod(root, 0o755)
    os.chown(repo, owner, owner)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "User")  # the user's identity, as their own config gives it
    git(repo, "config", "user.email", "user@example.com")
    write(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    return repo


def snapshot(repo: Path) -> dict[str, tuple]:
    """Every path under repo (the .git folder too) with its type, size, mode, owner and content hash."""
    import hashlib
    seen = {}
    for folder, dirs, files in os.walk(repo):
        for name in dirs + files:
            path = Path(folder) / name
            info = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else ""
            seen[str(path.relative_to(repo))] = (info.st_mode, info.st_size, info.st_uid, digest,
                                                 os.readlink(path) if path.is_symlink() else "")
    return seen
