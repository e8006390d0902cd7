"""The end-to-end suite's world (the fixtures are in conftest.py): the user's repository, the
scripted model vendor, and `agent-run` itself, run as the README says (plus the hidden options
that point it at the stand-ins)."""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

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
USER_UID = 4242  # the user who owns the repository and runs `sudo agent-run` in it
USER_HOME = "/nonexistent"


@contextmanager
def outside_network():
    """The run's outside network, --internal: the stand-ins for the internet live here, nothing
    leaves. Yields {"name", "prefix", "next": [the next free host number]}."""
    name = f"e2e-outside-{os.getpid()}-{secrets.token_hex(2)}"
    for attempt in range(50):  # a /24 no other network on this machine holds
        octet = 100 + (os.getpid() + attempt) % 100
        if podman("network", "create", "--internal", "--disable-dns", "--subnet", f"198.18.{octet}.0/24", name,
                  check=False).returncode == 0:
            break
    else:
        raise AssertionError("no free 198.18.x.0/24 for the outside network")
    try:
        yield {"name": name, "prefix": f"198.18.{octet}", "next": [10]}
    finally:
        podman("network", "rm", "-f", name, check=False)


def next_address(outside: dict) -> str:
    address = f"{outside['prefix']}.{outside['next'][0]}"
    outside["next"][0] += 1
    return address


@contextmanager
def vendors(outside: dict, make_folder):
    """Yields start(cli, scenario) -> Vendor: the scripted model vendor in a container on the
    outside network (make_folder(name) gives it a fresh folder for its records)."""
    started = []

    def start(cli: str, scenario: str) -> Vendor:
        address = next_address(outside)
        out = Path(make_folder(f"vendor-{cli}-{scenario}"))
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

    try:
        yield start
    finally:
        for name in started:
            podman("rm", "-f", "-t", "0", name, check=False)


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["podman", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])}: {done.stderr}")
    return done


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


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """git as the user who owns the repository: what they would run."""
    info = repo.stat()
    switch = {"user": info.st_uid, "group": info.st_gid, "extra_groups": []} if info.st_uid != os.geteuid() else {}
    env = {**os.environ, "HOME": USER_HOME} if switch else None
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, errors="replace", env=env,
                          **switch)
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
    """root: a folder everyone can reach. The repository is the user's (uid 4242); the victim
    folder and its file are root's; anything the user's git ran for the agent would leave a file
    in markers (writable by the user)."""
    os.chmod(root, 0o755)
    victim = root / "victim"
    victim.mkdir()
    (victim / "file").write_text("root's\n")
    markers = root / "markers"
    markers.mkdir(mode=0o777)
    os.chmod(markers, 0o777)
    repo = root / "project"
    repo.mkdir()
    os.chown(repo, USER_UID, USER_UID)
    secret = "hunter2-" + secrets.token_hex(6)
    files = {"README.md": "# project\n", "src/app.py": "print('v1')\n", "CLAUDE.md": "Be careful.\n",
             "docs/CLAUDE.md": "Docs rules.\n", ".github/workflows/ci.yml": "on: push\n",
             "tools/hostile.py": (HERE / "hostile.py").read_text(),
             "tools/live_tricks.py": (HERE / "live_tricks.py").read_text()}
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    give_to_user(repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "User")
    git(repo, "config", "user.email", "user@example.com")
    if hostile:
        (repo / ".env").write_text(f"SECRET={secret}\n")
        os.symlink(victim, repo / ".agent-sandbox")  # a repository that carries a link to a host folder
        give_to_user(repo)
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
    give_to_user(repo)
    key_file = root / "api-key"
    key_file.write_text(REAL_KEY + "\n")
    os.chmod(key_file, 0o600)
    return World(root, repo, victim, markers, secret, token, key_file)


def give_to_user(repo: Path) -> None:
    subprocess.run(["chown", "-R", "-h", f"{USER_UID}:{USER_UID}", str(repo)], check=True)


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
