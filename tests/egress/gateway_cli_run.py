"""One real CLI through agent-gateway to its conformance fake; run by test_gateway_clis.py inside a
fresh network namespace (only loopback), so nothing a CLI tries can leave the machine.

Usage: gateway_cli_run.py CLI WORKDIR [VARIANT]; prints a JSON summary on stdout.
VARIANT: "plain" (the scripted shell commands), "server-tool" (the model asks for the CLI's own
web-search tool, which needs a server-side tool), "openai-provider" (Codex with its built-in
provider and openai_base_url, which tries a WebSocket first), "startup-calls" (Claude without
CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC, so that it makes its start-up call).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parents[1])]

from conformance.drivers import bypass_args, connection_env, connection_files  # noqa: E402
from conformance.fakes import Scenario, ToolCall, fake_for  # noqa: E402
from conformance.sandbox import Sandbox, make_config_tree  # noqa: E402
from egress.gateway import PLACEHOLDER_KEY  # noqa: E402
from gateway_process import GatewayProcess  # noqa: E402

VENDOR_OF = {"claude": "anthropic", "codex": "openai", "gemini": "gemini"}
KEY_ENV = {"claude": "ANTHROPIC_API_KEY", "codex": "FAKE_API_KEY", "gemini": "GEMINI_API_KEY"}
REAL_KEY = "sk-REAL-gateway-0123456789abcdef"
COMMANDS = ["printenv > seen-env.txt",
            "cat /proc/[0-9]*/environ > seen-environ.txt 2>/dev/null; cat /proc/[0-9]*/cmdline > seen-cmdline.txt 2>/dev/null; true"]
WEB_SEARCH = {"claude": ToolCall("WebSearch", {"query": "agent sandbox"}),
              "gemini": ToolCall("google_web_search", {"query": "agent sandbox"})}


class _Via:
    def __init__(self, base_url: str):
        self.base_url = base_url


def _codex_args(cli: str, via, variant: str) -> list[str]:
    if variant == "openai-provider":
        return ["exec", "--dangerously-bypass-approvals-and-sandbox", "--skip-git-repo-check",
                "-c", f'openai_base_url="{via.base_url}/v1"', "-c", 'model="gpt-5"', "-c", "analytics.enabled=false",
                "-c", "features.plugins=false", "-c", "features.unbounded_connection_retries=false",
                "-c", 'web_search="disabled"', "Run the scripted commands."]
    args = bypass_args(cli, via, machine_output=False)
    if variant == "plain":
        # The rendered config for a profile without model_server_tools turns Codex's web search off.
        args[-1:-1] = ["-c", 'web_search="disabled"']
    return args


def main() -> None:
    cli, workdir = sys.argv[1], Path(sys.argv[2])
    variant = sys.argv[3] if len(sys.argv) > 3 else "plain"
    vendor = VENDOR_OF[cli]
    (workdir / "config").mkdir()
    config = make_config_tree(workdir / "config", connection_files(cli))
    steps = [WEB_SEARCH[cli], *COMMANDS] if variant == "server-tool" and cli in WEB_SEARCH else COMMANDS
    fake = fake_for(cli, Scenario(steps, "done")).start()
    sandbox = Sandbox(config)
    try:
        with GatewayProcess(workdir / "gateway", {vendor: REAL_KEY}, {vendor: fake.base_url}) as gateway:
            via = _Via(gateway.url(vendor))
            env = {**connection_env(cli, via), KEY_ENV[cli]: PLACEHOLDER_KEY}
            if cli == "codex" and variant == "openai-provider":
                env = {"OPENAI_API_KEY": PLACEHOLDER_KEY}
            if variant == "startup-calls":
                env.pop("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", None)
            args = _codex_args(cli, via, variant) if cli == "codex" else bypass_args(cli, via, machine_output=False)
            started = time.monotonic()
            result = sandbox.run(cli, args, env=sandbox.default_env(env), timeout=180)
            took = time.monotonic() - started
        files_with_key = [str(p) for p in sandbox.base.rglob("*")
                          if p.is_file() and not p.is_symlink() and REAL_KEY.encode() in p.read_bytes()]
        seen_env = sandbox.workspace / "seen-env.txt"
        summary = {
            "returncode": result.returncode, "stdout": result.stdout[-3000:], "stderr": result.stderr[-3000:],
            "seconds": round(took, 2),
            "requests": [{"method": r.method, "path": r.path, "headers": r.headers} for r in fake.requests],
            "turns": len(fake.model_requests()),
            "tool_results": [t.text for t in fake.tool_results],
            "gateway_log": gateway.log(),
            "seen_env": seen_env.read_text() if seen_env.exists() else "",
            "environ_size": (sandbox.workspace / "seen-environ.txt").stat().st_size
            if (sandbox.workspace / "seen-environ.txt").exists() else 0,
            "files_with_key": files_with_key,
        }
    finally:
        fake.stop()
        sandbox.cleanup()
    json.dump(summary, sys.stdout)


if __name__ == "__main__":
    main()
