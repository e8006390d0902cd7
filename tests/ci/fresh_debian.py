"""A pristine Debian 12 to try the README's first command in: `debootstrap --variant=minbase`,
imported into podman once and cached. Nothing is added to it: whatever the demo needs, the demo
must install itself.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = REPO / "image" / "debian" / "containers.conf"
CACHE = Path(os.environ.get("AGENT_SANDBOX_FRESH_DEBIAN_CACHE", "/var/cache/agent-sandbox/fresh-debian-12"))
IMAGE = "localhost/agent-sandbox-fresh-debian:12"
MIRROR = "http://deb.debian.org/debian"


def podman(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    kwargs.setdefault("text", True)
    return subprocess.run(["podman", *args], env=env, **kwargs)


def fresh_debian_image() -> str:
    """The image name; builds the rootfs and imports it when either is missing."""
    if podman("image", "exists", IMAGE).returncode == 0:
        return IMAGE
    rootfs = CACHE / "rootfs"
    if not (rootfs / "etc" / "debian_version").is_file():
        subprocess.run(["rm", "-rf", "--one-file-system", str(CACHE)], check=True)
        CACHE.mkdir(parents=True)
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), MIRROR], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        (rootfs / "etc" / "apt" / "sources.list").write_text(
            f"deb {MIRROR} bookworm main\ndeb {MIRROR} bookworm-updates main\n"
            "deb http://deb.debian.org/debian-security bookworm-security main\n")
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", "-", "."], stdout=subprocess.PIPE)
    imported = podman("import", "-", IMAGE, stdin=tar.stdout, capture_output=True, text=False)
    tar.stdout.close()
    if tar.wait() != 0 or imported.returncode != 0:
        raise RuntimeError(f"podman import of {rootfs} failed: {imported.stderr.decode(errors='replace')}")
    return IMAGE


def source_copy(target: Path) -> Path:
    """The checkout as a user would clone it: tracked and new files, nothing ignored (no .venv,
    no node_modules)."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=True, capture_output=True).stdout.split(b"\0")
    target.mkdir(parents=True, exist_ok=True)
    names = [n for n in listed if n and (REPO / n.decode()).exists()]
    subprocess.run(["tar", "-C", str(REPO), "--null", "-T", "-", "-cf", "-"], input=b"\0".join(names), check=True,
                   stdout=open(target / "source.tar", "wb"))
    subprocess.run(["tar", "-C", str(target), "-xf", str(target / "source.tar")], check=True)
    (target / "source.tar").unlink()
    return target
