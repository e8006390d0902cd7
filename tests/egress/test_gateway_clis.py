"""Each real CLI (the conformance pins) reaches its fake vendor only through the gateway, holding
a placeholder key; the fake sees the real key, and nothing the agent can read holds it."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the conformance package
from conformance.drivers import bypass_args, connection_env, connection_files  # noqa: E402
from conformance.fakes import Scenario, fake_for  # noqa: E402
from conformance.sandbox import Sandbox, make_config_tree  # noqa: E402

from egress.gateway import PLACEHOLDER_KEY  # noqa: E402
from egress_nginx import Gateway  # noqa: E402

VENDOR_OF = {"claude": "anthropic", "codex": "openai", "gemini": "gemini"}
KEY_ENV = {"claude": "ANTHROPIC_API_KEY", "codex": "FAKE_API_KEY", "gemini": "GEMINI_API_KEY"}
KEY_HEADER = {"claude": ("x-api-key", ""), "codex": ("authorization", "Bearer "), "gemini": ("x-goog-api-key", "")}
REAL_KEY = "sk-REAL-gateway-0123456789abcdef"
COMMANDS = ["printenv > seen-env.txt",
            "cat /proc/[0-9]*/environ > seen-environ.txt 2>/dev/null; cat /proc/[0-9]*/cmdline > seen-cmdline.txt 2>/dev/null; true"]


@pytest.mark.parametrize("cli", sorted(VENDOR_OF))
def test_cli_runs_through_the_gateway_with_a_placeholder(tmp_path, cli):
    vendor = VENDOR_OF[cli]
    (tmp_path / "config").mkdir()
    config = make_config_tree(tmp_path / "config", connection_files(cli))
    fake = fake_for(cli, Scenario(COMMANDS, "done")).start()
    sandbox = None
    try:
        with Gateway(tmp_path / "gateway", {vendor: REAL_KEY}, {vendor: fake.base_url}) as gateway:
            via = SimpleNamespace(base_url=gateway.url(vendor))
            sandbox = Sandbox(config)
            env = sandbox.default_env({**connection_env(cli, via), KEY_ENV[cli]: PLACEHOLDER_KEY})
            result = sandbox.run(cli, bypass_args(cli, via, machine_output=False), env=env, timeout=180)
        assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
        header, prefix = KEY_HEADER[cli]
        turns = fake.model_requests()
        assert len(turns) == len(COMMANDS) + 1
        assert all(r.headers.get(header) == prefix + REAL_KEY for r in fake.requests), \
            [r.headers.get(header) for r in fake.requests]
        assert not any(PLACEHOLDER_KEY in v for r in fake.requests for v in r.headers.values())
        seen_env = (sandbox.workspace / "seen-env.txt").read_text()
        assert f"{KEY_ENV[cli]}={PLACEHOLDER_KEY}" in seen_env
        for path in sandbox.base.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert REAL_KEY.encode() not in path.read_bytes(), path
        assert (sandbox.workspace / "seen-environ.txt").stat().st_size > 0
    finally:
        fake.stop()
        if sandbox:
            sandbox.cleanup()
