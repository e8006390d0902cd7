"""A Sandbox that looks like a proper container to the entrypoint's boundary preflight.

The namespace sandbox (sandbox.py) shares the host's file systems, so `agent-entrypoint` refuses
to start in it, rightly: the host has setuid binaries and `su` on PATH, the sandbox binds a
writable host folder over /home, and hosts mount writable file systems (here /run/netns).
A container image has none of these. This module makes the SANDBOX match, never the entrypoint
weaker:

- every setuid/setgid file in the folders the preflight scans gets a non-setuid copy in the
  /usr overlay's upper layer, and the privilege escalation programs (`su`, `sudo`, ...) an
  overlayfs whiteout, so they are absent, as in an image built without them;
- /home is an overlay (upper: layers/home) instead of a bind mount, like a container's root fs;
- every other writable host mount outside /proc, /sys, /dev is remounted read-only inside the
  private mount namespace (a bind remount changes only this namespace's copy of the mount),
  except the one holding the sandbox folder, which plays the workspace volume.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
from pathlib import Path

from entrypoint import preflight

from .sandbox import Sandbox

# Folders the preflight scans besides $PATH (all under /usr on a merged-/usr host).
SCANNED_DIRS = preflight.SYSTEM_BIN_DIRS


def privileged_files(dirs=SCANNED_DIRS) -> tuple[list[Path], list[Path]]:
    """(setuid/setgid regular files, escalation programs) in `dirs`, as real paths under /usr."""
    setuid, escalation, seen = [], [], set()
    for folder in dirs:
        real_folder = Path(os.path.realpath(folder))
        if real_folder in seen or not real_folder.is_dir():
            continue
        seen.add(real_folder)
        for entry in os.scandir(real_folder):
            path = real_folder / entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if entry.name in preflight.ESCALATION_PROGRAMS and not stat.S_ISDIR(st.st_mode):
                escalation.append(path)
            elif stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                setuid.append(path)
    return sorted(setuid), sorted(escalation)


def writable_host_mounts(keep: Path) -> list[str]:
    """Mount points a container would not have: writable, real file systems, not the one
    holding `keep` (the sandbox folder) and not /, /proc, /sys, /dev."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        mounts = preflight.parse_mountinfo(f.read())
    keep_text = str(keep)
    holder = max((m.mount_point for m in mounts if preflight._is_within(keep_text, m.mount_point)),
                 key=len, default="/")
    points = []
    for mount in mounts:
        point = mount.mount_point
        if not mount.writable or mount.fstype in preflight.VIRTUAL_FSTYPES or point in ("/", holder):
            continue
        if any(preflight._is_within(point, top) for top in ("/proc", "/sys", "/dev")):
            continue
        points.append(point)
    return sorted(set(points))


class ContainerLikeSandbox(Sandbox):
    """Sandbox whose namespace passes the entrypoint's boundary preflight (see module doc)."""

    def _prepare_layers(self, config_root):
        super()._prepare_layers(config_root)
        usr_upper = self.layers / "usr"
        usr_upper.mkdir(mode=0o755, exist_ok=True)
        os.chown(usr_upper, 0, 0)
        (self.workdirs / "usr").mkdir(mode=0o700, exist_ok=True)
        setuid, escalation = privileged_files()
        for source in setuid:
            target = self._upper_path(source)
            if target.exists() or target.is_symlink():
                continue  # the config tree brings its own file here
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            os.chmod(target, stat.S_IMODE(source.stat().st_mode) & ~(stat.S_ISUID | stat.S_ISGID))
        for source in escalation:
            target = self._upper_path(source)
            if target.exists() or target.is_symlink():
                target.unlink()
            target.parent.mkdir(parents=True, exist_ok=True)
            os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))  # overlayfs whiteout
        for parent in {p for p in usr_upper.rglob("*") if p.is_dir()}:
            os.chown(parent, 0, 0)
            os.chmod(parent, 0o755)
        (self.base / "home-lower").mkdir(mode=0o755)
        (self.workdirs / "home").mkdir(mode=0o700)

    def _upper_path(self, real: Path) -> Path:
        parts = real.parts
        if len(parts) < 2 or parts[1] not in [p.name for p in self.layers.iterdir()]:
            raise ValueError(f"{real}: no overlay layer for /{parts[1] if len(parts) > 1 else ''}")
        return self.layers.joinpath(*parts[1:])

    def _namespace_script(self) -> str:
        lines = ["set -eu"]
        for point in writable_host_mounts(self.base):
            lines.append(f"mount -o remount,bind,ro {shlex.quote(point)}")
        for layer in sorted(p.name for p in self.layers.iterdir() if p.name != "home"):
            upper, work = self.layers / layer, self.workdirs / layer
            lines.append(f"mount -t overlay overlay -o {shlex.quote(f'lowerdir=/{layer},upperdir={upper},workdir={work}')}"
                         f" /{layer}")
        home_options = f"lowerdir={self.base / 'home-lower'},upperdir={self.layers / 'home'},workdir={self.workdirs / 'home'}"
        lines.append(f"mount -t overlay overlay -o {shlex.quote(home_options)} /home")
        lines.append(f"cd {shlex.quote(str(self.workspace))}")
        lines.append('"$@"')
        return "\n".join(lines)
