"""`docker run agent-image:test CLI ...` (the docker client against `podman system service`):
each real CLI, driven by its fake model server, runs a safe command and a plain push, and the
image's own baked policy refuses a force push. The entrypoint refuses root, AGENT_SANDBOX=0,
a reachable engine socket and a baked file replaced by a mount before any CLI starts."""

import json
import os
import stat

import pytest

from entrypoint.report import DENIAL_EXIT
from podman_image import (AGENT_UID, HARDENING, IMAGE, REPO, git_with_remote, make_workspace, remote_branches,
                          run_args, run_cli)
from conformance.fakes import Scenario, fake_for  # noqa: E402  (podman_image puts tests/ on the path)

MARKER = "made-in-the-container"
PLAIN_PUSH = "git -C project push origin HEAD:refs/heads/plain"
FORCE_PUSH = "git -C project push --force origin HEAD:refs/heads/forced"
FINAL = "Image session finished."


def scenario():
    return Scenario([f"touch {MARKER}", PLAIN_PUSH, FORCE_PUSH], FINAL)


def refusal_seen_by_model(cli, result):
    """The text the CLI sent back for the force push names the image's rule, not a git error.
    (Claude and Gemini carry an error flag; Codex's protocol has none.)"""
    named = "git-push-force" in result.text
    return named and (result.is_error is True if cli in ("claude", "gemini") else True)


@pytest.mark.parametrize("cli", ["claude", "codex", "gemini"])
def test_cli_runs_a_safe_command_and_the_image_refuses_a_force_push(cli, podman_service, tmp_path):
    workspace = make_workspace(tmp_path)
    _, remote = git_with_remote(workspace)
    with fake_for(cli, scenario()) as server:
        run = run_cli(podman_service, cli, server, workspace)
    assert run.returncode == 0, run.stderr[-3000:]
    marker = workspace / MARKER
    assert marker.is_file(), run.stderr[-3000:]
    assert marker.stat().st_uid == AGENT_UID  # written by the agent, not by root
    # The plain push went through; the force push never reached git.
    assert remote_branches(remote) == ["plain"], run.stderr[-3000:]
    results = server.tool_results
    assert len(results) == 3, [r.text for r in results]
    assert refusal_seen_by_model(cli, results[2]), results[2]
    assert FINAL in run.stdout, run.stdout[-2000:]


def _refused(podman_service, extra, tmp_path):
    workspace = make_workspace(tmp_path)
    return podman_service.run(["--network", "none", *HARDENING, "-v", f"{workspace}:/workspace", *extra,
                               IMAGE, "claude", "--version"], timeout=60)


def test_the_same_start_without_a_hazard_runs_the_cli(podman_service, tmp_path):
    pins = json.loads((REPO / "package.json").read_text())["dependencies"]
    result = _refused(podman_service, [], tmp_path)
    assert result.returncode == 0, result.stderr
    assert pins["@anthropic-ai/claude-code"] in result.stdout


def test_root_is_refused(podman_service, tmp_path):
    result = _refused(podman_service, ["--user", "0"], tmp_path)
    assert result.returncode == 64, result.stderr
    assert "refused: running as root" in result.stderr
    assert "Claude Code" not in result.stdout


def test_agent_sandbox_0_is_refused(podman_service, tmp_path):
    result = _refused(podman_service, ["-e", "AGENT_SANDBOX=0"], tmp_path)
    assert result.returncode == 64, result.stderr
    assert "AGENT_SANDBOX must be exactly 1" in result.stderr
    assert "Claude Code" not in result.stdout


ENGINE_GID = 2375  # stands for the host's docker group


def test_a_reachable_engine_socket_is_refused(podman_service, tmp_path):
    # The socket this very test drives podman through, mounted where docker's lives, usable by
    # the agent through a supplementary group as a docker-group member's would be.
    socket = podman_service.socket
    os.chown(socket, 0, ENGINE_GID)
    os.chmod(socket, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP)
    result = _refused(podman_service, ["-v", f"{socket}:/var/run/docker.sock", "--group-add", str(ENGINE_GID)],
                      tmp_path)
    assert result.returncode == 77, result.stderr
    assert "container engine socket reachable: /var/run/docker.sock" in result.stderr
    assert "Claude Code" not in result.stdout


@pytest.mark.parametrize("cli", ["claude", "gemini"])
def test_the_baked_ci_profile_reports_the_denial_and_fails_the_run(cli, podman_service, tmp_path):
    workspace = make_workspace(tmp_path)
    _, remote = git_with_remote(workspace)
    with fake_for(cli, Scenario([f"touch {MARKER}", FORCE_PUSH], FINAL)) as server:
        result = podman_service.run(run_args(cli, server, workspace,
                                             ["-e", "AGENT_PROFILE=ci", "-e", "AGENT_REPORT=report.json"]))
    assert result.returncode == DENIAL_EXIT, result.stderr[-3000:]
    report_file = workspace / "report.json"
    assert report_file.stat().st_uid == AGENT_UID
    report = json.loads(report_file.read_text())
    assert report["profile"] == "ci" and report["exit_code"] == DENIAL_EXIT
    assert [d["rule"] for d in report["denials"]] == ["git-push-force"]
    assert (workspace / MARKER).is_file() and remote_branches(remote) == []


def test_a_baked_config_replaced_by_a_mount_is_refused(podman_service, tmp_path):
    # Read-only, root-owned, valid JSON: only the manifest's sha256 tells it from the baked file.
    permissive = tmp_path / "managed-settings.json"
    permissive.write_text(json.dumps({"permissions": {"deny": []}}) + "\n")
    os.chmod(permissive, 0o444)
    result = _refused(podman_service, ["-v", f"{permissive}:/etc/claude-code/managed-settings.json:ro"], tmp_path)
    assert result.returncode == 78, result.stderr
    assert "/etc/claude-code/managed-settings.json: sha256 does not match the manifest" in result.stderr
    assert "Claude Code" not in result.stdout


def test_gemini_accepts_every_baked_admin_policy_rule(podman_service, tmp_path):
    # Gemini CLI drops a policy rule it rejects and goes on: only its stderr tells.
    workspace = make_workspace(tmp_path)
    with fake_for("gemini", Scenario([], FINAL)) as server:
        run = run_cli(podman_service, "gemini", server, workspace)
    assert run.returncode == 0, run.stderr[-3000:]
    rejected = sorted({line.strip() for line in run.stderr.splitlines() if line.strip().startswith("Pattern:")})
    assert "Policy file error" not in run.stderr, f"{len(rejected)} rules dropped by Gemini: {rejected}"
