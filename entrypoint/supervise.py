"""Running the CLI as a child: signals forwarded, exit status passed on, zombies reaped as PID 1.

Used when the entrypoint cannot simply exec: in ci (it must read the CLI's output) and when it is
PID 1 (nothing else would reap orphans). The child gets its own process group and, when stdin is
a terminal, the terminal's foreground, so a Ctrl-C reaches it once, not twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from dataclasses import dataclass

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT)
PUMP_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class Outcome:
    exit_code: int  # the CLI's code, or 128 + signal when it was killed
    signal: int | None
    stdout: bytes
    stderr: bytes


def exit_code_of(status: int) -> tuple[int, int | None]:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return 128 + number, number
    return os.WEXITSTATUS(status), None


def _foreground_terminal() -> int | None:
    try:
        if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
            return 0
    except OSError:
        pass
    return None


def _child_setup(terminal: int | None):
    def setup():
        os.setpgid(0, 0)
        if terminal is not None:
            previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            try:
                os.tcsetpgrp(terminal, os.getpgrp())
            finally:
                signal.signal(signal.SIGTTOU, previous)
    return setup


def _pump(source: int, sink: int, chunks: list[bytes]) -> None:
    teeing = True
    while True:
        try:
            data = os.read(source, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
        while teeing and data:
            try:
                written = os.write(sink, data)
                data = data[written:]
            except OSError:
                teeing = False  # our own output went away; keep capturing for the report
    os.close(source)


def run(argv: list[str], env: dict, executable: str, capture: bool, stdin_devnull: bool = False) -> Outcome:
    child_pid: list[int] = []
    pending: list[int] = []

    def forward(number, _frame):
        if child_pid:
            try:
                os.kill(child_pid[0], number)
            except ProcessLookupError:
                pass
        else:
            pending.append(number)

    previous = {number: signal.signal(number, forward) for number in FORWARDED}
    terminal = _foreground_terminal()
    pipe = subprocess.PIPE if capture else None
    try:
        child = subprocess.Popen(
            argv, executable=executable, env=env, stdout=pipe, stderr=pipe,
            stdin=subprocess.DEVNULL if stdin_devnull else None,
            preexec_fn=_child_setup(terminal), close_fds=True)
        child_pid.append(child.pid)
        for number in pending:
            os.kill(child.pid, number)
        stdout_chunks: list[bytes] = []
        stderr_chunks: list[bytes] = []
        pumps = []
        if capture:
            for stream, sink, chunks in ((child.stdout, 1, stdout_chunks), (child.stderr, 2, stderr_chunks)):
                fd = os.dup(stream.fileno())
                stream.close()
                thread = threading.Thread(target=_pump, args=(fd, sink, chunks), daemon=True)
                thread.start()
                pumps.append(thread)
        status = _wait_for(child.pid)
        child.returncode = 0  # reaped here, not by Popen
        for thread in pumps:
            thread.join(PUMP_GRACE_SECONDS)
        if terminal is not None:
            _take_terminal_back(terminal)
        code, number = exit_code_of(status)
        return Outcome(code, number, b"".join(stdout_chunks), b"".join(stderr_chunks))
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _wait_for(pid: int) -> int:
    as_init = os.getpid() == 1
    while True:
        # As PID 1 every orphan in the container is ours to reap; wait for any child.
        reaped, status = os.waitpid(-1 if as_init else pid, 0)
        if reaped == pid:
            break
    if as_init:
        reap_zombies()
    return status


def reap_zombies() -> None:
    while True:
        try:
            reaped, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if reaped == 0:
            return


def _take_terminal_back(terminal: int) -> None:
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(terminal, os.getpgrp())
    except OSError:
        pass
    finally:
        signal.signal(signal.SIGTTOU, previous)
