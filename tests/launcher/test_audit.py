"""launcher.audit: one log per run from the proxy log, the gateway log and the run report."""
from __future__ import annotations

import json

from launcher.audit import build_audit, format_audit, main, parse_squid_line, write_audit

SQUID = """\
1795300737.663 client=10.213.0.10 status=TCP_TUNNEL/200 bytes=1690 method=CONNECT url=api.github.com:443 server=140.82.1.1 decision=allow_allowlisted
1795300737.664 client=10.213.0.10 status=TCP_TUNNEL/200 bytes=90 method=CONNECT url=api.github.com:443 server=140.82.1.1 decision=allow_allowlisted
1795300737.665 client=10.213.0.10 status=TCP_DENIED/403 bytes=3408 method=CONNECT url=evil.example.com:443 server=- decision=deny_not_allowlisted
1795300737.666 client=10.213.0.10 status=TCP_DENIED/403 bytes=3398 method=GET url=http://github.com:22/ server=- decision=deny_plain_http
1795300737.667 client=10.213.0.10 status=TCP_DENIED/403 bytes=3398 method=CONNECT url=[::1]:443 server=- decision=deny_ip_literal
1795300737.668 client=10.213.0.10 status=TCP_TUNNEL/503 bytes=0 method=CONNECT url=pypi.org:443 server=- decision=allow_allowlisted
1795300737.669 client=10.213.0.10 status=NONE_NONE/000 bytes=0 method=- url=error:transaction-end-before-headers server=- decision=-
garbage line
"""
GATEWAY = "\n".join(json.dumps(e) for e in [
    {"time": "t", "client": "10.213.0.10", "vendor": "anthropic", "method": "POST", "path": "/v1/messages",
     "status": 200, "upstream_status": "200", "request_time": 0.5, "decision": "forward"},
    {"time": "t", "client": "10.213.0.10", "vendor": "anthropic", "method": "GET", "path": "/api/hello",
     "status": 404, "upstream_status": "", "request_time": 0.0, "decision": "deny_path"},
]) + "\n{not json\n"
REPORT = {"tool": "claude", "exit_code": 0, "tool_calls": [{"command": "ls"}, {"command": "git push -f"}],
          "denials": [{"command": "git push -f", "rule": "git-push-force", "reason": "rewrites history"}],
          "extra": "ignored"}


def test_parse_squid_line():
    entry = parse_squid_line(SQUID.splitlines()[4])
    assert (entry["host"], entry["port"], entry["decision"], entry["http_status"]) == ("::1", 443, "deny_ip_literal", 403)
    assert parse_squid_line("garbage line") is None
    assert parse_squid_line("") is None


def test_audit_of_a_run(tmp_path):
    (tmp_path / "access.log").write_text(SQUID)
    (tmp_path / "gateway.log").write_text(GATEWAY)
    (tmp_path / "report.json").write_text(json.dumps(REPORT))
    audit = build_audit(tmp_path / "access.log", tmp_path / "gateway.log", tmp_path / "report.json")
    assert audit["network"]["reached"] == [{"host": "api.github.com", "port": 443, "requests": 2}]
    assert audit["network"]["allowed_but_failed"] == [{"host": "pypi.org", "port": 443, "requests": 1}]
    assert audit["network"]["refused"] == [
        {"host": "::1", "port": 443, "rule": "deny_ip_literal", "requests": 1},
        {"host": "evil.example.com", "port": 443, "rule": "deny_not_allowlisted", "requests": 1},
        {"host": "github.com", "port": 22, "rule": "deny_plain_http", "requests": 1},
    ]
    assert audit["network"]["connections_without_request"] == 1
    assert audit["model_api"]["forwarded"] == [
        {"vendor": "anthropic", "method": "POST", "path": "/v1/messages", "status": 200, "requests": 1}]
    assert audit["model_api"]["refused"] == [
        {"vendor": "anthropic", "method": "GET", "path": "/api/hello", "rule": "deny_path", "requests": 1}]
    assert audit["run"] == {"tool": "claude", "exit_code": 0, "tool_calls": 2, "tool_denials": [
        {"command": "git push -f", "rule": "git-push-force", "reason": "rewrites history"}]}
    assert audit["problems"] == ["proxy log: 1 line(s) not in the agent_sandbox format",
                                 "gateway log: 1 line(s) not in the agent_sandbox_gateway format"]
    text = format_audit(audit)
    assert "refused   evil.example.com:443 by deny_not_allowlisted" in text
    assert "denied    'git push -f' by git-push-force" in text


def test_missing_and_malformed_sources_are_problems_not_crashes(tmp_path):
    (tmp_path / "report.json").write_text("[1, 2]")
    audit = build_audit(tmp_path / "absent.log", None, tmp_path / "report.json")
    assert audit["network"]["reached"] == []
    assert any("absent.log" in p for p in audit["problems"])
    assert any("not a JSON object" in p for p in audit["problems"])
    (tmp_path / "report.json").write_text('{"denials": "nope", "tool_calls": 3}')
    audit = build_audit(None, None, tmp_path / "report.json")
    assert audit["run"]["tool_denials"] == [] and audit["run"]["tool_calls"] is None
    assert any("'denials' is not a list" in p for p in audit["problems"])


def test_write_is_atomic_and_cli_writes_json(tmp_path, capsys):
    (tmp_path / "access.log").write_text(SQUID)
    out = tmp_path / "audit.json"
    write_audit(out, {"old": True})
    assert main(["--proxy-log", str(tmp_path / "access.log"), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["network"]["reached"][0]["host"] == "api.github.com"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert "reached   api.github.com:443 (2x)" in capsys.readouterr().out
