"""The credential gateway: the real nginx, the rendered config, a stand-in vendor on 127.0.0.1."""
from __future__ import annotations

import http.client
import json
import os
import stat

import pytest

from egress.gateway import (PLACEHOLDER_KEY, VENDORS, KeySource, agent_environment, read_key, render_gateway,
                            render_key_include, vendors_from_allowlist)
from egress_certs import make_ca, make_server_cert
from egress_nginx import Gateway
from egress_sse import SseUpstream

REAL_KEYS = {"anthropic": "sk-ant-REAL-0123456789abcdef", "openai": "sk-proj-REAL-0123456789abcdef",
             "gemini": "AIzaREAL0123456789abcdef"}
VENDOR_HOSTS = {"anthropic": "api.anthropic.com", "openai": "api.openai.com",
                "gemini": "generativelanguage.googleapis.com"}
PATHS = {"anthropic": "/v1/messages", "openai": "/v1/responses",
         "gemini": "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"}
# What each CLI sends: its placeholder in its own header, plus a stray bearer token.
CLIENT_HEADERS = {
    "anthropic": {"x-api-key": PLACEHOLDER_KEY, "authorization": f"Bearer {PLACEHOLDER_KEY}"},
    "openai": {"authorization": f"Bearer {PLACEHOLDER_KEY}", "x-api-key": PLACEHOLDER_KEY},
    "gemini": {"x-goog-api-key": PLACEHOLDER_KEY, "authorization": f"Bearer {PLACEHOLDER_KEY}"},
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gateway-certs")
    ca = make_ca(root)
    cert, key = make_server_cert(root, ca, list(VENDOR_HOSTS.values()))
    other_root = tmp_path_factory.mktemp("other-ca")
    other_ca = make_ca(other_root)
    return {"ca": ca, "cert": cert, "key": key, "other_ca": other_ca}


def _post(url: str, path: str, headers: dict[str, str], body: bytes = b'{"stream": true}'):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("POST", path, body=body, headers={"content-type": "application/json", **headers})
    return conn, conn.getresponse()


def _log(gateway: Gateway) -> list[dict]:
    return [json.loads(line) for line in gateway.access_log.read_text().splitlines()]


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_upstream_sees_the_real_key_and_events_arrive_as_they_are_sent(tmp_path, certs, vendor):
    with SseUpstream(certs["cert"], certs["key"]) as upstream, \
            Gateway(tmp_path, {vendor: REAL_KEYS[vendor]}, {vendor: upstream.url},
                    tls_names={vendor: VENDOR_HOSTS[vendor]}, ca_file=certs["ca"]) as gateway:
        conn, response = _post(gateway.url(vendor), PATHS[vendor], CLIENT_HEADERS[vendor])
        assert response.status == 200
        # The upstream holds back its second event until released: the first must already be here.
        first = response.readline()
        assert first == b"event: message_start\n"
        upstream.release.set()
        rest = response.read()
        conn.close()
    assert b"message_stop" in rest
    [seen] = upstream.requests
    spec = VENDORS[vendor]
    assert seen["headers"][spec.key_header.lower()] == spec.key_prefix + REAL_KEYS[vendor]
    assert not any(PLACEHOLDER_KEY in value for value in seen["headers"].values()), seen["headers"]
    for header in spec.strip_headers:
        assert header.lower() not in seen["headers"]
    assert seen["headers"]["host"] == VENDOR_HOSTS[vendor]
    assert seen["path"] == PATHS[vendor]
    [entry] = _log(gateway)
    assert (entry["vendor"], entry["decision"], entry["status"]) == (vendor, "forward", 200)
    assert REAL_KEYS[vendor] not in gateway.access_log.read_text()
    assert "alt=sse" not in gateway.access_log.read_text()  # query strings are never logged


def test_an_upstream_with_an_untrusted_certificate_gets_nothing(tmp_path, certs):
    with SseUpstream(certs["cert"], certs["key"]) as upstream, \
            Gateway(tmp_path, {"anthropic": REAL_KEYS["anthropic"]}, {"anthropic": upstream.url},
                    tls_names={"anthropic": "api.anthropic.com"}, ca_file=certs["other_ca"]) as gateway:
        conn, response = _post(gateway.url("anthropic"), PATHS["anthropic"], CLIENT_HEADERS["anthropic"])
        assert response.status == 502
        conn.close()
    assert upstream.requests == []


def test_a_name_mismatch_gets_nothing(tmp_path, certs):
    with SseUpstream(certs["cert"], certs["key"]) as upstream, \
            Gateway(tmp_path, {"anthropic": REAL_KEYS["anthropic"]}, {"anthropic": upstream.url},
                    tls_names={"anthropic": "evil.example.com"}, ca_file=certs["ca"]) as gateway:
        conn, response = _post(gateway.url("anthropic"), PATHS["anthropic"], CLIENT_HEADERS["anthropic"])
        assert response.status == 502
        conn.close()
    assert upstream.requests == []


def test_paths_outside_the_api_and_keys_in_the_query_are_refused(tmp_path):
    with SseUpstream() as upstream, \
            Gateway(tmp_path, {"anthropic": REAL_KEYS["anthropic"], "gemini": REAL_KEYS["gemini"]},
                    {"anthropic": upstream.url, "gemini": upstream.url}) as gateway:
        conn, response = _post(gateway.url("anthropic"), "/api/hello", CLIENT_HEADERS["anthropic"])
        assert response.status == 404
        conn.close()
        conn, response = _post(gateway.url("gemini"), "/v1beta/models/m:generateContent?key=stolen", {})
        assert response.status == 400
        conn.close()
    assert upstream.requests == []
    assert [(e["vendor"], e["decision"]) for e in _log(gateway)] == [
        ("anthropic", "deny_path"), ("gemini", "deny_key_in_query")]


def test_clients_outside_the_agent_subnets_are_refused(tmp_path):
    with SseUpstream() as upstream, \
            Gateway(tmp_path, {"openai": REAL_KEYS["openai"]}, {"openai": upstream.url},
                    agent_subnets=("198.19.1.0/24",)) as gateway:
        conn, response = _post(gateway.url("openai"), PATHS["openai"], CLIENT_HEADERS["openai"])
        assert response.status == 403
        conn.close()
    assert upstream.requests == []
    assert [e["decision"] for e in _log(gateway)] == ["deny_source"]


def test_the_key_is_in_no_command_line_environment_or_rendered_config(tmp_path):
    key = REAL_KEYS["anthropic"]
    with SseUpstream() as upstream, \
            Gateway(tmp_path, {"anthropic": key}, {"anthropic": upstream.url}) as gateway:
        pids = gateway.pids()
        assert len(pids) >= 2  # master and a worker
        for pid in pids:
            for name in ("cmdline", "environ"):
                assert key.encode() not in open(f"/proc/{pid}/{name}", "rb").read()
        # The key works, so it was loaded from the include.
        conn, response = _post(gateway.url("anthropic"), PATHS["anthropic"], CLIENT_HEADERS["anthropic"])
        upstream.release.set()
        response.read()
        conn.close()
    assert upstream.requests[0]["headers"]["x-api-key"] == key
    assert key not in gateway.conf.read_text()
    include = gateway.key_dir / "anthropic.conf"
    assert stat.S_IMODE(include.stat().st_mode) == 0o600 and include.stat().st_uid == 0
    assert stat.S_IMODE(gateway.key_dir.stat().st_mode) == 0o700


def test_keys_are_read_from_a_file_or_a_command(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(REAL_KEYS["openai"] + "\n")
    assert read_key(KeySource("openai", file=key_file)) == REAL_KEYS["openai"]
    command = ("sh", "-c", f"printf %s {REAL_KEYS['gemini']}")
    assert read_key(KeySource("gemini", command=command)) == REAL_KEYS["gemini"]


@pytest.mark.parametrize("text", ['sk-"; proxy_pass http://evil; #', "sk-$remote_addr-0123", "short",
                                  PLACEHOLDER_KEY, "sk-with space-01234"])
def test_a_key_that_could_break_the_include_is_refused_without_echoing_it(tmp_path, text):
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


def test_missing_key_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="No such file"):
        read_key(KeySource("anthropic", file=tmp_path / "absent"))


def test_render_refuses_bad_input():
    with pytest.raises(ValueError, match="vendors"):
        render_gateway(["mistral"], agent_subnets=["10.0.0.0/24"])
    with pytest.raises(ValueError, match="subnet"):
        render_gateway(agent_subnets=["nonsense"])
    with pytest.raises(ValueError, match="subnet"):
        render_gateway(agent_subnets=[])
    with pytest.raises(ValueError, match="path"):
        render_gateway(agent_subnets=["10.0.0.0/24"], key_dir="/run/keys; evil")
    with pytest.raises(ValueError, match="upstream"):
        render_gateway(["anthropic"], agent_subnets=["10.0.0.0/24"], upstreams={"anthropic": "ftp://x"})


def test_the_production_config_passes_nginx_t(tmp_path):
    import subprocess
    from egress.gateway import write_key_includes
    # The production config, with addresses in place of the vendors' names so that nginx resolves
    # nothing; in a fresh network namespace, so that no query could leave anyway.
    conf = render_gateway(agent_subnets=["10.213.0.0/24"], key_dir=str(tmp_path / "keys"),
                          runtime_dir=str(tmp_path), log_dir=str(tmp_path),
                          upstreams={v: "https://127.0.0.1" for v in VENDORS},
                          upstream_tls_names=dict(VENDOR_HOSTS))
    write_key_includes(tmp_path / "keys", REAL_KEYS)
    (tmp_path / "nginx.conf").write_text(conf)
    done = subprocess.run(["unshare", "--net", "nginx", "-t", "-e", str(tmp_path / "e.log"),
                           "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr


def test_agent_environment_holds_base_urls_and_placeholders_only():
    env = agent_environment("agent-gateway", ["anthropic", "gemini", "openai"])
    assert env == {"ANTHROPIC_API_KEY": PLACEHOLDER_KEY, "ANTHROPIC_BASE_URL": "http://agent-gateway:8081",
                   "GEMINI_API_KEY": PLACEHOLDER_KEY, "GOOGLE_GEMINI_BASE_URL": "http://agent-gateway:8083",
                   "OPENAI_API_KEY": PLACEHOLDER_KEY}


def test_vendors_follow_the_allowlist():
    assert vendors_from_allowlist(["api.anthropic.com", "github.com"]) == ["anthropic"]
    assert vendors_from_allowlist([".googleapis.com", "api.openai.com"]) == ["gemini", "openai"]
    assert vendors_from_allowlist(["evil-api.anthropic.com.example"]) == []


def test_key_include_line():
    assert render_key_include("openai", "sk-0123456789") == 'proxy_set_header Authorization "Bearer sk-0123456789";\n'


def test_the_audit_reads_the_real_gateway_log(tmp_path, certs):
    from launcher.audit import build_audit
    with SseUpstream(hold_second_event=False) as upstream, \
            Gateway(tmp_path, {"anthropic": REAL_KEYS["anthropic"]}, {"anthropic": upstream.url}) as gateway:
        for path in (PATHS["anthropic"], "/api/hello"):
            conn, response = _post(gateway.url("anthropic"), path, CLIENT_HEADERS["anthropic"])
            response.read()
            conn.close()
    audit = build_audit(gateway_log=gateway.access_log)
    assert audit["problems"] == []
    assert audit["model_api"]["forwarded"] == [
        {"vendor": "anthropic", "method": "POST", "path": "/v1/messages", "status": 200, "requests": 1}]
    assert [r["rule"] for r in audit["model_api"]["refused"]] == ["deny_path"]
