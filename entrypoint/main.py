"""agent-entrypoint TOOL [ARGS...]: the image's entrypoint.

guards -> boundary preflight -> config integrity -> seed $HOME -> checkpoint -> run the CLI with
its bypass. Standard library only; it runs at every container start.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from entrypoint import agent_files, integrity, preflight, tools
from image.layout import HOME, SHIMS_DIR

EXIT_USAGE = 64  # guards, unknown tool, bad AGENT_PROFILE value
EXIT_CANT_CHECKPOINT = 73
EXIT_BOUNDARY = 77  # boundary preflight failed
EXIT_CONFIG = 78  # baked configuration missing, changed, writable or unparsable
EXIT_CANNOT_RUN = 126
EXIT_NOT_INSTALLED = 127
EXIT_REPORT = 74  # ci: the run report could not be written

DEFAULT_PROFILE = "autonomous"
PROFILE_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
PROG = "agent-entrypoint"


@dataclass(frozen=True)
class Prepared:
    """Everything checked and ready: what to run, and with what."""

    tool: str
    profile: str
    runtime: dict
    executable: str
    argv: list[str]
    env: dict
    workspace: str


class Refusal(Exception):
    def __init__(self, code: int, lines: list[str]):
        super().__init__("\n".join(lines))
        self.code = code
        self.lines = lines


def guard_problem(environ: dict, uid: int, euid: int) -> str | None:
    value = environ.get("AGENT_SANDBOX")
    if value != "1":
        shown = "unset" if value is None else repr(value)
        return (f"refused: AGENT_SANDBOX must be exactly 1 (it is {shown}); this entrypoint runs "
                "the CLIs without permission prompts and belongs only in the agent-sandbox image, "
                "which sets it")
    if uid == 0 or euid == 0:
        return (f"refused: running as root (uid {uid}, euid {euid}); run the container as the agent "
                "user (docker run --user 1000:1000 ...)")
    return None


def find_executable(name: str, path_value: str) -> str | None:
    for folder in path_value.split(":"):
        if not folder:
            continue
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def run_environment(environ: dict, runtime: dict, verified: integrity.Verified) -> dict:
    environment = runtime.get("environment") or {}
    launcher_only = set(environment.get("launcher_only") or ())
    env = {k: v for k, v in environ.items() if k not in launcher_only}
    for key, value in (environment.get("quiet") or {}).items():
        env[key] = str(value)
    # Put the verified exec-time guard shims first, once.
    if any(path.startswith(SHIMS_DIR + "/") for path in verified.files):
        rest = [d for d in env.get("PATH", "").split(":") if d and d != SHIMS_DIR]
        env["PATH"] = ":".join([SHIMS_DIR] + rest)
    return env


def _git_folder(workspace: str) -> bool:
    folder = workspace
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return True
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent


def _checkpoint(workspace: str, tool: str) -> None:
    if not _git_folder(workspace):
        return
    from entrypoint.checkpoint.create import CheckpointError, create

    try:
        name = create(workspace, tool)
    except CheckpointError as error:
        raise Refusal(EXIT_CANT_CHECKPOINT, [f"refused: cannot checkpoint the workspace {workspace}: {error}; "
                                             "fix the repository (git status must work) and start again"])
    print(f"{PROG}: checkpoint {name} (restore with: agent-checkpoint --checkpoint {name})", file=sys.stderr)


def prepare(argv: list[str], environ: dict, roots: preflight.Roots, image_root: str) -> Prepared:
    problem = guard_problem(environ, os.getuid(), os.geteuid())
    if problem:
        raise Refusal(EXIT_USAGE, [problem])
    if not argv:
        raise Refusal(EXIT_USAGE, [f"usage: {PROG} TOOL [ARGS...]; TOOL is one of: {', '.join(tools.TOOLS)}"])
    tool, args = argv[0], argv[1:]
    if tool not in tools.TOOLS:
        raise Refusal(EXIT_USAGE, [f"unknown tool {tool!r}; choose one of: {', '.join(tools.TOOLS)}"])
    profile = environ.get("AGENT_PROFILE") or DEFAULT_PROFILE
    if profile[0] == "-" or not set(profile) <= PROFILE_CHARACTERS:
        raise Refusal(EXIT_USAGE, [f"AGENT_PROFILE={profile!r} is not a profile name; use autonomous or ci"])
    workspace = os.path.abspath(environ.get("AGENT_WORKSPACE") or os.getcwd())

    findings = preflight.run(roots, workspace, environ)
    for warning in dict.fromkeys(findings.warnings):
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if findings.failures:
        raise Refusal(EXIT_BOUNDARY, [f"refused: boundary check failed: {failure}" for failure in findings.failures])

    try:
        verified = integrity.verify(profile, image_root)
        runtime = verified.runtime_profile()
    except integrity.IntegrityError as error:
        raise Refusal(EXIT_CONFIG, [f"refused: baked configuration: {problem}" for problem in error.problems])

    env = run_environment(environ, runtime, verified)
    problems = agent_files.problems(tool, env, env.get("HOME") or HOME, workspace, runtime)
    if problems:
        raise Refusal(EXIT_CONFIG, [f"refused: {problem}" for problem in dict.fromkeys(problems)])
    executable = find_executable(tool, env.get("PATH", ""))
    if executable is None:
        raise Refusal(EXIT_NOT_INSTALLED, [f"{tool} is not installed (not found on PATH); use an image that has it"])
    try:
        full_argv = [tool] + tools.build_argv(tool, args, ci=runtime.get("output") == "machine")
    except tools.UsageError as error:
        raise Refusal(EXIT_USAGE, [str(error)])

    home = env.get("HOME") or HOME
    try:
        integrity.seed_home(verified, home)
    except OSError as error:
        raise Refusal(EXIT_CONFIG, [f"refused: cannot seed {home}: {error}; make $HOME writable by the agent"])
    _checkpoint(workspace, tool)
    return Prepared(tool, profile, runtime, executable, full_argv, env, workspace)


def report_path(env: dict, workspace: str) -> str:
    configured = env.get("AGENT_REPORT")
    if configured:
        return configured if os.path.isabs(configured) else os.path.join(workspace, configured)
    return os.path.join(env.get("HOME") or HOME, "agent-report.json")


def run_ci(run: Prepared) -> int:
    import time

    from entrypoint import report, supervise

    started_wall = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    started = time.monotonic()
    stdin_devnull = run.tool == "codex" and not tools.codex_reads_stdin(run.argv)
    outcome = supervise.run(run.argv, run.env, run.executable, capture=True, stdin_devnull=stdin_devnull)
    finished_wall = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    parsed = report.PARSERS[run.tool](outcome.stdout.decode("utf-8", "replace"), outcome.stderr.decode("utf-8", "replace"))
    report.attribute(parsed.denials, run.runtime)
    code = report.exit_code_for(outcome.exit_code, parsed)
    document = report.build(run.tool, run.profile, run.argv, parsed, outcome.exit_code, code, outcome.signal,
                            started_wall, finished_wall, time.monotonic() - started)
    path = report_path(run.env, run.workspace)
    try:
        report.write_atomically(path, document)
    except OSError as error:
        print(f"{PROG}: cannot write the run report {path}: {error}; set AGENT_REPORT to a writable path",
              file=sys.stderr)
        return code if code else EXIT_REPORT
    summary = f"{len(document['tool_calls'])} tool calls, {len(document['denials'])} denials"
    if parsed.denials:
        rules = ", ".join(sorted({d.rule or "unknown rule" for d in parsed.denials}))
        summary += f" ({rules}); exiting {code}"
    print(f"{PROG}: run report {path}: {summary}", file=sys.stderr)
    return code


HELP = f"""usage: {PROG} TOOL [ARGS...]     TOOL: {' | '.join(tools.TOOLS)}
       {PROG} --help | --version

The agent image's entrypoint: `docker run agent-image claude -p "..."` runs
`{PROG} claude -p "..."`. It refuses unless AGENT_SANDBOX=1 and neither uid is 0 (64),
checks the container boundary (77) and every baked file against the manifest (78), checkpoints
the workspace (restore with agent-checkpoint), then runs the CLI with its permission bypass.
AGENT_PROFILE: autonomous (default) or ci (JSON stream, one run report, exit 3 on a tripwire).
More: docs/entrypoint.md.
"""


def main(argv: list[str] | None = None, *, roots: preflight.Roots | None = None, image_root: str = "/") -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["--help"], ["-h"]):  # answers only; nothing runs, so no guard is needed
        sys.stdout.write(HELP)
        return 0
    if argv[:1] == ["--version"]:
        from guard import __version__

        print(f"{PROG} {__version__}")
        return 0
    try:
        run = prepare(argv, dict(os.environ), roots or preflight.Roots(), image_root)
    except Refusal as refusal:
        for line in refusal.lines:
            print(f"{PROG}: {line}", file=sys.stderr)
        return refusal.code
    if run.runtime.get("output") == "machine":
        return run_ci(run)
    if os.getpid() == 1:
        from entrypoint import supervise

        return supervise.run(run.argv, run.env, run.executable, capture=False).exit_code
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(run.executable, run.argv, run.env)
    except OSError as error:
        print(f"{PROG}: cannot run {run.executable}: {error.strerror}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    return EXIT_CANNOT_RUN  # not reached: execve replaces this process


if __name__ == "__main__":
    sys.exit(main())
