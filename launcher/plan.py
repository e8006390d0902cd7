"""agent-run's plan: every command and every file of a run, built by pure functions from the
options and the facts found on the host, so `agent-run --print` shows exactly what a run does.

    internal network (--internal, no DNS)                 outside network
    agent 10.213.N.10 ── proxy   10.213.N.2 :3128 ──────── hosts on the profile's allowlist
                     └── gateway 10.213.N.3 :808x ──────── the run's model vendor, the real key added
                                            :80   ──────── github.com, api.github.com (the run's token
                                            :8086 ──────── registry.npmjs.org     added; GET/HEAD only)
    collector (no network): the copy's refs -> a git bundle in the run folder

One function per container. Keys and the GitHub token never appear in a command line, a file on
disk or the agent's container: both go to the gateway's in-memory secrets folder only.
"""
from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from egress import gateway_github, logins as gateway_logins
from egress.gateway import RENEWED_DIR, proxy_allowlist, render_gateway_config
from egress.squid import AGENT_SUPERNET, render_squid
from image import layout
from launcher import github_app, logins

PROG = "agent-run"
ENGINES = ("podman", "kubernetes")
CLIS = {"claude": "anthropic", "codex": "openai", "gemini": "gemini"}
VENDOR_TITLES = {"anthropic": "an Anthropic", "openai": "an OpenAI", "gemini": "a Gemini"}
PROXY_PORT = 3128
PROXY_HOST, GATEWAY_HOST = "agent-proxy", "agent-gateway"
AGENT_UID, AGENT_GID = layout.AGENT_UID, layout.AGENT_GID
# Where the agent and the collector see the run's folders (the report is in memory on the host,
# the collector's output in the run folder).
REPORT_DIR = "/var/lib/agent-run/report"
REPORT_NAME = "report.json"
OUT_DIR = "/var/lib/agent-run/out"
BUNDLE_NAME = "result.bundle"
# Each run maps the container's uids 0-65535 onto 65536 host uids of its own that no account
# uses: the agent's uid 1000 is then no host user with a session, files or keyrings.
ID_RANGE = 65536
ID_BASE = 1_700_000_000
ID_SLOTS = 4096
EXIT_TIMEOUT = 124
EXIT_USAGE = 2
COLLECT_NOTHING_NEW = 3   # the collector's exit code when the copy holds nothing new
DENIED_SYSCALLS = ("add_key", "keyctl", "request_key")


class RunError(Exception):
    """A refusal or bad input: the message says what and how to fix it."""


@dataclass(frozen=True)
class Shared:
    """A sweep's services, already running, that a run joins instead of starting its own: one proxy
    and one gateway per vendor. The run still gets its own internal network; the proxy and its
    vendor's gateway are connected to it for the run's lifetime, so the agents of a sweep never
    share a network and each log line names the one agent address it came from."""
    proxy: str                    # container names
    gateways: dict                # vendor -> container name
    proxy_log: Path               # the shared access logs on the host, split per run at the end
    gateway_logs: dict            # vendor -> path


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
    mode: str = "copy"                    # copy (default) | mount (--mount: live edits)
    images: dict = field(default_factory=lambda: {r: i.ref for r, i in layout.IMAGES.items()})
    timeout: int = 3600
    collect_timeout: int = 300
    memory: str = "4g"
    cpus: str = "2"
    pids: int = 1024
    key_sources: list = field(default_factory=list)         # [KeySource]
    login: str = ""                       # the login kind (launcher/logins.py); "": the vendor's API key
    login_details: dict = field(default_factory=dict)       # what the container may know of it (no token)
    login_found: logins.Found | None = field(default=None, repr=False)    # where it was found (holds it)
    login_context: logins.Context | None = field(default=None, repr=False)
    token_urls: dict = field(default_factory=dict)  # tests: vendor -> a stand-in's token endpoint
    github: github_app.GitHubOptions = field(default_factory=github_app.GitHubOptions)
    mounts: list = field(default_factory=list)               # [Mount], always read-only
    run_id: str = ""
    run_dir: Path | None = None
    outside_subnet: str | None = None     # default: the engine picks one
    outside_network: str | None = None    # tests: an existing network (not created nor removed)
    upstreams: dict = field(default_factory=dict)   # tests: vendor (or git, api, npm) -> URL of a stand-in
    upstream_ca: Path | None = None       # tests: the CA that signed the stand-in's certificate
    interactive: bool = False             # a terminal on stdin: the CLI's interactive mode
    home: Path = field(default_factory=Path.home)
    allow: tuple = ()                     # the profile's network.allow
    model_server_tools: bool = False      # the profile's network.model_server_tools
    tripwire: tuple = ()                  # the profile's tripwire rules: the gateway's GitHub refusals name them
    read_only_globs: tuple = ()
    blocked_globs: tuple = ()
    shared: Shared | None = None          # sweep: join these services instead of starting them
    subnet: str | None = None             # sweep: the /24 it chose for the run (None: pick one)
    agent_log: Path | None = None         # sweep: the agent's output goes here, not to the terminal
    namespace: str = "agent-sandbox"      # --engine kubernetes: where the deployment is
    kubeconfig: Path | None = None        # --engine kubernetes: the client's configuration (default: as kubectl)
    kube_context: str | None = None

    @property
    def vendor(self) -> str:
        return CLIS[self.cli]

    @property
    def login_kind(self) -> str:
        return self.login or f"{self.cli}/api-key"

    @property
    def refreshes(self) -> bool:
        """The gateway refreshes this login's token (and leaves it for the launcher to give back)."""
        return gateway_logins.kind(self.login_kind).refresh is not None


@dataclass(frozen=True)
class Host:
    """What was found or chosen on the host for a run."""
    run_dir: Path                 # on disk, root's, 0700: configs, logs, the copy, the audit
    memory_dir: Path              # on a tmpfs, root's, 0700: secrets and the run report
    workspace: Path               # what /workspace is: the copy, or with --mount the user's folder
    workdir: str                  # the agent's working folder in the container
    agent_owner: tuple            # (uid, gid) of the agent on the host
    uid_map: tuple = ()           # ((container, host, size), ...); () runs as agent_owner, no namespace
    gid_map: tuple = ()
    engine_seccomp: dict | None = None   # the engine's default profile, to derive the run's from
    protected: tuple = ()         # --mount: read-only over the workspace
    blocked: tuple = ()           # --mount: masked with an empty file
    pinned: tuple = ()            # --mount: folders bound onto themselves (cannot be renamed)
    start: str | None = None      # the starting commit (copy mode; None before it is made)
    subnet: str | None = None     # the internal network's /24 (None: the one the run id picks)
    github_repository: str | None = None  # OWNER/NAME the run's GitHub token is for (None: no token)

    @property
    def report_dir(self) -> Path:
        return self.memory_dir / "report"

    @property
    def gateway_secrets(self) -> Path:
        return self.memory_dir / "gateway-secrets"

    @property
    def gateway_renewed(self) -> Path:
        return self.memory_dir / "gateway-renewed"

    @property
    def out_dir(self) -> Path:
        return self.run_dir / "out"


@dataclass
class Plan:
    names: dict                          # role -> container/network name
    subnet: str
    addresses: dict
    files: dict                          # host path -> (text, mode), written before setup
    setup: list                          # argv lists, run in order
    agent_create: list
    start_agent: list
    stop_agent: list
    collect: list | None                 # the collector's `run` (copy mode)
    teardown: list
    vendor: str
    github: github_app.GitHubRunPieces | None = None   # the GitHub and registry walls (no token in it)
    warnings: list = field(default_factory=list)


# --- identities ----------------------------------------------------------------------------------

def id_base(run_id: str) -> int:
    slot = int(hashlib.sha256(run_id.encode()).hexdigest(), 16) % ID_SLOTS
    return ID_BASE + slot * ID_RANGE


def subnet_for(run_id: str) -> str:
    n = int(hashlib.sha256(run_id.encode()).hexdigest(), 16) % 254 + 1
    return f"10.213.{n}.0/24"


def copy_mapping(run_id: str) -> tuple[tuple, tuple, tuple]:
    """(uid_map, gid_map, agent's host owner) of a run: the run's own 65536 ids."""
    base = id_base(run_id)
    mapping = ((0, base, ID_RANGE),)
    return mapping, mapping, (base + AGENT_UID, base + AGENT_GID)


def derive_seccomp(default: dict) -> dict:
    """The engine's default profile, with keyctl, add_key and request_key refused (EPERM): the
    kernel's keyrings are shared across containers by uid and hold other sessions' secrets."""
    profile = json.loads(json.dumps(default))
    rules = []
    for rule in profile.get("syscalls", []):
        if rule.get("action") == "SCMP_ACT_ALLOW":
            rule = {**rule, "names": [n for n in rule.get("names", []) if n not in DENIED_SYSCALLS]}
            if not rule["names"]:
                continue
        rules.append(rule)
    rules.append({"names": list(DENIED_SYSCALLS), "action": "SCMP_ACT_ERRNO", "errnoRet": 1})
    profile["syscalls"] = rules
    return profile


# --- the pieces ----------------------------------------------------------------------------------

HARDENING = ["--security-opt", "no-new-privileges", "--read-only", "--read-only-tmpfs=false", "--cap-drop", "ALL"]
SERVICE_CAPS = ["--cap-add", "SETUID", "--cap-add", "SETGID", "--cap-add", "CHOWN"]
# Explicit limits: the engine's defaults can exceed a host's hard limits (the container then fails
# to start), and nproc counts per host uid, which each run has of its own.
SERVICE_LIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
# The proxy and the gateway sit on the agents' networks and the outside one: they must never route
# a packet between them (a sweep's services are on every run's network at once).
SERVICE_NETWORK = ["--sysctl", "net.ipv4.ip_forward=0"]


def _limits(pids: int) -> list[str]:
    return ["--pids-limit", str(pids), "--ulimit", "nofile=8192:8192", "--ulimit", f"nproc={pids}:{pids}"]


def _tmpfs(target: str, extra: str = "") -> list[str]:
    return ["--tmpfs", f"{target}:rw,nosuid,nodev{extra},notmpcopyup"]


def _bind(source: Path, target: str, read_only: bool = False) -> list[str]:
    return ["--mount", f"type=bind,src={source},dst={target}{',readonly' if read_only else ''}"]


def _networks(names: dict, address: str, outside: bool) -> list[str]:
    return ["--network", f"{names['internal']}:ip={address}", *(["--network", names["outside"]] if outside else [])]


def _identity(host: Host) -> list[str]:
    """Copy mode: uid 1000 of the run's own id range. --mount: the folder's owner, with no user
    namespace (podman with runc cannot map one host uid into a run's range: its storage refuses a
    split mapping), so that the agent's files are the user's."""
    if not host.uid_map:
        return ["--user", f"{host.agent_owner[0]}:{host.agent_owner[1]}"]
    args = ["--user", f"{AGENT_UID}:{AGENT_GID}"]
    for flag, mapping in (("--uidmap", host.uid_map), ("--gidmap", host.gid_map)):
        args += [a for inside, outside, size in mapping for a in (flag, f"{inside}:{outside}:{size}")]
    return args


def _confinement(host: Host) -> list[str]:
    return ["--security-opt", f"seccomp={host.run_dir / 'seccomp.json'}",
            "--sysctl", "net.ipv6.conf.all.disable_ipv6=1", "--sysctl", "net.ipv6.conf.default.disable_ipv6=1"]


def names_for(run_id: str, options: Options) -> dict:
    base = f"agent-sandbox-{run_id}"
    return {"internal": f"{base}-int", "outside": options.outside_network or f"{base}-ext",
            "proxy": f"{base}-proxy", "gateway": f"{base}-gateway", "agent": f"{base}-agent",
            "collector": f"{base}-collect"}


def proxy_files(options: Options, folder: Path) -> dict:
    """GitHub and the package registries are off the proxy's allowlist in every run: they are
    reached through the gateway alone (github_pieces)."""
    squid = folder / "squid"
    allow = gateway_github.proxy_allowlist(proxy_allowlist(options.allow))
    return {
        squid / "squid.conf": (render_squid(allow, agent_subnets=[AGENT_SUPERNET], listen_port=PROXY_PORT), 0o644),
        squid / "agent-sandbox.d" / "00-run.conf": ("# this run adds nothing to the proxy\n", 0o644),
    }


# --gateway-upstream names for GitHub's and the registry's stand-ins (tests only).
GITHUB_UPSTREAMS = ("git", "api", "npm")


def gateway_upstream(options: Options, vendor: str) -> dict | None:
    """The vendor's upstream: a stand-in's (tests), else the one the login names for its details
    (Vertex's location), else the login kind's default (None)."""
    if vendor in options.upstreams:
        return {vendor: options.upstreams[vendor]}
    if vendor == options.vendor:
        found = logins.upstream_for(options.login_kind, options.login_details)
        return {vendor: found} if found else None
    return None


def github_pieces(options: Options, subnet: str, *, repository: str | None = None, gateway_address: str | None = None,
                  vendor: str | None = None) -> github_app.GitHubRunPieces:
    """The gateway's config (the vendor's route, GitHub's and npm's) and what the agent needs to
    reach them. repository: the one the run's token is for (None: the run has no GitHub token and
    reads GitHub anonymously). A sweep's shared gateway has no repository and no run id: no push
    can pass it."""
    vendor = vendor or options.vendor
    ca = "/etc/agent-gateway/upstream-ca.pem" if options.upstream_ca else None
    config = render_gateway_config([vendor], agent_subnets=[subnet],
                                   model_server_tools=options.model_server_tools,
                                   upstreams=gateway_upstream(options, vendor), ca_file=ca,
                                   logins={vendor: options.login_kind} if vendor == options.vendor else None,
                                   token_urls={vendor: options.token_urls[vendor]}
                                   if vendor in options.token_urls else None,
                                   renewed_dir=RENEWED_DIR if options.refreshes else None)
    stand_ins = {name: url for name, url in options.upstreams.items() if name in GITHUB_UPSTREAMS}
    return github_app.run_pieces(repository=repository, with_token=repository is not None, tripwire=options.tripwire,
                                 run_id=options.run_id or "shared", gateway_config_text=config,
                                 gateway_address=gateway_address, gateway_host=GATEWAY_HOST,
                                 allow=proxy_allowlist(options.allow), upstreams=stand_ins or None)


def gateway_files(options: Options, folder: Path, subnet: str, vendor: str | None = None,
                  github: github_app.GitHubRunPieces | None = None) -> dict:
    github = github or github_pieces(options, subnet, vendor=vendor)
    return {folder / "gateway" / "config.json": (github.gateway_config, 0o644)}


def network_commands(options: Options, names: dict, subnet: str) -> tuple[list, list]:
    engine = options.engine
    setup = [[engine, "network", "create", "--internal", "--disable-dns", "--subnet", subnet, names["internal"]]]
    teardown = [[engine, "network", "rm", names["internal"]]]
    if not options.outside_network and not options.shared:
        setup.append([engine, "network", "create",
                      *(["--subnet", options.outside_subnet] if options.outside_subnet else []), names["outside"]])
        teardown.append([engine, "network", "rm", names["outside"]])
    return setup, teardown


def proxy_container(options: Options, folder: Path, name: str, networks: list[str]) -> list[str]:
    """folder: where its config is and its log goes (the run's folder, or a sweep's)."""
    squid = folder / "squid"
    return [options.engine, "create", "--name", name, *networks,
            *HARDENING, *SERVICE_CAPS, *SERVICE_NETWORK, "--pids-limit", "256", *SERVICE_LIMITS, "--memory", "512m",
            *_tmpfs("/run"), *_tmpfs("/var/spool/squid"),
            *_bind(squid / "squid.conf", layout.PROXY_CONFIG, True),
            *_bind(squid / "agent-sandbox.d", layout.PROXY_INCLUDE_DIR, True),
            *_bind(folder / "proxy-log", layout.PROXY_LOG_DIR),
            "--entrypoint", "squid", options.images["proxy"], "-N", "-f", layout.PROXY_CONFIG]


def gateway_container(options: Options, folder: Path, secrets: Path, name: str, networks: list[str]) -> list[str]:
    """folder: where its config is and its state and log go; secrets: the in-memory folder with its key."""
    ca = _bind(options.upstream_ca, "/etc/agent-gateway/upstream-ca.pem", True) if options.upstream_ca else []
    if options.refreshes:  # the refreshed login, left for the launcher on the host's tmpfs
        ca += _bind(secrets.parent / "gateway-renewed", RENEWED_DIR)
    return [options.engine, "create", "--name", name, *networks,
            *HARDENING, *SERVICE_NETWORK, *gateway_github.GATEWAY_CREATE_ARGS,
            "--user", f"{layout.GATEWAY_UID}:{layout.GATEWAY_GID}",
            "--pids-limit", "256", *SERVICE_LIMITS, "--memory", "512m", *_tmpfs("/tmp"),
            *_bind(folder / "gateway" / "config.json", layout.GATEWAY_CONFIG, True),
            *_bind(secrets, layout.GATEWAY_SECRETS_DIR, True),
            *_bind(folder / "gateway-state", layout.GATEWAY_STATE_DIR),
            *_bind(folder / "gateway-log", layout.GATEWAY_LOG_DIR), *ca,
            "--entrypoint", "agent-gateway", options.images["gateway"], "--config", layout.GATEWAY_CONFIG]


# Where a run may push, told to the agent: branches under agent/<run-id>/ (github_policy's namespace).
BRANCHES_ENV = "AGENT_GITHUB_BRANCHES"


def agent_environment_for(options: Options, github: github_app.GitHubRunPieces) -> dict:
    proxy_url = f"http://{PROXY_HOST}:{PROXY_PORT}"
    no_proxy = f"{GATEWAY_HOST},{gateway_github.GIT_HOST},{gateway_github.API_HOST},localhost,127.0.0.1"
    env = {
        "AGENT_PROFILE": options.profile,
        "AGENT_WORKSPACE": layout.WORKSPACE,
        "AGENT_REPORT": f"{REPORT_DIR}/{REPORT_NAME}",
        "HTTPS_PROXY": proxy_url, "HTTP_PROXY": proxy_url, "https_proxy": proxy_url, "http_proxy": proxy_url,
        "ALL_PROXY": proxy_url, "NO_PROXY": no_proxy, "no_proxy": no_proxy,
        **login_container(options).env,
        **github.agent_env,
    }
    if github.policy.repository:
        env[BRANCHES_ENV] = github.policy.ref_namespace.removeprefix("refs/heads/")
    return env


def login_container(options: Options) -> logins.Container:
    """What the login gives the container: placeholders and the gateway's address, never a token."""
    return logins.container_for(options.login_kind, GATEWAY_HOST, options.login_details)


def login_files(options: Options, host: Host) -> dict:
    """container path -> host path of the login's placeholder files (bound read-only)."""
    return {target: host.run_dir / "login-files" / f"{index}" for index, target
            in enumerate(sorted(login_container(options).files))}


def cli_arguments(options: Options) -> list[str]:
    """The login's arguments first (Codex is told the gateway through -c overrides), then the user's."""
    return [*login_container(options).args, *options.cli_args]


def workspace_mounts(options: Options, host: Host) -> list[str]:
    mounts = _bind(host.workspace, layout.WORKSPACE)
    if options.mode == "mount":
        def depth(rel: str) -> tuple:
            return rel.count("/"), rel
        layered = [(rel, "pin") for rel in host.pinned] + [(rel, "ro") for rel in host.protected] + \
                  [(rel, "mask") for rel in host.blocked]
        for rel, kind in sorted(layered, key=lambda item: depth(item[0])):
            target = f"{layout.WORKSPACE}/{rel}"
            if kind == "mask":
                mounts += _bind(host.run_dir / "empty", target, True)
            else:
                mounts += _bind(host.workspace / rel, target, kind == "ro")
    mounts += _bind(host.report_dir, REPORT_DIR)
    for mount in options.mounts:
        mounts += _bind(mount.source, mount.target, True)
    for target, source in login_files(options, host).items():
        mounts += _bind(source, target, True)
    return mounts


def agent_container(options: Options, host: Host, names: dict, addresses: dict,
                    github: github_app.GitHubRunPieces) -> list[str]:
    env = agent_environment_for(options, github)
    hosts = [f"{PROXY_HOST}:{addresses['proxy']}", f"{GATEWAY_HOST}:{addresses['gateway']}", *github.agent_add_hosts]
    return [options.engine, "create", "--name", names["agent"],
            *_networks(names, addresses["agent"], False), *[a for h in hosts for a in ("--add-host", h)],
            *HARDENING, *_confinement(host), *_identity(host),
            *_limits(options.pids), "--memory", options.memory, "--cpus", options.cpus,
            "--stop-timeout", "10", *(["--interactive", "--tty"] if options.interactive else []),
            *_tmpfs("/tmp", ",exec,size=2g"),
            # podman copies the image's home into this one (tmpcopyup): the baked files stay root's.
            "--tmpfs", f"{layout.HOME}:rw,nosuid,nodev,exec,size=2g,mode=0755,U",
            *workspace_mounts(options, host), "--workdir", host.workdir,
            *[a for k, v in sorted(env.items()) for a in ("--env", f"{k}={v}")],
            options.images["agent"], options.cli, *cli_arguments(options)]


# The collector runs in the agent's image, with no network, on the copy the agent left: git may
# meet whatever the agent wrote into .git there, and that is why it runs here and not on the host.
COLLECT_SCRIPT = r"""
set -u
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0 GIT_OPTIONAL_LOCKS=0 HOME=/tmp
g() { git -c core.hooksPath=/dev/null -c core.fsmonitor=false -c core.untrackedCache=false "$@"; }
cd /workspace 2>/dev/null && g rev-parse --git-dir >/dev/null 2>&1 \
  || { echo "agent-run collector: the copy holds no git repository any more" >&2; exit 70; }
head=$(g rev-parse -q --verify 'HEAD^{commit}' 2>/dev/null) || head=
g for-each-ref --format='delete %(refname)' refs/agent-run/ | g update-ref --stdin  # the agent's own, if any
if [ -n "$(g status --porcelain --untracked-files=all --ignore-submodules=all 2>/dev/null | head -c 1)" ]; then
  export GIT_INDEX_FILE=/tmp/collect.index
  if [ -n "$head" ]; then g read-tree "$head"; else g read-tree --empty; fi
  g add --all --ignore-errors -- . >/dev/null || echo "agent-run collector: some files could not be added" >&2
  tree=$(g write-tree) || { echo "agent-run collector: cannot record the uncommitted work" >&2; exit 71; }
  work=$(echo "agent-run: the work the agent left uncommitted" | GIT_AUTHOR_NAME=agent-run GIT_AUTHOR_EMAIL=agent-run@localhost \
    GIT_COMMITTER_NAME=agent-run GIT_COMMITTER_EMAIL=agent-run@localhost g commit-tree "$tree" ${head:+-p "$head"}) || exit 71
  g update-ref refs/agent-run/uncommitted "$work" || exit 71
  unset GIT_INDEX_FILE
fi
[ -z "$head" ] || g update-ref refs/agent-run/HEAD "$head" || exit 71
set -- --branches --tags
for ref in refs/agent-run/HEAD refs/agent-run/uncommitted; do
  g rev-parse -q --verify "$ref" >/dev/null && set -- "$@" "$ref"
done
if g cat-file -e "$AGENT_RUN_START^{commit}" 2>/dev/null; then
  [ -n "$(g rev-list -n 1 "$@" --not "$AGENT_RUN_START")" ] || exit 3
  set -- "$@" --not "$AGENT_RUN_START"
fi
g bundle create -q /var/lib/agent-run/out/result.bundle "$@" || exit 72
"""


def collector_container(options: Options, host: Host, names: dict) -> list[str]:
    return [options.engine, "run", "--rm", "--name", names["collector"], "--network", "none",
            *HARDENING, *_confinement(host), *_identity(host),
            *_limits(256), "--memory", "1g", *_tmpfs("/tmp", ",size=1g"),
            *_bind(host.workspace, layout.WORKSPACE), *_bind(host.out_dir, OUT_DIR),
            "--env", f"AGENT_RUN_START={host.start or '<the starting commit>'}", "--workdir", layout.WORKSPACE,
            "--entrypoint", "/bin/sh", options.images["agent"], "-c", COLLECT_SCRIPT.strip()]


def shared_services(options: Options, names: dict, addresses: dict, network_setup: list,
                    network_teardown: list) -> tuple[list, list]:
    """A sweep's run: its own internal network, joined by the sweep's proxy and by its vendor's
    gateway (at the usual addresses), and left by them again before the network goes."""
    engine, shared = options.engine, options.shared
    services = (("proxy", shared.proxy), ("gateway", shared.gateways[options.vendor]))
    setup = [*network_setup, *[[engine, "network", "connect", "--ip", addresses[role], names["internal"], container]
                               for role, container in services]]
    teardown = [*[[engine, "rm", "-f", "-t", "1", "-v", c] for c in (names["agent"], names["collector"])],
                *[[engine, "network", "disconnect", "-f", names["internal"], container] for _, container in services],
                *network_teardown]
    return setup, teardown


def build_plan(options: Options, host: Host) -> Plan:
    names = names_for(options.run_id, options)
    subnet = host.subnet or subnet_for(options.run_id)
    prefix = subnet.rsplit(".", 1)[0]
    addresses = {"proxy": f"{prefix}.2", "gateway": f"{prefix}.3", "agent": f"{prefix}.10"}
    if logins.is_api_key(options.login_kind) and not any(s.vendor == options.vendor for s in options.key_sources):
        raise RunError(f"{options.cli} needs {VENDOR_TITLES[options.vendor]} key: pass --key-file "
                       f"{options.vendor}=PATH or --key-command {options.vendor}='COMMAND', or log in with "
                       f"{options.cli} on this machine (--login; docs/logins.md)")
    github = github_pieces(options, subnet, repository=host.github_repository, gateway_address=addresses["gateway"])
    files = {host.run_dir / "seccomp.json": (json.dumps(derive_seccomp(host.engine_seccomp or {}), indent=1), 0o644)}
    placeholders = login_container(options).files
    for target, source in login_files(options, host).items():
        files[source] = (placeholders[target], 0o444)
    if not options.shared:
        files.update({**proxy_files(options, host.run_dir), **gateway_files(options, host.run_dir, subnet, github=github)})
    if options.mode == "mount":
        files[host.run_dir / "empty"] = ("", 0o444)
    network_setup, network_teardown = network_commands(options, names, subnet)
    engine = options.engine
    if options.shared:
        setup, teardown = shared_services(options, names, addresses, network_setup, network_teardown)
    else:
        setup = [*network_setup,
                 proxy_container(options, host.run_dir, names["proxy"], _networks(names, addresses["proxy"], True)),
                 gateway_container(options, host.run_dir, host.gateway_secrets, names["gateway"],
                                   _networks(names, addresses["gateway"], True)),
                 [engine, "start", names["proxy"]], [engine, "start", names["gateway"]]]
        containers = [names["agent"], names["collector"], names["gateway"], names["proxy"]]
        # One command each: a container that was never created must not keep the others alive.
        teardown = [*[[engine, "rm", "-f", "-t", "1", "-v", c] for c in containers], *network_teardown]
    return Plan(names=names, subnet=subnet, addresses=addresses, github=github, files=files, setup=setup,
                agent_create=agent_container(options, host, names, addresses, github),
                start_agent=[engine, "start", "--attach", *(["--interactive"] if options.interactive else []),
                             names["agent"]],
                stop_agent=[engine, "stop", "-t", "5", names["agent"]],
                collect=collector_container(options, host, names) if options.mode == "copy" else None,
                teardown=teardown, vendor=options.vendor)


def github_lines(plan: Plan, options: Options, host: Host) -> list[str]:
    """What --print says about GitHub and the registries: where the token comes from and goes, and
    what the gateway lets through."""
    policy = plan.github.policy
    routes = f"github.com and api.github.com through the gateway only ({gateway_github.GIT_HOST}, " \
             f"{gateway_github.API_HOST} -> {plan.addresses['gateway']}:{gateway_github.GITHUB_PORT}); " \
             f"npm's registry read-only (GET/HEAD) through {GATEWAY_HOST}:{gateway_github.REGISTRY_PORTS['npm']}"
    if not policy.repository:
        return [f"GitHub: no credential: {routes}; GitHub is read anonymously and every write is refused"]
    return [f"GitHub: {options.github.describe(policy.repository)}",
            f"write {host.gateway_secrets}/{gateway_github.GITHUB_SECRET} (0400, uid {layout.GATEWAY_UID}): the "
            f"token, beside the key; never in the agent's container",
            f"{routes}; pushes only to {policy.ref_namespace.removeprefix('refs/heads/')}/... in {policy.repository} "
            f"(${BRANCHES_ENV} tells the agent); the API's allowlist (docs/github.md)"]


def format_plan(plan: Plan, options: Options, host: Host, copy_steps: list[str]) -> str:
    def q(argv):
        return shlex.join(argv)
    lines = [f"# agent-run {options.cli}: profile {options.profile}, {options.mode} mode, run {options.run_id}",
             f"# run folder {host.run_dir} (0700, on disk): configs, logs, the audit"
             + (", the copy" if options.mode == "copy" else ""),
             f"# in-memory folder {host.memory_dir} (0700, tmpfs): the gateway's key and GitHub token, the run report"]
    lines += [f"# {step}" for step in copy_steps]
    for warning in plan.warnings:
        lines.append(f"# WARNING: {warning}")
    for path, (_, mode) in plan.files.items():
        lines.append(f"# write {path} (mode {mode:04o})")
    if not options.shared:
        origin = options.login_found.origin if options.login_found else \
            ", ".join(s.describe() for s in options.key_sources if s.vendor == plan.vendor)
        what = "the real key" if logins.is_api_key(options.login_kind) else f"the {options.login_kind} login"
        lines.append(f"# write {host.gateway_secrets}/{plan.vendor} (0400, uid {layout.GATEWAY_UID}): {what}, "
                     f"read from {origin}")
    lines += [f"# {line}" for line in github_lines(plan, options, host)]
    lines += [q(a) for a in plan.setup]
    if not options.shared:
        lines.append(f"# wait until Squid accepts connections and the gateway has written {layout.GATEWAY_READY}; "
                     f"then delete {host.gateway_secrets}")
    lines.append(q(plan.agent_create))
    lines.append(q(plan.start_agent))
    lines.append(f"# after {options.timeout} s: {q(plan.stop_agent)} (exit {EXIT_TIMEOUT}); on SIGINT, SIGTERM "
                 f"or SIGHUP: the teardown below, then the audit; if agent-run is killed outright, its guardian "
                 f"(started first, in a session of its own) runs the same teardown")
    lines += [q(a) for a in plan.teardown]
    if plan.collect:
        lines.append("# then, whatever ended the run, the collector on the copy:")
        lines.append(q(plan.collect))
        lines.append(f"# copy {host.out_dir}/{BUNDLE_NAME} out (no link, regular file), git bundle verify, "
                     f"git fetch it (fsck) into refs/agent/{options.run_id}/...")
    logs = (f"the lines of the sweep's proxy and gateway logs from {plan.addresses['agent']} while the run lasted"
            if options.shared else "the proxy log, the gateway log")
    lines.append(f"# delete {host.memory_dir}; audit: {host.run_dir}/audit.json from {logs} and the run report")
    return "\n".join(lines) + "\n"
