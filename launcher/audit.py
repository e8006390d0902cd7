"""One audit log per run, from the proxy's access log, the gateway's log and the run report.

Inputs are read defensively: a missing or unreadable source, or a line that does not parse, is
recorded under "problems" rather than dropped silently or raised.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

ALLOW_DECISIONS = {"allow_allowlisted"}


def parse_squid_line(line: str) -> dict | None:
    """A line of the agent_sandbox logformat as a dict, or None if it is not one."""
    parts = line.split()
    if len(parts) < 2 or "=" in parts[0]:
        return None
    entry = {"time": parts[0]}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if not sep:
            return None
        entry[key] = value
    if "decision" not in entry or "url" not in entry:
        return None
    code = entry.get("status", "").rpartition("/")[2]
    entry["http_status"] = int(code) if code.isdigit() else 0
    entry["host"], entry["port"] = _host_port(entry.get("method", ""), entry["url"])
    return entry


def _host_port(method: str, url: str) -> tuple[str, int]:
    if method != "CONNECT" and "://" in url:
        scheme, _, rest = url.partition("://")
        authority = rest.split("/", 1)[0]
        default = 443 if scheme == "https" else 80
    else:
        authority, default = url, 443
    host, sep, port = authority.rpartition(":")
    if sep and port.isdigit() and not host.endswith(":"):
        return host.strip("[]"), int(port)
    return authority.strip("[]"), default


def _read_lines(path: Path | None, what: str, problems: list[str]) -> list[str]:
    if path is None:
        return []
    try:
        return Path(path).read_text(errors="replace").splitlines()
    except OSError as error:
        problems.append(f"{what} {path}: {error.strerror or error}")
        return []


def summarize_proxy(lines: list[str], problems: list[str]) -> dict:
    reached, failed, refused = Counter(), Counter(), Counter()
    unparsed = without_request = 0
    for line in lines:
        if not line.strip():
            continue
        entry = parse_squid_line(line)
        if entry is None:
            unparsed += 1
            continue
        if entry["url"].startswith("error:"):  # a connection closed before any request
            without_request += 1
            continue
        key = (entry["host"], entry["port"])
        if entry["decision"] in ALLOW_DECISIONS:
            (reached if entry["http_status"] == 200 else failed)[key] += 1
        else:
            refused[key + (entry["decision"],)] += 1
    if unparsed:
        problems.append(f"proxy log: {unparsed} line(s) not in the agent_sandbox format")
    return {
        "reached": [{"host": h, "port": p, "requests": n} for (h, p), n in sorted(reached.items())],
        "allowed_but_failed": [{"host": h, "port": p, "requests": n} for (h, p), n in sorted(failed.items())],
        "refused": [{"host": h, "port": p, "rule": r, "requests": n} for (h, p, r), n in sorted(refused.items())],
        "connections_without_request": without_request,
    }


def summarize_gateway(lines: list[str], problems: list[str]) -> dict:
    forwarded, refused = Counter(), Counter()
    unparsed = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            key = (str(entry["vendor"]), str(entry["method"]), str(entry["path"]))
            status, decision = int(entry["status"]), str(entry.get("decision", ""))
        except (ValueError, KeyError, TypeError):
            unparsed += 1
            continue
        if decision == "forward":
            forwarded[key + (status,)] += 1
        else:
            refused[key + (decision or "unknown",)] += 1
    if unparsed:
        problems.append(f"gateway log: {unparsed} line(s) not in the agent_sandbox_gateway format")
    return {
        "forwarded": [{"vendor": v, "method": m, "path": p, "status": s, "requests": n}
                      for (v, m, p, s), n in sorted(forwarded.items())],
        "refused": [{"vendor": v, "method": m, "path": p, "rule": r, "requests": n}
                    for (v, m, p, r), n in sorted(refused.items())],
    }


def summarize_report(path: Path | None, problems: list[str]) -> dict:
    if path is None:
        return {}
    try:
        report = json.loads(Path(path).read_text())
    except OSError as error:
        problems.append(f"run report {path}: {error.strerror or error}")
        return {}
    except ValueError as error:
        problems.append(f"run report {path}: not JSON ({error})")
        return {}
    if not isinstance(report, dict):
        problems.append(f"run report {path}: not a JSON object")
        return {}
    tool_calls = report.get("tool_calls")
    denials = report.get("denials")
    if not isinstance(denials, list):
        if denials is not None:
            problems.append(f"run report {path}: 'denials' is not a list")
        denials = []
    return {
        "tool": report.get("tool"),
        "exit_code": report.get("exit_code"),
        "tool_calls": len(tool_calls) if isinstance(tool_calls, list) else None,
        "tool_denials": [
            {"command": d.get("command"), "rule": d.get("rule"), **({"reason": d["reason"]} if "reason" in d else {})}
            for d in denials if isinstance(d, dict)
        ],
    }


def build_audit(proxy_log: Path | None = None, gateway_log: Path | None = None,
                run_report: Path | None = None) -> dict:
    problems: list[str] = []
    audit = {
        "format": 1,
        "network": summarize_proxy(_read_lines(proxy_log, "proxy log", problems), problems),
        "model_api": summarize_gateway(_read_lines(gateway_log, "gateway log", problems), problems),
        "run": summarize_report(run_report, problems),
    }
    audit["problems"] = problems
    return audit


def format_audit(audit: dict) -> str:
    lines = []
    run = audit.get("run") or {}
    if run:
        lines.append(f"run: tool={run.get('tool')} exit_code={run.get('exit_code')} tool_calls={run.get('tool_calls')}")
    for item in audit["network"]["reached"]:
        lines.append(f"reached   {item['host']}:{item['port']} ({item['requests']}x)")
    for item in audit["network"]["allowed_but_failed"]:
        lines.append(f"failed    {item['host']}:{item['port']} ({item['requests']}x, allowed but not connected)")
    for item in audit["network"]["refused"]:
        lines.append(f"refused   {item['host']}:{item['port']} by {item['rule']} ({item['requests']}x)")
    for item in audit["model_api"]["forwarded"]:
        lines.append(f"model     {item['vendor']} {item['method']} {item['path']} -> {item['status']} ({item['requests']}x)")
    for item in audit["model_api"]["refused"]:
        lines.append(f"model refused {item['vendor']} {item['method']} {item['path']} by {item['rule']} ({item['requests']}x)")
    for item in run.get("tool_denials", []):
        lines.append(f"denied    {item['command']!r} by {item['rule']}")
    for problem in audit["problems"]:
        lines.append(f"problem   {problem}")
    return "\n".join(lines) + "\n"


def write_audit(path: Path, audit: dict) -> None:
    """Write atomically: a reader sees the old file or the whole new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(audit, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launcher.audit", description=__doc__)
    parser.add_argument("--proxy-log", type=Path)
    parser.add_argument("--gateway-log", type=Path)
    parser.add_argument("--report", type=Path)
    parser.add_argument("--out", type=Path, help="write the audit JSON here (atomically)")
    args = parser.parse_args(argv)
    audit = build_audit(args.proxy_log, args.gateway_log, args.report)
    if args.out:
        write_audit(args.out, audit)
    sys.stdout.write(format_audit(audit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
