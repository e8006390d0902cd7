"""Whole-process time of `render-profiles --check` (goal: median under 0.3 s on 2 cores).

    python3 benchmarks/render_bench.py [--runs 30] [--baseline DIR]

It times `python -m renderer.cli --check` in this checkout: the process the render-profiles
console script starts, sure to run this checkout's code (an editable install can point at another
one), and without what a shell's PATH may put in front of it: typed in a shell here,
`render-profiles` is a pyenv shim, ~45 ms of bash before Python starts (inside a Python started
through pyenv, PATH already leads to the real script).
Two conditions, interleaved run by run:
- as-is: this environment unchanged. Where PYTHONDONTWRITEBYTECODE=1 is set and no fresh .pyc
  exists, every run compiles the project's modules from source (~20 ms).
- bytecode: Python's usual .pyc cache (in a temporary PYTHONPYCACHEPREFIX, warmed by one run),
  as an installed copy or any run without that variable has it. Only compiled code is cached:
  every render and check still runs.
The load average is printed, and the CPU time, which the load moves far less than the wall time.
--baseline DIR adds a third condition, interleaved with the others: another checkout's
render-profiles --check (bytecode cached as above) on its own profiles, e.g. one made with
`git worktree add /tmp/before <commit>`, so a change's cost is a difference measured side by side.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMAND = [sys.executable, "-m", "renderer.cli", "--check"]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(env: dict[str, str], cwd: Path = REPO) -> tuple[float, float]:
    """(wall, CPU) seconds of one run; CPU counts every process it started."""
    start, cpu = time.perf_counter(), cpu_seconds()
    subprocess.run(COMMAND, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start, cpu_seconds() - cpu


def summary(times: list[float]) -> str:
    times = sorted(times)
    return (f"median {statistics.median(times) * 1000:.0f} ms, min {times[0] * 1000:.0f} ms, "
            f"p90 {times[int(len(times) * 0.9) - 1] * 1000:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure side by side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="render-bench-pyc-") as pycache:
        bytecode = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "PYTHONPYCACHEPREFIX": pycache}
        conditions = {
            "as-is": (dict(os.environ, PYTHONPATH=str(REPO)), REPO),
            "bytecode": (dict(bytecode, PYTHONPATH=str(REPO)), REPO),
        }
        if args.baseline:
            baseline = args.baseline.resolve()
            conditions["baseline"] = (dict(bytecode, PYTHONPATH=str(baseline)), baseline)
        for env, cwd in conditions.values():
            run(env, cwd)  # warm the page cache (and, for bytecode, the .pyc cache)
        times: dict[str, list[float]] = {name: [] for name in conditions}
        cpu: dict[str, list[float]] = {name: [] for name in conditions}
        for _ in range(args.runs):
            for name, (env, cwd) in conditions.items():
                wall, used = run(env, cwd)
                times[name].append(wall)
                cpu[name].append(used)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"render-profiles --check, whole process, {args.runs} runs each, load average {load} (goal: median < 300 ms)")
    for name, samples in times.items():
        print(f"  {name:9} {summary(samples)}; CPU median {statistics.median(cpu[name]) * 1000:.0f} ms")
    if args.baseline:
        change = statistics.median(times["bytecode"]) - statistics.median(times["baseline"])
        cpu_change = statistics.median(cpu["bytecode"]) - statistics.median(cpu["baseline"])
        print(f"  this checkout against the baseline (both bytecode): {change * 1000:+.0f} ms wall "
              f"({statistics.median(times['bytecode']) / statistics.median(times['baseline']):.2f}x), "
              f"{cpu_change * 1000:+.0f} ms CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
