"""agent-run's plan: every command and every file of a run, built by pure functions from the options,
so `agent-run --print` shows exactly what a run executes.

    internal network (--internal, no DNS)           outside network
    agent 10.213.N.10 ── proxy 10.213.N.2 ───────── (vendors' hosts, the allowlist)
                     └── gateway 10.213.N.3 ─────── (model vendors, with the real key)

Keys and the GitHub token are read on the host and never appear in a command line or in the
agent's environment.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from egress.gateway import KeySource, agent_environment, proxy_allowlist, render_gateway
from egress.squid import AGENT_SUPERNET, render_squid

PROG = "agent-run"
ENGINES = ("podman", "docker")
CLIS = {"claude": "anthropic", "codex": "openai", "gemini": "gemini"}
PROXY_PORT = 3128
PROXY_HOST, GATEWAY_HOST = "agent-proxy", "agent-gateway"
AGENT_UID = 1000
CONTAINER_WORKSPACE = "/workspace"
CONTAINER_HOME = "/home/agent"
TOKEN_DIR = "/var/lib/agent-run/secrets"
TOKEN_PATH = f"{TOKEN_DIR}/github-token"
DEFAULT_IMAGES = {"agent": "agent-sandbox:latest", "proxy": "agent-sandbox-egress-proxy:latest",
                  "gateway": "agent-sandbox-gateway:latest"}
EXIT_TIMEOUT = 124
EXIT_USAGE = 2
MAX_PROTECTED_MOUNTS = 256
SKIP_DIRS = {"node_modules", ".venv", "__pycache__"}
SECRET_HOME_PATHS = (".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".config/gh", ".docker", ".kube",
                     ".netrc", ".git-credentials", ".npmrc", ".pypirc", ".cargo/credentials",
                     ".cargo/credentials.toml", ".config/agent-sandbox", ".password-store", ".vault-token")
SYSTEM_PATHS = ("/etc", "/run", "/var/run", "/proc", "/sys", "/dev", "/boot", "/var/lib/docker",
                "/var/lib/containers", "/usr", "/bin", "/sbin", "/lib", "/var/log")


class RunError(Exception):
    """A refusal or bad input: the message says what and how to fix it."""


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = True


@dataclass
class Options:
    cli: str
    cli_args: list[str]
    workspace: Path
    profile: str = "autonomous"
    engine: str = "podman"
    images: dict = field(default_factory=lambda: dict(DEFAULT_IMAGES))
    rootfs: str | None = None            # stand-in: run every container on an overlay of this tree
    timeout: int = 3600
    memory: str = "4g"
    cpus: str = "2"
    pids: int = 1024
    key_sources: list = field(default_factory=list)         # [KeySource]
    github_token: KeySource | None = None
    mounts: list = field(default_factory=list)               # [Mount], always read-only
    run_id: str = ""
    run_dir: Path | None = None
    rootless: bool = False
    outside_subnet: str | None = None     # default: the engine picks one
    interactive: bool = False             # a terminal on stdin: the CLI's interactive mode
    home: Path = field(default_factory=Path.home)
    allow: tuple = ()                    # the profile's network.allow
    read_only_globs: tuple = ()
    blocked_globs: tuple = ()


@dataclass
class Plan:
    names: dict                          # role -> container/network name
    subnet: str
    addresses: dict
    files: dict                          # host path -> (text, mode)
    setup: list                          # argv lists, run in order
    agent_create: list
    start_agent: list
    stop_agent: list
    teardown: list
    token_copy: list | None
    gateway_vendors: list
    report_host_path: Path


# --- checks ------------------------------------------------------------------------------------

def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def refusal(source: Path, home: Path) -> str | None:
    """Why mounting source would expose the host, or None."""
    path = source.resolve()
    if path == Path("/"):
        return "it is the host's root"
    if path.is_socket() or path.name in ("docker.sock", "podman.sock", "containerd.sock"):
        return "it is a container engine or other socket"
    homes = {home.resolve(), Path("/root"), Path("/home")}
    if Path("/home").is_dir():
        homes |= {p.resolve() for p in Path("/home").iterdir() if p.is_dir()}
    for h in sorted(homes):
        if _within(h, path):
            return f"it is or contains the home folder {h}"
    for secret in SECRET_HOME_PATHS:
        s = home.resolve() / secret
        if _within(path, s) or _within(s, path):
            return f"it is or contains the secret path {s}"
    for system in SYSTEM_PATHS:
        s = Path(system)
        if _within(path, s) or _within(s, path):
            return f"it is or contains the system path {s}"
    return None


def check_workspace(workspace: Path, home: Path, rootless: bool) -> Path:
    if not workspace.is_dir():
        raise RunError(f"workspace {workspace} is not a directory; pass --workspace DIR")
    resolved = workspace.resolve()
    why = refusal(resolved, home)
    if why:
        raise RunError(f"refusing to mount the workspace {resolved}: {why}; pass a project folder")
    owner = resolved.stat().st_uid
    wanted = os.getuid() if rootless else AGENT_UID
    if owner != wanted:
        fix = (f"sudo chown -R {AGENT_UID}:{AGENT_UID} {shlex.quote(str(resolved))}" if not rootless else
               f"chown -R {wanted} {shlex.quote(str(resolved))}")
        raise RunError(f"workspace {resolved} is owned by uid {owner}, but the agent runs as uid {AGENT_UID}"
                       f"{' (mapped from your uid by --userns keep-id)' if rootless else ''} and must own it; "
                       f"fix: {fix}")
    return resolved


def check_mount(mount: Mount, home: Path) -> Mount:
    if not mount.read_only:
        raise RunError(f"--mount {mount.source}:{mount.target}: only the workspace is writable; add :ro")
    why = refusal(mount.source, home)
    if why:
        raise RunError(f"refusing to mount {mount.source.resolve()}: {why}")
    if not mount.source.exists():
        raise RunError(f"--mount {mount.source}: no such file or folder")
    if not mount.target.startswith("/") or _within(Path(mount.target), Path(CONTAINER_WORKSPACE)):
        raise RunError(f"--mount target {mount.target!r} must be absolute and outside {CONTAINER_WORKSPACE}")
    return Mount(mount.source.resolve(), mount.target, True)


# --- protected files ----------------------------------------------------------------------------

def glob_matches(pattern: str, relative: str) -> bool:
    """gitignore-style: a pattern without "/" matches the name at any depth; "**" spans folders."""
    if "/" not in pattern:
        return fnmatch.fnmatchcase(relative.rsplit("/", 1)[-1], pattern)
    return _match_segments(pattern.strip("/").split("/"), relative.split("/"))


def _match_segments(pattern: list[str], parts: list[str]) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match_segments(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _match_segments(pattern[1:], parts[1:])


def _plain_inside(workspace: Path, relative: str) -> bool:
    """No component is a symlink: a bind mount follows links on the host, so a repository's
    `.claude -> ~/.ssh` would otherwise bring the host's secrets in."""
    path = workspace
    for part in relative.split("/"):
        path = path / part
        if path.is_symlink():
            return False
    return path.resolve().is_relative_to(workspace)


def protected_paths(workspace: Path, globs: tuple, limit: int = MAX_PROTECTED_MOUNTS) -> list[str]:
    """Workspace-relative paths to mount read-only: a folder for "dir/**", else matching files."""
    found: set[str] = set()
    for pattern in globs:
        folder = pattern[:-3].strip("/")
        if pattern.endswith("/**") and "*" not in folder and _plain_inside(workspace, folder) \
                and (workspace / folder).is_dir():
            found.add(folder)
    for folder, dirs, files in os.walk(workspace):
        rel_folder = os.path.relpath(folder, workspace)
        rel_folder = "" if rel_folder == "." else rel_folder
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and f"{rel_folder}/{d}".lstrip("/") not in found
                   and f"{rel_folder}/{d}".lstrip("/") != ".git/objects"]
        for name in files:
            rel = f"{rel_folder}/{name}".lstrip("/")
            if os.path.islink(os.path.join(folder, name)):
                continue
            if any(glob_matches(p, rel) for p in globs):
                found.add(rel)
        if len(found) > limit:
            raise RunError(f"more than {limit} protected files in {workspace}; narrow files.read_only "
                           f"or files.blocked in the profile")
    return sorted(rel for rel in found if _plain_inside(workspace, rel))


# --- the plan -----------------------------------------------------------------------------------

def subnet_for(run_id: str) -> str:
    n = int(hashlib.sha256(run_id.encode()).hexdigest(), 16) % 254 + 1
    return f"10.213.{n}.0/24"


def _image(options: Options, role: str) -> list[str]:
    return ["--rootfs", f"{options.rootfs}:O"] if options.rootfs else [options.images[role]]


def _network_args(options: Options, names: dict, address: str, outside: bool) -> list[str]:
    if options.engine == "podman":
        args = ["--network", f"{names['internal']}:ip={address}"]
        return args + (["--network", names["outside"]] if outside else [])
    return ["--network", names["internal"], "--ip", address]


def build_plan(options: Options, workspace: Path, run_dir: Path, protected: list[str], blocked: list[str]) -> Plan:
    engine = options.engine
    base = f"agent-sandbox-{options.run_id}"
    names = {"internal": f"{base}-int", "outside": f"{base}-ext", "proxy": f"{base}-proxy",
             "gateway": f"{base}-gateway", "agent": f"{base}-agent"}
    subnet = subnet_for(options.run_id)
    prefix = subnet.rsplit(".", 1)[0]
    addresses = {"proxy": f"{prefix}.2", "gateway": f"{prefix}.3", "agent": f"{prefix}.10"}

    vendor_needed = CLIS[options.cli]
    keyed = sorted({s.vendor for s in options.key_sources})
    if vendor_needed not in keyed:
        raise RunError(f"{options.cli} needs a {vendor_needed} key: pass --key-file {vendor_needed}=PATH "
                       f"or --key-command {vendor_needed}='COMMAND'")
    gateway_vendors = keyed

    files = {
        run_dir / "squid" / "squid.conf": (render_squid(proxy_allowlist(options.allow),
                                                        agent_subnets=[AGENT_SUPERNET], listen_port=PROXY_PORT), 0o644),
        run_dir / "squid" / "agent-sandbox.d" / "00-run.conf": ("# this run adds nothing to the proxy\n", 0o644),
        run_dir / "gateway" / "nginx.conf": (render_gateway(gateway_vendors, agent_subnets=[subnet]), 0o644),
        run_dir / "empty": ("", 0o444),
    }
    proxy_log, gateway_log, gateway_run = run_dir / "proxy-log", run_dir / "gateway-log", run_dir / "gateway-run"
    hardening = ["--security-opt", "no-new-privileges", "--read-only", "--cap-drop", "ALL"]
    if engine == "podman":
        # podman would add its own tmpfs on /tmp, /run, /var/tmp, copying the image's content in;
        # each container below names the writable places it needs instead.
        hardening += ["--read-only-tmpfs=false"]
    nocopy = ",notmpcopyup" if engine == "podman" else ""
    service_caps = ["--cap-add", "SETUID", "--cap-add", "SETGID", "--cap-add", "CHOWN"]
    network_setup = [
        [engine, "network", "create", "--internal", *(["--disable-dns"] if engine == "podman" else []),
         "--subnet", subnet, names["internal"]],
        [engine, "network", "create", *(["--subnet", options.outside_subnet] if options.outside_subnet else []),
         names["outside"]],
    ]
    proxy = [engine, "create", "--name", names["proxy"], *_network_args(options, names, addresses["proxy"], True),
             *hardening, *service_caps, "--pids-limit", "256", "--memory", "512m",
             "--tmpfs", f"/run:rw,nosuid,nodev{nocopy}", "--tmpfs", f"/var/spool/squid:rw,nosuid,nodev{nocopy}",
             "-v", f"{run_dir}/squid/squid.conf:/etc/squid/squid.conf:ro",
             "-v", f"{run_dir}/squid/agent-sandbox.d:/etc/squid/agent-sandbox.d:ro",
             "-v", f"{proxy_log}:/var/log/squid",
             *_image(options, "proxy"), "squid", "-N", "-f", "/etc/squid/squid.conf"]
    gateway = [engine, "create", "--name", names["gateway"],
               *_network_args(options, names, addresses["gateway"], True),
               *hardening, *service_caps, "--pids-limit", "256", "--memory", "512m",
               "--tmpfs", f"/run:rw,nosuid,nodev{nocopy}",
               "-v", f"{run_dir}/gateway/nginx.conf:/etc/agent-gateway/nginx.conf:ro",
               "-v", f"{run_dir}/gateway/keys:/run/agent-gateway/keys:ro",
               "-v", f"{gateway_log}:/var/log/agent-gateway",
               "-v", f"{gateway_run}:/var/lib/agent-gateway",
               *_image(options, "gateway"), "nginx", "-e", "/var/log/agent-gateway/error.log",
               "-c", "/etc/agent-gateway/nginx.conf", "-g", "daemon off;"]
    if engine == "docker":
        connect = [[engine, "network", "connect", names["outside"], names[r]] for r in ("proxy", "gateway")]
    else:
        connect = []
    setup = [*network_setup, proxy, gateway, *connect,
             [engine, "start", names["proxy"]], [engine, "start", names["gateway"]]]

    report_rel = f".agent-sandbox/runs/{options.run_id}/report.json"
    proxy_url = f"http://{PROXY_HOST}:{PROXY_PORT}"
    env = {
        "AGENT_PROFILE": options.profile,
        "AGENT_WORKSPACE": CONTAINER_WORKSPACE,
        "AGENT_REPORT": f"{CONTAINER_WORKSPACE}/{report_rel}",
        "HTTPS_PROXY": proxy_url, "HTTP_PROXY": proxy_url, "https_proxy": proxy_url, "http_proxy": proxy_url,
        "ALL_PROXY": proxy_url,
        "NO_PROXY": f"{GATEWAY_HOST},localhost,127.0.0.1", "no_proxy": f"{GATEWAY_HOST},localhost,127.0.0.1",
        **agent_environment(GATEWAY_HOST, gateway_vendors),
    }
    if options.github_token:
        env["AGENT_RUN_GITHUB_TOKEN_FILE"] = TOKEN_PATH
    writable = ["--tmpfs", f"/tmp:rw,nosuid,nodev,exec,size=2g{nocopy}"]
    if engine == "podman":
        # podman copies the image's /home/agent into the tmpfs (tmpcopyup, its default).
        writable += ["--tmpfs", f"{CONTAINER_HOME}:rw,nosuid,nodev,exec,size=2g,mode=0755,U"]
    else:
        writable += ["--mount", f"type=volume,dst={CONTAINER_HOME}"]  # docker copies the image's content in
    if options.github_token:
        writable += ["--mount", f"type=volume,dst={TOKEN_DIR}"]
    mounts = ["--mount", f"type=bind,src={workspace},dst={CONTAINER_WORKSPACE}"]
    for rel in protected:
        mounts += ["--mount", f"type=bind,src={workspace / rel},dst={CONTAINER_WORKSPACE}/{rel},readonly"]
    for rel in blocked:
        mounts += ["--mount", f"type=bind,src={run_dir / 'empty'},dst={CONTAINER_WORKSPACE}/{rel},readonly"]
    for mount in options.mounts:
        mounts += ["--mount", f"type=bind,src={mount.source},dst={mount.target},readonly"]
    agent = [engine, "create", "--name", names["agent"],
             *_network_args(options, names, addresses["agent"], False),
             "--add-host", f"{PROXY_HOST}:{addresses['proxy']}", "--add-host", f"{GATEWAY_HOST}:{addresses['gateway']}",
             *hardening, "--pids-limit", str(options.pids), "--memory", options.memory, "--cpus", options.cpus,
             "--user", f"{AGENT_UID}:{AGENT_UID}",
             *(["--userns", f"keep-id:uid={AGENT_UID},gid={AGENT_UID}"] if options.rootless else []),
             "--stop-timeout", "10", *(["--interactive", "--tty"] if options.interactive else []),
             *writable, *mounts, "--workdir", CONTAINER_WORKSPACE,
             *[a for k, v in sorted(env.items()) for a in ("--env", f"{k}={v}")],
             *_image(options, "agent"), options.cli, *options.cli_args]
    token_copy = None
    if options.github_token:
        token_copy = [engine, "cp", *(["-a"] if engine == "docker" else []), str(run_dir / "github-token"),
                      f"{names['agent']}:{TOKEN_PATH}"]
    containers = [names["agent"], names["gateway"], names["proxy"]]
    # One command each: a container that was never created must not keep the others alive.
    quick = ["-t", "1"] if engine == "podman" else []  # the logs are written unbuffered; no need to wait
    teardown = [*[[engine, "rm", "-f", *quick, "-v", c] for c in containers],
                *[[engine, "network", "rm", n] for n in (names["internal"], names["outside"])]]
    return Plan(names=names, subnet=subnet, addresses=addresses, files=files, setup=setup,
                agent_create=agent,
                start_agent=[engine, "start", "--attach", *(["--interactive"] if options.interactive else []),
                             names["agent"]],
                stop_agent=[engine, "stop", "-t", "5", names["agent"]], teardown=teardown,
                token_copy=token_copy, gateway_vendors=gateway_vendors,
                report_host_path=workspace / report_rel)


def format_plan(plan: Plan, options: Options, run_dir: Path) -> str:
    def q(argv):
        return shlex.join(argv)
    lines = [f"# agent-run {options.cli}: profile {options.profile}, workspace {plan.report_host_path.parents[3]}",
             f"# run folder {run_dir} (0700): rendered configs, logs, the audit"]
    for path, (_, mode) in plan.files.items():
        lines.append(f"# write {path} (mode {mode:04o})")
    lines.append(f"# write {run_dir}/gateway/keys/{{{','.join(plan.gateway_vendors)}}}.conf (0600, root): "
                 "the real keys, read from " + ", ".join(s.describe() for s in options.key_sources))
    lines += [q(a) for a in plan.setup]
    lines.append("# wait until squid accepts connections and nginx has written its pid; then delete the key files")
    lines.append(q(plan.agent_create))
    if plan.token_copy:
        lines.append(f"# write {run_dir}/github-token (0400, uid {AGENT_UID}) from {options.github_token.describe()}")
        lines.append(q(plan.token_copy))
        lines.append(f"# delete {run_dir}/github-token")
    lines.append(q(plan.start_agent))
    lines.append(f"# after {options.timeout} s: {q(plan.stop_agent)} (exit {EXIT_TIMEOUT})")
    lines += [q(a) for a in plan.teardown]
    lines.append(f"# audit: {run_dir}/audit.json from the proxy log, the gateway log and {plan.report_host_path}")
    return "\n".join(lines) + "\n"


