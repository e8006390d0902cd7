"""Looking through a running container from the host for secrets: every process's environment,
command line and readable memory, and the files under the folders an agent can see (through
/proc/PID/root, so tmpfs homes are included). Used by the login proofs: the real tokens must be
found nowhere, the placeholder (the positive control) must be."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field

FOLDERS = ("home", "tmp", "var/tmp", "workspace", "var/lib/agent-run", "run", "etc", "root")
MAX_FILE = 8 << 20
MAX_REGION = 256 << 20


@dataclass
class Found:
    where: list = field(default_factory=list)     # (needle index, place)
    processes: int = 0
    files: int = 0
    memory_bytes: int = 0


def container_pid(name: str) -> int:
    done = subprocess.run(["podman", "inspect", "--format", "{{.State.Pid}}", name], capture_output=True, text=True)
    return int(done.stdout.strip() or 0) if done.returncode == 0 else 0


def processes_of(pid: int) -> list[int]:
    """Every host pid in the same pid namespace as pid."""
    namespace = os.readlink(f"/proc/{pid}/ns/pid")
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == namespace:
                    found.append(int(entry))
            except OSError:
                continue
    return found


def _hits(data: bytes, needles: list[bytes], place: str, result: Found) -> None:
    for index, needle in enumerate(needles):
        if needle in data:
            result.where.append((index, place))


def _memory(pid: int, needles: list[bytes], result: Found) -> None:
    longest = max(len(n) for n in needles)
    try:
        maps = open(f"/proc/{pid}/maps").read().splitlines()
        mem = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    except OSError:
        return
    try:
        for line in maps:
            parts = line.split()
            start, end = (int(x, 16) for x in parts[0].split("-"))
            if "r" not in parts[1] or (len(parts) > 5 and parts[5] in ("[vvar]", "[vsyscall]")):
                continue
            if end - start > MAX_REGION:
                continue
            tail = b""
            for offset in range(start, end, 1 << 20):
                try:
                    chunk = os.pread(mem, min(1 << 20, end - offset), offset)
                except OSError:
                    break
                result.memory_bytes += len(chunk)
                _hits(tail + chunk, needles, f"memory of pid {pid}", result)
                tail = chunk[-longest:]
    finally:
        os.close(mem)


def scan(container: str, needles: list[str], memory: bool = True) -> Found:
    """Where any of needles appears in the running container (index into needles, place)."""
    pid = container_pid(container)
    assert pid, f"container {container} is not running"
    raw = [n.encode() for n in needles]
    result = Found()
    for process in processes_of(pid):
        result.processes += 1
        for part in ("environ", "cmdline"):
            try:
                _hits(open(f"/proc/{process}/{part}", "rb").read(), raw, f"/proc/{process}/{part}", result)
            except OSError:
                pass
        if memory:
            _memory(process, raw, result)
    root = f"/proc/{pid}/root"
    for folder in FOLDERS:
        for base, dirs, files in os.walk(f"{root}/{folder}"):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(base, d)) and d != "objects"]
            for name in files:
                path = os.path.join(base, name)
                try:
                    if os.path.islink(path) or not os.path.isfile(path):
                        continue
                    with open(path, "rb") as stream:
                        data = stream.read(MAX_FILE)
                except OSError:
                    continue
                result.files += 1
                _hits(data, raw, path[len(root):], result)
    done = subprocess.run(["podman", "inspect", "--format", "{{json .Config.Env}}", container], capture_output=True)
    _hits(done.stdout, raw, "podman inspect .Config.Env", result)
    return result
