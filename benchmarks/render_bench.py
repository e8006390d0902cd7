"""Whole-process time of `render-profiles --check` (goal: median under 0.3 s on 2 cores).

    python3 benchmarks/render_bench.py [--runs 30]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    command = [shutil.which("render-profiles") or "render-profiles", "--check"]
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)  # warm the page cache
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    times.sort()
    print(f"render-profiles --check, whole process, {args.runs} runs: "
          f"median {statistics.median(times) * 1000:.0f} ms, min {times[0] * 1000:.0f} ms, "
          f"p90 {times[int(len(times) * 0.9) - 1] * 1000:.0f} ms (goal: median < 300 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
