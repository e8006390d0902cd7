#!/usr/bin/env python3
"""Build the Debian stand-ins for the Nix images, from the same image/contract.json.

nixpkgs cannot be reached from the machines this project is tested on, so this builds the three
images the project runs (agent-image, egress-proxy, agent-gateway: `images` in the contract)
from Debian 12 packages, to load into podman and run for real. Layers, shared where they can be:

  base     debootstrap --variant=minbase bookworm + the tools (apt), with su, sudo & co. removed
           and every setuid/setgid bit cleared                (all three; cached: packages, suite)
  clis     Node (the host's binary: bookworm's nodejs is 18) and the CLIs at the lockfile's pins
           from node_modules/ (.ci/install-clis.sh)           (agent; cached: node, package-lock)
  squid    Debian's squid, the version the host has (.ci/install-egress.sh pins it), installed
           on the base in an overlay                          (proxy; cached: base, squid version)
  python   the project's wheel and its dependencies at the versions installed here (what the
           tests ran against), installed with the rootfs's python3  (agent and gateway; per build)
  top      per image: the agent's tree from `render-profiles --image-root`, the proxy's Squid
           config, the gateway's folders; /etc/passwd and /etc/group    (per build)

Each image is an uncompressed docker-archive (podman load refuses a gzip'd one) whose config
(User, Entrypoint, Cmd, WorkingDir, Env, Labels) comes from the contract. Runs as root
(debootstrap, chroot, mount, chown). Standard library only.

  python3 image/debian/build.py [--image agent|proxy|gateway ...] [--tag TAG] [--load]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a script: the project's own modules (stdlib-only ones)

from image.clis import PinError, lockfile_pins  # noqa: E402
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
CLIS_HOME = "/opt/agent-clis"
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ROLES = ("agent", "proxy", "gateway")
ROLE_LABEL = "io.agent-sandbox.image"
# Debian's squid runs as `proxy` (base-passwd's fixed uid/gid 13) after starting as root.
SQUID_USER, SQUID_ID = "proxy", 13
SQUID_RECIPE = 1
CONTAINERS_CONF = REPO / "image" / "debian" / "containers.conf"


class BuildError(Exception):
    pass


# ---- pure parts: what goes into the image, from the contract ---------------------------------

def passwd_text(contract: dict, role: str) -> str:
    """root with no login shell, the image's own user, nobody; nothing else (no second uid 0)."""
    nologin = contract["root"]["shell"]
    lines = [f"root:x:0:0:root:/root:{nologin}"]
    if role == "agent":
        user = contract["user"]
        lines.append(f"{user['name']}:x:{user['uid']}:{user['gid']}:{user['name']}:{user['home']}:{user['shell']}")
    elif role == "proxy":
        lines.append(f"{SQUID_USER}:x:{SQUID_ID}:{SQUID_ID}:proxy:/bin:{nologin}")
    else:
        user = contract["images"][role]["user"]
        lines.append(f"{user['name']}:x:{user['uid']}:{user['gid']}:{user['name']}:/nonexistent:{nologin}")
    lines.append(f"nobody:x:65534:65534:nobody:/nonexistent:{nologin}")
    return "\n".join(lines) + "\n"


def group_text(contract: dict, role: str) -> str:
    if role == "agent":
        user = contract["user"]
    elif role == "proxy":
        user = {"group": SQUID_USER, "gid": SQUID_ID}
    else:
        user = contract["images"][role]["user"]
    return f"root:x:0:\n{user['group']}:x:{user['gid']}:\nnogroup:x:65534:\n"


def labels(contract: dict, role: str, revision: str, version: str, cli_versions: dict[str, str]) -> dict[str, str]:
    if role == "agent":
        out = dict(contract["labels"]["fixed"])
        for name, pin in cli_versions.items():
            out[f"io.agent-sandbox.cli.{name}"] = pin
    else:
        out = {"org.opencontainers.image.title": contract["images"][role]["title"], ROLE_LABEL: role}
    out["org.opencontainers.image.source"] = contract["labels"]["source"]
    out["org.opencontainers.image.revision"] = revision
    out["org.opencontainers.image.version"] = version
    # Says plainly that this is the test stand-in, not the Nix-built image.
    out["io.agent-sandbox.build"] = f"debian-{SUITE}-stand-in"
    return out


def runtime_config(contract: dict, role: str) -> dict:
    """The image config's `config` object, labels aside: from the contract's part for `role`."""
    if role == "agent":
        wanted, env = contract["config"], contract["env"]
    else:
        wanted, env = contract["images"][role]["config"], contract["images"][role]["env"]
    config = {key: list(value) if isinstance(value, list) else value for key, value in wanted.items()}
    config["Env"] = [f"{name}={value}" for name, value in env.items()]
    return config


def image_config(runtime: dict, image_labels: dict[str, str], diff_ids: list[str], history: list[str],
                 architecture: str, created: str) -> dict:
    return {
        "architecture": architecture,
        "os": "linux",
        "created": created,
        "config": {**runtime, "Labels": image_labels},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diff_ids]},
        "history": [{"created": created, "created_by": step} for step in history],
    }


def cli_versions(contract: dict) -> dict[str, str]:
    try:
        return lockfile_pins(contract["clis"], REPO / "package-lock.json")
    except PinError as error:
        raise BuildError(str(error))


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


def quiet_unless_failing(script: str) -> str:
    """apt's and the maintainer scripts' chatter (`E: Can not write log`, debconf's notes) only
    when the step fails: a green build's log must not read like an error."""
    return f"{{ {script}; }} >/tmp/agent-build.log 2>&1 || {{ tail -n 40 /tmp/agent-build.log >&2; exit 1; }}; " \
           "rm -f /tmp/agent-build.log"


@contextmanager
def bind_mounts(pairs: list[tuple[Path, Path]]):
    mounted = []
    try:
        for source, target in pairs:
            if not target.exists():
                target.mkdir(parents=True)
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


def layer_folder(cache: Path, prefix: str, key: str, what: str) -> tuple[Path, str | None]:
    """The cache folder of a layer, and its digest when it is built already; when it is not,
    the older folders of that kind are dropped (they hold hundreds of MB each)."""
    folder = cache / f"{prefix}-{key}"
    digest = cached_layer(folder)
    if digest:
        log(f"{what} layer cached ({folder})")
    else:
        prune(cache, prefix, "")
    return folder, digest


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
        chroot(rootfs, quiet_unless_failing("apt-get update -qq && apt-get -y -qq upgrade && "
                                            f"apt-get install -y -qq --no-install-recommends {' '.join(PACKAGES)} && "
                                            "apt-get clean"))
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


def build_clis(cache: Path, base_rootfs: Path, contract: dict) -> tuple[str, str]:
    node = host_node()
    modules = REPO / "node_modules"
    stamp = modules / ".agent-sandbox-lock.sha256"
    if not stamp.is_file():
        raise BuildError(f"{modules} is missing or incomplete; run .ci/install-clis.sh first")
    lock_digest = sha256_file(REPO / "package-lock.json")
    if stamp.read_text().strip() != lock_digest:
        raise BuildError(f"{modules} was installed from another package-lock.json; run .ci/install-clis.sh")
    folder, digest = layer_folder(cache, "clis", cache_key(sha256_file(node), lock_digest, stamp.read_text()), "CLI")
    if digest:
        return digest, str(folder / "layer.tar")
    tree = folder / "tree"
    started = time.monotonic()
    (tree / "usr/local/bin").mkdir(parents=True)
    shutil.copy2(node, tree / "usr/local/bin/node")
    home = tree / CLIS_HOME.lstrip("/")
    home.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(REPO / name, home / name)
    # `/.`: node_modules may itself be a symlink (a git worktree's, to the main checkout's)
    run(["cp", "-a", f"{modules}/.", str(home / "node_modules")])
    for name in (cli["bin"] for cli in contract["clis"].values()):
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


# ---- python: the project and its dependencies, at the versions the tests ran against ----------

def python_wheels(target: Path, base_rootfs: Path) -> None:
    """The project's wheel and its dependencies' wheels for the rootfs's python3, plus pip itself."""
    probe = subprocess.run(["chroot", str(base_rootfs), "python3", "-c",
                            "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
                           capture_output=True, text=True, env={"PATH": CHROOT_PATH})
    py = probe.stdout.strip()
    if probe.returncode != 0 or not py:
        raise BuildError(f"python3 does not run in {base_rootfs}: {probe.stderr.strip()}")
    machine = os.uname().machine
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-qq"]
    source = target.parent / "source"
    copy_project_source(source)
    run(pip + ["wheel", "--no-deps", "--wheel-dir", str(target), str(source)], stdout=subprocess.DEVNULL)
    wheel = next(target.glob("agent_sandbox-*.whl"))
    platforms = []
    for tag in (f"manylinux_2_36_{machine}", f"manylinux_2_28_{machine}", f"manylinux_2_17_{machine}",
                f"manylinux2014_{machine}"):
        platforms += ["--platform", tag]
    pins = host_pins()
    constraints = target.parent / "constraints.txt"
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
    run(pip + ["download", "--dest", str(target), "--only-binary", ":all:", "--implementation", "cp",
               "--python-version", py, *platforms, "--constraint", str(constraints), str(wheel), "pip"],
        stdout=subprocess.DEVNULL)
    unpinned = sorted(name for name in (wheel_name(path) for path in target.glob("*.whl"))
                      if name not in pins and name != "agent-sandbox")
    if unpinned:
        raise BuildError(f"{', '.join(unpinned)}: required by pyproject.toml but not installed here, so the image "
                         "would get versions no test ran against; run `pip install -e .` first")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_name(path: Path) -> str:
    return normalized(path.name.split("-", 1)[0])


def host_pins() -> dict[str, str]:
    """{distribution: version} of everything installed in this Python: the versions the tests
    ran against. Used as pip constraints, so only what the project needs is taken from it."""
    from importlib import metadata

    pins = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and normalized(name) != "agent-sandbox":
            pins[normalized(name)] = dist.version
    return pins


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
    for package in packages:  # a subpackage ("entrypoint.checkpoint") is a folder inside its parent's
        folder = package.replace(".", "/")
        shutil.copytree(REPO / folder, target / folder, dirs_exist_ok=True,
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
    """The agent's baked tree, written by render-profiles; its manifest."""
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


def build_python(work: Path, base_rootfs: Path) -> tuple[str, str]:
    stage, wheels = work / "stage", work / "wheels"
    for folder in (stage, wheels):
        folder.mkdir(parents=True)
    started = time.monotonic()
    python_wheels(wheels, base_rootfs)
    install_project(stage, base_rootfs, wheels)
    run(["chown", "-R", "-h", "0:0", str(stage)])
    run(["chmod", "-R", "go-w", str(stage)])
    strip_privilege(stage, [])
    digest = tar_layer(stage, work / "layer.tar")
    remove_tree(stage)
    log(f"python layer: {time.monotonic() - started:.0f} s")
    return digest, str(work / "layer.tar")


# ---- squid: Debian's package, installed on the base in an overlay ---------------------------------

def host_package_version(name: str) -> str | None:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None


def overlay_to_layer(upper: Path) -> None:
    """An overlayfs upper folder as an image layer: its whiteouts (0/0 character devices) become
    `.wh.NAME` files and its opaque folders get a `.wh..wh..opq` marker."""
    for dirpath, dirnames, filenames in os.walk(upper):
        folder = Path(dirpath)
        try:
            opaque = os.getxattr(folder, "trusted.overlay.opaque") == b"y"
        except OSError:
            opaque = False
        if opaque and folder != upper:
            (folder / ".wh..wh..opq").touch()
        for name in filenames + dirnames:
            path = folder / name
            st = os.lstat(path)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                path.unlink()
                (folder / f".wh.{name}").touch()


def build_squid(cache: Path, base_rootfs: Path, base_digest: str, contract: dict) -> tuple[str, str]:
    version = host_package_version("squid")
    package = f"squid={version}" if version else "squid"
    folder, digest = layer_folder(cache, "squid", cache_key(str(SQUID_RECIPE), base_digest, package), "squid")
    if digest:
        return digest, str(folder / "layer.tar")
    upper, work, merged = folder / "upper", folder / "work", folder / "merged"
    for path in (upper, work, merged):
        path.mkdir(parents=True)
    started = time.monotonic()
    # metacopy off: a copied-up file must carry its data, not point at the lower layer
    options = f"lowerdir={base_rootfs},upperdir={upper},workdir={work},metacopy=off,redirect_dir=off,index=off"
    run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)])
    try:
        policy = merged / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")  # no service starts inside the build
        policy.chmod(0o755)
        with bind_mounts([(Path("proc"), merged / "proc"), (Path("/dev"), merged / "dev"),
                          (Path("/etc/resolv.conf"), merged / "etc/resolv.conf")]):
            chroot(merged, quiet_unless_failing(f"apt-get update -qq && apt-get install -y -qq "
                                                f"--no-install-recommends {package} && apt-get clean"))
        policy.unlink()
        for leftover in ("var/lib/apt/lists", "var/cache/apt", "var/log/apt", "var/log/dpkg.log",
                         "var/log/alternatives.log", "etc/shadow", "etc/gshadow", "etc/shadow-", "etc/gshadow-",
                         "etc/passwd-", "etc/group-"):
            remove_tree(merged / leftover)
        (merged / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
        for old in (merged / "var/cache/debconf").glob("*-old"):
            old.unlink()
    finally:
        subprocess.run(["umount", str(merged)], check=False)
    overlay_to_layer(upper)
    strip_privilege(upper, contract["forbidden_programs"])
    digest = tar_layer(upper, folder / "layer.tar")
    for path in (upper, work, merged):
        remove_tree(path)
    log(f"squid layer ({package}): {time.monotonic() - started:.0f} s")
    return digest, str(folder / "layer.tar")


# ---- top: what each image adds over the shared layers -------------------------------------------

def write_users(stage: Path, contract: dict, role: str) -> None:
    (stage / "etc").mkdir(exist_ok=True)
    for name, text in (("passwd", passwd_text(contract, role)), ("group", group_text(contract, role))):
        (stage / "etc" / name).write_text(text)
        os.chmod(stage / "etc" / name, 0o644)


def service_dirs(stage: Path, part: dict) -> None:
    """The contract's folders that name an owner or mode (the others come with the package)."""
    for spec in part["dirs"]:
        if "owner" not in spec and "mode" not in spec:
            continue
        target = stage / spec["path"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        owner = spec.get("owner", 0)
        os.chown(target, owner, owner)
        os.chmod(target, int(spec.get("mode", "0755"), 8))


def build_top(work: Path, contract: dict, role: str) -> tuple[str, str]:
    stage = work / "stage"
    stage.mkdir(parents=True)
    started = time.monotonic()
    if role == "agent":
        rendered = work / "rendered"
        manifest = render_tree(rendered, contract)
        run(["cp", "-a", f"{rendered}/.", str(stage)])
        write_users(stage, contract, role)
        apply_ownership(stage, contract, manifest)
    else:
        part = contract["images"][role]
        if part.get("render_args"):
            rendered = work / "rendered"
            run(["render-profiles", "--image-root", str(rendered), *part["render_args"]], stdout=subprocess.DEVNULL)
            (rendered / ".agent-image-root").unlink()
            run(["cp", "-a", f"{rendered}/.", str(stage)])
        run(["chown", "-R", "-h", "0:0", str(stage)])
        write_users(stage, contract, role)
        for path in part["files"]:
            os.chmod(stage / path.lstrip("/"), 0o444)
        service_dirs(stage, part)
    strip_privilege(stage, contract["forbidden_programs"])
    digest = tar_layer(stage, work / "layer.tar")
    log(f"{role} top layer: {time.monotonic() - started:.0f} s")
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


def load_contract() -> dict:
    try:
        return json.loads(CONTRACT.read_text())
    except (OSError, ValueError) as error:
        raise BuildError(f"{CONTRACT}: {error}; fix the contract")


def build(roles: list[str], outputs: dict[str, Path], cache: Path, tag: str) -> dict[str, dict]:
    """Build each image in `roles` into outputs[role]; the layers they share are built once."""
    if os.geteuid() != 0:
        raise BuildError("run as root: debootstrap, chroot, mount and chown need it")
    os.umask(0o022)
    contract = load_contract()
    cache.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    timings: dict[str, float] = {}

    def timed(name: str, step, *args):
        began = time.monotonic()
        result = step(*args)
        timings[name] = round(time.monotonic() - began, 1)
        return result

    base_rootfs, base_digest = timed("base", build_base, cache, contract)
    base = (base_digest, str(base_rootfs.parent / "layer.tar"))
    base_step = (f"debootstrap --variant=minbase {SUITE}; apt-get install {' '.join(PACKAGES)}; "
                 "escalation programs removed, setuid/setgid bits cleared")
    architecture = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                                  text=True).stdout.strip() or "amd64"
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    revision, version = git_revision(), project_version()
    reports = {}
    with tempfile.TemporaryDirectory(dir=cache, prefix="build-") as temporary:
        work = Path(temporary)
        layers: dict[str, list[tuple[tuple[str, str], str]]] = {role: [(base, base_step)] for role in roles}
        if "agent" in roles:
            clis = timed("clis", build_clis, cache, base_rootfs, contract)
            layers["agent"].append((clis, f"node {host_node_version()} and the CLIs at the lockfile's pins in {CLIS_HOME}"))
        if "proxy" in roles:
            squid = timed("squid", build_squid, cache, base_rootfs, base_digest, contract)
            layers["proxy"].append((squid, f"apt-get install squid ({host_package_version('squid') or 'current'})"))
        if {"agent", "gateway"} & set(roles):
            python = timed("python", build_python, work / "python", base_rootfs)
            for role in {"agent", "gateway"} & set(roles):
                layers[role].append((python, "agent-sandbox and its dependencies (pip, at the versions tested)"))
        for role in roles:
            top = timed(f"{role}-top", build_top, work / role, contract, role)
            layers[role].append((top, {"agent": "render-profiles --image-root, passwd/group, contract folders",
                                       "proxy": "render-profiles --image egress-proxy, passwd/group",
                                       "gateway": "passwd/group, contract folders"}[role]))
            config = image_config(
                runtime_config(contract, role),
                labels(contract, role, revision, version, cli_versions(contract) if role == "agent" else {}),
                [digest for (digest, _), _ in layers[role]], [step for _, step in layers[role]], architecture, created)
            output = outputs[role]
            image_id = timed(f"{role}-archive", write_archive, output,
                             f"{contract['images'][role]['name']}:{tag}", config, [layer for layer, _ in layers[role]])
            reports[role] = {"archive": str(output), "image": f"{contract['images'][role]['name']}:{tag}",
                             "image_id": f"sha256:{image_id}", "size_bytes": output.stat().st_size,
                             "layers": [digest for (digest, _), _ in layers[role]]}
    timings["total"] = round(time.monotonic() - started, 1)
    for role, report in reports.items():
        report["seconds"] = timings
        Path(report["archive"] + ".json").write_text(json.dumps(report, indent=2) + "\n")
    return reports


def podman_load(report: dict) -> bool:
    """Load the archive into podman unless podman holds that image id under that name already.
    True when it loaded."""
    env = {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF))}
    built = report["image_id"].removeprefix("sha256:")

    def loaded() -> str:
        result = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", report["image"]],
                                capture_output=True, text=True, env=env)
        return result.stdout.strip().removeprefix("sha256:") if result.returncode == 0 else ""

    if loaded() == built:
        return False
    run(["podman", "load", "--quiet", "--input", report["archive"]], stdout=subprocess.DEVNULL, env=env)
    if loaded() != built:
        raise BuildError(f"podman has {report['image']} as {loaded() or 'nothing'} after loading {report['archive']}, "
                         f"built {built}")
    return True


def host_node_version() -> str:
    return subprocess.run([str(host_node()), "--version"], capture_output=True, text=True).stdout.strip()


def command_line() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="build.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", action="append", choices=ROLES,
                        help="which image to build (repeatable; default: agent)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where layers are cached (%(default)s)")
    parser.add_argument("--output", type=Path,
                        help="the docker-archive to write, with one --image (default: CACHE/NAME-TAG.tar)")
    parser.add_argument("--tag", default=DEFAULT_TAG, help="image tag (%(default)s)")
    parser.add_argument("--load", action="store_true", help="podman load each image unless podman holds it already")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = command_line()
    args = parser.parse_args(argv)
    roles = list(dict.fromkeys(args.image or ["agent"]))
    if args.output and len(roles) > 1:
        parser.error("--output names one archive: give one --image, or leave --output out")
    cache = args.cache.resolve()
    try:
        contract = load_contract()
        outputs = {role: (args.output or cache / f"{contract['images'][role]['name']}-{args.tag}.tar").resolve()
                   for role in roles}
        reports = build(roles, outputs, cache, args.tag)
        for role, report in reports.items():
            loaded = podman_load(report) if args.load else None
            log(f"{report['image']}: {report['archive']} ({report['size_bytes'] / 1e6:.0f} MB, "
                f"{report['image_id'][:19]}){' loaded' if loaded else ' already loaded' if loaded is False else ''}")
    except BuildError as error:
        print(f"build-image: error: {error}", file=sys.stderr)
        return 1
    log(f"seconds: {next(iter(reports.values()))['seconds']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
