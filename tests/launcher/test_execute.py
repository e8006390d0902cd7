"""launcher.execute's parts that need no engine: the signal handling and the teardown's retries."""
from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from launcher import commands, execute
from launcher.plan import Plan


def test_the_first_signal_interrupts_later_ones_are_only_noted():
    before = {signum: signal.getsignal(signum) for signum in execute.SIGNALS}
    with execute.Signals() as signals:
        with pytest.raises(execute.Interrupted) as raised:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before the next line
        assert raised.value.signum == signal.SIGTERM
        os.kill(os.getpid(), signal.SIGHUP)  # during the teardown: noted, nothing raised
        os.kill(os.getpid(), signal.SIGINT)
        assert signals.received == [signal.SIGTERM, signal.SIGHUP, signal.SIGINT]
    assert {signum: signal.getsignal(signum) for signum in execute.SIGNALS} == before


def test_teardown_retries_what_podman_still_holds_and_reports_what_stays(monkeypatch):
    answers = {"busy": [1, 1, 0], "stuck": [1, 1, 1, 1], "gone": [1]}
    calls = []

    def fake_run(argv, timeout=120):
        calls.append(argv[-1])
        code = answers[argv[-1]].pop(0)
        stderr = "Error: no such container" if argv[-1] == "gone" else "device or resource busy"
        return subprocess.CompletedProcess(argv, code, "", stderr)
    monkeypatch.setattr(commands, "run_command", fake_run)
    monkeypatch.setattr(commands.time, "sleep", lambda seconds: None)
    plan = Plan(names={}, subnet="", addresses={}, files={}, setup=[], agent_create=[], start_agent=[],
                stop_agent=[], collect=None, vendor="anthropic",
                teardown=[["podman", "rm", "busy"], ["podman", "rm", "stuck"], ["podman", "rm", "gone"]])
    problems = execute.teardown(plan, None)
    assert calls == ["busy"] * 3 + ["stuck"] * 4 + ["gone"]
    assert len(problems) == 1 and "podman rm stuck failed" in problems[0]


def test_the_run_record_is_updated_in_place(tmp_path):
    path = tmp_path / "run.json"
    commands.write_record(path, {"status": "running", "cli": "claude"})
    commands.write_record(path, {"status": "finished", "exit_code": 0})
    assert json.loads(path.read_text()) == {"status": "finished", "cli": "claude", "exit_code": 0}
