"""The end-to-end suite's fixtures: the images CI builds, an --internal outside network with the
scripted model vendor on it, a host user's keyring and a host listener."""
from __future__ import annotations

import ctypes
import os
import platform
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from e2e_world import HERE, HOST_UID, IMAGES, Vendor, podman  # noqa: E402


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


@pytest.fixture(scope="session")
def new_root():
    """Folders everyone can reach, for the worlds (pytest's own live in root's 0700 folder)."""
    made = []

    def make(name: str) -> Path:
        folder = Path(tempfile.mkdtemp(prefix=f"agent-run-e2e-{name}-"))
        os.chmod(folder, 0o755)
        made.append(folder)
        return folder
    yield make
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)
