"""Egress benchmark: what the proxy and the gateway add.

    python benchmarks/egress_bench.py [--rounds 300]          (root: it makes network namespaces)

1. Squid, in the namespace lab of tests/egress (agent -- proxy -- upstream on veth pairs, the
   production squid.conf): median time of a new CONNECT tunnel against a direct TCP connect, of
   one request over an open tunnel against one over an open direct TLS connection, and of a whole
   new connection + TLS + request both ways. "Direct" runs from the proxy's namespace, so the
   proxied path also carries the agent's extra veth hop: the difference is an upper bound.
2. agent-gateway, the credential gateway, on 127.0.0.1: time to the first byte of a streamed (SSE)
   response through the gateway against straight to the TLS stand-in vendor, the two interleaved
   in one process, as a ratio and as the time added. The gateway reads and checks each body
   before forwarding it, so the figure is given for a small body and for a 50 KB one (what the
   CLIs send per turn, tools and history included).
Traffic stays on loopback and on the namespaces this script creates.
"""
from __future__ import annotations

import argparse
import http.client
import json
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests" / "egress"
HOST = "api.anthropic.com"      # the gateway's stand-in vendor
PROXY_HOST = "pypi.org"         # an allowlisted name in the lab (model APIs never go through the proxy)


# --- the client, run inside a namespace ----------------------------------------------------------

def _read_head(sock) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("closed")
        head += chunk
    return head


def _connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _tunnel(proxy: tuple[str, int]) -> socket.socket:
    sock = _connect(proxy)
    sock.sendall(f"CONNECT {PROXY_HOST}:443 HTTP/1.1\r\nHost: {PROXY_HOST}:443\r\n\r\n".encode())
    if b" 200 " not in _read_head(sock).split(b"\r\n", 1)[0] + b" ":
        raise ConnectionError("proxy refused the tunnel")
    return sock


def _get(tls) -> None:
    tls.sendall(f"GET / HTTP/1.1\r\nHost: {PROXY_HOST}\r\n\r\n".encode())
    _read_head(tls)
    tls.recv(11)


def client(mode: str, rounds: int, ca: str, upstream: str, proxy: str) -> list[float]:
    context = ssl.create_default_context(cafile=ca)
    up = (upstream, 443)
    px = (proxy, 3128)
    times = []

    def timed(action):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)

    if mode in ("direct-request", "proxy-request"):
        raw = _connect(up) if mode == "direct-request" else _tunnel(px)
        tls = context.wrap_socket(raw, server_hostname=PROXY_HOST)
        for _ in range(rounds):
            timed(lambda: _get(tls))
        tls.close()
        return times
    for _ in range(rounds):
        if mode == "direct-connect":
            timed(lambda: _connect(up).close())
        elif mode == "proxy-connect":
            timed(lambda: _tunnel(px).close())
        elif mode == "direct-full":
            def full():
                with context.wrap_socket(_connect(up), server_hostname=PROXY_HOST) as tls:
                    _get(tls)
            timed(full)
        elif mode == "proxy-full":
            def full():
                with context.wrap_socket(_tunnel(px), server_hostname=PROXY_HOST) as tls:
                    _get(tls)
            timed(full)
    return times


# --- the driver ----------------------------------------------------------------------------------

def _in_namespace(lab, ns: str, mode: str, rounds: int) -> list[float]:
    from egress_lab import PROXY_AGENT_SIDE, UPSTREAM_IP
    done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, __file__, "--client", mode,
                           "--rounds", str(rounds), "--ca", str(lab.ca), "--upstream", UPSTREAM_IP,
                           "--proxy", PROXY_AGENT_SIDE], capture_output=True, text=True, check=True, timeout=600)
    return json.loads(done.stdout)


def _median(values: list[float], warmup: int = 5) -> float:
    return statistics.median(values[warmup:] if len(values) > 2 * warmup else values)


def bench_proxy(rounds: int) -> dict:
    from egress_lab import Lab
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(Path(tmp))
        lab.start()
        try:
            pairs = {}
            for what in ("connect", "request", "full"):
                direct = _median(_in_namespace(lab, lab.proxy, f"direct-{what}", rounds))
                proxied = _median(_in_namespace(lab, lab.agent, f"proxy-{what}", rounds))
                pairs[what] = {"direct_ms": round(direct, 3), "proxied_ms": round(proxied, 3),
                               "added_ms": round(proxied - direct, 3)}
            return pairs
        finally:
            lab.stop()


def _connection(url: str, context: ssl.SSLContext | None):
    host, port = url.split("://")[1].split(":")
    if context:
        return http.client.HTTPSConnection(host, int(port), timeout=10, context=context)
    return http.client.HTTPConnection(host, int(port), timeout=10)


def _ttfb(conn, path: str, body: bytes, headers: dict) -> float:
    """Time to the first body byte over a kept-alive connection (the CLIs keep theirs open)."""
    started = time.perf_counter()
    conn.request("POST", path, body=body, headers={"content-type": "application/json", **headers})
    response = conn.getresponse()
    response.read1(1)
    took = (time.perf_counter() - started) * 1000
    response.read()
    return took


def _body(size: int) -> bytes:
    history = [{"role": "user", "content": "x" * 1000}] * max(0, size // 1040)
    return json.dumps({"model": "claude-bench", "stream": True, "max_tokens": 1024, "messages": history,
                       "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}]}).encode()


def bench_gateway(rounds: int) -> dict:
    from egress.gateway import PLACEHOLDER_KEY
    from egress_certs import make_ca, make_server_cert
    from egress_sse import SseUpstream
    from gateway_process import GatewayProcess
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ca = make_ca(root)
        cert, key = make_server_cert(root, ca, [HOST])
        context = ssl.create_default_context(cafile=str(ca))
        context.check_hostname = False  # the stand-in listens on 127.0.0.1; the gateway checks the name
        with SseUpstream(cert, key, hold_second_event=False) as upstream, \
                GatewayProcess(root / "gw", {"anthropic": "sk-ant-bench-0123456789"}, {"anthropic": upstream.url},
                               tls_names={"anthropic": HOST}, ca_file=ca) as gateway:
            headers = {"x-api-key": PLACEHOLDER_KEY}
            direct_conn, via_conn = _connection(upstream.url, context), _connection(gateway.url("anthropic"), None)
            for label, size in (("small_body", 0), ("body_50kb", 50_000)):
                body = _body(size)
                direct, via = [], []
                for _ in range(rounds):  # interleaved: load from other work hits both alike
                    direct.append(_ttfb(direct_conn, "/v1/messages", body, headers))
                    via.append(_ttfb(via_conn, "/v1/messages", body, headers))
                d, v = _median(direct), _median(via)
                results[label] = {"body_bytes": len(body), "direct_ttfb_ms": round(d, 3),
                                  "gateway_ttfb_ms": round(v, 3), "added_ms": round(v - d, 3),
                                  "ratio": round(v / d, 2)}
            direct_conn.close()
            via_conn.close()
    return results


def bench_agent_run() -> dict:
    """agent-run with podman and the images CI builds, a probe in place of the CLI
    (tests/launcher/test_run_podman.py): from the start of the run to the first model request
    reaching the stand-in vendor."""
    from test_run_podman import internet, probe_run
    with tempfile.TemporaryDirectory() as tmp:
        with internet(Path(tmp) / "internet") as outside:
            started = time.time()
            probe_run(Path(tmp), outside)
            ended = time.time()
            requests = [json.loads(line) for line in (outside["out"] / "requests.jsonl").read_text().splitlines()]
        first_model = min(r["time"] for r in requests if r["method"] == "POST")
    return {"to_first_model_request_s": round(first_model - started, 3), "whole_run_s": round(ended - started, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--agent-run", action="store_true", help="also time agent-run with podman (about 20 s)")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--ca", help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    parser.add_argument("--proxy", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        json.dump(client(args.client, args.rounds, args.ca, args.upstream, args.proxy), sys.stdout)
        return 0
    sys.path[:0] = [str(ROOT), str(TESTS), str(ROOT / "tests" / "launcher")]
    results = {"rounds": args.rounds, "proxy": bench_proxy(args.rounds), "gateway": bench_gateway(args.rounds)}
    if args.agent_run:
        results["agent_run"] = bench_agent_run()
    print(json.dumps(results, indent=2))
    p, g = results["proxy"], results["gateway"]
    print(f"proxy added per CONNECT (median): {p['connect']['added_ms']:.3f} ms (aim < 2 ms)")
    print(f"proxy added per request over a tunnel (median): {p['request']['added_ms']:.3f} ms (aim < 2 ms)")
    print(f"proxy added per new connection+TLS+request (median): {p['full']['added_ms']:.3f} ms")
    for label, figure in g.items():
        print(f"gateway time to first byte, {label} ({figure['body_bytes']} B): {figure['ratio']:.2f}x direct, "
              f"+{figure['added_ms']:.3f} ms (median; aim < 5 ms added)")
    if "agent_run" in results:
        print(f"agent-run start to first model request: {results['agent_run']['to_first_model_request_s']:.2f} s "
              f"(aim < 2 s; stand-in images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
