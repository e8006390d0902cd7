"""The entrypoint for real, as uid 1000, with the baked tree at its real paths inside a private
mount namespace (see entrypoint_world.py) and stand-in CLIs that record how they were started."""

import json
import os
import subprocess

import pytest
from guard.classify import classify

from entrypoint_world import AGENT_UID, CONFORMANCE_FIXTURES, PY

TOOLS_LINE = "choose one of: claude, codex, gemini"
SEED = "/home/agent/.claude.json"


def only_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


# ---- guards -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [None, "", "0", "true", "yes", " 1", "01"])
def test_agent_sandbox_must_be_exactly_1(world, value):
    result = world.run(["claude", "-p", "x"], {"AGENT_SANDBOX": value})
    assert result.returncode == 64
    assert "refused: AGENT_SANDBOX must be exactly 1" in only_line(result.stderr)
    assert not result.has_record("claude.json")


@pytest.mark.parametrize("setpriv,uid,euid", [
    ([], 0, 0),
    (["setpriv", f"--ruid={AGENT_UID}", f"--rgid={AGENT_UID}", "--clear-groups"], AGENT_UID, 0),
    (["setpriv", f"--euid={AGENT_UID}", f"--egid={AGENT_UID}", "--clear-groups"], 0, AGENT_UID),
])
def test_root_is_refused_by_real_or_effective_uid(world, setpriv, uid, euid):
    result = world.run(["claude", "-p", "x"], setpriv=setpriv)
    assert result.returncode == 64
    assert f"refused: running as root (uid {uid}, euid {euid})" in only_line(result.stderr)
    assert not result.has_record("claude.json")


def test_no_tool_and_unknown_tool_exit_64_listing_the_tools(world):
    result = world.run([])
    assert result.returncode == 64 and "claude, codex, gemini" in only_line(result.stderr)
    result = world.run(["aider", "--yes"])
    assert result.returncode == 64 and TOOLS_LINE in only_line(result.stderr)


def test_a_tool_that_is_not_installed_exits_127_naming_it(world):
    world.remove_standin("gemini")
    result = world.run(["gemini", "-p", "x"])
    assert result.returncode == 127
    assert "gemini is not installed" in result.stderr


def test_a_bad_profile_name_exits_64(world):
    result = world.run(["claude"], {"AGENT_PROFILE": "../../tmp/x"})
    assert result.returncode == 64 and "AGENT_PROFILE" in only_line(result.stderr)


# ---- run: exec, argv, environment, seed ---------------------------------------------------------

def test_claude_is_execed_with_its_bypass_the_quiet_environment_and_no_launcher_secrets(world):
    launcher_only = world.runtime()["environment"]["launcher_only"]
    assert launcher_only
    env = {key: "launcher-secret" for key in launcher_only}
    env.update({"KEEP_ME": "1", "STANDIN_READ": SEED})
    result = world.run(["claude", "-p", "fix the test"], env, wrap="{cmd} & echo $! > {records}/launched; wait $!")
    assert result.returncode == 0, result.stderr
    record = result.record("claude.json")
    assert record["argv"][1:] == ["--dangerously-skip-permissions", "-p", "fix the test"]
    # exec: the CLI is the very process that was started as the entrypoint
    assert record["pid"] == int((result.records / "launched").read_text())
    env = record["env"]
    for key, value in world.runtime()["environment"]["quiet"].items():
        assert env[key] == str(value)
    for key in launcher_only:
        assert key not in env
    assert env["KEEP_ME"] == "1"
    assert env["PATH"].split(":")[0] == "/usr/lib/agent-sandbox/shims"
    assert (record["uid"], record["euid"]) == (AGENT_UID, AGENT_UID)
    assert record["files"][SEED] == world.baked("/etc/agent-sandbox/seed/home/.claude.json").read_text()


def test_a_seed_never_overwrites_what_is_in_home(world):
    world.setup.append(f"echo mine > {SEED} && chown 1000:1000 {SEED}")
    result = world.run(["claude", "-p", "x"], {"STANDIN_READ": SEED})
    assert result.record("claude.json")["files"][SEED] == "mine\n"


@pytest.mark.parametrize("argv,expected", [
    (["claude", "--dangerously-skip-permissions", "-p", "x"], ["--dangerously-skip-permissions", "-p", "x"]),
    (["codex", "fix it"], ["exec", "-c", 'approval_policy="never"', "-c", 'sandbox_mode="danger-full-access"', "fix it"]),
    (["codex", "exec", "fix it"], ["exec", "-c", 'approval_policy="never"', "-c", 'sandbox_mode="danger-full-access"', "fix it"]),
    (["gemini", "-y", "-p", "x"], ["--approval-mode", "yolo", "-p", "x"]),
    (["gemini", "--yolo", "--approval-mode", "yolo", "-p", "x"], ["--approval-mode", "yolo", "-p", "x"]),
])
def test_each_cli_gets_its_bypass_exactly_once(world, argv, expected):
    result = world.run(argv)
    assert result.returncode == 0, result.stderr
    assert result.record(f"{argv[0]}.json")["argv"][1:] == expected


def test_contradicting_gemini_modes_are_a_usage_error(world):
    result = world.run(["gemini", "--yolo", "--approval-mode", "plan", "-p", "x"])
    assert result.returncode == 64 and "contradict" in result.stderr


def test_the_clis_exit_code_is_passed_on(world):
    assert world.run(["codex", "x"], {"STANDIN_EXIT": "7"}).returncode == 7


def test_as_pid_1_it_supervises_passes_the_code_on_and_reaps_orphans(world):
    result = world.run(["claude", "-p", "x"], {"STANDIN_EXIT": "5", "STANDIN_ORPHAN": "1"}, pid1=True)
    assert result.returncode == 5, result.stderr
    record = result.record("claude.json")
    assert record["ppid"] == 1 and record["pid"] != 1
    # The orphan was re-parented to PID 1 (the entrypoint), exited, and was reaped, not left a zombie.
    assert result.record("orphan-state.json")["state"] == "gone"


def test_as_pid_1_signals_reach_the_cli(world):
    killer = f"( while [ ! -e {world.records}/ready ]; do sleep 0.05; done; kill -TERM 1 ) &"
    world.setup.append(killer)
    result = world.run(["claude", "-p", "x"], {"STANDIN_WAIT_SIGNAL": "1"}, pid1=True)
    assert result.record("signal.json")["signal"] == 15
    assert result.returncode == 128 + 15


# ---- config integrity ---------------------------------------------------------------------------

def refused_config(result, *fragments):
    assert result.returncode == 78, result.stderr
    assert not result.has_record("claude.json")
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_a_tampered_baked_file_is_refused(world):
    path = world.manifest_entry("json")
    world.rewrite_baked(path, world.baked(path).read_bytes() + b" ", update_manifest=False)
    refused_config(world.run(["claude", "-p", "x"]), path, "sha256 does not match")


def test_a_missing_baked_file_is_refused(world):
    path = world.manifest_entry("toml")
    world.baked(path).unlink()
    refused_config(world.run(["claude", "-p", "x"]), path, "missing")


@pytest.mark.parametrize("fmt,garbage", [("json", b'{"permissions": {"deny": [}\n'), ("toml", b"[rule\nx = \n")])
def test_a_malformed_baked_file_is_refused_even_when_its_hash_matches(world, fmt, garbage):
    path = world.manifest_entry(fmt)
    world.rewrite_baked(path, garbage, update_manifest=True)
    refused_config(world.run(["claude", "-p", "x"]), path, f"does not parse as {fmt}")


def test_a_baked_file_the_agent_can_write_is_refused(world):
    path = world.manifest_entry("json")
    world.baked(path).chmod(0o666)
    refused_config(world.run(["claude", "-p", "x"]), path, "writable by the agent")


def test_a_baked_file_not_owned_by_root_is_refused(world):
    path = world.manifest_entry("json")
    os.chown(world.baked(path), AGENT_UID, AGENT_UID)
    refused_config(world.run(["claude", "-p", "x"]), path, f"owned by uid {AGENT_UID}")


def test_a_missing_writable_or_broken_manifest_is_refused(world):
    manifest = world.baked("/etc/agent-sandbox/manifest.json")
    manifest.chmod(0o666)
    refused_config(world.run(["claude"]), "/etc/agent-sandbox/manifest.json: writable by the agent")
    manifest.chmod(0o444)
    data = manifest.read_bytes()
    manifest.chmod(0o644)
    manifest.write_bytes(data[:-5])
    manifest.chmod(0o444)
    refused_config(world.run(["claude"]), "/etc/agent-sandbox/manifest.json: not JSON")
    manifest.unlink()
    refused_config(world.run(["claude"]), "/etc/agent-sandbox/manifest.json: missing")


def test_only_the_selected_profiles_files_are_checked(world):
    ci_only = [p for p, e in json.loads(world.baked("/etc/agent-sandbox/manifest.json").read_text())["files"].items()
               if e["profiles"] == ["ci"] and not p.startswith("/etc/agent-sandbox/profiles/")]
    assert ci_only, "the baked tree has a ci-only file (the Codex ci layer)"
    world.rewrite_baked(ci_only[0], b"tampered = true\n", update_manifest=False)
    assert world.run(["claude", "-p", "x"]).returncode == 0
    refused_config(world.run(["claude", "-p", "x"], {"AGENT_PROFILE": "ci"}), ci_only[0])


def test_a_profile_not_baked_is_refused_listing_the_baked_ones(world):
    refused_config(world.run(["claude"], {"AGENT_PROFILE": "nonexistent"}), "not baked into this image",
                   "autonomous, ci")


# ---- boundary preflight, for real ----------------------------------------------------------------

def refused_boundary(result, *fragments):
    assert result.returncode == 77, result.stderr
    assert not result.has_record("claude.json")
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_an_engine_socket_is_refused(world):
    world.setup += ["mount -t tmpfs tmpfs /run",
                    f"{PY} -c \"import socket, os; s = socket.socket(socket.AF_UNIX); s.bind('/run/docker.sock'); "
                    "os.chmod('/run/docker.sock', 0o666)\""]
    refused_boundary(world.run(["claude", "-p", "x"]), "container engine socket reachable: /run/docker.sock")


def test_a_setuid_file_on_the_path_is_refused(world):
    helper = world.bin / "helper"
    helper.write_text("#!/bin/sh\n")
    helper.chmod(0o4755)
    refused_boundary(world.run(["claude", "-p", "x"]), f"setuid binary present: {helper}")


def test_a_mounted_ssh_folder_is_refused(world):
    keys = world.base / "host-home" / ".ssh"
    keys.mkdir(parents=True)
    world.setup += ["mkdir -p /home/agent/.ssh", f"mount --bind -o ro {keys} /home/agent/.ssh"]
    refused_boundary(world.run(["claude", "-p", "x"]), "host secret mounted: /home/agent/.ssh")


def test_a_second_writable_bind_mount_is_refused(world):
    data = world.base / "data"
    data.mkdir()
    world.setup.append(f"mount --bind {data} {data}")
    refused_boundary(world.run(["claude", "-p", "x"]), f"writable bind mount other than the workspace: {data}")


def test_the_host_pid_namespace_is_refused(world):
    refused_boundary(world.run(["claude", "-p", "x"], pid_namespace=False), "host process namespace shared")


def test_every_failed_check_is_named(world):
    helper = world.bin / "helper"
    helper.write_text("#!/bin/sh\n")
    helper.chmod(0o2755)
    keys = world.base / "aws"
    keys.mkdir()
    world.setup += ["mkdir -p /home/agent/.aws", f"mount --bind {keys} /home/agent/.aws"]
    result = world.run(["claude", "-p", "x"], pid_namespace=False)
    refused_boundary(result, "host process namespace shared", f"setgid binary present: {helper}",
                     "host secret mounted: /home/agent/.aws")
    assert result.stderr.count("refused: boundary check failed") == 3


def test_weaker_signs_are_warned_once_and_do_not_refuse(world):
    result = world.run(["claude", "-p", "x"])
    assert result.returncode == 0
    for warning in ("no_new_privs is not set", "capabilities left in the bounding set"):
        assert result.stderr.count(warning) == 1
    drop = ["setpriv", f"--reuid={AGENT_UID}", f"--regid={AGENT_UID}", "--clear-groups", "--no-new-privs",
            "--bounding-set=-all"]
    result = world.run(["claude", "-p", "x"], setpriv=drop)
    assert result.returncode == 0, result.stderr
    assert "no_new_privs" not in result.stderr and "bounding set" not in result.stderr


# ---- checkpoint at start ----------------------------------------------------------------------------

def as_agent_git(world, *args):
    return subprocess.run(["setpriv", f"--reuid={AGENT_UID}", f"--regid={AGENT_UID}", "--clear-groups",
                           "env", "HOME=/nonexistent", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t",
                           "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t", "git", "-C", str(world.workspace), *args],
                          check=True, capture_output=True, text=True).stdout


def test_a_git_workspace_is_checkpointed_before_the_cli_starts(world):
    as_agent_git(world, "init", "-q")
    (world.workspace / "a.txt").write_text("a\n")
    os.chown(world.workspace / "a.txt", AGENT_UID, AGENT_UID)
    as_agent_git(world, "add", "a.txt")
    as_agent_git(world, "commit", "-qm", "a")
    (world.workspace / "a.txt").write_text("changed\n")
    (world.workspace / "new.txt").write_text("new\n")
    status = as_agent_git(world, "status", "--porcelain")
    result = world.run(["codex", "x"])
    assert result.returncode == 0, result.stderr
    refs = as_agent_git(world, "for-each-ref", "--format=%(refname)", "refs/agent/checkpoints/").split()
    assert len(refs) == 1 and refs[0].endswith("-codex")
    assert f"checkpoint {refs[0].rsplit('/', 1)[1]}" in result.stderr
    assert as_agent_git(world, "status", "--porcelain") == status
    assert as_agent_git(world, "show", f"{refs[0]}:new.txt") == "new\n"


def test_a_broken_repository_refuses_the_start(world):
    (world.workspace / ".git").write_text("gitdir: /nowhere\n")
    result = world.run(["claude", "-p", "x"])
    assert result.returncode == 73 and "cannot checkpoint the workspace" in result.stderr
    assert not result.has_record("claude.json")


# ---- ci: supervision, signals, the run report -----------------------------------------------------

CI_CAPTURES = {
    "claude": (["claude", "-p", "x"], "claude-stream-json-one-denial.jsonl", None),
    "codex": (["codex", "exec", "x"], "codex-exec-json-one-denial.jsonl", "codex-exec-stderr-one-denial.txt"),
    "gemini": (["gemini", "-p", "x"], "gemini-stream-json-one-denial.jsonl", "gemini-stderr-one-denial.txt"),
}
CI_FLAGS = {
    "claude": ["--output-format", "stream-json", "--verbose"],
    "codex": ["--json", "--profile", "ci"],
    "gemini": ["-o", "stream-json"],
}


@pytest.mark.parametrize("tool", sorted(CI_CAPTURES))
def test_ci_tees_the_output_writes_the_report_and_exits_3_on_a_denial(world, tool):
    argv, stdout_name, stderr_name = CI_CAPTURES[tool]
    env = {"AGENT_PROFILE": "ci", "STANDIN_STDOUT": str(world.fixtures / stdout_name),
           "AGENT_REPORT": f"{world.records}/report.json"}
    if stderr_name:
        env["STANDIN_STDERR"] = str(world.fixtures / stderr_name)
    result = world.run(argv, env)
    assert result.returncode == 3, result.stderr
    assert result.stdout == (CONFORMANCE_FIXTURES / stdout_name).read_text()
    if stderr_name:
        assert (CONFORMANCE_FIXTURES / stderr_name).read_text() in result.stderr
    recorded = result.record(f"{tool}.json")
    flags = CI_FLAGS[tool]
    assert any(recorded["argv"][i:i + len(flags)] == flags for i in range(len(recorded["argv"])))
    if tool == "codex":
        assert recorded["stdin_is_devnull"]
    report = result.record("report.json")
    assert (report["tool"], report["profile"], report["exit_code"], report["cli_exit_code"]) == (tool, "ci", 3, 0)
    assert [call["status"] for call in report["tool_calls"]] == ["ok", "denied"]
    [denial] = report["denials"]
    assert "gh secret list" in denial["command"]
    runtime = world.runtime("ci")
    expected = classify("gh secret list", runtime).rule
    assert expected and (denial["rule"], denial["rule_source"]) == (expected, "guard")
    assert denial["tripwire"] == next(r.get("tripwire", False) for r in runtime["rules"] if r["id"] == expected)
    assert "run report" in result.stderr and expected in result.stderr


def test_ci_without_a_denial_exits_with_the_clis_code_and_reports_to_home_by_default(world):
    clean = world.records / "clean.jsonl"
    lines = (CONFORMANCE_FIXTURES / "gemini-stream-json-one-denial.jsonl").read_text().splitlines()
    clean.write_text("\n".join(line for line in lines if "gemini-call-1" not in line) + "\n")
    result = world.run(["gemini", "-p", "x"], {"AGENT_PROFILE": "ci", "STANDIN_STDOUT": str(clean)},
                       wrap="set +e; {cmd}; echo $? > {records}/exit; cp /home/agent/agent-report.json {records}/")
    assert (result.records / "exit").read_text().strip() == "0", result.stderr
    report = result.record("agent-report.json")
    assert report["denials"] == [] and report["exit_code"] == 0
    assert [call["command"] for call in report["tool_calls"]] == ["touch ok-marker"]


@pytest.mark.parametrize("signal_name,number", [("TERM", 15), ("INT", 2), ("HUP", 1)])
def test_ci_forwards_signals_and_exits_128_plus_the_signal(world, signal_name, number):
    wrap = ("set +e; {cmd} & pid=$!; while [ ! -e {records}/ready ]; do sleep 0.05; done; "
            f"kill -{signal_name} $pid; wait $pid; echo $? > {{records}}/exit")
    result = world.run(["gemini", "-p", "x"], {"AGENT_PROFILE": "ci", "STANDIN_WAIT_SIGNAL": "1",
                                               "AGENT_REPORT": f"{world.records}/report.json"}, wrap=wrap)
    assert result.record("signal.json")["signal"] == number
    assert (result.records / "exit").read_text().strip() == str(128 + number), result.stderr
    report = result.record("report.json")
    assert (report["signal"], report["exit_code"]) == (number, 128 + number)
