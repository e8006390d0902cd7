"""The GitHub wall in containers: the real gateway image with the routes launcher/github_app.run_pieces
renders, the real agent image's git, gh and curl as a hostile agent on the internal network, the fake
GitHub in its own container on the outside network. Judged from the host: the fake's effects file
and the gateway's access log.

This is the container plumbing agent-run will use (port 80 for an unprivileged gateway, the host
names, the agent's environment), proven before agent-run calls it; agent-run's own end-to-end suite
is the proof of the user's command."""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from github_setup import APP_ID, REPOSITORY, RUN_ID

from egress.gateway import render_gateway_config, write_secrets
from image import layout
from launcher import github_app as ga
from renderer.model import load

ROOT = Path(__file__).resolve().parents[2]
TAG = os.environ.get("AGENT_IMAGE_TAG", "test")
GATEWAY_TAG = os.environ.get("AGENT_GATEWAY_TAG", TAG)
ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "tests" / "egress" / "containers.conf")}
NS = f"refs/heads/agent/{RUN_ID}"
INSTALL_HINT = "build and load the images with: bash .ci/install-podman-image.sh"

HOSTILE = r"""
set -u
cd /tmp
step() { echo "== $1"; }
step clone; git clone -q https://github.com/octo/widgets.git w && cd w; echo "rc=$?"
git -c user.name=a -c user.email=a@example.com commit -q --allow-empty -m work
step namespace; git push -q origin HEAD:refs/heads/agent/RUN/fix; echo "rc=$?"
git checkout -q --orphan rewritten
git -c user.name=a -c user.email=a@example.com commit -q --allow-empty -m rewritten
step force; git push -q --force origin HEAD:main; echo "rc=$?"
cp /usr/bin/git /tmp/notgit
step force-copy; /tmp/notgit push -q origin +HEAD:main; echo "rc=$?"
step force-config; GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.push GIT_CONFIG_VALUE_0=+HEAD:refs/heads/main git push -q origin; echo "rc=$?"
step delete-copy; /tmp/notgit push -q origin :feature; echo "rc=$?"
step gh-archive; gh api -X PATCH repos/octo/widgets -F archived=true >/dev/null; echo "rc=$?"
step gh-rename; gh repo rename renamed --yes >/dev/null; echo "rc=$?"
step gh-secrets; gh api repos/octo/widgets/actions/secrets >/dev/null; echo "rc=$?"
step curl-delete; curl -s -o /dev/null -w '%{http_code}\n' -X DELETE -H 'Host: api.github.localhost' -H 'Authorization: token ghp_FOUNDINANISSUE0000000000000000000000' http://agent-gateway/repos/octo/widgets
step curl-direct; curl -s -m 3 -o /dev/null -X DELETE http://FAKE:8080/repos/octo/widgets; echo "rc=$?"
step token; env | grep -c -e ghs_ -e FAKETOKEN || true
"""


def podman(*argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run(["podman", *argv], capture_output=True, text=True, env=ENV, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(argv[:3])}: {done.stderr}")
    return done


@pytest.fixture(scope="module")
def images():
    for image in (layout.AGENT_IMAGE.tagged(TAG), layout.GATEWAY_IMAGE.tagged(GATEWAY_TAG)):
        if podman("image", "exists", image, check=False).returncode != 0:
            pytest.fail(f"{image} is not loaded in podman; {INSTALL_HINT}")
    return layout.AGENT_IMAGE.tagged(TAG), layout.GATEWAY_IMAGE.tagged(GATEWAY_TAG)


def test_the_github_wall_in_containers(images, tmp_path, app_key):
    agent_image, gateway_image = images
    unique = uuid.uuid4().hex[:8]
    a, b = _free_subnets(2)
    internal, outside = f"198.19.{a}.0/24", f"198.19.{b}.0/24"
    gateway_ip, agent_ip, fake_ip = f"198.19.{a}.3", f"198.19.{a}.10", f"198.19.{b}.5"
    names = {k: f"ghwall-{unique}-{k}" for k in ("int", "ext", "fake", "gateway", "agent")}
    work = tmp_path / "run"
    for folder in ("fake", "secrets", "state", "log"):
        (work / folder).mkdir(parents=True)
    (work / "fake" / "app.pub").write_bytes(app_key[1])
    key = work / "app.pem"
    try:
        podman("network", "create", "--internal", "--disable-dns", "--subnet", internal, names["int"])
        podman("network", "create", "--subnet", outside, names["ext"])
        podman("run", "-d", "-i", "--name", names["fake"], "--network", f"{names['ext']}:ip={fake_ip}",
               "-v", f"{work / 'fake'}:/fake",
               "--env", f"PYTHONPATH={ROOT}", "--rootfs", "/:O", sys.executable, str(ROOT / "tests" / "github" / "fake_github.py"),
               "--root", "/fake/github", "--app-id", str(APP_ID), "--public-key", "/fake/app.pub",
               "--installation", "77", "--repository", REPOSITORY, "--address", "0.0.0.0", "--api-port", "8080",
               "--git-port", "8081", "--effects", "/fake/effects.jsonl")
        deadline = time.monotonic() + 60
        while "api_url" not in (logs := podman("logs", names["fake"], check=False)).stdout:
            assert time.monotonic() < deadline, logs.stderr
            time.sleep(0.2)
        # The host reaches the fake on the outside network it made (the loader allows plain http
        # only on loopback, so the config is built here with the same key).
        config = ga.AppConfig(issuer=str(APP_ID), private_key=app_key[0], key_file=key, installation_id=77,
                              api_url=f"http://{fake_ip}:8080", permissions=dict(ga.RUN_PERMISSIONS), source="test")
        credential = ga.GitHubCredential(*(lambda m: (m.token, REPOSITORY, "app", m))(ga.mint_token(config, REPOSITORY)))

        base = render_gateway_config(["anthropic"], agent_subnets=[internal], listen_address="0.0.0.0")
        pieces = ga.run_pieces(repository=credential.repository, with_token=True, tripwire=load("autonomous").tripwire,
                               run_id=RUN_ID,
                               gateway_config_text=base, gateway_address=gateway_ip, gateway_host="agent-gateway",
                               allow=list(load("autonomous").network_allow), registries=(),
                               upstreams={"git": f"http://{fake_ip}:8081", "api": f"http://{fake_ip}:8080"})
        (work / "config.json").write_text(pieces.gateway_config)
        write_secrets(work / "secrets", {"anthropic": "sk-ant-" + "k" * 30, **credential.secrets()})
        for folder in ("state", "log"):
            os.chown(work / folder, layout.GATEWAY_UID, layout.GATEWAY_GID)
        podman("run", "-d", "--name", names["gateway"], "--network", f"{names['int']}:ip={gateway_ip}",
               "--network", names["ext"], "--user", f"{layout.GATEWAY_UID}:{layout.GATEWAY_GID}", "--read-only",
               "--cap-drop", "ALL", "--security-opt", "no-new-privileges", *pieces.gateway_create_args,
               "-v", f"{work / 'config.json'}:{layout.GATEWAY_CONFIG}:ro",
               "-v", f"{work / 'secrets'}:{layout.GATEWAY_SECRETS_DIR}:ro",
               "-v", f"{work / 'state'}:{layout.GATEWAY_STATE_DIR}", "-v", f"{work / 'log'}:{layout.GATEWAY_LOG_DIR}",
               gateway_image)
        deadline = time.monotonic() + 30
        while not (work / "state" / "ready").exists():
            assert time.monotonic() < deadline, podman("logs", names["gateway"], check=False).stderr
            time.sleep(0.1)
        shutil.rmtree(work / "secrets")     # as agent-run does once the gateway is ready

        env = [a for k, v in sorted(pieces.agent_env.items()) for a in ("--env", f"{k}={v}")]
        hosts = [a for h in [*pieces.agent_add_hosts, f"agent-gateway:{gateway_ip}"] for a in ("--add-host", h)]
        script = HOSTILE.replace("RUN", RUN_ID).replace("FAKE", fake_ip)
        agent = podman("run", "--rm", "--name", names["agent"], "--network", f"{names['int']}:ip={agent_ip}",
                       *hosts, "--user", "1000:1000", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                       "--read-only", "--tmpfs", "/tmp:rw,exec", "--tmpfs", "/home/agent:rw", *env,
                       "--entrypoint", "/bin/bash", agent_image, "-c", script, check=False, timeout=300)
        steps = _steps(agent.stdout)
        assert steps["clone"] == ["rc=0"] and steps["namespace"] == ["rc=0"], agent.stdout + agent.stderr
        # Plain `git push --force` meets the image's tripwire first; the copied binary and the
        # configuration route reach the wall.
        for name in ("force", "force-copy", "force-config", "delete-copy", "gh-archive", "gh-rename", "gh-secrets"):
            assert steps[name] and steps[name][-1] != "rc=0", (name, agent.stdout, agent.stderr)
        assert steps["curl-delete"] == ["403"] and steps["curl-direct"] != ["rc=0"]
        assert steps["token"] == ["0"]

        effects = [json.loads(line) for line in (work / "fake" / "effects.jsonl").read_text().splitlines()]
        assert "fetch" in [e["kind"] for e in effects]          # the clone, recorded by the fake
        assert [e["kind"] for e in effects if e["kind"] != "fetch"] == ["token-issued", "ref-created"], effects
        assert [e["ref"] for e in effects if e["kind"] == "ref-created"] == [f"{NS}/fix"]
        log = [json.loads(line) for line in (work / "log" / "access.log").read_text().splitlines()]
        refused = {e["rule"] for e in log if e["decision"] != "forward"}
        assert {"github-push-namespace", "git-push-delete", "gh-repo-destructive", "gh-secret"} <= refused, log
        assert credential.token not in (work / "log" / "access.log").read_text()
        assert credential.revoke() is None
    finally:
        for name in ("agent", "gateway", "fake"):
            podman("rm", "-f", "-t", "1", names[name], check=False)
        for name in ("int", "ext"):
            podman("network", "rm", names[name], check=False)


def _free_subnets(count: int) -> list[int]:
    """Third octets of 198.19.x.0/24 networks no podman network holds (several checkouts test on
    one machine; the benchmark range keeps the traffic off every real network)."""
    names = podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    taken = set()
    for info in json.loads(podman("network", "inspect", *names).stdout or "[]"):
        for subnet in info.get("subnets") or []:
            taken.add(subnet.get("subnet", ""))
    free = [n for n in range(1, 255) if f"198.19.{n}.0/24" not in taken]
    random.shuffle(free)
    return free[:count]


def _steps(output: str) -> dict:
    steps, current = {}, None
    for line in output.splitlines():
        if line.startswith("== "):
            current = line[3:]
            steps[current] = []
        elif current is not None and line.strip():
            steps[current].append(line.strip())
    return steps
