"""Sweep benchmark: how many runs at once this machine holds, and what a run costs in a sweep.

    python benchmarks/sweep_bench.py [--levels 1,2,4,8] [--per-level 2] [--cli claude]   (root, podman)

Everything as a user runs it: `agent-run CLI -p ...` once (the baseline, timed in this process),
then `agent-run sweep` with per-level x LEVEL tasks at --concurrency LEVEL for each level, with the
images CI builds (agent-image:test, ...) and the real CLI against the scripted model of the
end-to-end suite (tests/e2e/fake_vendor.py, scenario "normal": one commit, one uncommitted file)
on an --internal outside network, so nothing leaves the machine. For each level: the sweep's wall
time, seconds per run as a ratio to the single run, runs per minute, the failed runs, and the
most memory in use at once (the host's MemAvailable, sampled every 0.5 s, against before).
A level whose runs fail, or that is no faster than the one before, is where this machine stops.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAG = os.environ.get("AGENT_IMAGE_TAG", "test")
IMAGES = ["--image", f"agent-image:{TAG}", "--proxy-image", f"egress-proxy:{TAG}", "--gateway-image",
          f"agent-gateway:{TAG}"]
VENDORS = {"claude": "anthropic", "codex": "openai", "gemini": "gemini"}
ARGS = {"claude": ["-p", "Do the job."], "codex": ["exec", "-m", "gpt-fake", "Do the job."],
        "gemini": ["-m", "gemini-2.5-flash", "-p", "Do the job."]}
TASK_ARGS = {"claude": [], "codex": ["-m", "gpt-fake"], "gemini": ["-m", "gemini-2.5-flash"]}  # the sweep adds the prompt
USER = 4242
KEY = "sk-bench-" + uuid.uuid4().hex


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["podman", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"podman {' '.join(args[:3])}: {done.stderr}")
    return done


class World:
    """An --internal outside network with the scripted vendor on it, a user's repository, a key."""

    def __init__(self, folder: Path, cli: str):
        self.folder, self.cli = folder, cli
        self.network = f"sweep-bench-{os.getpid()}"
        for attempt in range(50):
            octet = 150 + (os.getpid() + attempt) % 50
            if podman("network", "create", "--internal", "--disable-dns", "--subnet", f"198.18.{octet}.0/24",
                      self.network, check=False).returncode == 0:
                break
        else:
            raise SystemExit("no free 198.18.x.0/24 for the outside network")
        self.vendor = f"{self.network}-vendor"
        out = folder / "vendor"
        out.mkdir(mode=0o777)
        os.chmod(out, 0o777)
        podman("run", "-d", "--name", self.vendor, "--network", f"{self.network}:ip=198.18.{octet}.10", "-v",
               f"{out}:{out}", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", "--rootfs", "/:O",
               "/usr/bin/python3", str(ROOT / "tests/e2e/fake_vendor.py"), cli, "normal", "8080", str(out))
        deadline = time.monotonic() + 30
        while not (out / "ready").exists():
            if time.monotonic() > deadline:
                raise SystemExit(podman("logs", self.vendor, check=False).stderr)
            time.sleep(0.1)
        self.url = f"http://198.18.{octet}.10:8080"
        self.repo = folder / "project"
        self.repo.mkdir()
        (self.repo / "README.md").write_text("# project\n")
        subprocess.run(["chown", "-R", f"{USER}:{USER}", str(self.repo)], check=True)
        for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                     ["-c", "user.name=u", "-c", "user.email=u@x", "commit", "-q", "-m", "start"]):
            subprocess.run(["git", *args], cwd=self.repo, check=True, user=USER, group=USER, extra_groups=[],
                           env={**os.environ, "HOME": "/nonexistent"}, capture_output=True)
        self.key = folder / "key"
        self.key.write_text(KEY + "\n")

    def hidden(self) -> list[str]:
        return ["--outside-network", self.network, "--gateway-upstream", f"{VENDORS[self.cli]}={self.url}"]

    def close(self) -> None:
        podman("rm", "-f", "-t", "0", self.vendor, check=False)
        podman("network", "rm", "-f", self.network, check=False)


class Memory:
    """The most memory in use at once while it runs: MemAvailable against its value at the start."""

    def __init__(self):
        self.start = self.available()
        self.lowest = self.start
        self.running = True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    @staticmethod
    def available() -> int:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
        return 0

    def sample(self):
        while self.running:
            self.lowest = min(self.lowest, self.available())
            time.sleep(0.5)

    def stop(self) -> int:
        self.running = False
        self.thread.join()
        return self.start - self.lowest


def agent_run(world: World, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("agent-run"), "--key-file", f"{VENDORS[world.cli]}={world.key}", *IMAGES,
                           *world.hidden(), *args], cwd=world.repo, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def discard(world: World, run_ids) -> None:
    for run_id in run_ids:
        subprocess.run([shutil.which("agent-run"), "discard", run_id], cwd=world.repo, capture_output=True,
                       stdin=subprocess.DEVNULL)


def single_run(world: World) -> dict:
    memory = Memory()
    started = time.monotonic()
    done = agent_run(world, world.cli, *ARGS[world.cli])
    seconds = time.monotonic() - started
    used = memory.stop()
    found = re.search(r"agent-run: run (\S+) ", done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"the single run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    discard(world, [found.group(1)])
    return {"seconds": round(seconds, 2), "memory_mib": used >> 20}


def sweep(world: World, level: int, per_level: int) -> dict:
    tasks = world.folder / f"tasks-{level}.yaml"
    tasks.write_text(json.dumps({"defaults": {"cli": world.cli, "repository": str(world.repo), "timeout": 900},
                                 "tasks": [{"prompt": "Do the job.", "args": TASK_ARGS[world.cli]}
                                           for _ in range(level * per_level)]}))
    memory = Memory()
    started = time.monotonic()
    done = agent_run(world, "sweep", str(tasks), "--concurrency", str(level))
    seconds = time.monotonic() - started
    used = memory.stop()
    found = re.search(r"summary (/\S+/summary\.json)", done.stderr)
    if not found:
        raise SystemExit(f"the sweep at {level} wrote no summary ({done.returncode}):\n{done.stderr[-3000:]}")
    runs = json.loads(Path(found.group(1)).read_text())["runs"]
    discard(world, [r["run_id"] for r in runs if r["run_id"]])
    failed = [r for r in runs if r["status"] != "done"]
    return {"concurrency": level, "runs": len(runs), "failed": len(failed), "seconds": round(seconds, 2),
            "run_seconds_mean": round(sum(r["seconds"] for r in runs) / len(runs), 2),
            "memory_mib": used >> 20, "errors": [r["error"] for r in failed if r["error"]][:3]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,2,4,8", help="concurrency levels (default 1,2,4,8)")
    parser.add_argument("--per-level", type=int, default=2, help="tasks per concurrent slot (default 2)")
    parser.add_argument("--cli", choices=sorted(VENDORS), default="claude")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: agent-run needs it")
    folder = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    os.chmod(folder, 0o755)
    world = World(folder, args.cli)
    try:
        single = single_run(world)
        print(f"single run ({args.cli}): {single['seconds']:.1f} s, {single['memory_mib']} MiB at most", flush=True)
        levels = []
        for level in (int(x) for x in args.levels.split(",")):
            result = sweep(world, level, args.per_level)
            per_run = result["seconds"] / result["runs"]
            result["seconds_per_run"] = round(per_run, 2)
            result["per_run_vs_single"] = round(per_run / single["seconds"], 2)
            result["run_vs_single"] = round(result["run_seconds_mean"] / single["seconds"], 2)
            result["runs_per_minute"] = round(60 * result["runs"] / result["seconds"], 1)
            levels.append(result)
            print(f"concurrency {level:>2}: {result['runs']} runs in {result['seconds']:.1f} s, "
                  f"{result['seconds_per_run']:.1f} s a run ({result['per_run_vs_single']}x the single run), "
                  f"each run {result['run_seconds_mean']:.1f} s ({result['run_vs_single']}x), "
                  f"{result['runs_per_minute']} runs/min, {result['failed']} failed, "
                  f"{result['memory_mib']} MiB at most" + (f"; {result['errors']}" if result["errors"] else ""),
                  flush=True)
        if args.json:
            args.json.write_text(json.dumps({"cli": args.cli, "single": single, "levels": levels}, indent=2) + "\n")
    finally:
        world.close()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
