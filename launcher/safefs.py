"""Host file operations the launcher does as root near folders an agent can write.

Rules: a folder the agent can write is opened once, by descriptor, without following a link, and
everything in it is reached relative to that descriptor (openat-style); a file is read only when
it is a regular file, opened O_NONBLOCK (a FIFO never blocks the launcher) and O_NOFOLLOW, and up
to a size limit; ownership is changed on an opened descriptor or on a link itself, never through
a path the agent could swap.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
MEMORY_FSTYPES = ("tmpfs", "ramfs")


class UnsafeFile(Exception):
    """A file that is not what it should be (a link, a FIFO, a device, too large, missing)."""


def kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def open_below(base: Path, relative: Path) -> int:
    """A descriptor for base/relative, opened O_NONBLOCK|O_NOFOLLOW without following a symlink at
    any level below base (every folder on the way is opened by descriptor, O_NOFOLLOW)."""
    parts = relative.parts
    if relative.is_absolute() or not parts or ".." in parts:
        raise OSError(errno.EINVAL, f"not a plain path below {base}")
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                next_fd = os.open(part, DIR_FLAGS, dir_fd=fd)
            except NotADirectoryError:
                # O_DIRECTORY | O_NOFOLLOW on a symlink says ENOTDIR: tell the two apart.
                if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise OSError(errno.ELOOP, "symbolic link") from None
                raise
            os.close(fd)
            fd = next_fd
        return os.open(parts[-1], FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)


def read_fd_capped(fd: int, limit: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes of an opened regular file, and whether there was more."""
    chunks, total = [], 0
    while total <= limit:
        chunk = os.read(fd, min(1 << 20, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    data = b"".join(chunks)
    return data[:limit], total > limit


def read_regular(folder: Path, name: str, limit: int) -> bytes:
    """The bytes of folder/name if it is a regular file of at most `limit` bytes.
    `folder` itself must not be a link; `name` is one path component."""
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"{name!r} is not one file name")
    try:
        dir_fd = os.open(folder, DIR_FLAGS)
    except OSError as error:
        raise UnsafeFile(f"{folder}: {error.strerror}") from None
    try:
        try:
            fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
        except OSError as error:
            why = "a symbolic link" if error.errno == errno.ELOOP else error.strerror  # O_NOFOLLOW met a link
            raise UnsafeFile(f"{folder / name}: {why}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise UnsafeFile(f"{folder / name}: not a regular file ({kind(info.st_mode)})")
            if info.st_size > limit:
                raise UnsafeFile(f"{folder / name}: {info.st_size} bytes, more than the {limit} allowed")
            data, more = read_fd_capped(fd, limit)
            if more:
                raise UnsafeFile(f"{folder / name}: grew past the {limit} bytes allowed while read")
            return data
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)


def write_new(path: Path, data: bytes, mode: int = 0o600, owner: tuple[int, int] | None = None) -> None:
    """Create path (it must not exist, not even as a link), owned and moded through its descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        if owner is not None:
            os.fchown(fd, *owner)
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def make_dir(path: Path, mode: int = 0o700, owner: tuple[int, int] | None = None) -> None:
    """A new folder (it must not exist), owned and moded through its descriptor."""
    os.mkdir(path, 0o700)
    fd = os.open(path, DIR_FLAGS)
    try:
        if owner is not None:
            os.fchown(fd, *owner)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def chown_tree(root: Path, uid: int, gid: int) -> None:
    """Give a whole tree to uid:gid without following any link in it (links themselves change)."""
    fd = os.open(root, DIR_FLAGS)
    try:
        os.fchown(fd, uid, gid)
    finally:
        os.close(fd)
    for _, dirs, files, dir_fd in os.fwalk(root, follow_symlinks=False):
        for name in dirs + files:
            os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)


def filesystem_type(path: Path, mountinfo: str = "/proc/self/mountinfo") -> str:
    """The type of the file system holding `path` (its longest mount point prefix)."""
    target = os.path.realpath(path)
    best, best_type = "", ""
    with open(mountinfo, encoding="utf-8", errors="surrogateescape") as handle:
        for line in handle:
            fields = line.split()
            if "-" not in fields:
                continue
            point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
                .replace("\\134", "\\")
            fstype = fields[fields.index("-") + 1]
            inside = point == "/" or target == point or target.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, best_type = point, fstype
    return best_type


MEMORY_PARENTS = (Path("/run"), Path("/dev/shm"))


def memory_parent() -> Path | None:
    """Where in-memory run folders go: /run when it is a tmpfs (systemd hosts), else /dev/shm."""
    return next((p for p in MEMORY_PARENTS if p.is_dir() and filesystem_type(p) in MEMORY_FSTYPES), None)


def private_folder(path: Path) -> None:
    """path exists as a real folder of root's, mode 0700 (made so if missing). /dev/shm is writable by
    everyone: a folder or link someone else put there first is refused, never used."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise UnsafeFile(f"{path} exists but is not a private folder of uid {os.geteuid()} "
                         f"({'a link' if stat.S_ISLNK(info.st_mode) else oct(info.st_mode & 0o777)}, "
                         f"owner {info.st_uid}); remove it")
