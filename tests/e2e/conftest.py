"""The end-to-end suite's world: the images CI builds, an --internal outside network with the
scripted model vendor on it, the user's repository, a host user's keyring and a host listener,
and `agent-run` itself, run as the README says (plus the hidden options that point it at the
stand-ins)."""
from __future__ import annotations

import ctypes
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TAG = os.environ.get("AGENT_IMAGE_TAG", "test")
IMAGES = {"agent": f"agent-image:{TAG}", "proxy": f"egress-proxy:{TAG}", "gateway": f"agent-gateway:{TAG}"}
VENDORS = {"claude": "anthropic", "codex": "openai", "gemini": "gemini"}
VENDOR_HOSTS = {"anthropic": "api.anthropic.com", "openai": "api.openai.com",
                "gemini": "generativelanguage.googleapis.com"}
GATEWAY_PORTS = {"anthropic": 8081, "openai": 8082, "gemini": 8083}
REAL_KEY = "sk-e2e-REAL-" + secrets.token_hex(8)
HOST_UID = 1000  # the uid the agent had on the host before it got a user namespace


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["podman", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])}: {done.stderr}")
    return done


@pytest.fixture(scope="session", autouse=True)
def images():
    missing = [ref for ref in IMAGES.values() if podman("image", "exists", ref, check=False).returncode != 0]
    assert not missing, (f"the end-to-end suite needs the images CI builds: {missing} missing; run "
                         f".ci/install-podman-image.sh (it builds and loads them)")
    return IMAGES


@pytest.fixture(scope="session")
def outside():
    """The run's outside network, --internal: the vendor stand-in lives here, nothing leaves."""
    name = f"e2e-outside-{os.getpid()}"
    for attempt in range(50):  # a /24 no other network on this machine holds
        octet = 100 + (os.getpid() + attempt) % 100
        if podman("network", "create", "--internal", "--disable-dns", "--subnet", f"198.18.{octet}.0/24", name,
                  check=False).returncode == 0:
            break
    else:
        raise AssertionError("no free 198.18.x.0/24 for the outside network")
    yield {"name": name, "prefix": f"198.18.{octet}", "next": [10]}
    podman("network", "rm", "-f", name, check=False)


@dataclass
class Vendor:
    url: str
    out: Path
    container: str

    def requests(self) -> list[dict]:
        path = self.out / "requests.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def everything(self) -> str:
        path = self.out / "requests.jsonl"
        return path.read_text() if path.exists() else ""


@pytest.fixture(scope="session")
def start_vendor(outside, tmp_path_factory):
    started = []

    def start(cli: str, scenario: str) -> Vendor:
        address = f"{outside['prefix']}.{outside['next'][0]}"
        outside["next"][0] += 1
        out = tmp_path_factory.mktemp(f"vendor-{cli}-{scenario}")
        os.chmod(out, 0o777)
        name = f"e2e-vendor-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        podman("run", "-d", "--name", name, "--network", f"{outside['name']}:ip={address}",
               "-v", f"{out}:{out}", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
               "--rootfs", "/:O",  # in the image's place: the host's own python3 and this checkout
               "/usr/bin/python3", str(HERE / "fake_vendor.py"), cli, scenario, "8080", str(out))
        started.append(name)
        deadline = time.monotonic() + 30
        while not (out / "ready").exists():
            assert time.monotonic() < deadline, podman("logs", name, check=False).stderr
            time.sleep(0.1)
        return Vendor(f"http://{address}:8080", out, name)

    yield start
    for name in started:
        podman("rm", "-f", "-t", "0", name, check=False)


@pytest.fixture(scope="session")
def host_keyring():
    """A key in host uid 1000's user keyring, readable by that uid, held while the suite runs."""
    payload = "keyring-secret-" + secrets.token_hex(8)
    numbers = {"x86_64": (248, 250), "aarch64": (217, 219)}[platform.machine()]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_end)
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: never outlive the suite
        os.setgid(HOST_UID)
        os.setuid(HOST_UID)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        key = libc.syscall(numbers[0], b"user", b"agent-sandbox-e2e", payload.encode(), len(payload), ctypes.c_int(-4))
        libc.syscall(numbers[1], 5, ctypes.c_long(key), ctypes.c_ulong(0x3f3f0000))  # KEYCTL_SETPERM: uid may read
        os.write(write_end, str(key).encode())
        os.close(write_end)
        signal.pause()
        os._exit(0)
    os.close(write_end)
    key = int(os.read(read_end, 64) or b"-1")
    os.close(read_end)
    assert key > 0, "could not add a key to the host user's keyring"
    yield payload
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


@pytest.fixture(scope="session")
def host_listener():
    """UDP on every IPv6 and IPv4 address of the host: what reaches it, by token."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", 0))
    received: list[bytes] = []

    def listen():
        while True:
            try:
                data, _ = sock.recvfrom(4096)
            except OSError:
                return
            received.append(data)
    threading.Thread(target=listen, daemon=True).start()
    yield {"port": sock.getsockname()[1], "received": received}
    sock.close()


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, errors="replace")
    if check:
        assert done.returncode == 0, done.stderr
    return done


@dataclass
class World:
    root: Path
    repo: Path
    victim: Path
    markers: Path
    secret: str
    token: str
    key_file: Path
    files_before: dict = field(default_factory=dict)


def make_world(root: Path, cli: str, hostile: bool, report_attack: str, udp_port: int) -> World:
    os.chmod(root, 0o755)
    victim = root / "victim"
    victim.mkdir()
    (victim / "file").write_text("root's\n")
    markers = root / "markers"
    markers.mkdir()
    repo = root / "project"
    repo.mkdir()
    secret = "hunter2-" + secrets.token_hex(6)
    files = {"README.md": "# project\n", "src/app.py": "print('v1')\n", "CLAUDE.md": "Be careful.\n",
             "docs/CLAUDE.md": "Docs rules.\n", ".github/workflows/ci.yml": "on: push\n",
             "tools/hostile.py": (HERE / "hostile.py").read_text(),
             "tools/live_tricks.py": (HERE / "live_tricks.py").read_text()}
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "User")
    git(repo, "config", "user.email", "user@example.com")
    if hostile:
        (repo / ".env").write_text(f"SECRET={secret}\n")
        os.symlink(victim, repo / ".agent-sandbox")  # a repository that carries a link to a host folder
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the user's work")
    if not hostile:
        (repo / ".env").write_text(f"SECRET={secret}\n")  # untracked: left out of the copy
    (repo / "src/app.py").write_text("print('v2, uncommitted')\n")
    token = secrets.token_hex(8)
    targets = {"marker_dir": str(markers), "token": token, "udp_port": udp_port, "victim_file": str(victim / "file"),
               "victim_dir": str(victim), "report_attack": report_attack,
               "gateway_port": GATEWAY_PORTS[VENDORS[cli]],
               "other_vendor_hosts": [h for v, h in VENDOR_HOSTS.items() if v != VENDORS[cli]]}
    (repo / "e2e-targets.json").write_text(json.dumps(targets))
    key_file = root / "api-key"
    key_file.write_text(REAL_KEY + "\n")
    os.chmod(key_file, 0o600)
    return World(root, repo, victim, markers, secret, token, key_file)


# Codex offers its classic exec_command tool (what the scripted model calls) to models it does not
# know; its own default model gets a code-mode tool set instead.
PROMPTS = {"claude": ["-p", "Do the job."], "codex": ["exec", "-m", "gpt-fake", "Do the job."],
           "gemini": ["-m", "gemini-2.5-flash", "-p", "Do the job."]}


@dataclass
class Run:
    cli: str
    process: subprocess.CompletedProcess
    run_id: str
    run_dir: Path
    seconds: float

    @property
    def stderr(self) -> str:
        return self.process.stderr

    def audit(self) -> dict:
        return json.loads((self.run_dir / "audit.json").read_text())


def agent_run_argv(cli: str, world: World, vendor: Vendor, outside: dict, *extra: str) -> list[str]:
    """`agent-run CLI --key-file VENDOR=FILE ...` as the README has it, plus the hidden stand-in options."""
    command = shutil.which("agent-run")
    assert command, "agent-run is not on PATH; install the project (pip install -e .)"
    return [command, "--key-file", f"{VENDORS[cli]}={world.key_file}", *extra,
            "--image", IMAGES["agent"], "--proxy-image", IMAGES["proxy"], "--gateway-image", IMAGES["gateway"],
            "--outside-network", outside["name"], "--gateway-upstream", f"{VENDORS[cli]}={vendor.url}",
            cli, *PROMPTS[cli]]


RUN_ID = re.compile(r"audit (/\S+/runs/(\S+))/audit\.json")


def run_agent(cli: str, world: World, vendor: Vendor, outside: dict, timeout: int = 300) -> Run:
    started = time.monotonic()
    done = subprocess.run(agent_run_argv(cli, world, vendor, outside, "--timeout", "180"), cwd=world.repo,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    found = RUN_ID.search(done.stderr)
    assert found, f"agent-run wrote no audit (exit {done.returncode}):\n{done.stderr[-3000:]}"
    return Run(cli, done, found.group(2), Path(found.group(1)), time.monotonic() - started)


def leftovers(run_id: str) -> list[str]:
    names = podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    names += podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    names += podman("volume", "ls", "--format", "{{.Name}}").stdout.split()
    return [n for n in names if run_id in n]


def snapshot(repo: Path) -> dict:
    """Every path of the user's repository but git's object store and the run refs it gains."""
    import hashlib
    seen = {}
    for folder, dirs, files in os.walk(repo):
        rel_folder = os.path.relpath(folder, repo)
        if rel_folder.startswith((".git/objects", ".git/refs/agent", ".git/logs/refs/agent")):
            continue
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(repo))
            if rel in (".git/packed-refs",) or rel.startswith((".git/objects", ".git/refs/agent", ".git/logs")):
                continue
            info = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else ""
            seen[rel] = (info.st_mode, info.st_uid, info.st_gid, digest,
                         os.readlink(path) if path.is_symlink() else "")
    return seen


def owners(folder: Path) -> dict:
    result = {str(folder): (folder.lstat().st_uid, folder.lstat().st_gid)}
    for path in folder.rglob("*"):
        result[str(path)] = (path.lstat().st_uid, path.lstat().st_gid)
    return result
