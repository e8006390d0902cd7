"""agent-gateway, the real process, in front of a TLS stand-in vendor on 127.0.0.1."""
from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import subprocess
import sys
import time

import pytest

from egress.gateway import (PLACEHOLDER_KEY, VENDORS, KeySource, agent_environment, read_key,
                            render_gateway_config, vendors_from_allowlist)
from egress_certs import make_ca, make_server_cert
from egress_sse import SseUpstream
from gateway_process import ROOT, GatewayProcess

REAL_KEYS = {"anthropic": "sk-ant-REAL-0123456789abcdef", "openai": "sk-proj-REAL-0123456789abcdef",
             "gemini": "AIzaREAL0123456789abcdef"}
VENDOR_HOSTS = {"anthropic": "api.anthropic.com", "openai": "api.openai.com",
                "gemini": "generativelanguage.googleapis.com"}
PATHS = {"anthropic": "/v1/messages?beta=true", "openai": "/v1/responses",
         "gemini": "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"}
# What each CLI sends: its placeholder in its own header, plus stray credentials of other shapes.
CLIENT_HEADERS = {
    "anthropic": {"x-api-key": PLACEHOLDER_KEY, "authorization": f"Bearer {PLACEHOLDER_KEY}"},
    "openai": {"authorization": f"Bearer {PLACEHOLDER_KEY}", "x-api-key": PLACEHOLDER_KEY,
               "openai-organization": "org-agents-own"},
    "gemini": {"x-goog-api-key": PLACEHOLDER_KEY, "authorization": f"Bearer {PLACEHOLDER_KEY}",
               "x-goog-user-project": "agents-own-project"},
}
STRAY = {"cookie": "session=agents-own", "x-http-method-override": "DELETE", "x-forwarded-for": "1.2.3.4"}
BODIES = {
    "anthropic": {"model": "claude-x", "stream": True, "messages": [{"role": "user", "content": "hi"}],
                  "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}},
                            {"type": "bash_20250124", "name": "bash"}]},
    "openai": {"model": "gpt-x", "stream": True, "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "hi"}, {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]}],
        "tools": [{"type": "function", "name": "exec_command", "parameters": {}},
                  {"type": "namespace", "name": "multi", "tools": [{"type": "function", "name": "spawn"}]}]},
    "gemini": {"contents": [{"role": "user", "parts": [{"text": "hi"}, {"inlineData": {"mimeType": "image/png",
                                                                                        "data": "AAAA"}}]}],
               "tools": [{"functionDeclarations": [{"name": "run_shell_command"}]}]},
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gateway-certs")
    ca = make_ca(root)
    cert, key = make_server_cert(root, ca, list(VENDOR_HOSTS.values()))
    other_root = tmp_path_factory.mktemp("other-ca")
    return {"ca": ca, "cert": cert, "key": key, "other_ca": make_ca(other_root)}


def send(url: str, path: str, headers: dict | None = None, body: bytes | dict | None = None, method: str = "POST",
         source: str | None = None, read: bool = True):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10,
                                      source_address=(source, 0) if source else None)
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    conn.request(method, path, body=data, headers={"content-type": "application/json", **(headers or {})})
    response = conn.getresponse()
    if not read:
        return conn, response
    payload = response.read()
    conn.close()
    return response.status, payload


def refusal_of(payload: bytes) -> dict:
    return json.loads(payload)["agent_sandbox"]


# --- forwarding ---------------------------------------------------------------------------------

@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_the_vendor_sees_the_real_key_and_events_arrive_as_they_are_sent(tmp_path, certs, vendor):
    body = json.dumps(BODIES[vendor]).encode()
    with SseUpstream(certs["cert"], certs["key"]) as upstream, \
            GatewayProcess(tmp_path, {vendor: REAL_KEYS[vendor]}, {vendor: upstream.url},
                           tls_names={vendor: VENDOR_HOSTS[vendor]}, ca_file=certs["ca"]) as gateway:
        conn, response = send(gateway.url(vendor), PATHS[vendor], {**CLIENT_HEADERS[vendor], **STRAY}, body, read=False)
        assert response.status == 200
        # The stand-in holds back its second event until released: the first must already be here.
        assert response.readline() == b"event: message_start\n"
        upstream.release.set()
        rest = response.read()
        conn.close()
        gateway.stop()
    assert b"message_stop" in rest
    [seen] = upstream.requests
    spec = VENDORS[vendor]
    assert seen["headers"][spec.key_header] == spec.key_prefix + REAL_KEYS[vendor]
    assert not any(PLACEHOLDER_KEY in value for value in seen["headers"].values()), seen["headers"]
    for header in ("cookie", "x-http-method-override", "x-forwarded-for", "openai-organization", "x-goog-user-project"):
        assert header not in seen["headers"]
    other_credentials = {"x-api-key", "authorization", "x-goog-api-key"} - {spec.key_header}
    assert not other_credentials & set(seen["headers"])
    assert seen["headers"]["host"] == VENDOR_HOSTS[vendor]
    assert seen["path"] == PATHS[vendor]  # the query string reaches the vendor unchanged
    assert seen["body"] == body
    [entry] = gateway.log()
    assert (entry["vendor"], entry["decision"], entry["status"]) == (vendor, "forward", 200)
    assert entry["rule"].startswith(f"{vendor}:") and entry["client"] == "127.0.0.1"
    assert entry["bytes_up"] == len(body) and entry["bytes_down"] == len(b"event: message_start\n") + len(rest)
    assert entry["path"] == PATHS[vendor].split("?")[0]
    text = gateway.access_log.read_text()
    assert REAL_KEYS[vendor] not in text and "?" not in text  # query strings are never logged


def test_upstream_connections_are_kept_alive(tmp_path, certs):
    with SseUpstream(certs["cert"], certs["key"], hold_second_event=False) as upstream, \
            GatewayProcess(tmp_path, {"anthropic": REAL_KEYS["anthropic"]}, {"anthropic": upstream.url},
                           tls_names={"anthropic": "api.anthropic.com"}, ca_file=certs["ca"]) as gateway:
        for _ in range(3):
            assert send(gateway.url("anthropic"), PATHS["anthropic"], CLIENT_HEADERS["anthropic"],
                        BODIES["anthropic"])[0] == 200
    assert len({r["client_port"] for r in upstream.requests}) == 1, upstream.requests


def test_a_client_that_leaves_mid_stream_is_logged_and_the_gateway_goes_on(tmp_path):
    with SseUpstream() as upstream, \
            GatewayProcess(tmp_path, {"anthropic": REAL_KEYS["anthropic"]}, {"anthropic": upstream.url}) as gateway:
        conn, response = send(gateway.url("anthropic"), PATHS["anthropic"], CLIENT_HEADERS["anthropic"],
                              BODIES["anthropic"], read=False)
        assert response.readline() == b"event: message_start\n"
        conn.sock.close()
        conn.close()
        time.sleep(0.2)
        upstream.release.set()
        deadline = time.monotonic() + 5
        while not gateway.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert send(gateway.url("anthropic"), PATHS["anthropic"], CLIENT_HEADERS["anthropic"],
                    BODIES["anthropic"])[0] == 200
    first = gateway.log()[0]
    assert (first["status"], first["reason"]) == (200, "the client closed the connection mid-response")


def test_a_vendor_that_drops_the_stream_cuts_the_client_off(tmp_path):
    with SseUpstream(cut=True, hold_second_event=False) as upstream, \
            GatewayProcess(tmp_path, {"anthropic": REAL_KEYS["anthropic"]}, {"anthropic": upstream.url}) as gateway:
        conn, response = send(gateway.url("anthropic"), PATHS["anthropic"], CLIENT_HEADERS["anthropic"],
                              BODIES["anthropic"], read=False)
        assert response.status == 200
        with pytest.raises(http.client.IncompleteRead):  # no clean end: the CLI sees a broken stream
            response.read()
        conn.close()
    [entry] = gateway.log()
    assert entry["status"] == 200 and entry["reason"].endswith("(mid-response)")


@pytest.mark.parametrize("ca, name", [("other_ca", "api.anthropic.com"), ("ca", "evil.example.com")],
                         ids=["untrusted-certificate", "name-mismatch"])
def test_a_vendor_that_fails_verification_gets_nothing(tmp_path, certs, ca, name):
    with SseUpstream(certs["cert"], certs["key"]) as upstream, \
            GatewayProcess(tmp_path, {"anthropic": REAL_KEYS["anthropic"]}, {"anthropic": upstream.url},
                           tls_names={"anthropic": name}, ca_file=certs[ca]) as gateway:
        status, payload = send(gateway.url("anthropic"), PATHS["anthropic"], CLIENT_HEADERS["anthropic"],
                               BODIES["anthropic"])
    assert status == 502 and b"did not verify" in payload
    assert upstream.requests == []
    [entry] = gateway.log()
    assert entry["status"] == 502 and "did not verify" in entry["reason"]


# --- refusals -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """One gateway for all three vendors in front of one plain-HTTP stand-in."""
    with SseUpstream(hold_second_event=False) as upstream, \
            GatewayProcess(tmp_path_factory.mktemp("three"), REAL_KEYS, {v: upstream.url for v in VENDORS},
                           limits={"max_request_bytes": 4096}) as gateway:
        yield gateway, upstream


def _refused(three, vendor, path, body=None, headers=None, method="POST"):
    gateway, upstream = three
    before, logged = len(upstream.requests), len(gateway.log())
    status, payload = send(gateway.url(vendor), path, {**CLIENT_HEADERS[vendor], **(headers or {})},
                           body if body is not None else BODIES[vendor], method)
    assert len(upstream.requests) == before, "a refused request reached the vendor"
    [entry] = gateway.log()[logged:]
    assert entry["status"] == status
    if method != "HEAD":  # a HEAD response has no body
        detail = refusal_of(payload)
        assert (entry["decision"], entry["rule"], entry["reason"]) == (detail["decision"], detail["rule"], detail["reason"])
        assert entry["bytes_down"] == len(payload)
        assert detail["rule"] in json.loads(payload)["error"]["message"]
    return status, entry


ENDPOINT_CASES = [
    ("anthropic", "POST", "/v1/files", 404, "deny_endpoint"),
    ("anthropic", "POST", "/v1/organizations/api_keys", 404, "deny_endpoint"),
    ("anthropic", "POST", "/v1/messages/batches", 404, "deny_endpoint"),
    ("anthropic", "GET", "/v1/models", 404, "deny_endpoint"),
    ("anthropic", "HEAD", "/api/hello", 404, "deny_endpoint"),
    ("anthropic", "GET", "/v1/messages", 405, "deny_method"),
    ("anthropic", "DELETE", "/v1/messages", 405, "deny_method"),
    ("anthropic", "POST", "/v1/messages/../files", 404, "deny_endpoint"),
    ("anthropic", "POST", "/v1/messages%2f..%2ffiles", 404, "deny_endpoint"),
    ("anthropic", "POST", "//v1/messages", 404, "deny_endpoint"),
    ("openai", "POST", "/v1/files", 404, "deny_endpoint"),
    ("openai", "POST", "/v1/chat/completions", 404, "deny_endpoint"),
    ("openai", "GET", "/v1/responses/resp_123", 404, "deny_endpoint"),
    ("openai", "POST", "/v1/vector_stores", 404, "deny_endpoint"),
    ("gemini", "POST", "/v1beta/cachedContents", 404, "deny_endpoint"),
    ("gemini", "POST", "/upload/v1beta/files", 404, "deny_endpoint"),
    ("gemini", "POST", "/v1beta/tunedModels/x:generateContent", 404, "deny_endpoint"),
    ("gemini", "POST", "/v1beta/models/a/b:generateContent", 404, "deny_endpoint"),
    ("gemini", "GET", "/v1beta/models", 404, "deny_endpoint"),
    ("gemini", "DELETE", "/v1beta/models/m:generateContent", 405, "deny_method"),
]


@pytest.mark.parametrize("vendor, method, path, status, decision", ENDPOINT_CASES,
                         ids=[f"{v}-{m}-{p}" for v, m, p, *_ in ENDPOINT_CASES])
def test_other_endpoints_and_methods_are_refused(three, vendor, method, path, status, decision):
    got, entry = _refused(three, vendor, path, method=method)
    assert (got, entry["decision"], entry["rule"]) == (status, decision, "endpoint-allowlist")


SERVER_TOOL_CASES = {
    "anthropic-mcp-connector": ("anthropic", {"mcp_servers": [{"type": "url", "url": "https://evil.example/mcp",
                                                               "name": "x"}]}),
    "anthropic-mcp-connector-spelled-otherwise": ("anthropic", {"MCP_Servers": [{"url": "https://evil.example"}]}),
    "anthropic-web-fetch": ("anthropic", {"tools": [{"type": "web_fetch_20250910", "name": "web_fetch"}]}),
    "anthropic-web-search": ("anthropic", {"tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
    "anthropic-mcp-toolset": ("anthropic", {"tools": [{"type": "mcp_toolset", "mcp_server_name": "x"}]}),
    "anthropic-code-execution": ("anthropic", {"tools": [{"type": "code_execution_20250825", "name": "c"}]}),
    "anthropic-image-by-url": ("anthropic", {"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://evil.example/x.png?d=secret"}}]}]}),
    "anthropic-document-by-url": ("anthropic", {"system": [{"type": "document", "source": {
        "type": "url", "url": "https://evil.example/x.pdf"}}]}),
    "openai-web-search": ("openai", {"tools": [{"type": "web_search", "external_web_access": True}]}),
    "openai-web-search-preview": ("openai", {"tools": [{"type": "web_search_preview"}]}),
    "openai-mcp": ("openai", {"tools": [{"type": "mcp", "server_url": "https://evil.example/mcp",
                                         "server_label": "x"}]}),
    "openai-mcp-in-a-namespace": ("openai", {"tools": [{"type": "namespace", "name": "n",
                                                       "tools": [{"type": "mcp", "server_url": "https://e"}]}]}),
    "openai-file-search": ("openai", {"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}),
    "openai-image-by-url": ("openai", {"input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "https://evil.example/x.png?d=secret"}]}]}),
    "openai-file-by-url": ("openai", {"input": [{"role": "user", "content": [
        {"type": "input_file", "file_url": "https://evil.example/x.pdf"}]}]}),
    "openai-stored-prompt": ("openai", {"prompt": {"id": "pmpt_123"}}),
    "gemini-google-search": ("gemini", {"tools": [{"googleSearch": {}}]}),
    "gemini-google-search-snake-case": ("gemini", {"tools": [{"google_search": {}}]}),
    "gemini-search-retrieval": ("gemini", {"tools": [{"googleSearchRetrieval": {}}]}),
    "gemini-url-context": ("gemini", {"tools": [{"functionDeclarations": []}, {"urlContext": {}}]}),
    "gemini-url-context-snake-case": ("gemini", {"tools": [{"url_context": {}}]}),
    "gemini-file-by-url": ("gemini", {"contents": [{"role": "user", "parts": [
        {"file_data": {"file_uri": "https://evil.example/x.pdf", "mime_type": "application/pdf"}}]}]}),
}


@pytest.mark.parametrize("case", list(SERVER_TOOL_CASES))
def test_bodies_with_server_side_tools_are_refused(three, case):
    vendor, extra = SERVER_TOOL_CASES[case]
    status, entry = _refused(three, vendor, PATHS[vendor], body={**BODIES[vendor], **extra})
    assert (status, entry["decision"], entry["rule"]) == (400, "deny_server_tool", "server-side-tools")


@pytest.mark.parametrize("beta", ["mcp-client-2025-11-20", "web-fetch-2025-09-10", "mcp-servers-2025-12-04"])
def test_beta_headers_that_enable_server_side_tools_are_refused(three, beta):
    status, entry = _refused(three, "anthropic", PATHS["anthropic"],
                             headers={"anthropic-beta": f"claude-code-20250219,{beta}"})
    assert (status, entry["decision"]) == (400, "deny_server_tool")
    assert beta in entry["reason"]


def test_a_profile_that_allows_server_side_tools_gets_them_forwarded(tmp_path):
    with SseUpstream(hold_second_event=False) as upstream, \
            GatewayProcess(tmp_path, REAL_KEYS, {v: upstream.url for v in VENDORS}, model_server_tools=True) as gateway:
        for vendor, extra in SERVER_TOOL_CASES.values():
            status, _ = send(gateway.url(vendor), PATHS[vendor],
                             {**CLIENT_HEADERS[vendor], "anthropic-beta": "mcp-client-2025-11-20"},
                             {**BODIES[vendor], **extra})
            assert status == 200
    assert len(upstream.requests) == len(SERVER_TOOL_CASES)


BODY_CASES = {
    "not-json": (b"{not json", {}, 400),
    "a-list": (b"[]", {}, 400),
    "repeated-key": (b'{"tools": [{"type": "web_fetch_20250910"}], "tools": []}', {}, 400),
    "nan": (b'{"max_tokens": NaN}', {}, 400),
    "not-utf8": ('{"model": "\u00e9"}'.encode("latin-1"), {}, 400),
    "compressed": (b"\x1f\x8b\x08\x00", {"content-encoding": "gzip"}, 415),
}


@pytest.mark.parametrize("case", list(BODY_CASES))
def test_bodies_the_gateway_cannot_read_exactly_are_refused(three, case):
    body, headers, expected = BODY_CASES[case]
    status, entry = _refused(three, "anthropic", PATHS["anthropic"], body=body, headers=headers)
    assert (status, entry["decision"], entry["rule"]) == (expected, "deny_body", "body-format")


@pytest.mark.parametrize("vendor, path, decision", [
    ("gemini", "/v1beta/models/m:streamGenerateContent?alt=sse&key=AIzaAgentsOwnKey", "deny_key_in_query"),
    ("gemini", "/v1beta/models/m:generateContent?%6Bey=AIzaAgentsOwnKey", "deny_key_in_query"),
    ("gemini", "/v1beta/models/m:generateContent?access_token=ya29.agents", "deny_key_in_query"),
    ("gemini", "/v1beta/models/m:streamGenerateContent?alt=json", "deny_query"),
    ("gemini", "/v1beta/models/m:streamGenerateContent?alt=sse;x=1", "deny_query"),
    ("gemini", "/v1beta/models/m:generateContent?%24alt=sse", "deny_query"),
    ("anthropic", "/v1/messages?beta=true&beta=true", "deny_query"),
    ("openai", "/v1/responses?stream=true", "deny_query"),
])
def test_query_strings_carry_no_key_and_nothing_unknown(three, vendor, path, decision):
    status, entry = _refused(three, vendor, path)
    assert (status, entry["decision"]) == (400, decision)
    gateway, _ = three
    assert "Agents" not in gateway.access_log.read_text() and "ya29" not in gateway.access_log.read_text()


def test_a_websocket_upgrade_is_refused_at_once(three):
    status, entry = _refused(three, "openai", "/v1/responses", method="GET",
                             headers={"upgrade": "websocket", "connection": "Upgrade",
                                      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13"},
                             body=b"")
    assert (status, entry["decision"]) == (426, "deny_upgrade")


def test_a_body_over_the_limit_is_refused_with_or_without_a_length(three):
    gateway, upstream = three
    big = {**BODIES["anthropic"], "system": "x" * 5000}
    status, entry = _refused(three, "anthropic", PATHS["anthropic"], body=big)
    assert (status, entry["decision"], entry["rule"]) == (413, "deny_too_large", "request-size")
    # Chunked, so that the gateway only learns the size while reading.
    host, port = gateway.url("anthropic").removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", PATHS["anthropic"], body=iter([json.dumps(big).encode()]), encode_chunked=True,
                 headers={"content-type": "application/json", "transfer-encoding": "chunked"})
    response = conn.getresponse()
    assert response.status == 413
    conn.close()
    assert gateway.log()[-1]["decision"] == "deny_too_large"
    assert len(upstream.requests) == 0 or all(len(r["body"]) < 4096 for r in upstream.requests)


def test_clients_outside_the_agent_subnets_are_refused(tmp_path):
    with SseUpstream(hold_second_event=False) as upstream, \
            GatewayProcess(tmp_path, {"openai": REAL_KEYS["openai"]}, {"openai": upstream.url},
                           agent_subnets=("127.0.0.2/32",)) as gateway:
        # 127.0.0.1 is outside the subnet; 127.0.0.2 inside.
        outside = send(gateway.url("openai"), PATHS["openai"], CLIENT_HEADERS["openai"], BODIES["openai"],
                       source="127.0.0.1")
        inside = send(gateway.url("openai"), PATHS["openai"], CLIENT_HEADERS["openai"], BODIES["openai"],
                      source="127.0.0.2")
    assert outside[0] == 403 and refusal_of(outside[1])["rule"] == "agent-subnets"
    assert inside[0] == 200
    assert len(upstream.requests) == 1
    assert [(e["client"], e["decision"]) for e in gateway.log()] == [("127.0.0.1", "deny_source"),
                                                                     ("127.0.0.2", "forward")]


def _with_upload_endpoint(config):
    # An endpoint whose body nothing decides (as git's pack uploads will be): it streams through.
    config["routes"][0]["endpoints"].append({"id": "upload", "method": "PUT", "path": "/upload", "query": {},
                                              "body": None})


def test_a_body_no_rule_reads_streams_through_within_the_limit(tmp_path):
    with SseUpstream(hold_second_event=False) as upstream, \
            GatewayProcess(tmp_path, {"anthropic": REAL_KEYS["anthropic"]}, {"anthropic": upstream.url},
                           limits={"max_request_bytes": 3_000_000}, edit_config=_with_upload_endpoint) as gateway:
        upload = os.urandom(2_500_000)
        status, _ = send(gateway.url("anthropic"), "/upload", {"content-encoding": "gzip"}, upload, method="PUT")
        assert status == 200
        status, payload = send(gateway.url("anthropic"), "/upload", {}, os.urandom(3_500_000), method="PUT")
        assert status == 413 and refusal_of(payload)["decision"] == "deny_too_large"
    first = upstream.requests[0]
    assert first["body"] == upload and first["headers"]["content-encoding"] == "gzip"
    assert first["headers"]["x-api-key"] == REAL_KEYS["anthropic"]
    forwarded, refused = gateway.log()
    assert (forwarded["decision"], forwarded["rule"], forwarded["bytes_up"]) == ("forward", "anthropic:upload", len(upload))
    assert (refused["decision"], refused["rule"]) == ("deny_too_large", "request-size")
    assert refused["bytes_up"] > 3_000_000


# --- time limits ---------------------------------------------------------------------------------

def test_a_silent_vendor_times_out(tmp_path):
    with SseUpstream(delay=3) as upstream, \
            GatewayProcess(tmp_path, {"anthropic": REAL_KEYS["anthropic"]}, {"anthropic": upstream.url},
                           limits={"upstream_idle_timeout_s": 0.5}) as gateway:
        started = time.monotonic()
        status, payload = send(gateway.url("anthropic"), PATHS["anthropic"], CLIENT_HEADERS["anthropic"],
                               BODIES["anthropic"])
        took = time.monotonic() - started
    assert status == 504 and took < 2.5
    assert gateway.log()[-1]["reason"] == "the vendor did not answer in time"


def test_a_client_that_sends_its_body_too_slowly_is_cut_off(tmp_path):
    with SseUpstream() as upstream, \
            GatewayProcess(tmp_path, {"anthropic": REAL_KEYS["anthropic"]}, {"anthropic": upstream.url},
                           limits={"client_body_timeout_s": 0.5}) as gateway:
        port = gateway.ports["anthropic"]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{\"model\"")
            answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 408")
    assert gateway.log()[-1]["decision"] == "deny_timeout"
    assert upstream.requests == []


# --- the key --------------------------------------------------------------------------------------

def test_the_key_is_in_no_command_line_environment_or_config(tmp_path):
    key = REAL_KEYS["anthropic"]
    with SseUpstream(hold_second_event=False) as upstream, \
            GatewayProcess(tmp_path, {"anthropic": key}, {"anthropic": upstream.url}) as gateway:
        pid = gateway.process.pid
        for name in ("cmdline", "environ"):
            assert key.encode() not in open(f"/proc/{pid}/{name}", "rb").read()
        assert send(gateway.url("anthropic"), PATHS["anthropic"], CLIENT_HEADERS["anthropic"],
                    BODIES["anthropic"])[0] == 200
    assert upstream.requests[0]["headers"]["x-api-key"] == key
    assert key not in gateway.conf.read_text()
    secret = gateway.secrets_dir / "anthropic"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o400
    assert stat.S_IMODE(gateway.secrets_dir.stat().st_mode) == 0o500


def test_the_gateway_process_cannot_be_dumped_or_traced():
    # PR_GET_DUMPABLE (3) after harden_process: 0, so no core file and no ptrace or /proc/PID/mem
    # for other processes of the gateway's user.
    script = ("import ctypes, resource; from egress.gateway_server import harden_process; harden_process(); "
              "print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0), resource.getrlimit(resource.RLIMIT_CORE))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert done.stdout.split() == ["0", "(0,", "0)"]


def _start_fails(tmp_path, prepare) -> str:
    gateway = GatewayProcess(tmp_path, {"anthropic": REAL_KEYS["anthropic"]}, {"anthropic": "https://127.0.0.1:9"})
    prepare(gateway)
    done = subprocess.run([sys.executable, "-m", "egress.gateway_server", "--config", str(gateway.conf)],
                          capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, done.stderr
    assert not gateway.ready_file.exists()
    assert REAL_KEYS["anthropic"] not in done.stderr
    return done.stderr


def _replace_secret(gateway, how):
    os.chmod(gateway.secrets_dir, 0o700)
    secret = gateway.secrets_dir / "anthropic"
    how(secret)


def test_a_missing_secret_stops_the_start_naming_the_file(tmp_path):
    message = _start_fails(tmp_path, lambda g: _replace_secret(g, lambda s: s.unlink()))
    assert "secrets" in message and "anthropic" in message and "No such file" in message


def test_a_symlinked_secret_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text(REAL_KEYS["anthropic"])
    os.chmod(target, 0o400)

    def link(secret):
        secret.unlink()
        secret.symlink_to(target)
    assert "symbolic link" in _start_fails(tmp_path, lambda g: _replace_secret(g, link))


def test_a_secret_others_can_read_is_refused(tmp_path):
    message = _start_fails(tmp_path, lambda g: _replace_secret(g, lambda s: os.chmod(s, 0o644)))
    assert "0644" in message and "0400" in message


def test_a_fifo_secret_is_refused_without_hanging(tmp_path):
    def fifo(secret):
        secret.unlink()
        os.mkfifo(secret, 0o400)
    assert "not a regular file" in _start_fails(tmp_path, lambda g: _replace_secret(g, fifo))


def test_a_config_of_another_format_is_refused(tmp_path):
    def older(gateway):
        config = json.loads(gateway.conf.read_text())
        config["format"] = 0
        gateway.conf.write_text(json.dumps(config))
    assert "format" in _start_fails(tmp_path, older)


# --- the config -----------------------------------------------------------------------------------

def test_the_config_names_each_route_and_holds_no_secret():
    config = json.loads(render_gateway_config(["openai"], agent_subnets=["10.213.7.0/24"]))
    assert config["agent_subnets"] == ["10.213.7.0/24"] and config["model_server_tools"] is False
    [route] = config["routes"]
    assert (route["name"], route["port"], route["upstream"]) == ("openai", 8082, "https://api.openai.com")
    assert route["credential"] == {"secret": "openai", "header": "authorization", "prefix": "Bearer ",
                                   "login": "codex/api-key", "token_url": None}
    assert {(e["method"], e["path"]) for e in route["endpoints"]} == {("POST", "/v1/responses"),
                                                                     ("POST", "/v1/responses/compact")}
    assert config["secrets_dir"] == "/run/agent-gateway/secrets"
    assert config["ready_file"] == "/var/lib/agent-gateway/ready"
    assert config["access_log"] == "/var/log/agent-gateway/access.log"
    assert config["ca_file"] is None


def test_render_refuses_bad_input():
    with pytest.raises(ValueError, match="vendors"):
        render_gateway_config(["mistral"], agent_subnets=["10.0.0.0/24"])
    with pytest.raises(ValueError, match="subnet"):
        render_gateway_config(["openai"], agent_subnets=["nonsense"])
    with pytest.raises(ValueError, match="subnets"):
        render_gateway_config(["openai"], agent_subnets=[])
    with pytest.raises(ValueError, match="upstream"):
        render_gateway_config(["anthropic"], agent_subnets=["10.0.0.0/24"], upstreams={"anthropic": "ftp://x"})
    with pytest.raises(ValueError, match="limits"):
        render_gateway_config(["anthropic"], agent_subnets=["10.0.0.0/24"], limits={"max_request_bytes": -1})
    with pytest.raises(ValueError, match="ca_file"):
        render_gateway_config(["anthropic"], agent_subnets=["10.0.0.0/24"], ca_file="relative.pem")


def test_the_gateway_checks_a_production_config(tmp_path):
    from egress.gateway import write_secrets
    config = json.loads(render_gateway_config(["anthropic", "gemini", "openai"], agent_subnets=["10.213.7.0/24"]))
    config["secrets_dir"] = str(tmp_path / "secrets")
    (tmp_path / "config.json").write_text(json.dumps(config))
    write_secrets(tmp_path / "secrets", REAL_KEYS, uid=os.getuid(), gid=os.getgid())
    done = subprocess.run([sys.executable, "-m", "egress.gateway_server", "--check", "--config",
                           str(tmp_path / "config.json")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "3 route(s)" in done.stderr


def test_keys_are_read_from_a_file_or_a_command(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(REAL_KEYS["openai"] + "\n")
    assert read_key(KeySource("openai", file=key_file)) == REAL_KEYS["openai"]
    command = ("sh", "-c", f"printf %s {REAL_KEYS['gemini']}")
    assert read_key(KeySource("gemini", command=command)) == REAL_KEYS["gemini"]


@pytest.mark.parametrize("text", ['sk-"\r\nx-evil: 1', "sk-with space-01234", "short", PLACEHOLDER_KEY])
def test_a_key_that_could_break_a_header_is_refused_without_echoing_it(tmp_path, text):
    key_file = tmp_path / "key"
    key_file.write_text(text)
    with pytest.raises(ValueError) as error:
        read_key(KeySource("anthropic", file=key_file))
    assert text not in str(error.value)
    assert str(key_file) in str(error.value)


def test_a_failing_key_command_names_the_command_not_its_output(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("sk-ant-SECRET-0123456789")
    with pytest.raises(ValueError) as error:
        read_key(KeySource("anthropic", command=("sh", "-c", 'cat "$0"; exit 3', str(secret))))
    assert "exited 3" in str(error.value) and str(secret) in str(error.value)
    assert "SECRET" not in str(error.value)


def test_agent_environment_holds_base_urls_and_placeholders_only():
    env = agent_environment("agent-gateway", ["anthropic", "gemini", "openai"])
    assert env == {"ANTHROPIC_API_KEY": PLACEHOLDER_KEY, "ANTHROPIC_BASE_URL": "http://agent-gateway:8081",
                   "GEMINI_API_KEY": PLACEHOLDER_KEY, "GOOGLE_GEMINI_BASE_URL": "http://agent-gateway:8083",
                   "OPENAI_API_KEY": PLACEHOLDER_KEY}


def test_vendors_follow_the_allowlist():
    assert vendors_from_allowlist(["api.anthropic.com", "github.com"]) == ["anthropic"]
    assert vendors_from_allowlist([".googleapis.com", "api.openai.com"]) == ["gemini", "openai"]
    assert vendors_from_allowlist(["evil-api.anthropic.com.example"]) == []


def test_the_audit_reads_the_real_gateway_log(tmp_path):
    from launcher.audit import build_audit
    with SseUpstream(hold_second_event=False) as upstream, \
            GatewayProcess(tmp_path, {"anthropic": REAL_KEYS["anthropic"]}, {"anthropic": upstream.url}) as gateway:
        for path in (PATHS["anthropic"], "/v1/files"):
            send(gateway.url("anthropic"), path, CLIENT_HEADERS["anthropic"], BODIES["anthropic"])
    audit = build_audit(gateway_log=gateway.access_log)
    assert audit["problems"] == []
    [forwarded] = audit["model_api"]["forwarded"]
    assert (forwarded["vendor"], forwarded["method"], forwarded["path"], forwarded["status"]) == (
        "anthropic", "POST", "/v1/messages", 200)
    assert [r["rule"] for r in audit["model_api"]["refused"]] == ["deny_endpoint"]
