"""Drive a real CLI in its own terminal UI, through a pseudo-terminal, inside a Sandbox.

The CLI gets a pty as its controlling terminal (120x40, TERM=xterm-256color); what it draws is
fed to pyte, a terminal emulator, so the test reads the screen a person would see. When the
screen shows the CLI's approval prompt, the driver records the question and its options (which
one is selected before anyone presses a key) and answers "yes", so the scripted session goes on
to the next step; the fake model server knows which step is being asked (the number of tool
results it has received).

Each CLI's prompt, as drawn by the pinned versions:

    Claude Code   Do you want to proceed?              ❯ 1. Yes / 2. No
    Codex CLI     Would you like to run the following command?   › 1. Yes, proceed (y) / ...
    Gemini CLI    Allow execution of [Shell]?           ● 1. Allow once / 2. ... / 3. No, ...
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pyte

from .sandbox import AGENT_GID, AGENT_UID, Sandbox

COLUMNS, LINES = 120, 40
REASK_AFTER = 2.0


class _Screen(pyte.Screen):
    """pyte 0.8.2 stops on a private SGR sequence (`CSI > 4;2 m`, xterm's modifyOtherKeys), which
    Codex sends; it changes nothing on the screen, so it is ignored."""

    def select_graphic_rendition(self, *attrs, private=False):
        if not private:
            super().select_graphic_rendition(*attrs)


@dataclass(frozen=True)
class PromptStyle:
    anchor: str  # text that shows the approval prompt is on the screen
    option: re.Pattern  # an option line: group 1 the selection marker (or blank), 2 the number, 3 the label
    marker: str
    yes: bytes  # the key that answers yes


PROMPTS = {
    "claude": PromptStyle("Do you want to proceed?", re.compile(r"^\s*(❯|\s)\s*(\d)\.\s+(.+?)\s*$"), "❯", b"1"),
    "codex": PromptStyle("Would you like to run the following command?",
                         re.compile(r"^\s*(›|\s)\s*(\d)\.\s+(.+?)\s*$"), "›", b"y"),
    "gemini": PromptStyle("Allow execution of", re.compile(r"^[\s│]*(●|\s)\s*(\d)\.\s+(.+?)[\s│]*$"), "●", b"1"),
}


@dataclass(frozen=True)
class Prompt:
    step: int  # the scripted step being asked about
    options: tuple[str, ...]
    selected: str  # the option selected before any key was pressed ("" if none)
    screen: str


@dataclass
class TuiRun:
    prompts: dict[int, list[Prompt]] = field(default_factory=dict)  # step -> prompts, in order
    screen: str = ""
    finished: bool = False  # every step ran through and the final text showed
    timed_out: bool = False
    duration: float = 0.0


def read_prompt(cli: str, text: str, step: int) -> Prompt | None:
    style = PROMPTS[cli]
    lines = text.splitlines()
    anchors = [i for i, line in enumerate(lines) if style.anchor in line]
    if not anchors:
        return None
    options, selected = [], ""
    for line in lines[anchors[-1] + 1:]:
        match = style.option.match(line)
        if match:
            options.append(match.group(3))
            if match.group(1) == style.marker:
                selected = match.group(3)
        elif options and line.strip(" │"):
            break
    return Prompt(step, tuple(options), selected, text) if options else None


def run_tui(cli: str, sandbox: Sandbox, argv: Sequence[str], env: Mapping[str, str], server, steps: int,
            final_text: str, timeout: float = 300.0, settle: float = 0.25) -> TuiRun:
    """Run `argv` (the CLI and its arguments) in the sandbox on a pty until every scripted step has
    had its tool result and `final_text` is on the screen, answering each approval prompt with yes."""
    screen = _Screen(COLUMNS, LINES)
    stream = pyte.ByteStream(screen)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    os.fchown(slave, AGENT_UID, AGENT_GID)
    environment = {**env, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(LINES)}
    environment.pop("NO_COLOR", None)

    def controlling_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    started = time.monotonic()
    process = subprocess.Popen(sandbox.namespace_command(argv), stdin=slave, stdout=slave, stderr=slave,
                               env=environment, cwd=str(sandbox.base), preexec_fn=controlling_terminal)
    os.close(slave)
    run = TuiRun()
    answered: dict[int, float] = {}  # step -> when it was last answered
    last_data = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if now - started > timeout:
                run.timed_out = True
                break
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 1 << 16)
                except OSError:
                    break  # the CLI exited and closed the terminal
                if not data:
                    break
                stream.feed(data)
                last_data = time.monotonic()
                continue
            if time.monotonic() - last_data < settle:
                continue
            text = "\n".join(line.rstrip() for line in screen.display)
            step = len(server.tool_results)
            if step >= steps and final_text in text:
                run.finished = True
                break
            # a second prompt for the same step (Codex asks again to run outside its sandbox) is
            # answered once the first answer has had time to take the first one away
            if step not in answered or time.monotonic() - answered[step] > REASK_AFTER:
                prompt = read_prompt(cli, text, step)
                if prompt is not None:
                    run.prompts.setdefault(step, []).append(prompt)
                    answered[step] = time.monotonic()
                    os.write(master, PROMPTS[cli].yes)
    finally:
        run.screen = "\n".join(line.rstrip() for line in screen.display)
        run.duration = time.monotonic() - started
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()
        os.close(master)
    return run
