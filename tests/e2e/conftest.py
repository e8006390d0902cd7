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
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from e2e_world import HOST_UID, IMAGES, outside_network, podman, vendors  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def images():
    missing = [ref for ref in IMAGES.values() if podman("image", "exists", ref, check=False).returncode != 0]
    assert not missing, (f"the end-to-end suite needs the images CI builds: {missing} missing; run "
                         f".ci/install-podman-image.sh (it builds and loads them)")
    return IMAGES


@pytest.fixture(scope="session")
def outside():
    """The run's outside network, --internal: the vendor stand-in lives here, nothing leaves."""
    with outside_network() as network:
        yield network


@pytest.fixture(scope="session")
def start_vendor(outside, tmp_path_factory):
    with vendors(outside, lambda name: tmp_path_factory.mktemp(name)) as start:
        yield start


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
