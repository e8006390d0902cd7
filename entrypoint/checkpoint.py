"""Checkpoints of a git workspace: HEAD, the index, the working tree and untracked (not ignored)
files, recorded without touching the working tree or the index.

A checkpoint is a commit under refs/agent/checkpoints/<UTC time>-<tool>, built like `git stash`:
its tree is the working tree, its parents are HEAD and a commit of the index. Trailers record where
HEAD pointed. `agent-checkpoint` lists, previews and restores them.

Creating one (the fast path): one read-only `git status` lists what differs from HEAD and the
index and what is untracked; the changed files are read here and streamed with both commits into
one `git fast-import` (one pack instead of thousands of loose objects). Whatever git would
transform or treat specially on `git add` (content filters and text attributes, autocrlf,
conflicts, submodules, intent-to-add entries, core.filemode/core.symlinks off, huge files) takes
the general path instead: `git add` on a temporary copy of the index.

.git/agent-checkpoint-cache.json keeps, per file read, its stat data and blob id, and the trees of
the previous fast checkpoint: a file whose stat data (ctime included) is unchanged and was already
older than the read by RACY_MARGIN_NS is not read again, and an unchanged state reuses the trees.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
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


def git_bytes(repo_dir: str, *args: str, env: dict | None = None, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(_git_command(repo_dir, args, None), capture_output=True, env=_git_env(env),
                              input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)
    except FileNotFoundError:
        raise CheckpointError("git is not installed")
    if done.returncode != 0:
        raise _failure(args, done.stderr, done.returncode)
    return done.stdout


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
    head = Background(top, "rev-parse", "-q", "--verify", "HEAD^{commit}")
    head_ref = Background(top, "symbolic-ref", "-q", "HEAD")
    return Repo(top, git_dir, _text(head.result(check=False)) or None, _text(head_ref.result(check=False)) or None)


def _text(out: bytes) -> str:
    return out.decode("utf-8", "surrogateescape").strip()


def empty_tree(repo: Repo) -> str:
    return git(repo.top, "hash-object", "-w", "-t", "tree", "--stdin", stdin=b"")


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
        # Create-only: the zero old value (as long as the object ids) makes update-ref fail if the
        # name is taken.
        try:
            git(repo.top, "update-ref", "-m", "agent checkpoint", REF_PREFIX + name, commit, "0" * len(commit))
            return name
        except CheckpointError:
            if not git(repo.top, "rev-parse", "-q", "--verify", REF_PREFIX + name, check=False):
                raise
    raise CheckpointError(f"no free checkpoint name for {base}")


class SlowPath(Exception):
    """The workspace needs git's own `git add`: the fast path would not record the same thing."""


# fast-import frees and re-allocates zlib's state per object; without these glibc returns the
# memory to the kernel each time and the page faults cost more than the import (250 ms -> 90 ms).
FAST_IMPORT_MALLOC = "glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=33554432"
LARGE_FILE = 32 * 1024 * 1024  # read into memory here; bigger files go through `git add`
SCRATCH_REF = "refs/agent/checkpoint-in-progress"  # fast-import's branch; reset, so never written
CACHE_FILE = "agent-checkpoint-cache.json"  # in .git: what the previous fast checkpoint read
RACY_MARGIN_NS = 2_000_000_000
# What decides how `git add` stores a file, and the object format (cached blob ids are SHA-1).
STORAGE_KEYS = (r"^(core\.(filemode|symlinks|autocrlf|attributesfile|sparsecheckout)"
                r"|extensions\.objectformat)$")
FILTER_ATTRIBUTES = ("filter", "text", "eol", "crlf", "ident", "working-tree-encoding")


@dataclass(frozen=True)
class Changes:
    """What `git status` reported, as tree edits (paths relative to the top, bytes)."""
    index_removed: list  # paths in HEAD, not in the index
    index_set: list  # (mode, oid, path) in the index, differing from HEAD
    work_removed: list  # tracked paths missing from the working tree
    work_read: list  # tracked paths changed in the working tree, then untracked ones


def parse_status(raw: bytes) -> Changes:
    """`git status --porcelain=v2 -z --untracked-files=all --no-renames` -> tree edits.

    Raises SlowPath for what `git add` treats specially: conflicts, submodules, intent-to-add."""
    changes = Changes([], [], [], [])
    for record in raw.split(b"\0"):
        kind = record[:1]
        if kind == b"?":
            if not record.endswith(b"/"):  # a trailing slash is a nested repository: not recorded
                changes.work_read.append(record[2:])
            continue
        if kind != b"1":
            if kind in (b"", b"#", b"!"):
                continue
            raise SlowPath(f"status entry {record[:1]!r}")  # unmerged or renamed
        fields = record.split(b" ", 8)
        xy, submodule, modes, index_oid, path = fields[1], fields[2], fields[3:6], fields[7], fields[8]
        if submodule != b"N..." or b"160000" in modes:
            raise SlowPath("submodule")
        staged, unstaged = xy[:1], xy[1:]
        if staged == b"D":
            changes.index_removed.append(path)
        elif staged in (b"M", b"T", b"A"):
            changes.index_set.append((modes[1], index_oid, path))
        elif staged != b".":
            raise SlowPath(f"status {xy!r}")
        if unstaged == b"D":
            changes.work_removed.append(path)
        elif unstaged in (b"M", b"T"):
            changes.work_read.append(path)
        elif unstaged != b".":
            raise SlowPath(f"status {xy!r}")  # A: intent-to-add
    return changes


def _config_flag(values: dict, key: str, default: bool) -> bool:
    value = values.get(key)
    if value is None:
        return default
    value = value.lower()
    if value in ("true", "yes", "on", "1", ""):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise SlowPath(f"{key}={value}")


def parse_config(raw: bytes) -> dict:
    """`git config -z --get-regexp` -> {key: last value}."""
    values = {}
    for record in raw.split(b"\0"):
        if record:
            key, _, value = record.decode("utf-8", "surrogateescape").partition("\n")
            values[key] = value
    return values


def check_plain_storage(values: dict) -> None:
    """Raise SlowPath unless `git add` stores files byte for byte with the mode lstat gives."""
    if not _config_flag(values, "core.filemode", True) or not _config_flag(values, "core.symlinks", True):
        raise SlowPath("core.filemode or core.symlinks is off")
    if values.get("core.autocrlf", "false").lower() not in ("false", "no", "off", "0"):
        raise SlowPath("core.autocrlf")
    if _config_flag(values, "core.sparsecheckout", False):
        raise SlowPath("sparse checkout")  # attributes files may exist in the index only
    if values.get("extensions.objectformat", "sha1").lower() != "sha1":
        raise SlowPath("not a SHA-1 repository")


def attribute_files(repo: Repo, values: dict, paths: list) -> list[str]:
    """Every gitattributes file that could apply to PATHS (the folders' own and the global ones)."""
    candidates = {os.path.join(repo.git_dir, "info", "attributes")}
    if not os.environ.get("GIT_ATTR_NOSYSTEM"):
        candidates.add("/etc/gitattributes")
    configured = values.get("core.attributesfile")
    if configured:
        configured = os.path.expanduser(configured)
        if not os.path.isabs(configured):
            return [configured]  # relative to whatever git takes it from: let check-attr decide
        candidates.add(configured)
    else:
        config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
        candidates.add(os.path.join(config_home, "git", "attributes"))
    folders = {b""}
    for folder in {path.rpartition(b"/")[0] for path in paths}:
        while folder not in folders:
            folders.add(folder)
            folder = folder.rpartition(b"/")[0]
    top = os.fsencode(repo.top)
    candidates.update(os.fsdecode(os.path.join(top, folder, b".gitattributes")) for folder in folders)
    return sorted(path for path in candidates if os.path.lexists(path))


def check_no_filters(repo: Repo, values: dict, changes: Changes) -> None:
    """Raise SlowPath if any attribute would make `git add` store other bytes than the file's."""
    paths = changes.work_read
    # A .gitattributes deleted from the working tree but still in the index applies as well.
    in_index_only = any(os.path.basename(path) == b".gitattributes" for path in changes.work_removed)
    if not in_index_only and not attribute_files(repo, values, paths):
        return
    out = git_bytes(repo.top, "check-attr", "-z", "--stdin", *FILTER_ATTRIBUTES, stdin=b"\0".join(paths) + b"\0")
    answers = out.split(b"\0")[2::3]
    if any(answer != b"unspecified" for answer in answers):
        raise SlowPath("content filters or text attributes")


NEEDS_ESCAPE = re.compile(rb'[\x00-\x1f\x7f"\\]')


def quote_path(path: bytes) -> bytes:
    """C-style quoting, which fast-import accepts for every path."""
    if not NEEDS_ESCAPE.search(path):
        return b'"' + path + b'"'
    out = bytearray(b'"')
    for byte in path:
        if byte in (0x22, 0x5C):
            out += b"\\" + bytes([byte])
        elif byte < 0x20 or byte == 0x7F:
            out += b"\\%03o" % byte
        else:
            out.append(byte)
    return bytes(out + b'"')


def worktree_stat(info: os.stat_result) -> list:
    return [info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino, info.st_dev, info.st_mode]


def cacheable(stat_key: list, read_started_ns: int) -> bool:
    """A file whose timestamps are older than the read by more than any timestamp granularity: a
    later change gives it another mtime/ctime, so equal stat data proves equal content."""
    return max(stat_key[0], stat_key[1]) < read_started_ns - RACY_MARGIN_NS


@dataclass(frozen=True)
class WorktreeFile:
    mode: bytes
    oid: str  # known only when content is None
    stat_key: list
    content: bytes | None  # None: unchanged since a previous checkpoint stored it as `oid`


def read_worktree_file(top: bytes, path: bytes, cached: dict) -> WorktreeFile | None:
    """The file as `git add` would store it (None when no file is there any more). A file whose
    stat data equals the cached entry is not read again."""
    full = top + b"/" + path
    try:
        info = os.lstat(full)
        stat_key = worktree_stat(info)
        entry = cached.get(path.decode("utf-8", "surrogateescape"))
        if entry and entry[0] == stat_key:
            return WorktreeFile(entry[1].encode(), entry[2], stat_key, None)
        if stat.S_ISLNK(info.st_mode):
            return WorktreeFile(b"120000", "", stat_key, os.readlink(full))
        if not stat.S_ISREG(info.st_mode):
            return None
        if info.st_size > LARGE_FILE:
            raise SlowPath("large file")
        # In case the file was swapped since the lstat: no following a link, no waiting on a fifo.
        handle = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            content = _read_all(handle, info.st_size)
        finally:
            os.close(handle)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SlowPath(str(error))
    return WorktreeFile(b"100755" if info.st_mode & stat.S_IXUSR else b"100644", "", stat_key, content)


def _read_all(handle: int, size: int) -> bytes:
    chunks = [os.read(handle, size + 1)]
    while chunks[-1]:
        chunks.append(os.read(handle, 1 << 20))
    return b"".join(chunks)


def blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _signature(moment: float) -> bytes:
    offset = time.localtime(moment).tm_gmtoff // 60
    sign = b"+" if offset >= 0 else b"-"
    zone = b"%s%02d%02d" % (sign, abs(offset) // 60, abs(offset) % 60)
    return (b"agent-checkpoint <agent-checkpoint@localhost> %d " % int(moment)) + zone


def _commit_header(mark: int, moment: float, message: str) -> bytes:
    signature = _signature(moment)
    data = message.encode()
    return (b"commit %s\nmark :%d\nauthor %s\ncommitter %s\ndata %d\n%s\n"
            % (SCRATCH_REF.encode(), mark, signature, signature, len(data), data))


def _index_edits(changes: Changes) -> bytes:
    removals = b"".join(b"D %s\n" % quote_path(path) for path in changes.index_removed)
    sets = b"".join(b"M %s %s %s\n" % (mode, oid, quote_path(path)) for mode, oid, path in changes.index_set)
    return removals + sets


@dataclass(frozen=True)
class Imported:
    commit: str
    index_commit: str
    index_tree: str
    files: dict  # path -> [stat, mode, oid] for the files safe to trust by stat next time


def write_fast_import(repo: Repo, changes: Changes, tool: str, title: str, moment: float,
                      cached: dict, index_tree: str | None) -> Imported:
    """Stream the changed files and both commits into one fast-import. INDEX_TREE, when known
    (unchanged since the previous checkpoint), replaces building the index tree again."""
    env = {"GLIBC_TUNABLES": ":".join(filter(None, (os.environ.get("GLIBC_TUNABLES"), FAST_IMPORT_MALLOC)))}
    command = _git_command(repo.top, ("-c", "pack.compression=0", "fast-import", "--quiet", "--done"), None)
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
                                       env=_git_env(env))
        except FileNotFoundError:
            raise CheckpointError("git is not installed")
        files = None
        try:
            files = _feed(process.stdin, repo, changes, tool, title, moment, cached, index_tree)
        except BrokenPipeError:
            pass  # fast-import stopped early; its exit code and message say why
        finally:
            try:
                process.stdin.close()
            except BrokenPipeError:
                files = None
            answers = process.stdout.read().decode().splitlines()
            process.wait()
        if process.returncode != 0 or files is None:
            _remove(os.path.join(repo.git_dir, f"fast_import_crash_{process.pid}"))
            errors.seek(0)
            raise _failure(("fast-import",), errors.read(), process.returncode)
    # get-mark, get-mark, then ls of the index commit's root: "040000 tree <oid>\t"
    ids = answers[:2] + answers[2:3][0].split()[2:3] if len(answers) == 3 else []
    if len(ids) != 3 or any(len(oid) != 40 for oid in ids):
        raise CheckpointError(f"git fast-import gave no commits: {answers!r}")
    return Imported(ids[1], ids[0], ids[2], files)


def _feed(stream, repo: Repo, changes: Changes, tool: str, title: str, moment: float, cached: dict,
          index_tree: str | None) -> dict:
    """Write the stream; on SlowPath end it cleanly (the blobs sent stay unreferenced) and re-raise."""
    top = os.fsencode(repo.top)
    read_started_ns = time.time_ns()
    stream.write(b"reset %s\n" % SCRATCH_REF.encode())
    edits = [b"D %s\n" % quote_path(path) for path in changes.work_removed]
    files = {}
    try:
        for mark, path in enumerate(changes.work_read, start=1):
            found = read_worktree_file(top, path, cached)
            if found is None:
                edits.append(b"D %s\n" % quote_path(path))
                continue
            if found.content is None:
                edits.append(b"M %s %s %s\n" % (found.mode, found.oid.encode(), quote_path(path)))
            else:
                stream.write(b"blob\nmark :%d\ndata %d\n" % (mark, len(found.content)))
                stream.write(found.content)
                stream.write(b"\n")
                edits.append(b"M %s :%d %s\n" % (found.mode, mark, quote_path(path)))
            if cacheable(found.stat_key, read_started_ns):
                oid = found.oid or blob_oid(found.content)
                files[path.decode("utf-8", "surrogateescape")] = [found.stat_key, found.mode.decode(), oid]
    except SlowPath:
        stream.write(b"done\n")
        raise
    index_mark, work_mark = len(changes.work_read) + 1, len(changes.work_read) + 2
    head = repo.head.encode() if repo.head else None
    index_edits = b'M 040000 %s ""\n' % index_tree.encode() if index_tree else _index_edits(changes)
    stream.write(_commit_header(index_mark, moment, f"index of {title}\n"))
    stream.write((b"from %s\n" % head if head else b"") + index_edits + b"\n")
    message = (f"{title}\n\nAgent-Tool: {tool}\nAgent-Head: {repo.head or 'unborn'}\n"
               f"Agent-Head-Ref: {repo.head_ref or 'detached'}\n")
    stream.write(_commit_header(work_mark, moment, message))
    parents = b"from %s\nmerge :%d\n" % (head, index_mark) if head else b"from :%d\n" % index_mark
    # Removals first: a path can turn from a file into a folder or back.
    removals = b"".join(edit for edit in edits if edit.startswith(b"D "))
    sets = b"".join(edit for edit in edits if edit.startswith(b"M "))
    stream.write(parents + index_edits + removals + sets + b"\n")
    stream.write(b'get-mark :%d\nget-mark :%d\nls :%d ""\nreset %s\ndone\n'
                 % (index_mark, work_mark, index_mark, SCRATCH_REF.encode()))
    return files


def _cache_path(repo: Repo) -> str:
    return os.path.join(repo.git_dir, CACHE_FILE)


def load_cache(repo: Repo) -> dict:
    """The previous fast checkpoint's record; empty when missing or not well-formed."""
    try:
        with open(_cache_path(repo), "rb") as handle:
            cache = json.loads(handle.read())
    except (OSError, ValueError):
        return {}
    if not isinstance(cache, dict) or not isinstance(cache.get("files"), dict):
        return {}
    for key in ("head", "status", "commit", "index_commit", "index_tree", "index_edits"):
        if not isinstance(cache.get(key), str):
            return {}
    for entry in cache["files"].values():
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], list)
                and isinstance(entry[1], str) and isinstance(entry[2], str) and len(entry[2]) == 40):
            return {}
    return cache


def save_cache(repo: Repo, cache: dict) -> None:
    handle, temporary = tempfile.mkstemp(prefix="agent-checkpoint-cache-", dir=repo.git_dir)
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(cache, out)
        os.replace(temporary, _cache_path(repo))
    except BaseException:
        _remove(temporary)
        raise


def unchanged_since(cache: dict, head: str, status_digest: str, top: bytes, paths: list) -> bool:
    """True when the previous fast checkpoint recorded exactly this state: the same HEAD, the same
    `git status`, and every file it had to read still has the stat data it had then."""
    if cache.get("head") != head or cache.get("status") != status_digest:
        return False
    files = cache["files"]
    for path in paths:
        entry = files.get(path.decode("utf-8", "surrogateescape"))
        try:
            if entry is None or entry[0] != worktree_stat(os.lstat(top + b"/" + path)):
                return False
        except OSError:
            return False
    return True


def fast_checkpoint_commit(repo: Repo, tool: str, title: str, moment: float) -> str:
    """The checkpoint commit, built without touching the index. Raises SlowPath when it must not."""
    # --no-optional-locks: status must not write the refreshed index back.
    status = Background(repo.top, "--no-optional-locks", "status", "--porcelain=v2", "-z",
                        "--untracked-files=all", "--no-renames", "--ignore-submodules=dirty")
    config = Background(repo.top, "config", "-z", "--get-regexp", STORAGE_KEYS)
    values = parse_config(config.result(check=False))
    raw_status = status.result()
    changes = parse_status(raw_status)
    check_plain_storage(values)
    check_no_filters(repo, values, changes)
    cache = load_cache(repo)
    head, status_digest = repo.head or "", hashlib.sha1(raw_status).hexdigest()
    index_digest = hashlib.sha1(_index_edits(changes)).hexdigest()
    if cache and unchanged_since(cache, head, status_digest, os.fsencode(repo.top), changes.work_read):
        try:
            return _commit(repo, Snapshot(cache["commit"] + "^{tree}", cache["index_commit"] + "^{tree}", None),
                           title, tool)
        except CheckpointError:
            cache = {}  # its commits are gone (pruned): build the trees again
    same_index = cache.get("head") == head and cache.get("index_edits") == index_digest
    try:
        imported = write_fast_import(repo, changes, tool, title, moment, cache.get("files", {}),
                                     cache["index_tree"] if same_index else None)
    except CheckpointError:
        if not cache:
            raise
        imported = write_fast_import(repo, changes, tool, title, moment, {}, None)  # a cached object is gone
    try:
        save_cache(repo, {"head": head, "status": status_digest, "commit": imported.commit,
                          "index_commit": imported.index_commit, "index_tree": imported.index_tree,
                          "index_edits": index_digest, "files": imported.files})
    except OSError:
        pass  # only the next checkpoint's speed depends on it
    return imported.commit


def create(workspace: str, tool: str, now: float | None = None) -> str:
    repo = open_repo(workspace)
    try:
        commit = fast_checkpoint_commit(repo, tool, "agent checkpoint", time.time())
    except (SlowPath, CheckpointError):
        # git's own `git add` handles what the fast path does not, and is the proven way when the
        # fast path fails for a reason nobody foresaw.
        commit = _commit(repo, take_snapshot(repo), "agent checkpoint", tool)
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
