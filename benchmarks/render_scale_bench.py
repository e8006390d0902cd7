"""How render-profiles' work grows with the number of rules: render and --check of the project's
profiles as they are (1x), then with every rule copied 10 and 100 times, as ratios to 1x.

    python3 benchmarks/render_scale_bench.py [--scales 1 10 100] [--runs 3]

Each copy of a rule gets its own id and its own program name (`git` -> `gitx7`), so the number
of guarded programs grows with the rules, as it does when a profile grows. All scales run in this
one process, against copies of profiles/ (and the corpus) in a temporary folder: the ratio to 1x
is the figure, not the milliseconds, which move with the machine's load. Linear work gives about
10x and 100x.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from renderer import cli  # noqa: E402

RULE_LISTS = (("tripwire",), ("commands", "allow"), ("commands", "ask"), ("commands", "deny"))


def corpus_folder(root: Path) -> Path:
    """Where this checkout keeps the corpus the check compares the rendered layers on."""
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


def project(base: Path, factor: int) -> Path:
    root = base / f"x{factor}"
    (root / "profiles").mkdir(parents=True)
    for source in (REPO / "profiles").glob("*"):
        if source.suffix == ".yaml":
            data = scale_profile(yaml.safe_load(source.read_text()), factor)
            (root / "profiles" / source.name).write_text(yaml.safe_dump(data, sort_keys=False))
        elif source.is_file():
            shutil.copy(source, root / "profiles" / source.name)
    corpus = corpus_folder(REPO)
    shutil.copytree(corpus, root / corpus.relative_to(REPO))
    # rendered/ for --check to compare with, written by another process so that nothing this one
    # measures was computed before
    subprocess.run([sys.executable, "-m", "renderer.cli", "--root", str(root)], cwd=REPO, check=True,
                   capture_output=True)
    return root


def timed(action) -> float:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = action()
    elapsed = time.perf_counter() - start
    assert code == 0, "the scaled profiles must render and check clean"
    return elapsed


def measure(source: Path, fresh: Path, mode: str) -> float:
    """One render or one --check, each on its own copy: nothing computed for one folder is reused."""
    shutil.copytree(source, fresh)
    try:
        return timed(lambda: cli.main(["--root", str(fresh)] + (["--check"] if mode == "check" else [])))
    finally:
        shutil.rmtree(fresh)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--runs", type=int, default=3, help="runs per scale; the median is reported")
    args = parser.parse_args()
    scales = sorted(set(args.scales) | {1})
    with tempfile.TemporaryDirectory(prefix="render-scale-") as scratch:
        roots = {factor: project(Path(scratch), factor) for factor in scales}
        results = {}
        for factor in scales:
            runs = []
            for run in range(args.runs):
                runs.append(tuple(measure(roots[factor], Path(scratch) / f"x{factor}-{run}-{mode}", mode)
                                  for mode in ("render", "check")))
            results[factor] = (statistics.median(r for r, _ in runs), statistics.median(c for _, c in runs))
        rules = {factor: sum(len(cli.load(name, roots[factor]).rules) for name in cli.available_profiles(roots[factor]))
                 for factor in scales}
    base_render, base_check = results[1]
    print(f"render-profiles, in one process, median of {args.runs} runs per scale (rules across all profiles)")
    print(f"  {'scale':>6} {'rules':>6} {'render':>10} {'ratio':>7} {'--check':>10} {'ratio':>7}")
    for factor in scales:
        render, check = results[factor]
        print(f"  {factor:>5}x {rules[factor]:>6} {render * 1000:>8.0f}ms {render / base_render:>6.1f}x "
              f"{check * 1000:>8.0f}ms {check / base_check:>6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
