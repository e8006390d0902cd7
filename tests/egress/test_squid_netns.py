"""The production Squid configuration, exercised in network namespaces (see egress_lab.py).

Every case is judged by the decision the access log names, never by the client's status alone:
a 403 or 503 for the wrong reason is a failure.
"""
from __future__ import annotations

import ipaddress
import socket
import subprocess
import sys

import pytest

from egress_lab import AGENT_IP, PROXY_AGENT_SIDE, PROXY_OUTSIDE, UPSTREAM_IP, Lab

DECIMAL_UPSTREAM = str(int(ipaddress.IPv4Address(UPSTREAM_IP)))                          # 3323068426
HEX_UPSTREAM = ".".join(hex(int(part)) for part in UPSTREAM_IP.split("."))               # 0xc6.0x12.0x0.0xa
OCTAL_UPSTREAM = ".".join("0" + oct(int(part))[2:] for part in UPSTREAM_IP.split("."))  # 0306.022.00.012


def connect(target: str, tls_name: str | None = None, logged_as: str | None = None) -> dict:
    """logged_as: the URL Squid writes when it normalises a numeric host."""
    return {"method": "CONNECT", "target": target, "tls_name": tls_name or target.rsplit(":", 1)[0],
            "logged_as": logged_as or target}


def get(url: str, method: str = "GET") -> dict:
    return {"method": method, "target": url, "logged_as": url}


# id -> (request, decision the access log must name)
CASES = {
    # allowed: the tunnel reaches the lab's upstream
    "exact-name": (connect("pypi.org:443"), "allow_allowlisted"),
    "wildcard-vendor-site": (connect("platform.openai.com:443"), "allow_allowlisted"),
    # model APIs: only through the gateway, whatever the allowlist says
    "model-api-allowlisted": (connect("api.anthropic.com:443"), "deny_model_api"),
    "model-api-under-a-wildcard": (connect("api.openai.com:443"), "deny_model_api"),
    "model-api-mixed-case": (connect("API.OpenAI.com:443", "api.openai.com"), "deny_model_api"),
    "model-api-regional-vertex": (connect("us-central1-aiplatform.googleapis.com:443"), "deny_model_api"),
    "domain-apex": (connect("github.com:443"), "allow_allowlisted"),
    "subdomain": (connect("api.github.com:443"), "allow_allowlisted"),
    "mixed-case-name": (connect("API.GitHub.com:443", "api.github.com"), "allow_allowlisted"),
    "another-exact-name": (connect("registry.npmjs.org:443"), "allow_allowlisted"),
    # not on the allowlist (and so never resolved)
    "other-domain": (connect("evil.example.com:443"), "deny_not_allowlisted"),
    "suffix-lookalike": (connect("notgithub.com:443"), "deny_not_allowlisted"),
    "allowed-name-as-prefix": (connect("github.com.evil.example:443"), "deny_not_allowlisted"),
    "subdomain-of-exact-entry": (connect("sub.api.anthropic.com:443"), "deny_not_allowlisted"),
    "parent-of-exact-entry": (connect("anthropic.com:443"), "deny_not_allowlisted"),
    # IP literals in every spelling, including one whose PTR names an allowed domain
    "ip-with-allowed-ptr": (connect("198.18.0.11:443", "github.com"), "deny_ip_literal"),
    "ip-dotted": (connect(f"{UPSTREAM_IP}:443"), "deny_ip_literal"),
    "ip-decimal": (connect(f"{DECIMAL_UPSTREAM}:443", logged_as=f"{UPSTREAM_IP}:443"), "deny_ip_literal"),
    "ip-hex": (connect(f"{HEX_UPSTREAM}:443", logged_as=f"{UPSTREAM_IP}:443"), "deny_ip_literal"),
    "ip-octal": (connect(f"{OCTAL_UPSTREAM}:443", logged_as=f"{UPSTREAM_IP}:443"), "deny_ip_literal"),
    "ipv6-loopback": (connect("[::1]:443"), "deny_ip_literal"),
    "ipv6-mapped-ipv4": (connect(f"[::ffff:{UPSTREAM_IP}]:443", logged_as=f"{UPSTREAM_IP}:443"), "deny_ip_literal"),
    "plain-http-ip": (get(f"http://{UPSTREAM_IP}/"), "deny_ip_literal"),
    "proxy-self-manager": (get(f"http://{PROXY_AGENT_SIDE}:3128/squid-internal-mgr/menu"), "deny_ip_literal"),
    # CONNECT to 443 only
    "connect-ssh-port": (connect("github.com:22"), "deny_port"),
    "connect-port-80": (connect("github.com:80"), "deny_port"),
    "connect-port-8443": (connect("api.anthropic.com:8443"), "deny_port"),
    # plain HTTP is refused whatever the name and port
    "plain-http": (get("http://github.com/"), "deny_plain_http"),
    "plain-http-other-port": (get("http://github.com:22/"), "deny_plain_http"),
    "plain-http-post": (get("http://api.anthropic.com/v1/messages", "POST"), "deny_plain_http"),
    "https-url-without-connect": (get("https://github.com/"), "deny_plain_http"),
    # allowlisted names that resolve where the proxy must never connect
    "resolves-10": (connect("private.github.com:443"), "deny_private_address"),
    "resolves-172-16": (connect("private172.github.com:443"), "deny_private_address"),
    "resolves-192-168": (connect("private192.github.com:443"), "deny_private_address"),
    "resolves-loopback": (connect("loopback.github.com:443"), "deny_localhost"),
    "resolves-0.0.0.0": (connect("zero.github.com:443"), "deny_localhost"),
    "resolves-metadata": (connect("metadata.github.com:443"), "deny_private_address"),
    "resolves-cgnat": (connect("cgnat.github.com:443"), "deny_private_address"),
    "resolves-multicast": (connect("multicast.github.com:443"), "deny_private_address"),
    "resolves-public-and-private": (connect("mixed.github.com:443"), "deny_private_address"),
    "resolves-ula": (connect("ula.github.com:443"), "deny_private_address"),
    "resolves-ipv6-loopback": (connect("loopback6.github.com:443"), "deny_localhost"),
    "resolves-ipv6-link-local": (connect("linklocal6.github.com:443"), "deny_private_address"),
    "resolves-ipv6-metadata": (connect("metadata6.github.com:443"), "deny_private_address"),
    "resolves-nat64": (connect("nat64.github.com:443"), "deny_private_address"),
    "resolves-nat64-local": (connect("nat64local.github.com:443"), "deny_private_address"),
    "resolves-6to4": (connect("sixtofour.github.com:443"), "deny_private_address"),
    "resolves-ipv4-compatible": (connect("v4compat.github.com:443"), "deny_private_address"),
    "resolves-site-local": (connect("sitelocal.github.com:443"), "deny_private_address"),
    "resolves-ipv4-mapped": (connect("v4mapped.github.com:443"), "deny_private_address"),
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("egress-lab"))
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def outcomes(lab):
    """{case id: (client result, access-log entry)}; each case sent once, in order."""
    results = {}
    for case_id, (request, _) in CASES.items():
        before = len(lab.access_entries())
        client = lab.send([{"id": case_id, **request}])[case_id]
        entries = lab.access_entries()[before:]
        results[case_id] = (client, entries)
    return results


@pytest.mark.parametrize("case_id", list(CASES))
def test_case_decided_by_the_named_rule(outcomes, case_id):
    request, expected = CASES[case_id]
    client, entries = outcomes[case_id]
    assert len(entries) == 1, f"expected one access-log line, got {entries}"
    entry = entries[0]
    assert entry["method"] == request["method"]
    assert entry["url"].lower() == request["logged_as"].lower()
    assert entry["decision"] == expected, entry
    if expected == "allow_allowlisted":
        assert client["status"] == 200 and client["body"] == "upstream-ok", client
        assert entry["server"] == UPSTREAM_IP
    else:
        assert client["status"] == 403, client
        assert entry["status"] == "TCP_DENIED/403"
        assert entry["server"] == "-", "a denied request must not have reached any server"


def test_names_outside_the_allowlist_are_never_resolved(lab, outcomes):
    queries = lab.dns_log.read_text()
    assert "private.github.com" in queries  # allowlisted names are resolved, so the log is live
    for never in ("evil.example.com", "notgithub.com", "github.com.evil.example", "anthropic.com from",
                  "sub.api.anthropic.com"):
        assert f"query[A] {never.split()[0]} " not in queries
        assert f"query[AAAA] {never.split()[0]} " not in queries


def test_no_reverse_lookups_of_destinations(lab, outcomes):
    # Squid 5.7 looks up the PTR of each client's own address (a predefined ICAP log format asks
    # for it): it carries nothing the agent chooses. Destinations, above all IP literals whose PTR
    # names an allowed domain, are never reverse-resolved.
    client_ptr = ".".join(reversed(AGENT_IP.split("."))) + ".in-addr.arpa"
    ptr_queries = [line for line in lab.dns_log.read_text().splitlines() if "query[PTR]" in line]
    assert all(client_ptr in line for line in ptr_queries), ptr_queries


def test_source_outside_the_agent_range_is_refused(lab):
    before = len(lab.access_entries())
    client = lab.send([{"id": "x", **connect("api.anthropic.com:443")}], from_ns=lab.proxy, proxy="127.0.0.1")["x"]
    entries = lab.access_entries()[before:]
    assert client["status"] == 403
    assert [e["decision"] for e in entries] == ["deny_source"]
    assert entries[0]["client"] == "127.0.0.1"


def _tcp_probe(lab, ns: str, host: str, port: int) -> str:
    script = ("import socket,sys\n"
              "try:\n socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close(); print('connected')\n"
              "except OSError as e: print(type(e).__name__, e.errno)\n")
    return lab.in_namespace(ns, sys.executable, "-c", script, host, str(port)).stdout.strip()


def test_direct_connection_from_the_agent_fails(lab):
    assert _tcp_probe(lab, lab.agent, UPSTREAM_IP, 443) == f"OSError {__import__('errno').ENETUNREACH}"
    assert _tcp_probe(lab, lab.proxy, UPSTREAM_IP, 443) == "connected"  # the upstream is up


def test_an_agent_that_adds_a_route_still_gets_nowhere(lab):
    listener = subprocess.Popen(
        ["ip", "netns", "exec", lab.proxy, sys.executable, "-c",
         "import socket,sys\ns=socket.create_server(('0.0.0.0', 8080))\nprint('up',flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "up"
        added = lab.in_namespace(lab.agent, "ip", "route", "add", "default", "via", PROXY_AGENT_SIDE)
        assert added.returncode == 0, added.stderr
        assert _tcp_probe(lab, lab.agent, PROXY_AGENT_SIDE, 3128) == "connected"  # the proxy port is open
        assert _tcp_probe(lab, lab.proxy, PROXY_OUTSIDE, 8080) == "connected"     # the service is up
        for host, port in ((UPSTREAM_IP, 443), (PROXY_OUTSIDE, 8080), (PROXY_AGENT_SIDE, 8080), (PROXY_OUTSIDE, 53)):
            assert _tcp_probe(lab, lab.agent, host, port).startswith(("TimeoutError", "OSError")), (host, port)
    finally:
        lab.in_namespace(lab.agent, "ip", "route", "del", "default")
        listener.kill()
        listener.wait()
        listener.stdin.close()
        listener.stdout.close()


def test_the_proxy_port_is_closed_to_the_outside(lab):
    assert _tcp_probe(lab, lab.upstream, PROXY_OUTSIDE, 3128).startswith("TimeoutError")


def test_every_request_in_the_access_log_names_a_decision(lab, outcomes):
    # Lines whose url is "error:..." are connections closed before any request (the TCP probes).
    requests = [e for e in lab.access_entries() if not e["url"].startswith("error:")]
    assert len(requests) >= len(CASES)
    assert all(e["decision"] not in ("", "-") for e in requests), [e for e in requests if e["decision"] in ("", "-")]


def test_each_line_counts_the_bytes_through_the_tunnel_both_ways(lab, outcomes):
    before = len(lab.access_entries())
    results = lab.send([{"id": "small", **connect("pypi.org:443")},
                        {"id": "upload", **connect("pypi.org:443"), "upload": 200_000}])
    assert results["upload"]["body"] == "upstream-ok"
    small, upload = lab.access_entries()[before:]
    assert 200_000 < int(upload["bytes_up"]) < 210_000
    assert int(small["bytes_up"]) < 5_000
    assert 1_000 < int(small["bytes_down"]) < 10_000  # the TLS handshake and "upstream-ok"


def test_the_audit_reads_the_real_access_log(lab, outcomes):
    from launcher.audit import build_audit
    audit = build_audit(lab.access_log)
    reached = {(r["host"].lower(), r["port"]) for r in audit["network"]["reached"]}
    assert ("pypi.org", 443) in reached and ("github.com", 443) in reached
    refused = {(r["host"], r["rule"]) for r in audit["network"]["refused"]}
    assert ("evil.example.com", "deny_not_allowlisted") in refused
    assert ("private.github.com", "deny_private_address") in refused
    assert not any(p.startswith("proxy log") for p in audit["problems"]), audit["problems"]
