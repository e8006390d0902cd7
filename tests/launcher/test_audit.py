"""launcher.audit: one log per run from the proxy log, the gateway log and the run report."""
from __future__ import annotations

import json
import os
import threading

import pytest

from launcher.audit import build_audit, format_audit, main, parse_squid_line, read_capped, safe, write_audit

SQUID = """\
1795300737.663 client=10.213.0.10 status=TCP_TUNNEL/200 bytes_up=5000 bytes_down=1690 method=CONNECT url=api.github.com:443 server=140.82.1.1 decision=allow_allowlisted
1795300737.664 client=10.213.0.10 status=TCP_TUNNEL/200 bytes_up=300000 bytes_down=90 method=CONNECT url=api.github.com:443 server=140.82.1.1 decision=allow_allowlisted
1795300737.665 client=10.213.0.10 status=TCP_DENIED/403 bytes_up=69 bytes_down=3408 method=CONNECT url=evil.example.com:443 server=- decision=deny_not_allowlisted
1795300737.666 client=10.213.0.10 status=TCP_DENIED/403 bytes_up=80 bytes_down=3398 method=GET url=http://github.com:22/ server=- decision=deny_plain_http
1795300737.667 client=10.213.0.10 status=TCP_DENIED/403 bytes_up=60 bytes_down=3398 method=CONNECT url=[::1]:443 server=- decision=deny_ip_literal
1795300737.668 client=10.213.0.10 status=TCP_TUNNEL/503 bytes_up=70 bytes_down=0 method=CONNECT url=pypi.org:443 server=- decision=allow_allowlisted
1795300737.669 client=10.213.0.10 status=NONE_NONE/000 bytes_up=0 bytes_down=0 method=- url=error:transaction-end-before-headers server=- decision=-
garbage line
1795300737.670 client=10.213.0.10 status=TCP_DENIED/403 bytes_up=1 bytes_down=1 method=CONNECT url=x:443 server=- decision=deny_port decision=allow_allowlisted
"""
GATEWAY = "\n".join(json.dumps(e) for e in [
    {"time": "t", "client": "10.213.0.10", "vendor": "anthropic", "method": "POST", "path": "/v1/messages",
     "status": 200, "decision": "forward", "rule": "anthropic:messages", "reason": "", "bytes_up": 50000,
     "bytes_down": 900},
    {"time": "t", "client": "10.213.0.10", "vendor": "anthropic", "method": "POST", "path": "/v1/messages",
     "status": 200, "decision": "forward", "rule": "anthropic:messages", "reason": "", "bytes_up": 60000,
     "bytes_down": 1000},
    {"time": "t", "client": "10.213.0.10", "vendor": "anthropic", "method": "POST", "path": "/v1/files",
     "status": 404, "decision": "deny_endpoint", "rule": "endpoint-allowlist", "reason": "...", "bytes_up": 0,
     "bytes_down": 200},
]) + "\n{not json\n"
REPORT = {"tool": "claude", "exit_code": 0, "tool_calls": [{"command": "ls"}, {"command": "git push -f"}],
          "denials": [{"command": "git push -f", "rule": "git-push-force", "reason": "rewrites history"}],
          "extra": "ignored"}


def test_parse_squid_line():
    entry = parse_squid_line(SQUID.splitlines()[4])
    assert (entry["host"], entry["port"], entry["decision"], entry["http_status"]) == ("::1", 443, "deny_ip_literal", 403)
    assert (entry["bytes_up"], entry["bytes_down"]) == (60, 3398)
    assert parse_squid_line("garbage line") is None
    assert parse_squid_line("") is None
    assert parse_squid_line(SQUID.splitlines()[-1]) is None  # a key twice: not ours


def test_audit_of_a_run(tmp_path):
    (tmp_path / "access.log").write_text(SQUID)
    (tmp_path / "gateway.log").write_text(GATEWAY)
    (tmp_path / "report.json").write_text(json.dumps(REPORT))
    audit = build_audit(tmp_path / "access.log", tmp_path / "gateway.log", tmp_path / "report.json")
    network, model = audit["network"], audit["model_api"]
    assert network["reached"] == [{"host": "api.github.com", "port": 443, "requests": 2,
                                   "bytes_up": 305000, "bytes_down": 1780}]
    assert network["allowed_but_failed"] == [{"host": "pypi.org", "port": 443, "requests": 1,
                                              "bytes_up": 70, "bytes_down": 0}]
    assert [(r["host"], r["port"], r["rule"], r["requests"]) for r in network["refused"]] == [
        ("::1", 443, "deny_ip_literal", 1), ("evil.example.com", 443, "deny_not_allowlisted", 1),
        ("github.com", 22, "deny_plain_http", 1)]
    assert {(r["host"], r["bytes_up"]) for r in network["bytes_by_host"]} == {
        ("api.github.com", 305000), ("evil.example.com", 69), ("github.com", 80), ("::1", 60), ("pypi.org", 70)}
    assert network["connections_without_request"] == 1
    assert model["forwarded"] == [{"vendor": "anthropic", "method": "POST", "path": "/v1/messages", "status": 200,
                                   "requests": 2, "bytes_up": 110000, "bytes_down": 1900}]
    assert [(r["path"], r["rule"]) for r in model["refused"]] == [("/v1/files", "deny_endpoint")]
    assert model["bytes_by_route"] == [{"vendor": "anthropic", "requests": 3, "bytes_up": 110000, "bytes_down": 2100}]
    assert audit["run"] == {"tool": "claude", "exit_code": 0, "tool_calls": 2, "tool_denials": [
        {"command": "git push -f", "rule": "git-push-force", "reason": "rewrites history"}]}
    assert audit["problems"] == ["proxy log: 2 line(s) not in the agent_sandbox format",
                                 "gateway log: 1 line(s) not in the agent_sandbox_gateway format"]
    text = format_audit(audit)
    assert "reached   api.github.com:443 (2x, up 297.9 KiB, down 1.7 KiB)" in text
    assert "refused   evil.example.com:443 by deny_not_allowlisted" in text
    assert "model     anthropic: 3 request(s), up 107.4 KiB, down 2.1 KiB" in text
    assert "denied    'git push -f' by git-push-force" in text


GITHUB_LINES = "\n".join(json.dumps(e) for e in [
    {"time": "t", "client": "10.213.0.10", "vendor": "github-git", "method": "POST", "path": "/octo/w.git/git-upload-pack",
     "status": 200, "decision": "forward", "rule": "github-fetch", "reason": "", "bytes_up": 900, "bytes_down": 5000},
    {"time": "t", "client": "10.213.0.10", "vendor": "github-git", "method": "POST",
     "path": "/octo/w.git/git-receive-pack", "status": 200, "decision": "deny_git", "rule": "github-push-namespace",
     "reason": "A push may create or update only the run's own branches", "bytes_up": 700, "bytes_down": 120},
    {"time": "t", "client": "10.213.0.10", "vendor": "github-api", "method": "DELETE", "path": "/repos/octo/w",
     "status": 403, "decision": "deny_api", "rule": "gh-repo-destructive", "reason": "\x1b[2Jdeletes the repository",
     "bytes_up": 0, "bytes_down": 200},
    {"time": "t", "client": "10.213.0.10", "vendor": "npm", "method": "PUT", "path": "/left-pad", "status": 403,
     "decision": "deny_registry", "rule": "npm-publish", "reason": "publishes a package", "bytes_up": 10,
     "bytes_down": 90},
])


def test_github_and_registry_requests_are_listed_apart_from_model_requests(tmp_path):
    (tmp_path / "gateway.log").write_text(GATEWAY + GITHUB_LINES + "\n")
    audit = build_audit(None, tmp_path / "gateway.log", None)
    assert [r["vendor"] for r in audit["model_api"]["bytes_by_route"]] == ["anthropic"]
    github = audit["github"]
    assert github["forwarded"] == [{"route": "github-git", "method": "POST", "path": "/octo/w.git/git-upload-pack",
                                    "status": 200, "requests": 1, "bytes_up": 900, "bytes_down": 5000}]
    assert [(r["route"], r["method"], r["rule"]) for r in github["refused"]] == [
        ("github-api", "DELETE", "gh-repo-destructive"), ("github-git", "POST", "github-push-namespace"),
        ("npm", "PUT", "npm-publish")]
    assert [r["route"] for r in github["bytes_by_route"]] == ["github-api", "github-git", "npm"]
    text = format_audit(audit)
    assert "github refused github-git POST /octo/w.git/git-receive-pack by github-push-namespace: A push may " \
           "create or update only the run's own branches (1x)" in text
    assert "github refused github-api DELETE /repos/octo/w by gh-repo-destructive: \\x1b[2Jdeletes" in text
    assert "github    github-git POST /octo/w.git/git-upload-pack -> 200 (1x)" in text
    assert "model refused" in text and "model     anthropic: 3 request(s)" in text


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


# --- what the agent chose never reaches the terminal raw ---------------------------------------

HOSTILE = ["\x1b[2J\x1b]0;owned\x07", "evil\r\ngood line", "\u202egnp.exe", "zero\u200bwidth", "\x9b31m", "back\\slash",
           "\x00nul", "del\x7f"]


@pytest.mark.parametrize("text", HOSTILE)
def test_safe_leaves_no_control_or_format_character(text):
    shown = safe(text)
    assert all(" " <= c <= "~" for c in shown), repr(shown)


def test_safe_keeps_plain_text_and_letters_readable():
    assert safe("git push --force origin main") == "git push --force origin main"
    assert safe("café/naïve.py") == "café/naïve.py"
    assert safe("\x1b[31m") == "\\x1b[31m" and safe("a\\x1b") == "a\\\\x1b"  # no ambiguity with a real escape
    assert safe("x" * 500).endswith("...") and len(safe("x" * 500)) == 203


def test_every_agent_chosen_string_is_escaped_in_the_printed_audit(tmp_path):
    evil = "\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J"
    squid = (f"1795300737.665 client=10.213.0.10 status=TCP_DENIED/403 bytes_up=1 bytes_down=1 method=CONNECT "
             f"url={evil}:443 server=- decision=deny_not_allowlisted\n")
    gateway = json.dumps({"vendor": "anthropic", "method": "POST", "path": f"/v1/{evil}", "status": 404,
                          "decision": f"deny_endpoint{evil}", "bytes_up": 1, "bytes_down": 1}) + "\n"
    report = {"tool": evil, "exit_code": evil, "tool_calls": [], "denials": [{"command": evil, "rule": evil}]}
    (tmp_path / "access.log").write_text(squid)
    (tmp_path / "gateway.log").write_text(gateway)
    (tmp_path / "report.json").write_text(json.dumps(report))
    audit = build_audit(tmp_path / "access.log", tmp_path / "gateway.log", tmp_path / "report.json")
    text = format_audit(audit)
    assert "\x1b" not in text and "\x07" not in text
    assert text.count("\\x1b") >= 5
    write_audit(tmp_path / "audit.json", audit)
    assert "\x1b" not in (tmp_path / "audit.json").read_text()


# --- inputs that could hang or redirect the reader ------------------------------------------------

def _with_deadline(function, seconds: float = 10):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", function()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the audit blocked"
    return result["value"]


def test_a_fifo_at_the_report_path_is_a_problem_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "report.json")
    audit = _with_deadline(lambda: build_audit(None, None, tmp_path / "report.json"))
    assert audit["run"] == {}
    assert audit["problems"] == [f"run report {tmp_path / 'report.json'}: a FIFO, not a regular file; not read"]


def test_a_fifo_in_place_of_a_log_is_a_problem_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "access.log")
    audit = _with_deadline(lambda: build_audit(tmp_path / "access.log"))
    assert "a FIFO" in audit["problems"][0]


def test_a_symlink_at_the_report_path_is_not_followed(tmp_path):
    secret = tmp_path / "host-secret.json"
    secret.write_text(json.dumps({"tool": "SECRET-CONTENT"}))
    (tmp_path / "report.json").symlink_to(secret)
    audit = build_audit(None, None, tmp_path / "report.json")
    assert audit["run"] == {}
    assert audit["problems"] == [f"run report {tmp_path / 'report.json'}: a symbolic link, not followed"]


def test_a_symlinked_folder_below_the_workspace_is_not_followed(tmp_path):
    workspace, elsewhere = tmp_path / "ws", tmp_path / "elsewhere"
    (elsewhere / "runs" / "r1").mkdir(parents=True)
    (elsewhere / "runs" / "r1" / "report.json").write_text(json.dumps({"tool": "planted"}))
    workspace.mkdir()
    (workspace / ".agent-sandbox").symlink_to(elsewhere)
    report = workspace / ".agent-sandbox" / "runs" / "r1" / "report.json"
    assert build_audit(None, None, report)["run"]["tool"] == "planted"  # without a base: followed
    audit = build_audit(None, None, report, report_base=workspace)
    assert audit["run"] == {} and "symbolic link, not followed" in audit["problems"][0]
    (workspace / ".agent-sandbox").unlink()
    (workspace / ".agent-sandbox" / "runs" / "r1").mkdir(parents=True)
    report.write_text(json.dumps({"tool": "claude"}))
    assert build_audit(None, None, report, report_base=workspace)["run"]["tool"] == "claude"


def test_inputs_are_read_up_to_a_cap(tmp_path):
    (tmp_path / "big.log").write_bytes(b"x" * 5000)
    problems = []
    assert read_capped(tmp_path / "big.log", "proxy log", problems, limit=1000) == b"x" * 1000
    assert problems == [f"proxy log {tmp_path / 'big.log'}: larger than 1000 bytes; only the first 1000 were read"]


def test_a_folder_in_place_of_the_report_is_a_problem(tmp_path):
    (tmp_path / "report.json").mkdir()
    assert "a folder, not a regular file" in build_audit(None, None, tmp_path / "report.json")["problems"][0]
