"""Boundary preflight: is the container the agent is about to run in really a boundary?

Every path the checks read comes from `Roots`, so tests point them at fixture trees and fixture
mountinfo files; the entrypoint uses the defaults (the live system). Failures refuse the start;
warnings (weaker signs) are printed once and the start goes on.
"""

from __future__ import annotations

import os
import stat

ENGINE_SOCKETS = (
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/podman/podman.sock",
    "/var/run/podman/podman.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/run/crio/crio.sock",
    "/run/buildkit/buildkitd.sock",
)
# Rootless podman and docker put their socket in the user's runtime folder.
USER_ENGINE_SOCKETS = ("podman/podman.sock", "docker.sock")

SYSTEM_BIN_DIRS = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")
ESCALATION_PROGRAMS = ("sudo", "su", "doas", "pkexec", "run0")

# Path suffixes (as component sequences) that are host credentials when they are a mount.
SECRET_SUFFIXES = (
    (".ssh",),
    (".aws",),
    (".config", "gcloud"),
    (".kube",),
    (".docker", "config.json"),
    (".docker",),
    (".netrc",),
    (".gnupg",),
    (".git-credentials",),
    (".config", "gh"),
    (".azure",),
    (".npmrc",),
    (".pypirc",),
)
SECRET_ABSOLUTE = ("/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh",
                   "/run/secrets/kubernetes.io", "/var/run/secrets/kubernetes.io")
# Credential folders a workspace must not itself contain (a home folder mounted as the workspace).
WORKSPACE_SECRET_ENTRIES = (".ssh", ".aws", ".kube", ".gnupg", ".netrc", ".git-credentials")

VIRTUAL_FSTYPES = frozenset({
    "proc", "sysfs", "tmpfs", "devtmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "securityfs",
    "debugfs", "tracefs", "pstore", "bpf", "hugetlbfs", "fusectl", "configfs", "binfmt_misc",
    "autofs", "nsfs", "ramfs", "efivarfs", "rpc_pipefs", "overlay", "shm",
})
# Files the engine itself bind-mounts writable into every container.
ENGINE_MANAGED_MOUNTS = frozenset({
    "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/run/.containerenv", "/.dockerenv",
    "/dev/termination-log",
})

CAPABILITY_NAMES = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
    "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
    "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
    "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
    "lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
    "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
)
UNLIMITED = 1 << 62


class Roots:
    """Where the checks look. Defaults: the live system. (Plain classes here, not dataclasses:
    importing dataclasses costs milliseconds at every container start.)"""

    def __init__(self, root: str = "/", proc: str = "/proc", mountinfo: str = "/proc/self/mountinfo",
                 cgroup: str = "/sys/fs/cgroup", path: str | None = None, uid: int | None = None):
        self.root = root
        self.proc = proc
        self.mountinfo = mountinfo
        self.cgroup = cgroup
        self.path = path  # PATH to scan; None: $PATH
        self.uid = uid  # whose runtime folder to look at; None: the real uid

    def at(self, absolute: str) -> str:
        return os.path.join(self.root, absolute.lstrip("/"))


class Findings:
    def __init__(self):
        self.failures: list[str] = []
        self.warnings: list[str] = []


class Mount:
    __slots__ = ("mount_id", "root", "mount_point", "options", "fstype", "source", "device")

    def __init__(self, mount_id: str, root: str, mount_point: str, options: tuple, fstype: str, source: str,
                 device: str = ""):
        self.mount_id = mount_id
        self.device = device
        self.root = root
        self.mount_point = mount_point
        self.options = options
        self.fstype = fstype
        self.source = source

    @property
    def writable(self) -> bool:
        return "rw" in self.options


def _unescape(field_text: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    if "\\" not in field_text:
        return field_text
    out, i = [], 0
    while i < len(field_text):
        if field_text[i] == "\\" and i + 3 < len(field_text) + 1 and field_text[i + 1:i + 4].isdigit():
            out.append(chr(int(field_text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field_text[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        parts = line.split()
        if "-" not in parts or len(parts) < 7:
            continue
        sep = parts.index("-")
        if len(parts) < sep + 3:
            continue
        mounts.append(Mount(
            mount_id=parts[0],
            root=_unescape(parts[3]),
            mount_point=_unescape(parts[4]),
            options=tuple(parts[5].split(",")),
            fstype=parts[sep + 1],
            source=_unescape(parts[sep + 2]),
            device=parts[2],
        ))
    return mounts


def _components(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part)


HOME_FOLDER = "a home folder"


def _secret_in(path: str) -> str | None:
    if not path:
        return None
    for absolute in SECRET_ABSOLUTE:
        if path == absolute or path.startswith(absolute + "/"):
            return absolute
    parts = _components(path)
    # A whole home folder holds all of the above (a project folder inside one is fine).
    if parts == ("root",) or (len(parts) == 2 and parts[0] == "home"):
        return HOME_FOLDER
    for suffix in SECRET_SUFFIXES:
        width = len(suffix)
        for start in range(len(parts) - width + 1):
            if parts[start:start + width] == suffix:
                return "/".join(suffix)
    return None


def _is_within(path: str, folder: str) -> bool:
    return folder == "/" or path == folder or path.startswith(folder.rstrip("/") + "/")


def _part_of(mount: Mount, workspace_mount: Mount | None) -> bool:
    """A folder of the workspace bound onto itself inside it (agent-run --mount makes .git and the
    folders above protected files mount points, which cannot be renamed): same device, a root
    inside the workspace's, a mount point inside the workspace."""
    if workspace_mount is None or not mount.device or mount.device != workspace_mount.device:
        return False
    return _is_within(mount.mount_point, workspace_mount.mount_point) and _is_within(mount.root, workspace_mount.root)


def check_mounts(mounts: list[Mount], workspace: str, findings: Findings) -> None:
    workspace_mount = None
    for mount in mounts:
        if _is_within(workspace, mount.mount_point) and mount.mount_point != "/":
            if workspace_mount is None or len(mount.mount_point) > len(workspace_mount.mount_point):
                workspace_mount = mount
    for mount in mounts:
        secret = _secret_in(mount.mount_point)
        if secret == HOME_FOLDER and mount.fstype in ("tmpfs", "ramfs") and mount.root == "/":
            # A whole in-memory file system on $HOME (agent-run's --tmpfs /home/agent): it holds
            # the image's home copied in, nothing from the host. A host folder bound there is
            # still refused (its root is that folder).
            secret = None
        secret = secret or (_secret_in(mount.root) if mount.fstype not in VIRTUAL_FSTYPES else None)
        if secret:
            findings.failures.append(
                f"host secret mounted: {mount.mount_point} (from {mount.root}, matches {secret}); "
                "remove that volume")
            continue
        if not mount.writable or mount.fstype in VIRTUAL_FSTYPES:
            continue
        point = mount.mount_point
        if point == "/" or point in ENGINE_MANAGED_MOUNTS or mount is workspace_mount:
            continue
        if _part_of(mount, workspace_mount):
            continue
        if any(_is_within(point, folder) for folder in ("/proc", "/sys", "/dev")):
            continue
        findings.failures.append(
            f"writable bind mount other than the workspace: {point} ({mount.fstype} from "
            f"{mount.root}); mount it read-only (:ro) or remove it")


def check_engine_sockets(roots: Roots, environ: dict, findings: Findings) -> None:
    uid = os.getuid() if roots.uid is None else roots.uid
    candidates = list(ENGINE_SOCKETS)
    candidates += [f"/run/user/{uid}/{name}" for name in USER_ENGINE_SOCKETS]
    for variable in ("DOCKER_HOST", "CONTAINER_HOST"):
        value = environ.get(variable, "")
        if value.startswith("unix://"):
            candidates.append(value[len("unix://"):])
        elif value.startswith(("tcp://", "ssh://")):
            findings.failures.append(f"container engine reachable: {variable}={value}; unset it")
    seen = set()
    for candidate in candidates:
        path = roots.at(candidate)
        if path in seen:
            continue
        seen.add(path)
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue
        # Connecting to a unix socket needs write permission on it.
        if stat.S_ISSOCK(mode) and os.access(path, os.R_OK | os.W_OK):
            findings.failures.append(
                f"container engine socket reachable: {candidate}; do not mount the engine socket")


def check_pid_namespace(roots: Roots, findings: Findings) -> None:
    # Kernel threads (kthreadd is pid 2, parent 0) are visible only in the host's pid namespace.
    try:
        with open(os.path.join(roots.proc, "2", "status"), encoding="utf-8", errors="replace") as f:
            head = f.read(512)
    except OSError:
        return
    if "kthreadd" in head.split("\n", 1)[0]:
        findings.failures.append("host process namespace shared (kthreadd visible); drop --pid=host")


def _scan_dirs(roots: Roots, environ: dict) -> list[str]:
    path_value = roots.path if roots.path is not None else environ.get("PATH", "")
    dirs, seen = [], set()
    for folder in [d for d in path_value.split(":") if d] + list(SYSTEM_BIN_DIRS):
        real = os.path.realpath(roots.at(folder)) if folder.startswith("/") else None
        if real is None or real in seen:
            continue
        seen.add(real)
        dirs.append(real)
    return dirs


def _nosuid_mount_points(mounts: list[Mount], roots: Roots) -> list[str]:
    return [roots.at(m.mount_point) for m in mounts if "nosuid" in m.options]


def check_privilege_programs(roots: Roots, environ: dict, mounts: list[Mount], findings: Findings) -> None:
    nosuid = _nosuid_mount_points(mounts, roots) if roots.root == "/" else []
    reported = set()
    for folder in _scan_dirs(roots, environ):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        harmless_setuid = any(_is_within(folder, point) for point in nosuid)
        for entry in entries:
            name = entry.name
            try:
                st = entry.stat(follow_symlinks=True)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            shown = os.path.join(folder, name)
            if name in ESCALATION_PROGRAMS and shown not in reported:
                reported.add(shown)
                findings.failures.append(f"privilege escalation program present: {shown}; remove it from the image")
            elif st.st_mode & (stat.S_ISUID | stat.S_ISGID) and not harmless_setuid and shown not in reported:
                reported.add(shown)
                kind = "setuid" if st.st_mode & stat.S_ISUID else "setgid"
                findings.failures.append(f"{kind} binary present: {shown}; remove the bit or the file from the image")


def _status_fields(roots: Roots) -> dict[str, str]:
    fields = {}
    try:
        with open(os.path.join(roots.proc, "self", "status"), encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
    except OSError:
        pass
    return fields


def capability_names(mask: int) -> list[str]:
    return [name for bit, name in enumerate(CAPABILITY_NAMES) if mask >> bit & 1] + [
        f"cap_{bit}" for bit in range(len(CAPABILITY_NAMES), 64) if mask >> bit & 1]


def _read_limit(path: str) -> int | None:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read().strip()
    except OSError:
        return None
    if text == "max":
        return UNLIMITED
    try:
        return int(text)
    except ValueError:
        return None


def _cgroup_limit(roots: Roots, v2_file: str, v1_controller: str, v1_file: str) -> int | None:
    own = ""
    try:
        with open(os.path.join(roots.proc, "self", "cgroup"), encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) == 3 and parts[0] == "0":
                    own = parts[2]
    except OSError:
        pass
    candidates = []
    if own and own != "/":
        candidates.append(os.path.join(roots.cgroup, own.lstrip("/"), v2_file))
    candidates += [os.path.join(roots.cgroup, v2_file), os.path.join(roots.cgroup, v1_controller, v1_file)]
    for candidate in candidates:
        value = _read_limit(candidate)
        if value is not None:
            return value
    return None


def check_warnings(roots: Roots, findings: Findings) -> None:
    fields = _status_fields(roots)
    bounding = int(fields.get("CapBnd", "0") or "0", 16)
    if bounding:
        findings.warnings.append(
            "capabilities left in the bounding set: " + ",".join(capability_names(bounding))
            + " (run with --cap-drop=ALL)")
    if fields.get("NoNewPrivs", "0") != "1":
        findings.warnings.append("no_new_privs is not set (run with --security-opt no-new-privileges)")
    memory = _cgroup_limit(roots, "memory.max", "memory", "memory.limit_in_bytes")
    if memory is None or memory >= UNLIMITED:
        findings.warnings.append("no memory limit (run with --memory)")
    pids = _cgroup_limit(roots, "pids.max", "pids", "pids.max")
    if pids is None or pids >= UNLIMITED:
        findings.warnings.append("no pids limit (run with --pids-limit)")


def check_workspace_contents(roots: Roots, workspace: str, findings: Findings) -> None:
    if workspace == "/":
        return
    for name in WORKSPACE_SECRET_ENTRIES:
        if os.path.lexists(roots.at(os.path.join(workspace, name))):
            findings.failures.append(
                f"workspace holds host credentials: {os.path.join(workspace, name)}; "
                "mount a project folder, not a home folder")


def run(roots: Roots, workspace: str, environ: dict) -> Findings:
    findings = Findings()
    try:
        with open(roots.mountinfo, encoding="utf-8", errors="surrogateescape") as f:
            mounts = parse_mountinfo(f.read())
    except OSError as error:
        findings.failures.append(f"cannot read {roots.mountinfo}: {error.strerror}; mount /proc")
        mounts = []
    check_engine_sockets(roots, environ, findings)
    check_pid_namespace(roots, findings)
    check_privilege_programs(roots, environ, mounts, findings)
    check_mounts(mounts, workspace, findings)
    check_workspace_contents(roots, workspace, findings)
    check_warnings(roots, findings)
    return findings
