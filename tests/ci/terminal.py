"""Run a command on a pseudo-terminal, as a user at a terminal would, with a hard deadline.

CI has no terminal, so a child that stops itself on terminal access (a background process group
touching the tty) would hang only for users; these tests give the command a real controlling
terminal and fail, with what it printed, if it has not finished by the deadline.
"""
from __future__ import annotations

import fcntl
import os
import struct
import select
import signal
import subprocess
import termios
import time
from dataclasses import dataclass


@dataclass
class TerminalRun:
    returncode: int | None      # None: killed at the deadline
    output: str


def _take_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def run_on_terminal(argv: list[str], *, cwd, deadline: float, env: dict | None = None,
                    typed: bytes = b"\x04") -> TerminalRun:
    """typed: what the user types at the start (default: end-of-file, as `script` sends when its own
    input is closed). Input waiting on the terminal is what makes a program in a background process
    group read it and stop (SIGTTIN), so a test without it would miss that hang."""
    primary, secondary = os.openpty()
    # A terminal with a size, as a user's has: some programs leave a zero-sized one alone.
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=secondary, stdout=secondary, stderr=secondary,
                               start_new_session=True, preexec_fn=_take_terminal, close_fds=True)
    os.close(secondary)
    if typed:
        os.write(primary, typed)
    chunks: list[bytes] = []
    end = time.monotonic() + deadline
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([primary], [], [], 0.2)
            if ready:
                try:
                    data = os.read(primary, 65536)
                except OSError:          # EIO: every holder of the terminal has closed it
                    data = b""
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        else:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return TerminalRun(None, b"".join(chunks).decode(errors="replace"))
        return TerminalRun(process.wait(timeout=max(1.0, end - time.monotonic())),
                           b"".join(chunks).decode(errors="replace"))
    finally:
        os.close(primary)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
