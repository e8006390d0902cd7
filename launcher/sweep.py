"""agent-run sweep: one run per task of a file, N at a time, on one host.

    tasks file ── load (every task checked before anything starts)
        │
        ├── the sweep's services: one proxy, one gateway per vendor the tasks use (the key of
        │   each vendor read once, held by its gateway only)
        │
        └── N threads, each: a run as `agent-run CLI` makes it (its own copy, its own internal
            network that the proxy and its vendor's gateway join, its own uid range, its own refs
            and audit), its output into the sweep's folder instead of the terminal
    main thread: the progress (a bar on a terminal, lines otherwise), the signals, the summary

What sharing keeps: each run still has a network of its own (agents of one sweep never share one),
its own /24 and uid range (the sweep never gives two live runs the same), only its vendor's
gateway on its network, and an audit made of the log lines its one agent address caused while it
ran. What it changes: a gateway holds its vendor's key for the whole sweep, and every run of a
sweep has the sweep's profile (one allowlist in the one proxy).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shlex
import shutil
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from egress.gateway import read_key, write_secrets
from egress.squid import AGENT_SUPERNET
from image import layout
from launcher import guardian, review, safefs
from launcher.checks import free_subnet
from launcher.commands import must, remove_all, run_command
from launcher.execute import Cancel, execute, proxy_ready, wait_until
from launcher.plan import (CLIS, EXIT_USAGE, ID_SLOTS, PROG, Options, RunError, Shared, build_plan, format_plan,
                           gateway_container, gateway_files, id_base, proxy_container, proxy_files, subnet_for)
from launcher.start import (add_run_options, begin, github_flags_given, memory_root, missing_images,
                            options_from_args, prepare, taken_subnets)
from launcher.terminal import shown, use_colour

TASK_KEYS = ("prompt", "repository", "cli", "args", "name", "timeout")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
EXIT_SOME_FAILED = 1
MAX_CONCURRENCY = 64
STOP_AGAIN = 5.0          # seconds between two stops of one agent while a sweep winds down


# --- the tasks file ----------------------------------------------------------------------------------

class TaskFileError(ValueError):
    """A task file that cannot be run: the message names the file, the line and the key."""


@dataclass(frozen=True)
class Task:
    number: int                # 1-based, in file order
    where: str                 # FILE:LINE
    cli: str
    repository: Path
    prompt: str
    args: tuple = ()
    name: str = ""
    timeout: int | None = None

    def cli_args(self) -> list[str]:
        """The CLI's own arguments: its extra ones, then the prompt the way each CLI takes it
        unattended (Codex: `exec PROMPT`; Claude Code and Gemini CLI: `-p PROMPT`)."""
        if self.cli == "codex":
            return ["exec", *self.args, self.prompt]
        return [*self.args, "-p", self.prompt]

    @property
    def label(self) -> str:
        return self.name or f"task-{self.number}"


def load_tasks(path: Path) -> list[Task]:
    """The tasks of a file: YAML (.yaml, .yml) or plain lines (anything else)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TaskFileError(f"{path}: cannot read the tasks file ({getattr(error, 'strerror', None) or error})") \
            from None
    if Path(path).suffix.lower() in (".yaml", ".yml"):
        tasks = parse_yaml(text, Path(path))
    else:
        tasks = parse_lines(text, Path(path))
    if not tasks:
        raise TaskFileError(f"{path}: no tasks (each line: CLI REPOSITORY PROMPT; or YAML with a 'tasks' list)")
    return tasks


def _repository(value: str, base: Path) -> Path:
    return (base / Path(os.path.expanduser(value))).absolute()


def parse_lines(text: str, path: Path) -> list[Task]:
    """One task a line: `CLI REPOSITORY PROMPT`, the prompt being the rest of the line; blank lines
    and lines starting with # are skipped. Paths are relative to the file's folder."""
    tasks = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = stripped.split(None, 2)
        where = f"{path}:{number}"
        if len(fields) < 3:
            raise TaskFileError(f"{where}: expected CLI REPOSITORY PROMPT (the prompt is the rest of the line); "
                                f"got {len(fields)} field(s). For prompts over several lines or extra CLI "
                                f"arguments, write the file as YAML (tasks.yaml)")
        cli, repository, prompt = fields
        if cli not in CLIS:
            raise TaskFileError(f"{where}: CLI {shown(cli)!r} is not one of {', '.join(sorted(CLIS))}")
        tasks.append(Task(len(tasks) + 1, where, cli, _repository(repository, path.parent), prompt))
    return tasks


def parse_yaml(text: str, path: Path) -> list[Task]:
    """`tasks:` a list of mappings (prompt, repository, cli, args, name, timeout), with an optional
    `defaults:` mapping of the same keys; or the list alone."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise TaskFileError(f"{path}{line}: not valid YAML ({getattr(error, 'problem', None) or error})") from None
        if root is None:
            return []
        defaults, items = {}, root
        if isinstance(root, yaml.MappingNode):
            top = {_key(path, k): (k, v) for k, v in root.value}
            unknown = sorted(set(top) - {"defaults", "tasks"})
            if unknown:
                key_node = top[unknown[0]][0]
                raise TaskFileError(f"{path}:{key_node.start_mark.line + 1}: unknown key {unknown[0]!r}; the file "
                                    f"holds 'tasks' (a list) and optionally 'defaults' (a mapping)")
            if "tasks" not in top:
                raise TaskFileError(f"{path}:1: no 'tasks' key; write tasks: followed by a list of tasks")
            if "defaults" in top:
                defaults = _task_fields(loader, path, top["defaults"][1], "defaults")
            items = top["tasks"][1]
        if not isinstance(items, yaml.SequenceNode):
            raise TaskFileError(f"{path}:{items.start_mark.line + 1}: tasks: expected a list of tasks")
        tasks = []
        for index, item in enumerate(items.value):
            where = f"tasks[{index}]"
            fields = {**defaults, **_task_fields(loader, path, item, where)}
            line = item.start_mark.line + 1
            for key in ("prompt", "repository", "cli"):
                if key not in fields:
                    raise TaskFileError(f"{path}:{line}: {where}: missing key {key!r} (give it in the task or "
                                        f"under defaults:)")
            tasks.append(Task(index + 1, f"{path}:{line}", fields["cli"][0], _repository(fields["repository"][0],
                                                                                          path.parent),
                              fields["prompt"][0], tuple(fields.get("args", ((), 0))[0]),
                              fields.get("name", ("", 0))[0], fields.get("timeout", (None, 0))[0]))
        names = [t.name for t in tasks if t.name]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise TaskFileError(f"{path}: task name {twice[0]!r} is given to more than one task; names must differ")
        return tasks
    finally:
        loader.dispose()


def _key(path: Path, node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise TaskFileError(f"{path}:{node.start_mark.line + 1}: a key must be a plain word")
    return str(node.value)


def _task_fields(loader, path: Path, node, where: str) -> dict:
    """{key: (value, line)} of one task mapping, each value checked."""
    if not isinstance(node, yaml.MappingNode):
        raise TaskFileError(f"{path}:{node.start_mark.line + 1}: {where}: expected a mapping of "
                            f"{', '.join(TASK_KEYS)}")
    fields = {}
    for key_node, value_node in node.value:
        key, line = _key(path, key_node), key_node.start_mark.line + 1
        at = f"{path}:{line}: {where}.{key}"
        if key not in TASK_KEYS:
            raise TaskFileError(f"{path}:{line}: {where}: unknown key {shown(key)!r}; a task has "
                                f"{', '.join(TASK_KEYS)}")
        if key in fields:
            raise TaskFileError(f"{at}: given twice")
        try:
            value = loader.construct_object(value_node, deep=True)
        except yaml.YAMLError as error:
            raise TaskFileError(f"{at}: {error}") from None
        fields[key] = (_checked(key, value, at), line)
    return fields


def _checked(key: str, value, at: str):
    if key in ("prompt", "repository"):
        if not isinstance(value, str) or not value.strip():
            raise TaskFileError(f"{at}: expected a non-empty string")
        return value if key == "prompt" else value.strip()
    if key == "cli":
        if value not in CLIS:
            raise TaskFileError(f"{at}: {shown(str(value))!r} is not one of {', '.join(sorted(CLIS))}")
        return value
    if key == "args":
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            raise TaskFileError(f"{at}: expected a list of strings, e.g. [-m, gpt-5-codex]")
        return value
    if key == "name":
        if not isinstance(value, str) or not NAME.match(value):
            raise TaskFileError(f"{at}: expected a short name of letters, digits, '.', '_' and '-'")
        return value
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:  # timeout
        raise TaskFileError(f"{at}: expected a positive number of seconds")
    return value


# --- the sweep's services ------------------------------------------------------------------------------

@dataclass
class Services:
    """The proxy and the gateways a sweep's runs share, and everything to start and remove them."""
    sweep_id: str
    folder: Path                  # on disk, root's, 0700: configs, the shared logs, the runs' output
    memory: Path                  # on a tmpfs: the gateways' keys until they have read them
    vendors: tuple
    files: dict
    setup: list
    teardown: list
    shared: Shared
    gateway_folders: dict
    outside: str

    def secrets(self, vendor: str) -> Path:
        return self.memory / f"gateway-{vendor}"


def plan_services(options: Options, vendors: list[str], sweep_id: str, folder: Path, memory: Path) -> Services:
    """Pure: the sweep's proxy (the profile's allowlist, every agent subnet) and one gateway per
    vendor (that vendor's route only), on the outside network; runs connect them to their own."""
    engine = options.engine
    base = f"agent-sandbox-sweep-{sweep_id}"
    outside = options.outside_network or f"{base}-ext"
    on_outside = ["--network", outside]
    files = dict(proxy_files(options, folder))
    setup = [] if options.outside_network else [[engine, "network", "create", outside]]
    setup.append(proxy_container(options, folder, f"{base}-proxy", on_outside))
    gateways, gateway_folders, gateway_logs = {}, {}, {}
    for vendor in vendors:
        gateways[vendor] = f"{base}-gateway-{vendor}"
        gateway_folders[vendor] = folder / f"gateway-{vendor}"
        gateway_logs[vendor] = gateway_folders[vendor] / "gateway-log" / "access.log"
        files.update(gateway_files(options, gateway_folders[vendor], AGENT_SUPERNET, vendor))
        setup.append(gateway_container(options, gateway_folders[vendor], memory / f"gateway-{vendor}",
                                       gateways[vendor], on_outside))
    names = [f"{base}-proxy", *gateways.values()]
    setup += [[engine, "start", name] for name in names]
    teardown = [[engine, "rm", "-f", "-t", "1", "-v", name] for name in names]
    if not options.outside_network:
        teardown.append([engine, "network", "rm", outside])
    shared = Shared(proxy=f"{base}-proxy", gateways=gateways, proxy_log=folder / "proxy-log" / "access.log",
                    gateway_logs=gateway_logs)
    return Services(sweep_id, folder, memory, tuple(vendors), files, setup, teardown, shared, gateway_folders,
                    outside)


def start_services(services: Services, keys: dict) -> None:
    """Write the configs and the keys, start the containers, wait until all serve, then delete the
    keys from the host (each gateway read its own once)."""
    for path, (text, mode) in services.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        safefs.write_new(path, text.encode(), mode)
    safefs.make_dir(services.folder / "proxy-log", 0o777)  # Squid drops to its own user
    for vendor, folder in services.gateway_folders.items():
        for name in ("gateway-state", "gateway-log"):
            safefs.make_dir(folder / name, 0o700, (layout.GATEWAY_UID, layout.GATEWAY_GID))
        write_secrets(services.secrets(vendor), {vendor: keys[vendor]})
    for argv in services.setup:
        must(argv)
    wait_until(lambda: proxy_ready(services.folder), 30, "the sweep's proxy")
    for vendor, folder in services.gateway_folders.items():
        wait_until(lambda f=folder: (f / "gateway-state" / "ready").exists(), 30, f"the sweep's {vendor} gateway")
        shutil.rmtree(services.secrets(vendor))


def stop_services(services: Services) -> list[str]:
    problems = remove_all(services.teardown)
    shutil.rmtree(services.memory, ignore_errors=True)
    return problems


# --- the runs ------------------------------------------------------------------------------------------

DONE, FAILED, RUNNING, QUEUED, CANCELLED = "done", "failed", "running", "queued", "cancelled"


@dataclass
class Slot:
    """One task as the sweep follows it."""
    task: Task
    state: str = QUEUED
    run_id: str = ""
    code: int | None = None
    refs: list = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    run_dir: Path | None = None
    error: str = ""
    stop: list | None = None          # the command that stops its agent (set once it exists)
    log: Path | None = None

    @property
    def seconds(self) -> float:
        if not self.started:
            return 0.0
        return (self.finished or time.monotonic()) - self.started


class Allocation:
    """Run ids whose uid ranges and /24 networks no other live run of the sweep holds."""

    def __init__(self, stamp: str, taken_subnets):
        self.stamp = stamp
        self.lock = threading.Lock()
        self.bases: set[int] = set()
        self.subnets: set[str] = set()
        self.taken_subnets = taken_subnets      # () -> set: the engine's networks now

    def take(self) -> tuple[str, str]:
        with self.lock:
            if len(self.bases) >= ID_SLOTS:
                raise RunError("no free uid range for another run")
            while True:
                run_id = f"{self.stamp}-{uuid.uuid4().hex[:6]}"
                if id_base(run_id) not in self.bases:
                    break
            subnet = free_subnet(subnet_for(run_id), self.taken_subnets() | self.subnets)
            self.bases.add(id_base(run_id))
            self.subnets.add(subnet)
            return run_id, subnet

    def give_back(self, run_id: str, subnet: str) -> None:
        with self.lock:
            self.bases.discard(id_base(run_id))
            self.subnets.discard(subnet)


class ThreadOutput:
    """sys.stderr while a sweep runs: what a run's thread writes goes to that run's log, the rest
    to the terminal. The run's code prints as a single run does; the terminal keeps the progress."""

    def __init__(self, terminal):
        self.terminal = terminal
        self.local = threading.local()

    def route(self, stream) -> None:
        self.local.stream = stream

    def _stream(self):
        return getattr(self.local, "stream", None) or self.terminal

    def write(self, text: str) -> int:
        return self._stream().write(text)

    def flush(self) -> None:
        self._stream().flush()

    def isatty(self) -> bool:
        return self._stream().isatty()


@dataclass
class Sweep:
    sweep_id: str
    tasks: list
    options: dict                       # task number -> Options (run_id and subnet filled in when it starts)
    services: Services | None           # None: kubernetes (the cluster's proxy and gateway serve every run)
    allocation: Allocation
    cancel: Cancel = field(default_factory=Cancel)
    slots: list = field(default_factory=list)

    def run_one(self, slot: Slot, output: ThreadOutput) -> None:
        if self.cancel.signum is not None:
            slot.state = CANCELLED
            return
        try:
            run_id, subnet = self.allocation.take()
        except RunError as error:
            slot.state, slot.error = FAILED, str(error)
            return
        slot.run_id, slot.state, slot.started = run_id, RUNNING, time.monotonic()
        options = replace(self.options[slot.task.number], run_id=run_id, subnet=subnet, agent_log=slot.log)
        with open(slot.log, "a", encoding="utf-8", errors="replace") as log:
            output.route(log)
            try:
                if options.engine == "kubernetes":
                    self.run_on_kubernetes(slot, options, log)
                    return
                launch = begin(options)
                slot.run_dir = launch.host.run_dir
                launch.record(sweep=self.sweep_id, task=slot.task.number,
                              task_name=slot.task.label, task_file=slot.task.where)
                slot.stop = launch.plan.stop_agent
                slot.code = execute(launch.plan, options, launch.host, launch.source, launch.key, launch.credential,
                                    launch.record, cancel=self.cancel)
                record = review.load_record(run_id, launch.host.run_dir.parent)
                slot.refs = list(record.get("refs") or [])
            except (RunError, ValueError, OSError) as error:
                print(f"{PROG}: {error}", file=log)
                slot.error = str(error)
            finally:
                output.route(None)
                slot.stop = None
                self.allocation.give_back(run_id, subnet)
                slot.finished = time.monotonic()
                slot.state = DONE if slot.code == 0 and not slot.error else FAILED

    def run_on_kubernetes(self, slot: Slot, options: Options, log) -> None:
        """A claim of its own; the cluster's proxy and gateway; the sweep's stop through cancel."""
        from launcher import kube_engine
        slot.run_dir = review.runs_root() / options.run_id
        slot.code = kube_engine.run(options, cancel=self.cancel, out=log)
        slot.refs = list(review.load_record(options.run_id).get("refs") or [])

    def stop_running(self, last_stopped: dict) -> None:
        """Stop every agent that runs; again after a while, for one that reached its start meanwhile."""
        now = time.monotonic()
        for slot in self.slots:
            if slot.stop and now - last_stopped.get(slot.run_id, -STOP_AGAIN) >= STOP_AGAIN:
                last_stopped[slot.run_id] = now
                run_command(slot.stop, 30)


# --- the progress and the summary ----------------------------------------------------------------------

def counts(slots: list[Slot]) -> dict:
    found = {state: 0 for state in (DONE, FAILED, RUNNING, QUEUED, CANCELLED)}
    for slot in slots:
        found[slot.state] += 1
    return found


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def progress_line(slots: list[Slot], elapsed: float, width: int = 24, colour: bool = False) -> str:
    """One line: a bar of finished runs, then done / running / failed / queued and the time."""
    found, total = counts(slots), len(slots)
    finished = found[DONE] + found[FAILED] + found[CANCELLED]
    filled = int(width * finished / total) if total else width
    green, red, reset = ("\x1b[32m", "\x1b[31m", "\x1b[0m") if colour else ("", "", "")
    bar = "#" * filled + "." * (width - filled)
    failed = f"{red}{found[FAILED]} failed{reset}" if found[FAILED] and colour else f"{found[FAILED]} failed"
    return (f"sweep [{green}{bar}{reset}] {finished}/{total}: {found[DONE]} done, {found[RUNNING]} running, "
            f"{failed}, {found[QUEUED]} queued" + (f", {found[CANCELLED]} cancelled" if found[CANCELLED] else "")
            + f" ({_clock(elapsed)})")


def finish_line(slot: Slot) -> str:
    task = slot.task
    what = {DONE: "done", FAILED: "FAILED", CANCELLED: "cancelled"}.get(slot.state, slot.state)
    refs = f", {len(slot.refs)} ref(s)" if slot.refs else ""
    error = f": {shown(slot.error)[:200]}" if slot.error else ""
    code = "" if slot.code is None else f", exit {slot.code}"
    return f"sweep: #{task.number} {task.label} ({task.cli}, {shown(str(task.repository))}) {what}{code}{refs} " \
           f"in {_clock(slot.seconds)}{error}"


class Progress:
    """On a terminal (and without NO_COLOR): a bar redrawn in place, a line per finished run above
    it. Otherwise: a line when a run starts or ends and when the counts change."""

    def __init__(self, stream, slots: list[Slot]):
        self.stream, self.slots = stream, slots
        self.fancy = stream.isatty() and not os.environ.get("NO_COLOR")
        self.colour = use_colour(stream)
        self.started = time.monotonic()
        self.reported: dict[int, str] = {}
        self.last = ""

    def update(self) -> None:
        events = []
        for slot in self.slots:
            seen = self.reported.get(slot.task.number)
            if slot.state == seen:
                continue
            self.reported[slot.task.number] = slot.state
            if slot.state == RUNNING:
                if not self.fancy:
                    events.append(f"sweep: #{slot.task.number} {slot.task.label} started: run {slot.run_id}")
            elif slot.state in (DONE, FAILED, CANCELLED):
                events.append(finish_line(slot))
        line = progress_line(self.slots, time.monotonic() - self.started, colour=self.colour and self.fancy)
        if self.fancy:
            self.stream.write("\r\x1b[2K" + "".join(e + "\n\x1b[2K" for e in events) + line)
        else:
            counts_now = line.split("] ", 1)[1].rsplit(" (", 1)[0]
            if counts_now != self.last:
                events.append(line)
                self.last = counts_now
            self.stream.write("".join(e + "\n" for e in events))
        self.stream.flush()

    def close(self) -> None:
        if self.fancy:
            self.stream.write("\n")
            self.stream.flush()


def summary_table(slots: list[Slot]) -> str:
    rows = [("#", "TASK", "CLI", "REPOSITORY", "RUN", "EXIT", "STATUS", "REFS", "TIME")]
    for slot in slots:
        rows.append((str(slot.task.number), slot.task.label, slot.task.cli, shown(str(slot.task.repository)),
                     slot.run_id or "-", "-" if slot.code is None else str(slot.code), slot.state.upper()
                     if slot.state == FAILED else slot.state, str(len(slot.refs)), _clock(slot.seconds)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n" for row in rows)


def summary_record(slots: list[Slot]) -> list[dict]:
    return [{"task": s.task.number, "name": s.task.label, "where": s.task.where, "cli": s.task.cli,
             "repository": str(s.task.repository), "run_id": s.run_id or None, "status": s.state, "exit_code": s.code,
             "refs": s.refs, "seconds": round(s.seconds, 1), "error": s.error or None,
             "audit": str(s.run_dir / "audit.json") if s.run_dir else None, "log": str(s.log) if s.log else None}
            for s in slots]


# --- the command -------------------------------------------------------------------------------------

def sweep_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"{PROG} sweep", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run one agent per task of TASKS, --concurrency at a time, each as `agent-run CLI` runs one "
                    "(its own copy, network, uid range, refs and audit), sharing one egress proxy and one "
                    "credential gateway per vendor. A bar shows the progress on a terminal (lines when piped or "
                    "with NO_COLOR); a table sums the runs up at the end. Ctrl-C, SIGTERM and SIGHUP stop every "
                    "run and tear everything down.",
        epilog="TASKS, plain lines (anything but .yaml/.yml):\n"
               "  # CLI   REPOSITORY   PROMPT (the rest of the line)\n"
               "  claude  ~/src/api    fix the failing test in tests/test_auth.py\n"
               "  codex   ../web       add a --json flag to the export command\n"
               "TASKS, YAML:\n"
               "  defaults: {cli: claude, repository: ~/src/api, timeout: 1800}\n"
               "  tasks:\n"
               "    - prompt: fix the failing test in tests/test_auth.py\n"
               "    - {cli: codex, repository: ../web, args: [-m, gpt-5-codex], name: json, prompt: add --json}\n"
               "Relative repositories are relative to the tasks file's folder.\n"
               "exit: 0 every run exited 0; 1 some did not; 2 bad input; 128+N stopped by signal N")
    p.add_argument("tasks", type=Path, metavar="TASKS", help="the tasks file")
    p.add_argument("--concurrency", "-j", type=int, default=2, help="runs at a time (default 2)")
    add_run_options(p)
    return p


def main(argv: list[str], before: argparse.Namespace | None = None) -> int:
    """before: what was given ahead of `sweep` (`agent-run --profile ci sweep TASKS`)."""
    parser = sweep_parser()
    if before is not None:
        single = [flag for flag, given in (("--workspace", before.workspace), ("--mount", before.mount),
                                           ("--ro-mount", before.ro_mount), ("--run-dir", before.run_dir)) if given]
        if single:
            parser.error(f"{', '.join(single)}: not for a sweep (each task names its repository; runs are copies)")
        known = {action.dest for action in parser._actions}
        parser.set_defaults(**{k: v for k, v in vars(before).items() if k in known and k not in ("tasks", "help")})
    args = parser.parse_args(argv)
    try:
        return sweep_command(args)
    except (RunError, ValueError) as error:
        print(f"{PROG} sweep: {shown(str(error))}", file=sys.stderr)
        return EXIT_USAGE


def task_options(args: argparse.Namespace, task: Task) -> Options:
    per_task = copy.copy(args)
    per_task.command, per_task.rest, per_task.workspace = task.cli, task.cli_args(), task.repository
    per_task.mount, per_task.ro_mount, per_task.run_dir = False, [], None
    if task.timeout:
        per_task.timeout = task.timeout
    given = github_flags_given(args)
    if given:
        raise RunError(f"{', '.join(given)}: a sweep's runs share one gateway, which holds no GitHub token; run "
                       f"GitHub tasks one at a time (agent-run CLI ...). A sweep's runs read GitHub anonymously")
    options = options_from_args(per_task, github=False)
    return replace(options, interactive=False)


def sweep_command(args: argparse.Namespace) -> int:
    if not 1 <= args.concurrency <= MAX_CONCURRENCY:
        raise RunError(f"--concurrency {args.concurrency}: expected 1 to {MAX_CONCURRENCY}")
    tasks = load_tasks(args.tasks)
    options = {}
    for task in tasks:
        try:
            options[task.number] = task_options(args, task)
            if args.engine == "kubernetes":
                from launcher import kube_engine
                kube_engine.prepare(options[task.number])
            else:
                prepare(options[task.number])       # the run's own checks, before anything starts
        except (RunError, ValueError) as error:
            raise RunError(f"{task.where}: {error}") from None
    logged_in = sorted({o.login for o in options.values() if o.login})
    if logged_in:
        raise RunError(f"a sweep takes API keys (--key-file/--key-command), not the logins {', '.join(logged_in)} "
                       "found or given (--login): subscription logins run one run at a time for now")
    vendors = sorted({CLIS[t.cli] for t in tasks})
    sources = {s.vendor: s for s in next(iter(options.values())).key_sources}
    kubernetes = args.engine == "kubernetes"
    missing = [] if kubernetes else [v for v in vendors if v not in sources]   # the cluster's gateway has them
    if missing:
        needing = [t.where for t in tasks if CLIS[t.cli] in missing]
        raise RunError(f"no key for {', '.join(missing)} (needed by {', '.join(needing[:3])}"
                       f"{'...' if len(needing) > 3 else ''}): pass --key-file VENDOR=PATH or --key-command "
                       f"VENDOR='COMMAND' for each")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    sweep_id = f"{stamp}-{uuid.uuid4().hex[:4]}"
    folder = review.runs_root().parent / "sweeps" / sweep_id
    any_options = next(iter(options.values()))
    if args.print_only and kubernetes:
        from launcher import kube_engine
        for task in tasks:
            task_plan, _ = kube_engine.prepare(options[task.number])
            sys.stdout.write(f"\n# --- task {task.number} ({task.where}): {task.label} ---\n")
            sys.stdout.write(kube_engine.format_plan(task_plan, options[task.number]))
        return 0
    if args.print_only:
        return print_sweep(tasks, options, any_options, vendors, sweep_id, folder)
    if kubernetes:
        folder.mkdir(parents=True, mode=0o700)
        sweep = Sweep(sweep_id, tasks, options, None, Allocation(stamp, lambda: set()))
        sweep.slots = [Slot(task, log=folder / f"task-{task.number:03d}.log") for task in tasks]
        return run_sweep(sweep, {}, args.concurrency, folder)
    if os.geteuid() != 0:
        raise RunError("agent-run sweep runs as root (sudo agent-run sweep ...), as agent-run does")
    missing_images_found = missing_images(any_options)
    if missing_images_found:
        raise RunError("; ".join(missing_images_found))
    memory = memory_root() / f"sweep-{sweep_id}"
    services = plan_services(any_options, vendors, sweep_id, folder, memory)
    shared_options = {n: replace(o, shared=services.shared) for n, o in options.items()}
    keys = {vendor: read_key(sources[vendor]) for vendor in vendors}
    folder.mkdir(parents=True, mode=0o700)
    try:
        safefs.private_folder(memory.parent)
    except safefs.UnsafeFile as error:
        raise RunError(str(error)) from None
    safefs.make_dir(memory, 0o700)
    sweep = Sweep(sweep_id, tasks, shared_options, services, Allocation(stamp, lambda: taken_subnets(args.engine)))
    sweep.slots = [Slot(task, log=folder / f"task-{task.number:03d}.log") for task in tasks]
    return run_sweep(sweep, keys, args.concurrency, folder)


def run_sweep(sweep: Sweep, keys: dict, concurrency: int, folder: Path) -> int:
    terminal = sys.stderr
    received: list[int] = []

    def on_signal(signum, frame):   # only noted: the main loop below stops the runs
        received.append(signum)
        sweep.cancel.set(signum)
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    progress = Progress(terminal, sweep.slots)
    output = ThreadOutput(terminal)
    problems: list[str] = []
    watch = None
    print(f"{PROG} sweep: {len(sweep.tasks)} task(s), {concurrency} at a time; folder {folder}", file=terminal)
    try:
        try:
            if sweep.services is not None:
                print(f"{PROG} sweep: starting the proxy and the gateway(s) for {', '.join(sweep.services.vendors)}",
                      file=terminal)
                watch = guardian.Guardian.start(guardian.Job(teardown=sweep.services.teardown,
                                                             memory_dir=str(sweep.services.memory), run_dir=None),
                                                folder / "guardian.log")
                start_services(sweep.services, keys)
        except (RunError, OSError) as error:
            problems.append(f"the sweep's services did not start: {error}")
            for slot in sweep.slots:
                slot.state, slot.error = CANCELLED, "the sweep's services did not start"
        finally:
            keys.clear()
        sys.stderr = output
        stopped: dict = {}
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sweep") as pool:
            futures = [pool.submit(sweep.run_one, slot, output) for slot in sweep.slots if slot.state == QUEUED]
            while not all(f.done() for f in futures):
                if sweep.cancel.signum is not None:
                    if not stopped:
                        terminal.write(f"\n{PROG} sweep: {signal.Signals(sweep.cancel.signum).name}: stopping every "
                                       f"run and tearing down\n")
                        stopped["-"] = 0.0
                    sweep.stop_running(stopped)
                progress.update()
                time.sleep(0.25)
            problems += [f"a run's thread failed: {f.exception()!r}" for f in futures if f.exception() is not None]
        progress.update()
    finally:
        sys.stderr = terminal
        progress.close()
        # Whatever happened, the shared services go, and the keys they hold with them; a signal now
        # is only noted (the handler stays ours until the end).
        if sweep.services is not None:
            problems += stop_services(sweep.services)
        if watch:
            watch.release()
        summary = {"sweep": sweep.sweep_id, "runs": summary_record(sweep.slots), "problems": problems,
                   "interrupted_by": signal.Signals(received[0]).name if received else None}
        safefs.write_new(folder / "summary.json", (json.dumps(summary, indent=2) + "\n").encode(), 0o600)
        sys.stdout.write(summary_table(sweep.slots))
        sys.stdout.flush()
        for problem in problems:
            print(f"{PROG} sweep: {shown(problem)}", file=terminal)
        print(f"{PROG} sweep: summary {folder / 'summary.json'}; each run's output in {folder}/task-NNN.log, its "
              f"audit in {review.runs_root()}/RUN/audit.json; `{PROG} review RUN` in its repository shows its work",
              file=terminal)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        return 128 + received[0]
    return 0 if all(s.state == DONE for s in sweep.slots) and not problems else EXIT_SOME_FAILED


def print_sweep(tasks: list, options: dict, any_options: Options, vendors: list, sweep_id: str, folder: Path) -> int:
    memory = memory_root() / f"sweep-{sweep_id}"
    services = plan_services(any_options, vendors, sweep_id, folder, memory)
    lines = [f"# agent-run sweep: {len(tasks)} task(s), profile {any_options.profile}, folder {folder}",
             f"# the sweep's services: the proxy, and a gateway for each of {', '.join(vendors)} (each key read "
             f"once, written to {memory}/gateway-VENDOR, deleted when its gateway is ready)"]
    lines += [f"# write {path} (mode {mode:04o})" for path, (_, mode) in services.files.items()]
    lines += [shlex.join(argv) for argv in services.setup]
    sys.stdout.write("\n".join(lines) + "\n")
    allocation = Allocation(sweep_id.rsplit("-", 1)[0], lambda: set())
    for task in tasks:
        run_id, subnet = allocation.take()
        task_options = replace(options[task.number], run_id=run_id, subnet=subnet, shared=services.shared)
        host, _, steps, warnings = prepare(task_options)
        host = replace(host, subnet=subnet)
        plan = build_plan(task_options, host)
        plan.warnings += warnings
        sys.stdout.write(f"\n# --- task {task.number} ({task.where}): {task.label} ---\n")
        sys.stdout.write(format_plan(plan, task_options, host, steps))
    sys.stdout.write("\n# at the end, or on SIGINT, SIGTERM or SIGHUP: every run's teardown, then\n")
    sys.stdout.write("".join(shlex.join(argv) + "\n" for argv in services.teardown))
    return 0
