"""agent-run's execution of a plan: write the files, start the services, run the agent, then, whatever
happened (an error, the timeout, SIGINT, SIGTERM, SIGHUP), tear everything down, bring the copy's
work back as refs, and write the audit.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from egress.gateway import write_secrets
from image import layout
from launcher import audit, checks, safefs, workspace
from launcher.terminal import shown
from launcher.tiers import live_read_only
from launcher.plan import (BUNDLE_NAME, COLLECT_NOTHING_NEW, EXIT_TIMEOUT, PROG, REPORT_NAME, TOKEN_NAME, Host,
                           Options, Plan, RunError)

REPORT_LIMIT = 16 << 20
BUNDLE_LIMIT = 4 << 30
EXIT_NOT_COLLECTED = 70   # the agent's work could not be brought back (its copy is kept)
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(Exception):
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Signals:
    """The first SIGINT, SIGTERM or SIGHUP interrupts the run; later ones, during the teardown,
    are only noted: the teardown always finishes."""

    def __init__(self):
        self.received: list[int] = []
        self.tearing_down = False
        self._previous = {}

    def _handle(self, signum, frame):
        self.received.append(signum)
        if not self.tearing_down:
            self.tearing_down = True
            raise Interrupted(signum)

    def __enter__(self):
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _run(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    # A session of its own: a second Ctrl-C on the terminal must not kill the teardown's commands.
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                              start_new_session=True)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout:.0f} s")


def _must(argv: list[str], timeout: float = 120) -> None:
    done = _run(argv, timeout)
    if done.returncode != 0:
        raise RunError(f"{shlex.join(argv[:4])}... failed ({done.returncode}): {done.stderr.strip()[-800:]}")


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RunError(f"timed out after {timeout:.0f} s waiting for {what}")


def _proxy_ready(host: Host) -> bool:
    try:
        text = safefs.read_regular(host.run_dir / "proxy-log", "cache.log", 1 << 20)
    except safefs.UnsafeFile:
        return False
    return b"Accepting HTTP Socket connections" in text


def prepare_folders(plan: Plan, options: Options, host: Host, key: str, token: str | None) -> None:
    for path, (text, mode) in plan.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        safefs.write_new(path, text.encode(), mode)
    safefs.make_dir(host.run_dir / "proxy-log", 0o777)  # Squid drops to its own user
    for name in ("gateway-state", "gateway-log"):
        safefs.make_dir(host.run_dir / name, 0o700, (layout.GATEWAY_UID, layout.GATEWAY_GID))
    if options.mode == "copy":
        safefs.make_dir(host.out_dir, 0o700, host.agent_owner)
    safefs.make_dir(host.report_dir, 0o700, host.agent_owner)
    write_secrets(host.gateway_secrets, {plan.vendor: key})
    if token is not None:
        safefs.make_dir(host.agent_secrets, 0o700)
        safefs.write_new(host.agent_secrets / TOKEN_NAME, (token + "\n").encode(), 0o400, host.agent_owner)
        fd = os.open(host.agent_secrets, safefs.DIR_FLAGS)
        try:
            os.fchown(fd, *host.agent_owner)
            os.fchmod(fd, 0o500)
        finally:
            os.close(fd)


def run_agent(plan: Plan, options: Options, host: Host) -> int:
    for argv in plan.setup:
        _must(argv)
    _wait(lambda: _proxy_ready(host), 30, "the proxy")
    _wait(lambda: (host.run_dir / "gateway-state" / "ready").exists(), 30, "the gateway")
    shutil.rmtree(host.gateway_secrets)  # the gateway read the key at start and holds it in memory
    _must(plan.agent_create)
    process = subprocess.Popen(plan.start_agent, stdin=None)
    try:
        return process.wait(timeout=options.timeout)
    except subprocess.TimeoutExpired:
        print(f"{PROG}: the run exceeded {options.timeout} s; stopping it", file=sys.stderr)
        _run(plan.stop_agent, 30)
        return EXIT_TIMEOUT
    finally:
        if process.poll() is None:
            _run(["podman", "rm", "-f", "-t", "1", plan.names["agent"]], 30)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def collect(plan: Plan, options: Options, host: Host, source: workspace.Source) -> tuple[list, list]:
    """Run the collector on the copy, then bring its bundle in as data. Returns (refs, problems)."""
    done = _run(plan.collect, options.collect_timeout)
    if done.returncode == COLLECT_NOTHING_NEW:
        return [], []
    if done.returncode != 0:
        _run(["podman", "rm", "-f", "-t", "0", plan.names["collector"]], 30)
        return [], [f"collector exited {done.returncode}: {done.stderr.strip()[-400:]}"]
    bundle = host.run_dir / BUNDLE_NAME
    try:
        data = safefs.read_regular(host.out_dir, BUNDLE_NAME, BUNDLE_LIMIT)
    except safefs.UnsafeFile as error:
        return [], [f"result bundle: {error}"]
    safefs.write_new(bundle, data, 0o600)
    refs, refused = workspace.fetch_results(source, options.run_id, bundle)
    problems = [f"result bundle: ref {shown(name)} refused (only branches, tags and the run's own refs come back)"
                for name in refused]
    return refs, problems


def bring_report(host: Host) -> tuple[Path | None, str | None]:
    """The agent's run report, copied out of its folder only if it is a plain regular file."""
    try:
        data = safefs.read_regular(host.report_dir, REPORT_NAME, REPORT_LIMIT)
    except safefs.UnsafeFile as error:
        missing = "No such file" in str(error)
        return None, None if missing else f"run report: {error}"
    target = host.run_dir / REPORT_NAME
    safefs.write_new(target, data, 0o600)
    return target, None


def _gone(done: subprocess.CompletedProcess) -> bool:
    text = done.stderr.lower()
    return done.returncode == 0 or "no such" in text or "not found" in text


def teardown(plan: Plan, host: Host) -> list[str]:
    """Every container and network of the run, each on its own; podman sometimes needs a second
    go right after a container exits (its storage is still busy)."""
    problems = []
    for argv in plan.teardown:
        for attempt in range(4):
            done = _run(argv, 60)
            if _gone(done):
                break
            time.sleep(1 + attempt)
        else:
            problems.append(f"teardown: {shlex.join(argv)} failed: {done.stderr.strip()[-200:]}")
    return problems


def execute(plan: Plan, options: Options, host: Host, source: workspace.Source | None, key: str,
            token: str | None, record) -> int:
    """Run the plan; whatever happens, wrap up. record(**fields) updates the run's run.json."""
    code: int | None = None
    problems: list[str] = []
    with Signals() as signals:
        try:
            prepare_folders(plan, options, host, key, token)
            code = run_agent(plan, options, host)
        except Interrupted as interrupted:
            print(f"{PROG}: {interrupted}: stopping the run and tearing down", file=sys.stderr)
            code = 128 + interrupted.signum
        except (RunError, OSError) as error:
            print(f"{PROG}: {error}", file=sys.stderr)
            problems.append(str(error))
        finally:
            signals.tearing_down = True
            final = wrap_up(plan, options, host, source, code, problems, bool(signals.received), record)
    return final


def wrap_up(plan: Plan, options: Options, host: Host, source: workspace.Source | None, code: int | None,
            problems: list[str], interrupted: bool, record) -> int:
    """Teardown, the work brought back, the report copied out, the in-memory folder gone, the audit."""
    problems += teardown(plan, host)
    refs: list[str] = []
    final = code if code is not None else 1
    if plan.collect and code is not None:
        try:
            refs, lost = collect(plan, options, host, source)
        except (RunError, OSError) as error:
            lost = [str(error)]
        problems += lost
        if lost:
            print(f"{PROG}: the agent's work was not brought back; its copy is kept in {host.workspace} "
                  f"(never run git there: it holds the agent's .git)", file=sys.stderr)
            if not refs:
                final = final or EXIT_NOT_COLLECTED
    if options.mode == "mount":
        for leftover in checks.live_leftovers(host.workspace, host.protected + host.blocked,
                                              live_read_only(options.read_only_globs)):
            print(f"{PROG}: warning: --mount: {shown(leftover)}; look at it before anything reads it", file=sys.stderr)
            problems.append(f"--mount: {leftover}")
    report, problem = bring_report(host)
    problems += [problem] if problem else []
    shutil.rmtree(host.memory_dir, ignore_errors=True)
    result = audit.build_audit(host.run_dir / "proxy-log" / "access.log", host.run_dir / "gateway-log" / "access.log",
                               report)
    result["problems"] = list(result.get("problems", [])) + problems
    audit.write_audit(host.run_dir / "audit.json", result)
    # Whatever the audit quotes (hosts, paths, the report) came from the agent: escaped here too.
    summary = "".join(shown(line) + "\n" for line in audit.format_audit(result).splitlines())
    sys.stderr.write(f"{PROG}: audit {host.run_dir / 'audit.json'}\n" + summary)
    record(status="interrupted" if interrupted else "finished", exit_code=final, refs=refs, problems=problems,
           finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if refs:
        print(f"{PROG}: the agent's work is in " + ", ".join(shown(r) for r in refs) + "\n"
              f"{PROG}: review it: {PROG} review {options.run_id}; apply it: "
              f"{PROG} apply {options.run_id} --branch NAME", file=sys.stderr)
    return final


def write_record(path: Path, fields: dict) -> None:
    current = {}
    if path.exists():
        current = json.loads(path.read_text())
    current.update(fields)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
