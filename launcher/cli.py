"""agent-run's command line: options from arguments and the profile, then plan, then run."""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
import uuid
from pathlib import Path

from egress.gateway import VENDORS, KeySource, read_key, read_secret
from launcher.execute import execute
from launcher.plan import (CLIS, DEFAULT_IMAGES, ENGINES, EXIT_USAGE, PROG, Mount, Options, Plan, RunError,
                           _within, build_plan, check_mount, check_workspace, format_plan, protected_paths)

# --- command line -------------------------------------------------------------------------------

def _vendor_value(text: str, flag: str) -> tuple[str, str]:
    vendor, sep, value = text.partition("=")
    if not sep or vendor not in VENDORS or not value:
        raise RunError(f"{flag} {text!r}: expected VENDOR=VALUE with VENDOR one of {sorted(VENDORS)}")
    return vendor, value


def _mount(text: str) -> Mount:
    parts = text.split(":")
    if len(parts) == 2:
        return Mount(Path(parts[0]), parts[1], True)
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        return Mount(Path(parts[0]), parts[1], parts[2] == "ro")
    raise RunError(f"--mount {text!r}: expected SOURCE:TARGET[:ro]")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Run an agent CLI in the sandbox, behind the egress "
                                "proxy and the credential gateway.")
    p.add_argument("cli", choices=sorted(CLIS))
    p.add_argument("cli_args", nargs=argparse.REMAINDER, help="arguments for the CLI (after --)")
    p.add_argument("--engine", choices=ENGINES, default=os.environ.get("AGENT_RUN_ENGINE"))
    p.add_argument("--profile", default=os.environ.get("AGENT_PROFILE") or "autonomous")
    p.add_argument("--workspace", type=Path, default=Path.cwd())
    p.add_argument("--image", default=DEFAULT_IMAGES["agent"])
    p.add_argument("--proxy-image", default=DEFAULT_IMAGES["proxy"])
    p.add_argument("--gateway-image", default=DEFAULT_IMAGES["gateway"])
    p.add_argument("--rootfs", help=argparse.SUPPRESS)  # tests: an overlay of a tree instead of images
    p.add_argument("--timeout", type=int, default=3600, help="wall-clock seconds (default 3600)")
    p.add_argument("--memory", default="4g")
    p.add_argument("--cpus", default="2")
    p.add_argument("--pids", type=int, default=1024)
    p.add_argument("--key-file", action="append", default=[], metavar="VENDOR=PATH")
    p.add_argument("--key-command", action="append", default=[], metavar="VENDOR=COMMAND")
    token = p.add_mutually_exclusive_group()
    token.add_argument("--github-token-file", type=Path)
    token.add_argument("--github-token-command")
    p.add_argument("--mount", action="append", default=[], metavar="SOURCE:TARGET[:ro]",
                   help="extra read-only mount (only the workspace is writable)")
    p.add_argument("--run-dir", type=Path, help="where configs, logs and the audit go")
    p.add_argument("--print", action="store_true", dest="print_only", help="show the commands, run nothing")
    return p


def options_from_args(args: argparse.Namespace) -> Options:
    from renderer.model import ProfileError, load  # host side only: the YAML profiles

    try:
        model = load(args.profile)
    except ProfileError as error:
        raise RunError(str(error)) from None
    engine = args.engine or next((e for e in ENGINES if shutil.which(e)), None)
    if engine is None:
        raise RunError("neither podman nor docker is on PATH; install one or pass --engine")
    sources = [KeySource(v, file=Path(p)) for v, p in (_vendor_value(t, "--key-file") for t in args.key_file)]
    sources += [KeySource(v, command=tuple(shlex.split(c)))
                for v, c in (_vendor_value(t, "--key-command") for t in args.key_command)]
    dup = sorted({s.vendor for s in sources if [x.vendor for x in sources].count(s.vendor) > 1})
    if dup:
        raise RunError(f"two keys given for {', '.join(dup)}: pass one --key-file or --key-command each")
    token = None
    if args.github_token_file:
        token = KeySource("github", file=args.github_token_file)
    elif args.github_token_command:
        token = KeySource("github", command=tuple(shlex.split(args.github_token_command)))
    cli_args = args.cli_args[1:] if args.cli_args[:1] == ["--"] else args.cli_args
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    return Options(cli=args.cli, cli_args=cli_args, workspace=args.workspace, profile=args.profile, engine=engine,
                   images={"agent": args.image, "proxy": args.proxy_image, "gateway": args.gateway_image},
                   rootfs=args.rootfs, timeout=args.timeout, memory=args.memory, cpus=args.cpus, pids=args.pids,
                   key_sources=sources, github_token=token, mounts=[_mount(m) for m in args.mount],
                   run_id=run_id, run_dir=args.run_dir, rootless=engine == "podman" and os.geteuid() != 0,
                   interactive=sys.stdin.isatty() and sys.stdout.isatty(),
                   allow=tuple(model.network_allow), read_only_globs=tuple(model.read_only_files),
                   blocked_globs=tuple(model.blocked_files))


def default_run_dir(run_id: str) -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/agent-sandbox/runs") / run_id
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "agent-sandbox" / "runs" / run_id


def prepare(options: Options) -> tuple[Plan, Path]:
    if options.timeout <= 0 or options.pids <= 0:
        raise RunError("--timeout and --pids must be positive")
    workspace = check_workspace(options.workspace, options.home, options.rootless)
    options.mounts = [check_mount(m, options.home) for m in options.mounts]
    run_dir = (options.run_dir or default_run_dir(options.run_id)).absolute()
    if _within(run_dir.resolve(), workspace):
        raise RunError(f"--run-dir {run_dir} is inside the workspace, where the agent could write the logs")
    protected = protected_paths(workspace, options.read_only_globs)
    blocked = [p for p in protected_paths(workspace, options.blocked_globs) if (workspace / p).is_file()]
    protected = [p for p in protected if p not in blocked]
    return build_plan(options, workspace, run_dir, protected, blocked), run_dir


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        options = options_from_args(args)
        plan, run_dir = prepare(options)
        if args.print_only:
            sys.stdout.write(format_plan(plan, options, run_dir))
            return 0
        keys = {s.vendor: read_key(s) for s in options.key_sources}
        token = read_secret(options.github_token, "GitHub token") if options.github_token else None
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(run_dir, 0o700)
        return execute(plan, options, run_dir, keys, token)
    except (RunError, ValueError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
