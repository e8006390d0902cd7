"""Whole-process time of `render-profiles --check` (goal: median under 0.3 s on 2 cores).

    python3 benchmarks/render_bench.py [--runs 30]

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
--check uses a second core (a forked child checks autonomous and ci), so its wall time depends on
the other core being free: the load average is printed, and the CPU time of both processes, which
depends on it far less.
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


def run(env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run; CPU counts both processes and barely moves with the load."""
    start, cpu = time.perf_counter(), cpu_seconds()
    subprocess.run(COMMAND, cwd=REPO, env=env, check=True, capture_output=True)
    return time.perf_counter() - start, cpu_seconds() - cpu


def summary(times: list[float]) -> str:
    times = sorted(times)
    return (f"median {statistics.median(times) * 1000:.0f} ms, min {times[0] * 1000:.0f} ms, "
            f"p90 {times[int(len(times) * 0.9) - 1] * 1000:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="render-bench-pyc-") as pycache:
        conditions = {
            "as-is": dict(os.environ),
            "bytecode": {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "PYTHONPYCACHEPREFIX": pycache},
        }
        for env in conditions.values():
            run(env)  # warm the page cache (and, for bytecode, the .pyc cache)
        times: dict[str, list[float]] = {name: [] for name in conditions}
        cpu: dict[str, list[float]] = {name: [] for name in conditions}
        for _ in range(args.runs):
            for name, env in conditions.items():
                wall, used = run(env)
                times[name].append(wall)
                cpu[name].append(used)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"render-profiles --check, whole process, {args.runs} runs each, load average {load} (goal: median < 300 ms)")
    for name, samples in times.items():
        print(f"  {name:9} {summary(samples)}; CPU median {statistics.median(cpu[name]) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
