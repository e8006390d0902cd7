#!/usr/bin/env python3
"""Build the Debian stand-in for the Nix agent image, from the same image/contract.json.

nixpkgs cannot be reached from the machines this project is tested on, so this builds an image
with the same contract from Debian 12 packages, to load into podman and run for real:

  layer 1  debootstrap --variant=minbase bookworm + the tools (apt), with su, sudo & co. removed
           and every setuid/setgid bit cleared                      (cached: package list, suite)
  layer 2  Node (the host's binary: bookworm's nodejs is 18) and the pinned CLIs from
           node_modules/ (.ci/install-clis.sh)                       (cached: node, package-lock)
  layer 3  the project (wheels, installed with the rootfs's python3), the tree from
           `render-profiles --image-root`, /etc/passwd and /etc/group, the contract's folders
                                                                     (rebuilt every time)

and writes an uncompressed docker-archive (podman load refuses a gzip'd one) whose config
(User, Entrypoint, WorkingDir, Env, Labels) comes from the contract. Runs as root (debootstrap,
chroot, chown). Standard library only.

  python3 image/debian/build.py [--output FILE] [--cache DIR] [--tag TAG]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO / "image" / "contract.json"
DEFAULT_CACHE = Path(os.environ.get("AGENT_IMAGE_CACHE", "/var/cache/agent-sandbox/image-debian"))
DEFAULT_TAG = "test"

SUITE = "bookworm"
MIRROR = os.environ.get("AGENT_IMAGE_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = os.environ.get("AGENT_IMAGE_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
# The Debian counterparts of contract.nix.tool_packages, plus the Python the project runs on.
# (Node comes from the host: bookworm's nodejs is 18, the CLIs need 20.)
PACKAGES = ("bash", "coreutils", "git", "gh", "ca-certificates", "curl", "jq", "ripgrep", "python3")
# Bumped when the base layer's recipe changes, so a cached base is not reused.
BASE_RECIPE = 1
NO_DOCS = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
"""
CLI_PACKAGES = {"claude-code": "@anthropic-ai/claude-code", "codex": "@openai/codex",
                "gemini-cli": "@google/gemini-cli"}
CLI_BINS = ("claude", "codex", "gemini")
CLIS_HOME = "/opt/agent-clis"
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class BuildError(Exception):
    pass


# ---- pure parts: what goes into the image, from the contract ---------------------------------

def passwd_text(contract: dict) -> str:
    user, nologin = contract["user"], contract["root"]["shell"]
    return (f"root:x:0:0:root:/root:{nologin}\n"
            f"{user['name']}:x:{user['uid']}:{user['gid']}:{user['name']}:{user['home']}:{user['shell']}\n"
            f"nobody:x:65534:65534:nobody:/nonexistent:{nologin}\n")


def group_text(contract: dict) -> str:
    user = contract["user"]
    return f"root:x:0:\n{user['group']}:x:{user['gid']}:\nnogroup:x:65534:\n"


def labels(contract: dict, revision: str, version: str, cli_versions: dict[str, str]) -> dict[str, str]:
    out = dict(contract["labels"]["fixed"])
    out["org.opencontainers.image.source"] = contract["labels"]["source"]
    out["org.opencontainers.image.revision"] = revision
    out["org.opencontainers.image.version"] = version
    for name in CLI_PACKAGES:
        out[f"io.agent-sandbox.cli.{name}"] = cli_versions[name]
    # Says plainly that this is the test stand-in, not the Nix-built image.
    out["io.agent-sandbox.build"] = f"debian-{SUITE}-stand-in"
    return out


def image_config(contract: dict, image_labels: dict[str, str], diff_ids: list[str], history: list[str],
                 architecture: str, created: str) -> dict:
    cfg = contract["config"]
    return {
        "architecture": architecture,
        "os": "linux",
        "created": created,
        "config": {
            "User": cfg["User"],
            "Entrypoint": list(cfg["Entrypoint"]),
            "WorkingDir": cfg["WorkingDir"],
            "Env": [f"{name}={value}" for name, value in contract["env"].items()],
            "Labels": image_labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diff_ids]},
        "history": [{"created": created, "created_by": step} for step in history],
    }


def cli_versions(package_json: dict) -> dict[str, str]:
    deps = package_json.get("dependencies") or {}
    missing = [npm for npm in CLI_PACKAGES.values() if npm not in deps]
    if missing:
        raise BuildError(f"{REPO / 'package.json'}: dependencies lack {', '.join(missing)}; "
                         "pin the three CLIs there (see .ci/install-clis.sh)")
    return {name: deps[npm] for name, npm in CLI_PACKAGES.items()}


def cache_key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


# ---- I/O helpers -----------------------------------------------------------------------------

def log(message: str) -> None:
    print(f"build-image: {message}", file=sys.stderr, flush=True)


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, check=True, **kwargs)
    except FileNotFoundError:
        raise BuildError(f"{argv[0]} not found; install it (.ci/install-podman-image.sh does)")
    except subprocess.CalledProcessError as error:
        raise BuildError(f"{' '.join(argv[:6])}{' ...' if len(argv) > 6 else ''} exited {error.returncode}")


def chroot(root: Path, script: str) -> None:
    # A clean environment: the host's PIP_*/proxy settings must not leak into the rootfs.
    run(["chroot", str(root), "/bin/sh", "-euc", script],
        env={"PATH": CHROOT_PATH, "HOME": "/root", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"})


@contextmanager
def bind_mounts(pairs: list[tuple[Path, Path]]):
    mounted = []
    try:
        for source, target in pairs:
            target.mkdir(parents=True, exist_ok=True)
            if source == Path("proc"):
                run(["mount", "-t", "proc", "proc", str(target)])
            else:
                run(["mount", "--bind", str(source), str(target)])
            mounted.append(target)
        yield
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", "-l", str(target)], check=False)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def tar_layer(source: Path, target: Path) -> str:
    """An uncompressed layer tar of `source` (numeric owners, sorted), written atomically; its sha256.
    No extended attributes: a file capability (security.capability) is privilege too."""
    names = sorted(os.listdir(source))
    partial = target.with_suffix(".partial")
    run(["tar", "--create", "--file", str(partial), "--numeric-owner", "--sort=name", "--no-xattrs",
         "--one-file-system", "-C", str(source), "--", *names])
    digest = sha256_file(partial)
    partial.rename(target)
    target.with_suffix(".sha256").write_text(digest + "\n")
    return digest


def cached_layer(folder: Path) -> str | None:
    layer, digest_file = folder / "layer.tar", folder / "layer.sha256"
    if layer.is_file() and digest_file.is_file():
        return digest_file.read_text().strip()
    return None


def remove_tree(path: Path) -> None:
    if path.exists() or path.is_symlink():
        run(["rm", "-rf", "--one-file-system", str(path)])


def prune(cache: Path, prefix: str, keep: str) -> None:
    for old in cache.glob(f"{prefix}-*"):
        if old.name != keep:
            log(f"removing stale cache {old}")
            remove_tree(old)


def strip_privilege(root: Path, forbidden: list[str]) -> None:
    """Remove the escalation programs and clear every setuid/setgid bit on regular files."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not os.path.ismount(os.path.join(dirpath, d))]
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            if name in forbidden:
                os.unlink(path)
                continue
            st = os.lstat(path)
            if not os.path.islink(path) and st.st_mode & 0o6000:
                os.chmod(path, st.st_mode & 0o1777)


# ---- layer 1: Debian base --------------------------------------------------------------------

def build_base(cache: Path, contract: dict) -> tuple[Path, str]:
    key = cache_key(str(BASE_RECIPE), SUITE, MIRROR, SECURITY_MIRROR, *PACKAGES, *contract["forbidden_programs"])
    folder = cache / f"base-{key}"
    rootfs = folder / "rootfs"
    digest = cached_layer(folder)
    if digest and rootfs.is_dir():
        log(f"base layer cached ({folder})")
        return rootfs, digest
    prune(cache, "base", "")
    folder.mkdir(parents=True)
    started = time.monotonic()
    run(["debootstrap", "--variant=minbase", SUITE, str(rootfs), MIRROR], stdout=subprocess.DEVNULL)
    log(f"debootstrap {SUITE}: {time.monotonic() - started:.0f} s")
    (rootfs / "etc/apt/sources.list").write_text(
        f"deb {MIRROR} {SUITE} main\ndeb {MIRROR} {SUITE}-updates main\n"
        f"deb {SECURITY_MIRROR} {SUITE}-security main\n")
    (rootfs / "etc/dpkg/dpkg.cfg.d/01-agent-image-nodoc").write_text(NO_DOCS)
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")  # no service starts inside the build
    policy.chmod(0o755)
    started = time.monotonic()
    with bind_mounts([(Path("proc"), rootfs / "proc")]):
        chroot(rootfs, "apt-get update -qq && apt-get -y -qq upgrade >/dev/null && "
                       f"apt-get install -y -qq --no-install-recommends {' '.join(PACKAGES)} >/dev/null && "
                       "apt-get clean")
    log(f"apt install and upgrade: {time.monotonic() - started:.0f} s")
    policy.unlink()
    for leftover in ("var/lib/apt/lists", "var/cache/apt", "var/cache/debconf/templates.dat-old",
                     "var/log", "usr/share/doc-base"):
        remove_tree(rootfs / leftover)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
    (rootfs / "var/log").mkdir()
    for entry in (rootfs / "dev").iterdir():  # the runtime provides /dev
        remove_tree(entry)
    for shadow in ("etc/shadow", "etc/gshadow", "etc/shadow-", "etc/gshadow-", "etc/passwd-", "etc/group-"):
        (rootfs / shadow).unlink(missing_ok=True)
    for host_file in ("etc/resolv.conf", "etc/hostname"):  # debootstrap copied the build host's
        (rootfs / host_file).write_text("")
    strip_privilege(rootfs, contract["forbidden_programs"])
    digest = tar_layer(rootfs, folder / "layer.tar")
    return rootfs, digest


# ---- layer 2: Node and the pinned CLIs -------------------------------------------------------

def host_node() -> Path:
    found = shutil.which("node")
    if not found:
        raise BuildError("node not found on PATH; install Node.js 20 (the CLIs need it)")
    version = subprocess.run([found, "--version"], capture_output=True, text=True).stdout.strip()
    if not version.startswith("v") or int(version[1:].split(".")[0]) < 20:
        raise BuildError(f"{found} is Node {version}; the CLIs need Node >= 20")
    return Path(os.path.realpath(found))


def build_clis(cache: Path, base_rootfs: Path) -> tuple[str, str]:
    node = host_node()
    modules = REPO / "node_modules"
    stamp = modules / ".agent-sandbox-lock.sha256"
    if not stamp.is_file():
        raise BuildError(f"{modules} is missing or incomplete; run .ci/install-clis.sh first")
    key = cache_key(sha256_file(node), sha256_file(REPO / "package-lock.json"), stamp.read_text())
    folder = cache / f"clis-{key}"
    digest = cached_layer(folder)
    if digest:
        log(f"CLI layer cached ({folder})")
        return digest, str(folder / "layer.tar")
    prune(cache, "clis", "")
    tree = folder / "tree"
    started = time.monotonic()
    (tree / "usr/local/bin").mkdir(parents=True)
    shutil.copy2(node, tree / "usr/local/bin/node")
    home = tree / CLIS_HOME.lstrip("/")
    home.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(REPO / name, home / name)
    run(["cp", "-a", str(modules), str(home / "node_modules")])
    for name in CLI_BINS:
        os.symlink(f"{CLIS_HOME}/node_modules/.bin/{name}", tree / "usr/local/bin" / name)
    run(["chown", "-R", "-h", "0:0", str(tree)])
    run(["chmod", "-R", "go-w", str(tree)])
    strip_privilege(tree, [])
    # The copied node must run on the base's libraries.
    with tempfile.TemporaryDirectory(dir=base_rootfs / "tmp") as probe:
        shutil.copy2(node, Path(probe) / "node")
        chroot(base_rootfs, f"/tmp/{Path(probe).name}/node --version >/dev/null")
    digest = tar_layer(tree, folder / "layer.tar")
    remove_tree(tree)
    log(f"CLI layer: {time.monotonic() - started:.0f} s")
    return digest, str(folder / "layer.tar")


# ---- layer 3: the project and the baked configuration ----------------------------------------

def python_wheels(target: Path, base_rootfs: Path) -> None:
    """The project's wheel and its dependencies' wheels for the rootfs's python3, plus pip itself."""
    probe = subprocess.run(["chroot", str(base_rootfs), "python3", "-c",
                            "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
                           capture_output=True, text=True, env={"PATH": CHROOT_PATH})
    py = probe.stdout.strip()
    if probe.returncode != 0 or not py:
        raise BuildError(f"python3 does not run in {base_rootfs}: {probe.stderr.strip()}")
    machine = os.uname().machine
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    source = target.parent / "source"
    copy_project_source(source)
    run(pip + ["wheel", "--no-deps", "--wheel-dir", str(target), str(source)], stdout=subprocess.DEVNULL)
    wheel = next(target.glob("agent_sandbox-*.whl"))
    platforms = []
    for tag in (f"manylinux_2_36_{machine}", f"manylinux_2_28_{machine}", f"manylinux_2_17_{machine}",
                f"manylinux2014_{machine}"):
        platforms += ["--platform", tag]
    run(pip + ["download", "--dest", str(target), "--only-binary", ":all:", "--implementation", "cp",
               "--python-version", py, *platforms, str(wheel), "pip"], stdout=subprocess.DEVNULL)


def copy_project_source(target: Path) -> None:
    """The packaged part of the work tree, so the wheel is built from it alone (an in-tree build
    would reuse build/lib, where a module deleted from the source lives on)."""
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = pyproject.get("tool", {}).get("setuptools", {}).get("packages") or []
    if not packages:
        raise BuildError(f"{REPO / 'pyproject.toml'}: no [tool.setuptools] packages list; the builder copies those")
    target.mkdir()
    shutil.copy2(REPO / "pyproject.toml", target / "pyproject.toml")
    for package in packages:
        shutil.copytree(REPO / package, target / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))


def install_project(stage: Path, base_rootfs: Path, wheels: Path) -> None:
    pip_wheel = next(wheels.glob("pip-*.whl"))
    inside_wheels, inside_stage = base_rootfs / "tmp/agent-wheels", base_rootfs / "tmp/agent-stage"
    with bind_mounts([(wheels, inside_wheels), (stage, inside_stage)]):
        chroot(base_rootfs,
               f"python3 /tmp/agent-wheels/{pip_wheel.name}/pip install -q --no-index --no-cache-dir "
               "--find-links /tmp/agent-wheels --root /tmp/agent-stage --break-system-packages "
               "--root-user-action=ignore --no-warn-script-location agent-sandbox")
    inside_wheels.rmdir()
    inside_stage.rmdir()


def render_tree(target: Path, contract: dict) -> dict:
    run(["render-profiles", "--image-root", str(target), *contract["baked"]["render_args"]],
        stdout=subprocess.DEVNULL)
    (target / ".agent-image-root").unlink(missing_ok=True)
    manifest_path = target / contract["baked"]["manifest"]["path"].lstrip("/")
    try:
        return json.loads(manifest_path.read_text())
    except (OSError, ValueError) as error:
        raise BuildError(f"{manifest_path}: unreadable after render-profiles ({error}); check the renderer")


def apply_ownership(stage: Path, contract: dict, manifest: dict) -> None:
    run(["chown", "-R", "-h", "0:0", str(stage)])
    for path, entry in manifest["files"].items():
        target = stage / path.lstrip("/")
        os.chown(target, entry.get("owner", 0), entry.get("owner", 0))
        os.chmod(target, int(entry["mode"], 8))
    meta = contract["baked"]["manifest"]
    manifest_file = stage / meta["path"].lstrip("/")
    os.chown(manifest_file, meta["owner"], meta["owner"])
    os.chmod(manifest_file, int(meta["mode"], 8))
    for folder in contract["root_only_dirs"]:
        target = stage / folder.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        os.chown(target, 0, 0)
        os.chmod(target, 0o755)
    user = contract["user"]
    for folder in contract["agent_writable_dirs"]:
        target = stage / folder.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        os.chown(target, user["uid"], user["gid"])
        os.chmod(target, 0o755)
    for sticky in contract["sticky_dirs"]:
        target = stage / sticky["path"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        os.chown(target, sticky["owner"], sticky["owner"])
        os.chmod(target, int(sticky["mode"], 8))


def build_project(work: Path, base_rootfs: Path, contract: dict) -> tuple[str, str]:
    stage, wheels, rendered = work / "stage", work / "wheels", work / "rendered"
    for folder in (stage, wheels):
        folder.mkdir()
    started = time.monotonic()
    python_wheels(wheels, base_rootfs)
    install_project(stage, base_rootfs, wheels)
    manifest = render_tree(rendered, contract)
    run(["cp", "-a", f"{rendered}/.", str(stage)])
    (stage / "etc").mkdir(exist_ok=True)
    (stage / "etc/passwd").write_text(passwd_text(contract))
    (stage / "etc/group").write_text(group_text(contract))
    for name in ("etc/passwd", "etc/group"):
        os.chmod(stage / name, 0o644)
    apply_ownership(stage, contract, manifest)
    strip_privilege(stage, contract["forbidden_programs"])
    digest = tar_layer(stage, work / "layer.tar")
    log(f"project layer: {time.monotonic() - started:.0f} s")
    return digest, str(work / "layer.tar")


# ---- the archive -----------------------------------------------------------------------------

def git_revision() -> str:
    result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if result.returncode != 0:
        return "unknown"
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return result.stdout.strip() + ("-dirty" if dirty else "")


def project_version() -> str:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def write_archive(output: Path, repo_tag: str, config: dict, layers: list[tuple[str, str]]) -> str:
    """docker-archive: manifest.json, the config blob, one folder per layer. Returns the image id."""
    config_bytes = json.dumps(config, indent=2, sort_keys=True).encode()
    image_id = hashlib.sha256(config_bytes).hexdigest()
    manifest = [{"Config": f"{image_id}.json", "RepoTags": [repo_tag],
                 "Layers": [f"{digest}/layer.tar" for digest, _ in layers]}]
    name, tag = repo_tag.rsplit(":", 1)
    repositories = {name: {tag: layers[-1][0]}}

    def add_bytes(archive: tarfile.TarFile, member: str, data: bytes) -> None:
        info = tarfile.TarInfo(member)
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        archive.addfile(info, fileobj=io.BytesIO(data))

    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
        add_bytes(archive, f"{image_id}.json", config_bytes)
        for digest, path in layers:
            info = archive.gettarinfo(path, arcname=f"{digest}/layer.tar")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            with open(path, "rb") as f:
                archive.addfile(info, f)
        add_bytes(archive, "manifest.json", json.dumps(manifest).encode())
        add_bytes(archive, "repositories", json.dumps(repositories).encode())
    partial.rename(output)
    return image_id


def build(output: Path, cache: Path, tag: str) -> dict:
    if os.geteuid() != 0:
        raise BuildError("run as root: debootstrap, chroot and chown need it")
    os.umask(0o022)
    try:
        contract = json.loads(CONTRACT.read_text())
    except (OSError, ValueError) as error:
        raise BuildError(f"{CONTRACT}: {error}; fix the contract")
    versions = cli_versions(json.loads((REPO / "package.json").read_text()))
    cache.mkdir(parents=True, exist_ok=True)
    timings, started = {}, time.monotonic()
    base_rootfs, base_digest = build_base(cache, contract)
    timings["base"] = time.monotonic() - started
    step = time.monotonic()
    clis_digest, clis_layer = build_clis(cache, base_rootfs)
    timings["clis"] = time.monotonic() - step
    with tempfile.TemporaryDirectory(dir=cache, prefix="project-") as work:
        step = time.monotonic()
        project_digest, project_layer = build_project(Path(work), base_rootfs, contract)
        timings["project"] = time.monotonic() - step
        architecture = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                                      text=True).stdout.strip() or "amd64"
        config = image_config(
            contract, labels(contract, git_revision(), project_version(), versions),
            [base_digest, clis_digest, project_digest],
            [f"debootstrap --variant=minbase {SUITE}; apt-get install {' '.join(PACKAGES)}; "
             "escalation programs removed, setuid/setgid bits cleared",
             f"node {host_node_version()} and the pinned CLIs in {CLIS_HOME}",
             "agent-sandbox (pip), render-profiles --image-root, passwd/group, contract folders"],
            architecture, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        step = time.monotonic()
        image_id = write_archive(output, f"{contract['images']['agent']['name']}:{tag}", config,
                                 [(base_digest, str(cache / f"{base_rootfs.parent.name}/layer.tar")),
                                  (clis_digest, clis_layer), (project_digest, project_layer)])
        timings["archive"] = time.monotonic() - step
    timings["total"] = time.monotonic() - started
    report = {"archive": str(output), "image_id": f"sha256:{image_id}", "size_bytes": output.stat().st_size,
              "layers": [base_digest, clis_digest, project_digest],
              "seconds": {k: round(v, 1) for k, v in timings.items()}}
    output.with_name(output.name + ".json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def host_node_version() -> str:
    return subprocess.run([str(host_node()), "--version"], capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where layers are cached (%(default)s)")
    parser.add_argument("--output", type=Path, help="the docker-archive to write (default: CACHE/agent-image-TAG.tar)")
    parser.add_argument("--tag", default=DEFAULT_TAG, help="image tag (%(default)s)")
    args = parser.parse_args(argv)
    output = args.output or args.cache / f"agent-image-{args.tag}.tar"
    try:
        report = build(output.resolve(), args.cache.resolve(), args.tag)
    except BuildError as error:
        print(f"build-image: error: {error}", file=sys.stderr)
        return 1
    log(f"wrote {report['archive']} ({report['size_bytes'] / 1e6:.0f} MB, {report['image_id'][:19]}) "
        f"in {report['seconds']['total']:.0f} s: {report['seconds']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
