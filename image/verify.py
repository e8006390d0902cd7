"""image-verify: check a container image archive against image/contract.json.

Reads a docker-archive (.tar, .tar.gz, or the uncompressed stream of dockerTools'
streamLayeredImage) or an OCI image layout (a folder or a tar of one) with the standard
library only, flattens the layers (whiteouts and opaque folders included) and checks the
image config and files against the contract. Exit 0: the image keeps the contract;
1: it does not (each failure is printed with its path and the fix); 2: unreadable input.
"""

from __future__ import annotations

import argparse
import bz2
import fnmatch
import gzip
import hashlib
import json
import lzma
import posixpath
import shutil
import stat
import sys
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

CONTRACT_PATH = Path(__file__).with_name("contract.json")
SCHEMA_PATH = Path(__file__).with_name("contract.schema.json")

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


class ContractError(Exception):
    """The contract file itself is missing or malformed (exit 2)."""


@dataclass(frozen=True)
class Failure:
    path: str
    problem: str
    fix: str

    def render(self) -> str:
        return f"FAIL {self.path}: {self.problem}\n     fix: {self.fix}"


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

    def read_json(self, name: str):
        with self.open(name) as handle:
            raw = handle.read()
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UnreadableImage(f"{self.source}: {name} is not valid JSON ({err})") from err


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
        images.append(Image(name=name, config=blobs.read_json(item["Config"]), layers=layers))
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


# ---------------------------------------------------------------- the contract


def load_contract(path: Path = CONTRACT_PATH) -> dict:
    """The contract, validated against image/contract.schema.json (jsonschema is a
    dependency of this package; only the image reading is kept to the standard library)."""
    try:
        contract = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ContractError(f"{path}: cannot read the contract ({err.strerror})") from err
    except json.JSONDecodeError as err:
        raise ContractError(f"{path}: not valid JSON ({err})") from err
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(contract), key=lambda e: list(e.absolute_path))
    if errors:
        detail = "; ".join(f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors[:5])
        raise ContractError(f"{path}: does not match {SCHEMA_PATH.name} ({detail}); fix those keys")
    return contract


def mode_text(mode: int) -> str:
    return f"{mode:04o}"


def parse_mode(text: str) -> int:
    return int(str(text), 8)


# ---------------------------------------------------------------- config checks


def env_map(config: dict) -> dict[str, str]:
    result = {}
    for item in (config.get("config") or {}).get("Env") or []:
        name, _, value = str(item).partition("=")
        result[name] = value
    return result


def looks_like_credential(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name.upper(), pattern.upper()) for pattern in patterns)


def check_config(config: dict, contract: dict) -> list[Failure]:
    failures = []
    runtime = config.get("config") or {}
    wanted = contract["config"]
    if runtime.get("User") != wanted["User"]:
        failures.append(Failure(
            "config.User", f"is {runtime.get('User')!r}, the contract says {wanted['User']!r}",
            f'set config.User = "{wanted["User"]}" (a numeric uid:gid; an empty User runs as root)'))
    if runtime.get("Entrypoint") != wanted["Entrypoint"]:
        failures.append(Failure(
            "config.Entrypoint", f"is {runtime.get('Entrypoint')!r}, the contract says {wanted['Entrypoint']!r}",
            f"set config.Entrypoint = {json.dumps(wanted['Entrypoint'])} so every start passes the entrypoint's guards"))
    if "WorkingDir" in wanted and runtime.get("WorkingDir") != wanted["WorkingDir"]:
        failures.append(Failure(
            "config.WorkingDir", f"is {runtime.get('WorkingDir')!r}, the contract says {wanted['WorkingDir']!r}",
            f'set config.WorkingDir = "{wanted["WorkingDir"]}"'))
    env = env_map(config)
    for name, value in contract["env"].items():
        if env.get(name) != value:
            have = "missing" if name not in env else f"{env[name]!r}"
            failures.append(Failure(
                f"config.Env.{name}", f"is {have}, the contract says {value!r}",
                f"set {name}={value} in the image Env (image/contract.json env)"))
    for name, value in sorted(env.items()):
        if value and looks_like_credential(name, contract["credential_env_patterns"]):
            failures.append(Failure(
                f"config.Env.{name}", "looks like a credential and is baked into the image config (visible to `docker inspect`)",
                f"remove {name} from the image Env; pass credentials at run time, outside the agent's environment"))
    labels = runtime.get("Labels") or {}
    for name, value in contract["labels"]["fixed"].items():
        if labels.get(name) != value:
            failures.append(Failure(
                f"config.Labels.{name}", f"is {labels.get(name)!r}, the contract says {value!r}",
                f'set the label {name}="{value}"'))
    for name in contract["labels"]["non_empty"]:
        if not labels.get(name):
            failures.append(Failure(
                f"config.Labels.{name}", "is missing or empty",
                f"set the label {name} when the image is built"))
    return failures


# ---------------------------------------------------------------- file checks


def parse_colon_file(data: bytes) -> list[list[str]]:
    rows = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        if line.strip() and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def check_passwd(passwd: bytes | None, group: bytes | None, contract: dict) -> list[Failure]:
    user = contract["user"]
    nologin = set(contract["nologin_shells"])
    if passwd is None:
        return [Failure("/etc/passwd", "is missing or not a regular file",
                        f"write /etc/passwd with root (shell {contract['root']['shell']}) and "
                        f"{user['name']} ({user['uid']}:{user['gid']}, home {user['home']})")]
    failures = []
    rows = [row for row in parse_colon_file(passwd) if len(row) >= 7]
    by_name = {row[0]: row for row in rows}
    agent = by_name.get(user["name"])
    expected = [str(user["uid"]), str(user["gid"]), user["home"]]
    if agent is None or [agent[2], agent[3], agent[5]] != expected:
        have = "missing" if agent is None else ":".join(agent)
        failures.append(Failure(
            "/etc/passwd", f"user {user['name']} is {have}; wanted uid {user['uid']}, gid {user['gid']}, home {user['home']}",
            f"add the line {user['name']}:x:{user['uid']}:{user['gid']}:{user['name']}:{user['home']}:{user['shell']}"))
    root = by_name.get("root")
    if root is None or root[6] not in nologin:
        have = "missing" if root is None else f"shell {root[6]!r}"
        failures.append(Failure(
            "/etc/passwd", f"root is {have}; root must not have a login shell",
            f"give root the shell {contract['root']['shell']} (any of {', '.join(sorted(nologin))})"))
    for row in rows:
        if row[2] == "0" and row[0] != "root":
            failures.append(Failure("/etc/passwd", f"user {row[0]} has uid 0", f"remove {row[0]} or give it an unprivileged uid"))
        if row[2] == str(user["uid"]) and row[0] != user["name"]:
            failures.append(Failure("/etc/passwd", f"user {row[0]} shares uid {user['uid']} with {user['name']}",
                                    f"remove {row[0]}"))
    if group is None:
        failures.append(Failure("/etc/group", "is missing or not a regular file",
                                f"write /etc/group with root:x:0: and {user['group']}:x:{user['gid']}:"))
    else:
        groups = {row[0]: row for row in parse_colon_file(group) if len(row) >= 3}
        agent_group = groups.get(user["group"])
        if agent_group is None or agent_group[2] != str(user["gid"]):
            failures.append(Failure("/etc/group", f"group {user['group']} with gid {user['gid']} is missing",
                                    f"add the line {user['group']}:x:{user['gid']}:"))
    return failures


def check_special_bits(fs: Filesystem, contract: dict) -> list[Failure]:
    failures = []
    forbidden = set(contract["forbidden_programs"])
    for path, entry in sorted(fs.entries.items()):
        if entry.kind == "file" and entry.mode & (stat.S_ISUID | stat.S_ISGID):
            failures.append(Failure(
                path, f"mode {mode_text(entry.mode)} has the setuid/setgid bit",
                "remove the file or its bit (chmod u-s,g-s); nothing in the image may gain privileges"))
        name = posixpath.basename(path)
        executable = entry.kind == "symlink" or (entry.kind == "file" and entry.mode & 0o111)
        if name in forbidden and executable:
            failures.append(Failure(
                path, f"{name} is a privilege-changing program",
                f"leave out the package that ships {name} (or delete {path} in the image build)"))
    return failures


def check_dirs(fs: Filesystem, contract: dict) -> list[Failure]:
    failures = []
    uid, gid = contract["user"]["uid"], contract["user"]["gid"]
    for path in contract["agent_writable_dirs"]:
        found = fs.follow(path)
        if found is None or found[1].kind != "dir":
            failures.append(Failure(path, "folder is missing", f"create {path} owned by {uid}:{gid}"))
            continue
        entry = found[1]
        if (entry.uid, entry.gid) != (uid, gid) or not entry.mode & 0o200:
            failures.append(Failure(
                path, f"is owned by {entry.uid}:{entry.gid} mode {mode_text(entry.mode)}; the agent must be able to write it",
                f"chown {uid}:{gid} {path} and chmod u+w (in fakeRootCommands / the Dockerfile)"))
    for path in contract["root_only_dirs"]:
        found = fs.follow(path)
        if found is None or found[1].kind != "dir":
            failures.append(Failure(path, "folder is missing", f"create {path} owned by root, mode 0755"))
            continue
        entry = found[1]
        if entry.uid != 0 or entry.mode & 0o022:
            failures.append(Failure(
                path, f"is owned by {entry.uid}:{entry.gid} mode {mode_text(entry.mode)}; it must be root-owned and not group/other-writable (Gemini skips such folders, and the agent could swap the files)",
                f"chown 0:0 {path} && chmod 0755 {path}"))
    for sticky in contract["sticky_dirs"]:
        path = sticky["path"]
        found = fs.follow(path)
        wanted_mode = parse_mode(sticky["mode"])
        if found is None or found[1].kind != "dir":
            failures.append(Failure(path, "folder is missing", f"create {path} with mode {sticky['mode']}"))
            continue
        entry = found[1]
        if entry.mode != wanted_mode or entry.uid != sticky["owner"]:
            failures.append(Failure(
                path, f"is mode {mode_text(entry.mode)} owner {entry.uid}; wanted mode {sticky['mode']} owner {sticky['owner']}",
                f"chown {sticky['owner']} {path} && chmod {sticky['mode']} {path}"))
    return failures


def executable_on_path(fs: Filesystem, program: str, search_path: str, skip: str = "") -> bool:
    for folder in search_path.split(":"):
        if not folder.startswith("/") or folder.rstrip("/") == skip.rstrip("/"):
            continue
        found = fs.follow(posixpath.join(folder, program))
        if found is not None and found[1].kind == "file" and found[1].mode & 0o111:
            return True
    return False


def check_programs(fs: Filesystem, env: dict[str, str], contract: dict) -> list[Failure]:
    search_path = env.get("PATH") or contract["env"]["PATH"]
    failures = []
    for program in contract["required_programs"]:
        # a shim only forwards to the real program, so look past the shims folder
        if not executable_on_path(fs, program, search_path, skip=contract["baked"]["shims_dir"]):
            failures.append(Failure(
                f"PATH/{program}", f"no executable {program} in any folder of PATH={search_path}",
                f"add the package that provides {program} to the image contents"))
    cert = env.get("SSL_CERT_FILE") or contract["env"]["SSL_CERT_FILE"]
    found = fs.follow(cert)
    if found is None or found[1].kind != "file":
        failures.append(Failure(cert, "SSL_CERT_FILE does not exist in the image",
                                "add the CA bundle (cacert / ca-certificates) at that path"))
    return failures


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_manifest(data: bytes | None, contract: dict) -> tuple[dict | None, list[Failure]]:
    spec = contract["baked"]["manifest"]
    path = spec["path"]
    render = "render-profiles --image-root DIR " + " ".join(contract["baked"]["render_args"])
    if data is None:
        return None, [Failure(path, "the config manifest is missing", f"copy the tree from `{render}` into the image root")]
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, [Failure(path, f"is not valid JSON ({err})", f"re-create it with `{render}`")]
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
        return None, [Failure(path, "has no 'files' object of path -> {sha256, mode, owner}", f"re-create it with `{render}`")]
    failures = []
    if manifest.get("format") != spec["format"]:
        failures.append(Failure(path, f"format is {manifest.get('format')!r}, image-verify reads format {spec['format']}",
                                "render with a renderer of the same version as this contract"))
    baked = sorted(contract["baked"]["profiles"])
    if sorted(manifest.get("profiles") or []) != baked:
        failures.append(Failure(path, f"bakes profiles {manifest.get('profiles')!r}, the contract says {baked}",
                                f"render with `{render}`"))
    for required in contract["baked"]["required_files"]:
        if required not in files:
            failures.append(Failure(required, "is not in the config manifest", f"render with `{render}` (the renderer must emit it)"))
    for prefix in contract["baked"]["required_prefixes"]:
        if not any(name.startswith(prefix) for name in files):
            failures.append(Failure(prefix, "the manifest lists nothing under this folder", f"render with `{render}`"))
    return manifest, failures


def check_manifest_meta(fs: Filesystem, contract: dict) -> list[Failure]:
    spec = contract["baked"]["manifest"]
    found = fs.follow(spec["path"])
    if found is None or found[1].kind != "file":
        return []
    entry = found[1]
    if entry.uid != spec["owner"] or entry.mode != parse_mode(spec["mode"]):
        return [Failure(spec["path"], f"is owner {entry.uid} mode {mode_text(entry.mode)}; wanted owner {spec['owner']} mode {spec['mode']}",
                        f"chown {spec['owner']} {spec['path']} && chmod {spec['mode']} {spec['path']}")]
    return []


def check_baked_file(path: str, record: dict, entry: Entry | None, data: bytes | None, contract: dict) -> list[Failure]:
    if entry is None or entry.kind != "file" or data is None:
        return [Failure(path, "listed in the config manifest but missing from the image",
                        "copy the whole `render-profiles --image-root` tree into the image")]
    failures = []
    owner = contract["baked"]["owner"]
    try:
        wanted_mode = parse_mode(record.get("mode", ""))
    except ValueError:
        wanted_mode = None
    if record.get("owner") != owner:
        failures.append(Failure(path, f"the manifest says owner {record.get('owner')!r}; baked configs must be owned by {owner}",
                                "fix the renderer's manifest: every baked file is root-owned"))
    if wanted_mode is None or wanted_mode & 0o022:
        failures.append(Failure(path, f"the manifest says mode {record.get('mode')!r}; baked configs must not be group/other-writable",
                                "fix the renderer's manifest mode (e.g. 0444, 0555 for shims)"))
    if record.get("sha256") != sha256(data):
        failures.append(Failure(path, f"sha256 {sha256(data)} differs from the manifest's {record.get('sha256')}",
                                "copy the rendered tree unchanged; re-render if the profiles changed"))
    if wanted_mode is not None and entry.mode != wanted_mode:
        failures.append(Failure(path, f"mode {mode_text(entry.mode)} differs from the manifest's {record.get('mode')}",
                                f"chmod {record.get('mode')} {path} in the image build"))
    if entry.uid != owner or entry.mode & 0o022:
        failures.append(Failure(path, f"is owner {entry.uid}:{entry.gid} mode {mode_text(entry.mode)}; the agent must not be able to change it",
                                f"chown {owner}:{owner} {path} and drop group/other write bits"))
    return failures


def check_runtime_profiles(files: dict, data: dict[str, bytes], env: dict[str, str], contract: dict) -> list[Failure]:
    """Each baked runtime profile's guarded programs have a shim in the manifest, and the
    image's default AGENT_PROFILE is one of the baked profiles."""
    baked = contract["baked"]
    failures = []
    default = env.get("AGENT_PROFILE")
    if default is not None and default not in baked["profiles"]:
        failures.append(Failure(
            "config.Env.AGENT_PROFILE", f"is {default!r}, which is not baked (baked: {', '.join(baked['profiles'])})",
            "set AGENT_PROFILE to a baked profile or bake it"))
    for name in baked["profiles"]:
        path = f"{baked['runtime_profiles_dir']}/{name}.json"
        if path not in data:
            continue  # missing from the image or the manifest: reported with the baked files
        try:
            document = json.loads(data[path])
            guarded = document["guarded_programs"]
            if not isinstance(guarded, list) or not all(isinstance(p, str) and p and "/" not in p for p in guarded):
                raise TypeError("guarded_programs is not a list of program names")
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
            failures.append(Failure(path, f"is not a runtime profile the guard can read ({err})",
                                    "re-render it with render-profiles"))
            continue
        for program in guarded:
            shim = f"{baked['shims_dir']}/{program}"
            if shim not in files:
                failures.append(Failure(
                    shim, f"profile {name} guards {program}, but the manifest has no shim for it",
                    "render the image root again (render-profiles writes a shim per guarded program)"))
    return failures


# ---------------------------------------------------------------- driver


def verify_image(blobs: Blobs, image: Image, contract: dict) -> list[Failure]:
    fs = flatten(blobs, image.layers)
    env = env_map(image.config)
    failures = check_config(image.config, contract)
    failures += check_special_bits(fs, contract)
    failures += check_dirs(fs, contract)
    failures += check_programs(fs, env, contract)
    manifest_path = contract["baked"]["manifest"]["path"]
    first = read_contents(blobs, image.layers, fs, ["/etc/passwd", "/etc/group", manifest_path])
    failures += check_passwd(first.get("/etc/passwd"), first.get("/etc/group"), contract)
    manifest, manifest_failures = parse_manifest(first.get(manifest_path), contract)
    failures += manifest_failures
    failures += check_manifest_meta(fs, contract)
    if manifest is not None:
        files = manifest["files"]
        data = read_contents(blobs, image.layers, fs, files)
        for path in sorted(files):
            found = fs.follow(path)
            failures += check_baked_file(path, files[path], found[1] if found else None, data.get(path), contract)
        failures += check_runtime_profiles(files, data, env, contract)
    return failures


def verify_path(source: Path, contract: dict) -> list[tuple[str, list[Failure]]]:
    if not source.exists():
        raise UnreadableImage(f"{source}: no such file or folder")
    blobs = Blobs(source)
    try:
        return [(image.name, verify_image(blobs, image, contract)) for image in load_images(blobs)]
    except UnreadableImage as err:
        if str(source) in str(err):
            raise
        raise UnreadableImage(f"{source}: {err}") from err
    finally:
        blobs.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="image-verify",
        description="Check a docker-archive (.tar/.tar.gz) or OCI layout against image/contract.json.",
    )
    parser.add_argument("image", type=Path, help="docker-archive .tar/.tar.gz, OCI layout folder, or OCI layout .tar")
    parser.add_argument("--contract", type=Path, default=CONTRACT_PATH, help="contract JSON (default: the packaged one)")
    args = parser.parse_args(argv)
    try:
        contract = load_contract(args.contract)
        results = verify_path(args.image, contract)
    except (UnreadableImage, ContractError) as err:
        print(f"image-verify: {err}", file=sys.stderr)
        return 2
    total = 0
    for name, failures in results:
        for failure in failures:
            print(f"[{name}] {failure.render()}")
        total += len(failures)
        print(f"image-verify: {name}: {'OK' if not failures else f'{len(failures)} failure(s)'}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
