"""Small synthetic container images, written with tarfile, in the formats image-verify reads.

A `Spec` is an image config plus layers of `Node`s. `good_spec(contract)` keeps the contract
and also carries debris in a lower layer that only whiteouts hide, so a verifier that ignores
whiteouts fails on the good image.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from image.clis import label as cli_label, lockfile_pins

STORE = "/nix/store/0000000000000000000000000000000a"


@dataclass
class Node:
    path: str
    kind: str = "file"  # file | dir | symlink | hardlink
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    target: str = ""


@dataclass
class Spec:
    config: dict
    layers: list[list[Node]] = field(default_factory=list)
    platform: tuple[str, str] = ("linux", "amd64")

    def find(self, path: str) -> Node:
        for layer in reversed(self.layers):
            for node in layer:
                if node.path == path:
                    return node
        raise KeyError(path)

    def drop(self, path: str) -> None:
        for layer in self.layers:
            layer[:] = [node for node in layer if node.path != path]

    def env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.config["config"]["Env"])

    def set_env(self, env: dict[str, str]) -> None:
        self.config["config"]["Env"] = [f"{k}={v}" for k, v in env.items()]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def script(name: str) -> bytes:
    return f"#!/bin/sh\necho {name}\n".encode()


def passwd_text(contract: dict) -> bytes:
    user = contract["user"]
    return (
        f"root:x:0:0:root:/root:{contract['root']['shell']}\n"
        f"{user['name']}:x:{user['uid']}:{user['gid']}:{user['name']}:{user['home']}:{user['shell']}\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    ).encode()


def group_text(contract: dict) -> bytes:
    user = contract["user"]
    return f"root:x:0:\n{user['group']}:x:{user['gid']}:\nnogroup:x:65534:\n".encode()


GUARDED = ["gh", "git"]


def baked_files(contract: dict) -> dict[str, tuple[bytes, str]]:
    baked = contract["baked"]
    files = {path: (json.dumps({"rendered": path}).encode(), "0444") for path in baked["required_files"]}
    for name in baked["profiles"]:
        runtime = {"format": 1, "profile": name, "guarded_programs": GUARDED, "rules": []}
        files[f"{baked['runtime_profiles_dir']}/{name}.json"] = (json.dumps(runtime).encode(), "0444")
    for program in GUARDED:
        files[f"{baked['shims_dir']}/{program}"] = (f"#!/bin/sh\nexec agent-guard shim {program} \"$@\"\n".encode(), "0555")
    return files


def manifest_bytes(contract: dict, files: dict[str, tuple[bytes, str]], **overrides) -> bytes:
    document = {
        "format": contract["baked"]["manifest"]["format"],
        "generator": "render-profiles 0.1.0",
        "profiles": list(contract["baked"]["profiles"]),
        "files": {
            path: {"sha256": sha256(data), "mode": mode, "owner": 0, "format": "json", "profiles": list(contract["baked"]["profiles"])}
            for path, (data, mode) in sorted(files.items())
        },
    }
    document.update(overrides)
    return json.dumps(document, indent=2).encode()


def parents(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def good_spec(contract: dict) -> Spec:
    user = contract["user"]
    uid, gid = user["uid"], user["gid"]
    env = dict(contract["env"])
    env["ANTHROPIC_API_KEY"] = ""  # empty: a credential-looking name alone is not a failure
    labels = dict(contract["labels"]["fixed"])
    labels.update({name: "x" for name in contract["labels"]["non_empty"]})
    labels.update({cli_label(name): pin for name, pin in lockfile_pins(contract["clis"]).items()})
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": contract["config"]["User"],
            "Entrypoint": list(contract["config"]["Entrypoint"]),
            "WorkingDir": contract["config"]["WorkingDir"],
            "Env": [f"{k}={v}" for k, v in env.items()],
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": []},
    }

    debris = [
        Node("/usr", "dir", mode=0o755),
        Node("/usr/bin", "dir", mode=0o755),
        Node("/usr/bin/sudo", data=b"sudo", mode=0o4755),
        Node("/opt", "dir", mode=0o755),
        Node("/opt/old", "dir", mode=0o755),
        Node("/opt/old/su", data=b"su", mode=0o755),
        Node("/opt/old/wall", data=b"wall", mode=0o2755),
        Node("/etc", "dir", mode=0o755),
        Node("/etc/passwd", data=b"root:x:0:0:root:/root:/bin/bash\n", mode=0o644),
    ]

    tools = [
        Node("/bin", "symlink", mode=0o777, target="usr/bin"),
        Node(STORE, "dir", mode=0o555),
        Node(STORE + "/bin", "dir", mode=0o555),
        Node(STORE + "/etc/ssl/certs/ca-bundle.crt", data=b"-----BEGIN CERTIFICATE-----\n", mode=0o444),
        Node(STORE + "/bin/python3.11", data=script("python3"), mode=0o555),
        Node("/usr/bin/python3", "hardlink", mode=0o555, target=STORE + "/bin/python3.11"),
    ]
    for program in contract["required_programs"]:
        if program == "python3":
            continue
        if program in ("claude", "codex", "gemini"):
            tools.append(Node(f"{STORE}/bin/{program}", data=script(program), mode=0o555))
            tools.append(Node(f"/usr/bin/{program}", "symlink", mode=0o777, target=f"{STORE}/bin/{program}"))
        else:
            tools.append(Node(f"/usr/bin/{program}", data=script(program), mode=0o755))

    files = baked_files(contract)
    custom = [
        Node("/usr/bin/.wh.sudo", data=b""),
        Node("/opt/old/.wh..wh..opq", data=b""),
        Node("/opt/old/README", data=b"kept\n"),
        Node("/etc/passwd", data=passwd_text(contract)),
        Node("/etc/group", data=group_text(contract)),
        Node("/etc/ssl", "dir", mode=0o755),
        Node("/etc/ssl/certs", "dir", mode=0o755),
        Node(env["SSL_CERT_FILE"], "symlink", mode=0o777, target=STORE + "/etc/ssl/certs/ca-bundle.crt"),
        Node("/home", "dir", mode=0o755),
    ]
    for path in contract["agent_writable_dirs"]:
        custom.append(Node(path, "dir", mode=0o755, uid=uid, gid=gid))
    for path in contract["root_only_dirs"]:
        custom.append(Node(path, "dir", mode=0o755))
    for sticky in contract["sticky_dirs"]:
        custom.append(Node(sticky["path"], "dir", mode=int(sticky["mode"], 8), uid=sticky["owner"]))
    for path, (data, mode) in files.items():
        if path.startswith(tuple(contract["baked"]["required_prefixes"])):
            # as a Nix image may hold it: a symlink into a root-owned read-only store path
            store_copy = STORE + "-shims" + path
            custom.append(Node(store_copy, data=data, mode=int(mode, 8)))
            custom.append(Node(path, "symlink", mode=0o777, target=store_copy))
        else:
            custom.append(Node(path, data=data, mode=int(mode, 8)))
    manifest = contract["baked"]["manifest"]
    custom.append(Node(manifest["path"], data=manifest_bytes(contract, files), mode=int(manifest["mode"], 8)))
    return Spec(config=config, layers=[debris, tools, custom])


def tar_layer(nodes: list[Node], compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        written = set()
        for node in nodes:
            for parent in parents(node.path):
                if parent not in written and not any(n.path == parent for n in nodes):
                    # docker-style layers carry their parent folders, as root 0755
                    tar.addfile(tar_info(Node(parent, "dir", mode=0o755)))
                    written.add(parent)
            info = tar_info(node)
            tar.addfile(info, io.BytesIO(node.data) if node.kind == "file" else None)
            written.add(node.path)
    raw = buffer.getvalue()
    return gzip.compress(raw, mtime=0) if compress else raw


def tar_info(node: Node) -> tarfile.TarInfo:
    info = tarfile.TarInfo("." + node.path if node.path != "/" else ".")
    info.mode = node.mode
    info.uid, info.gid = node.uid, node.gid
    info.mtime = 1
    if node.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif node.kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, node.target
    elif node.kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, "." + node.target
    else:
        info.size = len(node.data)
    return info


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 1
    tar.addfile(info, io.BytesIO(data))


def hardlink_sources(spec: Spec) -> Spec:
    """A hardlink must point at a member of its own layer: copy each target into that layer."""
    spec = copy.deepcopy(spec)
    for layer in spec.layers:
        paths = {node.path for node in layer}
        for node in list(layer):
            if node.kind == "hardlink" and node.target not in paths:
                raise ValueError(f"hardlink {node.path} -> {node.target} has no target in its layer")
    return spec


def write_docker_archive(spec: Spec, path: Path, compress: bool = False) -> Path:
    spec = hardlink_sources(spec)
    return write_raw_docker_archive([tar_layer(nodes) for nodes in spec.layers], spec.config, path, compress)


def write_raw_docker_archive(layers: list[bytes], config: dict, path: Path, compress: bool = False) -> Path:
    """A docker-archive as dockerTools writes it: `<id>/layer.tar`, `<sha>.json`, manifest.json."""
    buffer = io.BytesIO()
    layer_names = []
    config = copy.deepcopy(config)
    config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    members: dict[str, bytes] = {}
    for data in layers:
        digest = sha256(data)
        members[f"{digest}/layer.tar"] = data
        layer_names.append(f"{digest}/layer.tar")
        config["rootfs"]["diff_ids"].append("sha256:" + digest)
    config_bytes = json.dumps(config).encode()
    config_name = sha256(config_bytes) + ".json"
    members[config_name] = config_bytes
    members["manifest.json"] = json.dumps([{"Config": config_name, "RepoTags": ["agent-image:test"], "Layers": layer_names}]).encode()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        # sorted by name, as dockerTools writes it (`tar --sort=name`): layers out of order
        for name in sorted(members):
            add_bytes(tar, name, members[name])
    raw = buffer.getvalue()
    path.write_bytes(gzip.compress(raw, mtime=0) if compress else raw)
    return path


def oci_blob(blobs: dict[str, bytes], data: bytes) -> dict:
    digest = sha256(data)
    blobs[f"blobs/sha256/{digest}"] = data
    return {"digest": f"sha256:{digest}", "size": len(data)}


def oci_files(specs: list[Spec], nested_index: bool = False) -> dict[str, bytes]:
    blobs: dict[str, bytes] = {}
    descriptors = []
    for spec in specs:
        spec = hardlink_sources(spec)
        config = copy.deepcopy(spec.config)
        layers = []
        for nodes in spec.layers:
            raw = tar_layer(nodes)
            config["rootfs"]["diff_ids"].append("sha256:" + sha256(raw))
            descriptor = oci_blob(blobs, gzip.compress(raw, mtime=0))
            descriptor["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
            layers.append(descriptor)
        config_descriptor = oci_blob(blobs, json.dumps(config).encode())
        config_descriptor["mediaType"] = "application/vnd.oci.image.config.v1+json"
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_descriptor,
            "layers": layers,
        }
        descriptor = oci_blob(blobs, json.dumps(manifest).encode())
        descriptor["mediaType"] = manifest["mediaType"]
        descriptor["platform"] = {"os": spec.platform[0], "architecture": spec.platform[1]}
        descriptors.append(descriptor)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descriptors}
    if nested_index:
        inner = oci_blob(blobs, json.dumps(index).encode())
        inner["mediaType"] = index["mediaType"]
        inner["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
        index = {"schemaVersion": 2, "mediaType": index["mediaType"], "manifests": [inner]}
    blobs["index.json"] = json.dumps(index).encode()
    blobs["oci-layout"] = json.dumps({"imageLayoutVersion": "1.0.0"}).encode()
    return blobs


def write_oci_dir(specs: list[Spec], path: Path, nested_index: bool = False) -> Path:
    for name, data in oci_files(specs, nested_index).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return path


def write_oci_tar(specs: list[Spec], path: Path) -> Path:
    with tarfile.open(path, mode="w") as tar:
        for name, data in sorted(oci_files(specs).items()):
            add_bytes(tar, name, data)
    return path


FORMATS = ("docker-tar", "docker-tar-gz", "oci-dir", "oci-tar")


def write_image(spec: Spec, form: str, folder: Path) -> Path:
    if form == "docker-tar":
        return write_docker_archive(spec, folder / "image.tar")
    if form == "docker-tar-gz":
        return write_docker_archive(spec, folder / "image.tar.gz", compress=True)
    if form == "oci-dir":
        return write_oci_dir([spec], folder / "oci")
    if form == "oci-tar":
        return write_oci_tar([spec], folder / "oci.tar")
    raise ValueError(form)
