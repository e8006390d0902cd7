"""From the command line to a run ready to execute: the options a run takes, the host facts it is
planned on (read-only), and `begin`, everything before the services start (checks, images,
secrets, folders, the copy). `agent-run CLI` and `agent-run sweep` both start runs through here.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from egress.gateway import VENDORS, KeySource, read_key
from image import layout
from launcher import github_app, logins, review, safefs, workspace
from launcher.checks import (check_mount, check_source, free_subnet, id_range_problem, live_owner, pinned_folders,
                             protected_paths, within)
from launcher.commands import write_record
from launcher.execute import execute
from launcher.plan import (CLIS, ENGINES, GITHUB_UPSTREAMS, ID_RANGE, PROG, Host, Mount, Options, Plan, RunError,
                           build_plan, copy_mapping, id_base, subnet_for)
from launcher.terminal import shown
from launcher.tiers import blocked_paths, live_read_only, read_only_patterns

ENGINE_SECCOMP = Path("/usr/share/containers/seccomp.json")
IMAGE_BUILD_DOCS = "docs/launcher.md#images"
# What --mount cannot close; printed at every --mount start.
MOUNT_HOLES = (
    "--mount: the agent edits your folder itself; the walls of the default copy mode do not all hold:",
    "  it can create protected files that did not exist (.claude/settings.json, .mcp.json, GEMINI.md, "
    ".github/workflows/...): read `agent-run` warnings after the run, and review before you run anything;",
    "  it can create a new git repository (a .git folder with hooks or core.fsmonitor) in a subfolder: "
    "never run git in a folder it made without looking first;",
    "  it can write .git/commondir, .git/info/ and other files under .git that change what git does there;",
    "  it runs as your uid on the host, with no user namespace (its files must be yours): the kernel keyrings "
    "are refused to it by seccomp alone, and a setuid bit it sets on a file is yours.",
)


def _vendor_value(text: str, flag: str, also: tuple = ()) -> tuple[str, str]:
    vendor, sep, value = text.partition("=")
    if not sep or (vendor not in VENDORS and vendor not in also) or not value:
        raise RunError(f"{flag} {text!r}: expected VENDOR=VALUE with VENDOR one of {sorted(VENDORS) + list(also)}")
    return vendor, value


def _ro_mount(text: str) -> Mount:
    parts = text.split(":")
    if len(parts) == 2 or (len(parts) == 3 and parts[2] == "ro"):
        return Mount(Path(parts[0]), parts[1], True)
    raise RunError(f"--ro-mount {text!r}: expected SOURCE:TARGET (always read-only)")


def add_run_options(p: argparse.ArgumentParser) -> None:
    """What a single run and a sweep's runs are both given."""
    images = layout.IMAGES
    p.add_argument("--profile", default=os.environ.get("AGENT_PROFILE") or "autonomous")
    p.add_argument("--engine", choices=ENGINES, default=ENGINES[0],
                   help="podman (this host, default) or kubernetes (kubernetes-sigs/agent-sandbox; docs/kubernetes.md)")
    p.add_argument("--namespace", default="agent-sandbox", help="kubernetes: the deployment's namespace")
    p.add_argument("--kubeconfig", type=Path, help="kubernetes: the client configuration (default: as kubectl's)")
    p.add_argument("--context", dest="kube_context", help="kubernetes: the kubeconfig context")
    p.add_argument("--image", default=images["agent"].ref)
    p.add_argument("--proxy-image", default=images["proxy"].ref)
    p.add_argument("--gateway-image", default=images["gateway"].ref)
    p.add_argument("--timeout", type=int, default=3600, help="wall-clock seconds (default 3600)")
    p.add_argument("--collect-timeout", type=int, default=300, help="seconds to bring the work back (default 300)")
    p.add_argument("--memory", default="4g")
    p.add_argument("--cpus", default="2")
    p.add_argument("--pids", type=int, default=1024)
    p.add_argument("--key-file", action="append", default=[], metavar="VENDOR=PATH")
    p.add_argument("--key-command", action="append", default=[], metavar="VENDOR=COMMAND")
    p.add_argument("--login", default="auto", metavar="KIND",
                   help="which credential: an API key (CLI/api-key) or a subscription login such as claude/login or "
                        "claude/oauth-token (docs/logins.md); auto (default): the key given, else the first login "
                        "found on this machine")
    p.add_argument("--login-command", metavar="COMMAND",
                   help="a command that prints the login's credential (a keychain export) instead of its file")
    token = p.add_mutually_exclusive_group()
    token.add_argument("--github-token-file", type=Path, metavar="FILE",
                       help="a GitHub token for the run's gateway (never the agent's), read from FILE")
    token.add_argument("--github-token-command", metavar="COMMAND",
                       help="a GitHub token from COMMAND's output, e.g. a broker's (OpenBao/Vault); docs/github.md")
    github_app.add_arguments(p)
    p.add_argument("--print", action="store_true", dest="print_only", help="show the whole plan, run nothing")
    # Tests only: stand-ins for the images, the internet and the vendors.
    p.add_argument("--outside-network", help=argparse.SUPPRESS)
    p.add_argument("--gateway-upstream", action="append", default=[], help=argparse.SUPPRESS)
    p.add_argument("--gateway-upstream-ca", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--gateway-token-url", action="append", default=[], help=argparse.SUPPRESS)


GITHUB_FLAGS = ("github_token_file", "github_token_command", "github_app_config", "github_app_id", "github_app_key",
                "github_app_installation", "github_repository")


def github_flags_given(args: argparse.Namespace) -> list[str]:
    return [f"--{name.replace('_', '-')}" for name in GITHUB_FLAGS if getattr(args, name, None)]


def options_from_args(args: argparse.Namespace, github: bool = True) -> Options:
    """github False: the run gets no GitHub credential, whatever is configured (a sweep's runs)."""
    from renderer.model import ProfileError, load  # host side only: the YAML profiles

    try:
        model = load(args.profile)
    except ProfileError as error:
        raise RunError(str(error)) from None
    try:
        sources = logins.key_sources_from(args.key_file, args.key_command)
    except logins.LoginError as error:
        raise RunError(str(error)) from None
    token = None
    if args.github_token_file:
        token = KeySource("github", file=args.github_token_file)
    elif args.github_token_command:
        token = KeySource("github", command=tuple(shlex.split(args.github_token_command)))
    if args.engine == "kubernetes":
        given = github_flags_given(args)
        if given:
            raise RunError(f"{', '.join(given)}: --engine kubernetes holds no GitHub token (the deployment's gateway "
                           f"reads GitHub anonymously); use --engine podman for a run that pushes")
        github = False
    github = github_app.options_from_args(args, token, read_key=not args.print_only) if github \
        else github_app.GitHubOptions()
    upstreams = dict(_vendor_value(t, "--gateway-upstream", GITHUB_UPSTREAMS) for t in args.gateway_upstream)
    token_urls = dict(_vendor_value(t, "--gateway-token-url") for t in args.gateway_token_url)
    context = logins.context_from(sources, args.login_command)
    found = None
    if args.login != "auto" or not any(s.vendor == CLIS[args.command] for s in sources):
        try:
            found = logins.choose(args.command, args.login, context)
        except logins.NotFound:
            pass  # the plan says what a run needs (a key, or a login)
        except logins.LoginError as error:
            raise RunError(str(error)) from None
    cli_args = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    return Options(cli=args.command, cli_args=cli_args, workspace=args.workspace or Path.cwd(),
                   profile=args.profile, engine=args.engine, mode="mount" if args.mount else "copy",
                   images={"agent": args.image, "proxy": args.proxy_image, "gateway": args.gateway_image},
                   timeout=args.timeout, collect_timeout=args.collect_timeout,
                   memory=args.memory, cpus=args.cpus, pids=args.pids, key_sources=sources, github=github,
                   login=found.kind if found else "", login_details=found.details if found else {},
                   login_found=found, login_context=context, token_urls=token_urls,
                   mounts=[_ro_mount(m) for m in args.ro_mount], run_id=run_id, run_dir=args.run_dir,
                   outside_network=args.outside_network, upstreams=upstreams, upstream_ca=args.gateway_upstream_ca,
                   interactive=sys.stdin.isatty() and sys.stdout.isatty(),
                   allow=tuple(model.network_allow),
                   model_server_tools=bool(getattr(model, "model_server_tools", False)),
                   tripwire=tuple(model.tripwire), read_only_globs=tuple(model.read_only_files),
                   blocked_globs=tuple(model.blocked_files),
                   namespace=args.namespace, kubeconfig=args.kubeconfig, kube_context=args.kube_context)


def memory_root() -> Path:
    parent = safefs.memory_parent()
    if parent is None:
        raise RunError("neither /run nor /dev/shm is a tmpfs here; the key and the token must never reach a disk")
    return parent / "agent-sandbox"


def engine_seccomp() -> dict:
    try:
        return json.loads(ENGINE_SECCOMP.read_text())
    except (OSError, ValueError) as error:
        raise RunError(f"cannot read podman's default seccomp profile {ENGINE_SECCOMP} ({error}); the run's profile "
                       f"is derived from it: install containers-common (it comes with podman)") from None


def prepare(options: Options) -> tuple[Host, workspace.Source | None, list[str], list[str]]:
    """The host facts of a run, read-only: (host, source, what the copy will be, warnings)."""
    if options.timeout <= 0 or options.pids <= 0 or options.collect_timeout <= 0:
        raise RunError("--timeout, --collect-timeout and --pids must be positive")
    folder = check_source(options.workspace, options.home)
    options.mounts = [check_mount(m, options.home) for m in options.mounts]
    run_dir = (options.run_dir or review.runs_root() / options.run_id).absolute()
    if within(run_dir.resolve(), folder):
        raise RunError(f"--run-dir {run_dir} is inside the workspace, where the agent could write")
    clash = id_range_problem(id_base(options.run_id), ID_RANGE)
    if clash:
        raise RunError(f"the run's host ids {id_base(options.run_id)}+{ID_RANGE} are not its own: {clash}; "
                       f"start the run again (another run id picks another range)")
    common = {"run_dir": run_dir, "memory_dir": memory_root() / options.run_id, "engine_seccomp": engine_seccomp()}
    if options.mode == "mount":
        host, source, steps, warnings = _live_host(options, folder, common)
    else:
        host, source, steps, warnings = _copy_host(options, folder, common)
    return replace(host, github_repository=github_repository(options, source, folder)), source, steps, warnings


def github_repository(options: Options, source: workspace.Source | None, folder: Path) -> str | None:
    """OWNER/NAME the run's GitHub token is for: --github-repository, or the workspace's origin
    remote read by git as the repository's owner (the user's insteadOf rules apply). None when no
    GitHub credential is configured."""
    if not options.github.configured:
        return None
    if options.github.repository:
        return options.github.repository
    hint = "pass --github-repository OWNER/NAME"
    if source is None:
        try:
            source = workspace.find_source(folder)
        except RunError:
            raise RunError(f"{folder} is not a git repository, so the GitHub repository of the run cannot be read "
                           f"from its origin remote; {hint}") from None
    done = source.git(["remote", "get-url", "origin"], check=False)
    if done.returncode != 0:
        raise RunError(f"{source.toplevel} has no git remote 'origin' to take the run's GitHub repository from; {hint}")
    return github_app.repository_from_url(done.stdout.decode(errors="replace"))


def _live_host(options: Options, folder: Path, common: dict) -> tuple[Host, None, list[str], list[str]]:
    protected = protected_paths(folder, live_read_only(options.read_only_globs))
    blocked = [p for p in protected_paths(folder, options.blocked_globs) if (folder / p).is_file()]
    protected = [p for p in protected if p not in blocked]
    host = Host(**common, workspace=folder, workdir=layout.WORKSPACE, agent_owner=live_owner(folder),
                protected=tuple(protected), blocked=tuple(blocked),
                pinned=tuple(pinned_folders(folder, protected + blocked)))
    return host, None, [f"--mount: {folder} itself is /workspace (no copy)"], list(MOUNT_HOLES)


def _copy_host(options: Options, folder: Path, common: dict) -> tuple[Host, workspace.Source, list[str], list[str]]:
    source = workspace.find_source(folder)
    uid_map, gid_map, agent_owner = copy_mapping(options.run_id)
    workdir = f"{layout.WORKSPACE}/{source.subdir}" if source.subdir else layout.WORKSPACE
    host = Host(**common, workspace=common["run_dir"] / "workspace", workdir=workdir, agent_owner=agent_owner,
                uid_map=uid_map, gid_map=gid_map)
    present = source.git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
    left_out = blocked_paths({p for p in present.stdout.decode(errors="surrogateescape").split("\0") if p},
                             options.blocked_globs)
    in_history = workspace.blocked_in_history(source, options.blocked_globs)
    head = f"HEAD {source.head[:12]}" if source.head else "no commit yet"
    steps = [f"copy: {source.toplevel} -> {host.workspace}: a new repository whose branch "
             f"{source.branch or 'agent-run'} holds one starting commit ({head} plus your staged, unstaged and "
             f"untracked files) at refs/agent/{options.run_id}/start"
             + (", on HEAD's history (packed in, nothing linked)" if source.head and not in_history else
                ", with no history"),
             f"the copy is owned by host uid {agent_owner[0]}: the agent's 1000 in this run's user namespace "
             f"(container 0-65535 -> host {uid_map[0][1]}-{uid_map[0][1] + ID_RANGE - 1})"]
    warnings = []
    if left_out:
        warnings.append("blocked files left out of the copy: " + ", ".join(shown(p) for p in left_out))
    if in_history:
        warnings.append("blocked files are in HEAD's history (" + ", ".join(shown(p) for p in in_history) +
                        "): the copy gets no history, only the starting commit, so that git cannot show them")
    return host, source, steps, warnings


def missing_images(options: Options) -> list[str]:
    missing = []
    for role, ref in options.images.items():
        done = subprocess.run([options.engine, "image", "exists", ref], capture_output=True, text=True)
        if done.returncode not in (0, 1):  # 1: missing; anything else: podman could not tell
            raise RunError(f"podman image exists {ref} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
        if done.returncode == 1:
            image = layout.IMAGES[role]
            missing.append(f"{role} image {ref} is missing; build it: {image.nix_build} (or, without Nix, the "
                           f"Debian stand-in: see {IMAGE_BUILD_DOCS})")
    return missing


@dataclass
class Launch:
    """A run ready to execute: its plan, the host facts, the secrets (in memory only)."""
    options: Options
    plan: Plan
    host: Host
    source: workspace.Source | None
    key: str | dict | None = field(repr=False)     # an API key, or a login's secret (launcher/logins.py)
    credential: github_app.GitHubCredential | None = None
    record: object = None


def begin(options: Options) -> Launch:
    """Everything before the services start: checks, the images, the secrets, the run folders and
    the copy; the plan is rebuilt once the starting commit exists."""
    host, source, _, warnings = prepare(options)
    build_plan(options, host)  # its refusals (a missing key) come before anything is asked of podman
    if os.geteuid() != 0:
        raise RunError("agent-run runs as root (sudo agent-run ...): each run gets its own range of host uids "
                       "for its user namespace, and rootless podman cannot give that yet")
    missing = missing_images(options)
    if missing:
        raise RunError("; ".join(missing))
    subnet = options.subnet or free_subnet(subnet_for(options.run_id), taken_subnets(options.engine))
    host = replace(host, subnet=subnet)
    plan = build_plan(options, host)
    plan.warnings += warnings
    if options.shared and options.github.configured:
        raise RunError("a sweep's runs share one gateway, which holds no GitHub token: run GitHub tasks one by one "
                       "(agent-run CLI ...) or drop the GitHub App / --github-token-* options")
    # A sweep's gateway read the key once for all its runs.
    if options.login_found is not None:
        try:
            key = logins.secret_of(options.login_found)
        except (logins.LoginError, ValueError) as error:
            raise RunError(str(error)) from None
    else:
        key = None if options.shared else read_key(next(s for s in options.key_sources if s.vendor == plan.vendor))
    for warning in plan.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    # The token, minted or read last before anything is made, goes to the gateway only; a run that
    # fails before it starts revokes it again.
    credential = github_app.obtain(options.github, host.github_repository)
    try:
        return _make_run(options, host, plan, source, key, credential)
    except BaseException:
        if credential is not None:
            credential.revoke()
        raise


def _make_run(options: Options, host: Host, plan: Plan, source: workspace.Source | None, key: str | None,
              credential: github_app.GitHubCredential | None) -> Launch:
    """The run folders, the record and the copy."""
    host.run_dir.mkdir(parents=True, mode=0o700)
    try:
        safefs.private_folder(host.memory_dir.parent)
    except safefs.UnsafeFile as error:
        raise RunError(str(error)) from None
    safefs.make_dir(host.memory_dir, 0o700)
    record_path = host.run_dir / "run.json"

    def record(**fields):
        write_record(record_path, fields)
    record(run_id=options.run_id, cli=options.cli, profile=options.profile, mode=options.mode, status="running",
           repository=str(source.toplevel if source else host.workspace), run_dir=str(host.run_dir),
           started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           read_only_patterns=list(read_only_patterns(options.read_only_globs)),
           github={"repository": host.github_repository, "source": credential.source if credential else None,
                   "branches": plan.github.policy.ref_namespace.removeprefix("refs/heads/")
                   if host.github_repository else None})
    print(f"{PROG}: run {options.run_id} ({options.mode} mode; folder {host.run_dir})", file=sys.stderr)
    if source is not None:
        copy = workspace.starting_commit(source, options.run_id, options.blocked_globs)
        workspace.make_copy(source, copy, host.workspace, host.agent_owner,
                            (f"{options.cli} (agent-run)", "agent-run@localhost"), remote=github_remote(plan))
        record(start=copy.start, base=copy.base, branch=copy.branch, history=copy.history,
               left_out=copy.left_out, blocked_in_history=copy.blocked_in_history)
        host = replace(host, start=copy.start)
        plan = build_plan(options, host)
    return Launch(options, plan, host, source, key, credential, record)


def github_remote(plan: Plan) -> tuple[str, str] | None:
    """The copy's origin when the run has a GitHub repository: github.com's URL (the agent's git
    rewrites it to the gateway) and a push mapping into the run's branches, so that
    `git push origin fix` creates agent/<run-id>/fix."""
    policy = plan.github.policy
    if not policy.repository:
        return None
    return f"https://github.com/{policy.repository}.git", f"refs/heads/*:{policy.ref_namespace}/*"


def taken_subnets(engine: str) -> set[str]:
    done = subprocess.run([engine, "network", "ls", "--format", "json"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RunError(f"{engine} network ls failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return {s.get("subnet") for n in json.loads(done.stdout or "[]") for s in (n.get("subnets") or [])}


def start_run(options: Options) -> int:
    if not logins.is_api_key(options.login_kind) and (options.engine == "kubernetes" or options.shared):
        raise RunError(f"--login {options.login_kind}: subscription logins run on the podman engine, one run at a "
                       "time, for now (a sweep or --engine kubernetes takes API keys)")
    if options.engine == "kubernetes":
        from launcher import kube_engine  # only this engine needs the kubernetes client
        return kube_engine.run(options)
    launch = begin(options)
    return execute(launch.plan, options, launch.host, launch.source, launch.key, launch.credential, launch.record)
