"""`agent-run sweep` end to end: the images CI builds, the three real CLIs against their scripted
models, one proxy and one gateway per vendor shared by the runs. Each run must still be a run of
its own, judged from the host: its own network (no route to a neighbour), only its vendor's gateway,
its own refs, an audit holding its own traffic only; and the sweep stops and tears down on SIGTERM."""
from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from e2e_world import HERE, IMAGES, REAL_KEY, VENDORS, git, give_to_user, podman

SUMMARY = re.compile(r"summary (/\S+/sweeps/(\S+))/summary\.json")
MARKERS = {"claude": "alpha", "codex": "beta", "gemini": "gamma"}
ARGS = {"claude": [], "codex": ["-m", "gpt-fake"], "gemini": ["-m", "gemini-2.5-flash"]}


def make_repository(root: Path, marker: str) -> Path:
    repo = root / marker
    (repo / "tools").mkdir(parents=True)
    (repo / "marker.txt").write_text(marker + "\n")
    (repo / "tools" / "neighbours.py").write_text((HERE / "neighbours.py").read_text())
    give_to_user(repo)
    for args in (["init", "-q", "-b", "main"], ["config", "user.name", "User"], ["config", "user.email", "u@x"],
                 ["add", "-A"], ["commit", "-q", "-m", "the user's work"]):
        git(repo, *args)
    return repo


def sweep_argv(tasks: Path, keys: dict, vendors: dict, outside: dict, *extra: str) -> list[str]:
    argv = [shutil.which("agent-run"), "sweep", str(tasks), *extra,
            "--image", IMAGES["agent"], "--proxy-image", IMAGES["proxy"], "--gateway-image", IMAGES["gateway"],
            "--outside-network", outside["name"]]
    for vendor, key in keys.items():
        argv += ["--key-file", f"{vendor}={key}"]
    for vendor, stand_in in vendors.items():
        argv += ["--gateway-upstream", f"{vendor}={stand_in.url}"]
    return argv


def leftovers(*names: str) -> list[str]:
    listed = podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    listed += podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    return [n for n in listed if any(name in n for name in names)]


@pytest.fixture(scope="module")
def sweep(new_root, start_vendor, outside):
    root = new_root("sweep")
    repos = {cli: make_repository(root, marker) for cli, marker in MARKERS.items()}
    vendors = {VENDORS[cli]: start_vendor(cli, "sweep") for cli in MARKERS}
    keys = {}
    for vendor in vendors:
        keys[vendor] = root / f"{vendor}.key"
        keys[vendor].write_text(REAL_KEY + "\n")
    # Four tasks, two at a time: the three CLIs, and a second run in alpha's repository at once.
    tasks = [{"cli": cli, "repository": MARKERS[cli], "args": ARGS[cli], "name": MARKERS[cli]} for cli in MARKERS]
    tasks.append({"cli": "claude", "repository": "alpha", "name": "alpha-again"})
    (root / "tasks.yaml").write_text(json.dumps({"defaults": {"prompt": "Do the job.", "timeout": 240},
                                                 "tasks": tasks}))
    started = time.monotonic()
    done = subprocess.run(sweep_argv(root / "tasks.yaml", keys, vendors, outside, "--concurrency", "2"),
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    found = SUMMARY.search(done.stderr)
    assert found, f"no summary (exit {done.returncode}):\n{done.stderr[-4000:]}"
    summary = json.loads(Path(found.group(1), "summary.json").read_text())
    yield {"done": done, "summary": summary, "sweep_id": found.group(2), "repos": repos, "vendors": vendors,
           "seconds": time.monotonic() - started, "folder": Path(found.group(1))}
    for run in summary["runs"]:
        if run["run_id"]:
            subprocess.run([shutil.which("agent-run"), "discard", run["run_id"]], cwd=run["repository"],
                           capture_output=True, stdin=subprocess.DEVNULL)


def runs_of(sweep: dict) -> dict:
    return {run["name"]: run for run in sweep["summary"]["runs"]}


def test_every_task_ran_and_the_summary_says_so(sweep):
    done = sweep["done"]
    assert done.returncode == 0, done.stderr[-4000:]
    runs = runs_of(sweep)
    assert sorted(runs) == ["alpha", "alpha-again", "beta", "gamma"]
    assert all(run["status"] == "done" and run["exit_code"] == 0 for run in runs.values()), runs
    table = done.stdout.splitlines()
    assert table[0].split() == ["#", "TASK", "CLI", "REPOSITORY", "RUN", "EXIT", "STATUS", "REFS", "TIME"]
    assert len(table) == 5 and all(" done " in line for line in table[1:])
    # piped: plain progress lines, no bar redrawn in place
    assert "\r" not in done.stderr and "\x1b" not in done.stderr
    assert re.search(r"sweep \[#{24}\] 4/4: 4 done, 0 running, 0 failed, 0 queued", done.stderr)
    assert "sweep: #1 alpha started: run " in done.stderr


def test_each_run_brought_its_own_work_back(sweep):
    for name, run in runs_of(sweep).items():
        marker = name.split("-")[0]
        repo = Path(run["repository"])
        assert git(repo, "show", f"refs/agent/{run['run_id']}/heads/agent/{marker}:marker.txt").stdout == marker + "\n"
        log = git(repo, "log", "-1", "--format=%s", f"refs/agent/{run['run_id']}/heads/agent/{marker}").stdout
        assert log == f"work on {marker}\n"
    alpha = [run["run_id"] for name, run in runs_of(sweep).items() if name.startswith("alpha")]
    assert len(set(alpha)) == 2  # two runs in one repository at once: two namespaces of refs


def test_no_run_reaches_another_runs_network_or_another_vendors_gateway(sweep):
    ports = {"anthropic": 8081, "openai": 8082, "gemini": 8083}
    for name, run in runs_of(sweep).items():
        repo, marker = Path(run["repository"]), name.split("-")[0]
        seen = json.loads(git(repo, "show", f"refs/agent/{run['run_id']}/heads/agent/{marker}:neighbours.json").stdout)
        assert seen["reachable"] == [], seen
        assert set(seen["errors"]) == {"ENETUNREACH"}, seen["errors"]
        own = ports[VENDORS[run["cli"]]]
        for port in ports.values():
            assert seen[f"gateway_port_{port}"] == ("open" if port == own else "ECONNREFUSED"), (name, seen)


def test_each_audit_holds_its_own_runs_traffic_only(sweep):
    for name, run in runs_of(sweep).items():
        marker = name.split("-")[0]
        audit = json.loads(Path(run["audit"]).read_text())
        refused = {(r["host"], r["rule"]) for r in audit["network"]["refused"]}
        assert (f"{marker}.example.com", "deny_not_allowlisted") in refused, (name, refused)
        others = {f"{m}.example.com" for m in MARKERS.values() if m != marker}
        assert not {host for host, _ in refused} & others, (name, refused)
        assert [r["vendor"] for r in audit["model_api"]["bytes_by_route"]] == [VENDORS[run["cli"]]]
        assert audit["model_api"]["forwarded"], audit["model_api"]
        assert not audit["problems"], audit["problems"]
    # the model turns, split by agent address: the two Claude runs' audits add up to what the
    # Anthropic stand-in saw, so no line was counted twice or lost
    claude = [json.loads(Path(r["audit"]).read_text()) for r in runs_of(sweep).values() if r["cli"] == "claude"]
    counted = sum(route["requests"] for a in claude for route in a["model_api"]["bytes_by_route"])
    assert counted == len(sweep["vendors"]["anthropic"].requests())


def test_the_key_reached_each_vendor_only_through_its_gateway(sweep):
    for vendor, stand_in in sweep["vendors"].items():
        posts = [r for r in stand_in.requests() if r["method"] == "POST"]
        assert posts, vendor
        sent = {r["headers"].get(h, "") for r in posts for h in ("x-api-key", "authorization", "x-goog-api-key")}
        assert any(REAL_KEY in k for k in sent) and not any("placeholder" in k for k in sent)
    folder = sweep["folder"]
    for path in folder.rglob("*"):
        if path.is_file():
            assert REAL_KEY.encode() not in path.read_bytes(), path


def test_nothing_is_left_behind(sweep):
    run_ids = [run["run_id"] for run in sweep["summary"]["runs"]]
    assert not leftovers(sweep["sweep_id"], *run_ids)
    assert not any(Path(p).exists() for p in Path("/dev/shm/agent-sandbox").glob(f"sweep-{sweep['sweep_id']}"))


def test_sigterm_stops_every_run_and_tears_the_sweep_down(new_root, start_vendor, outside):
    root = new_root("sweep-sigterm")
    make_repository(root, "alpha")
    vendor = start_vendor("claude", "slow")
    key = root / "anthropic.key"
    key.write_text(REAL_KEY + "\n")
    (root / "tasks.txt").write_text("claude alpha sleep\nclaude alpha sleep too\nclaude alpha never started\n")
    process = subprocess.Popen(sweep_argv(root / "tasks.txt", {"anthropic": key}, {"anthropic": vendor}, outside,
                                          "-j", "2"),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert process.poll() is None, "".join(lines)[-3000:]
        agents = [n for n in podman("ps", "--format", "{{.Names}}").stdout.split() if n.endswith("-agent")]
        if len([r for r in vendor.requests() if r["method"] == "POST"]) >= 2 and len(agents) >= 2:
            break
        time.sleep(0.5)
    time.sleep(3)  # both CLIs are in the slow command by now
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=240)
    reader.join(10)
    out = process.stdout.read()
    err = "".join(lines)
    assert process.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "SIGTERM: stopping every run and tearing down" in err
    found = SUMMARY.search(err)
    summary = json.loads(Path(found.group(1), "summary.json").read_text())
    states = sorted(run["status"] for run in summary["runs"])
    assert states == ["cancelled", "failed", "failed"], summary
    stopped = [run for run in summary["runs"] if run["status"] == "failed"]
    assert all(run["exit_code"] == 128 + signal.SIGTERM for run in stopped)
    assert all(Path(run["audit"]).is_file() for run in stopped)
    assert summary["interrupted_by"] == "SIGTERM"
    assert not leftovers(found.group(2), *[run["run_id"] for run in stopped])
    assert "cancelled" in out
