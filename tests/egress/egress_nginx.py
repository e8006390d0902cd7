"""Run the rendered gateway config with the real nginx on 127.0.0.1, in a temporary prefix."""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from egress.gateway import render_gateway, write_key_includes


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Gateway:
    """Renders the gateway for 127.0.0.1 with overridden upstreams and ports, writes the key
    includes, and runs nginx in the foreground until stopped."""

    def __init__(self, root: Path, keys: dict[str, str], upstreams: dict[str, str],
                 tls_names: dict[str, str] | None = None, ca_file: Path | None = None,
                 agent_subnets: tuple[str, ...] = ("127.0.0.1/32",)):
        self.root = root
        self.key_dir = root / "keys"
        self.log_dir = root / "log"
        self.runtime_dir = root / "run"
        for d in (self.log_dir, self.runtime_dir):
            d.mkdir(parents=True)
        vendors = sorted(upstreams)
        self.ports = dict(zip(vendors, free_ports(len(vendors))))
        self.conf_text = render_gateway(
            vendors, agent_subnets=list(agent_subnets), listen_address="127.0.0.1", ports=self.ports,
            upstreams=upstreams, upstream_tls_names=tls_names, key_dir=str(self.key_dir),
            runtime_dir=str(self.runtime_dir), log_dir=str(self.log_dir),
            **({"ca_file": str(ca_file)} if ca_file else {}))
        self.conf = root / "nginx.conf"
        self.conf.write_text(self.conf_text)
        write_key_includes(self.key_dir, keys)
        self.process: subprocess.Popen | None = None

    def url(self, vendor: str) -> str:
        return f"http://127.0.0.1:{self.ports[vendor]}"

    @property
    def access_log(self) -> Path:
        return self.log_dir / "access.log"

    def __enter__(self) -> "Gateway":
        self.process = subprocess.Popen(
            ["nginx", "-e", str(self.log_dir / "startup.log"), "-c", str(self.conf), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.process.stderr.read()}"
                                   f"{(self.log_dir / 'error.log').read_text() if (self.log_dir / 'error.log').exists() else ''}")
            try:
                socket.create_connection(("127.0.0.1", next(iter(self.ports.values()))), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.__exit__()
        raise RuntimeError("nginx did not start listening")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process and self.process.stderr:
            self.process.stderr.close()

    def pids(self) -> list[int]:
        """nginx master and workers."""
        master = self.process.pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return [master, *map(int, children)]
