"""How to point each real CLI at its fake model server and run it unattended.

The connection to the fake lives in environment variables and command-line
arguments wherever the CLI allows it, so the config tree under test (hand-written
today, rendered later) stays pure policy. Gemini is the exception: its auth pin
exists only as a settings key, so `connection_files` adds ~/.gemini/settings.json,
a file the image root does not render.

`drive()` is the one-call entry point: start the fake, lay out the sandbox, run the
CLI in bypass mode, stop the fake, return everything a test asserts on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from .fakes import FakeModelServer, Scenario, fake_for
from .sandbox import Launcher, RunResult, Sandbox, direct_launcher, make_config_tree

CLIS = ("claude", "codex", "gemini")
PROMPT = "Run the scripted commands."
GEMINI_MODEL = "gemini-2.5-flash"  # a concrete model skips Gemini's model-router request


def connection_env(cli: str, server: FakeModelServer) -> dict[str, str]:
    """Variables that send `cli` to the fake server and keep it off every other host."""
    if cli == "claude":
        return {
            "ANTHROPIC_BASE_URL": server.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-fake-conformance",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_AUTOUPDATER": "1",
        }
    if cli == "codex":
        return {"FAKE_API_KEY": "sk-fake-conformance"}
    if cli == "gemini":
        return {
            "GEMINI_API_KEY": "fake-conformance",
            "GOOGLE_GEMINI_BASE_URL": server.base_url,
            "GEMINI_CLI_TRUST_WORKSPACE": "true",
            "GEMINI_CLI_NO_RELAUNCH": "true",
        }
    raise ValueError(f"unknown CLI {cli!r}; expected one of {CLIS}")


def connection_files(cli: str) -> dict[str, str]:
    """Files (config-tree relative) the CLI needs to talk to the fake at all."""
    if cli == "gemini":
        # Without the auth pin a custom base URL exits 41 "Invalid auth method selected."
        settings = {"security": {"auth": {"selectedType": "gemini-api-key"}},
                    "privacy": {"usageStatisticsEnabled": False}}
        return {"home/agent/.gemini/settings.json": json.dumps(settings, indent=2) + "\n"}
    return {}


def bypass_args(cli: str, server: FakeModelServer, *, machine_output: bool, prompt: str = PROMPT) -> list[str]:
    """Arguments for one headless run in the CLI's bypass posture."""
    if cli == "claude":
        args = ["-p", prompt, "--dangerously-skip-permissions"]
        return args + (["--output-format", "stream-json", "--verbose"] if machine_output else [])
    if cli == "codex":
        overrides = {
            "model": '"gpt-fake"',
            "model_provider": '"fake"',
            "model_providers.fake.name": '"fake"',
            "model_providers.fake.base_url": json.dumps(f"{server.base_url}/v1"),
            "model_providers.fake.env_key": '"FAKE_API_KEY"',
            "model_providers.fake.wire_api": '"responses"',
            "model_providers.fake.request_max_retries": "0",
            "model_providers.fake.stream_max_retries": "0",
            "analytics.enabled": "false",
            "features.plugins": "false",
            "features.unbounded_connection_retries": "false",
        }
        args = ["exec", "--dangerously-bypass-approvals-and-sandbox", "--skip-git-repo-check"]
        for key, value in overrides.items():
            args += ["-c", f"{key}={value}"]
        return args + (["--json"] if machine_output else []) + [prompt]
    if cli == "gemini":
        args = ["-m", GEMINI_MODEL, "-p", prompt, "--approval-mode", "yolo"]
        return args + (["-o", "stream-json"] if machine_output else [])
    raise ValueError(f"unknown CLI {cli!r}; expected one of {CLIS}")


@dataclass
class Drive:
    """One finished run: the CLI's result, what the fake saw, and the sandbox (still on disk)."""

    cli: str
    result: RunResult
    server: FakeModelServer
    sandbox: Sandbox

    @property
    def tool_result_texts(self) -> list[str]:
        return [t.text for t in self.server.tool_results]


def drive(cli: str, scenario: Scenario | Callable[[Sandbox], Scenario], config_root: Path | str, *,
          machine_output: bool = True, launcher: Launcher = direct_launcher,
          extra_env: Mapping[str, str] | None = None, extra_args: Sequence[str] = (),
          timeout: float = 120.0, with_connection_files: bool = True) -> Drive:
    """Run `cli` against a fake playing `scenario`, with the config tree at `config_root`.

    `scenario` may be a function of the sandbox, for steps that need its paths
    (`lambda sb: Scenario([ToolCall("Read", {"file_path": str(sb.workspace / ".env")})])`).
    extra_env is laid over default_env() + connection_env(); extra_args follow bypass_args().
    The caller owns the returned sandbox: call `drive.sandbox.cleanup()` when done.
    With `with_connection_files`, connection_files(cli) are added to config_root
    first (they must not already exist there).
    """
    if with_connection_files:
        files = connection_files(cli)
        clashes = [rel for rel in files if (Path(config_root) / rel).exists()]
        if clashes:
            raise ValueError(f"config tree {config_root} already has {clashes}: pass with_connection_files=False")
        make_config_tree(config_root, files)
    sandbox = Sandbox(config_root, launcher=launcher)
    try:
        plan = scenario(sandbox) if callable(scenario) else scenario
        with fake_for(cli, plan) as server:
            env = sandbox.default_env({**connection_env(cli, server), **(extra_env or {})})
            args = [*bypass_args(cli, server, machine_output=machine_output), *extra_args]
            result = sandbox.run(cli, args, env=env, timeout=timeout)
    except BaseException:
        sandbox.cleanup()
        raise
    return Drive(cli, result, server, sandbox)


def stream_events(stdout: str) -> list[dict]:
    """The JSON objects of a JSON-lines stream (non-JSON lines are skipped)."""
    events = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def event_kinds(cli: str, stdout: str) -> set[tuple[str, str]]:
    """The kinds of events in a machine-readable stream, to spot a format change on a bump.

    claude: (type, subtype); codex: (type, item.type); gemini: (type, status).
    """
    kinds = set()
    for event in stream_events(stdout):
        if cli == "claude":
            kinds.add((str(event.get("type")), str(event.get("subtype", ""))))
        elif cli == "codex":
            item = event.get("item") if isinstance(event.get("item"), dict) else {}
            kinds.add((str(event.get("type")), str(item.get("type", ""))))
        elif cli == "gemini":
            kinds.add((str(event.get("type")), str(event.get("status", ""))))
        else:
            raise ValueError(f"unknown CLI {cli!r}; expected one of {CLIS}")
    return kinds
