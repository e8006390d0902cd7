"""One real CLI through the gateway to its conformance fake; run by test_gateway_clis.py inside a
fresh network namespace (only loopback), so nothing a CLI tries can leave the machine.
Usage: gateway_cli_run.py CLI WORKDIR; prints a JSON summary on stdout."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parents[1])]

from conformance.drivers import bypass_args, connection_env, connection_files  # noqa: E402
from conformance.fakes import Scenario, fake_for  # noqa: E402
from conformance.sandbox import Sandbox, make_config_tree  # noqa: E402
from egress.gateway import PLACEHOLDER_KEY  # noqa: E402
from egress_nginx import Gateway  # noqa: E402

VENDOR_OF = {"claude": "anthropic", "codex": "openai", "gemini": "gemini"}
KEY_ENV = {"claude": "ANTHROPIC_API_KEY", "codex": "FAKE_API_KEY", "gemini": "GEMINI_API_KEY"}
REAL_KEY = "sk-REAL-gateway-0123456789abcdef"
COMMANDS = ["printenv > seen-env.txt",
            "cat /proc/[0-9]*/environ > seen-environ.txt 2>/dev/null; cat /proc/[0-9]*/cmdline > seen-cmdline.txt 2>/dev/null; true"]


def main() -> None:
    cli, workdir = sys.argv[1], Path(sys.argv[2])
    vendor = VENDOR_OF[cli]
    (workdir / "config").mkdir()
    config = make_config_tree(workdir / "config", connection_files(cli))
    fake = fake_for(cli, Scenario(COMMANDS, "done")).start()
    sandbox = Sandbox(config)
    try:
        with Gateway(workdir / "gateway", {vendor: REAL_KEY}, {vendor: fake.base_url}) as gateway:
            via = SimpleNamespace(base_url=gateway.url(vendor))
            env = sandbox.default_env({**connection_env(cli, via), KEY_ENV[cli]: PLACEHOLDER_KEY})
            result = sandbox.run(cli, bypass_args(cli, via, machine_output=False), env=env, timeout=180)
        files_with_key = [str(p) for p in sandbox.base.rglob("*")
                          if p.is_file() and not p.is_symlink() and REAL_KEY.encode() in p.read_bytes()]
        summary = {
            "returncode": result.returncode, "stdout": result.stdout[-2000:], "stderr": result.stderr[-2000:],
            "requests": [{"method": r.method, "path": r.path, "headers": r.headers} for r in fake.requests],
            "turns": len(fake.model_requests()),
            "seen_env": (sandbox.workspace / "seen-env.txt").read_text(),
            "environ_size": (sandbox.workspace / "seen-environ.txt").stat().st_size,
            "files_with_key": files_with_key,
        }
    finally:
        fake.stop()
        sandbox.cleanup()
    json.dump(summary, sys.stdout)


if __name__ == "__main__":
    main()
