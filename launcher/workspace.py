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
import re
import shlex
import shutil
import subprocess
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
class Source:
    """The user's repository as agent-run found it."""
    toplevel: Path
    subdir: str            # where agent-run was started, relative to toplevel ("" at the top)
    objects: Path
    index: Path
    head: str | None       # None: no commit yet
    branch: str | None     # None: detached HEAD
    object_format: str = "sha1"


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
        check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([GIT, *args], cwd=cwd, env=env or _env(), input=input, capture_output=True)
    if check and done.returncode != 0:
        raise RunError(f"git {shlex.join(args[:3])} in {cwd} failed ({done.returncode}): "
                       f"{done.stderr.decode(errors='replace').strip()[-600:]}")
    return done


def _out(args: list[str], cwd: Path, **kwargs) -> str:
    return git(args, cwd, **kwargs).stdout.decode().strip()


def find_source(workspace: Path) -> Source:
    if not workspace.is_dir():
        raise RunError(f"workspace {workspace} is not a folder; pass --workspace DIR or cd into your project")
    probe = git(["rev-parse", "--is-bare-repository", "--show-toplevel", "--show-prefix"], workspace, check=False)
    lines = probe.stdout.decode().splitlines()
    if probe.returncode != 0 or len(lines) < 2:
        quoted = shlex.quote(str(workspace))
        raise RunError(f"{workspace} is not a git repository. agent-run gives the agent a copy of a repository and "
                       f"brings its work back as git refs; make it one first: git -C {quoted} init && "
                       f"git -C {quoted} add -A && git -C {quoted} commit -m 'before the agent' "
                       f"(or pass --mount to let the agent edit the folder itself)")
    if lines[0] == "true":
        raise RunError(f"{workspace} is a bare repository; run agent-run in a checkout")
    toplevel = Path(lines[1])
    prefix = lines[2].rstrip("/") if len(lines) > 2 else ""
    paths = _out(["rev-parse", "--path-format=absolute", "--git-path", "objects", "--git-path", "index"],
                 toplevel).splitlines()
    head = git(["rev-parse", "-q", "--verify", "HEAD^{commit}"], toplevel, check=False).stdout.decode().strip()
    branch = git(["symbolic-ref", "-q", "--short", "HEAD"], toplevel, check=False).stdout.decode().strip()
    object_format = git(["rev-parse", "--show-object-format"], toplevel, check=False).stdout.decode().strip()
    return Source(toplevel=toplevel, subdir=prefix, objects=Path(paths[0]), index=Path(paths[1]),
                  head=head or None, branch=branch or None, object_format=object_format or "sha1")


# --- the copy ------------------------------------------------------------------------------------

def blocked_in_history(source: Source, patterns) -> list[str]:
    if source.head is None:
        return []
    names = git(["log", "--format=", "--name-only", "-z", "--root", "-m", "--no-renames", source.head],
                source.toplevel).stdout.decode(errors="surrogateescape").split("\0")
    return blocked_paths({n for n in names if n}, patterns)


def starting_commit(source: Source, run_id: str, blocked_patterns, scratch: Path) -> Copy:
    """Commit what the user sees (HEAD plus staged, unstaged and untracked-not-ignored changes),
    without the blocked files, through a scratch index: the user's index and files are untouched."""
    index = scratch / "start.index"
    env = _env({"GIT_INDEX_FILE": str(index)})
    if source.index.is_file():
        shutil.copyfile(source.index, index)
    else:
        git(["read-tree", *([source.head] if source.head else ["--empty"])], source.toplevel, env=env)
    git(["add", "--all", "--", "."], source.toplevel, env=env)
    tracked = git(["ls-files", "-z"], source.toplevel, env=env).stdout.decode(errors="surrogateescape").split("\0")
    left_out = blocked_paths({p for p in tracked if p}, blocked_patterns)
    if left_out:
        git(["rm", "--cached", "-q", "--ignore-unmatch", "--pathspec-from-file=-", "--pathspec-file-nul"],
            source.toplevel, env={**env, "GIT_LITERAL_PATHSPECS": "1"},
            input="\0".join(left_out).encode(errors="surrogateescape"))
    tree = _out(["write-tree"], source.toplevel, env=env)
    in_history = blocked_in_history(source, blocked_patterns)
    history = source.head is not None and not in_history
    message = f"agent-run {run_id}: the starting point\n\nHEAD and the uncommitted changes, as agent-run found them.\n"
    if left_out:
        message += "\nLeft out (blocked): " + ", ".join(left_out) + "\n"
    if in_history:
        message += "\nNo history: blocked files are in it (" + ", ".join(in_history) + ").\n"
    start = _out(["commit-tree", tree, *(["-p", source.head] if history else []), "-F", "-"], source.toplevel,
                 env=_env(IDENTITY), input=message.encode(errors="surrogateescape"))
    updates = f"create {REFS_ROOT}/{run_id}/start {start}\n"
    if source.head:
        updates += f"create {REFS_ROOT}/{run_id}/base {source.head}\n"
    git(["update-ref", "--stdin"], source.toplevel, input=updates.encode())
    index.unlink(missing_ok=True)
    return Copy(start=start, base=source.head, branch=source.branch or "agent-run", history=history,
                left_out=left_out, blocked_in_history=in_history)


def make_copy(source: Source, copy: Copy, target: Path, scratch: Path, owner: tuple[int, int],
              identity: tuple[str, str]) -> None:
    """A new repository at target holding the starting commit (and HEAD's history when it has no
    blocked file), its objects packed from the user's (no alternates left), checked out, owned by
    the agent. git runs here with no configuration but the one written below."""
    template = scratch / "empty-template"
    template.mkdir(exist_ok=True)
    env = _env(no_config=True)
    git(["init", "-q", f"--template={template}", f"--object-format={source.object_format}",
         "--initial-branch", copy.branch, str(target)], scratch, env=env)
    for key, value in (("user.name", identity[0]), ("user.email", identity[1])):
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
    fsck) under refs/agent/<run>/. Returns the refs written and the names refused."""
    verify = git(["bundle", "verify", "-q", str(bundle)], source.toplevel, check=False)
    if verify.returncode != 0:
        raise RunError(f"the result bundle {bundle} does not verify against {source.toplevel}: "
                       f"{verify.stderr.decode(errors='replace').strip()[-400:]}")
    heads = []
    for line in git(["bundle", "list-heads", str(bundle)], source.toplevel).stdout.decode(errors="replace").splitlines():
        sha, _, name = line.partition(" ")
        heads.append((sha, name))
    refspecs, refused = result_refspecs(heads, run_id)
    valid = []
    for spec in refspecs:
        name = spec.split(":", 1)[1]
        if git(["check-ref-format", name], source.toplevel, check=False).returncode == 0:
            valid.append(spec)
        else:
            refused.append(spec[1:].split(":", 1)[0])
    if valid:
        git(["-c", "fetch.fsckObjects=true", "-c", "transfer.fsckObjects=true", "-c", "core.hooksPath=/dev/null",
             "fetch", "-q", "--no-tags", "--no-write-fetch-head", "--no-auto-gc", "--no-recurse-submodules",
             str(bundle), *valid], source.toplevel)
    return [spec.split(":", 1)[1] for spec in valid], refused


def run_refs(toplevel: Path, run_id: str | None = None) -> dict[str, str]:
    """refname -> commit, for one run or all (refs/agent/<run>/...; checkpoints are not runs)."""
    prefix = f"{REFS_ROOT}/{run_id}/" if run_id else f"{REFS_ROOT}/"
    out = git(["for-each-ref", "--format=%(objectname) %(refname)", prefix], toplevel).stdout.decode(errors="replace")
    refs = {}
    for line in out.splitlines():
        sha, _, name = line.partition(" ")
        if not name.startswith(f"{REFS_ROOT}/checkpoints/"):
            refs[name] = sha
    return refs


def delete_refs(toplevel: Path, refs: dict[str, str]) -> None:
    if refs:
        updates = "".join(f"delete {name} {sha}\n" for name, sha in refs.items())
        git(["update-ref", "--stdin"], toplevel, input=updates.encode(errors="surrogateescape"))
