"""Reading checkpoints back: listing them, previewing and restoring one (a checkpoint of the
current state is taken first)."""

from __future__ import annotations

from dataclasses import dataclass

from entrypoint.checkpoint.create import store, take_snapshot
from entrypoint.checkpoint.plumbing import (REF_PREFIX, CheckpointError, Repo, Snapshot, commit_snapshot, git,
                                            open_repo, remove_file)


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
        safety = store(repo, commit_snapshot(repo, current, "agent checkpoint before restore", "before-restore"),
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
            remove_file(current.index_file)


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
