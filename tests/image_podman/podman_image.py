"""The Debian stand-in image under podman, driven with the docker client: shared by the tests
and benchmarks/image_podman_bench.py.

.ci/install-podman-image.sh builds image/debian/build.py's archives and loads them as
agent-image:test, egress-proxy:test and agent-gateway:test. Here: a private `podman system service` on a socket in a temp folder (the
docker client talks to it through DOCKER_HOST), and `docker run` of the image against the
conformance harness's fake model servers. Model traffic is the one reason for `--network host`:
the fake listens on the host's 127.0.0.1. Every other run uses `--network none`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))  # the conformance package (fake model servers)

from conformance.drivers import GEMINI_MODEL  # noqa: E402
from conformance.fakes import FakeModelServer  # noqa: E402
from image import layout  # noqa: E402

CONTAINERS_CONF = REPO / "image" / "debian" / "containers.conf"
TAG = os.environ.get("AGENT_IMAGE_TAG", "test")  # test: what .ci/install-podman-image.sh builds
IMAGE = layout.AGENT_IMAGE.tagged(TAG)
CACHE = Path(os.environ.get("AGENT_IMAGE_CACHE", "/var/cache/agent-sandbox/image-debian"))


def archive_of(image: layout.Image) -> Path:
    return CACHE / f"{image.name}-{TAG}.tar"


ARCHIVE = archive_of(layout.AGENT_IMAGE)
AGENT_UID = layout.AGENT_UID
INSTALL_HINT = "build and load it with: bash .ci/install-podman-image.sh"
# What a careful launcher adds; keeps the entrypoint's preflight warnings out of the way.
HARDENING = ("--cap-drop=ALL", "--security-opt=no-new-privileges", "--pids-limit=512", "--memory=2g")
PROMPT = "Run the scripted commands."


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


class PodmanService:
    """`podman system service` on a private unix socket; the docker client's DOCKER_HOST."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="agent-podman-"))
        self.socket = self.folder / "podman.sock"
        self.docker_config = self.folder / "docker-config"  # the client never touches ~/.docker
        self.docker_config.mkdir()
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> "PodmanService":
        log = open(self.folder / "service.log", "wb")
        self.process = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
            env=podman_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"podman system service exited {self.process.returncode}: "
                                   f"{(self.folder / 'service.log').read_text(errors='replace')[-2000:]}")
            if self.socket.exists() and self.docker(["version", "--format", "{{.Server.Version}}"]).returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"podman system service did not answer on {self.socket} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def client_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        return {**env, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_CONFIG": str(self.docker_config)}

    def docker(self, args: list[str], timeout: float = 120.0, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", *args], env=self.client_env(), capture_output=True, text=True,
                              timeout=timeout, **kwargs)

    def run(self, args: list[str], timeout: float = 180.0) -> subprocess.CompletedProcess:
        """`docker run ARGS` and the container's exit code. Not --rm: with --rm, podman 4.3's
        compat API reports exit 0 to the docker client whatever the container returned."""
        name = f"agent-image-test-{uuid.uuid4().hex[:12]}"
        try:
            return self.docker(["run", "--name", name, *args], timeout=timeout)
        finally:
            self.docker(["rm", "--force", name])

    def popen_run(self, args: list[str]) -> tuple[str, subprocess.Popen]:
        name = f"agent-image-bench-{uuid.uuid4().hex[:12]}"
        process = subprocess.Popen(["docker", "run", "--name", name, *args], env=self.client_env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return name, process

    def image_id(self) -> str | None:
        result = self.docker(["image", "inspect", "--format", "{{.Id}}", IMAGE])
        return result.stdout.strip() if result.returncode == 0 else None


def make_workspace(parent: Path) -> Path:
    """An empty project folder owned by the agent (uid 1000), as a launcher mounts it."""
    workspace = parent / "workspace"
    workspace.mkdir()
    os.chown(workspace, AGENT_UID, AGENT_UID)
    os.chmod(workspace, 0o755)
    return workspace


def git_with_remote(workspace: Path) -> tuple[Path, Path]:
    """workspace/project: a repository with one commit; workspace/remote.git: its bare origin
    with no branch yet. Pushing to it leaves a branch there: the visible effect of a push."""
    project, remote = workspace / "project", workspace / "remote.git"
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(workspace), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    for argv in (["git", "init", "-q", "--bare", str(remote)],
                 ["git", "init", "-q", "-b", "main", str(project)],
                 ["git", "-C", str(project), "commit", "-q", "--allow-empty", "-m", "start"],
                 ["git", "-C", str(project), "remote", "add", "origin", "../remote.git"]):
        subprocess.run(argv, env=env, check=True, capture_output=True)
    subprocess.run(["chown", "-R", f"{AGENT_UID}:{AGENT_UID}", str(workspace)], check=True)
    return project, remote


def remote_branches(remote: Path) -> list[str]:
    heads = remote / "refs" / "heads"
    packed = remote / "packed-refs"
    names = sorted(p.name for p in heads.iterdir()) if heads.is_dir() else []
    if packed.is_file():
        names += [line.split()[1] for line in packed.read_text().splitlines()
                  if line and not line.startswith("#") and len(line.split()) == 2]
    return names


def connection(cli: str, server: FakeModelServer) -> tuple[dict[str, str], list[str]]:
    """Env and CLI arguments that point `cli` in the container at the fake on the host's loopback.
    The policy (bypass, deny rules, shims) is the image's own: nothing here adds or removes any."""
    if cli == "claude":
        return ({"ANTHROPIC_BASE_URL": server.base_url, "ANTHROPIC_API_KEY": "sk-ant-fake-image"},
                ["-p", PROMPT])
    if cli == "codex":
        provider = {
            "model": '"gpt-fake"', "model_provider": '"fake"', "model_providers.fake.name": '"fake"',
            "model_providers.fake.base_url": json.dumps(f"{server.base_url}/v1"),
            "model_providers.fake.env_key": '"FAKE_API_KEY"', "model_providers.fake.wire_api": '"responses"',
            "model_providers.fake.request_max_retries": "0", "model_providers.fake.stream_max_retries": "0",
        }
        args = ["exec", "--skip-git-repo-check"]
        for key, value in provider.items():
            args += ["-c", f"{key}={value}"]
        return {"FAKE_API_KEY": "sk-fake-image"}, args + [PROMPT]
    if cli == "gemini":
        return ({"GEMINI_API_KEY": "fake-image", "GOOGLE_GEMINI_BASE_URL": server.base_url,
                 "GEMINI_CLI_TRUST_WORKSPACE": "true"},
                ["-m", GEMINI_MODEL, "-p", PROMPT])
    raise ValueError(f"unknown CLI {cli!r}")


@dataclass
class ContainerRun:
    returncode: int
    stdout: str
    stderr: str


def run_args(cli: str, server: FakeModelServer, workspace: Path, extra: Sequence[str] = ()) -> list[str]:
    env, args = connection(cli, server)
    argv = ["--network", "host", *HARDENING, "-v", f"{workspace}:/workspace"]
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    return argv + list(extra) + [IMAGE, cli, *args]


def run_cli(service: PodmanService, cli: str, server: FakeModelServer, workspace: Path,
            timeout: float = 180.0) -> ContainerRun:
    result = service.run(run_args(cli, server, workspace), timeout=timeout)
    return ContainerRun(result.returncode, result.stdout, result.stderr)
