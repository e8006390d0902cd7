"""How long image-verify takes on an image shaped like the Nix one: 100 layers (the
streamLayeredImage default), tens of thousands of files, a few hundred MB.

    python benchmarks/image_bench.py [--layers 100] [--files-per-layer 600] [--blob-mb 3]

Builds the image once per form (docker-archive .tar and .tar.gz, OCI layout folder) in a temp
folder, runs the verifier on each and prints wall time and peak RSS. The image content is
synthetic (tests/image/image_synth.py's good image plus filler layers of random data, so
gzip has real work), the sizes are chosen to match the expected closure.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "image"))

import image_synth as synth  # noqa: E402
from image.verify import load_contract  # noqa: E402


def filler_layer(number: int, files: int, blob_bytes: int) -> list[synth.Node]:
    store = f"/nix/store/{number:032d}-filler-{number}"
    nodes = [synth.Node(f"{store}/share/doc/file-{i}.txt", data=b"x" * (i % 2048), mode=0o444) for i in range(files)]
    nodes.append(synth.Node(f"{store}/lib/blob.so", data=os.urandom(blob_bytes), mode=0o555))
    return nodes


def run_verify(image: Path) -> tuple[float, int, int]:
    script = (
        "import resource, sys, time\n"
        "from image.verify import main\n"
        "start = time.perf_counter()\n"
        "code = main([sys.argv[1]])\n"
        "elapsed = time.perf_counter() - start\n"
        "rss = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
        "print(f'BENCH {elapsed:.3f} {rss} {code}', file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(image)], capture_output=True, text=True, cwd=ROOT)
    line = [row for row in result.stderr.splitlines() if row.startswith("BENCH ")][-1]
    _, elapsed, rss, code = line.split()
    return float(elapsed), int(rss), int(code)


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=100)
    parser.add_argument("--files-per-layer", type=int, default=600)
    parser.add_argument("--blob-mb", type=float, default=3.0)
    args = parser.parse_args()

    contract = load_contract()
    spec = synth.good_spec(contract)
    fillers = [filler_layer(n, args.files_per_layer, int(args.blob_mb * 1024 * 1024)) for n in range(args.layers - len(spec.layers))]
    spec.layers = spec.layers[:2] + fillers + spec.layers[2:]
    files = sum(len(layer) for layer in spec.layers)
    print(f"image: {len(spec.layers)} layers, {files} entries")

    with tempfile.TemporaryDirectory() as folder:
        for form in ("docker-tar", "docker-tar-gz", "oci-dir"):
            target = Path(folder) / form
            target.mkdir()
            start = time.perf_counter()
            image = synth.write_image(spec, form, target)
            built = time.perf_counter() - start
            elapsed, rss_kib, code = run_verify(image)
            assert code == 0, f"{form}: image-verify exited {code}"
            print(f"{form:14s} size {size_of(image) / 1e6:7.1f} MB  built in {built:5.1f} s  "
                  f"image-verify {elapsed:6.2f} s  peak RSS (VmHWM) {rss_kib / 1024:6.1f} MiB")
    print(f"(benchmark process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
