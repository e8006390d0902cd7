"""After a run: `agent-run runs`, `review RUN`, `apply RUN --branch NAME`, `discard RUN`.

Everything here reads the user's repository, where the agent's work arrived as refs under
refs/agent/<run>/ (data fetched from a verified bundle); nothing reads or runs anything the agent
wrote on the host. Applying cherry-picks the agent's commits in a temporary worktree with hooks
off, then moves the named branch: the checked-out branch and its working tree are left alone
unless asked.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from launcher import workspace
from launcher.plan import RunError
from launcher.terminal import red, shown
from launcher.tiers import first_match, read_only_patterns

NO_HOOKS = ["-c", "core.hooksPath=/dev/null"]
KIND = {"A": "added", "M": "changed", "D": "deleted", "T": "type changed"}


def runs_root() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/agent-sandbox/runs")
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "agent-sandbox" / "runs"


def load_record(run_id: str, root: Path | None = None) -> dict:
    path = (root or runs_root()) / run_id / "run.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@dataclass
class Run:
    run_id: str
    refs: dict            # short name ("heads/main", "HEAD", "uncommitted", "start", "base") -> commit
    record: dict

    @property
    def start(self) -> str | None:
        return self.refs.get("start")

    @property
    def results(self) -> dict:
        return {name: sha for name, sha in self.refs.items() if name not in ("start", "base")}


def find_runs(repo: workspace.Source, root: Path | None = None) -> list[Run]:
    """The runs of a repository: those with refs in it, and those whose record names it (--mount
    runs and runs that brought nothing back have no refs)."""
    grouped: dict[str, dict] = {}
    for name, sha in workspace.run_refs(repo).items():
        run_id, _, short = name.removeprefix(workspace.REFS_ROOT + "/").partition("/")
        grouped.setdefault(run_id, {})[short] = sha
    folder = root or runs_root()
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name not in grouped and load_record(entry.name, folder).get("repository") == str(repo.toplevel):
                grouped[entry.name] = {}
    return [Run(run_id, refs, load_record(run_id, root)) for run_id, refs in sorted(grouped.items())]


def resolve_run(repo: workspace.Source, wanted: str, root: Path | None = None) -> Run:
    runs = find_runs(repo, root)
    if not runs:
        raise RunError(f"no agent-run runs in {repo.toplevel} (no refs under {workspace.REFS_ROOT}/, no run records)")
    if wanted in ("last", "latest"):
        return runs[-1]
    matches = [r for r in runs if r.run_id == wanted] or [r for r in runs if r.run_id.startswith(wanted)]
    if len(matches) != 1:
        known = ", ".join(r.run_id for r in runs[-5:])
        why = "matches several runs" if matches else "is no run here"
        raise RunError(f"{wanted!r} {why}; the latest runs: {known} (or say 'last')")
    return matches[0]


def format_runs(runs: list[Run]) -> str:
    if not runs:
        return "no runs\n"
    lines = [f"{'RUN':<24} {'CLI':<7} {'STATUS':<12} {'EXIT':>4}  RESULTS"]
    for run in runs:
        record = run.record
        results = ", ".join(shown(name) for name in sorted(run.results)) or "-"
        exit_code = record.get("exit_code")
        lines.append(f"{run.run_id:<24} {str(record.get('cli', '?')):<7} {str(record.get('status', '?')):<12} "
                     f"{'-' if exit_code is None else exit_code:>4}  {results}")
    return "\n".join(lines) + "\n"


# --- what changed --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    path: str
    status: str          # A M D T
    old_mode: str
    new_mode: str


def _raw_changes(repo: workspace.Source, old: str | None, new: str) -> list[Change]:
    args = ["diff-tree", "-r", "-z", "--raw", "--no-renames", "--no-ext-diff"]
    args += [old, new] if old else ["--root", new]
    raw = repo.git(args).stdout.decode(errors="surrogateescape").split("\0")
    changes, i = [], 0
    if not old and raw and raw[0] and not raw[0].startswith(":"):
        i = 1  # diff-tree --root NEW prints the commit id first
    while i + 1 < len(raw):
        head, path = raw[i], raw[i + 1]
        i += 2
        if not head.startswith(":"):
            continue
        old_mode, new_mode, _, _, status = head[1:].split(" ", 4)
        changes.append(Change(path, status[:1], old_mode, new_mode))
    return changes


def commits_between(repo: workspace.Source, start: str, ref: str) -> list[tuple[str, list[str], str]]:
    """(commit, parents, subject), oldest first."""
    out = repo.git(["log", "--reverse", "--topo-order", "--format=%H %P%x00%s%x00",
                    f"{start}..{ref}"]).stdout.decode(errors="replace")
    commits = []
    parts = out.split("\0")
    for i in range(0, len(parts) - 1, 2):
        ids = parts[i].strip().split()
        commits.append((ids[0], ids[1:], parts[i + 1]))
    return commits


def protected_changes(repo: workspace.Source, start: str, ref: str, patterns) -> dict[str, str]:
    """Every read-only-tier path that the net change or any single commit touches -> the pattern."""
    touched = {c.path for c in _raw_changes(repo, start, ref)}
    for commit, parents, _ in commits_between(repo, start, ref):
        for parent in parents or [None]:
            touched |= {c.path for c in _raw_changes(repo, parent, commit)}
    found = {}
    for path in sorted(touched):
        pattern = first_match(patterns, path)
        if pattern:
            found[path] = pattern
    return found


def _patterns(run: Run, profile_read_only) -> tuple:
    recorded = run.record.get("read_only_patterns")
    return tuple(recorded) if recorded else read_only_patterns(profile_read_only)


def review(repo: workspace.Source, run: Run, profile_read_only=(), colour: bool = False) -> str:
    if not run.start:
        if run.record.get("mode") == "mount":
            raise RunError(f"run {run.run_id} was a --mount run: its work is in your folder itself (git status, "
                           f"git diff); there is nothing to review here")
        raise RunError(f"run {run.run_id} has no {workspace.REFS_ROOT}/{run.run_id}/start ref; it cannot be reviewed")
    patterns = _patterns(run, profile_read_only)
    record = run.record
    lines = [f"run {run.run_id}: {record.get('cli', '?')}, {record.get('status', 'status unknown')}, "
             f"exit {record.get('exit_code', '?')}; started from {run.refs.get('base', 'no commit')[:12]} "
             f"with the uncommitted changes (start {run.start[:12]})"]
    if record.get("left_out"):
        lines.append("  left out of the copy (blocked): " + ", ".join(shown(p) for p in record["left_out"]))
    by_commit: dict[str, list[str]] = {}
    for name, sha in sorted(run.results.items()):
        by_commit.setdefault(sha, []).append(name)
    if not by_commit:
        lines.append("  the agent brought nothing back")
    flagged_total = 0
    for sha, names in by_commit.items():
        refs = ", ".join(f"{workspace.REFS_ROOT}/{run.run_id}/{shown(n)}" for n in names)
        commits = commits_between(repo, run.start, sha)
        lines.append(f"{refs}: {len(commits)} commit{'s' if len(commits) != 1 else ''} since the start")
        for commit, parents, subject in commits:
            merge = " (merge)" if len(parents) > 1 else ""
            lines.append(f"  {commit[:12]} {shown(subject)}{merge}")
        numbers = _numstat(repo, run.start, sha)
        protected = protected_changes(repo, run.start, sha, patterns)
        for change in _raw_changes(repo, run.start, sha):
            added, deleted = numbers.get(change.path, ("-", "-"))
            note = ""
            if change.new_mode == "120000":
                note += "  symbolic link"
            if change.new_mode == "160000":
                note += "  submodule commit"
            line = f"  {change.status} {shown(change.path)} (+{added} -{deleted}){note}"
            if change.path in protected:
                line = red(f"{line}  READ-ONLY TIER ({protected.pop(change.path)})", colour)
                flagged_total += 1
            lines.append(line)
        for path, pattern in protected.items():  # touched by a commit, not in the net change
            lines.append(red(f"  ~ {shown(path)}  READ-ONLY TIER ({pattern}), changed in a commit, not in the end result",
                             colour))
            flagged_total += 1
    if flagged_total:
        lines.append(red(f"{flagged_total} change(s) to read-only-tier paths: `agent-run apply` refuses them "
                         f"unless --allow-protected", colour))
    return "\n".join(lines) + "\n"


def _numstat(repo: workspace.Source, old: str, new: str) -> dict[str, tuple[str, str]]:
    out = repo.git(["diff", "--numstat", "-z", "--no-renames", "--no-ext-diff", "--no-textconv", old,
                    new]).stdout.decode(errors="surrogateescape")
    numbers = {}
    for entry in out.split("\0"):
        fields = entry.split("\t", 2)
        if len(fields) == 3:
            numbers[fields[2]] = (fields[0], fields[1])
    return numbers


# --- apply ---------------------------------------------------------------------------------------

def result_ref(run: Run, wanted: str | None) -> tuple[str, str]:
    if wanted is None:
        for default in ("uncommitted", "HEAD"):
            if default in run.refs:
                return default, run.refs[default]
        raise RunError(f"run {run.run_id} brought nothing back to apply")
    for name in (wanted, f"heads/{wanted}", wanted.removeprefix(f"{workspace.REFS_ROOT}/{run.run_id}/")):
        if name in run.results:
            return name, run.results[name]
    raise RunError(f"run {run.run_id} has no ref {wanted!r}; it has: {', '.join(sorted(run.results)) or 'none'}")


def _checked_out(repo: workspace.Source, branch_ref: str) -> Path | None:
    out = repo.git(["worktree", "list", "--porcelain", "-z"]).stdout.decode(errors="surrogateescape")
    current = None
    for field in out.split("\0"):
        if field.startswith("worktree "):
            current = Path(field[len("worktree "):])
        elif field == f"branch {branch_ref}":
            return current
    return None


def apply(repo: workspace.Source, run: Run, branch: str, *, ref: str | None = None, allow_protected: bool = False,
          checked_out: bool = False, profile_read_only=()) -> str:
    name, tip = result_ref(run, ref)
    if not run.start:
        raise RunError(f"run {run.run_id} has no start ref; apply by hand: git cherry-pick ...")
    if repo.git(["check-ref-format", "--branch", branch], check=False).returncode != 0:
        raise RunError(f"--branch {branch!r} is not a valid branch name")
    commits = commits_between(repo, run.start, tip)
    if not commits:
        return f"{name}: nothing to apply (no commit after the start)\n"
    merges = [c for c, parents, _ in commits if len(parents) > 1]
    if merges:
        raise RunError(f"{name} holds merge commits ({', '.join(m[:12] for m in merges)}); apply them by hand: "
                       f"git merge {workspace.REFS_ROOT}/{run.run_id}/{name}")
    protected = protected_changes(repo, run.start, tip, _patterns(run, profile_read_only))
    if protected and not allow_protected:
        listed = "; ".join(f"{shown(p)} ({pattern})" for p, pattern in protected.items())
        raise RunError(f"{name} changes read-only-tier paths: {listed}. Review them (agent-run review "
                       f"{run.run_id}) and pass --allow-protected to apply anyway")
    branch_ref = f"refs/heads/{branch}"
    old = repo.git(["rev-parse", "-q", "--verify", branch_ref + "^{commit}"], check=False).stdout.decode().strip() \
        or None
    picks = [c for c, _, _ in commits]
    where = _checked_out(repo, branch_ref) if old else None
    if where is not None:
        if not checked_out:
            raise RunError(f"branch {branch} is checked out in {where}; apply to another branch, or pass "
                           f"--checked-out to cherry-pick into it and its working tree")
        _cherry_pick(repo, where, picks)
        return f"applied {len(picks)} commit(s) of {name} to {branch} (checked out in {where})\n"
    onto = old or run.refs.get("base") or run.start
    scratch = repo.scratch()
    tree = scratch / "worktree"
    try:
        repo.git([*NO_HOOKS, "worktree", "add", "-q", "--detach", str(tree), onto])
        _cherry_pick(repo, tree, picks)
        new = repo.out(["rev-parse", "HEAD"], cwd=tree)
        repo.git(["update-ref", "-m", f"agent-run apply {run.run_id}", branch_ref, new, old or "0" * len(new)])
    finally:
        repo.git(["worktree", "remove", "--force", str(tree)], check=False)
        repo.git(["worktree", "prune"], check=False)
        shutil.rmtree(scratch, ignore_errors=True)
    made = "updated" if old else f"created at {onto[:12]} and"
    return f"branch {branch} {made} given {len(picks)} commit(s) of {name}\n"


def _cherry_pick(repo: workspace.Source, tree: Path, commits: list[str]) -> None:
    done = repo.git([*NO_HOOKS, "cherry-pick", "--allow-empty", "--keep-redundant-commits", *commits], cwd=tree,
                    check=False)
    if done.returncode != 0:
        conflicts = repo.git(["diff", "--name-only", "--diff-filter=U"], cwd=tree, check=False).stdout.decode(
            errors="replace").split()
        repo.git(["cherry-pick", "--abort"], cwd=tree, check=False)
        if not conflicts:
            raise RunError(f"cherry-pick failed ({shown(done.stderr.decode(errors='replace').strip()[-400:])}); "
                           f"nothing was changed")
        raise RunError(f"cherry-pick failed (conflicts in {', '.join(shown(c) for c in conflicts)}); nothing was "
                       f"changed. If the agent built on your uncommitted changes, commit them to a branch first and "
                       f"apply onto it (--branch that-branch)")


def discard(repo: workspace.Source, run: Run, root: Path | None = None) -> str:
    workspace.delete_refs(repo, workspace.run_refs(repo, run.run_id))
    folder = (root or runs_root()) / run.run_id
    removed = ""
    if (folder / "run.json").is_file() and Path(run.record.get("repository", "")) == repo.toplevel:
        shutil.rmtree(folder)
        removed = f" and {folder}"
    return f"discarded {workspace.REFS_ROOT}/{run.run_id}/*{removed}\n"
