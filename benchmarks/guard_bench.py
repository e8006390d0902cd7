"""Benchmark the tripwire: catch rate, false-deny rate, classifier time, shim and hook overhead.

    python benchmarks/guard_bench.py [--profile-file PATH] [--corpus DIR] [--runs N] [--no-processes] [--json]

Goals (issue 4): catch 100%, false denies < 1%, classifier p99 < 1 ms, shim added time per
exec < 5 ms on the fast path and < 50 ms on the checked path. Process times are whole
processes (fork+exec, as the kernel runs them), many runs, medians; the shim's added time is
its median minus the median of running the same stand-in binary directly.

Ratios (issue 13): the classifier's time over the corpus, and over the worst inputs the budget
refuses, divided by a baseline run in the same process just before (shlex.split of the same
commands: plain string work), so two commits or two machines compare without a timed test. Run
it on two checkouts with the same --corpus to compare before and after (docs/guard.md).
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from guard.classify import classify  # noqa: E402
from guard.policy import compile_policy  # noqa: E402
from guard.runtime import load_runtime  # noqa: E402
from renderer.shims import render_shim  # noqa: E402


def corpus(folder: Path = ROOT / "profiles/corpus"):
    import yaml

    deny = yaml.safe_load((folder / "deny.yaml").read_text())
    benign = yaml.safe_load((folder / "benign.yaml").read_text())
    return ([(rule, c) for rule, cs in deny.items() for c in cs], [c for cs in benign.values() for c in cs])


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def classifier_numbers(policy, deny, benign, reps):
    caught = sum(1 for rule, c in deny if (d := classify(c, policy)).decision == "deny" and rule in d.matched)
    false_denies = [c for c in benign if classify(c, policy).decision == "deny"]
    times = []
    for _ in range(reps):
        for command in [c for _, c in deny] + benign:
            start = time.perf_counter()
            classify(command, policy)
            times.append(time.perf_counter() - start)
    return {
        "deny_cases": len(deny), "caught": caught, "catch_rate": caught / len(deny),
        "benign_cases": len(benign), "false_denies": len(false_denies), "false_deny_rate": len(false_denies) / len(benign),
        "false_denied_commands": false_denies,
        "classify_ms_p50": percentile(times, 0.50) * 1000, "classify_ms_p99": percentile(times, 0.99) * 1000,
        "classify_ms_max": max(times) * 1000, "classify_calls": len(times),
    }


# Inputs at the budget's edge: brace groups that double the words (refused), many literal
# defaults (two readings, not one per combination), a long pipeline of wrapped commands.
WORST = {
    "brace bomb": "true || echo " + "{a,b}" * 22 + '; /usr/bin/git push origin HEAD:main --"force"',
    "200 defaults": "git " + " ".join(f"${{V{i}:-w{i}}}" for i in range(200)) + " push -f",
    "300 wrapped commands": " | ".join(["sudo env X=1 timeout 5 git -C d log --oneline"] * 300),
}


def baseline_seconds(commands, reps):
    import shlex

    start = time.perf_counter()
    for _ in range(reps):
        for command in commands:
            try:
                shlex.split(command)
            except ValueError:
                pass
    return time.perf_counter() - start


def ratio_numbers(policy, commands, reps):
    """Classifier time over the baseline's, for the corpus and for each worst input (and its peak
    memory), measured in this process one after the other."""
    import tracemalloc

    for command in commands:  # first calls load what they load (graphql-core) outside the timing
        classify(command, policy)
    baselines, corpus_seconds = [], []
    for _ in range(reps):  # alternating, so a busy machine slows both alike; the quickest of each
        baselines.append(baseline_seconds(commands, 1))
        start = time.perf_counter()
        for command in commands:
            classify(command, policy)
        corpus_seconds.append(time.perf_counter() - start)
    baseline = min(baselines)
    out = {"baseline_ms": baseline * 1000, "corpus_ratio": min(corpus_seconds) / baseline, "worst": {}}
    for name, command in WORST.items():
        start = time.perf_counter()
        decision = classify(command, policy)
        elapsed = time.perf_counter() - start
        tracemalloc.start()  # apart: tracing slows the run it traces several times over
        classify(command, policy)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out["worst"][name] = {"decision": decision.decision, "rule": decision.rule, "ms": elapsed * 1000,
                              "ratio": elapsed / baseline, "peak_mib": peak / 2 ** 20}
    return out


def median_run_ms(argv, runs, env, stdin=None):
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def guard_executable():
    beside = Path(sys.executable).parent / "agent-guard"  # not a version manager's wrapper script
    found = str(beside) if beside.exists() else shutil.which("agent-guard")
    if not found:
        sys.exit("agent-guard is not installed: pip install -e .")
    return found


def process_numbers(runtime, runs):
    guard = guard_executable()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shims, real, profiles = tmp / "shims", tmp / "real", tmp / "profiles"
        for d in (shims, real, profiles):
            d.mkdir()
        (profiles / "autonomous.json").write_text(json.dumps(runtime))
        os.symlink("/bin/true", real / "git")  # a stand-in that does nothing, so only the shim is measured
        shim = shims / "git"
        shim.write_text(render_shim("git", compile_policy(runtime), shim_dir=str(shims), profile_dir=str(profiles),
                                    guard_command=guard))
        shim.chmod(0o555)
        env = {"PATH": f"{shims}:{real}:/usr/bin:/bin", "HOME": str(tmp), "AGENT_PROFILE": "autonomous"}
        direct = median_run_ms([str(real / "git"), "status"], runs, env)
        fast = median_run_ms([str(shim), "status"], runs, env)
        checked_runs = max(10, runs // 4)
        checked = median_run_ms([str(shim), "push", "origin", "main"], checked_runs, env)
        refused = median_run_ms([str(shim), "push", "--force"], checked_runs, env)
        event = json.dumps({"tool_name": "Bash", "tool_input": {"command": "git status && git push origin main -f"}})
        hook = median_run_ms([guard, "hook", "claude", "--profile-file", str(profiles / "autonomous.json")],
                             checked_runs, env, stdin=event.encode())
    return {
        "direct_exec_ms": direct, "shim_fast_path_added_ms": fast - direct,
        "shim_checked_path_added_ms": checked - direct, "shim_refusal_ms": refused, "hook_process_ms": hook,
        "process_runs_fast": runs, "process_runs_checked": checked_runs,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="autonomous")
    parser.add_argument("--profile-file")
    parser.add_argument("--runs", type=int, default=200, help="process runs for the fast path (checked: a quarter)")
    parser.add_argument("--reps", type=int, default=20, help="classifier passes over the corpus")
    parser.add_argument("--corpus", type=Path, default=ROOT / "profiles/corpus", help="folder of deny.yaml, benign.yaml")
    parser.add_argument("--no-processes", action="store_true", help="skip the shim and hook process timings")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runtime = load_runtime(args.profile, args.profile_file)
    policy = compile_policy(runtime)
    deny, benign = corpus(args.corpus)
    results = {"profile": runtime.get("profile")}
    results.update(classifier_numbers(policy, deny, benign, args.reps))
    results["ratios"] = ratio_numbers(policy, [c for _, c in deny] + benign, args.reps)
    if not args.no_processes:
        results.update(process_numbers(runtime, args.runs))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    goals = [
        ("catch rate", f"{results['catch_rate']:.1%} ({results['caught']}/{results['deny_cases']})", "100%",
         results["catch_rate"] == 1.0),
        ("false-deny rate", f"{results['false_deny_rate']:.2%} ({results['false_denies']}/{results['benign_cases']})",
         "< 1%", results["false_deny_rate"] < 0.01),
        ("classifier p50", f"{results['classify_ms_p50']:.3f} ms", "", True),
        ("classifier p99", f"{results['classify_ms_p99']:.3f} ms", "< 1 ms", results["classify_ms_p99"] < 1.0),
        ("corpus / baseline", f"{results['ratios']['corpus_ratio']:.1f}x", "", True),
    ]
    for name, worst in results["ratios"]["worst"].items():
        goals.append((f"{name}", f"{worst['decision']} {worst['ms']:.0f} ms, {worst['ratio']:.1f}x, "
                                 f"{worst['peak_mib']:.1f} MiB", "", True))
    if not args.no_processes:
        goals += [
            ("shim fast path, added", f"{results['shim_fast_path_added_ms']:.2f} ms", "< 5 ms",
             results["shim_fast_path_added_ms"] < 5),
            ("shim checked path, added", f"{results['shim_checked_path_added_ms']:.2f} ms", "< 50 ms",
             results["shim_checked_path_added_ms"] < 50),
            ("shim refusal (whole)", f"{results['shim_refusal_ms']:.2f} ms", "", True),
            ("hook process (whole)", f"{results['hook_process_ms']:.2f} ms", "", True),
        ]
    print(f"profile {results['profile']}; {results['classify_calls']} classifier calls; baseline "
          f"{results['ratios']['baseline_ms']:.1f} ms"
          + ("" if args.no_processes else
             f"; process medians over {results['process_runs_fast']} / {results['process_runs_checked']} runs"))
    for name, value, goal, ok in goals:
        print(f"  {name:26} {value:24} {goal:8} {'ok' if ok else 'MISSED'}")
    for command in results["false_denied_commands"]:
        print(f"  false deny: {command}")


if __name__ == "__main__":
    main()
