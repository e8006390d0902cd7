"""`agent-run` end to end, as the README has a user run it: the images CI builds, each of the three
real CLIs, the scripted model behind the credential gateway, an --internal outside network. A
normal run must work (commit, review, apply); a hostile one (tests/e2e/hostile.py, run by the
CLI) must achieve nothing that can be seen from the host. Every assertion is made on the host."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from e2e_world import (REAL_KEY, USER_UID, VENDOR_HOSTS, VENDORS, agent_run_argv, git, leftovers, make_world, owners,
                      podman, run_agent, snapshot)

CLIS = ("claude", "codex", "gemini")
REPORT_ATTACKS = {"claude": "fifo", "codex": "symlink", "gemini": "escapes"}
CONTROL = ("\x1b", "\x07", "\u202e")
RUN_LINE = re.compile(r"agent-run: run (\S+) \(copy mode; folder (\S+)\)")
RUN_LINE_ANY = re.compile(r"agent-run: run (\S+) \((?:copy|mount) mode")


def agent_run(world, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("agent-run"), *args], cwd=world.repo, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


# --- a normal run ----------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=CLIS)
def normal(request, new_root, start_vendor, outside, host_listener):
    cli = request.param
    world = make_world(new_root(f"normal-{cli}"), cli, False, "none", host_listener["port"])
    vendor = start_vendor(cli, "normal")
    before = snapshot(world.repo)
    run = run_agent(cli, world, vendor, outside)
    yield world, vendor, run, before
    agent_run(world, "discard", run.run_id)


def test_a_normal_run_works(normal):
    world, vendor, run, before = normal
    assert run.process.returncode == 0, run.stderr[-3000:]
    assert "blocked files left out of the copy: .env" in run.stderr
    turns = [r for r in vendor.requests() if r["method"] == "POST"]
    assert turns, "the CLI never reached the model through the gateway"
    sent_keys = {r["headers"].get(h, "") for r in turns for h in ("x-api-key", "authorization", "x-goog-api-key")}
    assert any(REAL_KEY in k for k in sent_keys) and not any("placeholder" in k for k in sent_keys)
    assert world.secret not in vendor.everything()
    assert snapshot(world.repo) == before  # the user's files, index, config and hooks: untouched
    assert not leftovers(run.run_id)


def test_runs_and_review_show_the_agents_commit(normal):
    world, _, run, _ = normal
    runs = agent_run(world, "runs")
    assert runs.returncode == 0 and run.run_id in runs.stdout and "heads/agent/feature" in runs.stdout
    review = agent_run(world, "review", run.run_id)
    assert review.returncode == 0, review.stderr
    assert "Add the feature" in review.stdout and "A feature.txt (+1 -0)" in review.stdout
    assert "READ-ONLY" not in review.stdout


def test_apply_brings_the_work_to_a_branch(normal):
    world, _, run, _ = normal
    head, status = git(world.repo, "rev-parse", "HEAD").stdout, git(world.repo, "status", "--porcelain").stdout
    applied = agent_run(world, "apply", run.run_id, "--branch", "from-agent")
    assert applied.returncode == 0, applied.stderr
    assert git(world.repo, "show", "from-agent:feature.txt").stdout == "done\n"
    assert git(world.repo, "show", "from-agent:notes.txt").stdout == "draft\n"  # the uncommitted work too
    assert "Add the feature" in git(world.repo, "log", "--format=%s", "from-agent").stdout
    assert git(world.repo, "rev-parse", "HEAD").stdout == head
    assert git(world.repo, "status", "--porcelain").stdout == status


# --- a hostile run ---------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=CLIS)
def hostile(request, new_root, start_vendor, outside, host_keyring, host_listener):
    cli = request.param
    world = make_world(new_root(f"hostile-{cli}"), cli, True, REPORT_ATTACKS[cli], host_listener["port"])
    vendor = start_vendor(cli, "hostile")
    before, victim_owners = snapshot(world.repo), owners(world.victim)
    run = run_agent(cli, world, vendor, outside)
    yield world, vendor, run, before, victim_owners
    agent_run(world, "discard", run.run_id)


def results_text(vendor) -> str:
    """What the hostile script printed: the tool result the CLI sent back to the model."""
    return vendor.everything()


def test_the_hostile_script_ran(hostile):
    world, vendor, run, _, _ = hostile
    assert '\\"git_swap\\"' in results_text(vendor) or '"git_swap"' in results_text(vendor), run.stderr[-3000:]
    assert run.seconds < 240


def test_no_host_file_changed_owner(hostile):
    world, _, _, before, victim_owners = hostile
    assert owners(world.victim) == victim_owners
    assert all(owner == (0, 0) for owner in victim_owners.values())
    assert {k: v[1:3] for k, v in snapshot(world.repo).items()} == {k: v[1:3] for k, v in before.items()}


def test_nothing_outside_the_copy_changed(hostile):
    world, _, _, before, _ = hostile
    assert snapshot(world.repo) == before
    assert (world.victim / "file").read_text() == "root's\n" and sorted(os.listdir(world.victim)) == ["file"]


def test_nothing_the_agent_wrote_runs_on_the_users_git(hostile):
    world, _, run, _, _ = hostile
    refs = f"refs/agent/{run.run_id}"
    for args in (["status"], ["log", "-p", "--all"], ["diff"], ["diff", f"{refs}/start", f"{refs}/uncommitted"],
                 ["log", "-p", f"{refs}/uncommitted"], ["show", f"{refs}/uncommitted"], ["fsck"]):
        git(world.repo, *args, check=False)
    review = agent_run(world, "review", run.run_id)
    assert review.returncode == 0, review.stderr
    assert os.listdir(world.markers) == []


def test_the_blocked_file_never_reached_the_agent(hostile):
    world, vendor, run, _, _ = hostile
    assert "blocked files are in HEAD's history (.env)" in run.stderr
    assert world.secret not in vendor.everything()
    everything = git(world.repo, "log", "-p", "--all", "--format=%H %s").stdout
    grep = git(world.repo, "grep", world.secret, f"refs/agent/{run.run_id}/uncommitted", check=False)
    assert grep.returncode == 1 and world.secret in everything  # only in the user's own history
    assert world.secret not in git(world.repo, "log", "-p", f"refs/agent/{run.run_id}/uncommitted").stdout


def test_no_keyring_readable(hostile, host_keyring):
    _, vendor, _, _, _ = hostile
    assert host_keyring not in vendor.everything()
    assert "Operation not permitted" in vendor.everything()  # keyctl refused by the seccomp profile


def test_no_route_to_the_host(hostile, host_listener):
    world, vendor, _, _, _ = hostile
    assert not any(world.token.encode() in data for data in host_listener["received"])
    assert "ipv6_link_local" in vendor.everything()


def test_no_other_vendor_reachable(hostile):
    world, vendor, run, _, _ = hostile
    log = (run.run_dir / "proxy-log" / "access.log").read_text()
    others = [h for v, h in VENDOR_HOSTS.items() if v != VENDORS[run.cli]]
    for host in others:
        lines = [line for line in log.splitlines() if f"url={host}:443" in line]
        assert lines and all("decision=deny_" in line for line in lines), (host, lines)
    gateway_log = (run.run_dir / "gateway-log" / "access.log").read_text()
    assert all(f'"vendor": "{VENDORS[run.cli]}"' in line or VENDORS[run.cli] in line
               for line in gateway_log.splitlines() if line.strip())


def test_read_only_tier_changes_are_flagged_and_refused(hostile):
    world, _, run, _, _ = hostile
    review = agent_run(world, "review", run.run_id)
    for path in (".github/workflows/ci.yml", "CLAUDE.md", "docs/CLAUDE.md", ".claude/settings.json", ".mcp.json",
                 "GEMINI.md", ".gitattributes"):
        assert any(path in line and "READ-ONLY TIER" in line for line in review.stdout.splitlines()), path
    branches = git(world.repo, "branch", "--list").stdout
    applied = agent_run(world, "apply", run.run_id, "--branch", "from-hostile")
    assert applied.returncode == 2 and "--allow-protected" in applied.stderr
    assert git(world.repo, "branch", "--list").stdout == branches


def test_odd_refs_are_refused_and_the_start_is_the_hosts(hostile):
    world, _, run, _, _ = hostile
    refs = git(world.repo, "for-each-ref", "--format=%(refname)", f"refs/agent/{run.run_id}/").stdout.split()
    assert f"refs/agent/{run.run_id}/start" in refs and f"refs/agent/{run.run_id}/uncommitted" in refs
    assert not any("remotes" in r for r in refs)
    recorded = run.audit()  # the start ref is the one made before the run
    assert git(world.repo, "rev-parse", f"refs/agent/{run.run_id}/start").stdout.strip() == \
        json.loads((run.run_dir / "run.json").read_text())["start"]
    assert recorded is not None


def test_the_audit_is_written_escaped_and_the_report_did_not_hang(hostile):
    world, _, run, _, _ = hostile
    audit = run.audit()
    assert "format" in audit
    for text in (run.stderr, agent_run(world, "runs").stdout, agent_run(world, "review", run.run_id).stdout):
        assert not any(c in text for c in CONTROL), repr([line for line in text.splitlines()
                                                          if any(c in line for c in CONTROL)])
    runs, review = agent_run(world, "runs").stdout, agent_run(world, "review", run.run_id).stdout
    assert "heads/evil\\u202egnp.exe" in runs  # the agent's branch names and messages arrive escaped
    assert "work \\x1b]0;pwned\\x07\\x1b[2J" in review
    if REPORT_ATTACKS[run.cli] in ("fifo", "symlink"):
        assert any("run report" in p for p in audit["problems"]), audit["problems"]
        assert not (run.run_dir / "report.json").exists()


def test_a_setuid_bit_never_reaches_the_users_repository(hostile):
    world, _, run, _, _ = hostile
    entry = git(world.repo, "ls-tree", f"refs/agent/{run.run_id}/uncommitted", "suid-sh").stdout
    assert entry.startswith("100755 ")


# --- --mount: live edits ---------------------------------------------------------------------------

def test_mount_mode_edits_live_and_keeps_git_and_instructions_in_place(new_root, start_vendor, outside,
                                                                        host_listener):
    world = make_world(new_root("mount"), "claude", False, "none", host_listener["port"])
    owner = USER_UID  # an ordinary user's folder: the agent runs as this uid
    vendor = start_vendor("claude", "live")
    done = subprocess.run(agent_run_argv("claude", world, vendor, outside, "--mount"), cwd=world.repo,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--mount: the agent edits your folder itself" in done.stderr
    assert (world.repo / "live.txt").stat().st_uid == owner
    assert git(world.repo, "log", "-1", "--format=%s", "agent/live").stdout == "Live edit\n"
    # mount points cannot be renamed (EBUSY); read-only files cannot be written (EROFS)
    said = vendor.everything()
    assert "rename .git: [Errno 16]" in said and "rename docs: [Errno 16]" in said, said[-2000:]
    assert "write CLAUDE.md: [Errno 30]" in said
    assert (world.repo / ".git").is_dir() and not (world.repo / ".git-moved").exists()
    assert (world.repo / "docs" / "CLAUDE.md").read_text() == "Docs rules.\n" and not (world.repo / "docs-moved").exists()
    assert (world.repo / "CLAUDE.md").read_text() == "Be careful.\n"
    # what --mount cannot stop is named after the run
    assert "new read-only-tier path: .mcp.json" in done.stderr
    assert "a git repository the agent may have made: sub/.git" in done.stderr
    run_id = RUN_LINE_ANY.search(done.stderr).group(1)
    assert not leftovers(run_id)
    assert "--mount run" in agent_run(world, "review", run_id).stderr
    discarded = agent_run(world, "discard", run_id)
    assert discarded.returncode == 0 and run_id not in agent_run(world, "runs").stdout, discarded.stderr


# --- stopping a run --------------------------------------------------------------------------------

def test_sigterm_tears_everything_down_and_still_writes_the_audit(new_root, start_vendor, outside, host_listener):
    world = make_world(new_root("sigterm"), "claude", False, "none", host_listener["port"])
    vendor = start_vendor("claude", "slow")
    process = subprocess.Popen(agent_run_argv("claude", world, vendor, outside), cwd=world.repo,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 180
    run_id = None
    while time.monotonic() < deadline and not (run_id and any(r["method"] == "POST" for r in vendor.requests())):
        started = [RUN_LINE.search(line) for line in list(lines)]
        run_id = next((m.group(1) for m in started if m), None)
        assert process.poll() is None, "".join(lines)[-3000:]
        time.sleep(0.2)
    assert run_id and podman("container", "exists", f"agent-sandbox-{run_id}-agent", check=False).returncode == 0
    time.sleep(3)  # the CLI is running the slow command by now
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=120)
    reader.join(10)
    assert code == 128 + signal.SIGTERM, "".join(lines)[-3000:]
    reader.join(10)
    err = "".join(lines)
    assert "SIGTERM: stopping the run and tearing down" in err
    assert not leftovers(run_id)
    run_dir = Path(RUN_LINE.search(err).group(2))
    assert (run_dir / "audit.json").exists() and json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    assert not any(run_id in name for folder in ("/run/agent-sandbox", "/dev/shm/agent-sandbox")
                   if os.path.isdir(folder) for name in os.listdir(folder))
    for path in run_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert REAL_KEY.encode() not in path.read_bytes(), path
    subprocess.run([shutil.which("agent-run"), "discard", run_id], cwd=world.repo, capture_output=True)
