"""Exec-time shims, rendered: /usr/lib/agent-sandbox/shims/PROGRAM, first on PATH in the image.

A shim sees the argv the kernel is about to run, whatever shell text produced it (bash -c,
variables, an interactive shell fed by write_stdin). It decides in plain sh when the argv
cannot match any deny rule of its program (the fast path: no Python), and otherwise asks
`agent-guard shim`, which refuses (exit 126) or execs the real binary.

The fast path is sound only for a first positional word that no deny rule of the program
names, reached over global options the tools table knows; any other option sends the call
to Python. `fast_path_table` is what the renderer writes into the runtime JSON as
`fast_path` (which `agent-guard explain` reads); each shim is rendered from the compiled rules,
not from that table. `takes_fast_path` is the same decision in Python, for the checks.
"""

from __future__ import annotations

import re

from guard.policy import Policy, ToolOptions
from image.layout import RUNTIME_PROFILES_DIR, SHIMS_DIR

GUARD_CANDIDATES = ("/usr/local/bin/agent-guard", "/usr/bin/agent-guard")

# Everyday subcommands worth keeping out of Python; a word is used only while no deny rule names it.
# Not git config nor git remote: what they write (remote.R.push, a mirror) is judged as the push it
# makes (tools.git.config_arguments, docs/guard.md).
FAST_PATH_CANDIDATES = {
    "git": ["add", "am", "apply", "bisect", "blame", "branch", "cat-file", "check-attr", "check-ignore",
            "checkout", "cherry-pick", "clean", "clone", "commit", "count-objects", "describe",
            "diff", "diff-files", "diff-index", "diff-tree", "fetch", "for-each-ref", "format-patch", "fsck",
            "gc", "grep", "hash-object", "help", "init", "log", "ls-files", "ls-remote", "ls-tree", "merge",
            "merge-base", "mv", "name-rev", "notes", "pull", "range-diff", "rebase", "reflog", "reset", "restore", "rev-list", "rev-parse", "revert", "rm", "shortlog", "show", "show-ref",
            "stash", "status", "submodule", "switch", "symbolic-ref", "tag", "update-index", "var", "version",
            "whatchanged", "worktree"],
    "gh": ["browse", "completion", "help", "issue", "label", "pr", "run", "search", "status", "version",
           "workflow"],
    "npm": ["audit", "bin", "ci", "config", "doctor", "explain", "help", "i", "info", "init", "install",
            "list", "ls", "outdated", "pack", "prefix", "rebuild", "root", "run", "run-script", "start", "t",
            "test", "version", "view", "why"],
    "cargo": ["add", "b", "bench", "build", "c", "check", "clean", "clippy", "d", "doc", "fetch", "fmt",
              "generate-lockfile", "help", "init", "locate-project", "metadata", "new", "package", "r",
              "remove", "rm", "run", "search", "t", "test", "tree", "update", "vendor", "verify-project",
              "version"],
}
_SAFE_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_SAFE_OPTION = re.compile(r"--?[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_SAFE_PROGRAM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\Z")


def fast_path_words(policy: Policy, program: str) -> list[str]:
    """Subcommand words that let `program`'s shim exec the real binary without Python."""
    named: set = set()
    for rule in policy.deny_by_program.get(program, ()):
        if not rule.words:
            return []  # the program alone can be denied: every call goes through the classifier
        named.update(rule.words[0])
    return sorted(w for w in FAST_PATH_CANDIDATES.get(program, []) if w not in named and _SAFE_WORD.match(w))


def fast_path_table(policy: Policy) -> dict:
    """The runtime JSON's `fast_path`: {program: [subcommand words that skip Python]}, for every
    program a rule names or the profile guards."""
    return {program: fast_path_words(policy, program) for program in sorted(set(policy.guarded) | set(policy.by_program))}


def takes_fast_path(argv: tuple[str, ...], options: ToolOptions, words: list[str]) -> bool:
    """What a rendered shim decides without Python: global options skipped, then the first word."""
    with_value = set(options.options_with_value)
    flags = set(options.flags)
    skip = False
    for arg in argv[1:]:
        if skip:
            skip = False
            continue
        if arg in with_value:
            skip = True
        elif arg.startswith("--") and arg.split("=", 1)[0] in with_value:
            continue
        elif any(arg.startswith(o) and len(arg) > len(o) for o in with_value if not o.startswith("--")):
            continue
        elif arg in flags:
            continue
        elif arg.startswith("-"):
            return False
        else:
            return arg in words
    return False


def _case_list(items) -> str:
    return "|".join(items)


def render_shim(program: str, policy: Policy, *, shim_dir: str = SHIMS_DIR, profile_dir: str = RUNTIME_PROFILES_DIR,
                guard_command: str | None = None) -> str:
    """The POSIX sh shim for `program` (install it as SHIMS_DIR/program, mode 0555)."""
    if not _SAFE_PROGRAM.match(program):
        raise ValueError(f"cannot render a shim for {program!r}: not a plain program name")
    for path in (shim_dir, profile_dir) + ((guard_command,) if guard_command else ()):
        if not path.startswith("/") or any(c in path for c in "'\n"):
            raise ValueError(f"shim paths must be absolute and free of quotes: {path!r}")
    words = fast_path_words(policy, program)
    table = policy.options(program)
    with_value = [o for o in table.options_with_value if _SAFE_OPTION.match(o)]
    flags = [o for o in table.flags if _SAFE_OPTION.match(o)]
    attached = [f"{o}=*" for o in with_value if o.startswith("--")] + \
               [f"{o}?*" for o in with_value if not o.startswith("--")]
    if guard_command:
        find_guard = f"guard='{guard_command}'"
    else:
        find_guard = "guard=\n" + "".join(
            f"[ -x {c} ] && guard={c}\n" for c in reversed(GUARD_CANDIDATES)
        ) + '[ -n "$guard" ] || guard=$(command -v agent-guard) || guard='
    lines = [
        "#!/bin/sh",
        f"# agent-sandbox exec-time guard for {program}; rendered by render-profiles from the profile's",
        "# deny rules (docs/guard.md). Refuses with exit 126, or runs the real program.",
        f"shim_dir='{shim_dir}'",
        "set -f",
        "real=",
        "saved_ifs=$IFS",
        "IFS=:",
        "for d in $PATH; do",
        '  [ -n "$d" ] || continue',
        '  [ "$d" -ef "$shim_dir" ] && continue',
        f'  [ "$d/{program}" -ef "$shim_dir/{program}" ] && continue  # a link back to this shim',
        f'  if [ -f "$d/{program}" ] && [ -x "$d/{program}" ]; then real=$d/{program}; break; fi',
        "done",
        "IFS=$saved_ifs",
        'if [ -z "$real" ]; then',
        f'  echo "agent-guard: {program}: no {program} on PATH besides the shim in $shim_dir" >&2',
        "  exit 127",
        "fi",
    ]
    if words:
        option_cases = []
        if with_value:
            option_cases.append(f"    {_case_list(with_value)}) skip=1 ;;")
        if attached:
            option_cases.append(f"    {_case_list(attached)}) ;;")
        if flags:
            option_cases.append(f"    {_case_list(flags)}) ;;")
        lines += [
            "# fast path: the first positional word is one no deny rule names",
            "skip= word= checked=",
            "for a do",
            '  if [ -n "$skip" ]; then skip=; continue; fi',
            '  case $a in',
            *option_cases,
            "    -*) checked=1; break ;;",
            "    *) word=$a; break ;;",
            "  esac",
            "done",
            'if [ -z "$checked" ]; then',
            "  case $word in",
            f'    {_case_list(words)}) exec "$real" "$@" ;;',
            "  esac",
            "fi",
        ]
    lines += [
        find_guard,
        'if [ -z "$guard" ]; then',
        f'  echo "agent-guard: refused {program}: agent-guard is not installed, so the call cannot be checked" >&2',
        "  exit 126",
        "fi",
        f"exec \"$guard\" shim --real \"$real\" --profile-dir '{profile_dir}' {program} -- \"$@\"",
        "",
    ]
    return "\n".join(lines)
