"""Reading container image archives with the standard library only.

A docker-archive (.tar, .tar.gz, .tar.bz2/.xz, or the uncompressed stream of dockerTools'
streamLayeredImage) or an OCI image layout (a folder or a tar of one): manifest -> config ->
layers, the layers flattened into one file system (whiteouts and opaque folders applied), each
path with its kind, mode and owner and, on demand, its bytes. No contract here: image/verify.py
judges what this reads.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
MAX_SYMLINK_HOPS = 40

OCI_INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
OCI_MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}


class UnreadableImage(Exception):
    """The input is not an image this tool can read (exit 2)."""



@dataclass(frozen=True)
class Entry:
    kind: str  # file | dir | symlink | other
    mode: int  # permission bits including setuid/setgid/sticky
    uid: int
    gid: int
    linkname: str = ""
    layer: int = -1
    member: str = ""  # the tar member holding the bytes (a hardlink's target)


IMPLICIT_DIR = Entry(kind="dir", mode=0o755, uid=0, gid=0)


@dataclass
class Image:
    name: str
    config: dict
    layers: list[str]
    config_digest: str = ""  # sha256:... of the config blob: the image id engines report
    loadable: bool = False  # a docker-archive, which `podman load` / `docker load` take as is


@dataclass
class Filesystem:
    entries: dict[str, Entry]
    parents: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for path in self.entries:
            parent = posixpath.dirname(path)
            while parent not in self.parents and parent != "/":
                self.parents.add(parent)
                parent = posixpath.dirname(parent)

    def lookup(self, path: str) -> Entry | None:
        """The entry at path, without following a final symlink; a folder that only has
        children (no entry of its own) is what a container runtime creates: root, 0755."""
        entry = self.entries.get(path)
        if entry is None and (path in self.parents or path == "/"):
            return IMPLICIT_DIR
        return entry

    def resolve(self, path: str) -> str | None:
        """Follow symlinks in every component, the way the kernel would inside the
        container. None on a loop."""
        pending = [part for part in reversed(path.split("/")) if part]
        resolved = "/"
        hops = 0
        while pending:
            part = pending.pop()
            if part == ".":
                continue
            if part == "..":
                resolved = posixpath.dirname(resolved)
                continue
            candidate = posixpath.join(resolved, part)
            entry = self.entries.get(candidate)
            if entry is not None and entry.kind == "symlink":
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None
                if entry.linkname.startswith("/"):
                    resolved = "/"
                pending.extend(part for part in reversed(entry.linkname.split("/")) if part)
            else:
                resolved = candidate
        return resolved

    def follow(self, path: str) -> tuple[str, Entry] | None:
        target = self.resolve(path)
        if target is None:
            return None
        entry = self.lookup(target)
        return None if entry is None else (target, entry)


# ---------------------------------------------------------------- reading archives


def normalize(name: str) -> str:
    """A tar member name as an absolute path in the container: `./etc/` -> `/etc`."""
    path = posixpath.normpath("/" + member_name(name))
    return "/" if path.startswith("//") else path


def member_name(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


class Blobs:
    """Files of the outer container: an OCI layout folder or a tar (maybe gzip'd)."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        self._spool = None
        if source.is_dir():
            return
        try:
            self._spool = decompressed_copy(source)
            self._tar = tarfile.open(source) if self._spool is None else tarfile.open(fileobj=self._spool)
            for info in self._tar.getmembers():
                self._members[member_name(info.name)] = info
        except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, zlib.error) as err:
            self.close()
            raise UnreadableImage(f"{source}: not a tar archive or OCI layout folder ({err})") from err

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
        if self._spool is not None:
            self._spool.close()

    def exists(self, name: str) -> bool:
        name = member_name(name)
        if self._tar is None:
            return (self.source / name).is_file()
        return name in self._members

    def open(self, name: str):
        name = member_name(name)
        if self._tar is None:
            try:
                return open(self.source / name, "rb")
            except OSError as err:
                raise UnreadableImage(f"{self.source}: missing {name} ({err.strerror})") from err
        info = self._members.get(name)
        if info is None:
            raise UnreadableImage(f"{self.source}: missing {name}")
        while info.islnk() or info.issym():
            target = member_name(
                info.linkname if info.islnk() else posixpath.join(posixpath.dirname(name), info.linkname)
            )
            info = self._members.get(posixpath.normpath(target))
            if info is None:
                raise UnreadableImage(f"{self.source}: {name} links to a missing member")
        handle = self._tar.extractfile(info)
        if handle is None:
            raise UnreadableImage(f"{self.source}: {name} is not a file")
        return handle

    def read_bytes(self, name: str) -> bytes:
        with self.open(name) as handle:
            return handle.read()

    def read_json(self, name: str):
        return parse_json(self.source, name, self.read_bytes(name))


def parse_json(source: Path, name: str, raw: bytes):
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnreadableImage(f"{source}: {name} is not valid JSON ({err})") from err


COMPRESSORS = ((b"\x1f\x8b", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ\x00", lzma.open))


def decompressed_copy(source: Path):
    """A compressed archive, decompressed once into a temporary file: layers are read in
    manifest order, not archive order, and seeking backwards in a gzip stream restarts it."""
    with open(source, "rb") as handle:
        magic = handle.read(6)
    for prefix, opener in COMPRESSORS:
        if magic.startswith(prefix):
            spool = tempfile.TemporaryFile(prefix="image-verify-")
            try:
                with opener(source, "rb") as compressed:
                    shutil.copyfileobj(compressed, spool, 1 << 20)
            except BaseException:
                spool.close()
                raise
            spool.seek(0)
            return spool
    return None


def oci_blob_name(digest: str) -> str:
    algorithm, _, hexdigest = str(digest).partition(":")
    if not algorithm or not hexdigest or "/" in hexdigest or ".." in hexdigest:
        raise UnreadableImage(f"bad digest {digest!r}")
    return f"blobs/{algorithm}/{hexdigest}"


def platform_name(descriptor: dict) -> str:
    platform = descriptor.get("platform") or {}
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    return "/".join(p for p in parts if p)


def load_images(blobs: Blobs) -> list[Image]:
    if blobs.exists("manifest.json"):
        return docker_archive_images(blobs)
    if blobs.exists("index.json"):
        return oci_layout_images(blobs, blobs.read_json("index.json"), "")
    raise UnreadableImage(
        f"{blobs.source}: neither manifest.json (docker-archive) nor index.json (OCI layout) found"
    )


def docker_archive_images(blobs: Blobs) -> list[Image]:
    manifest = blobs.read_json("manifest.json")
    if not isinstance(manifest, list) or not manifest:
        raise UnreadableImage(f"{blobs.source}: manifest.json is not a non-empty list")
    images = []
    for number, item in enumerate(manifest):
        if not isinstance(item, dict) or not isinstance(item.get("Config"), str):
            raise UnreadableImage(f"{blobs.source}: manifest.json entry {number} has no Config")
        layers = item.get("Layers")
        if not isinstance(layers, list) or not all(isinstance(layer, str) for layer in layers):
            raise UnreadableImage(f"{blobs.source}: manifest.json entry {number} has no Layers list")
        tags = item.get("RepoTags") or []
        name = tags[0] if tags else f"image {number}"
        config_bytes = blobs.read_bytes(item["Config"])
        images.append(Image(name=name, config=parse_json(blobs.source, item["Config"], config_bytes), layers=layers,
                            config_digest="sha256:" + hashlib.sha256(config_bytes).hexdigest(), loadable=True))
    return images


def oci_layout_images(blobs: Blobs, index: dict, label: str) -> list[Image]:
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or not manifests:
        raise UnreadableImage(f"{blobs.source}: OCI index has no manifests")
    images = []
    for descriptor in manifests:
        if not isinstance(descriptor, dict) or "digest" not in descriptor:
            raise UnreadableImage(f"{blobs.source}: OCI index entry without a digest")
        media_type = descriptor.get("mediaType", "")
        name = platform_name(descriptor) or (descriptor.get("annotations") or {}).get(
            "org.opencontainers.image.ref.name", descriptor["digest"][:19]
        )
        document = blobs.read_json(oci_blob_name(descriptor["digest"]))
        document_type = document.get("mediaType", media_type) if isinstance(document, dict) else ""
        if document_type in OCI_INDEX_TYPES or (isinstance(document, dict) and "manifests" in document):
            images.extend(oci_layout_images(blobs, document, name))
            continue
        if document_type and document_type not in OCI_MANIFEST_TYPES:
            raise UnreadableImage(f"{blobs.source}: unsupported manifest type {document_type}")
        config = document.get("config") or {}
        layers = document.get("layers")
        if "digest" not in config or not isinstance(layers, list):
            raise UnreadableImage(f"{blobs.source}: OCI manifest {descriptor['digest']} lacks config or layers")
        images.append(
            Image(
                name=name if not label else f"{label}:{name}",
                config=blobs.read_json(oci_blob_name(config["digest"])),
                layers=[oci_blob_name(layer["digest"]) for layer in layers],
                config_digest=str(config["digest"]),
            )
        )
    return images


def layer_members(blobs: Blobs, layer: str) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    handle = blobs.open(layer)
    try:
        with tarfile.open(fileobj=handle, mode="r|*") as tar:
            for info in tar:
                yield tar, info
    except (tarfile.TarError, EOFError, OSError) as err:
        raise UnreadableImage(
            f"{blobs.source}: layer {layer} is not a tar, gzip'd tar or bzip2/xz tar ({err})"
        ) from err
    finally:
        handle.close()


def entry_kind(info: tarfile.TarInfo) -> str:
    if info.isdir():
        return "dir"
    if info.issym():
        return "symlink"
    if info.isfile() or info.islnk():
        return "file"
    return "other"


def apply_whiteouts(entries: dict[str, Entry], removed: set[str], opaque: set[str]) -> None:
    """Drop what a layer's whiteouts hide: `.wh.NAME` hides NAME and all under it,
    `.wh..wh..opq` hides everything lower layers put inside its folder."""
    if not removed and not opaque:
        return
    prefixes = tuple(prefix.rstrip("/") + "/" for prefix in removed | opaque)
    for path in list(entries):
        if path in removed or path.startswith(prefixes):
            del entries[path]


def flatten(blobs: Blobs, layers: list[str]) -> Filesystem:
    entries: dict[str, Entry] = {}
    for number, layer in enumerate(layers):
        removed: set[str] = set()
        opaque: set[str] = set()
        added: dict[str, Entry] = {}
        members_by_path: dict[str, str] = {}
        for _, info in layer_members(blobs, layer):
            path = normalize(info.name)
            base = posixpath.basename(path)
            parent = posixpath.dirname(path)
            if base == OPAQUE_MARKER:
                opaque.add(parent)
                continue
            if base.startswith(WHITEOUT_PREFIX):
                removed.add(posixpath.join(parent, base[len(WHITEOUT_PREFIX) :]))
                continue
            data_member = info.name
            if info.islnk():
                data_member = members_by_path.get(normalize(info.linkname), info.linkname)
            members_by_path[path] = data_member
            added[path] = Entry(
                kind=entry_kind(info),
                mode=stat.S_IMODE(info.mode),
                uid=info.uid,
                gid=info.gid,
                linkname=info.linkname if info.issym() else "",
                layer=number,
                member=data_member,
            )
        apply_whiteouts(entries, removed, opaque)
        replaced_dirs = {p for p, e in added.items() if e.kind != "dir" and entries.get(p, e).kind == "dir"}
        apply_whiteouts(entries, set(), replaced_dirs)
        entries.update(added)
    entries.pop("/", None)
    return Filesystem(entries)


def read_contents(blobs: Blobs, layers: list[str], fs: Filesystem, paths: Iterable[str]) -> dict[str, bytes]:
    """The bytes of each path (symlinks followed); paths that are not regular files are left out."""
    wanted: dict[int, dict[str, list[str]]] = {}
    for path in paths:
        found = fs.follow(path)
        if found is None or found[1].kind != "file":
            continue
        entry = found[1]
        wanted.setdefault(entry.layer, {}).setdefault(member_name(entry.member), []).append(path)
    contents: dict[str, bytes] = {}
    for number, by_member in sorted(wanted.items()):
        for tar, info in layer_members(blobs, layers[number]):
            requesters = by_member.get(member_name(info.name))
            if not requesters or not info.isfile():
                continue
            handle = tar.extractfile(info)
            data = handle.read() if handle is not None else b""
            for path in requesters:
                contents[path] = data
    return contents


@contextmanager
def opened(source: Path) -> Iterator[tuple[Blobs, list[Image]]]:
    """The archive's blobs and the images it holds; every read error, here or in the body of
    the with-statement, names `source`."""
    if not source.exists():
        raise UnreadableImage(f"{source}: no such file or folder")
    blobs = Blobs(source)
    try:
        yield blobs, load_images(blobs)
    except UnreadableImage as err:
        if str(source) in str(err):
            raise
        raise UnreadableImage(f"{source}: {err}") from err
    finally:
        blobs.close()
