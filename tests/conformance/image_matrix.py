"""The conformance matrix inside the built image: the artifact itself, proven.

    python3 tests/conformance/image_matrix.py --image agent-image:test [--cli claude ...]

The same rows as matrix.py, judged the same way (each row's own effect, else the refusal text
names the layer), in a container of the image started with the engine's plain `run`: the image's
own entrypoint, user, PATH, CLIs and baked tree. One session per CLI: the image holds one tree,
the full one (the CLIs' own rules, the hook, the shims), so this is the published matrix's
`+ shims` column, and any cell that differs from docs/conformance.md is reported. A control run
(plain bash in the image, shims off PATH) must see every row's effect.

The host folder the namespace sandbox uses (workspace, bare remotes, canaries' log) is the
container's one writable volume, mounted at its own path, so every path in the rows holds; the
canaries are bound read-only over /usr/local/bin/{gh,npm,cargo}, ahead of the real programs.

The network is private: a network namespace with nothing but a loopback, which the container
joins (`--network ns:PATH`). The fake model servers stay in this process on the host's loopback;
for each loopback URL a run is given (the CLI's base URL), a forwarder listens on the same port
inside the namespace (its socket is created there; this process enters the namespace only for
that call) and relays to the fake. The container reaches the fake and nothing else.

Needs root (ip netns, podman) and the image loaded in podman.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import socket
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Mapping, Sequence

if __package__ in (None, ""):  # run as a script: make `tests.conformance` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "tests.conformance"

from image import layout  # noqa: E402
from tests.conformance import matrix as m  # noqa: E402
from tests.conformance.sandbox import CANARY_PROGRAMS, RunResult, Sandbox, SYSTEM_PATH  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = REPO / "image" / "debian" / "containers.conf"
LAYER = "shims"  # the image bakes the full tree: the published matrix's `+ shims` column
CLI_LABELS = {"claude": "claude-code", "codex": "codex", "gemini": "gemini-cli"}
LOOPBACK_URL = re.compile(r"http://127\.0\.0\.1:(\d+)")
# What a careful launcher adds; without them the entrypoint's preflight warns on every start.
HARDENING = ("--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--pids-limit", "1024", "--memory", "4g")
CLONE_NEWNET = 0x40000000


# ---------------------------------------------------------------------------------------------
# The private network


def in_network_namespace(path: str, action: Callable[[], object]) -> object:
    """Run `action` on a thread that has entered the network namespace at `path`: sockets it
    creates belong to that namespace. The rest of the process never leaves its own."""
    libc = ctypes.CDLL(None, use_errno=True)
    outcome: dict[str, object] = {}

    def enter_and_act() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(path, os.O_RDONLY)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns({path}) failed")
            outcome["value"] = action()
        except BaseException as error:  # handed to the caller's thread below
            outcome["error"] = error
        finally:
            libc.setns(own, CLONE_NEWNET)
            os.close(own)
            os.close(target)

    thread = threading.Thread(target=enter_and_act, name="netns-enter")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]


class _Relay(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.server.target_port), timeout=30)
        except OSError:
            return
        with upstream:
            pumps = [threading.Thread(target=_pump, args=(self.request, upstream), daemon=True),
                     threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)]
            for pump in pumps:
                pump.start()
            for pump in pumps:
                pump.join()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class _RelayServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class PrivateNetwork:
    """A network namespace holding only a loopback, and relays from its loopback ports to the
    same ports on the host's loopback (one per port asked for)."""

    def __init__(self) -> None:
        self.name = f"agent-image-matrix-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path = f"/run/netns/{self.name}"
        self._relays: dict[int, _RelayServer] = {}

    def __enter__(self) -> "PrivateNetwork":
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        try:
            subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True, capture_output=True)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def expose(self, port: int) -> None:
        """127.0.0.1:port inside the namespace reaches 127.0.0.1:port on the host."""
        if port in self._relays:
            return

        def listen() -> _RelayServer:
            server = _RelayServer(("127.0.0.1", port), _Relay)
            server.target_port = port
            return server

        relay = in_network_namespace(self.path, listen)
        threading.Thread(target=relay.serve_forever, name=f"relay-{port}", daemon=True).start()
        self._relays[port] = relay

    def close(self) -> None:
        for relay in self._relays.values():
            relay.shutdown()
            relay.server_close()
        self._relays.clear()
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)


# ---------------------------------------------------------------------------------------------
# The container


def engine_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF))}


class ImageSandbox(Sandbox):
    """The namespace sandbox's host folder (workspace, remotes, canaries), run in a container of
    `image` on `network` instead of a namespace over the host's file systems."""

    def __init__(self, image: str, network: PrivateNetwork, engine: str = "podman"):
        self.image, self.network, self.engine = image, network, engine
        super().__init__(None)

    def run(self, tool: str, args: Sequence[str], *, env: Mapping[str, str] | None = None,
            timeout: float = 120.0, stdin: str | None = None) -> RunResult:
        """`ENGINE run IMAGE TOOL ARGS`: the image's entrypoint, user and PATH."""
        return self._container([], [tool, *args], env or {}, timeout)

    def run_argv(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                 timeout: float = 120.0, stdin: str | None = None) -> RunResult:
        """`argv` past the entrypoint, its program found on the given PATH (the image's own
        folders: a Nix image has no /usr/bin/python3)."""
        program = os.path.basename(argv[0])
        # no layer at all: not even the login shells' profile.d line that puts the shims first
        no_shims = ["-v", f"/dev/null:{layout.SHIMS_PROFILE_D}:ro"]
        return self._container(["--entrypoint", program, *no_shims], list(argv[1:]), env or {}, timeout)

    def _container(self, options: list[str], command: list[str], env: Mapping[str, str], timeout: float) -> RunResult:
        for port in {int(p) for text in [*env.values(), *command] for p in LOOPBACK_URL.findall(text)}:
            self.network.expose(port)
        name = f"agent-image-matrix-{uuid.uuid4().hex[:12]}"
        argv = [self.engine, "run", "--name", name, "--network", f"ns:{self.network.path}", *HARDENING,
                "-v", f"{self.base}:{self.base}", "--workdir", str(self.workspace)]
        for program in CANARY_PROGRAMS:
            argv += ["-v", f"{self.canary_bin / program}:/usr/local/bin/{program}:ro"]
        for path in sorted(p for p in self.home.rglob("*") if p.is_file()):
            argv += ["-v", f"{path}:/home/agent/{path.relative_to(self.home)}:ro"]
        for key, value in env.items():
            if key not in ("HOME", "USER", "LOGNAME", "SHELL") and not (key == "PATH" and not options):
                argv += ["-e", f"{key}={value}"]
        argv += [*options, self.image, *command]
        started = time.monotonic()
        try:
            result = subprocess.run(argv, env=engine_env(), capture_output=True, text=True, timeout=timeout,
                                    stdin=subprocess.DEVNULL)
            return RunResult(argv, result.returncode, result.stdout, result.stderr, time.monotonic() - started, False)
        except subprocess.TimeoutExpired as expired:
            return RunResult(argv, -9, _text(expired.stdout), _text(expired.stderr), time.monotonic() - started, True)
        finally:
            subprocess.run([self.engine, "rm", "--force", name], env=engine_env(), capture_output=True)


def _text(data) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")


def image_cli_versions(image: str, engine: str = "podman") -> dict[str, str]:
    """The CLI versions the image says it holds (its io.agent-sandbox.cli.* labels)."""
    result = subprocess.run([engine, "image", "inspect", "--format", "{{json .Labels}}", image],
                            env=engine_env(), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{engine} has no image {image}: {result.stderr.strip()}; build and load it "
                           "(bash .ci/install-podman-image.sh, or nix build .#agent-image && ./result | podman load)")
    labels = json.loads(result.stdout) or {}
    return {cli: labels.get(f"io.agent-sandbox.cli.{label}", "?") for cli, label in CLI_LABELS.items()}


# ---------------------------------------------------------------------------------------------
# The matrix


def run_image_matrix(image: str, clis: Sequence[str] = m.CLIS, engine: str = "podman", log=None) -> m.Matrix:
    all_rows = m.rows()
    with PrivateNetwork() as network:
        make = lambda: ImageSandbox(image, network, engine)  # noqa: E731
        matrix = m.Matrix(all_rows, image_cli_versions(image, engine), m.run_control(None, all_rows, make))
        for cli in clis:
            session = m.run_session(cli, LAYER, None, all_rows, make)
            matrix.sessions[(cli, LAYER)] = session
            if log:
                log(f"{image} {cli}: {session.duration:.1f} s, rc {session.returncode}")
    return matrix


def published_cells(doc: Path = m.DOC) -> dict[tuple[str, str], str]:
    """{(cli, row id): cell text} of the `+ shims` columns of docs/conformance.md."""
    cells: dict[tuple[str, str], str] = {}
    header: list[str] = []
    for line in doc.read_text().splitlines():
        if not line.startswith("|"):
            header = []
            continue
        fields = [field.strip() for field in line.strip().strip("|").split(" | ")]
        if fields[0] == "#":
            header = fields
        elif header and re.fullmatch(r"r\d\d", fields[0]) and len(fields) == len(header):
            for title, text in zip(header, fields):
                for cli in m.CLIS:
                    if title == f"{cli} {m.LAYER_TITLES[LAYER]}":
                        cells[(cli, fields[0])] = text
    return cells


def differences(matrix: m.Matrix, published: dict[tuple[str, str], str]) -> list[str]:
    """Where the image behaves otherwise than the published matrix's `+ shims` column, and where
    it runs other CLI versions than the matrix proved."""
    found = []
    proved = m.cli_versions()
    for cli in sorted({cli for cli, _ in matrix.sessions}):
        if matrix.versions.get(cli) != proved[cli]:
            found.append(f"{cli}: the image holds {matrix.versions.get(cli)!r}, the matrix proved {proved[cli]!r}")
        for row in matrix.rows:
            here = m._cell_markdown(row, matrix.cell(cli, LAYER, row.id))
            there = published.get((cli, row.id))
            if here != there:
                found.append(f"{cli} {row.id} {row.command!r}: {here} in the image, {there} in {m.DOC.name}")
    return found


def summary(matrix: m.Matrix, image: str) -> str:
    lines = [f"In-image conformance: {image}, profile {m.PROFILE}, the image's own baked tree", ""]
    lines += ["| CLI | version | deny rows blocked | deny rows that RAN | safe rows that ran | gaps that ran | seconds |",
              "|---|---|---|---|---|---|---|"]
    for (cli, _), session in sorted(matrix.sessions.items()):
        outcome = {row.id: session.cells[row.id].outcome for row in matrix.rows}
        of = lambda expect: [r for r in matrix.rows if r.expect == expect]  # noqa: E731
        ran = [r.id for r in of("deny") if outcome[r.id] == "ran"]
        lines.append(f"| {cli} | {matrix.versions[cli]} | {len(of('deny')) - len(ran)}/{len(of('deny'))} | "
                     f"{', '.join(ran) or 'none'} | {sum(outcome[r.id] == 'ran' for r in of('safe'))}/{len(of('safe'))} | "
                     f"{sum(outcome[r.id] == 'ran' for r in of('gap'))}/{len(of('gap'))} | {session.duration:.0f} |")
    lines.append(f"\nControl run (plain bash in the image, no shims): {sum(matrix.control.values())} of "
                 f"{len(matrix.control)} rows showed their effect.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", required=True, help="the loaded image, e.g. agent-image:test or agent-image:latest")
    parser.add_argument("--cli", action="append", choices=m.CLIS, help="only this CLI (repeatable)")
    parser.add_argument("--engine", default="podman", choices=("podman",), help="container engine (%(default)s)")
    options = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("needs root (ip netns for the private network, podman)")
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    matrix = run_image_matrix(options.image, tuple(options.cli or m.CLIS), options.engine, log)
    sys.stdout.write(summary(matrix, options.image))
    found = m.problems(matrix) + differences(matrix, published_cells())
    for problem in found:
        log(f"PROBLEM: {problem}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
