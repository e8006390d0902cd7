"""What agent-run prints about things an agent chose (ref names, paths, messages): never raw bytes
that a terminal would act on; colour only on a terminal and without NO_COLOR."""
from __future__ import annotations

import os
import sys
import unicodedata

RED, GREEN, BOLD, RESET = "\x1b[31m", "\x1b[32m", "\x1b[1m", "\x1b[0m"


_ESCAPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def shown(text: str, limit: int | None = None) -> str:
    """text as a terminal shows it literally: control characters (C0, DEL, C1), format characters
    (bidirectional overrides, zero-width) and the like become \\x.., \\u.... escapes and a backslash
    becomes two, so nothing printed can be mistaken for an escape; cut at `limit` characters."""
    cut = limit is not None and len(text) > limit
    out = []
    for char in text[:limit] if cut else text:
        if char == "\\":
            out.append("\\\\")
        elif " " <= char <= "~":
            out.append(char)
        elif unicodedata.category(char) in _ESCAPED_CATEGORIES or not char.isprintable():
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out) + ("..." if cut else "")


def use_colour(stream=None) -> bool:
    stream = stream or sys.stdout
    return not os.environ.get("NO_COLOR") and hasattr(stream, "isatty") and stream.isatty()


def red(text: str, colour: bool) -> str:
    return f"{RED}{BOLD}{text}{RESET}" if colour else text


def green(text: str, colour: bool) -> str:
    return f"{GREEN}{BOLD}{text}{RESET}" if colour else text


def bold(text: str, colour: bool) -> str:
    return f"{BOLD}{text}{RESET}" if colour else text
