"""Measure how long one conformance drive takes per CLI (not a test; numbers go to the docs).

    python tests/conformance/measure_runs.py [--runs N]

Each run: lay out a sandbox, start the fake, run the CLI through one allowed and one
denied call (one_denial_scenario), stop everything. Prints min / median / max seconds
of the CLI process alone and of the whole drive (sandbox setup included).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conformance.drivers import CLIS, drive  # noqa: E402
from conformance.sandbox import make_config_tree  # noqa: E402
from conformance.scenarios import deny_gh_secret_files, one_denial_scenario  # noqa: E402


def measure(cli: str, runs: int) -> tuple[list[float], list[float]]:
    cli_times, total_times = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tree:
            started = time.monotonic()
            run = drive(cli, one_denial_scenario(), make_config_tree(tree, deny_gh_secret_files(cli)), timeout=120)
            run.sandbox.cleanup()
            total_times.append(time.monotonic() - started)
        if run.result.returncode != 0 or len(run.server.tool_results) != 2:
            raise SystemExit(f"{cli}: run failed (rc {run.result.returncode}): {run.result.stderr[-1000:]}")
        cli_times.append(run.result.duration)
    return cli_times, total_times


def summary(values: list[float]) -> str:
    return f"min {min(values):.2f}  median {statistics.median(values):.2f}  max {max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for cli in CLIS:
        cli_times, total_times = measure(cli, args.runs)
        print(f"{cli:7s} cli run s: {summary(cli_times)} | whole drive s: {summary(total_times)} (n={args.runs})")


if __name__ == "__main__":
    main()
