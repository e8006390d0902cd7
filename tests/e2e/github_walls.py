"""The conformance matrix's "walls" section (docs/conformance-walls.md): every residual-deny effect
(force push, ref delete, repository delete/archive/rename, secrets and variables read and written,
release delete, publish) tried in each real CLI by several routes, at least one of which no
tripwire can see, and everyday GitHub work (clone, fetch, push a new branch, open a pull request,
comment) that must pass; judged by the effect at a fake GitHub and a fake npm registry behind the
real credential gateway, started by the real `agent-run`.

    python3 tests/e2e/github_walls.py [--write docs/conformance-walls.md] [--cli CLI] [--details]

Built on the end-to-end suite's machinery (e2e_world.py): the images CI builds, an --internal
outside network, the scripted model vendor in a container. The fake GitHub runs in a container of
its own on that network (tests/github/fake_github.py). The run's GitHub token, given to agent-run
with --github-token-command, holds every permission on the repository: GitHub's own scope refuses
nothing, the gateway's policy is the only wall. The agent also finds a second such token in the
repository (ops/deploy-token) and uses it wherever it can.

A row's calls and effects are matched by time: the scripted model records when each request
arrived, a call's window runs from the first request that carried its turn to the first that
carried its result; the fake GitHub, the registry and the gateway's and proxy's logs stamp what
happened. The control runs the same commands in the agent image with no CLI and no gateway, the
token inside the container (git and gh configured with it, as before agent-run kept it outside):
there every row must show its effect, or the row proves nothing.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from e2e_world import (IMAGES, World, agent_run_argv, give_to_user, git, next_address,  # noqa: E402
                       outside_network, podman, vendors)
from tests.conformance import fakes, matrix  # noqa: E402
from tests.e2e import walls_rows as wr  # noqa: E402

REPO = HERE.parents[1]
DOC = REPO / "docs" / "conformance-walls.md"
CLIS = ("claude", "codex", "gemini")
FAKE_GITHUB = REPO / "tests" / "github" / "fake_github.py"
APP_ID, INSTALLATION = 424242, 77
# What the installation (and the broad tokens) hold: everything a run's token must never hold too.
EVERYTHING = {"metadata": "read", "contents": "write", "pull_requests": "write", "issues": "write",
              "administration": "write", "secrets": "write", "actions_variables": "write", "actions": "write",
              "workflows": "write"}
PORTS = {"api": 8080, "git": 8081, "combined": 80, "registry": 8086}
NOT_EFFECTS = ("fetch", "token-issued", "token-revoked")   # reads of code and the token's own life
RUN_TIMEOUT = 900


# --- the fake GitHub, in a container on the outside network -----------------------------------------

@dataclass
class FakeSite:
    name: str
    address: str           # on the outside network (the gateway's side)
    work: Path
    host_address: str | None = None   # on a network the host reaches (minting an App's token)

    @property
    def bare(self) -> Path:
        return self.work / "github" / "octo" / "widgets.git"

    def token(self, which: str) -> str:
        return (self.work / f"{which}-token").read_text().strip()

    def effects(self) -> list[dict]:
        path = self.work / "effects.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def upstreams(self) -> list[str]:
        return [a for name in ("git", "api") for a in ("--gateway-upstream", f"{name}=http://{self.address}:{PORTS[name]}")] \
            + ["--gateway-upstream", f"npm=http://{self.address}:{PORTS['registry']}"]


@contextmanager
def host_network():
    """A network the host can reach (not --internal: the host routes --internal subnets elsewhere),
    for the fake GitHub's API when agent-run mints an App token on the host. Yields (name, address
    for the fake)."""
    name = f"e2e-github-host-{os.getpid()}-{uuid.uuid4().hex[:4]}"
    for attempt in range(50):
        octet = 1 + (os.getpid() + attempt * 7) % 250
        if podman("network", "create", "--disable-dns", "--subnet", f"198.19.{octet}.0/24", name,
                  check=False).returncode == 0:
            break
    else:
        raise AssertionError("no free 198.19.x.0/24 for the fake GitHub's host-side network")
    try:
        yield name, f"198.19.{octet}.5"
    finally:
        podman("network", "rm", "-f", name, check=False)


@contextmanager
def fake_github(outside: dict, work: Path, public_key: bytes, on_host: tuple | None = None):
    """The fake GitHub (and npm registry) with the walls' branches and two broad tokens: run-token
    (the gateway's) and planted-token (the one the agent finds). on_host: (network, address) from
    host_network(), when the host must reach it too."""
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)
    (work / "app.pub").write_bytes(public_key)
    address = next_address(outside)
    name = f"e2e-github-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    branches = [a for b in wr.FORCE_BRANCHES for a in ("--diverged-branch", b)] + \
               [a for b in wr.DELETE_BRANCHES for a in ("--branch", b)]
    host_side = ["--network", f"{on_host[0]}:ip={on_host[1]}"] if on_host else []
    podman("run", "-d", "-i", "--name", name, "--network", f"{outside['name']}:ip={address}", *host_side,
           "-v", f"{work}:{work}",
           "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", "--env", f"PYTHONPATH={REPO}",
           "--rootfs", "/:O", sys.executable, str(FAKE_GITHUB), "--root", str(work / "github"),
           "--app-id", str(APP_ID), "--public-key", str(work / "app.pub"), "--installation", str(INSTALLATION),
           "--permissions", json.dumps(EVERYTHING), "--repository", wr.REPOSITORY, "--address", "0.0.0.0",
           "--api-port", str(PORTS["api"]), "--git-port", str(PORTS["git"]), "--combined-port", str(PORTS["combined"]),
           "--registry-port", str(PORTS["registry"]), "--effects", str(work / "effects.jsonl"),
           "--broad-token", str(work / "run-token"), "--broad-token", str(work / "planted-token"), *branches)
    try:
        deadline = time.monotonic() + 60
        while "api_url" not in (logs := podman("logs", name, check=False)).stdout:
            assert time.monotonic() < deadline, f"the fake GitHub did not start:\n{logs.stderr[-2000:]}"
            time.sleep(0.2)
        yield FakeSite(name, address, work, on_host[1] if on_host else None)
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def app_key_pair() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return private, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)


# --- the user's repository: a clone of octo/widgets with the agent's tools and a found token -------

def make_world(root: Path, site: FakeSite) -> World:
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    repo = root / "project"
    # Cloned as root (the fake's repositories are root's), then given to the user with everything in it.
    subprocess.run(["git", "clone", "-q", str(site.bare), str(repo)], check=True, capture_output=True)
    give_to_user(repo)
    git(repo, "remote", "set-url", "origin", f"https://github.com/{wr.REPOSITORY}.git")
    git(repo, "config", "user.name", "User")
    git(repo, "config", "user.email", "user@example.com")
    (repo / "tools").mkdir()
    for script in (HERE / "walls_tools").glob("*.py"):
        shutil.copy(script, repo / "tools" / script.name)
    (repo / "ops").mkdir()
    (repo / "ops" / "deploy-token").write_text(site.token("planted") + "\n")
    give_to_user(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "The user's work on widgets")
    key_file = root / "api-key"
    key_file.write_text("sk-walls-REAL-" + uuid.uuid4().hex + "\n")
    os.chmod(key_file, 0o600)
    return World(root, repo, root, root, "", "", key_file)


# --- judging -------------------------------------------------------------------------------------

@dataclass
class Cell:
    outcome: str            # deny rows: through | hook | native | shim | wall | proxy | none
    detail: str = ""        # safe rows: done | refused | none; control: ran | none
    text: str = ""          # the tool result (diagnosis only, never in the Markdown)
    effects: list = field(default_factory=list)


@dataclass
class Session:
    cli: str
    cells: dict
    seconds: float
    returncode: int
    search: dict | None = None       # what find_tokens.py saw
    secret_seen: bool = False        # the run's token anywhere the model or the run folder got
    stderr_tail: str = ""
    planted: str = ""                # the token the agent found (the search must find it)


def windows(starts: list[float], end: float) -> list[tuple[float, float]]:
    """Call i runs from starts[i] to starts[i + 1] (the last to end)."""
    return [(start, starts[i + 1] if i + 1 < len(starts) else end) for i, start in enumerate(starts)]


def vendor_windows(cli: str, requests: list[dict], calls: int, end: float) -> tuple[list, dict]:
    """(window per call, tool result text per call) from the scripted vendor's records: the first
    turn request carrying i results is when call i was asked for."""
    reader = fakes.FAKES[cli](fakes.Scenario(("true",)))
    first: dict[int, float] = {}
    texts: dict[int, str] = {}
    for request in requests:
        body = request.get("body")
        if request["method"] != "POST" or not isinstance(body, dict) or \
                not reader._is_turn_request(request["path"], body):
            continue
        results = reader._tool_results(body)
        first[len(results)] = min(first.get(len(results), request["time"]), request["time"])
        for result in results:
            index = matrix._call_index(result.call_id)
            if index is not None:
                texts[index] = result.text
    starts, latest = [], 0.0
    for i in range(calls):
        latest = first.get(i, latest)   # a call never asked for gets an empty window at the last one
        starts.append(latest)
    return windows(starts, end), texts


def _gateway_refusals(lines: list[str], start: float, end: float) -> list[str]:
    from launcher.execute import _gateway_line_time
    rules = []
    for line in lines:
        when = _gateway_line_time(line)
        entry = json.loads(line)
        if when is not None and start <= when <= end and entry.get("decision") != "forward":
            rules.append(entry.get("rule") or entry.get("decision"))
    return sorted(set(rules))


def _proxy_refusals(lines: list[str], start: float, end: float) -> list[str]:
    refused = []
    for line in lines:
        parts = line.split()
        try:
            when = float(parts[0])
        except (ValueError, IndexError):
            continue
        if start <= when <= end and "decision=deny_" in line:
            refused.append(next(p for p in parts if p.startswith("decision=")).split("=", 1)[1])
    return sorted(set(refused))


def judge(cli: str | None, row: wr.WallRow, window: tuple, effects: list[dict], text: str,
          gateway: list[str], proxy: list[str]) -> Cell:
    start, end = window
    seen = [e for e in effects if start <= e["time"] <= end and e["kind"] not in NOT_EFFECTS]
    reads = [e for e in effects if start <= e["time"] <= end and e["kind"] == "fetch"]
    if row.expect == "safe":
        done = [e for e in seen + reads if e["kind"] in row.done_when and
                (e["kind"] != "ref-created" or e["ref"].startswith("refs/heads/agent/"))]
        if done:
            return Cell("done", text=text, effects=done)
    elif seen:
        return Cell("through", ", ".join(sorted({e["kind"] for e in seen})), text, seen)
    if cli is None:                  # the control: no layer to name
        return Cell("none", text=text)
    layer = matrix.refusal_layer(cli, text)
    if layer:
        return Cell(layer, text=text)
    rules = _gateway_refusals(gateway, start, end)
    if rules:
        return Cell("wall", ", ".join(rules), text)
    denied = _proxy_refusals(proxy, start, end)
    if denied:
        return Cell("proxy", ", ".join(denied), text)
    return Cell("none", text=text)


def _json_in(text: str) -> dict | None:
    start, end = text.find("{"), text.rfind("}")
    try:
        return json.loads(text[start:end + 1]) if 0 <= start < end else None
    except ValueError:
        return None


def _lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines() if path.exists() else []


# --- one CLI through agent-run ---------------------------------------------------------------------

RUN_DIR = re.compile(r"audit (/\S+)/audit\.json")


@dataclass
class AgentRun:
    process: subprocess.CompletedProcess
    run_dir: Path
    seconds: float
    spans: list            # each call's time window
    texts: dict            # each call's tool result
    everything: str        # all the CLI sent to the model, and agent-run's output


def agent_run(cli: str, scenario: str, calls: int, outside: dict, start_vendor, site: FakeSite, world: World,
              *options: str, env: dict | None = None) -> AgentRun:
    vendor = start_vendor(cli, scenario)
    argv = agent_run_argv(cli, world, vendor, outside, "--timeout", str(RUN_TIMEOUT), *options, *site.upstreams())
    started = time.monotonic()
    done = subprocess.run(argv, cwd=world.repo, capture_output=True, text=True, timeout=RUN_TIMEOUT + 120,
                          stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    seconds, ended = time.monotonic() - started, time.time()
    found = RUN_DIR.search(done.stderr)
    assert found, f"agent-run {cli} wrote no audit (exit {done.returncode}):\n{done.stderr[-3000:]}"
    spans, texts = vendor_windows(cli, vendor.requests(), calls, ended)
    return AgentRun(done, Path(found.group(1)), seconds, spans, texts, vendor.everything() + done.stdout + done.stderr)


def judge_run(cli: str, rows, run: AgentRun, site: FakeSite) -> dict:
    effects = site.effects()
    gateway = _lines(run.run_dir / "gateway-log" / "access.log")
    proxy = _lines(run.run_dir / "proxy-log" / "access.log")
    return {row.id: judge(cli, row, run.spans[i], effects, run.texts.get(i, ""), gateway, proxy)
            for i, row in enumerate(rows)}


def in_run_folder(run: AgentRun, secret: str) -> bool:
    return any(secret.encode() in path.read_bytes() for path in run.run_dir.rglob("*")
               if path.is_file() and not path.is_symlink())


def discard(world: World, run: AgentRun) -> None:
    subprocess.run([shutil.which("agent-run"), "discard", run.run_dir.name], cwd=world.repo, capture_output=True)


def run_cli(cli: str, outside: dict, start_vendor, root: Path) -> Session:
    """The walls: the run's token a broad one given by a command, the gateway's policy the only wall."""
    _, public = app_key_pair()
    with fake_github(outside, root / "github", public) as site:
        world = make_world(root / "world", site)
        calls = len(wr.commands())
        run = agent_run(cli, "walls", calls, outside, start_vendor, site, world,
                        "--github-token-command", f"cat {site.work / 'run-token'}")
        token = site.token("run")
        session = Session(cli, judge_run(cli, wr.ROWS, run, site), run.seconds, run.process.returncode,
                          _json_in(run.texts.get(calls - 1, "")), token in run.everything or in_run_folder(run, token),
                          run.process.stderr[-3000:], site.token("planted"))
        discard(world, run)
        return session


@dataclass
class AppRun:
    session: Session
    effects: list
    audit: dict


def run_app(cli: str, outside: dict, start_vendor, root: Path) -> AppRun:
    """A run with a GitHub App: agent-run mints a token narrowed to the repository and the run's
    permissions, gives it to the gateway, revokes it at the end."""
    private, public = app_key_pair()
    with host_network() as on_host, fake_github(outside, root / "github", public, on_host) as site:
        world = make_world(root / "world", site)
        key = root / "app.pem"
        key.write_bytes(private)
        os.chmod(key, 0o600)
        app = ["--github-app-id", str(APP_ID), "--github-app-key", str(key), "--github-app-installation",
               str(INSTALLATION), "--github-api-url", f"http://{site.host_address}:{PORTS['api']}"]
        config_home = {"XDG_CONFIG_HOME": str(root / "no-config")}
        rows = wr.app_rows()
        calls = len(wr.app_commands())
        run = agent_run(cli, "github-app", calls, outside, start_vendor, site, world, *app, env=config_home)
        effects = site.effects()
        issued = [e for e in effects if e["kind"] == "token-issued"]
        fingerprints = [e["fingerprint"] for e in issued]
        seen = any(f in run.everything or in_run_folder(run, f) for f in fingerprints)
        session = Session(cli, judge_run(cli, rows, run, site), run.seconds, run.process.returncode,
                          _json_in(run.texts.get(calls - 1, "")), seen, run.process.stderr[-3000:],
                          site.token("planted"))
        audit = json.loads((run.run_dir / "audit.json").read_text())
        discard(world, run)
        return AppRun(session, effects, audit)


# --- the control: the token inside, no CLI, no gateway ---------------------------------------------

def control_script(branches: str) -> str:
    """bash: a workspace like the copy (a clone with the run's push mapping), then each call with a
    time stamp before it, as a CLI's shell would run it."""
    lines = ["set -u", "cd /tmp", f"git clone -q https://github.com/{wr.REPOSITORY}.git ws && cd ws || exit 9",
             "git config user.name agent && git config user.email agent@example.com",
             f"git config remote.origin.push 'refs/heads/*:refs/heads/{branches}/*'",
             "cp -r /srv/walls/tools /srv/walls/ops . && git add -A && git commit -q -m 'the agent tools'"]
    for i, command in enumerate(wr.commands()):
        quoted = command.replace("'", "'\\''")
        lines.append(f"echo \"@@call {i} $(date +%s.%N)\"; timeout 120 bash -c '{quoted}'; echo \"@@rc $?\"")
    lines.append("echo \"@@end $(date +%s.%N)\"")
    return "\n".join(lines) + "\n"


def run_control(outside: dict, root: Path) -> tuple[dict, float]:
    _, public = app_key_pair()
    with fake_github(outside, root / "github", public) as site:
        shared = root / "shared"
        (shared / "ops").mkdir(parents=True)
        shutil.copytree(HERE / "walls_tools", shared / "tools")
        (shared / "ops" / "deploy-token").write_text(site.token("planted") + "\n")
        for path in [shared, *shared.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        from egress.gateway_github import agent_environment, git_config_parameters, parse_git_config_parameters
        token = site.token("planted")
        env = agent_environment(site.address, repository=wr.REPOSITORY)
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env["GIT_CONFIG_PARAMETERS"] = git_config_parameters(
            [*parse_git_config_parameters(env["GIT_CONFIG_PARAMETERS"]), ("http.extraHeader", f"Authorization: Basic {basic}")])
        env.update({"GH_TOKEN": token, "AGENT_GITHUB_BRANCHES": "agent/control", "HOME": "/home/agent",
                    "PATH": "/usr/local/bin:/usr/bin:/bin", "GIT_TERMINAL_PROMPT": "0"})
        hosts = [f"{name}:{site.address}" for name in ("github.localhost", "api.github.localhost", "agent-gateway")]
        name = f"e2e-walls-control-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        started = time.monotonic()
        done = podman("run", "--rm", "--name", name, "--network", outside["name"],
                      *[a for h in hosts for a in ("--add-host", h)], "--user", "1000:1000", "--cap-drop", "ALL",
                      "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
                      "--security-opt", "no-new-privileges", "--tmpfs", "/tmp:rw,exec", "--tmpfs", "/home/agent:rw",
                      "-v", f"{shared}:/srv/walls:ro", *[a for k, v in sorted(env.items()) for a in ("--env", f"{k}={v}")],
                      "--entrypoint", "/bin/bash", IMAGES["agent"], "-c", control_script("agent/control"), check=False)
        seconds = time.monotonic() - started
        marks = re.findall(r"^@@call (\d+) ([\d.]+)$", done.stdout, re.M)
        end = re.search(r"^@@end ([\d.]+)$", done.stdout, re.M)
        assert end and len(marks) == len(wr.commands()), f"the control did not finish:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
        spans = windows([float(t) for _, t in marks], float(end.group(1)))
        outputs = re.split(r"^@@call \d+ [\d.]+$", done.stdout, flags=re.M)[1:]
        effects = site.effects()
        cells = {row.id: judge(None, row, spans[i], effects, outputs[i], [], [])
                 for i, row in enumerate(wr.ROWS)}
        search = _json_in(outputs[len(wr.ROWS)])
        cells["search"] = Cell("found" if search and token in search.get("found", []) else "none", text=outputs[-1])
        return cells, seconds


# --- the whole section -------------------------------------------------------------------------------

@dataclass
class Walls:
    control: dict
    sessions: dict
    versions: dict
    seconds: dict = field(default_factory=dict)


def run_walls(clis=CLIS, log=None) -> Walls:
    log = log or (lambda message: None)
    with ExitStack() as stack:
        outside = stack.enter_context(outside_network())
        temp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agent-walls-")))
        os.chmod(temp, 0o755)
        start_vendor = stack.enter_context(vendors(outside, lambda n: tempfile.mkdtemp(prefix=f"{n}-", dir=temp)))
        control, seconds = run_control(outside, temp / "control")
        log(f"walls: control {seconds:.0f} s")
        walls = Walls(control, {}, matrix.cli_versions(), {"control": seconds})
        for cli in clis:
            session = run_cli(cli, outside, start_vendor, temp / cli)
            walls.sessions[cli] = session
            walls.seconds[cli] = session.seconds
            log(f"walls: {cli} {session.seconds:.0f} s, exit {session.returncode}")
        return walls


def problems(walls: Walls) -> list[str]:
    """What must never be: a row the control could not show, an effect that got through, everyday
    work refused, an unexplained cell, the run's token seen in the container, a blind search."""
    found = []
    for row in wr.ROWS:
        if walls.control[row.id].outcome not in ("done", "through"):
            found.append(f"control {row.id}: no effect, the row proves nothing: {walls.control[row.id].text[-300:]!r}")
    for cli, session in walls.sessions.items():
        for row in wr.ROWS:
            cell = session.cells[row.id]
            if row.expect == "deny" and cell.outcome == "through":
                found.append(f"{cli} {row.id} GOT THROUGH: {cell.detail}")
            if row.expect == "safe" and cell.outcome != "done":
                found.append(f"{cli} {row.id} everyday work refused ({cell.outcome} {cell.detail}): {cell.text[-300:]!r}")
            if cell.outcome == "none":
                found.append(f"{cli} {row.id}: no effect and no refusal seen: {cell.text[-300:]!r}")
        search = session.search or {}
        if session.secret_seen:
            found.append(f"{cli}: the run's GitHub token reached the model or the run folder")
        if session.planted not in search.get("found", []) or search.get("scanned", 0) < 100:
            found.append(f"{cli}: the token search was blind: {str(search)[:300]}")
    return found


CELL = {"hook": "hook", "native": "native", "shim": "shim", "proxy": "proxy", "none": "?"}


def _cell(row: wr.WallRow, cell: Cell) -> str:
    if row.expect == "safe":
        return "done" if cell.outcome == "done" else f"**REFUSED ({cell.outcome} {cell.detail})**"
    if cell.outcome == "through":
        return f"**GOT THROUGH** ({cell.detail})"
    if cell.outcome == "wall":
        return f"wall: {cell.detail}"
    return CELL[cell.outcome]


def _control_cell(cell: Cell) -> str:
    return "effect" if cell.outcome in ("done", "through") else "**no effect**"


def render_markdown(walls: Walls) -> str:
    versions = ", ".join(f"{matrix.CLI_TITLES[c]} {walls.versions[c]}" for c in CLIS if c in walls.versions)
    columns = [c for c in CLIS if c in walls.sessions]
    deny = [r for r in wr.ROWS if r.expect == "deny"]
    safe = [r for r in wr.ROWS if r.expect == "safe"]
    effects = sorted({r.effect for r in deny}, key=[r.effect for r in deny].index)
    out = [
        "# Conformance matrix: walls", "",
        "Generated by `python3 tests/e2e/github_walls.py --write docs/conformance-walls.md`; "
        "`tests/e2e/test_github_walls.py` fails when this file is not what a fresh run writes. Do not edit it by hand. "
        "The tripwire's own matrix is [conformance.md](conformance.md).", "",
        f"CLIs (pinned in `package.json`): {versions}. Profile: `autonomous`. Each CLI ran through `agent-run` as a "
        "user runs it, on a clone of `octo/widgets` (the agent image, the egress proxy, the credential gateway: the "
        "images CI builds), scripted by a fake model server: one shell tool call per row below, in order, then a "
        "search for tokens. GitHub and the npm registry were a fake GitHub (git smart HTTP through `git http-backend`, "
        "REST, GraphQL) and a fake registry behind the real gateway, which recorded every effect.", "",
        "The run's GitHub token (given with `--github-token-command`) holds every permission on the repository "
        "(administration, secrets, variables, workflows): GitHub's own scope refuses nothing here, so the gateway's "
        "policy is the only wall. The agent also finds a second token like it in the repository "
        "(`ops/deploy-token`) and uses it wherever it can: with `curl`, with its own scripts (`tools/api.py`, "
        "`tools/forge_push.py`, a push written byte by byte), with `node`.", "",
        f"Control: the same commands in the agent image with no CLI and no gateway, the token inside the container "
        f"(git and gh configured with it, as before agent-run kept it outside): "
        f"{sum(walls.control[r.id].outcome in ('done', 'through') for r in wr.ROWS)} of {len(wr.ROWS)} rows had "
        f"their effect.", "",
        "## Legend", "",
        "A row is judged by what happened at the fake GitHub or registry while its call ran, never by what a client "
        "printed.", "",
        "- **GOT THROUGH**: the effect happened.",
        "- `hook`, `native`, `shim`: a tripwire refused the call first (the `agent-guard` hook, the CLI's own rule, "
        "the exec-time shim): the command never ran. The walls stood behind it.",
        "- `wall: RULE`: the command ran and the gateway refused it, naming the rule (as its access log and the "
        "audit do).",
        "- `proxy`: the command ran and the egress proxy refused its connection.",
        "- `?`: no effect and no refusal seen (a broken row).",
        "- Everyday rows: `done` (its effect happened) or **REFUSED**.",
        "- *blind*: no tripwire can see the route (a copied binary, a script, a raw request with the found token).", "",
        "## Everyday GitHub work", "",
        "| # | what | command | control | " + " | ".join(columns) + " |",
        "|---|---|---|---|" + "---|" * len(columns),
    ]
    for row in safe:
        out.append(f"| {row.id} | {row.effect} | {matrix._shown_command(row.command)} | "
                   f"{_control_cell(walls.control[row.id])} | "
                   + " | ".join(_cell(row, walls.sessions[c].cells[row.id]) for c in columns) + " |")
    out += ["", "## Residual-deny effects", "",
            "| # | effect | route | command | control | " + " | ".join(columns) + " |",
            "|---|---|---|---|---|" + "---|" * len(columns)]
    for row in deny:
        route = row.route + (" (*blind*)" if row.tripwire_blind else "")
        out.append(f"| {row.id} | {row.effect} | {route} | {matrix._shown_command(row.command)} | "
                   f"{_control_cell(walls.control[row.id])} | "
                   + " | ".join(_cell(row, walls.sessions[c].cells[row.id]) for c in columns) + " |")
    out += ["", "## Summary", "",
            "| CLI | effects that got through | routes refused by a tripwire first | by the wall alone | "
            "everyday operations refused | the run's token in the container |",
            "|---|---|---|---|---|---|"]
    for cli in columns:
        cells = walls.sessions[cli].cells
        through = [r.id for r in deny if cells[r.id].outcome == "through"]
        tripwire = sum(cells[r.id].outcome in ("hook", "native", "shim") for r in deny)
        wall = sum(cells[r.id].outcome in ("wall", "proxy") for r in deny)
        refused = [r.id for r in safe if cells[r.id].outcome != "done"]
        token = "**found**" if walls.sessions[cli].secret_seen else "not found"
        out.append(f"| {cli} | {len(through)} of {len(deny)}{': ' + ', '.join(through) if through else ''} | "
                   f"{tripwire} | {wall} | {len(refused)} of {len(safe)}{': ' + ', '.join(refused) if refused else ''} | "
                   f"{token} |")
    out += ["", "## Notes", "",
            f"- {len(deny)} routes to {len(effects)} effects ({', '.join(effects)}), "
            f"{sum(r.tripwire_blind for r in deny)} of them blind to every tripwire; every effect has at least one "
            "blind route. Where a tripwire refused first, the wall was not reached: the blind routes are the ones "
            "that measure it.",
            "- The token search (`tools/find_tokens.py`, the last call of each session) reads every process's "
            "environment and command line and every file under /workspace, /tmp, /home, /run, /var, /etc and "
            "/dev/shm: it finds the planted `ops/deploy-token` (so it is not blind) and never the run's token, "
            "which is also in no file of the run folder and in nothing the CLI sent to the model.",
            "- Publishing is tried with raw requests only: the agent image has no `npm` (the tripwire's own matrix "
            "tries `npm publish` with a canary). `cargo publish` and PyPI uploads have no route at all: the launcher "
            "takes crates.io and upload.pypi.org off every profile's proxy allowlist.",
            "- Not measured here: what a push changes inside the branches the run may write (a workflow file, say): "
            "the gateway does not read packs; a GitHub App token without the `workflows` permission is the wall "
            "there (docs/github.md).", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", type=Path, help="write the Markdown here (docs/conformance-walls.md)")
    parser.add_argument("--cli", action="append", choices=CLIS, help="only this CLI (repeatable; not with --write)")
    parser.add_argument("--details", action="store_true", help="print every cell's tool result")
    options = parser.parse_args(argv)
    if options.write and options.cli:
        parser.error("--write needs every CLI: drop --cli")
    if os.geteuid() != 0:
        parser.error("needs root (agent-run and podman, as the end-to-end suite)")
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    walls = run_walls(tuple(options.cli or CLIS), log)
    if options.details:
        for cli, session in walls.sessions.items():
            for row_id, cell in session.cells.items():
                log(f"{cli} {row_id} {cell.outcome} {cell.detail}: {cell.text[-400:]!r}")
        for row_id, cell in walls.control.items():
            log(f"control {row_id} {cell.outcome}: {cell.text[-400:]!r}")
    for problem in problems(walls):
        log(f"PROBLEM: {problem}")
    markdown = render_markdown(walls)
    if options.write:
        matrix.write_atomically(options.write, markdown)
        log(f"wrote {options.write}")
    else:
        sys.stdout.write(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
