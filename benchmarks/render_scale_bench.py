"""How render-profiles' work grows with the number of rules: render and --check of the project's
profiles as they are (1x), then with every rule copied 10 and 100 times, as ratios to 1x.

    python3 benchmarks/render_scale_bench.py [--scales 1 10 100] [--runs 3] [--code DIR]

Each copy of a rule gets its own id and its own program name (`git` -> `gitx7`), so the number of
guarded programs grows with the rules, as it does when a profile grows. Every measurement is one
render or one --check in a fresh Python process started by this one, timed inside it after its
imports: no process start-up, and nothing one measurement computed or cached is reused by the next.
Scales are interleaved run by run, so the load of a shared machine falls on all of them alike; the
ratio to 1x is the figure, not the milliseconds. Linear work gives about 10x and 100x (less, where
fixed costs weigh at 1x).

--code DIR measures another checkout (its renderer, profiles and corpus; e.g. one made with
`git worktree add /tmp/before <commit>`), to compare before and after a change.
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
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
RULE_LISTS = (("tripwire",), ("commands", "allow"), ("commands", "ask"), ("commands", "deny"))
# Run in the child: import first, then time one call of render-profiles' main.
CHILD = """
import contextlib, io, json, sys, time
from pathlib import Path
from renderer import cli
from renderer.model import available_profiles, load
root, mode = sys.argv[1], sys.argv[2]
args = ["--root", root] + (["--check"] if mode == "check" else [])
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
    start = time.perf_counter()
    code = cli.main(args)
    elapsed = time.perf_counter() - start
if code != 0:
    sys.exit(f"render-profiles {mode} failed on {root}: {err.getvalue()}")
rules = sum(len(load(name, Path(root)).rules) for name in available_profiles(Path(root)))
print(json.dumps({"seconds": elapsed, "rules": rules}))
"""


def corpus_folder(root: Path) -> Path:
    """Where a checkout keeps the corpus the check compares the rendered layers on."""
    for candidate in ("profiles/corpus", "tests/corpus"):  # where it is now, where it was
        if (root / candidate / "deny.yaml").is_file():
            return root / candidate
    raise SystemExit(f"no corpus under {root}")


def scaled_rule(rule: dict, copy: int) -> dict:
    program, *words = rule["command"]
    # one new program per copy (the first of a list of alternatives): renaming all of a long list
    # would push a rule's Gemini regex over Gemini's length limit
    renamed = [f"{program[0]}x{copy}", *program[1:]] if isinstance(program, list) else f"{program}x{copy}"
    return {**rule, "id": f"{rule['id']}-x{copy}", "command": [renamed, *words]}


def scale_profile(data: dict, factor: int) -> dict:
    for path in RULE_LISTS:
        holder = data
        for key in path[:-1]:
            holder = holder.get(key) or {}
        rules = holder.get(path[-1])
        if rules:
            holder[path[-1]] = rules + [scaled_rule(rule, copy) for copy in range(1, factor) for rule in rules]
    return data


def child_env(code: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(code)}


def project(base: Path, factor: int, code: Path) -> Path:
    root = base / f"x{factor}"
    (root / "profiles").mkdir(parents=True)
    for source in (code / "profiles").glob("*"):
        if source.suffix == ".yaml":
            data = scale_profile(yaml.safe_load(source.read_text()), factor)
            (root / "profiles" / source.name).write_text(yaml.safe_dump(data, sort_keys=False))
        elif source.is_file():
            shutil.copy(source, root / "profiles" / source.name)
    corpus = corpus_folder(code)
    shutil.copytree(corpus, root / corpus.relative_to(code), dirs_exist_ok=True)
    subprocess.run([sys.executable, "-m", "renderer.cli", "--root", str(root)], check=True, capture_output=True,
                   env=child_env(code))  # rendered/ for --check to compare with
    return root


def measure(source: Path, fresh: Path, mode: str, code: Path) -> dict:
    shutil.copytree(source, fresh)
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(fresh), mode], capture_output=True, text=True,
                              env=child_env(code))
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        return json.loads(done.stdout)
    finally:
        shutil.rmtree(fresh)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--runs", type=int, default=3, help="runs per scale; the median is reported")
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose renderer is measured")
    args = parser.parse_args()
    code = args.code.resolve()
    scales = sorted(set(args.scales) | {1})
    times: dict = {(factor, mode): [] for factor in scales for mode in ("render", "check")}
    rules: dict = {}
    with tempfile.TemporaryDirectory(prefix="render-scale-") as scratch:
        roots = {factor: project(Path(scratch), factor, code) for factor in scales}
        for run in range(args.runs):
            for factor in scales:
                for mode in ("render", "check"):
                    result = measure(roots[factor], Path(scratch) / f"x{factor}-{run}-{mode}", mode, code)
                    times[factor, mode].append(result["seconds"])
                    rules[factor] = result["rules"]
    median = {key: statistics.median(values) for key, values in times.items()}
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"render-profiles ({code}), each a fresh process timed after its imports, median of {args.runs} runs, "
          f"load average {load}")
    print(f"  {'scale':>6} {'rules':>6} {'render':>10} {'ratio':>7} {'--check':>10} {'ratio':>7}")
    for factor in scales:
        render, check = median[factor, "render"], median[factor, "check"]
        print(f"  {factor:>5}x {rules[factor]:>6} {render * 1000:>8.0f}ms {render / median[1, 'render']:>6.1f}x "
              f"{check * 1000:>8.0f}ms {check / median[1, 'check']:>6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
