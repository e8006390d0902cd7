"""agent-run's command line: run an agent (copy -> plan -> run -> refs back), many at once
(sweep), and the commands for what a run brought back: runs, review, apply, discard. What a run
takes and how it is started: launcher/start.py."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from guard import __version__
from launcher import logins, review, sweep, workspace
from launcher.plan import CLIS, EXIT_USAGE, PROG, RunError, build_plan, format_plan
from launcher.start import add_run_options, options_from_args, prepare, start_run
from launcher.terminal import shown, use_colour

COMMANDS = ("runs", "review", "apply", "discard")


def run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        usage=f"{PROG} [OPTIONS] {{claude,codex,gemini}} [CLI ARGS...]\n"
              f"       {PROG} login-check {{claude,codex,gemini}} [--login KIND]  (login-check --help)\n"
              f"       {PROG} sweep TASKS [--concurrency N] [OPTIONS]  (many runs; sweep --help)\n"
              f"       {PROG} {{runs,review,apply,discard}} ...  (each with --help)",
        description="Run an agent CLI in the sandbox on a copy of your repository, behind the egress proxy and "
                    "the credential gateway; its commits come back as refs/agent/<run>/... for you to review "
                    "and apply.",
        epilog="before a run:\n  login-check CLI           which login a run would use, usable or not, its expiry\n"
               "many runs:\n  sweep TASKS               one run per task of a file, N at a time\n"
               "after a run:\n  runs                      list the runs of this repository and their refs\n"
               "  review RUN                what each ref changes; read-only-tier paths flagged\n"
               "  apply RUN --branch NAME   cherry-pick the agent's commits onto a branch\n"
               "  discard RUN               delete the run's refs and folder\n"
               "RUN is a run id, a unique prefix of one, or 'last'.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("command", choices=sorted(CLIS) + ["sweep", "login-check", *COMMANDS],
                   metavar="{claude,codex,gemini,sweep,login-check,runs,review,apply,discard}")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the CLI (or the command)")
    p.add_argument("--workspace", type=Path, default=None, help="your repository (default: the current folder)")
    p.add_argument("--mount", action="store_true",
                   help="live edits: mount your folder itself instead of a copy (weaker; see docs/launcher.md)")
    add_run_options(p)
    p.add_argument("--ro-mount", action="append", default=[], metavar="SOURCE:TARGET",
                   help="an extra read-only mount outside /workspace")
    p.add_argument("--run-dir", type=Path, help="where configs, logs, the copy and the audit go")
    return p


# --- after a run ---------------------------------------------------------------------------------

def command_parser(command: str) -> argparse.ArgumentParser:
    helps = {"runs": "List the runs of this repository and the refs each brought back.",
             "review": "Show what each ref of a run changes since its start; changes to read-only-tier paths "
                       "(instruction files, .claude/, .codex/, .gemini/, .github/workflows/, .git* files, the "
                       "profile's files.read_only) are flagged (red on a terminal, plain when piped or NO_COLOR).",
             "apply": "Cherry-pick the agent's commits of a run onto a branch you name (created at the run's base "
                      "if new). The checked-out branch is refused unless --checked-out; read-only-tier changes "
                      "are refused unless --allow-protected.",
             "discard": "Delete a run's refs (refs/agent/RUN/...) and its run folder."}
    p = argparse.ArgumentParser(prog=f"{PROG} {command}", description=helps[command])
    if command != "runs":
        p.add_argument("run", metavar="RUN", help="a run id, a unique prefix of one, or 'last'")
    p.add_argument("--workspace", type=Path, default=None, help="the repository (default: the current folder)")
    if command == "apply":
        p.add_argument("--branch", required=True, help="the branch to apply onto (created if new)")
        p.add_argument("--ref", help="which of the run's refs (default: uncommitted, else HEAD)")
        p.add_argument("--allow-protected", action="store_true", help="apply read-only-tier changes too")
        p.add_argument("--checked-out", action="store_true",
                       help="the branch may be the checked-out one: cherry-pick in its working tree")
    if command in ("review", "apply"):
        p.add_argument("--profile", default=os.environ.get("AGENT_PROFILE") or "autonomous",
                       help="for runs that recorded no read-only patterns")
    return p


def manage(command: str, argv: list[str], default_workspace: Path | None) -> int:
    args = command_parser(command).parse_args(argv)
    folder = args.workspace or default_workspace or Path.cwd()
    repo = workspace.find_source(folder)
    if command == "runs":
        sys.stdout.write(review.format_runs(review.find_runs(repo)))
        return 0
    run = review.resolve_run(repo, args.run)
    if command == "discard":
        sys.stdout.write(review.discard(repo, run))
        return 0
    read_only = ()
    if not run.record.get("read_only_patterns"):
        from renderer.model import load
        read_only = load(args.profile).read_only_files
    if command == "review":
        sys.stdout.write(review.review(repo, run, read_only, colour=use_colour()))
        return 0
    sys.stdout.write(review.apply(repo, run, args.branch, ref=args.ref, allow_protected=args.allow_protected,
                                  checked_out=args.checked_out, profile_read_only=read_only))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = run_parser().parse_args(argv)
    try:
        if args.command == "sweep":
            return sweep.main(args.rest, before=args)
        if args.command == "login-check":
            return logins.check_main(args.rest, prog=f"{PROG} login-check")
        if args.command in COMMANDS:
            return manage(args.command, args.rest, args.workspace)
        if args.rest and args.rest[0] in ("-h", "--help"):
            run_parser().print_help()
            print(f"\n(arguments after {args.command} go to {args.command}; `{PROG} {args.command} -- --help` "
                  f"asks {args.command} itself)")
            return 0
        options = options_from_args(args)
        if args.print_only and options.engine == "kubernetes":
            from launcher import kube_engine
            task, _ = kube_engine.prepare(options)
            sys.stdout.write(kube_engine.format_plan(task, options))
            return 0
        if args.print_only:
            host, _, steps, warnings = prepare(options)
            plan = build_plan(options, host)
            plan.warnings += warnings
            sys.stdout.write(format_plan(plan, options, host, steps))
            return 0
        return start_run(options)
    except (RunError, ValueError) as error:
        print(f"{PROG}: {shown(str(error))}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
