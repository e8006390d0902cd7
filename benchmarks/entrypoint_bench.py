"""Entrypoint benchmarks (run as root; the entrypoint itself runs as uid 1000 in a private namespace).

(a) Added start-up time: whole-process wall time of `python -m entrypoint claude` (guards, preflight,
    integrity, seed, exec of a stand-in `claude` that is a copy of /bin/true) against exec'ing the
    same stand-in directly; median of N runs each, interleaved. Target: at most 40 ms added.
(b) Checkpoint time on a generated repository (50,000 files, a few thousand changed, staged,
    deleted and untracked) against `git status --porcelain` on the same repository; median of
    runs after a warm-up. Target: at most 1.5 times.

    python benchmarks/entrypoint_bench.py [--runs 41] [--files 50000] [--changed 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "entrypoint"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from entrypoint.checkpoint import fastpath  # noqa: E402
from entrypoint.checkpoint.create import create as create_checkpoint  # noqa: E402
from entrypoint_world import AGENT_UID, PY, World  # noqa: E402

DRIVER = r'''
import json, os, statistics, sys, time
runs, out, standin, extra = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
variants = {
    "direct": [standin, "-p", "x"],
    "entrypoint": [sys.executable, "-m", "entrypoint", "claude", "-p", "x"],
    "entrypoint -S": [sys.executable, "-S", "-m", "entrypoint", "claude", "-p", "x"],
}
devnull = os.open(os.devnull, os.O_WRONLY)
def once(argv):
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, dict(os.environ), file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 2)])
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} exited {status}")
    return elapsed
for argv in variants.values():
    once(argv)  # warm the page cache
times = {name: [] for name in variants}
for _ in range(runs):
    for name, argv in variants.items():
        times[name].append(once(argv))
json.dump({name: statistics.median(values) * 1000 for name, values in times.items()}, open(out, "w"))
'''


def bench_startup(runs: int) -> dict:
    world = World.create()
    try:
        standin = world.bin / "claude"
        shutil.copyfile("/bin/true", standin)
        standin.chmod(0o755)
        driver = world.base / "driver.py"
        driver.write_text(DRIVER)
        out = world.records / "startup.json"
        env = {"AGENT_SANDBOX": "1", "HOME": "/home/agent", "PATH": f"{world.bin}:/usr/local/bin:/usr/bin:/bin",
               "PYTHONPATH": str(world.pylib), "LANG": "C.UTF-8"}
        assignments = " ".join(f"{k}={v}" for k, v in env.items())
        command = (f"setpriv --reuid={AGENT_UID} --regid={AGENT_UID} --clear-groups env -i {assignments} "
                   f"{PY} {driver} {runs} {out} {standin}")
        done = world.run_script(command)
        if done.returncode != 0:
            raise SystemExit(f"startup benchmark failed: {done.stderr}")
        medians = json.loads(out.read_text())
    finally:
        world.cleanup()
    return medians


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b",
                        "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"})


def generate_repo(root: Path, files: int, changed: int) -> Path:
    """A repository of FILES files, then CHANGED of them modified or deleted, a tenth of those
    staged, CHANGED/5 untracked files and 200 ignored ones."""
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".gitignore").write_text("*.log\n")
    per_dir = 100
    for index in range(files):
        folder = repo / f"pkg{index // (per_dir * 50):02d}" / f"mod{(index // per_dir) % 50:02d}"
        if index % per_dir == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file{index:05d}.py").write_text(f"value = {index}\n" + "# padding line\n" * 20)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "generated")
    paths = sorted(p for p in repo.rglob("*.py"))
    step = max(1, len(paths) // changed)
    touched = paths[::step][:changed]
    for position, path in enumerate(touched):
        kind = position % 10
        if kind == 0:
            path.unlink()  # deleted
        else:
            path.write_text(path.read_text() + f"# changed {position}\n")
    staged = [str(p.relative_to(repo)) for p in touched[1::10][: changed // 10] if p.exists()]
    git(repo, "add", "--", *staged)
    for index in range(changed // 5):
        (repo / "pkg00" / f"untracked{index:04d}.py").write_text(f"new = {index}\n")
    for index in range(200):
        (repo / "pkg00" / f"ignored{index:04d}.log").write_text("log\n")
    return repo


def rewrite_changes(repo: Path, round_number: int) -> None:
    """New content in every modified and untracked file, so the next checkpoint has to write new
    objects (a first checkpoint of fresh work), not find them from the previous round."""
    out = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--modified", "--others", "--exclude-standard"],
                         check=True, capture_output=True).stdout.decode()
    for name in filter(None, out.split("\0")):
        path = repo / name
        if path.exists():
            with open(path, "a") as f:
                f.write(f"# round {round_number}\n")


def interleaved_medians(actions: dict, runs: int) -> dict:
    """Median seconds per action, alternating them so load from elsewhere hits both alike."""
    for action in actions.values():
        action()  # warm-up (writes the blobs once, refreshes the stat cache)
    values = {name: [] for name in actions}
    for _ in range(runs):
        for name, action in actions.items():
            start = time.perf_counter()
            action()
            values[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in values.items()}


def bench_checkpoint(files: int, changed: int, runs: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix="agent-checkpoint-bench-"))
    try:
        start = time.perf_counter()
        repo = generate_repo(root, files, changed)
        generated = time.perf_counter() - start
        medians = interleaved_medians({
            "status": lambda: subprocess.run(["git", "-C", str(repo), "status"], check=True, capture_output=True),
            "status --porcelain": lambda: subprocess.run(["git", "-C", str(repo), "status", "--porcelain"],
                                                         check=True, capture_output=True),
            "checkpoint": lambda: create_checkpoint(str(repo), "bench"),
        }, runs)
        status, create = medians["status"], medians["checkpoint"]
        # The cache is written only by the fast path: without it the numbers measure `git add`.
        path = "fast" if (repo / ".git" / fastpath.CACHE_FILE).exists() else "general (git add)"
        fresh = {"status": [], "checkpoint": []}
        for round_number in range(runs):
            rewrite_changes(repo, round_number)
            for name, action in (("status", lambda: subprocess.run(["git", "-C", str(repo), "status"], check=True,
                                                                   capture_output=True)),
                                 ("checkpoint", lambda: create_checkpoint(str(repo), "bench"))):
                start = time.perf_counter()
                action()
                fresh[name].append(time.perf_counter() - start)
        fresh_status, fresh_create = (statistics.median(fresh[k]) for k in ("status", "checkpoint"))
        changes = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], check=True,
                                 capture_output=True, text=True).stdout.count("\n")
        return {"files": files, "changed_paths": changes, "generate_s": generated, "path": path,
                "git_status_ms": status * 1000, "porcelain_ms": medians["status --porcelain"] * 1000,
                "checkpoint_ms": create * 1000, "ratio": create / status,
                "porcelain_ratio": create / medians["status --porcelain"],
                "fresh_status_ms": fresh_status * 1000, "fresh_checkpoint_ms": fresh_create * 1000,
                "fresh_ratio": fresh_create / fresh_status}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=41)
    parser.add_argument("--checkpoint-runs", type=int, default=15)
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--changed", type=int, default=3_000)
    parser.add_argument("--only", choices=["startup", "checkpoint"])
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the startup benchmark builds a private namespace and drops to uid 1000")
    if args.only != "checkpoint":
        medians = bench_startup(args.runs)
        added = medians["entrypoint"] - medians["direct"]
        print(f"(a) start-up, median of {args.runs}: direct exec {medians['direct']:.1f} ms, "
              f"via entrypoint {medians['entrypoint']:.1f} ms -> added {added:.1f} ms (target <= 40); "
              f"with python -S: added {medians['entrypoint -S'] - medians['direct']:.1f} ms")
    if args.only != "startup":
        result = bench_checkpoint(args.files, args.changed, args.checkpoint_runs)
        print(f"(b) checkpoint ({result['path']} path) on {result['files']} files with {result['changed_paths']} "
              f"changed paths, "
              f"median of {args.checkpoint_runs}: git status {result['git_status_ms']:.0f} ms, "
              f"checkpoint {result['checkpoint_ms']:.0f} ms -> {result['ratio']:.2f}x (target <= 1.5x); "
              f"against git status --porcelain ({result['porcelain_ms']:.0f} ms): {result['porcelain_ratio']:.2f}x")
        print(f"    fresh changes each round (new objects to write): git status {result['fresh_status_ms']:.0f} ms, "
              f"checkpoint {result['fresh_checkpoint_ms']:.0f} ms -> {result['fresh_ratio']:.2f}x")


if __name__ == "__main__":
    main()
