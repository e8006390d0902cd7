"""agent-run against the real podman: networks, proxy, gateway and a hardened agent container.

With no image registry here, every container runs on an overlay of the host's own filesystem
(`--rootfs /:O`): the proxy is the host's Squid with the rendered config, the gateway the host's
nginx, and the agent a probe script (tests/egress/podman_probe.py) in place of a CLI. The outside
network gets a 198.18.0.0/15 subnet and one more container, the stand-in for the internet: Squid
resolves names only through an included hosts file and a dead resolver, so nothing leaves.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from egress.gateway import PLACEHOLDER_KEY, KeySource, render_gateway
from launcher.cli import prepare
from launcher.execute import execute
from launcher.plan import AGENT_UID, Options
from egress_certs import make_ca, make_server_cert

HERE = Path(__file__).parent
OUTSIDE_SUBNET = "198.18.77.0/24"
UPSTREAM_IP = "198.18.77.10"
REAL_KEY = "sk-ant-REAL-podman-0123456789"
TOKEN = "ghp_SHORTLIVED0123456789"


@pytest.fixture(autouse=True)
def podman_settings(monkeypatch):
    monkeypatch.setenv("CONTAINERS_CONF", str(HERE.parent / "egress" / "containers.conf"))


def podman(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True)


@pytest.fixture
def world(tmp_path):
    return make_world(tmp_path)


def make_world(tmp_path: Path) -> dict:
    """A workspace, a test CA with the stand-in's certificate, the key and token files."""
    os.chmod(tmp_path, 0o755)  # the containers' users must reach the CA and the scripts' output
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "CLAUDE.md").write_text("instructions\n")
    (ws / ".env").write_text("SECRET=1\n")
    for path in (ws, ws / "CLAUDE.md", ws / ".env"):
        os.chown(path, AGENT_UID, AGENT_UID)
    certs = tmp_path / "certs"
    certs.mkdir()
    ca = make_ca(certs)
    cert, key = make_server_cert(certs, ca, ["github.com", "api.anthropic.com"])
    for path in certs.iterdir():
        os.chmod(path, 0o644)
    (ws / "ca.pem").write_bytes(ca.read_bytes())  # the agent's /tmp is its own tmpfs
    (tmp_path / "key").write_text(REAL_KEY)
    (tmp_path / "token").write_text(TOKEN)
    out = tmp_path / "upstream-out"
    out.mkdir(mode=0o777)
    os.chmod(out, 0o777)
    return {"root": tmp_path, "ws": ws, "ca": ca, "cert": cert, "key": key, "out": out}


def stand_in_run(world, timeout: int = 120, probe_sleep: float | None = None):
    """Plan a run for the stand-in world; returns (plan, options, run_dir, host_service)."""
    root = world["root"]
    run_id = "t" + uuid.uuid4().hex[:8]
    options = Options(cli="claude", cli_args=[], workspace=world["ws"], profile="ci", engine="podman", rootfs="/",
                      key_sources=[KeySource("anthropic", file=root / "key")],
                      github_token=KeySource("github", file=root / "token"), run_id=run_id, run_dir=root / "run",
                      home=root / "home", outside_subnet=OUTSIDE_SUBNET,
                      allow=("api.anthropic.com", ".github.com"), read_only_globs=("CLAUDE.md",),
                      blocked_globs=(".env",), timeout=timeout)
    (root / "home").mkdir()
    plan, run_dir = prepare(options)

    # The only changes to the production plan: names resolve to the stand-in, the vendor is the
    # stand-in, the agent runs the probe, and the stand-in container comes and goes with the run.
    include = run_dir / "squid" / "agent-sandbox.d"
    plan.files[include / "test-hosts"] = (f"{UPSTREAM_IP} github.com api.anthropic.com\n", 0o644)
    plan.files[include / "10-test.conf"] = (
        "hosts_file /etc/squid/agent-sandbox.d/test-hosts\ndns_nameservers 127.0.0.1\n", 0o644)
    plan.files[run_dir / "gateway" / "nginx.conf"] = (render_gateway(
        ["anthropic"], agent_subnets=[plan.subnet], upstreams={"anthropic": f"https://{UPSTREAM_IP}"},
        upstream_tls_names={"anthropic": "api.anthropic.com"}, ca_file=str(world["ca"])), 0o644)
    upstream_name = f"agent-sandbox-{run_id}-upstream"
    plan.setup.insert(2, ["podman", "run", "-d", "--name", upstream_name,
                          "--network", f"{plan.names['outside']}:ip={UPSTREAM_IP}",
                          "-v", f"{world['out']}:{world['out']}", "--rootfs", "/:O",
                          "/usr/bin/python3", str(HERE / "podman_upstream.py"), str(world["cert"]),
                          str(world["key"]), str(world["out"])])
    plan.teardown.insert(0, ["podman", "rm", "-f", "-t", "0", upstream_name])
    assert plan.agent_create[-1] == "claude"
    # A host service on every address: the agent must not reach it through its network's bridge.
    host_service = socket.create_server(("0.0.0.0", 0))
    host_port = host_service.getsockname()[1]
    # The probe goes through the workspace, the agent's one mount: the repository may sit under /tmp,
    # which is the agent's own tmpfs.
    shutil.copy(HERE / "podman_probe.py", world["ws"] / "podman_probe.py")
    plan.agent_create[-1:] = ["/usr/bin/python3", "/workspace/podman_probe.py", "/workspace/ca.pem", UPSTREAM_IP,
                              str(host_port), *([str(probe_sleep)] if probe_sleep else [])]
    return plan, options, run_dir, host_service


def leftovers(run_id: str) -> bool:
    listed = podman("ps", "-a", "--format", "{{.Names}}").stdout + podman("network", "ls", "--format", "{{.Name}}").stdout
    return run_id in listed


def test_a_run_through_podman(world):
    plan, options, run_dir, host_service = stand_in_run(world)
    try:
        code = execute(plan, options, run_dir, {"anthropic": REAL_KEY}, TOKEN)
    finally:
        host_service.close()

    probe = json.loads((world["ws"] / "probe.json").read_text())
    assert code == 7  # the agent's own exit code
    # who the agent is
    assert probe["uid"]["value"] == AGENT_UID
    assert probe["cap_eff"]["value"] == "0000000000000000"
    assert probe["no_new_privs"]["value"] == "1"
    # what it holds
    environ = probe["environ"]["value"]
    assert environ["ANTHROPIC_API_KEY"] == PLACEHOLDER_KEY
    assert not any(REAL_KEY in v or TOKEN in v for v in environ.values())
    assert probe["token"]["value"] == TOKEN
    # where it can go
    assert probe["allowed"]["value"] == "upstream-ok"
    assert probe["not_allowlisted"]["value"] == 403
    assert probe["vendor_direct_via_proxy"]["value"] == 403  # the gateway serves it: not via the proxy
    assert probe["gateway"]["value"].startswith("HTTP/1.1 200") and "message_stop" in probe["gateway"]["value"]
    assert not probe["direct_upstream"]["ok"] and "unreachable" in probe["direct_upstream"]["error"]
    assert not probe["direct_proxy_other_port"]["ok"]
    assert not probe["host_via_bridge"]["ok"], probe["host_via_bridge"]
    # what it can write
    assert not probe["write_protected"]["ok"] and "Read-only" in probe["write_protected"]["error"]
    assert probe["read_blocked"]["value"] == ""
    assert probe["write_workspace"]["ok"] and (world["ws"] / "made-by-agent.txt").exists()
    assert not probe["write_root"]["ok"] and "Read-only" in probe["write_root"]["error"]
    assert probe["write_tmp"]["ok"] and probe["write_home"]["ok"]
    assert (world["ws"] / "CLAUDE.md").read_text() == "instructions\n"
    # what the vendor saw
    requests = [json.loads(line) for line in (world["out"] / "requests.jsonl").read_text().splitlines()]
    posts = [r for r in requests if r["method"] == "POST"]
    assert [r["headers"]["x-api-key"] for r in posts] == [REAL_KEY]
    # the audit
    result = json.loads((run_dir / "audit.json").read_text())
    assert [(r["host"], r["port"], r["requests"]) for r in result["network"]["reached"]] == [("github.com", 443, 1)]
    refused = {(r["host"], r["rule"]) for r in result["network"]["refused"]}
    assert refused >= {("evil.example.com", "deny_not_allowlisted"), ("api.anthropic.com", "deny_model_api")}
    assert result["model_api"]["forwarded"][0]["path"] == "/v1/messages"
    assert result["run"]["tool_denials"] == [{"command": "git push --force", "rule": "git-push-force"}]
    # nothing left behind
    assert not (run_dir / "gateway" / "keys").exists() and not (run_dir / "github-token").exists()
    assert not leftovers(options.run_id)


def test_a_run_that_overstays_is_stopped_with_exit_124(world):
    plan, options, run_dir, host_service = stand_in_run(world, timeout=8, probe_sleep=600)
    started = time.monotonic()
    try:
        code = execute(plan, options, run_dir, {"anthropic": REAL_KEY}, TOKEN)
    finally:
        host_service.close()
    assert code == 124
    assert time.monotonic() - started < 60
    assert (world["ws"] / "probe.json").exists()  # it did run before the timeout
    assert not leftovers(options.run_id)
