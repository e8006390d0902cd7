"""image-verify: check a container image archive against image/contract.json.

image/archive.py reads the archive (docker-archive or OCI layout, standard library only); this
module judges it. Each image is checked against its own part of the contract: the agent image
against the top level, the proxy and the gateway against `images.proxy` / `images.gateway`
(chosen by the `io.agent-sandbox.image` label, the image's name, or --image). Exit 0: every
image keeps its contract; 1: it does not (each failure is printed with its path and the fix);
2: unreadable input or contract.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import posixpath
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from guard import __version__
from image.archive import Blobs, Entry, Filesystem, Image, UnreadableImage, flatten, opened, read_contents
from image.clis import PACKAGE_LOCK, PinError, label as cli_label, lockfile_pins

CONTRACT_PATH = Path(__file__).with_name("contract.json")
SCHEMA_PATH = Path(__file__).with_name("contract.schema.json")


class ContractError(Exception):
    """The contract file itself is missing or malformed (exit 2)."""


@dataclass(frozen=True)
class Failure:
    path: str
    problem: str
    fix: str

    def render(self) -> str:
        return f"FAIL {self.path}: {self.problem}\n     fix: {self.fix}"



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


def check_config(config: dict, want: dict, contract: dict) -> list[Failure]:
    failures = []
    runtime = config.get("config") or {}
    wanted = want["config"]
    if "User" in wanted and runtime.get("User") != wanted["User"]:
        failures.append(Failure(
            "config.User", f"is {runtime.get('User')!r}, the contract says {wanted['User']!r}",
            f'set config.User = "{wanted["User"]}" (a numeric uid:gid; an empty User runs as root)'))
    if "User" not in wanted and runtime.get("User"):
        failures.append(Failure(
            "config.User", f"is {runtime.get('User')!r}; the contract leaves it empty (the program drops root itself)",
            "remove config.User"))
    if runtime.get("Entrypoint") != wanted["Entrypoint"]:
        failures.append(Failure(
            "config.Entrypoint", f"is {runtime.get('Entrypoint')!r}, the contract says {wanted['Entrypoint']!r}",
            f"set config.Entrypoint = {json.dumps(wanted['Entrypoint'])} so every start goes through it"))
    if "Cmd" in wanted and (runtime.get("Cmd") or []) != wanted["Cmd"]:
        failures.append(Failure(
            "config.Cmd", f"is {runtime.get('Cmd')!r}, the contract says {wanted['Cmd']!r}",
            f"set config.Cmd = {json.dumps(wanted['Cmd'])}"))
    if "WorkingDir" in wanted and runtime.get("WorkingDir") != wanted["WorkingDir"]:
        failures.append(Failure(
            "config.WorkingDir", f"is {runtime.get('WorkingDir')!r}, the contract says {wanted['WorkingDir']!r}",
            f'set config.WorkingDir = "{wanted["WorkingDir"]}"'))
    env = env_map(config)
    for name, value in want["env"].items():
        if env.get(name) != value:
            have = "missing" if name not in env else f"{env[name]!r}"
            failures.append(Failure(
                f"config.Env.{name}", f"is {have}, the contract says {value!r}",
                f"set {name}={value} in the image Env (image/contract.json)"))
    for name, value in sorted(env.items()):
        if value and looks_like_credential(name, contract["credential_env_patterns"]):
            failures.append(Failure(
                f"config.Env.{name}", "looks like a credential and is baked into the image config (visible to `docker inspect`)",
                f"remove {name} from the image Env; pass credentials at run time, outside the agent's environment"))
    labels = runtime.get("Labels") or {}
    for name, value in want["labels_fixed"].items():
        if labels.get(name) != value:
            failures.append(Failure(
                f"config.Labels.{name}", f"is {labels.get(name)!r}, the contract says {value!r}",
                f'set the label {name}="{value}"'))
    for name in want["labels_non_empty"]:
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


def check_passwd(passwd: bytes | None, group: bytes | None, user: dict | None, contract: dict) -> list[Failure]:
    """root has no login shell and is the only uid 0; `user` (when the image has one) is there
    with its uid, gid (and home, when the contract names one), and no one else has its uid."""
    nologin = set(contract["nologin_shells"])
    if passwd is None:
        wanted = f" and {user['name']} ({user['uid']}:{user['gid']})" if user else ""
        return [Failure("/etc/passwd", "is missing or not a regular file",
                        f"write /etc/passwd with root (shell {contract['root']['shell']}){wanted}")]
    failures = []
    rows = [row for row in parse_colon_file(passwd) if len(row) >= 7]
    by_name = {row[0]: row for row in rows}
    if user is not None:
        found = by_name.get(user["name"])
        expected = [str(user["uid"]), str(user["gid"])] + ([user["home"]] if "home" in user else [])
        home = f", home {user['home']}" if "home" in user else ""
        if found is None or [found[2], found[3], found[5]][: len(expected)] != expected:
            have = "missing" if found is None else ":".join(found)
            line = (f"{user['name']}:x:{user['uid']}:{user['gid']}:{user['name']}:"
                    f"{user.get('home', '/nonexistent')}:{user.get('shell', contract['root']['shell'])}")
            failures.append(Failure(
                "/etc/passwd", f"user {user['name']} is {have}; wanted uid {user['uid']}, gid {user['gid']}{home}",
                f"add the line {line}"))
    root = by_name.get("root")
    if root is None or root[6] not in nologin:
        have = "missing" if root is None else f"shell {root[6]!r}"
        failures.append(Failure(
            "/etc/passwd", f"root is {have}; root must not have a login shell",
            f"give root the shell {contract['root']['shell']} (any of {', '.join(sorted(nologin))})"))
    for row in rows:
        if row[2] == "0" and row[0] != "root":
            failures.append(Failure("/etc/passwd", f"user {row[0]} has uid 0", f"remove {row[0]} or give it an unprivileged uid"))
        if user is not None and row[2] == str(user["uid"]) and row[0] != user["name"]:
            failures.append(Failure("/etc/passwd", f"user {row[0]} shares uid {user['uid']} with {user['name']}",
                                    f"remove {row[0]}"))
    if user is None:
        return failures
    if group is None:
        failures.append(Failure("/etc/group", "is missing or not a regular file",
                                f"write /etc/group with root:x:0: and {user['group']}:x:{user['gid']}:"))
    else:
        groups = {row[0]: row for row in parse_colon_file(group) if len(row) >= 3}
        found_group = groups.get(user["group"])
        if found_group is None or found_group[2] != str(user["gid"]):
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


def check_programs(fs: Filesystem, env: dict[str, str], want: dict) -> list[Failure]:
    search_path = env.get("PATH") or want["env"]["PATH"]
    failures = []
    for program in want["required_programs"]:
        # a shim only forwards to the real program, so look past the shims folder
        if not executable_on_path(fs, program, search_path, skip=want["skip_on_path"]):
            failures.append(Failure(
                f"PATH/{program}", f"no executable {program} in any folder of PATH={search_path}",
                f"add the package that provides {program} to the image contents"))
    cert = env.get("SSL_CERT_FILE") or want["env"].get("SSL_CERT_FILE")
    found = fs.follow(cert) if cert else None
    if cert and (found is None or found[1].kind != "file"):
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


# ---------------------------------------------------------------- the CLIs: the lockfile's pins


def check_cli_labels(config: dict, contract: dict, pins: dict[str, str], lockfile: Path) -> list[Failure]:
    """Each io.agent-sandbox.cli.* label is the version package-lock.json pins: the one list of
    versions, the one the conformance matrix proved."""
    labels = (config.get("config") or {}).get("Labels") or {}
    failures = []
    for name, pin in sorted(pins.items()):
        have = labels.get(cli_label(name))
        if have != pin:
            failures.append(Failure(
                f"config.Labels.{cli_label(name)}",
                f"is {have!r}, but {lockfile} pins {contract['clis'][name]['npm']} at {pin!r}",
                "build the image from this checkout (its CLIs and their labels come from package-lock.json), "
                "or verify against the lockfile it was built from (--lockfile)"))
    return failures


def run_cli_versions(engine: str, image: Image, source: Path, contract: dict, pins: dict[str, str],
                     timeout: float = 90.0) -> list[Failure]:
    """Each CLI's `--version` inside the image, through its entrypoint, with no network, must
    answer the lockfile's pin. The engine must hold exactly this archive's image: it is loaded
    when it does not. Anything that does not answer in time fails."""
    if shutil.which(engine) is None:
        return [Failure(f"--run {engine}", f"{engine} is not on PATH", f"install {engine}, or leave out --run")]
    reference = image.config_digest
    if engine_image_id(engine, reference) is None:
        if not image.loadable:
            return [Failure(f"--run {engine}", f"{engine} does not hold {image.name} ({reference}) and "
                            f"{source} is not a docker-archive it can load", f"load the image into {engine} first")]
        loaded = subprocess.run([engine, "load", "--input", str(source)], capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=900)
        if loaded.returncode != 0 or engine_image_id(engine, reference) is None:
            return [Failure(f"--run {engine}", f"`{engine} load --input {source}` did not give image {reference}: "
                            f"{loaded.stderr.strip()[-300:]}", f"load the image into {engine} by hand and retry")]
    failures = []
    for name, pin in sorted(pins.items()):
        program = contract["clis"][name]["bin"]
        # the flags a careful launcher gives (the entrypoint's preflight warns without them)
        argv = [engine, "run", "--rm", "--network", "none", "--cap-drop", "ALL", "--security-opt",
                "no-new-privileges", "--pids-limit", "512", "--memory", "2g", reference, program, "--version"]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired:
            failures.append(Failure(f"run:{program} --version", f"did not answer within {timeout:.0f} s with no network",
                                    f"run `{' '.join(argv)}` and see where it waits"))
            continue
        output = result.stdout.strip() or result.stderr.strip()
        wanted = f"package-lock.json pins {contract['clis'][name]['npm']} at {pin!r}"
        if result.returncode != 0:
            failures.append(Failure(
                f"run:{program} --version", f"exited {result.returncode}: {output[-300:]!r}; {wanted}",
                f"make `{' '.join(argv)}` work (the output says why it did not), then retry"))
        elif pin not in result.stdout:
            failures.append(Failure(
                f"run:{program} --version", f"answered {output[-300:]!r}; {wanted}",
                "build the image from this checkout's package-lock.json"))
    return failures


def engine_image_id(engine: str, reference: str) -> str | None:
    result = subprocess.run([engine, "image", "inspect", "--format", "{{.Id}}", reference], capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=60)
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None


# ---------------------------------------------------------------- service images


def check_service_dirs(fs: Filesystem, part: dict) -> list[Failure]:
    failures = []
    for spec in part["dirs"]:
        path = spec["path"]
        found = fs.follow(path)
        owner = spec.get("owner")
        mode = parse_mode(spec["mode"]) if "mode" in spec else None
        wanted = " ".join(filter(None, [f"owned by {owner}" if owner is not None else "",
                                        f"mode {spec['mode']}" if mode is not None else ""]))
        if found is None or found[1].kind != "dir":
            failures.append(Failure(path, "folder is missing", f"create {path} {wanted}".rstrip()))
            continue
        entry = found[1]
        if (owner is not None and entry.uid != owner) or (mode is not None and entry.mode != mode):
            failures.append(Failure(path, f"is owned by {entry.uid}:{entry.gid} mode {mode_text(entry.mode)}; wanted {wanted}",
                                    f"chown/chmod {path} in the image build"))
    return failures


def check_service_files(fs: Filesystem, part: dict) -> list[Failure]:
    failures = []
    render = " ".join(["render-profiles --image-root DIR", *part.get("render_args", [])])
    for path in part["files"]:
        found = fs.follow(path)
        if found is None or found[1].kind != "file":
            failures.append(Failure(path, "is missing or not a regular file", f"copy the tree from `{render}` into the image"))
            continue
        entry = found[1]
        if entry.uid != 0 or entry.mode & 0o022:
            failures.append(Failure(path, f"is owner {entry.uid}:{entry.gid} mode {mode_text(entry.mode)}; only root may change it",
                                    f"chown 0:0 {path} and drop group/other write bits"))
    return failures


# ---------------------------------------------------------------- driver

ROLE_LABEL = "io.agent-sandbox.image"
ROLES = ("agent", "proxy", "gateway")


def expectations(contract: dict, role: str) -> dict:
    """What the contract wants of an image in `role`, in one shape for the shared checks."""
    if role == "agent":
        return {"config": contract["config"], "env": contract["env"], "user": contract["user"],
                "labels_fixed": contract["labels"]["fixed"], "labels_non_empty": contract["labels"]["non_empty"],
                "required_programs": contract["required_programs"], "skip_on_path": contract["baked"]["shims_dir"]}
    part = contract["images"][role]
    return {"config": part["config"], "env": part["env"], "user": part.get("user"),
            "labels_fixed": {"org.opencontainers.image.title": part["title"], ROLE_LABEL: role},
            "labels_non_empty": ["org.opencontainers.image.source", "org.opencontainers.image.revision"],
            "required_programs": part["required_programs"], "skip_on_path": ""}


def role_of(image: Image, contract: dict) -> str:
    """The image's role: its role label, else its name (any registry, any tag), else agent,
    whose contract is the strictest."""
    label = ((image.config.get("config") or {}).get("Labels") or {}).get(ROLE_LABEL)
    if label in ROLES:
        return label
    repository = image.name.rsplit(":", 1)[0] if ":" in image.name.rsplit("/", 1)[-1] else image.name
    for role in ROLES:
        if repository.rsplit("/", 1)[-1] == contract["images"][role]["name"]:
            return role
    return "agent"


@dataclass
class Options:
    """How to judge: forced role, the lockfile holding the CLI pins, an engine to run the image with."""

    role: str | None = None
    lockfile: Path = PACKAGE_LOCK
    run: str | None = None
    source: Path = Path()


def pins_of(contract: dict, lockfile: Path) -> dict[str, str]:
    try:
        return lockfile_pins(contract["clis"], lockfile)
    except PinError as err:
        raise ContractError(f"{err} (the CLI labels are checked against it; --lockfile names another)") from err


def verify_image(blobs: Blobs, image: Image, contract: dict, options: Options | None = None) -> list[Failure]:
    options = options or Options()
    role = options.role or role_of(image, contract)
    want = expectations(contract, role)
    fs = flatten(blobs, image.layers)
    env = env_map(image.config)
    failures = check_config(image.config, want, contract)
    if role == "agent":
        pins = pins_of(contract, options.lockfile)
        failures += check_cli_labels(image.config, contract, pins, options.lockfile)
        if options.run:
            failures += run_cli_versions(options.run, image, options.source, contract, pins)
    failures += check_special_bits(fs, contract)
    failures += check_programs(fs, env, want)
    if role != "agent":
        part = contract["images"][role]
        passwd = read_contents(blobs, image.layers, fs, ["/etc/passwd", "/etc/group"])
        failures += check_passwd(passwd.get("/etc/passwd"), passwd.get("/etc/group"), want["user"], contract)
        return failures + check_service_dirs(fs, part) + check_service_files(fs, part)
    failures += check_dirs(fs, contract)
    manifest_path = contract["baked"]["manifest"]["path"]
    first = read_contents(blobs, image.layers, fs, ["/etc/passwd", "/etc/group", manifest_path])
    failures += check_passwd(first.get("/etc/passwd"), first.get("/etc/group"), want["user"], contract)
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


def verify_path(source: Path, contract: dict, options: Options | None = None) -> list[tuple[str, list[Failure]]]:
    options = Options(**{**vars(options or Options()), "source": source})
    with opened(source) as (blobs, images):
        return [(image.name, verify_image(blobs, image, contract, options)) for image in images]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="image-verify",
        description="Check container image archives against image/contract.json: the agent image against "
                    "its contract, the proxy and the gateway against theirs (images.proxy, images.gateway).",
        epilog="Exit 0: every image keeps its contract; 1: failures (each with its path and the fix); "
               "2: the archive or the contract cannot be read.",
    )
    parser.add_argument("image", type=Path, nargs="+",
                        help="docker-archive (.tar, .tar.gz; `./result > x.tar` for a Nix image), OCI layout folder or .tar")
    parser.add_argument("--image", dest="role", choices=ROLES,
                        help="judge as this image (default: its io.agent-sandbox.image label, else its name, else agent)")
    parser.add_argument("--contract", type=Path, default=CONTRACT_PATH, help="contract JSON (default: the packaged one)")
    parser.add_argument("--lockfile", type=Path, default=PACKAGE_LOCK,
                        help="package-lock.json whose pins the agent image's CLI labels must equal (default: %(default)s)")
    parser.add_argument("--run", choices=("podman", "docker"), metavar="ENGINE",
                        help="also run each CLI's --version in the agent image with ENGINE (podman or docker), "
                             "no network: it must answer the lockfile's pin (the image is loaded if ENGINE lacks it)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    total = 0
    try:
        contract = load_contract(args.contract)
        for source in args.image:
            options = Options(role=args.role, lockfile=args.lockfile, run=args.run)
            for name, failures in verify_path(source, contract, options):
                for failure in failures:
                    print(f"[{name}] {failure.render()}")
                total += len(failures)
                print(f"image-verify: {name}: {'OK' if not failures else f'{len(failures)} failure(s)'}")
    except (UnreadableImage, ContractError) as err:
        print(f"image-verify: {err}", file=sys.stderr)
        return 2
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
