"""The egress test lab: three network namespaces on veth pairs in 198.18.0.0/15, no default route.

    agent 198.19.1.2 --- 198.19.1.1 proxy 198.18.0.1 --- 198.18.0.10, .11 upstream

The proxy namespace runs the production squid.conf (from egress.squid) with only the include
directory filled by the test: a hosts file for the allowlisted names, dnsmasq on the proxy's
loopback for the "bad" names, and the agent range. Squid runs in its own mount namespace where
/etc/squid and /var/log/squid are bind mounts of the lab's folders, so the host's /etc is untouched.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from egress.squid import DEFAULT_INCLUDE_DIR, render_squid
from egress_certs import make_ca, make_server_cert

HERE = Path(__file__).parent
AGENT_IP, PROXY_AGENT_SIDE, PROXY_OUTSIDE = "198.19.1.2", "198.19.1.1", "198.18.0.1"
UPSTREAM_IP, UPSTREAM_PTR_IP = "198.18.0.10", "198.18.0.11"
AGENT_RANGE = "198.19.1.0/24"
PROXY_PORT = 3128
# The production agent subnet the renderer would pass; the lab adds its own range via the include.
PRODUCTION_AGENT_SUBNETS = ["10.213.0.0/24"]

# api.anthropic.com and .openai.com are on it so that the tests can show the proxy never tunnels
# to a model API, whatever the allowlist says.
ALLOWLIST = ["api.anthropic.com", ".github.com", "registry.npmjs.org", "pypi.org", ".openai.com"]
# Names that resolve (through Squid's hosts_file) to the lab's upstream.
GOOD_NAMES = ["api.anthropic.com", "github.com", "api.github.com", "registry.npmjs.org", "pypi.org",
              "api.openai.com", "platform.openai.com", "us-central1-aiplatform.googleapis.com"]
# Allowlisted names that resolve (through dnsmasq) where the proxy must never connect.
BAD_HOSTS = {
    "private.github.com": ["10.0.0.5"],
    "private172.github.com": ["172.16.5.4"],
    "private192.github.com": ["192.168.1.1"],
    "loopback.github.com": ["127.0.0.1"],
    "zero.github.com": ["0.0.0.0"],
    "metadata.github.com": ["169.254.169.254"],
    "cgnat.github.com": ["100.100.100.200"],
    "multicast.github.com": ["224.0.0.1"],
    "mixed.github.com": [UPSTREAM_IP, "10.0.0.6"],
}
BAD_HOSTS_V6 = {
    "ula.github.com": "fc00::1",
    "loopback6.github.com": "::1",
    "linklocal6.github.com": "fe80::1",
    "metadata6.github.com": "fd00:ec2::254",
    "nat64.github.com": "64:ff9b::a00:5",         # 10.0.0.5 through a NAT64 gateway
    "nat64local.github.com": "64:ff9b:1::a00:5",
    "sixtofour.github.com": "2002:a00:5::1",     # 6to4 for 10.0.0.5
    "v4compat.github.com": "::a00:5",            # IPv4-compatible ::10.0.0.5
    "sitelocal.github.com": "fec0::1",
    "v4mapped.github.com": "::ffff:10.0.0.5",    # Squid reads it as 10.0.0.5
}


def run(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kwargs)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


@dataclass
class Lab:
    root: Path
    tag: str = field(default_factory=lambda: f"as{os.getpid() % 100000}")
    processes: list = field(default_factory=list)
    namespaces: list = field(default_factory=list)

    @property
    def agent(self) -> str:
        return f"{self.tag}-agent"

    @property
    def proxy(self) -> str:
        return f"{self.tag}-proxy"

    @property
    def upstream(self) -> str:
        return f"{self.tag}-up"

    @property
    def log_dir(self) -> Path:
        return self.root / "squid-log"

    @property
    def access_log(self) -> Path:
        return self.log_dir / "access.log"

    # --- setup -----------------------------------------------------------------------------
    def start(self, squid_conf: str | None = None) -> None:
        try:
            self._network()
            self._certificates()
            self._upstream()
            self._dnsmasq()
            self._squid(squid_conf or self.production_conf())
        except BaseException:
            self.stop()
            raise

    def _ns(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run("ip", "netns", "exec", name, *args, check=check)

    def _network(self) -> None:
        for ns in (self.agent, self.proxy, self.upstream):
            run("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        t = self.tag
        run("ip", "link", "add", f"{t}a", "netns", self.agent, "type", "veth", "peer", "name", f"{t}pa", "netns", self.proxy)
        run("ip", "link", "add", f"{t}pu", "netns", self.proxy, "type", "veth", "peer", "name", f"{t}u", "netns", self.upstream)
        run("ip", "-n", self.agent, "addr", "add", f"{AGENT_IP}/24", "dev", f"{t}a")
        run("ip", "-n", self.proxy, "addr", "add", f"{PROXY_AGENT_SIDE}/24", "dev", f"{t}pa")
        run("ip", "-n", self.proxy, "addr", "add", f"{PROXY_OUTSIDE}/24", "dev", f"{t}pu")
        run("ip", "-n", self.upstream, "addr", "add", f"{UPSTREAM_IP}/24", "dev", f"{t}u")
        run("ip", "-n", self.upstream, "addr", "add", f"{UPSTREAM_PTR_IP}/24", "dev", f"{t}u")
        for ns, dev in ((self.agent, f"{t}a"), (self.proxy, f"{t}pa"), (self.proxy, f"{t}pu"), (self.upstream, f"{t}u")):
            run("ip", "-n", ns, "link", "set", dev, "up")
        self._ns(self.proxy, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        ruleset = f"""
table inet agent_sandbox_lab {{
  chain input {{
    type filter hook input priority 0; policy drop;
    iif lo accept
    ct state established,related accept
    iifname "{t}pa" ip saddr {AGENT_RANGE} tcp dport {PROXY_PORT} accept
  }}
  chain forward {{
    type filter hook forward priority 0; policy drop;
  }}
}}
"""
        subprocess.run(["ip", "netns", "exec", self.proxy, "nft", "-f", "-"], input=ruleset, text=True,
                       check=True, capture_output=True)

    def _certificates(self) -> None:
        certs = self.root / "certs"
        certs.mkdir()
        self.ca = make_ca(certs)
        self.server_cert, self.server_key = make_server_cert(certs, self.ca, GOOD_NAMES + list(BAD_HOSTS))

    def _spawn(self, ns: str, *args: str, **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(["ip", "netns", "exec", ns, *args], **kwargs)
        self.processes.append(process)
        return process

    def _upstream(self) -> None:
        addresses = [f"{ip}:{port}" for ip in (UPSTREAM_IP, UPSTREAM_PTR_IP) for port in (443, 80, 22)]
        process = self._spawn(self.upstream, sys.executable, str(HERE / "upstream_server.py"),
                              str(self.server_cert), str(self.server_key), *addresses,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("the upstream server did not start")

    @property
    def dns_log(self) -> Path:
        return self.root / "dnsmasq.log"

    def _dnsmasq(self) -> None:
        hosts = self.root / "dnsmasq-hosts"
        hosts.write_text("".join(f"{ip} {name}\n" for name, ips in BAD_HOSTS.items() for ip in ips))
        records = [f"--host-record={name},{ip}" for name, ip in BAD_HOSTS_V6.items()]
        self._spawn(self.proxy, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                    "--no-hosts", "--no-poll", f"--addn-hosts={hosts}", "--listen-address=127.0.0.1",
                    "--bind-interfaces", "--port=53", "--user=root", "--log-queries",
                    f"--log-facility={self.dns_log}", f"--pid-file={self.root / 'dnsmasq.pid'}",
                    f"--ptr-record={'.'.join(reversed(UPSTREAM_PTR_IP.split('.')))}.in-addr.arpa,github.com",
                    *records, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.dns_log.exists() and "started" in self.dns_log.read_text(), 5, "dnsmasq")

    def production_conf(self) -> str:
        return render_squid(ALLOWLIST, agent_subnets=PRODUCTION_AGENT_SUBNETS, listen_port=PROXY_PORT)

    def _squid(self, conf: str) -> None:
        etc = self.root / "etc-squid"
        shutil.copytree("/etc/squid", etc)
        (etc / "squid.conf").write_text(conf)
        include = etc / Path(DEFAULT_INCLUDE_DIR).name
        include.mkdir()
        (include / "test-hosts").write_text("".join(f"{UPSTREAM_IP} {name}\n" for name in GOOD_NAMES))
        # The only overrides: where names resolve, and the lab's agent range.
        (include / "10-lab.conf").write_text(
            f"hosts_file {DEFAULT_INCLUDE_DIR}/test-hosts\n"
            "dns_nameservers 127.0.0.1\n"
            f"acl agents src {AGENT_RANGE}\n")
        self.log_dir.mkdir()
        shutil.chown(self.log_dir, "proxy", "proxy")
        script = (f"mount --bind {etc} /etc/squid && mount --bind {self.log_dir} /var/log/squid "
                  "&& exec squid -N -f /etc/squid/squid.conf")
        self.squid = self._spawn(self.proxy, "unshare", "-m", "--propagation", "private", "sh", "-c", script,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        cache_log = self.log_dir / "cache.log"

        def accepting() -> bool:
            if self.squid.poll() is not None:
                raise RuntimeError(f"squid exited: {self.squid.stderr.read()}")
            return cache_log.exists() and "Accepting HTTP Socket connections" in cache_log.read_text()

        wait_for(accepting, 10, "squid to accept connections")

    # --- use -------------------------------------------------------------------------------
    def send(self, cases: list[dict], from_ns: str | None = None, proxy: str = PROXY_AGENT_SIDE) -> dict:
        """Send cases through the proxy from a namespace; {id: result}."""
        done = subprocess.run(["ip", "netns", "exec", from_ns or self.agent, sys.executable,
                               str(HERE / "proxy_client.py"), proxy, str(PROXY_PORT), str(self.ca)],
                              input=json.dumps(cases), capture_output=True, text=True, check=True, timeout=60)
        return {r["id"]: r for r in json.loads(done.stdout)}

    def access_entries(self) -> list[dict]:
        from launcher.audit import parse_squid_line
        if not self.access_log.exists():
            return []
        return [e for e in map(parse_squid_line, self.access_log.read_text().splitlines()) if e]

    def in_namespace(self, ns: str, *args: str) -> subprocess.CompletedProcess:
        return self._ns(ns, *args, check=False)

    # --- teardown --------------------------------------------------------------------------
    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream:
                    stream.close()
        self.processes.clear()
        for ns in reversed(self.namespaces):
            run("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()
