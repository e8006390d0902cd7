"""agent-guard: classify commands, the CLIs' pre-tool hooks, the exec-time shim, explain.

Standard library only: the hook runs on every tool call and the shim on every guarded exec
(docs/design.md, "Where speed matters"). Every failure refuses (never fails open).
"""

from __future__ import annotations

import json
import os
import sys

from guard.runtime import DEFAULT_PROFILE, RuntimeProfileError, compiled, find, load_runtime, read
from image.layout import SHIMS_DIR

SHIM_REFUSED = 126
HOOK_BLOCK = 2

COMMAND_USAGE = {
    "classify": """  agent-guard classify --profile NAME [--profile-file PATH] [-- COMMAND]
        commands one per line on stdin (or the one after --) -> one JSON object per line
""",
    "hook": """  agent-guard hook claude|codex|gemini [--profile NAME | --profile-file PATH]
        Claude Code / Codex PreToolUse, Gemini CLI BeforeTool hook: exit 2 with the reason on a deny
        (profile: $AGENT_PROFILE, default autonomous)
""",
    "shim": """  agent-guard shim [--real PATH] [--profile-dir DIR] PROGRAM -- ARGV...
        exec-time check of PROGRAM's argv: exit 126 on a deny, else exec the real PROGRAM
""",
    "explain": """  agent-guard explain [--profile NAME | --profile-file PATH] -- COMMAND
        what each CLI's own rules, the hook and the shims would decide, and why
""",
}
USAGE = "usage:\n" + "".join(COMMAND_USAGE.values()) + "  agent-guard --version\n"
HELP_OPTIONS = ("-h", "--help")


class GuardError(Exception):
    """The command line asks for something the guard cannot do; the message says what and the fix."""


# ------------------------------------------------------------------ argument parsing

def _split_options(args: list[str], with_value: set, flags: set = frozenset()) -> tuple[dict, list[str]]:
    """Options before `--` (or before the first non-option), and the rest after it."""
    options: dict = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return options, args[i + 1:]
        name, eq, attached = arg.partition("=")
        if name in with_value:
            if eq:
                options[name] = attached
                i += 1
            elif i + 1 < len(args):
                options[name] = args[i + 1]
                i += 2
            else:
                raise GuardError(f"{name} needs a value")
        elif arg in flags:
            options[arg] = True
            i += 1
        elif arg.startswith("-"):
            raise GuardError(f"unknown option {arg}")
        else:
            return options, args[i:]
    return options, []


# ------------------------------------------------------------------ classify

def cmd_classify(args: list[str]) -> int:
    options, rest = _split_options(args, {"--profile", "--profile-file"})
    if "--profile" not in options and "--profile-file" not in options:
        raise GuardError("classify needs --profile NAME (or --profile-file PATH)")
    runtime = load_runtime(options.get("--profile"), options.get("--profile-file"))
    policy = compiled(runtime, options.get("--profile-file") or f"profile {options.get('--profile')}")
    from guard.classify import classify

    commands = [" ".join(rest)] if rest else [line.rstrip("\n") for line in sys.stdin if line.strip()]
    out = sys.stdout
    for command in commands:
        out.write(json.dumps(classify(command, policy).as_json(command)) + "\n")
    out.flush()
    return 0


# ------------------------------------------------------------------ the Claude hook

# which tool runs shell commands, per CLI; Gemini's BeforeTool and Codex's PreToolUse hooks take
# the same JSON shape and block on exit 2 with a reason (docs/hooks.md)
SHELL_TOOLS = {"claude": ("Bash",), "codex": ("Bash",), "gemini": ("run_shell_command",)}


def cmd_hook(args: list[str]) -> int:
    if not args or args[0] not in SHELL_TOOLS:
        raise GuardError("hook: say which CLI calls it: agent-guard hook claude | codex | gemini")
    options, _ = _split_options(args[1:], {"--profile", "--profile-file"})
    try:
        event = json.loads(sys.stdin.read() or "null")
    except json.JSONDecodeError as exc:
        return _block(f"the hook input is not JSON ({exc}); refusing rather than guessing")
    if not isinstance(event, dict):
        return _block("the hook input is not a JSON object; refusing rather than guessing")
    if event.get("tool_name") not in SHELL_TOOLS[args[0]]:
        return 0
    tool_input = event.get("tool_input")
    command = tool_input.get("command") if isinstance(tool_input, dict) else None
    if not isinstance(command, str):
        return _block("the shell tool call has no command string; refusing rather than guessing")
    name = options.get("--profile") or os.environ.get("AGENT_PROFILE") or DEFAULT_PROFILE
    runtime = load_runtime(name, options.get("--profile-file"))
    from guard.classify import Place, classify, here

    cwd = event.get("cwd")
    place = Place(cwd, os.environ.get("HOME", ""), os.environ) if isinstance(cwd, str) and cwd.startswith("/") else here()
    decision = classify(command, compiled(runtime, f"profile {name}"), place=place)
    if decision.decision == "deny":
        return _block(f"denied by rule {decision.rule}: {decision.reason}" + _shown(decision.argv))
    if decision.decision == "ask" and runtime.get("posture") == "interactive":
        _ask(args[0], f"agent-guard asks: {decision.rule or 'no rule allows it'}: {decision.reason}" + _shown(decision.argv))
    return 0


def _ask(cli: str, reason: str) -> None:
    """Make Claude ask the person, whatever its own allow rules say. Codex's hooks can only
    refuse, and Gemini's "ask" ends a headless session outright: their own rules ask there (the
    profile renders no Codex allow rules, and Gemini's allow rules leave those options out)."""
    if cli == "claude":
        answer = {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "ask",
                                         "permissionDecisionReason": reason}}
        sys.stdout.write(json.dumps(answer) + "\n")


def _shown(argv) -> str:
    return f" [{' '.join(argv)}]" if argv else ""


def _block(message: str) -> int:
    sys.stderr.write(f"agent-guard: {message}\n")
    return HOOK_BLOCK


# ------------------------------------------------------------------ the exec-time shim

def _find_real(program: str, shim_path: str | None) -> str:
    own = os.path.realpath(shim_path) if shim_path else None
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory:
            continue
        candidate = os.path.join(directory, program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            if own and os.path.realpath(candidate) == own:
                continue
            if os.path.realpath(directory) == os.path.realpath(SHIMS_DIR):
                continue
            return candidate
    raise GuardError(f"no real {program} on PATH")


def cmd_shim(args: list[str]) -> int:
    options, rest = _split_options(args, {"--real", "--profile-dir", "--profile", "--profile-file"})
    if len(rest) < 1:
        raise GuardError("shim needs PROGRAM -- ARGV...")
    program = rest[0]
    argv = rest[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    name = options.get("--profile") or os.environ.get("AGENT_PROFILE") or DEFAULT_PROFILE
    runtime = load_runtime(name, options.get("--profile-file"), options.get("--profile-dir"))
    from guard.classify import classify

    decision = classify([program] + argv, compiled(runtime, f"profile {name}"))
    if decision.decision == "deny":
        sys.stderr.write(f"agent-guard: refused {decision.rule}: {decision.reason}\n")
        return SHIM_REFUSED
    real = options.get("--real") or _find_real(program, None)
    if os.path.realpath(real) == os.path.realpath(sys.argv[0]):
        raise GuardError(f"the real {program} resolves to the guard itself")
    os.execv(real, [program] + argv)
    return 0  # not reached


# ------------------------------------------------------------------ explain

def cmd_explain(args: list[str]) -> int:
    options, rest = _split_options(args, {"--profile", "--profile-file"})
    if not rest:
        raise GuardError("explain needs -- COMMAND")
    path = options.get("--profile-file") or find(options.get("--profile"))
    runtime = read(path)
    compiled(runtime, options.get("--profile-file") or f"profile {options.get('--profile') or DEFAULT_PROFILE}")
    from guard.explain import explain
    from guard.native import gemini_deny_regexes, gemini_policy_beside

    policy_file = gemini_policy_beside(path)
    regexes = gemini_deny_regexes(policy_file) if policy_file and os.path.isfile(policy_file) else None
    states = {"user": os.path.expanduser("~/.config/agent-sandbox/install-state.json"),
              "system": "/etc/agent-sandbox/install-state.json"}
    installed = {layer: path if os.path.isfile(path) else None for layer, path in states.items()}
    sys.stdout.write(explain(" ".join(rest), runtime, regexes, policy_file or "", installed))
    return 0


# ------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in (*HELP_OPTIONS, "help"):
        sys.stdout.write(USAGE)
        return 0 if args else 2
    if args[0] == "--version":
        from guard import __version__

        sys.stdout.write(f"agent-guard {__version__}\n")
        return 0
    command, rest = args[0], args[1:]
    if command in COMMAND_USAGE and rest[:1] and rest[0] in HELP_OPTIONS:
        sys.stdout.write("usage:\n" + COMMAND_USAGE[command])
        return 0
    handlers = {"classify": cmd_classify, "hook": cmd_hook, "shim": cmd_shim, "explain": cmd_explain}
    if command not in handlers:
        sys.stderr.write(f"agent-guard: unknown command {command!r}\n{USAGE}")
        return 2
    try:
        return handlers[command](rest)
    except (GuardError, RuntimeProfileError) as exc:
        if command == "hook":
            return _block(str(exc))
        if command == "shim":
            program = next((a for a in rest if not a.startswith("-")), "?")
            sys.stderr.write(f"agent-guard: refused {program}: {exc}\n")
            return SHIM_REFUSED
        sys.stderr.write(f"agent-guard: {exc}\n")
        return 2
    except Exception as exc:  # never fail open: an unexpected error refuses the call
        if command == "hook":
            return _block(f"internal error, refusing: {type(exc).__name__}: {exc}")
        if command == "shim":
            sys.stderr.write(f"agent-guard: refused: internal error: {type(exc).__name__}: {exc}\n")
            return SHIM_REFUSED
        raise


if __name__ == "__main__":
    sys.exit(main())
