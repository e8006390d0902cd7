"""agent-run sweep without an engine: the tasks file and its errors, the shared services and a run's
part of them, the split of the shared logs, the allocation of ids and networks, the progress and the
summary. (The runs themselves, with podman and the real CLIs: tests/e2e/test_sweep.py.)"""
from __future__ import annotations

import io
import json
import shlex
import time
from pathlib import Path

import pyte
import pytest

from egress.gateway import KeySource
from launcher import sweep
from launcher.cli import main, prepare
from launcher.execute import lines_from, split_shared_logs
from launcher.plan import ID_SLOTS, Options, RunError, build_plan, id_base
from launcher.sweep import (Allocation, Progress, Slot, Task, TaskFileError, ThreadOutput, load_tasks, plan_services,
                            progress_line, summary_table)
from repos import make_repo


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- the tasks file --------------------------------------------------------------------------------

def test_plain_lines_give_cli_repository_and_the_rest_of_the_line_as_prompt(tmp_path):
    tasks = load_tasks(write(tmp_path / "tasks.txt", "# my sweep\n\nclaude  api   fix the test, don't break it\n"
                                                      "codex /abs/web add a --json flag\n"))
    assert [(t.number, t.where, t.cli, t.prompt) for t in tasks] == [
        (1, f"{tmp_path}/tasks.txt:3", "claude", "fix the test, don't break it"),
        (2, f"{tmp_path}/tasks.txt:4", "codex", "add a --json flag")]
    assert tasks[0].repository == tmp_path / "api" and tasks[1].repository == Path("/abs/web")
    assert tasks[0].cli_args() == ["-p", "fix the test, don't break it"]
    assert tasks[1].cli_args() == ["exec", "add a --json flag"]


@pytest.mark.parametrize("line, error", [
    ("claude api", "tasks.txt:2: expected CLI REPOSITORY PROMPT (the prompt is the rest of the line); got 2"),
    ("cladue api fix it", "tasks.txt:2: CLI 'cladue' is not one of claude, codex, gemini"),
])
def test_a_bad_line_is_named_by_file_and_line(tmp_path, line, error):
    with pytest.raises(TaskFileError, match=error.replace("(", r"\(").replace(")", r"\)")):
        load_tasks(write(tmp_path / "tasks.txt", f"claude api ok\n{line}\n"))


def test_yaml_tasks_take_defaults_and_their_own_keys(tmp_path):
    tasks = load_tasks(write(tmp_path / "tasks.yaml", """\
defaults:
  cli: gemini
  repository: ../repo
  timeout: 900
tasks:
  - prompt: |
      update the changelog
      and the version
  - prompt: add a flag
    cli: codex
    args: [-m, gpt-5-codex]
    name: flag
    timeout: 60
"""))
    first, second = tasks
    assert first.where.endswith("tasks.yaml:6") and first.cli == "gemini" and first.timeout == 900
    assert first.repository == (tmp_path / "../repo").absolute() and first.label == "task-1"
    assert first.cli_args() == ["-p", "update the changelog\nand the version\n"]
    assert second.cli_args() == ["exec", "-m", "gpt-5-codex", "add a flag"]
    assert (second.name, second.timeout, second.where.endswith("tasks.yaml:9")) == ("flag", 60, True)


def test_a_bare_yaml_list_is_a_tasks_list(tmp_path):
    tasks = load_tasks(write(tmp_path / "t.yml", "- {cli: claude, repository: r, prompt: hi}\n"))
    assert [t.prompt for t in tasks] == ["hi"]


@pytest.mark.parametrize("text, error", [
    ("tasks:\n  - {cli: claude, repository: r, prompt: hi, model: x}\n",
     r"tasks.yaml:2: tasks\[0\]: unknown key 'model'; a task has prompt, repository, cli, args, name, timeout"),
    ("tasks:\n  - cli: claude\n    repository: r\n", r"tasks.yaml:2: tasks\[0\]: missing key 'prompt'"),
    ("tasks:\n  - cli: claude\n    repository: r\n    prompt: hi\n    timeout: -5\n",
     r"tasks.yaml:5: tasks\[0\].timeout: expected a positive number of seconds"),
    ("tasks:\n  - {cli: claude, repository: r, prompt: hi, args: -m x}\n",
     r"tasks.yaml:2: tasks\[0\].args: expected a list of strings"),
    ("tasks:\n  - {cli: chatgpt, repository: r, prompt: hi}\n",
     r"tasks.yaml:2: tasks\[0\].cli: 'chatgpt' is not one of claude, codex, gemini"),
    ("defaults: {cli: claude, repo: r}\ntasks: []\n", r"tasks.yaml:1: defaults: unknown key 'repo'"),
    ("task:\n  - {}\n", r"tasks.yaml:1: unknown key 'task'; the file holds 'tasks'"),
    ("tasks: {prompt: hi}\n", r"tasks.yaml:1: tasks: expected a list of tasks"),
    ("tasks:\n  - [claude, r, hi]\n", r"tasks.yaml:2: tasks\[0\]: expected a mapping"),
    ("tasks:\n  - {cli: claude, repository: r, prompt: hi, name: a}\n  - {cli: claude, repository: r, prompt: "
     "ho, name: a}\n", r"task name 'a' is given to more than one task"),
    ("tasks:\n  - {cli: claude\n", r"tasks.yaml:3: not valid YAML"),
    ("tasks: []\n", r"tasks.yaml: no tasks"),
])
def test_a_bad_yaml_file_is_named_by_file_line_and_key(tmp_path, text, error):
    with pytest.raises(TaskFileError, match=error):
        load_tasks(write(tmp_path / "tasks.yaml", text))


def test_a_missing_file_is_said_plainly(tmp_path):
    with pytest.raises(TaskFileError, match="cannot read the tasks file"):
        load_tasks(tmp_path / "none.txt")


def test_bad_input_exits_2_before_anything_starts(tmp_path, capsys):
    repo = make_repo(tmp_path, {"a": "x"})
    tasks = write(tmp_path / "tasks.txt", f"claude {repo} hi\ncodex {tmp_path}/nowhere hi\n")
    key = write(tmp_path / "key", "sk-ant-0123456789\n")
    assert main(["sweep", str(tasks), "--key-file", f"anthropic={key}", "--key-file", f"openai={key}"]) == 2
    err = capsys.readouterr().err
    assert f"tasks.txt:2: workspace {tmp_path}/nowhere is not a folder" in err
    assert main(["sweep", str(write(tmp_path / "one.txt", f"codex {repo} hi\n")),
                 "--key-file", f"anthropic={key}"]) == 2
    assert "no key for openai (needed by " in capsys.readouterr().err
    assert main(["sweep", str(tasks), "--concurrency", "0"]) == 2
    assert "--concurrency 0: expected 1 to 64" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--workspace", str(repo), "sweep", str(tasks)])
    assert "--workspace: not for a sweep" in capsys.readouterr().err
    one = write(tmp_path / "claude.txt", f"claude {repo} hi\n")
    assert main(["sweep", str(one), "--print", "--key-file", f"anthropic={key}", "--github-token-file", str(key)]) == 2
    assert "--github-token-file: a sweep's runs share one gateway, which holds no GitHub token" in capsys.readouterr().err


# --- the shared services and a run's part of them ---------------------------------------------------

def options(tmp_path: Path, repo: Path, cli: str = "claude", **changes) -> Options:
    (tmp_path / "home").mkdir(exist_ok=True)
    base = dict(cli=cli, cli_args=["-p", "hi"], workspace=repo, profile="autonomous", run_id="20260101-000000-abcdef",
                key_sources=[KeySource("anthropic", file=tmp_path / "k"), KeySource("openai", file=tmp_path / "k")],
                home=tmp_path / "home", allow=("pypi.org", "github.com", "api.anthropic.com"))
    base.update(changes)
    return Options(**base)


def test_the_services_are_one_proxy_and_one_gateway_per_vendor_on_the_outside_network(tmp_path):
    repo = make_repo(tmp_path, {"a": "x"})
    services = plan_services(options(tmp_path, repo), ["anthropic", "openai"], "S1", tmp_path / "sweep",
                             tmp_path / "memory")
    commands = [shlex.join(argv) for argv in services.setup]
    assert commands[0] == "podman network create agent-sandbox-sweep-S1-ext"
    creates = [argv for argv in services.setup if argv[1] == "create"]
    assert [argv[3] for argv in creates] == ["agent-sandbox-sweep-S1-proxy", "agent-sandbox-sweep-S1-gateway-anthropic",
                                             "agent-sandbox-sweep-S1-gateway-openai"]
    for argv in creates:
        assert argv[argv.index("--network") + 1] == "agent-sandbox-sweep-S1-ext" and argv.count("--network") == 1
        assert "net.ipv4.ip_forward=0" in argv  # on every run's network at once: never a router
    anthropic = json.loads(services.files[tmp_path / "sweep/gateway-anthropic/gateway/config.json"][0])
    assert [r["name"] for r in anthropic["routes"]] == ["anthropic"] and anthropic["agent_subnets"] == ["10.213.0.0/16"]
    squid = services.files[tmp_path / "sweep/squid/squid.conf"][0]
    assert "acl agents src 10.213.0.0/16" in squid and "pypi.org" in squid
    # GitHub only through the gateways (anonymously: a sweep's runs get no GitHub token)
    assert not [line for line in squid.splitlines() if line.startswith("acl allowlisted") and "github.com" in line]
    assert anthropic["github"]["secret"] is None and anthropic["github"]["policy"]["repository"] is None
    assert [shlex.join(a) for a in services.teardown][-1] == "podman network rm agent-sandbox-sweep-S1-ext"
    # the keys go to memory, one folder per gateway
    gateway = creates[1]
    assert f"type=bind,src={tmp_path}/memory/gateway-anthropic,dst=/run/agent-gateway/secrets,readonly" in gateway


def test_a_sweeps_run_joins_the_services_on_its_own_network(tmp_path):
    repo = make_repo(tmp_path, {"a": "x"})
    services = plan_services(options(tmp_path, repo), ["anthropic", "openai"], "S1", tmp_path / "sweep",
                             tmp_path / "memory")
    run = options(tmp_path, repo, cli="codex", cli_args=["exec", "hi"], shared=services.shared,
                  subnet="10.213.77.0/24")
    host, _, _, _ = prepare(run)
    from dataclasses import replace
    plan = build_plan(run, replace(host, subnet=run.subnet))
    internal = "agent-sandbox-20260101-000000-abcdef-int"
    assert [shlex.join(a) for a in plan.setup] == [
        f"podman network create --internal --disable-dns --subnet 10.213.77.0/24 {internal}",
        f"podman network connect --ip 10.213.77.2 {internal} agent-sandbox-sweep-S1-proxy",
        f"podman network connect --ip 10.213.77.3 {internal} agent-sandbox-sweep-S1-gateway-openai"]
    assert [shlex.join(a) for a in plan.teardown][-3:] == [
        f"podman network disconnect -f {internal} agent-sandbox-sweep-S1-proxy",
        f"podman network disconnect -f {internal} agent-sandbox-sweep-S1-gateway-openai",
        f"podman network rm {internal}"]
    assert not [p for p in plan.files if "squid" in str(p) or "gateway" in str(p)]  # no services of its own
    assert "--add-host" in plan.agent_create and "agent-gateway:10.213.77.3" in plan.agent_create


def test_each_run_gets_its_own_uid_range_and_network_while_it_lives():
    allocation = Allocation("20260101-000000", lambda: {"10.213.5.0/24"})
    taken = [allocation.take() for _ in range(253)]
    run_ids, subnets = zip(*taken)
    assert len({id_base(r) for r in run_ids}) == 253 and len(allocation.bases) <= ID_SLOTS
    assert len(set(subnets)) == 253 and "10.213.5.0/24" not in subnets
    with pytest.raises(RunError, match="every 10.213.N.0/24 is taken"):
        allocation.take()
    allocation.give_back(*taken[0])
    assert allocation.take()[1] == taken[0][1]  # a network comes free when its run ends


# --- the shared logs, split per run ------------------------------------------------------------------

def test_a_runs_audit_takes_its_own_addresses_lines_while_it_ran(tmp_path):
    now = time.time()
    squid = tmp_path / "access.log"
    squid.write_text("".join(f"{t:.3f} client={c} status=TCP_DENIED/403 bytes_up=1 bytes_down=2 method=CONNECT "
                             f"url={u}:443 server=- decision=deny_not_allowlisted\n"
                             for t, c, u in ((now - 100, "10.213.7.10", "old.example"), (now, "10.213.7.10", "mine"),
                                             (now, "10.213.8.10", "theirs"))))
    lines, problem = lines_from(squid, "10.213.7.10", now - 5, now + 5, proxy=True)
    assert problem is None and [line.split("url=")[1].split(":")[0] for line in lines] == ["mine"]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".500Z"
    gateway = tmp_path / "gateway.log"
    gateway.write_text(json.dumps({"time": stamp, "client": "10.213.7.10", "vendor": "openai"}) + "\n"
                       + json.dumps({"time": stamp, "client": "10.213.70.10", "vendor": "openai"}) + "\n")
    lines, _ = lines_from(gateway, "10.213.7.10", now - 5, now + 5, proxy=False)
    assert [json.loads(line)["client"] for line in lines] == ["10.213.7.10"]


def test_a_shared_log_that_is_not_a_file_is_a_problem_not_a_hang(tmp_path):
    import os
    os.mkfifo(tmp_path / "fifo")
    lines, problem = lines_from(tmp_path / "fifo", "10.213.7.10", 0, time.time(), proxy=True)
    assert lines == [] and "a FIFO, not a regular file" in problem
    (tmp_path / "link").symlink_to(tmp_path / "fifo")
    assert "Too many levels of symbolic links" in lines_from(tmp_path / "link", "x", 0, 1, proxy=True)[1]
    assert lines_from(tmp_path / "missing", "x", 0, 1, proxy=True) == ([], None)


def test_split_writes_the_runs_lines_where_its_audit_reads_them(tmp_path):
    from launcher.plan import Shared

    class Plan:
        addresses = {"agent": "10.213.9.10"}

    class Host:
        run_dir = tmp_path / "run"
    Host.run_dir.mkdir()
    (tmp_path / "p.log").write_text(f"{time.time():.3f} client=10.213.9.10 url=a:443 decision=x\n"
                                    f"{time.time():.3f} client=10.213.99.10 url=b:443 decision=x\n")
    shared = Shared(proxy="p", gateways={"anthropic": "g"}, proxy_log=tmp_path / "p.log",
                    gateway_logs={"anthropic": tmp_path / "g.log"})
    assert split_shared_logs(shared, Plan, Host, vendor="anthropic", since=time.time() - 10) == []
    assert (Host.run_dir / "proxy-log" / "access.log").read_text().count("\n") == 1
    assert (Host.run_dir / "gateway-log" / "access.log").read_text() == ""


# --- the progress and the summary ---------------------------------------------------------------------

def slots(states: list[str]) -> list[Slot]:
    made = []
    for number, state in enumerate(states, 1):
        slot = Slot(Task(number, f"t:{number}", "claude", Path("/src/app"), "hi"), state=state,
                    run_id=f"run-{number}" if state != "queued" else "")
        if state in ("done", "failed"):
            slot.code, slot.started, slot.finished = (0 if state == "done" else 3), 1.0, 66.0
        made.append(slot)
    return made


def test_the_progress_line_counts_every_state():
    line = progress_line(slots(["done", "done", "failed", "running", "queued"]), 65.2, width=10)
    assert line == "sweep [######....] 3/5: 2 done, 1 running, 1 failed, 1 queued (1m05s)"


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_the_bar_is_redrawn_in_place_with_finished_runs_above_it(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream, states = Terminal(), slots(["running", "queued"])
    progress = Progress(stream, states)
    progress.update()
    states[0].state, states[0].code, states[0].finished = "done", 0, states[0].started + 3
    states[1].state, states[1].run_id = "running", "run-2"
    progress.update()
    screen = pyte.Screen(120, 6)
    pyte.Stream(screen).feed(stream.getvalue().replace("\n", "\r\n"))
    shown = [line.rstrip() for line in screen.display if line.strip()]
    assert shown[0].startswith("sweep: #1 task-1 (claude, /src/app) done, exit 0 in ")
    assert shown[1].startswith("sweep [############............] 1/2: 1 done, 1 running, 0 failed, 0 queued")
    assert len(shown) == 2
    assert "\x1b[32m" in stream.getvalue()  # colour on a terminal


def test_piped_or_with_no_color_it_prints_plain_lines(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    stream, states = Terminal(), slots(["running", "queued"])
    Progress(stream, states).update()
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert text.splitlines() == ["sweep: #1 task-1 started: run run-1",
                                 text.splitlines()[1]]
    assert text.splitlines()[1].startswith("sweep [........................] 0/2: 0 done, 1 running")


def test_the_summary_is_one_table():
    table = summary_table(slots(["done", "failed", "cancelled"])).splitlines()
    assert table[0].split() == ["#", "TASK", "CLI", "REPOSITORY", "RUN", "EXIT", "STATUS", "REFS", "TIME"]
    assert table[1].split() == ["1", "task-1", "claude", "/src/app", "run-1", "0", "done", "0", "1m05s"]
    assert table[2].split()[5:7] == ["3", "FAILED"]
    assert table[3].split()[4:7] == ["run-3", "-", "cancelled"]


def test_a_runs_thread_writes_to_its_log_and_the_rest_to_the_terminal():
    import threading
    terminal, log = io.StringIO(), io.StringIO()
    output = ThreadOutput(terminal)

    def run():
        output.route(log)
        output.write("the run's line\n")
        output.route(None)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    output.write("the sweep's line\n")
    assert log.getvalue() == "the run's line\n" and terminal.getvalue() == "the sweep's line\n"


def test_print_shows_the_services_and_every_runs_plan_and_runs_nothing(tmp_path, capsys):
    repo = make_repo(tmp_path, {"a": "x"})
    tasks = write(tmp_path / "tasks.txt", f"claude {repo} one\ngemini {repo} two\n")
    key = write(tmp_path / "key", "sk-ant-0123456789\n")
    assert main(["sweep", str(tasks), "--print", "--key-file", f"anthropic={key}", "--key-file", f"gemini={key}"]) == 0
    out = capsys.readouterr().out
    assert out.count("podman create --name agent-sandbox-sweep-") == 3  # the proxy, two gateways
    assert "# --- task 1 (" in out and "# --- task 2 (" in out
    assert out.count("podman network connect --ip ") == 4
    assert "the lines of the sweep's proxy and gateway logs from 10.213." in out
    assert sweep.MAX_CONCURRENCY == 64
