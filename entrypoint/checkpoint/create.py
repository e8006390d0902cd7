"""Creating a checkpoint: the fast path (fastpath.py) when it records exactly what `git add` would,
else the general path here: `git add` on a temporary copy of the index, which is also what a
restore uses to record the state it is about to replace."""

from __future__ import annotations

import os
import shutil
import tempfile
import time

from entrypoint.checkpoint.fastpath import SlowPath, fast_checkpoint_commit
from entrypoint.checkpoint.plumbing import (REF_PREFIX, Background, CheckpointError, Repo, Snapshot, commit_snapshot,
                                            git, open_repo, remove_file)


def _index_copy(repo: Repo, purpose: str) -> str:
    handle, path = tempfile.mkstemp(prefix=f"agent-checkpoint-{purpose}-", dir=repo.git_dir)
    os.close(handle)
    real_index = os.path.join(repo.git_dir, "index")
    if os.path.exists(real_index):
        # A copy keeps the stat cache, so git re-reads only files that changed. It must keep the
        # index's mtime too: git re-checks the content of entries not older than the index file
        # ("racily clean"), and a copy stamped now would hide a same-second change.
        shutil.copy2(real_index, path)
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
        remove_file(work_index)
        raise
    finally:
        remove_file(index_copy)
    if not keep_index:
        remove_file(work_index)
        work_index = None
    return Snapshot(work_tree, index_tree, work_index)


def store(repo: Repo, commit: str, tool: str, now: float | None) -> str:
    moment = time.time() if now is None else now
    # Milliseconds keep names unique and make name order the time order.
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(moment)) + f".{int(moment * 1000) % 1000:03d}Z"
    base = f"{stamp}-{tool}"
    for attempt in range(1, 100):
        name = base if attempt == 1 else f"{base}-{attempt}"
        # Create-only: the zero old value (as long as the object ids) makes update-ref fail if the
        # name is taken.
        try:
            git(repo.top, "update-ref", "-m", "agent checkpoint", REF_PREFIX + name, commit, "0" * len(commit))
            return name
        except CheckpointError:
            if not git(repo.top, "rev-parse", "-q", "--verify", REF_PREFIX + name, check=False):
                raise
    raise CheckpointError(f"no free checkpoint name for {base}")


def create(workspace: str, tool: str, now: float | None = None) -> str:
    repo = open_repo(workspace)
    try:
        commit = fast_checkpoint_commit(repo, tool, "agent checkpoint", time.time())
    except (SlowPath, CheckpointError):
        # git's own `git add` handles what the fast path does not, and is the proven way when the
        # fast path fails for a reason nobody foresaw.
        commit = commit_snapshot(repo, take_snapshot(repo), "agent checkpoint", tool)
    return store(repo, commit, tool, now)
