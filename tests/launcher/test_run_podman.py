"""agent-run against the real podman and the images CI builds, fast: a probe script takes the CLI's
place in the agent image (no model, no CLI start-up), so each run takes seconds. The outside network
is --internal and holds one more container, the stand-in for the internet (TLS with a test CA):
Squid resolves names only through an included hosts file and a dead resolver, so nothing leaves.
The end-to-end suite (tests/e2e) runs the real CLIs."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from egress.gateway import PLACEHOLDER_KEY, KeySource, render_gateway_config
from egress.gateway_github import add_github_routes
from launcher.github_app import GitHubOptions
from launcher.start import begin, memory_root
from launcher.execute import execute
from launcher.plan import AGENT_UID, Options
from egress_certs import make_ca, make_server_cert
from repos import git, make_repo, write

HERE = Path(__file__).parent
TAG = os.environ.get("AGENT_IMAGE_TAG", "test")
IMAGES = {"agent": f"agent-image:{TAG}", "proxy": f"egress-proxy:{TAG}", "gateway": f"agent-gateway:{TAG}"}
REAL_KEY = "sk-ant-REAL-podman-0123456789"
TOKEN = "ghs_SHORTLIVED0123456789abcdef"


def podman(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True)


@contextmanager
def internet(root: Path):
    """An --internal outside network and the stand-in for the internet on it."""
    missing = [ref for ref in IMAGES.values() if podman("image", "exists", ref).returncode != 0]
    assert not missing, f"{missing} missing: run .ci/install-podman-image.sh"
    root.mkdir(mode=0o755, exist_ok=True)
    os.chmod(root, 0o755)
    ca = make_ca(root)
    cert, key = make_server_cert(root, ca, ["pypi.org", "github.com", "api.anthropic.com"])
    for path in root.iterdir():
        os.chmod(path, 0o644)
    out = root / "requests"
    out.mkdir(mode=0o777)
    os.chmod(out, 0o777)
    name = f"probe-outside-{uuid.uuid4().hex[:6]}"
    for attempt in range(50):  # a /24 no other network on this machine holds
        octet = 200 + (os.getpid() + attempt) % 50
        if podman("network", "create", "--internal", "--disable-dns", "--subnet", f"198.18.{octet}.0/24",
                  name).returncode == 0:
            break
    else:
        raise AssertionError("no free 198.18.x.0/24 for the outside network")
    upstream = f"198.18.{octet}.10"
    try:
        started = podman("run", "-d", "--name", f"{name}-internet", "--network", f"{name}:ip={upstream}",
                         "-v", f"{out}:{out}", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
                         "--rootfs", "/:O", "/usr/bin/python3", str(HERE / "podman_upstream.py"), str(cert), str(key),
                         str(out))
        assert started.returncode == 0, started.stderr
        yield {"name": name, "ip": upstream, "ca": ca, "out": out}
    finally:
        podman("rm", "-f", "-t", "0", f"{name}-internet")
        podman("network", "rm", "-f", name)


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    with internet(tmp_path_factory.mktemp("internet")) as world:
        yield world


def probe_run(tmp_path: Path, outside: dict, timeout: int = 120, probe_sleep: float | None = None,
              run_id: str | None = None):
    """A run whose agent is the probe; returns (code, options, launch)."""
    os.chmod(tmp_path, 0o755)
    repo = make_repo(tmp_path, {"CLAUDE.md": "instructions\n", "probe.py": (HERE / "podman_probe.py").read_text(),
                                "ca.pem": outside["ca"].read_text()})
    write(repo, {".env": "SECRET=1\n"})
    (tmp_path / "key").write_text(REAL_KEY)
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "home").mkdir()
    run_id = run_id or "t" + uuid.uuid4().hex[:10]
    options = Options(cli="claude", cli_args=[], workspace=repo, profile="ci", images=IMAGES,
                      key_sources=[KeySource("anthropic", file=tmp_path / "key")],
                      github=GitHubOptions(token_source=KeySource("github", file=tmp_path / "token"),
                                           repository="octo/widgets"), run_id=run_id,
                      run_dir=tmp_path / "run", home=tmp_path / "home", outside_network=outside["name"],
                      upstreams={"anthropic": f"https://{outside['ip']}"}, upstream_ca=outside["ca"],
                      allow=("api.anthropic.com", "pypi.org", "github.com"), read_only_globs=("CLAUDE.md",),
                      blocked_globs=(".env",), timeout=timeout)
    launch = begin(options)
    plan, host = launch.plan, launch.host
    # What differs from a user's run: names resolve to the stand-in, the vendor's certificate names
    # api.anthropic.com at the stand-in's address, and the probe runs in place of the CLI.
    include = host.run_dir / "squid" / "agent-sandbox.d"
    plan.files[include / "test-hosts"] = (f"{outside['ip']} pypi.org github.com api.anthropic.com\n", 0o644)
    plan.files[include / "10-test.conf"] = (
        "hosts_file /etc/squid/agent-sandbox.d/test-hosts\ndns_nameservers 127.0.0.1\n", 0o644)
    plan.files[host.run_dir / "gateway" / "config.json"] = (add_github_routes(render_gateway_config(
        ["anthropic"], agent_subnets=[plan.subnet], upstreams={"anthropic": f"https://{outside['ip']}"},
        upstream_tls_names={"anthropic": "api.anthropic.com"}, ca_file="/etc/agent-gateway/upstream-ca.pem"),
        plan.github.policy), 0o644)
    host_service = socket.create_server(("0.0.0.0", 0))  # the agent must not reach it through its bridge
    agent = plan.agent_create
    image = agent.index(IMAGES["agent"])
    agent[image:] = ["--entrypoint", "/usr/bin/python3", IMAGES["agent"], "/workspace/probe.py", "/workspace/ca.pem",
                     outside["ip"], str(host_service.getsockname()[1]), *([str(probe_sleep)] if probe_sleep else [])]
    try:
        code = execute(plan, options, host, launch.source, launch.key, launch.credential, launch.record)
    finally:
        host_service.close()
    return code, options, launch


def leftovers(run_id: str) -> bool:
    listed = podman("ps", "-a", "--format", "{{.Names}}").stdout + podman("network", "ls", "--format", "{{.Name}}").stdout
    return run_id in listed


def test_a_run_through_podman(tmp_path, outside):
    code, options, launch = probe_run(tmp_path, outside)
    repo, run_id = launch.source.toplevel, options.run_id
    probe = json.loads(git(repo, "show", f"refs/agent/{run_id}/uncommitted:probe.json"))
    assert code == 7  # the agent's own exit code
    # who the agent is: uid 1000 in a user namespace of its own, nothing more
    assert probe["uid"]["value"] == AGENT_UID
    assert probe["uid_map"]["value"] == ["0", str(launch.host.uid_map[0][1]), "65536"]
    assert probe["cap_eff"]["value"] == "0000000000000000"
    assert probe["no_new_privs"]["value"] == "1"
    assert probe["seccomp"]["value"] == "2"
    # what it holds
    environ = probe["environ"]["value"]
    assert environ["ANTHROPIC_API_KEY"] == PLACEHOLDER_KEY
    assert not any(REAL_KEY in v or TOKEN in v for v in environ.values())
    # the GitHub token went to the gateway only: no process, file or folder of the container holds it
    assert probe["tokens_found"]["ok"] and probe["tokens_found"]["value"]["scanned"] > 100
    assert probe["tokens_found"]["value"]["found"] == []
    assert not probe["secrets_folder"]["ok"]
    assert not probe["read_blocked"]["ok"]  # .env was left out of the copy
    # where it can go
    assert probe["allowed"]["value"] == "upstream-ok"
    assert probe["not_allowlisted"]["value"] == 403
    assert probe["github_via_proxy"]["value"] == 403     # GitHub only through the gateway, even when allowlisted
    assert probe["vendor_direct_via_proxy"]["value"] == 403  # the gateway serves it: not via the proxy
    assert probe["gateway"]["value"].startswith("HTTP/1.1 200") and "message_stop" in probe["gateway"]["value"]
    assert not probe["direct_upstream"]["ok"] and "unreachable" in probe["direct_upstream"]["error"]
    assert not probe["direct_proxy_other_port"]["ok"]
    assert not probe["host_via_bridge"]["ok"], probe["host_via_bridge"]
    assert not probe["ipv6"]["ok"]
    # what it can write: its copy, /tmp and its home; never the image
    assert probe["write_workspace"]["ok"] and not (repo / "made-by-agent.txt").exists()
    assert git(repo, "show", f"refs/agent/{run_id}/uncommitted:made-by-agent.txt") == "x"
    assert not probe["write_root"]["ok"] and "Read-only" in probe["write_root"]["error"]
    assert probe["write_tmp"]["ok"] and probe["write_home"]["ok"]
    # what the vendor saw
    requests = [json.loads(line) for line in (outside["out"] / "requests.jsonl").read_text().splitlines()]
    posts = [r for r in requests if r["method"] == "POST" and r["path"].startswith("/v1/messages")]
    assert [r["headers"]["x-api-key"] for r in posts][-1:] == [REAL_KEY]
    # the audit
    result = json.loads((launch.host.run_dir / "audit.json").read_text())
    assert [(r["host"], r["port"], r["requests"]) for r in result["network"]["reached"]] == [("pypi.org", 443, 1)]
    refused = {(r["host"], r["rule"]) for r in result["network"]["refused"]}
    assert refused >= {("evil.example.com", "deny_not_allowlisted"), ("api.anthropic.com", "deny_model_api")}
    assert result["run"]["tool_denials"] == [{"command": "git push --force", "rule": "git-push-force"}]
    # nothing left behind; the key and the token on no disk
    assert not leftovers(run_id) and not launch.host.memory_dir.exists()
    for path in launch.host.run_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert REAL_KEY.encode() not in path.read_bytes() and TOKEN.encode() not in path.read_bytes(), path


def test_agent_run_killed_outright_is_torn_down_by_its_guardian(tmp_path, outside):
    """kill -9 leaves agent-run no wrap-up of its own: its guardian removes the containers and the
    networks, deletes the in-memory folder that held the key and the token, writes the audit, and
    marks the run killed."""
    run_id = "k" + uuid.uuid4().hex[:10]
    child = os.fork()
    if child == 0:  # agent-run, as a process of its own that can be killed outright
        try:
            probe_run(tmp_path, outside, probe_sleep=600, run_id=run_id)
        finally:
            os._exit(0)
    run_dir = tmp_path / "run"
    deadline = time.monotonic() + 120
    while f"agent-sandbox-{run_id}-agent" not in podman("ps", "--format", "{{.Names}}").stdout:
        assert time.monotonic() < deadline, "the agent never started"
        time.sleep(0.5)
    memory_dir = memory_root() / run_id
    assert memory_dir.exists() and leftovers(run_id)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    deadline = time.monotonic() + 120
    while leftovers(run_id) or json.loads((run_dir / "run.json").read_text()).get("status") != "killed":
        assert time.monotonic() < deadline, "the run was not torn down after agent-run was killed"
        time.sleep(1)
    assert not memory_dir.exists()
    record = json.loads((run_dir / "run.json").read_text())
    assert "its guardian tore the run down" in record["problems"][0]
    audit = json.loads((run_dir / "audit.json").read_text())
    assert any("guardian" in problem for problem in audit["problems"])
    # what the agent did before it was stopped is in the audit from the logs
    assert any(r["host"] == "pypi.org" for r in audit["network"]["reached"])


def test_a_run_that_overstays_is_stopped_with_exit_124(tmp_path, outside):
    started = time.monotonic()
    code, options, launch = probe_run(tmp_path, outside, timeout=8, probe_sleep=600)
    assert code == 124
    assert time.monotonic() - started < 90
    # it did run before the timeout, and its work came back
    assert "probe.json" in git(launch.source.toplevel, "ls-tree", "--name-only",
                               f"refs/agent/{options.run_id}/uncommitted")
    assert not leftovers(options.run_id)
