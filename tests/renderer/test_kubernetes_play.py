"""The agent's pod as rendered for Kubernetes really runs: `podman kube play` of the SandboxTemplate's
pod (the stand-in image CI builds), with the real Claude Code against the scripted model. The
entrypoint's preflight must pass under the pod's own security settings (uid 1000, read-only root,
no capabilities, no privilege escalation, RuntimeDefault seccomp, no service account token), the
CLI must complete, and the task must hand its work over as the launcher takes it (a bundle read
through exec, then the `fetched` mark, then the pod ends with the CLI's code).

What podman does not do as a kubelet does, the test does in its place, and nothing else:
- `$(AGENT_GATEWAY_SERVICE_HOST)` in the variables is expanded from the Services' variables by a
  kubelet; podman has no Services: the test expands them (the gateway's address is the scripted
  model's, on port 8081, as the gateway's Anthropic route would be).
- an `emptyDir` with `medium: Memory` is a fresh tmpfs that a kubelet mounts and binds into the
  container; podman 4.3 makes a named volume on disk instead (the preflight rightly refuses it as
  a writable host folder): the test mounts a fresh tmpfs per such volume and gives it as a
  hostPath. The disk emptyDir (the workspace) is a fresh host folder.
- a configMap key bound at a path (`subPath`, the baked $HOME files) is one root-owned read-only
  file; podman 4.3 binds the volume's whole folder there: the test binds the one file.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RENDERED = ROOT / "rendered" / "kubernetes" / "autonomous"
TAG = os.environ.get("AGENT_IMAGE_TAG", "test")
SERVICE_VARIABLES = ("AGENT_PROXY_SERVICE_HOST", "AGENT_GATEWAY_SERVICE_HOST")


# podman's default ulimits exceed what a container host like CI's allows: the project's settings.
ENV = {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF",
                                                       str(ROOT / "image" / "debian" / "containers.conf"))}


def podman(*args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=ENV)
    if check:
        assert done.returncode == 0, f"podman {' '.join(args[:3])}: {done.stderr}"
    return done


def documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((RENDERED / name).read_text()) if d]


def as_a_kubelet_would(template: dict, config_maps: list, services: dict, claim_env: dict, folders: Path,
                       tmpfs: list) -> dict:
    """The template's pod, with the claim's variables added (as the claim controller does) and the
    two things podman leaves undone, done (see the module's docstring)."""
    pod_template = json.loads(json.dumps(template["spec"]["podTemplate"]))
    spec = pod_template["spec"]
    container = spec["containers"][0]
    container["image"] = f"localhost/agent-image:{TAG}"
    for variable in container["env"]:
        for name, value in services.items():
            variable["value"] = variable["value"].replace(f"$({name})", value)
    container["env"] = ([{"name": k, "value": v} for k, v in services.items()] + container["env"]
                        + [{"name": k, "value": v} for k, v in claim_env.items()])
    for volume in spec["volumes"]:
        empty = volume.pop("emptyDir", None)
        if empty is None:
            continue
        folder = folders / volume["name"]
        folder.mkdir(mode=0o777)
        os.chmod(folder, 0o777)
        if empty.get("medium") == "Memory":
            size = empty["sizeLimit"].replace("Gi", "g").replace("Mi", "m")
            tmpfs.append(folder)
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"mode=1777,size={size}", "tmpfs", str(folder)], check=True)
        volume["hostPath"] = {"path": str(folder), "type": "Directory"}
    # A configMap key bound at a path (subPath): podman 4.3 binds the whole volume's folder there;
    # a kubelet binds the one file, root's, read-only. The test gives podman that file.
    by_name = {v["name"]: v for v in spec["volumes"]}
    for mount in list(container["volumeMounts"]):
        volume = by_name.get(mount["name"], {})
        if "subPath" not in mount or "configMap" not in volume:
            continue
        data = next(d for d in config_maps if d["metadata"]["name"] == volume["configMap"]["name"])["data"]
        path = folders / f"{mount['name']}-{mount['subPath']}"
        path.write_text(data[mount.pop("subPath")])
        os.chmod(path, 0o444)
        name = f"file-{len(spec['volumes'])}"
        spec["volumes"].append({"name": name, "hostPath": {"path": str(path), "type": "File"}})
        mount["name"] = name
    spec["volumes"] = [v for v in spec["volumes"] if any(m["name"] == v["name"] for m in container["volumeMounts"])]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"kubeplay-{uuid.uuid4().hex[:8]}",
                                                           "labels": pod_template["metadata"]["labels"]},
           "spec": spec}
    return pod


@pytest.fixture
def played():
    for ref in (f"agent-image:{TAG}",):
        assert podman("image", "exists", ref, check=False).returncode == 0, \
            f"{ref} missing: run .ci/install-podman-image.sh"
    assert shutil.which("catatonit"), "podman kube play needs catatonit for its pod: run .ci/install-kubernetes.sh"
    folders = Path(tempfile.mkdtemp(prefix="kubeplay-"))
    os.chmod(folders, 0o755)
    network = f"kubeplay-{os.getpid()}-{uuid.uuid4().hex[:4]}"
    for attempt in range(50):
        octet = 50 + (os.getpid() + attempt) % 50
        if podman("network", "create", "--internal", "--disable-dns", "--subnet", f"198.18.{octet}.0/24", network,
                  check=False).returncode == 0:
            break
    else:
        raise AssertionError("no free 198.18.x.0/24")
    vendor_out = folders / "vendor"
    vendor_out.mkdir(mode=0o777)
    os.chmod(vendor_out, 0o777)
    vendor = f"{network}-vendor"
    made: list = []
    try:
        podman("run", "-d", "--name", vendor, "--network", f"{network}:ip=198.18.{octet}.10", "-v",
               f"{vendor_out}:{vendor_out}", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
               "--rootfs", "/:O", "/usr/bin/python3", str(ROOT / "tests/e2e/fake_vendor.py"), "claude", "pod", "8081",
               str(vendor_out))
        deadline = time.monotonic() + 30
        while not (vendor_out / "ready").exists():
            assert time.monotonic() < deadline, podman("logs", vendor, check=False).stderr
            time.sleep(0.1)
        template = documents("agent-template.yaml")[0]
        config_maps = documents("agent-run-task.yaml")   # the task, the baked home files
        services = {"AGENT_PROXY_SERVICE_HOST": f"198.18.{octet}.2", "AGENT_GATEWAY_SERVICE_HOST": f"198.18.{octet}.10"}
        claim_env = {"AGENT_RUN_CLI": "claude", "AGENT_RUN_ARGS": json.dumps(["-p", "Do the job."]),
                     "AGENT_RUN_ID": "kubeplay", "AGENT_RUN_COLLECT_TIMEOUT": "120"}
        pod = as_a_kubelet_would(template, config_maps, services, claim_env, folders, made)
        manifest = folders / "pod.yaml"
        manifest.write_text(yaml.safe_dump_all([*config_maps, pod], sort_keys=False))
        play = podman("kube", "play", "--network", network, str(manifest), check=False)
        assert play.returncode == 0, play.stderr
        yield {"pod": pod, "container": f"{pod['metadata']['name']}-agent", "vendor": vendor_out,
               "manifest": manifest, "template": template}
    finally:
        podman("kube", "down", str(folders / "pod.yaml"), check=False)
        podman("volume", "rm", "-f", "agent-run-task", "agent-home-autonomous", check=False)
        podman("rm", "-f", "-t", "0", vendor, check=False)
        podman("network", "rm", "-f", network, check=False)
        for folder in made:
            subprocess.run(["umount", str(folder)], check=False)
        shutil.rmtree(folders, ignore_errors=True)


def wait_for_log(container: str, text: str, seconds: int = 240) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        logs = podman("logs", container, check=False)
        both = logs.stdout + logs.stderr
        if text in both:
            return both
        state = podman("inspect", container, "--format", "{{.State.Status}}", check=False).stdout.strip()
        assert state in ("running", "created", "configured", "initialized"), f"{state}:\n{both[-3000:]}"
        time.sleep(1)
    raise AssertionError(f"no {text!r} in {seconds} s:\n{both[-3000:]}")


def test_the_rendered_agent_pod_runs_the_cli_under_its_own_security_settings(played):
    container = played["container"]
    logs = wait_for_log(container, "agent-run-task: done ")
    assert "refused" not in logs, logs[-3000:]
    summary = json.loads(logs.split("agent-run-task: done ", 1)[1].splitlines()[0])
    assert summary == {"bundle": True, "collected": 0, "exit_code": 0, "report": False}, logs[-3000:]
    # what podman was asked for, from the outside
    inspected = json.loads(podman("inspect", container).stdout)[0]
    host = inspected["HostConfig"]
    assert inspected["Config"]["User"] == "1000:1000"
    assert host["ReadonlyRootfs"] is True and "no-new-privileges" in " ".join(host["SecurityOpt"])
    assert not [m for m in inspected["Mounts"] if "serviceaccount" in m["Destination"]]
    # the work, taken as agent-run takes it: the bundle through exec, then the mark
    bundle = base64.b64decode(podman("exec", container, "base64", "-w0", "/tmp/agent-run-out/result.bundle").stdout)
    scratch = Path(tempfile.mkdtemp(prefix="kubeplay-bundle-"))
    try:
        (scratch / "result.bundle").write_bytes(bundle)
        subprocess.run(["git", "init", "-q", str(scratch / "repo")], check=True)
        subprocess.run(["git", "-C", str(scratch / "repo"), "fetch", "-q", str(scratch / "result.bundle"),
                        "refs/heads/main:refs/heads/from-pod"], check=True)

        def shown(path: str) -> str:
            return subprocess.run(["git", "-C", str(scratch / "repo"), "show", f"from-pod:{path}"], check=True,
                                  capture_output=True, text=True).stdout
        assert shown("uid.txt") == "1000\n"
        status = dict(line.split(":\t") for line in shown("status.txt").splitlines())
        assert status["CapEff"] == "0000000000000000" and status["CapBnd"] == "0000000000000000"
        assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"
        assert "Read-only file system" in shown("root-fs.txt")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    podman("exec", container, "touch", "/tmp/agent-run-out/fetched")
    deadline = time.monotonic() + 60
    while podman("inspect", container, "--format", "{{.State.Status}}").stdout.strip() != "exited":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert podman("inspect", container, "--format", "{{.State.ExitCode}}").stdout.strip() == "0"
    # the model was reached with the placeholder only: the key lives in the gateway alone
    requests = [json.loads(line) for line in (played["vendor"] / "requests.jsonl").read_text().splitlines()]
    assert {r["headers"].get("x-api-key") for r in requests if r["method"] == "POST"} == {"agent-sandbox-placeholder"}


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
