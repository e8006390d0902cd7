"""A throw-away container-like world for running the entrypoint for real, as uid 1000.

The baked tree is put at its real paths inside a private mount namespace (read-only overlays over
/etc and /usr/lib, a tmpfs /home), never on the host: `unshare --mount --pid --fork --mount-proc`.
Setuid programs in the system folders are hidden with overlay whiteouts, other writable disk
mounts are remounted read-only, and the workspace is bind-mounted onto itself, so a correct
world passes the real boundary preflight. Stand-in CLIs record their argv, environment and pid
into a folder on /dev/shm (a tmpfs, so it is not a writable host mount) that the test reads back.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CONFORMANCE_FIXTURES = REPO / "tests" / "conformance" / "fixtures"
AGENT_UID = 1000


def _agent_python() -> str:
    """An interpreter uid 1000 can run (pyenv under /root is not one); the entrypoint is stdlib only."""
    for candidate in (sys.executable, "/usr/bin/python3", shutil.which("python3") or ""):
        if candidate and subprocess.run(
                ["setpriv", f"--reuid={AGENT_UID}", f"--regid={AGENT_UID}", "--clear-groups", "env", candidate, "-c",
                 "import sys; assert sys.version_info >= (3, 11)"], capture_output=True).returncode == 0:
            return candidate
    raise RuntimeError("no Python >= 3.11 that uid 1000 can run")


PY = _agent_python()
SYSTEM_BIN_DIRS = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")
ESCALATION = ("sudo", "su", "doas", "pkexec", "run0")
VIRTUAL = {"proc", "sysfs", "tmpfs", "devtmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "securityfs",
           "debugfs", "tracefs", "pstore", "bpf", "hugetlbfs", "fusectl", "configfs", "binfmt_misc",
           "autofs", "nsfs", "ramfs", "efivarfs", "rpc_pipefs", "overlay"}

STANDIN = textwrap.dedent('''\
    import json, os, signal, sys, time
    records = os.environ["STANDIN_RECORDS"]
    name = os.path.basename(sys.argv[0])
    try:
        stdin_mode = os.fstat(0).st_mode
    except OSError:
        stdin_mode = None
    record = {"argv": sys.argv, "pid": os.getpid(), "ppid": os.getppid(), "uid": os.getuid(),
              "euid": os.geteuid(), "env": dict(os.environ), "cwd": os.getcwd(),
              "stdin_is_devnull": stdin_mode is not None and os.path.samestat(os.fstat(0), os.stat("/dev/null")),
              "pgid": os.getpgrp(), "files": {}}
    for wanted in filter(None, os.environ.get("STANDIN_READ", "").split(":")):
        try:
            record["files"][wanted] = open(wanted).read()
        except OSError as error:
            record["files"][wanted] = None
    def write(file, data):
        with open(os.path.join(records, file + ".tmp"), "w") as f:
            json.dump(data, f)
        os.replace(os.path.join(records, file + ".tmp"), os.path.join(records, file))
    write(name + ".json", record)
    for variable, stream in (("STANDIN_STDOUT", sys.stdout), ("STANDIN_STDERR", sys.stderr)):
        if os.environ.get(variable):
            with open(os.environ[variable]) as f:
                stream.write(f.read())
            stream.flush()
    if os.environ.get("STANDIN_ORPHAN"):
        if os.fork() == 0:
            grandchild = os.fork()
            if grandchild == 0:
                time.sleep(0.2)
                os._exit(0)
            write("orphan.json", {"pid": grandchild})
            os._exit(0)
        os.wait()
        time.sleep(1.0)
        orphan = json.load(open(os.path.join(records, "orphan.json")))["pid"]
        try:
            state = open(f"/proc/{orphan}/stat").read().split(") ", 1)[1].split()[0]
        except OSError:
            state = "gone"
        write("orphan-state.json", {"state": state})
    if os.environ.get("STANDIN_WAIT_SIGNAL"):
        got = []
        def handler(number, frame):
            got.append(number)
            write("signal.json", {"signal": number})
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(number, handler)
        write("ready", {})
        for _ in range(200):
            time.sleep(0.05)
        sys.exit(99)
    sys.exit(int(os.environ.get("STANDIN_EXIT", "0")))
''')


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fixture_runtime(name: str) -> dict:
    return {
        "format": 1,
        "profile": name,
        "posture": "bypass",
        "output": "machine" if name == "ci" else "text",
        "default_decision": "allow",
        "rules": [
            {"id": "gh-secret", "decision": "deny", "reason": "Secrets stay with the launcher.",
             "command": ["gh", "secret"], "tripwire": True},
            {"id": "git-push-force", "decision": "deny", "reason": "Force-pushing rewrites shared history.",
             "command": ["git", "push"], "any_of": [{"flag": ["--force", "-f"]}], "tripwire": True},
            {"id": "npm-install-global", "decision": "deny", "reason": "Profile rule, not a tripwire.",
             "command": ["npm", "install"], "any_of": [{"flag": ["-g"]}], "tripwire": False},
        ],
        "tools": {"git": {"options_with_value": ["-C", "-c"], "flags": ["--no-pager"]}},
        "guarded_programs": ["gh", "git", "npm"],
        "fast_path": {"git": ["status"]},
        "environment": {
            "launcher_only": ["GH_TOKEN", "GITHUB_TOKEN", "ANTHROPIC_ADMIN_KEY"],
            "quiet": {"DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                      "GEMINI_CLI_NO_RELAUNCH": "true"},
        },
        "files": {"blocked": [".env"], "read_only": ["AGENTS.md"]},
    }


def fixture_files() -> dict[str, tuple[bytes, str, str, tuple[str, ...]]]:
    """image path -> (content, format, mode, profiles): a small tree that follows design.md."""
    both = ("autonomous", "ci")
    files = {
        "/etc/claude-code/managed-settings.json": (
            json.dumps({"permissions": {"deny": ["Bash(gh secret:*)"]}}, indent=2).encode(), "json", "0444", both),
        "/etc/codex/requirements.toml": (b'allowed_sandbox_modes = ["danger-full-access"]\n', "toml", "0444", both),
        "/etc/codex/rules/agent-sandbox.rules": (
            b'prefix_rule(pattern=["gh", "secret"], decision="forbidden", justification="gh-secret: no")\n',
            "text", "0444", both),
        "/etc/gemini-cli/settings.json": (b'{"privacy": {"usageStatisticsEnabled": false}}\n', "json", "0444", both),
        "/etc/gemini-cli/policies/agent-sandbox.toml": (
            b'[[rule]]\ntoolName = "run_shell_command"\ndecision = "deny"\npriority = 900\n', "toml", "0444", both),
        "/home/agent/.claude/settings.json": (b'{"permissions": {"defaultMode": "bypassPermissions"}}\n',
                                              "json", "0444", both),
        "/home/agent/.codex/config.toml": (b'approval_policy = "never"\n', "toml", "0444", both),
        "/home/agent/.codex/ci.config.toml": (b'[analytics]\nenabled = false\n', "toml", "0444", ("ci",)),
        "/etc/agent-sandbox/seed/home/.claude.json": (b'{"hasCompletedOnboarding": true}\n', "json", "0444", both),
        "/usr/lib/agent-sandbox/shims/git": (b'#!/bin/sh\nexec /usr/bin/git "$@"\n', "text", "0555", both),
    }
    for name in both:
        data = (json.dumps(fixture_runtime(name), indent=2) + "\n").encode()
        files[f"/etc/agent-sandbox/profiles/{name}.json"] = (data, "json", "0444", (name,))
    return files


def write_fixture_image(image: Path) -> None:
    manifest = {"format": 1, "generator": "tests/entrypoint fixture", "profiles": ["autonomous", "ci"], "files": {}}
    for image_path, (data, fmt, mode, profiles) in fixture_files().items():
        target = image / image_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        manifest["files"][image_path] = {"sha256": _sha(data), "mode": mode, "owner": 0, "format": fmt,
                                         "profiles": list(profiles)}
    write_manifest(image, manifest)
    (image / ".agent-image-root").write_text("")


def write_manifest(image: Path, manifest: dict) -> None:
    path = image / "etc/agent-sandbox/manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.chmod(0o644)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    path.chmod(0o444)


def read_manifest(image: Path) -> dict:
    return json.loads((image / "etc/agent-sandbox/manifest.json").read_text())


def renderer_available() -> bool:
    render = shutil.which("render-profiles")
    if not render:
        return False
    return subprocess.run([render, "--help"], capture_output=True).returncode == 0


def build_image(image: Path) -> str:
    """The baked tree: from the real renderer when it works, else the fixture. Returns which."""
    if renderer_available() and not os.environ.get("ENTRYPOINT_TESTS_FIXTURE_IMAGE"):
        image.rmdir()  # render-profiles creates the image root itself
        done = subprocess.run(["render-profiles", "--root", str(REPO), "--image-root", str(image),
                               "--profile", "autonomous", "--profile", "ci"], capture_output=True, text=True, cwd=REPO)
        if done.returncode == 0 and (image / "etc/agent-sandbox/manifest.json").exists():
            apply_manifest_modes(image)
            return "render-profiles"
        shutil.rmtree(image, ignore_errors=True)
        image.mkdir()
    write_fixture_image(image)
    apply_manifest_modes(image)
    return "fixture"


def apply_manifest_modes(image: Path) -> None:
    for image_path, entry in read_manifest(image)["files"].items():
        target = image / image_path.lstrip("/")
        if target.exists():
            os.chown(target, entry.get("owner", 0), 0)
            target.chmod(int(entry.get("mode", "0444"), 8))
    manifest = image / "etc/agent-sandbox/manifest.json"
    os.chown(manifest, 0, 0)
    manifest.chmod(0o444)


def _setuid_or_escalation(folder: str) -> list[str]:
    names = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return names
    for entry in entries:
        try:
            st = entry.stat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and (st.st_mode & (stat.S_ISUID | stat.S_ISGID) or entry.name in ESCALATION):
            names.append(entry.name)
    return names


def _host_writable_disk_mounts() -> list[str]:
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            point, options, fstype = parts[4], parts[5].split(","), parts[sep + 1]
            if "rw" not in options or fstype in VIRTUAL or point == "/":
                continue
            if any(point == p or point.startswith(p + "/") for p in ("/proc", "/sys", "/dev")):
                continue
            points.append(point)
    return points


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    records: Path

    def record(self, name: str) -> dict:
        return json.loads((self.records / name).read_text())

    def has_record(self, name: str) -> bool:
        return (self.records / name).exists()


@dataclass
class World:
    base: Path
    image: Path
    workspace: Path
    bin: Path
    records: Path
    source: str
    setup: list[str] = field(default_factory=list)  # extra shell lines run as root inside the namespace

    @classmethod
    def create(cls) -> "World":
        base = Path(tempfile.mkdtemp(prefix="agent-entrypoint-world-"))
        base.chmod(0o755)
        image = base / "image"
        image.mkdir()
        source = build_image(image)
        workspace = base / "workspace"
        workspace.mkdir()
        os.chown(workspace, AGENT_UID, AGENT_UID)
        bin_dir = base / "bin"
        bin_dir.mkdir()
        records = Path(tempfile.mkdtemp(prefix="agent-entrypoint-records-", dir="/dev/shm"))
        os.chown(records, AGENT_UID, AGENT_UID)
        whiteouts = base / "whiteouts"
        world = cls(base, image, workspace, bin_dir, records, source)
        world._copy_code()
        world._make_whiteouts(whiteouts)
        for tool in ("claude", "codex", "gemini"):
            world.add_standin(tool)
        return world

    @property
    def pylib(self) -> Path:
        return self.base / "pylib"

    def _copy_code(self) -> None:
        """The packages uid 1000 imports, and the captured CLI outputs, copied where it can read
        them (a checkout under /root would not be reachable), compiled so no run compiles them."""
        for package in ("entrypoint", "guard", "image"):  # image: image/layout.py
            shutil.copytree(REPO / package, self.pylib / package, ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run([PY, "-m", "compileall", "-q", str(self.pylib)], check=True, capture_output=True)
        shutil.copytree(CONFORMANCE_FIXTURES, self.fixtures)

    @property
    def fixtures(self) -> Path:
        return self.base / "fixtures"

    def add_standin(self, name: str) -> Path:
        path = self.bin / name
        path.write_text(f"#!{PY}\n{STANDIN}")
        path.chmod(0o755)
        return path

    def remove_standin(self, name: str) -> None:
        (self.bin / name).unlink()

    def _make_whiteouts(self, whiteouts: Path) -> None:
        self.overlays = []
        seen = set()
        for folder in SYSTEM_BIN_DIRS:
            real = os.path.realpath(folder)
            if real in seen or not os.path.isdir(real):
                continue
            seen.add(real)
            names = _setuid_or_escalation(real)
            if not names:
                continue
            layer = whiteouts / real.strip("/").replace("/", "_")
            layer.mkdir(parents=True)
            for name in names:
                os.mknod(layer / name, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            self.overlays.append((str(layer), real))

    def cleanup(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)
        shutil.rmtree(self.records, ignore_errors=True)

    # ---- running --------------------------------------------------------------------------

    def namespace_script(self, command: str, pid1: bool) -> str:
        q = shlex.quote
        lines = ["set -e"]
        # Disk mounts other than / and the workspace would be (correctly) refused: make them ro.
        lines.append(f"mount --bind {q(str(self.workspace))} {q(str(self.workspace))}")
        for point in _host_writable_disk_mounts():
            lines.append(f"mount -o remount,bind,ro {q(point)}")
        for sub in ("etc", "usr/lib"):
            if (self.image / sub).is_dir():
                lines.append(f"mount -t overlay overlay -o lowerdir={q(str(self.image / sub))}:/{sub} /{sub}")
        lines.append("mount -t tmpfs -o mode=0755 tmpfs /home")
        if (self.image / "home/agent").is_dir():
            lines.append(f"cp -a {q(str(self.image / 'home/agent'))} /home/agent")
        else:
            lines.append("mkdir /home/agent")
        lines.append("chown 1000:1000 /home/agent")
        lines.append("for d in /home/agent/.claude /home/agent/.codex /home/agent/.gemini; do "
                     "mkdir -p $d; chown 1000:1000 $d; done")
        lines += self.setup
        # Last, with a copy of mount: the whiteouts hide mount itself (it is setuid).
        mount_copy = self.base / "mount"
        if not mount_copy.exists():
            shutil.copyfile(shutil.which("mount"), mount_copy)
            mount_copy.chmod(0o700)
        for layer, target in self.overlays:
            lines.append(f"{q(str(mount_copy))} -t overlay overlay -o lowerdir={q(layer)}:{q(target)} {q(target)}")
        lines.append(f"cd {q(str(self.workspace))}")
        if pid1:
            lines.append(f"exec {command}")
        else:
            lines.append(command)
        return "\n".join(lines)

    def agent_command(self, argv: list[str], env: dict, setpriv: list[str] | None = None) -> str:
        base_env = {
            "AGENT_SANDBOX": "1",
            "HOME": "/home/agent",
            "PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin",
            "PYTHONPATH": str(self.pylib),
            "STANDIN_RECORDS": str(self.records),
            "LANG": "C.UTF-8",
        }
        base_env.update(env)
        assignments = " ".join(shlex.quote(f"{k}={v}") for k, v in base_env.items() if v is not None)
        drop = setpriv if setpriv is not None else [
            "setpriv", f"--reuid={AGENT_UID}", f"--regid={AGENT_UID}", "--clear-groups"]
        parts = drop + ["env", "-i"] + [assignments] + [shlex.quote(PY), "-m", "entrypoint"] + \
            [shlex.quote(a) for a in argv]
        return " ".join(p for p in parts if p)

    def run_script(self, command: str, *, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run a shell command (as root; drop privileges in it) inside the world's namespace."""
        script = self.namespace_script(command, pid1=False)
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc",
                               "sh", "-c", script], capture_output=True, text=True, timeout=timeout)

    def run(self, argv: list[str], env: dict | None = None, *, pid1: bool = False, pid_namespace: bool = True,
            setpriv: list[str] | None = None, wrap: str | None = None, timeout: float = 60) -> Result:
        """Run `agent-entrypoint ARGV` in the world. `wrap` (shell, with {cmd}) lets a test drive it."""
        for stale in self.records.iterdir():
            if stale.name.endswith((".json", ".tmp")) or stale.name in ("ready", "launched", "exit"):
                stale.unlink()
        command = self.agent_command(argv, env or {}, setpriv)
        if wrap:
            command = wrap.replace("{cmd}", command).replace("{records}", shlex.quote(str(self.records)))
        script = self.namespace_script(command, pid1=pid1 and wrap is None)
        unshare = ["unshare", "--mount", "--propagation", "private"]
        if pid_namespace:
            unshare += ["--pid", "--fork", "--mount-proc"]
        done = subprocess.run(unshare + ["sh", "-c", script], capture_output=True, text=True, timeout=timeout)
        return Result(done.returncode, done.stdout, done.stderr, self.records)

    # ---- editing the baked tree -------------------------------------------------------------

    def baked(self, image_path: str) -> Path:
        return self.image / image_path.lstrip("/")

    def rewrite_baked(self, image_path: str, data: bytes, update_manifest: bool) -> None:
        path = self.baked(image_path)
        mode = stat.S_IMODE(path.stat().st_mode)
        path.chmod(0o644)
        path.write_bytes(data)
        path.chmod(mode)
        if update_manifest:
            manifest = read_manifest(self.image)
            manifest["files"][image_path]["sha256"] = _sha(data)
            write_manifest(self.image, manifest)

    def manifest_entry(self, fmt: str) -> str:
        """A baked path of the given format that every profile uses."""
        for image_path, entry in sorted(read_manifest(self.image)["files"].items()):
            if entry.get("format") == fmt and {"autonomous", "ci"} <= set(entry.get("profiles", ())) \
                    and not image_path.startswith("/etc/agent-sandbox/profiles/"):
                return image_path
        raise AssertionError(f"no {fmt} file in the manifest")

    def runtime(self, profile: str = "autonomous") -> dict:
        return json.loads(self.baked(f"/etc/agent-sandbox/profiles/{profile}.json").read_text())
