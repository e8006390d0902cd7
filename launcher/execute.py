"""agent-run's execution of a plan: write the files, start the services, run the agent, then, whatever
happened (an error, the timeout, SIGINT, SIGTERM, SIGHUP), tear everything down, bring the copy's
work back as refs, and write the audit.
"""
from __future__ import annotations

import calendar
import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from egress.gateway import write_secrets
from image import layout
from launcher import audit, checks, guardian, logins, safefs, workspace
from launcher.commands import must, remove_all, run_command
from launcher.terminal import shown
from launcher.tiers import live_read_only
from launcher.plan import (BUNDLE_NAME, COLLECT_NOTHING_NEW, EXIT_TIMEOUT, PROG, REPORT_NAME, Host,
                           Options, Plan, RunError)

REPORT_LIMIT = 16 << 20
BUNDLE_LIMIT = 4 << 30
EXIT_NOT_COLLECTED = 70   # the agent's work could not be brought back (its copy is kept)
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(Exception):
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Cancel:
    """A sweep's stop. Only a process's main thread takes signals, so the sweep's main thread sets
    this and stops the agents; each run's thread checks it between steps and winds down as a
    signalled single run does."""

    def __init__(self):
        self.signum: int | None = None

    def set(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum

    def check(self) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum)


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


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RunError(f"timed out after {timeout:.0f} s waiting for {what}")


def proxy_ready(folder: Path) -> bool:
    """Squid, whose log folder is folder/proxy-log, accepts connections."""
    try:
        text = safefs.read_regular(folder / "proxy-log", "cache.log", 1 << 20)
    except safefs.UnsafeFile:
        return False
    return b"Accepting HTTP Socket connections" in text


def prepare_folders(plan: Plan, options: Options, host: Host, key: str | dict | None, credential) -> None:
    """credential: the run's GitHub token (launcher.github_app.GitHubCredential) or None; like the
    key, it goes to the gateway's in-memory secrets folder and nowhere else."""
    for path, (text, mode) in plan.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        safefs.write_new(path, text.encode(), mode)
    if not options.shared:
        safefs.make_dir(host.run_dir / "proxy-log", 0o777)  # Squid drops to its own user
        for name in ("gateway-state", "gateway-log"):
            safefs.make_dir(host.run_dir / name, 0o700, (layout.GATEWAY_UID, layout.GATEWAY_GID))
        write_secrets(host.gateway_secrets, {plan.vendor: key, **(credential.secrets() if credential else {})})
        if options.refreshes:
            safefs.make_dir(host.gateway_renewed, 0o700, (layout.GATEWAY_UID, layout.GATEWAY_GID))
    if options.mode == "copy":
        safefs.make_dir(host.out_dir, 0o700, host.agent_owner)
    safefs.make_dir(host.report_dir, 0o700, host.agent_owner)


def run_agent(plan: Plan, options: Options, host: Host, cancel: Cancel | None = None) -> int:
    check = cancel.check if cancel else (lambda: None)
    for argv in plan.setup:
        check()
        must(argv)
    if not options.shared:
        wait_until(lambda: proxy_ready(host.run_dir), 30, "the proxy")
        wait_until(lambda: (host.run_dir / "gateway-state" / "ready").exists(), 30, "the gateway")
        shutil.rmtree(host.gateway_secrets)  # the gateway read the key at start and holds it in memory
    check()
    must(plan.agent_create)
    check()
    output = open(options.agent_log, "ab") if options.agent_log else None
    try:
        process = subprocess.Popen(plan.start_agent, stdin=subprocess.DEVNULL if output else None, stdout=output,
                                   stderr=subprocess.STDOUT if output else None)
    finally:
        if output:
            output.close()
    try:
        code = process.wait(timeout=options.timeout)
        check()  # stopped by the sweep: its exit code is the signal's, not the agent's
        return code
    except subprocess.TimeoutExpired:
        print(f"{PROG}: the run exceeded {options.timeout} s; stopping it", file=sys.stderr)
        run_command(plan.stop_agent, 30)
        return EXIT_TIMEOUT
    finally:
        if process.poll() is None:
            run_command(["podman", "rm", "-f", "-t", "1", plan.names["agent"]], 30)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def collect(plan: Plan, options: Options, host: Host, source: workspace.Source) -> tuple[list, list]:
    """Run the collector on the copy, then bring its bundle in as data. Returns (refs, problems)."""
    done = run_command(plan.collect, options.collect_timeout)
    if done.returncode == COLLECT_NOTHING_NEW:
        return [], []
    if done.returncode != 0:
        run_command(["podman", "rm", "-f", "-t", "0", plan.names["collector"]], 30)
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


def teardown(plan: Plan, host: Host) -> list[str]:
    return remove_all(plan.teardown)


def execute(plan: Plan, options: Options, host: Host, source: workspace.Source | None, key: str | dict | None,
            credential, record, cancel: Cancel | None = None) -> int:
    """Run the plan; whatever happens, wrap up. record(**fields) updates the run's run.json.
    credential: the run's GitHub token (or None), revoked in the wrap-up.
    cancel: a sweep's run, in a thread of its own; the sweep's main thread handles the signals."""
    code: int | None = None
    problems: list[str] = []
    started = time.time()
    with (Signals() if cancel is None else _Untouched()) as signals:
        watch = None
        try:
            watch = guardian.Guardian.start(guard_job(plan, host, credential), host.run_dir / "guardian.log")
            prepare_folders(plan, options, host, key, credential)
            code = run_agent(plan, options, host, cancel)
        except Interrupted as interrupted:
            print(f"{PROG}: {interrupted}: stopping the run and tearing down", file=sys.stderr)
            code = 128 + interrupted.signum
            signals.received.append(interrupted.signum)
        except (RunError, OSError) as error:
            print(f"{PROG}: {error}", file=sys.stderr)
            problems.append(str(error))
        finally:
            signals.tearing_down = True
            give_back_login(options, host, key)
            final = wrap_up(plan, options, host, source, code, problems, bool(signals.received), record, started,
                            credential)
            if watch:
                watch.release()
    return final


def give_back_login(options: Options, host: Host, started_with) -> None:
    """A login the gateway refreshed during the run goes back where it was found: the vendor may
    have rotated its refresh token, and the user's own CLI would then be logged out."""
    if not options.refreshes or options.shared or options.login_context is None:
        return
    try:
        data = safefs.read_regular(host.gateway_renewed, options.vendor, 1 << 16)
    except safefs.UnsafeFile:
        return  # never refreshed (or not left as a plain file: then nothing is trusted)
    try:
        renewed = json.loads(data)
    except ValueError:
        return
    if not isinstance(renewed, dict):
        return
    message = logins.give_back(options.login_kind, options.login_context, started_with, renewed)
    if message:
        print(f"{PROG}: {options.login_kind}: {message}", file=sys.stderr)


def guard_job(plan: Plan, host: Host, credential) -> guardian.Job:
    minted = credential.minted if credential is not None else None
    return guardian.Job(teardown=plan.teardown, memory_dir=str(host.memory_dir), run_dir=str(host.run_dir),
                        revoke={"api_url": minted.api_url, "token": credential.token} if minted else None)


class _Untouched:
    """In place of Signals in a sweep's thread: the handlers stay the main thread's."""

    def __init__(self):
        self.received: list[int] = []
        self.tearing_down = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def wrap_up(plan: Plan, options: Options, host: Host, source: workspace.Source | None, code: int | None,
            problems: list[str], interrupted: bool, record, started: float = 0.0, credential=None) -> int:
    """Teardown, the GitHub token revoked, the work brought back, the report copied out, the
    in-memory folder gone, the audit."""
    problems += teardown(plan, host)
    if credential is not None:
        failed = credential.revoke()
        if failed:
            print(f"{PROG}: warning: {failed}", file=sys.stderr)
            problems.append(failed)
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
    if options.shared:
        problems += split_shared_logs(options.shared, plan, host, vendor=options.vendor, since=started)
    return conclude(host.run_dir, report, problems, record, final, refs, options.run_id, interrupted)


def conclude(run_dir: Path, report: Path | None, problems: list[str], record, final: int, refs: list[str],
             run_id: str, interrupted: bool) -> int:
    """The audit from the run folder's proxy-log/, gateway-log/ and the report, written and shown;
    the record's last word; where the work is."""
    result = audit.build_audit(run_dir / "proxy-log" / "access.log", run_dir / "gateway-log" / "access.log", report)
    result["problems"] = list(result.get("problems", [])) + problems
    audit.write_audit(run_dir / "audit.json", result)
    # Whatever the audit quotes (hosts, paths, the report) came from the agent: escaped here too.
    summary = "".join(shown(line) + "\n" for line in audit.format_audit(result).splitlines())
    sys.stderr.write(f"{PROG}: audit {run_dir / 'audit.json'}\n" + summary)
    record(status="interrupted" if interrupted else "finished", exit_code=final, refs=refs, problems=problems,
           finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if refs:
        print(f"{PROG}: the agent's work is in " + ", ".join(shown(r) for r in refs) + "\n"
              f"{PROG}: review it: {PROG} review {run_id}; apply it: {PROG} apply {run_id} --branch NAME",
              file=sys.stderr)
    return final


# --- a sweep's shared logs ---------------------------------------------------------------------------

SHARED_LOG_LIMIT = 1 << 30


def _squid_line_time(line: str) -> float | None:
    head = line.split(" ", 1)[0]
    try:
        return float(head)
    except ValueError:
        return None


def _gateway_line_time(line: str) -> float | None:
    try:
        stamp = json.loads(line)["time"]
        return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + stamp[19:].rstrip("Z"))
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def _client_of(line: str, proxy: bool) -> str | None:
    if proxy:
        for part in line.split():
            if part.startswith("client="):
                return part[len("client="):]
        return None
    try:
        return str(json.loads(line)["client"])
    except (ValueError, KeyError, TypeError):
        return None


def lines_from(path: Path, client: str, since: float, until: float, proxy: bool) -> tuple[list[str], str | None]:
    """The lines of a sweep's shared log that one agent address caused between since and until
    (an address is the run's alone while the run lasts). Read as the audit reads its inputs: no
    link followed, a regular file only, never blocking."""
    try:
        fd = os.open(path, safefs.FILE_FLAGS)
    except OSError as error:
        return [], None if error.errno == errno.ENOENT else f"shared log {path}: {error.strerror}"
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return [], f"shared log {path}: {safefs.kind(info.st_mode)}, not a regular file; not read"
        os.set_blocking(fd, True)
        read, problem = 0, None

        def lines():
            nonlocal read, problem
            for raw in stream:
                read += len(raw)
                if read > SHARED_LOG_LIMIT:
                    problem = f"shared log {path}: larger than {SHARED_LOG_LIMIT} bytes; read no further"
                    return
                yield raw.decode("utf-8", errors="replace").rstrip("\n")
        taken = select_lines(lines(), client, since, until, proxy)
    return taken, problem


def select_lines(lines, client: str, since: float, until: float, proxy: bool) -> list[str]:
    """The lines of a shared access log that one agent address caused between since and until."""
    taken = []
    for line in lines:
        if _client_of(line, proxy) != client:
            continue
        when = _squid_line_time(line) if proxy else _gateway_line_time(line)
        if when is None or since - 1 <= when <= until + 1:
            taken.append(line)
    return taken


def split_shared_logs(shared, plan: Plan, host: Host, *, vendor: str, since: float) -> list[str]:
    """This run's lines of the sweep's proxy and gateway logs, into the run folder, where the
    audit reads them as a single run's."""
    problems = []
    until = time.time()
    address = plan.addresses["agent"]
    for folder, source, proxy in (("proxy-log", shared.proxy_log, True),
                                  ("gateway-log", shared.gateway_logs[vendor], False)):
        lines, problem = lines_from(Path(source), address, since, until, proxy)
        problems += [problem] if problem else []
        safefs.make_dir(host.run_dir / folder, 0o700)
        safefs.write_new(host.run_dir / folder / "access.log", "".join(line + "\n" for line in lines).encode(), 0o600)
    return problems
