"""Conformance matrix benchmark: how long the whole matrix takes, and what each layer adds per call.

    python benchmarks/conformance_bench.py [--runs 3]       (root, after .ci/install-clis.sh)

Each run is tests/conformance/matrix.py's run_matrix(): the image root rendered once, the control
run, then one session per CLI and layer (every row one tool call) through the real entrypoint.
Prints the wall time of each run and, per CLI and layer, the median session time and the extra
time per tool call against the native-rules session (the hook's or shims' cost, including the
interpreter start of agent-guard; refused calls end early, so this is a rough figure).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conformance import matrix as m  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    walls, sessions = [], {}
    for run in range(options.runs):
        started = time.monotonic()
        result = m.run_matrix()
        walls.append(time.monotonic() - started)
        for key, session in result.sessions.items():
            sessions.setdefault(key, []).append(session.duration)
        print(f"run {run + 1}: {walls[-1]:.1f} s, problems: {len(m.problems(result))}", flush=True)
    calls = len(m.rows())
    print(f"\nwhole matrix ({len(sessions)} sessions of {calls} tool calls + control): "
          f"min {min(walls):.1f} s, median {statistics.median(walls):.1f} s, max {max(walls):.1f} s")
    print(f"\n{'CLI':8} {'layer':12} {'session median s':>17} {'ms per call vs native':>22}")
    for cli in m.CLIS:
        native = statistics.median(sessions[(cli, "native")])
        for layer in (*m.LAYERS, m.SHIMS_ALONE):
            median = statistics.median(sessions[(cli, layer)])
            extra = "" if layer == "native" else f"{(median - native) / calls * 1000:+.0f}"
            print(f"{cli:8} {layer:12} {median:17.1f} {extra:>22}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
