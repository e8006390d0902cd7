"""What agent-run refuses to mount, and, in --mount mode, which paths of the user's folder get
their own read-only or pinned mounts. Reads the host; writes nothing.
"""
from __future__ import annotations

import os
from pathlib import Path

from image.layout import WORKSPACE
from launcher.plan import Mount, RunError
from launcher.tiers import glob_matches

MAX_PROTECTED_MOUNTS = 256
SKIP_DIRS = {"node_modules", ".venv", "__pycache__"}
SECRET_HOME_PATHS = (".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".config/gh", ".docker", ".kube",
                     ".netrc", ".git-credentials", ".npmrc", ".pypirc", ".cargo/credentials",
                     ".cargo/credentials.toml", ".config/agent-sandbox", ".password-store", ".vault-token")
SYSTEM_PATHS = ("/etc", "/run", "/var/run", "/proc", "/sys", "/dev", "/boot", "/var/lib/docker",
                "/var/lib/containers", "/usr", "/bin", "/sbin", "/lib", "/var/log")


def within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def refusal(source: Path, home: Path) -> str | None:
    """Why mounting source would expose the host, or None."""
    path = source.resolve()
    if path == Path("/"):
        return "it is the host's root"
    if path.is_socket() or path.name in ("docker.sock", "podman.sock", "containerd.sock"):
        return "it is a container engine or other socket"
    homes = {home.resolve(), Path("/root"), Path("/home")}
    if Path("/home").is_dir():
        homes |= {p.resolve() for p in Path("/home").iterdir() if p.is_dir()}
    for h in sorted(homes):
        if within(h, path):
            return f"it is or contains the home folder {h}"
    for secret in SECRET_HOME_PATHS:
        s = home.resolve() / secret
        if within(path, s) or within(s, path):
            return f"it is or contains the secret path {s}"
    for system in SYSTEM_PATHS:
        s = Path(system)
        if within(path, s) or within(s, path):
            return f"it is or contains the system path {s}"
    return None


def check_mount(mount: Mount, home: Path) -> Mount:
    if not mount.read_only:
        raise RunError(f"--mount {mount.source}:{mount.target}: only the workspace is writable; add :ro")
    why = refusal(mount.source, home)
    if why:
        raise RunError(f"refusing to mount {mount.source.resolve()}: {why}")
    if not mount.source.exists():
        raise RunError(f"--mount {mount.source}: no such file or folder")
    if not mount.target.startswith("/") or within(Path(mount.target), Path(WORKSPACE)):
        raise RunError(f"--mount target {mount.target!r} must be absolute and outside {WORKSPACE}")
    return Mount(mount.source.resolve(), mount.target, True)


def check_source(folder: Path, home: Path) -> Path:
    """The user's folder: a project folder, not the host's root, a home folder or a secret path."""
    if not folder.is_dir():
        raise RunError(f"workspace {folder} is not a folder; pass --workspace DIR")
    resolved = folder.resolve()
    why = refusal(resolved, home)
    if why:
        raise RunError(f"refusing to use {resolved} as the workspace: {why}; pass a project folder")
    return resolved


def live_owner(workspace: Path) -> tuple[int, int]:
    """--mount: the workspace's owner, whose uid the agent runs as. Root is refused: files the agent
    makes would be root's, and a setuid bit on one would be root's too."""
    info = workspace.stat()
    if info.st_uid == 0 or info.st_gid == 0:
        raise RunError(f"--mount: {workspace} belongs to root (uid {info.st_uid}, gid {info.st_gid}); the agent "
                       f"would write as root there. Use the default copy mode (drop --mount), or give the folder "
                       f"to an ordinary user first")
    return info.st_uid, info.st_gid


def _plain_inside(workspace: Path, relative: str) -> bool:
    """No component is a symlink: a bind mount follows links on the host, so a repository's
    `.claude -> ~/.ssh` would otherwise bring the host's secrets in."""
    path = workspace
    for part in relative.split("/"):
        path = path / part
        if path.is_symlink():
            return False
    return path.resolve().is_relative_to(workspace)


def protected_paths(workspace: Path, globs, limit: int = MAX_PROTECTED_MOUNTS) -> list[str]:
    """Workspace-relative paths to mount read-only: a folder for "dir/**", else matching files."""
    found: set[str] = set()
    for pattern in globs:
        folder = pattern[:-3].strip("/")
        if pattern.endswith("/**") and "*" not in folder and _plain_inside(workspace, folder) \
                and (workspace / folder).is_dir():
            found.add(folder)
    for folder, dirs, files in os.walk(workspace):
        rel_folder = os.path.relpath(folder, workspace)
        rel_folder = "" if rel_folder == "." else rel_folder
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and f"{rel_folder}/{d}".lstrip("/") not in found
                   and f"{rel_folder}/{d}".lstrip("/") != ".git/objects"]
        for name in files:
            rel = f"{rel_folder}/{name}".lstrip("/")
            if os.path.islink(os.path.join(folder, name)):
                continue
            if any(glob_matches(p, rel) for p in globs):
                found.add(rel)
        if len(found) > limit:
            raise RunError(f"more than {limit} protected files in {workspace}; narrow files.read_only "
                           f"or files.blocked in the profile")
    return sorted(rel for rel in found if _plain_inside(workspace, rel))


def pinned_folders(workspace: Path, protected: list[str]) -> list[str]:
    """--mount: every folder above a protected path, and .git, bound onto itself, so that it is a
    mount point: a mount point cannot be renamed (EBUSY), so the agent cannot move a protected
    file's folder aside and put its own in its place."""
    folders = {".git"} if (workspace / ".git").is_dir() and not (workspace / ".git").is_symlink() else set()
    for rel in protected:
        parts = rel.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folders.add("/".join(parts[:depth]))
    return sorted(f for f in folders if _plain_inside(workspace, f) and (workspace / f).is_dir()
                  and f not in protected)


def free_subnet(wanted: str, taken: set[str]) -> str:
    """The first 10.213.N.0/24 from the wanted one on that no network holds."""
    start = int(wanted.split(".")[2])
    for step in range(254):
        subnet = f"10.213.{(start - 1 + step) % 254 + 1}.0/24"
        if subnet not in taken:
            return subnet
    raise RunError("every 10.213.N.0/24 is taken by a podman network; remove stale agent-sandbox-* networks")


def id_range_problem(base: int, size: int, passwd: str = "/etc/passwd",
                     subordinate: tuple = ("/etc/subuid", "/etc/subgid")) -> str | None:
    """Why host ids base..base+size-1 are not the run's alone: an account or a subordinate range."""
    def overlaps(first: int, count: int) -> bool:
        return first < base + size and base < first + count
    try:
        for line in Path(passwd).read_text().splitlines():
            fields = line.split(":")
            if len(fields) > 3 and fields[2].isdigit() and overlaps(int(fields[2]), 1):
                return f"{passwd} has {fields[0]} with uid {fields[2]}"
    except OSError:
        pass
    for path in subordinate:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split(":")
            if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit() \
                    and overlaps(int(fields[1]), int(fields[2])):
                return f"{path} gives {fields[0]} ids {fields[1]}-{int(fields[1]) + int(fields[2]) - 1}"
    return None


def live_leftovers(workspace: Path, protected_before, read_only_globs) -> list[str]:
    """--mount, after the run: read-only-tier files that were not there at the start, and git
    folders below the top (what the agent could create there; nothing is opened, no link followed)."""
    try:
        now = protected_paths(workspace, read_only_globs)
    except RunError as error:
        return [str(error)]
    found = [f"new read-only-tier path: {rel}" for rel in now if rel not in protected_before]
    for folder, dirs, files in os.walk(workspace):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not (folder == str(workspace) and d == ".git")]
        if ".git" in dirs + files and folder != str(workspace):
            found.append(f"a git repository the agent may have made: {os.path.relpath(folder, workspace)}/.git")
            dirs[:] = [d for d in dirs if d != ".git"]
    return found
