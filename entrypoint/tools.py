"""The command line each CLI runs with: its bypass exactly once, and in ci its machine output.

Pure functions over argument lists. A permission choice the user made on the command line is
respected (nothing conflicting is added); otherwise the tool's bypass is added once.
"""

from __future__ import annotations

TOOLS = ("claude", "codex", "gemini")


class UsageError(Exception):
    pass


# Subcommands that manage the CLI rather than run an agent: passed through untouched (a bypass
# flag or an inserted `exec` would break them).
MANAGEMENT = {
    "claude": frozenset({"mcp", "doctor", "update", "install", "config", "setup-token", "migrate-installer",
                         "plugin", "auth"}),
    "codex": frozenset({"login", "logout", "mcp", "mcp-server", "app-server", "completion", "apply", "a",
                        "help", "features", "execpolicy", "debug", "cloud", "sandbox"}),
    "gemini": frozenset({"mcp", "extensions", "extension"}),
}
VERSION_OR_HELP = frozenset({"--version", "-v", "-V", "--help", "-h"})


def is_management(tool: str, args: list[str]) -> bool:
    if args and all(arg in VERSION_OR_HELP for arg in args):
        return True
    # Codex allows global options before its subcommand; Claude and Gemini take it first.
    first = _codex_first_positional(args) if tool == "codex" else (args[0] if args else None)
    return first in MANAGEMENT.get(tool, ())


def _codex_first_positional(args: list[str]) -> str | None:
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            return None
        if arg in CODEX_VALUE_OPTIONS:
            index += 2
            continue
        if not arg.startswith("-"):
            return arg
        index += 1
    return None


def _has_option(args: list[str], *names: str) -> bool:
    for arg in args:
        if arg == "--":
            return False
        if arg in names or any(arg.startswith(name + "=") for name in names if name.startswith("--")):
            return True
    return False


def _without_option(args: list[str], names: tuple[str, ...], takes_value: bool) -> list[str]:
    out, skip = [], False
    for index, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg == "--":
            out.extend(args[index:])
            break
        if arg in names:
            skip = takes_value
            continue
        if takes_value and any(arg.startswith(name + "=") for name in names if name.startswith("--")):
            continue
        out.append(arg)
    return out


# ---- Claude -----------------------------------------------------------------------------------

def claude_argv(args: list[str], ci: bool) -> list[str]:
    out, prefix = list(args), []
    if not _has_option(out, "--dangerously-skip-permissions", "--permission-mode"):
        prefix.append("--dangerously-skip-permissions")
    if ci and _has_option(out, "-p", "--print"):
        out = _without_option(out, ("--output-format",), takes_value=True)
        prefix += ["--output-format", "stream-json"]
        if not _has_option(out, "--verbose"):
            prefix.append("--verbose")
    return prefix + out


# ---- Codex ------------------------------------------------------------------------------------

CODEX_EXEC = ("exec", "e")
CODEX_BYPASS = ("--dangerously-bypass-approvals-and-sandbox", "--yolo")
# Global options that take a value (so their value is not mistaken for the subcommand).
CODEX_VALUE_OPTIONS = ("-c", "--config", "-m", "--model", "-p", "--profile", "-s", "--sandbox",
                       "-a", "--ask-for-approval", "-C", "--cd", "-i", "--image", "--add-dir",
                       "--local-provider", "--enable", "--disable", "--color", "--output-last-message",
                       "-o", "--output-schema")


def _codex_split(args: list[str]) -> tuple[list[str], list[str] | None]:
    """Global options before the subcommand, and the rest starting at `exec` (None: no exec)."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            return args, None
        if arg in CODEX_VALUE_OPTIONS:
            index += 2
            continue
        if arg.startswith("-"):
            index += 1
            continue
        if arg in CODEX_EXEC:
            return args[:index], args[index:]
        return args, None
    return args, None


def _codex_config_keys(args: list[str]) -> set[str]:
    keys = set()
    for index, arg in enumerate(args):
        value = None
        if arg in ("-c", "--config") and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith("--config="):
            value = arg[len("--config="):]
        if value:
            keys.add(value.split("=", 1)[0].strip())
    return keys


def codex_argv(args: list[str], ci: bool) -> list[str]:
    before, rest = _codex_split(list(args))
    if rest is None:
        # No subcommand given: the whole command line is exec's (options and prompt).
        before, rest = [], ["exec"] + list(args)
    every = before + rest
    added = []
    if not _has_option(every, *CODEX_BYPASS):
        keys = _codex_config_keys(every)
        if "approval_policy" not in keys and not _has_option(every, "-a", "--ask-for-approval"):
            added += ["-c", 'approval_policy="never"']
        if "sandbox_mode" not in keys and not _has_option(every, "-s", "--sandbox", "--full-auto"):
            added += ["-c", 'sandbox_mode="danger-full-access"']
    if ci:
        if not _has_option(every, "--json", "--experimental-json"):
            added.append("--json")
        if not _has_option(every, "-p", "--profile"):
            added += ["--profile", "ci"]
    return before + rest[:1] + added + rest[1:]


def codex_reads_stdin(argv: list[str]) -> bool:
    return "-" in argv


# ---- Gemini -----------------------------------------------------------------------------------

GEMINI_YOLO = ("-y", "--yolo")


def gemini_argv(args: list[str], ci: bool) -> list[str]:
    out = list(args)
    wants_yolo = _has_option(out, *GEMINI_YOLO)
    out = _without_option(out, GEMINI_YOLO, takes_value=False)
    out = [a for a in out if not a.startswith("--yolo=")]
    mode = _option_value(out, "--approval-mode")
    if mode is None:
        out[0:0] = ["--approval-mode", "yolo"]
    elif wants_yolo and mode != "yolo":
        raise UsageError(f"gemini: --yolo and --approval-mode {mode} contradict each other; pass one")
    if ci:
        out = _without_option(out, ("-o", "--output-format"), takes_value=True)
        out[0:0] = ["-o", "stream-json"]
    return out


def _option_value(args: list[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == "--":
            return None
        if arg == name:
            return args[index + 1] if index + 1 < len(args) else ""
        if arg.startswith(name + "="):
            return arg[len(name) + 1:]
    return None


def build_argv(tool: str, args: list[str], ci: bool) -> list[str]:
    if tool in TOOLS and is_management(tool, args):
        return list(args)
    if tool == "claude":
        return claude_argv(args, ci)
    if tool == "codex":
        return codex_argv(args, ci)
    if tool == "gemini":
        return gemini_argv(args, ci)
    raise UsageError(f"unknown tool {tool!r}; choose one of: {', '.join(TOOLS)}")
