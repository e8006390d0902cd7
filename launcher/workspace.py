"""The user's repository on the host: the copy the agent gets, and its results coming back as refs.

    user's repository ── starting commit (HEAD + uncommitted changes, blocked files left out)
          │                      refs/agent/<run>/start, refs/agent/<run>/base
          └── copy: a new repository in the run folder, its objects packed from the user's
              (nothing shared, nothing linked), checked out, given to the agent's uid
    ... the run ...
    collector container (no network) ── result.bundle ── verified, fsck'd, fetched as data into
          refs/agent/<run>/{heads/*, tags/*, HEAD, uncommitted}

git runs on the host only in the user's repository (with the user's own configuration) and in the
copy before the agent has touched it (with no configuration at all). After the run the copy is
never opened by git on the host: a local fetch or clone would run upload-pack there, with a
configuration and hooks the agent wrote.
"""
from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from launcher import safefs
from launcher.plan import RunError
from launcher.tiers import blocked_paths

REFS_ROOT = "refs/agent"
RESULT_REFS = re.compile(r"^refs/(heads|tags)/.+$|^refs/agent-run/(HEAD|uncommitted)$")
MAX_RESULT_REFS = 1000
GIT = shutil.which("git") or "git"  # looked up once: later PATH changes (tests) do not matter
IDENTITY = {"GIT_AUTHOR_NAME": "agent-run", "GIT_AUTHOR_EMAIL": "agent-run@localhost",
            "GIT_COMMITTER_NAME": "agent-run", "GIT_COMMITTER_EMAIL": "agent-run@localhost"}
# Variables that would point git at another repository, index or object store than the one meant.
_LOCATING = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
             "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES", "GIT_PREFIX")


@dataclass(frozen=True)
class Owner:
    """Whom git runs as in the user's repository: its owner, so that what git writes there (objects,
    refs, worktrees) stays theirs and their hooks and filters never run as root."""
    uid: int
    gid: int
    home: str

    @classmethod
    def of(cls, path: Path) -> "Owner":
        info = path.stat()
        try:
            home = pwd.getpwuid(info.st_uid).pw_dir
        except KeyError:
            home = "/nonexistent"
        return cls(info.st_uid, info.st_gid, home)


@dataclass(frozen=True)
class Source:
    """The user's repository as agent-run found it."""
    toplevel: Path
    subdir: str            # where agent-run was started, relative to toplevel ("" at the top)
    objects: Path
    index: Path
    head: str | None       # None: no commit yet
    branch: str | None     # None: detached HEAD
    object_format: str = "sha1"
    owner: Owner | None = None

    def git(self, args: list[str], cwd: Path | None = None, **kwargs) -> subprocess.CompletedProcess:
        return git(args, cwd or self.toplevel, owner=self.owner, **kwargs)

    def out(self, args: list[str], **kwargs) -> str:
        return self.git(args, **kwargs).stdout.decode().strip()

    def scratch(self) -> Path:
        """A private temporary folder the owner can write (git runs as them there)."""
        folder = Path(tempfile.mkdtemp(prefix="agent-run-"))
        if self.owner is not None:
            os.chown(folder, self.owner.uid, self.owner.gid)
        return folder


@dataclass
class Copy:
    start: str                       # the starting commit
    base: str | None                 # the user's HEAD it was made on
    branch: str                      # the copy's checked-out branch
    history: bool                    # False: the copy holds the starting commit only
    left_out: list = field(default_factory=list)            # blocked paths not copied
    blocked_in_history: list = field(default_factory=list)  # blocked paths some commit of HEAD holds


def _env(extra: dict | None = None, *, no_config: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _LOCATING}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    if no_config:
        env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
    env.update(extra or {})
    return env


def git(args: list[str], cwd: Path, *, env: dict | None = None, input: bytes | None = None,
        check: bool = True, owner: Owner | None = None) -> subprocess.CompletedProcess:
    env = env or _env()
    switch = {}
    if owner is not None and owner.uid != os.geteuid():
        switch = {"user": owner.uid, "group": owner.gid, "extra_groups": []}
        env = {**env, "HOME": owner.home}
    done = subprocess.run([GIT, *args], cwd=cwd, env=env, input=input, capture_output=True, **switch)
    if check and done.returncode != 0:
        raise RunError(f"git {shlex.join(args[:3])} in {cwd} failed ({done.returncode}): "
                       f"{done.stderr.decode(errors='replace').strip()[-600:]}")
    return done


def _out(args: list[str], cwd: Path, **kwargs) -> str:
    return git(args, cwd, **kwargs).stdout.decode().strip()


def repository_folder(start: Path) -> Path | None:
    """The nearest folder from start upwards that holds a .git (a folder or a file)."""
    for folder in (start, *start.parents):
        if os.path.lexists(folder / ".git"):
            return folder
    return None


def find_source(workspace: Path) -> Source:
    if not workspace.is_dir():
        raise RunError(f"workspace {workspace} is not a folder; pass --workspace DIR or cd into your project")
    workspace = workspace.resolve()
    found = repository_folder(workspace)
    owner = Owner.of(found) if found else None
    probe = git(["rev-parse", "--is-bare-repository", "--show-toplevel", "--show-prefix"], workspace,
                check=False, owner=owner)
    lines = probe.stdout.decode().splitlines()
    if found is None or probe.returncode != 0 or len(lines) < 2:
        quoted = shlex.quote(str(workspace))
        said = probe.stderr.decode(errors="replace").strip()
        raise RunError(f"{workspace} is not a git repository{f' ({said[-300:]})' if found and said else ''}. "
                       f"agent-run gives the agent a copy of a repository and brings its work back as git refs; "
                       f"make it one first: git -C {quoted} init && git -C {quoted} add -A && "
                       f"git -C {quoted} commit -m 'before the agent' (or pass --mount to let the agent edit the "
                       f"folder itself)")
    if lines[0] == "true":
        raise RunError(f"{workspace} is a bare repository; run agent-run in a checkout")
    toplevel = Path(lines[1])
    prefix = lines[2].rstrip("/") if len(lines) > 2 else ""
    probe = Source(toplevel=toplevel, subdir=prefix, objects=Path(), index=Path(), head=None, branch=None,
                   owner=owner)
    paths = probe.out(["rev-parse", "--path-format=absolute", "--git-path", "objects", "--git-path", "index"])
    head = probe.git(["rev-parse", "-q", "--verify", "HEAD^{commit}"], check=False).stdout.decode().strip()
    branch = probe.git(["symbolic-ref", "-q", "--short", "HEAD"], check=False).stdout.decode().strip()
    object_format = probe.git(["rev-parse", "--show-object-format"], check=False).stdout.decode().strip()
    objects, index = paths.splitlines()
    return Source(toplevel=toplevel, subdir=prefix, objects=Path(objects), index=Path(index),
                  head=head or None, branch=branch or None, object_format=object_format or "sha1", owner=owner)


# --- the copy ------------------------------------------------------------------------------------

def blocked_in_history(source: Source, patterns) -> list[str]:
    if source.head is None:
        return []
    names = source.git(["log", "--format=", "--name-only", "-z", "--root", "-m", "--no-renames",
                        source.head]).stdout.decode(errors="surrogateescape").split("\0")
    return blocked_paths({n for n in names if n}, patterns)


def starting_commit(source: Source, run_id: str, blocked_patterns) -> Copy:
    """Commit what the user sees (HEAD plus staged, unstaged and untracked-not-ignored changes),
    without the blocked files, through a scratch index: the user's index and files are untouched."""
    scratch = source.scratch()
    try:
        index = scratch / "start.index"
        env = _env({"GIT_INDEX_FILE": str(index)})
        if source.index.is_file():
            shutil.copyfile(source.index, index)
            if source.owner is not None:
                os.chown(index, source.owner.uid, source.owner.gid)
        else:
            source.git(["read-tree", *([source.head] if source.head else ["--empty"])], env=env)
        source.git(["add", "--all", "--", "."], env=env)
        tracked = source.git(["ls-files", "-z"], env=env).stdout.decode(errors="surrogateescape").split("\0")
        left_out = blocked_paths({p for p in tracked if p}, blocked_patterns)
        if left_out:
            source.git(["rm", "--cached", "-q", "--ignore-unmatch", "--pathspec-from-file=-", "--pathspec-file-nul"],
                       env={**env, "GIT_LITERAL_PATHSPECS": "1"},
                       input="\0".join(left_out).encode(errors="surrogateescape"))
        tree = source.out(["write-tree"], env=env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    in_history = blocked_in_history(source, blocked_patterns)
    history = source.head is not None and not in_history
    message = f"agent-run {run_id}: the starting point\n\nHEAD and the uncommitted changes, as agent-run found them.\n"
    if left_out:
        message += "\nLeft out (blocked): " + ", ".join(left_out) + "\n"
    if in_history:
        message += "\nNo history: blocked files are in it (" + ", ".join(in_history) + ").\n"
    start = source.out(["commit-tree", tree, *(["-p", source.head] if history else []), "-F", "-"],
                       env=_env(IDENTITY), input=message.encode(errors="surrogateescape"))
    updates = f"create {REFS_ROOT}/{run_id}/start {start}\n"
    if source.head:
        updates += f"create {REFS_ROOT}/{run_id}/base {source.head}\n"
    source.git(["update-ref", "--stdin"], input=updates.encode())
    return Copy(start=start, base=source.head, branch=source.branch or "agent-run", history=history,
                left_out=left_out, blocked_in_history=in_history)


def make_copy(source: Source, copy: Copy, target: Path, owner: tuple[int, int], identity: tuple[str, str],
              remote: tuple[str, str] | None = None) -> None:
    """A new repository at target holding the starting commit (and HEAD's history when it has no
    blocked file), its objects packed from the user's (no alternates left), checked out, owned by
    the agent. git runs here as root, before the agent, with no configuration but the one written
    below and no hook templates. remote: (url, push refspec) of an origin for the agent (a run
    with a GitHub repository); the user's own remotes are never copied."""
    env = _env(no_config=True)
    with tempfile.TemporaryDirectory(prefix="agent-run-template-") as template:
        git(["init", "-q", f"--template={template}", f"--object-format={source.object_format}",
             "--initial-branch", copy.branch, str(target)], target.parent, env=env)
    settings = [("user.name", identity[0]), ("user.email", identity[1])]
    if remote:
        settings += [("remote.origin.url", remote[0]), ("remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"),
                     ("remote.origin.push", remote[1]), ("remote.origin.tagOpt", "--no-tags")]
    for key, value in settings:
        git(["config", key, value], target, env=env)
    borrowing = {**env, "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(source.objects)}
    git(["update-ref", f"refs/heads/{copy.branch}", copy.start], target, env=borrowing)
    git(["repack", "-a", "-d", "-q"], target, env=borrowing)
    git(["rev-list", "--objects", "--all", "--quiet"], target, env=env)  # self-contained, or this fails
    git(["reset", "-q", "--hard"], target, env=env)
    safefs.chown_tree(target, *owner)


# --- the results -------------------------------------------------------------------------------

def result_refspecs(heads: list[tuple[str, str]], run_id: str) -> tuple[list[str], list[str]]:
    """Refspecs for the refs a result bundle may carry, and the names it carried that were refused."""
    accepted, refused = [], []
    for _, name in heads:
        if not RESULT_REFS.match(name) or len(accepted) >= MAX_RESULT_REFS:
            refused.append(name)
            continue
        if name.startswith("refs/agent-run/"):
            target = name.removeprefix("refs/agent-run/")
        else:
            target = name.removeprefix("refs/")
        accepted.append(f"+{name}:{REFS_ROOT}/{run_id}/{target}")
    return accepted, refused


def fetch_results(source: Source, run_id: str, bundle: Path) -> tuple[list[str], list[str]]:
    """Verify the bundle against the user's repository and fetch its refs (objects checked with
    fsck) under refs/agent/<run>/. git runs as the repository's owner, on a copy of the bundle in a
    folder of theirs. Returns the refs written and the names refused."""
    scratch = source.scratch()
    try:
        readable = scratch / "result.bundle"
        owner = (source.owner.uid, source.owner.gid) if source.owner else None
        safefs.write_new(readable, bundle.read_bytes(), 0o400, owner)
        return _fetch(source, run_id, readable)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _fetch(source: Source, run_id: str, bundle: Path) -> tuple[list[str], list[str]]:
    verify = source.git(["bundle", "verify", "-q", str(bundle)], check=False)
    if verify.returncode != 0:
        raise RunError(f"the result bundle does not verify against {source.toplevel}: "
                       f"{verify.stderr.decode(errors='replace').strip()[-400:]}")
    heads = []
    for line in source.git(["bundle", "list-heads", str(bundle)]).stdout.decode(errors="replace").splitlines():
        sha, _, name = line.partition(" ")
        heads.append((sha, name))
    refspecs, refused = result_refspecs(heads, run_id)
    valid = []
    for spec in refspecs:
        name = spec.split(":", 1)[1]
        if source.git(["check-ref-format", name], check=False).returncode == 0:
            valid.append(spec)
        else:
            refused.append(spec[1:].split(":", 1)[0])
    if valid:
        source.git(["-c", "fetch.fsckObjects=true", "-c", "transfer.fsckObjects=true", "-c", "core.hooksPath=/dev/null",
                    "fetch", "-q", "--no-tags", "--no-write-fetch-head", "--no-auto-gc", "--no-recurse-submodules",
                    str(bundle), *valid])
    return [spec.split(":", 1)[1] for spec in valid], refused


def run_refs(source: Source, run_id: str | None = None) -> dict[str, str]:
    """refname -> commit, for one run or all (refs/agent/<run>/...; checkpoints are not runs)."""
    prefix = f"{REFS_ROOT}/{run_id}/" if run_id else f"{REFS_ROOT}/"
    out = source.git(["for-each-ref", "--format=%(objectname) %(refname)", prefix]).stdout.decode(errors="replace")
    refs = {}
    for line in out.splitlines():
        sha, _, name = line.partition(" ")
        if not name.startswith(f"{REFS_ROOT}/checkpoints/"):
            refs[name] = sha
    return refs


def delete_refs(source: Source, refs: dict[str, str]) -> None:
    if refs:
        updates = "".join(f"delete {name} {sha}\n" for name, sha in refs.items())
        source.git(["update-ref", "--stdin"], input=updates.encode(errors="surrogateescape"))
