"""Creating a checkpoint the fast way: one read-only `git status` lists what differs from HEAD and
the index and what is untracked; the changed files are read here and streamed with both commits
into one `git fast-import` (one pack instead of thousands of loose objects). Whatever git would
transform or treat specially on `git add` (content filters and text attributes, autocrlf,
conflicts, submodules, intent-to-add entries, core.filemode/core.symlinks off, huge files) raises
SlowPath, and create.py takes the general path instead.

.git/agent-checkpoint-cache.json keeps, per file read, its stat data and blob id, and the trees of
the previous fast checkpoint: a file whose stat data (ctime included) is unchanged and was already
older than the read by RACY_MARGIN_NS is not read again, and an unchanged state reuses the trees.

On its own so that it can be judged, measured (benchmarks/entrypoint_bench.py) or dropped: the
general path alone records the same checkpoints, more slowly.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass

from entrypoint.checkpoint.plumbing import (Background, CheckpointError, Repo, Snapshot, commit_snapshot,
                                            checkpoint_message, failure, git_bytes, git_command, git_env, remove_file)


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
    command = git_command(repo.top, ("-c", "pack.compression=0", "fast-import", "--quiet", "--done"), None)
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
                                       env=git_env(env))
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
            remove_file(os.path.join(repo.git_dir, f"fast_import_crash_{process.pid}"))
            errors.seek(0)
            raise failure(("fast-import",), errors.read(), process.returncode)
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
    stream.write(_commit_header(work_mark, moment, checkpoint_message(repo, title, tool)))
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
        remove_file(temporary)
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
            return commit_snapshot(repo, Snapshot(cache["commit"] + "^{tree}", cache["index_commit"] + "^{tree}", None),
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
