"""One audit log per run, from the proxy's access log, the gateway's log and the run report.

Every input is read so that nothing in it can hang, redirect or flood the reader: opened with
O_NONBLOCK and O_NOFOLLOW (and, below a trusted base folder, without following a symlink at any
level), checked to be a regular file, read up to a size cap. A missing, odd or unreadable source,
or a line that does not parse, is recorded under "problems" rather than dropped silently or raised.
The agent chooses much of what these files hold (host names, paths, commands): every string
printed to a terminal is escaped, so that no escape sequence or control character reaches it.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import stat
import sys
import tempfile
from collections import Counter
from pathlib import Path

from launcher import safefs
from launcher.terminal import shown

ALLOW_DECISIONS = {"allow_allowlisted"}
MAX_LOG_BYTES = 64 * 1024 * 1024
MAX_REPORT_BYTES = 16 * 1024 * 1024
MAX_PRINTED = 200


# --- reading, never blocking -------------------------------------------------------------------

def read_capped(path: Path | None, what: str, problems: list[str], *, limit: int = MAX_LOG_BYTES,
                base: Path | None = None) -> bytes | None:
    """The file's bytes (at most limit), or None with the reason in problems."""
    if path is None:
        return None
    path = Path(path)
    try:
        if base is not None:
            fd = safefs.open_below(Path(base), path.relative_to(base) if path.is_absolute() else path)
        else:
            fd = os.open(path, safefs.FILE_FLAGS)
    except ValueError:
        problems.append(f"{what} {path}: not below {base}")
        return None
    except OSError as error:
        reason = {errno.ELOOP: "a symbolic link, not followed",
                  errno.ENOTDIR: "a part of the path is not a folder"}.get(error.errno, error.strerror)
        problems.append(f"{what} {path}: {reason}")
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            problems.append(f"{what} {path}: {safefs.kind(info.st_mode)}, not a regular file; not read")
            return None
        data, more = safefs.read_fd_capped(fd, limit)
        if more:
            problems.append(f"{what} {path}: larger than {limit} bytes; only the first {limit} were read")
        return data
    except OSError as error:
        problems.append(f"{what} {path}: {error.strerror}")
        return None
    finally:
        os.close(fd)


def _lines(data: bytes | None) -> list[str]:
    return data.decode("utf-8", errors="replace").splitlines() if data else []


# --- the proxy log -------------------------------------------------------------------------------

def parse_squid_line(line: str) -> dict | None:
    """A line of the agent_sandbox logformat as a dict, or None if it is not one."""
    parts = line.split()
    if len(parts) < 2 or "=" in parts[0]:
        return None
    entry = {"time": parts[0]}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if not sep or key in entry:
            return None
        entry[key] = value
    if "decision" not in entry or "url" not in entry:
        return None
    code = entry.get("status", "").rpartition("/")[2]
    entry["http_status"] = int(code) if code.isdigit() else 0
    entry["bytes_up"] = _count(entry.get("bytes_up"))
    entry["bytes_down"] = _count(entry.get("bytes_down", entry.get("bytes")))
    entry["host"], entry["port"] = _host_port(entry.get("method", ""), entry["url"])
    return entry


def _count(text) -> int:
    return int(text) if isinstance(text, str) and text.isdigit() else 0


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


class _Tally:
    """Requests and bytes per key."""

    def __init__(self):
        self.requests, self.up, self.down = Counter(), Counter(), Counter()

    def add(self, key, up: int, down: int) -> None:
        self.requests[key] += 1
        self.up[key] += up
        self.down[key] += down

    def rows(self, names: tuple[str, ...]) -> list[dict]:
        return [{**dict(zip(names, key)), "requests": n, "bytes_up": self.up[key], "bytes_down": self.down[key]}
                for key, n in sorted(self.requests.items())]


def summarize_proxy(lines: list[str], problems: list[str]) -> dict:
    reached, failed, refused, hosts = _Tally(), _Tally(), _Tally(), _Tally()
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
        up, down = entry["bytes_up"], entry["bytes_down"]
        hosts.add(key, up, down)
        if entry["decision"] in ALLOW_DECISIONS:
            (reached if entry["http_status"] == 200 else failed).add(key, up, down)
        else:
            refused.add(key + (entry["decision"],), up, down)
    if unparsed:
        problems.append(f"proxy log: {unparsed} line(s) not in the agent_sandbox format")
    return {
        "reached": reached.rows(("host", "port")),
        "allowed_but_failed": failed.rows(("host", "port")),
        "refused": refused.rows(("host", "port", "rule")),
        "bytes_by_host": hosts.rows(("host", "port")),
        "connections_without_request": without_request,
    }


# --- the gateway log -----------------------------------------------------------------------------

# The gateway's routes that are not a model vendor's: GitHub (git smart HTTP and the API) and the
# package registries (egress/gateway_github.py). Listed apart, with each refusal's rule and reason.
GITHUB_ROUTES = ("github-git", "github-api", "npm", "pypi", "crates")


def summarize_gateway(lines: list[str], problems: list[str]) -> tuple[dict, dict]:
    """(model requests, GitHub and registry requests) of the gateway's access log."""
    forwarded, refused, routes, answered, refreshes = _Tally(), _Tally(), _Tally(), _Tally(), _Tally()
    github_forwarded, github_refused, github_routes = _Tally(), _Tally(), _Tally()
    unparsed = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("event") == "refresh":  # a login refreshed (egress.logins)
                refreshes.add((str(entry["vendor"]), str(entry["login"]), str(entry["outcome"])), 0, 0)
                continue
            key = (str(entry["vendor"]), str(entry["method"]), str(entry["path"]))
            status, decision = int(entry["status"]), str(entry.get("decision", ""))
            up, down = int(entry.get("bytes_up", 0)), int(entry.get("bytes_down", 0))
            rule, reason = str(entry.get("rule") or decision or "unknown"), str(entry.get("reason") or "")
        except (ValueError, KeyError, TypeError, AttributeError):
            unparsed += 1
            continue
        if key[0] in GITHUB_ROUTES:
            github_routes.add((key[0],), up, down)
            if decision == "forward":
                github_forwarded.add(key + (status,), up, down)
            else:
                github_refused.add(key + (rule, reason), up, down)
            continue
        routes.add((key[0],), up, down)
        if decision == "forward":
            forwarded.add(key + (status,), up, down)
        elif decision == "answer":
            answered.add(key + (str(entry.get("rule", "")),), up, down)
        else:
            refused.add(key + (decision or "unknown",), up, down)
    if unparsed:
        problems.append(f"gateway log: {unparsed} line(s) not in the agent_sandbox_gateway format")
    model = {
        "forwarded": forwarded.rows(("vendor", "method", "path", "status")),
        "refused": refused.rows(("vendor", "method", "path", "rule")),
        "bytes_by_route": routes.rows(("vendor",)),
        "answered": answered.rows(("vendor", "method", "path", "rule")),
        "login_refreshes": refreshes.rows(("vendor", "login", "outcome")),
    }
    github = {
        "forwarded": github_forwarded.rows(("route", "method", "path", "status")),
        "refused": github_refused.rows(("route", "method", "path", "rule", "reason")),
        "bytes_by_route": github_routes.rows(("route",)),
    }
    return model, github


# --- the run report (written inside the sandbox: the agent's side of the story) ------------------

def summarize_report(path: Path | None, problems: list[str], base: Path | None = None) -> dict:
    data = read_capped(path, "run report", problems, limit=MAX_REPORT_BYTES, base=base)
    if data is None:
        return {}
    try:
        report = json.loads(data)
    except (ValueError, RecursionError) as error:
        problems.append(f"run report {path}: not JSON ({type(error).__name__})")
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
                run_report: Path | None = None, *, report_base: Path | None = None) -> dict:
    """report_base: the folder the agent could write (the workspace) that holds the report; no
    symlink below it is followed."""
    problems: list[str] = []
    network = summarize_proxy(_lines(read_capped(proxy_log, "proxy log", problems)), problems)
    model, github = summarize_gateway(_lines(read_capped(gateway_log, "gateway log", problems)), problems)
    audit = {
        "format": 2,
        "network": network,
        "model_api": model,
        "github": github,
        "run": summarize_report(run_report, problems, report_base),
    }
    audit["problems"] = problems
    return audit


# --- printing --------------------------------------------------------------------------------------

def safe(value, limit: int = MAX_PRINTED) -> str:
    """value (a string, or anything JSON can show) as a terminal shows it literally, cut at limit."""
    text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return shown(text, limit)


def _size(n) -> str:
    n = int(n) if isinstance(n, int) else 0
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def format_audit(audit: dict) -> str:
    lines = []
    run = audit.get("run") or {}
    if run:
        lines.append(f"run: tool={safe(run.get('tool'))} exit_code={safe(run.get('exit_code'))} "
                     f"tool_calls={safe(run.get('tool_calls'))}")
    network, model = audit["network"], audit["model_api"]
    for item in network["reached"]:
        lines.append(f"reached   {safe(item['host'])}:{item['port']} ({item['requests']}x, "
                     f"up {_size(item['bytes_up'])}, down {_size(item['bytes_down'])})")
    for item in network["allowed_but_failed"]:
        lines.append(f"failed    {safe(item['host'])}:{item['port']} ({item['requests']}x, allowed but not connected)")
    for item in network["refused"]:
        lines.append(f"refused   {safe(item['host'])}:{item['port']} by {safe(item['rule'])} ({item['requests']}x)")
    for item in model["bytes_by_route"]:
        lines.append(f"model     {safe(item['vendor'])}: {item['requests']} request(s), "
                     f"up {_size(item['bytes_up'])}, down {_size(item['bytes_down'])}")
    for item in model["forwarded"]:
        lines.append(f"model     {safe(item['vendor'])} {safe(item['method'])} {safe(item['path'])} -> "
                     f"{item['status']} ({item['requests']}x)")
    for item in model.get("answered", []):
        lines.append(f"model answered {safe(item['vendor'])} {safe(item['method'])} {safe(item['path'])} "
                     f"by the gateway ({item['requests']}x)")
    for item in model.get("login_refreshes", []):
        lines.append(f"login     {safe(item['vendor'])} {safe(item['login'])} refresh {safe(item['outcome'])} "
                     f"({item['requests']}x)")
    for item in model["refused"]:
        lines.append(f"model refused {safe(item['vendor'])} {safe(item['method'])} {safe(item['path'])} "
                     f"by {safe(item['rule'])} ({item['requests']}x)")
    github = audit.get("github") or {"forwarded": [], "refused": []}
    for item in github["forwarded"]:
        lines.append(f"github    {safe(item['route'])} {safe(item['method'])} {safe(item['path'])} -> "
                     f"{item['status']} ({item['requests']}x)")
    for item in github["refused"]:
        lines.append(f"github refused {safe(item['route'])} {safe(item['method'])} {safe(item['path'])} "
                     f"by {safe(item['rule'])}: {safe(item['reason'], 120)} ({item['requests']}x)")
    for item in run.get("tool_denials", []):
        lines.append(f"denied    '{safe(item['command'])}' by {safe(item['rule'])}")
    for problem in audit["problems"]:
        lines.append(f"problem   {safe(problem, 400)}")
    return "\n".join(lines) + "\n"


def write_audit(path: Path, audit: dict) -> None:
    """Write atomically: a reader sees the old file or the whole new one. ASCII JSON: every
    agent-chosen character is escaped in the file too."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(audit, out, indent=2, sort_keys=True, ensure_ascii=True)
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
    parser.add_argument("--report-base", type=Path, help="the agent-writable folder holding the report")
    parser.add_argument("--out", type=Path, help="write the audit JSON here (atomically)")
    args = parser.parse_args(argv)
    audit = build_audit(args.proxy_log, args.gateway_log, args.report, report_base=args.report_base)
    if args.out:
        write_audit(args.out, audit)
    sys.stdout.write(format_audit(audit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
