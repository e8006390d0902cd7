"""What agent-run prints about things an agent chose (ref names, paths, messages): never raw bytes
that a terminal would act on; colour only on a terminal and without NO_COLOR."""
from __future__ import annotations

import os
import sys

RED, GREEN, BOLD, RESET = "\x1b[31m", "\x1b[32m", "\x1b[1m", "\x1b[0m"


def shown(text: str) -> str:
    """text with every control or non-printable character written as an escape (\\x1b, \\u202e)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def use_colour(stream=None) -> bool:
    stream = stream or sys.stdout
    return not os.environ.get("NO_COLOR") and hasattr(stream, "isatty") and stream.isatty()


def red(text: str, colour: bool) -> str:
    return f"{RED}{BOLD}{text}{RESET}" if colour else text


def green(text: str, colour: bool) -> str:
    return f"{GREEN}{BOLD}{text}{RESET}" if colour else text


def bold(text: str, colour: bool) -> str:
    return f"{BOLD}{text}{RESET}" if colour else text
