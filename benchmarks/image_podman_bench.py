"""The Debian stand-in image (image/debian/build.py, loaded by .ci/install-podman-image.sh):
its size, and the time from `docker run` to each CLI's first request to its fake model server.

    python benchmarks/image_podman_bench.py [--runs 5] [--cli claude --cli codex --cli gemini]

The docker client talks to a private `podman system service` (runc, the repo's containers.conf),
as in tests/image_podman. Each run: a fresh container, --network host (the fake listens on the
host's 127.0.0.1), the hardening flags a launcher adds, an empty workspace owned by uid 1000,
and a one-turn scenario (the model answers with text, no tool call). Timed from just before the
client is started to the first HTTP request the fake receives; the whole run is timed too.
Prints the medians (aim: under 1.5 s to the first request for claude and codex) and JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "image_podman"))

from podman_image import ARCHIVE, IMAGE, INSTALL_HINT, PodmanService, make_workspace, run_args  # noqa: E402
from conformance.fakes import FAKES, Scenario  # noqa: E402  (podman_image puts tests/ on the path)


def timed_fake(cli: str, scenario: Scenario):
    class Timed(FAKES[cli]):
        first_request: float | None = None

        def _record_request(self, handler, body):
            if self.first_request is None:
                self.first_request = time.monotonic()
            super()._record_request(handler, body)

    return Timed(scenario)


def one_run(service: PodmanService, cli: str, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="image-bench-") as folder, \
            timed_fake(cli, Scenario([], "bench done")) as server:
        workspace = make_workspace(Path(folder))
        started = time.monotonic()
        name, process = service.popen_run(run_args(cli, server, workspace))
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
            service.docker(["rm", "--force", name])
        finished = time.monotonic()
        if process.returncode != 0 or server.first_request is None:
            raise RuntimeError(f"{cli}: exit {process.returncode}, {len(server.requests)} requests: {stderr[-1500:]}")
        return {"first_request_s": server.first_request - started, "total_s": finished - started}


def image_size(service: PodmanService) -> dict:
    inspect = json.loads(service.docker(["image", "inspect", IMAGE]).stdout)[0]
    report_path = ARCHIVE.with_name(ARCHIVE.name + ".json")
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return {"image_bytes": inspect.get("Size"), "layers": len(inspect.get("RootFS", {}).get("Layers") or []),
            "archive_bytes": ARCHIVE.stat().st_size if ARCHIVE.is_file() else None,
            "build_seconds": report.get("seconds")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cli", action="append", choices=sorted(FAKES), help="default: all three")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    service = PodmanService().start()
    try:
        if service.image_id() is None:
            print(f"{IMAGE} is not loaded; {INSTALL_HINT}", file=sys.stderr)
            return 1
        results = {"image": image_size(service), "runs": args.runs, "clis": {}}
        service.run(["--network", "none", IMAGE, "claude", "--version"])  # warm the page cache
        for cli in args.cli or ["claude", "codex", "gemini"]:
            runs = [one_run(service, cli, args.timeout) for _ in range(args.runs)]
            results["clis"][cli] = {
                key: {"median": round(statistics.median(r[key] for r in runs), 3),
                      "min": round(min(r[key] for r in runs), 3), "max": round(max(r[key] for r in runs), 3)}
                for key in ("first_request_s", "total_s")}
    finally:
        service.stop()
    image = results["image"]
    print(f"{IMAGE}: {image['image_bytes'] / 1e6:.0f} MB in podman, {image['layers']} layers, "
          f"archive {image['archive_bytes'] / 1e6:.0f} MB" if image["archive_bytes"] else "")
    for cli, timing in results["clis"].items():
        first, total = timing["first_request_s"], timing["total_s"]
        print(f"{cli:7} docker run -> first request: median {first['median']:.2f} s "
              f"(min {first['min']:.2f}, max {first['max']:.2f}); whole run: median {total['median']:.2f} s")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
