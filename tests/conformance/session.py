"""One scripted conversation with a real CLI, as the image runs it: `agent-entrypoint TOOL ARGS` as
uid 1000 with AGENT_SANDBOX=1, the rendered image root (image_root.py) at its real paths, inside a
container-like sandbox (container_like.py) so the entrypoint's boundary preflight runs unweakened,
against a scripted fake model server on 127.0.0.1 (fakes.py).

The scenario tests and the demo (demo/demo.py) drive their sessions through this module.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from .container_like import ContainerLikeSandbox
from .drivers import bypass_args, connection_env
from .fakes import FakeModelServer, Scenario, fake_for
from .image_root import build_image_root
from .sandbox import RunResult, Sandbox, entrypoint_launcher

ENTRYPOINT = "/usr/local/bin/agent-entrypoint"


# no_new_privs as a container engine sets it (dropping the bounding set would need root).
LAUNCHER_PREFIX = ("/usr/bin/setpriv", "--no-new-privs", ENTRYPOINT)


BYPASS_TOKENS = ("--dangerously-skip-permissions", "--dangerously-bypass-approvals-and-sandbox")


REPORT_NAME = "agent-report.json"  # the ci run report, in $HOME unless AGENT_REPORT says otherwise


def image_tree(folder: Path, profiles: Sequence[str] = ("autonomous", "ci")) -> Path:
    """The rendered image root (config, manifest, guard, entrypoint) under `folder`."""
    return build_image_root(Path(folder) / "image-root", tuple(profiles))


def path_launcher(tool: str, args: Sequence[str]) -> list[str]:
    """The pinned CLI itself, from PATH as the image has it (no entrypoint)."""
    return [f"/usr/local/bin/{tool}", *args]


def container_sandbox(tree: Path | None, *, through_entrypoint: bool = True) -> ContainerLikeSandbox:
    launcher = entrypoint_launcher(LAUNCHER_PREFIX) if through_entrypoint else path_launcher
    return ContainerLikeSandbox(tree, launcher=launcher)


def default_mode_args(cli: str, server: FakeModelServer) -> list[str]:
    """The harness's headless arguments with every bypass taken out: the entrypoint adds its own,
    and a run without the entrypoint stays in the CLI's default mode."""
    args = [a for a in bypass_args(cli, server, machine_output=False) if a not in BYPASS_TOKENS]
    if cli == "gemini":
        index = args.index("--approval-mode")
        del args[index:index + 2]
    return args


@dataclass
class Session:
    cli: str
    result: RunResult
    server: FakeModelServer
    sandbox: Sandbox

    def result_for(self, step: str) -> str:
        """The tool result the model got for `step` (one result per step, in order)."""
        index = list(self.server.scenario.steps).index(step)
        results = self.server.tool_results
        if index >= len(results):
            raise AssertionError(f"{self.cli}: no tool result for step {index} {step!r} (got {len(results)}); "
                                 f"exit {self.result.returncode}, stderr:\n{self.result.stderr[-3000:]}")
        return results[index].text

    def report(self) -> dict:
        return json.loads((self.sandbox.home / REPORT_NAME).read_text())


def session_env(cli: str, sandbox: Sandbox, server: FakeModelServer,
                overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """default_env() + AGENT_SANDBOX=1 + the fake's connection, then `overrides` (None removes)."""
    env = sandbox.default_env({"AGENT_SANDBOX": "1", **connection_env(cli, server)})
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_session(cli: str, sandbox: Sandbox, scenario: Scenario, *,
                env: Mapping[str, str | None] | None = None, timeout: float = 150.0) -> Session:
    """One headless session of `cli` in `sandbox` against a fresh fake playing `scenario`."""
    with fake_for(cli, scenario) as server:
        result = sandbox.run(cli, default_mode_args(cli, server), env=session_env(cli, sandbox, server, env),
                             timeout=timeout)
    return Session(cli, result, server, sandbox)


def run_as_root(sandbox: Sandbox, argv: Sequence[str], env: Mapping[str, str], timeout: float = 60.0) -> RunResult:
    """`argv` in the sandbox's namespace (same mounts, same cwd) as real uid 0, like
    `docker run --user 0`: Sandbox.run always drops to uid 1000."""
    command = ["/usr/bin/unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
               "--mount-proc", "/bin/sh", "-c", sandbox._namespace_script(), "sandbox", *argv]
    started = time.monotonic()
    try:
        done = subprocess.run(command, env=dict(env), cwd=str(sandbox.base), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        return RunResult(list(argv), -9, str(expired.stdout or ""), str(expired.stderr or ""),
                         time.monotonic() - started, True)
    return RunResult(list(argv), done.returncode, done.stdout, done.stderr, time.monotonic() - started, False)
