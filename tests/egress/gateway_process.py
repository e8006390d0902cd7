"""The real agent-gateway process on 127.0.0.1, with a config from render_gateway_config (only the
upstreams, ports, paths and CA overridden) and the secrets written as the launcher writes them."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from egress.gateway import render_gateway_config, write_secrets

ROOT = Path(__file__).resolve().parents[2]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class GatewayProcess:
    def __init__(self, root: Path, keys: dict[str, str], upstreams: dict[str, str], *,
                 tls_names: dict[str, str] | None = None, ca_file: Path | None = None,
                 agent_subnets: tuple[str, ...] = ("127.0.0.1/32",), model_server_tools: bool = False,
                 limits: dict | None = None, env: dict | None = None, edit_config=None,
                 logins: dict | None = None, token_urls: dict | None = None):
        self.root = root
        self.secrets_dir = root / "secrets"
        self.state_dir = root / "state"
        self.log_dir = root / "log"
        self.renewed_dir = root / "renewed"
        for folder in (self.state_dir, self.log_dir, self.renewed_dir):
            folder.mkdir(parents=True)
        vendors = sorted(upstreams)
        self.ports = dict(zip(vendors, free_ports(len(vendors))))
        self.conf_text = render_gateway_config(
            vendors, agent_subnets=list(agent_subnets), model_server_tools=model_server_tools,
            listen_address="127.0.0.1", ports=self.ports, upstreams=upstreams, upstream_tls_names=tls_names,
            ca_file=str(ca_file) if ca_file else None, secrets_dir=str(self.secrets_dir),
            ready_file=str(self.ready_file), access_log=str(self.access_log), limits=limits,
            logins=logins, token_urls=token_urls, renewed_dir=str(self.renewed_dir) if logins else None)
        if edit_config:  # a test's own route or endpoint, as data
            config = json.loads(self.conf_text)
            edit_config(config)
            self.conf_text = json.dumps(config)
        self.conf = root / "config.json"
        self.conf.write_text(self.conf_text)
        write_secrets(self.secrets_dir, keys, uid=os.getuid(), gid=os.getgid())
        self.env = env
        self.process: subprocess.Popen | None = None

    @property
    def ready_file(self) -> Path:
        return self.state_dir / "ready"

    @property
    def access_log(self) -> Path:
        return self.log_dir / "access.log"

    def url(self, vendor: str) -> str:
        return f"http://127.0.0.1:{self.ports[vendor]}"

    def log(self) -> list[dict]:
        if not self.access_log.exists():
            return []
        return [json.loads(line) for line in self.access_log.read_text().splitlines()]

    def __enter__(self) -> "GatewayProcess":
        env = self.env if self.env is not None else {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen([sys.executable, "-m", "egress.gateway_server", "--config", str(self.conf)],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True, env=env, cwd="/")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"agent-gateway exited {self.process.returncode}: {self.process.stderr.read()}")
            if self.ready_file.exists():
                return self
            time.sleep(0.02)
        self.__exit__()
        raise RuntimeError("agent-gateway did not become ready")

    def stop(self) -> int:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process and self.process.stderr and not self.process.stderr.closed:
            self.stderr = self.process.stderr.read()
            self.process.stderr.close()
        return self.process.returncode if self.process else 0

    def __exit__(self, *exc) -> None:
        self.stop()
