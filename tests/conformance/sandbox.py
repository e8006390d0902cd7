"""Run a real agent CLI the way the image runs it, without touching the host.

A Sandbox owns a private host folder (a 0755 temp dir) holding:

    layers/<top>/...   the config tree's /etc, /usr, ... as overlay upper layers (root-owned)
    layers/home/       becomes /home inside the namespace (/home/agent owned by 1000)
    workspace/         a git repo owned by 1000 whose origin is remote.git (the cwd of the run)
    remote.git/        a bare repo: a force push to it changes its history observably
    canary/calls.log   one line per canary call, argv joined by tabs
    layers/usr/local/bin/{gh,npm,cargo}   canary stand-ins: they only log their argv
    layers/usr/local/bin/{claude,codex,gemini}   symlinks to the pinned CLIs in node_modules

The canaries live in /usr/local/bin, ahead of /usr/bin on every PATH, including the one
Debian's /etc/profile sets for the login shells Codex runs commands in (`bash -lc`).

`Sandbox.run(argv)` starts `unshare --mount --pid --fork`; inside, overlayfs puts each
layer over the real /etc, /usr, ... and a bind mount puts layers/home over /home, then
the command runs as uid/gid 1000 (setpriv, no supplementary groups) with HOME=/home/agent,
the workspace as cwd and exactly the environment given. The host's /etc and /home are
never written: every change lands in the upper layers inside this folder.

Requires root, util-linux (unshare, setpriv, mount) and overlayfs.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

AGENT_UID = 1000
AGENT_GID = 1000
AGENT_HOME = "/home/agent"
CANARY_PROGRAMS = ("gh", "npm", "cargo")
CLI_NAMES = ("claude", "codex", "gemini")
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
REPO_ROOT = Path(__file__).resolve().parents[2]
CLI_BIN = REPO_ROOT / "node_modules" / ".bin"

# A launcher turns (tool, tool arguments) into the argv the namespace executes.
Launcher = Callable[[str, Sequence[str]], list[str]]


def direct_launcher(tool: str, args: Sequence[str]) -> list[str]:
    """Today's launcher: the pinned CLI binary from node_modules, args as given."""
    binary = CLI_BIN / tool
    if not binary.exists():
        raise FileNotFoundError(f"{binary} is missing: run .ci/install-clis.sh")
    return [str(binary), *args]


def entrypoint_launcher(prefix: Sequence[str] = ("agent-entrypoint",)) -> Launcher:
    """The image's launcher: `PREFIX TOOL ARGS`, i.e. `agent-entrypoint TOOL ARGS` (issue 3).

    The pip-installed console script lives under /root (mode 0700 here), out of uid 1000's
    reach: from this repo use prefix ("/usr/bin/python3", "-m", "entrypoint") with
    PYTHONPATH=<repo> in the run's environment. The CLIs themselves are on PATH in
    /usr/local/bin, as in the image.
    """

    def launch(tool: str, args: Sequence[str]) -> list[str]:
        return [*prefix, tool, *args]

    return launch


@dataclass(frozen=True)
class RunResult:
    argv: list[str]
    returncode: int  # -9 (SIGKILL) when the run hit its timeout
    stdout: str
    stderr: str
    duration: float
    timed_out: bool


class Sandbox:
    """One isolated run environment; see the module docstring for the layout."""

    def __init__(self, config_root: Path | str | None = None, *, base_dir: Path | str | None = None,
                 launcher: Launcher = direct_launcher):
        self.base = Path(tempfile.mkdtemp(prefix="agent-conformance-", dir=base_dir))
        os.chmod(self.base, 0o755)  # uid 1000 must traverse it to reach the workspace and canaries
        self.launcher = launcher
        self.layers = self.base / "layers"
        self.workdirs = self.base / "overlay-work"
        self.workspace = self.base / "workspace"
        self.remote = self.base / "remote.git"
        self.canary_bin = self.layers / "usr" / "local" / "bin"
        self.canary_log = self.base / "canary" / "calls.log"
        try:
            self._prepare_canaries()
            self._prepare_layers(Path(config_root) if config_root is not None else None)
            self._prepare_repo()
        except BaseException:
            self.cleanup()
            raise

    # -- what a test reads -------------------------------------------------
    @property
    def home(self) -> Path:
        """The host path of /home/agent as the run saw it (sessions, logs, state)."""
        return self.layers / "home" / "agent"

    def canary_calls(self) -> list[list[str]]:
        """argv of every canary call, program name first."""
        if not self.canary_log.exists():
            return []
        return [line.split("\t") for line in self.canary_log.read_text().splitlines() if line]

    def remote_head(self, branch: str = "main") -> str:
        return _git(["--git-dir", str(self.remote), "rev-parse", f"refs/heads/{branch}"]).strip()

    def remote_log(self, branch: str = "main") -> list[str]:
        return _git(["--git-dir", str(self.remote), "rev-list", f"refs/heads/{branch}"]).split()

    def default_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The minimal environment of a run: canaries first on PATH, HOME, locale."""
        env = {
            "PATH": SYSTEM_PATH,
            "HOME": AGENT_HOME,
            "USER": "agent",
            "LOGNAME": "agent",
            "SHELL": "/bin/bash",
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "NO_COLOR": "1",
        }
        env.update(extra or {})
        return env

    # -- running -----------------------------------------------------------
    def run(self, tool: str, args: Sequence[str], *, env: Mapping[str, str] | None = None,
            timeout: float = 120.0, stdin: str | None = None) -> RunResult:
        """Run `launcher(tool, args)` inside the namespace as uid 1000 in the workspace.

        env is the complete environment (use default_env() to build it). stdin is fed
        as text; None gives /dev/null (Codex waits on an open stdin).
        """
        return self.run_argv(self.launcher(tool, args), env=env, timeout=timeout, stdin=stdin)

    def run_argv(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                 timeout: float = 120.0, stdin: str | None = None) -> RunResult:
        env = dict(env if env is not None else self.default_env())
        inner = ["/usr/bin/setpriv", f"--reuid={AGENT_UID}", f"--regid={AGENT_GID}", "--clear-groups",
                 "--inh-caps=-all", "--", *argv]
        script = self._namespace_script()
        command = ["/usr/bin/unshare", "--mount", "--propagation", "private", "--pid", "--fork",
                   "--kill-child", "--mount-proc", "/bin/sh", "-c", script, "sandbox", *inner]
        started = time.monotonic()
        process = subprocess.Popen(
            command, env=env, cwd=str(self.base), start_new_session=True, text=True,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        timed_out = False
        try:
            stdout, stderr = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process.pid)
            try:
                stdout, stderr = process.communicate(timeout=10)
            except subprocess.TimeoutExpired:  # something outside the namespace holds the pipes
                process.kill()
                process.wait()
                stdout, stderr = "", "sandbox: output lost, a process outside the run kept its pipes open\n"
        finally:
            _kill_group(process.pid)
        return RunResult(list(argv), process.returncode, stdout, stderr, time.monotonic() - started, timed_out)

    def cleanup(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # -- setup -------------------------------------------------------------
    def _namespace_script(self) -> str:
        lines = ["set -eu"]
        for layer in sorted(p.name for p in self.layers.iterdir() if p.name != "home"):
            upper, work = self.layers / layer, self.workdirs / layer
            lines.append(f"mount -t overlay overlay -o {shlex.quote(f'lowerdir=/{layer},upperdir={upper},workdir={work}')}"
                         f" /{layer}")
        lines.append(f"mount --bind {shlex.quote(str(self.layers / 'home'))} /home")
        lines.append(f"cd {shlex.quote(str(self.workspace))}")
        # sh stays pid 1 of the namespace: when it exits, every leftover process is killed.
        lines.append('"$@"')
        return "\n".join(lines)

    def _prepare_layers(self, config_root: Path | None) -> None:
        self.workdirs.mkdir(mode=0o700)
        (self.layers / "etc").mkdir(mode=0o755)
        home = self.layers / "home"
        home.mkdir(mode=0o755)
        if config_root is not None:
            if not config_root.is_dir():
                raise FileNotFoundError(f"config tree {config_root} is not a directory")
            modes = _manifest_modes(config_root)
            for top in sorted(config_root.iterdir()):
                if top.name.startswith("."):
                    continue  # markers such as .agent-image-root
                if not top.is_dir():
                    raise ValueError(f"config tree {config_root}: top-level {top.name!r} must be a directory")
                if top.name != "home" and not Path("/", top.name).is_dir():
                    raise ValueError(f"config tree {config_root}: /{top.name} does not exist on this host to overlay")
                _copy_tree(top, self.layers / top.name)
            for path in _walk(self.layers):
                rel = "/" + str(path.relative_to(self.layers))
                _apply_ownership(path, rel, modes.get(rel))
        (home / "agent").mkdir(mode=0o755, exist_ok=True)
        os.chown(home / "agent", AGENT_UID, AGENT_GID)
        for layer in self.layers.iterdir():
            os.chmod(layer, 0o755)
            os.chown(layer, 0, 0)
            if layer.name != "home":
                (self.workdirs / layer.name).mkdir(mode=0o700)
        self._install_agent_user()

    def _install_agent_user(self) -> None:
        """uid 1000 is `agent` with home /home/agent in the namespace, as in the image."""
        for name, entry in (("passwd", f"agent:x:{AGENT_UID}:{AGENT_GID}:agent:{AGENT_HOME}:/bin/bash"),
                            ("group", f"agent:x:{AGENT_GID}:")):
            target = self.layers / "etc" / name
            if target.exists():
                continue  # the config tree brings its own
            kept = [line for line in Path("/etc", name).read_text().splitlines()
                    if line.split(":")[2:3] != [str(AGENT_UID)] and not line.startswith("agent:")]
            target.write_text("\n".join([*kept, entry]) + "\n")
            os.chmod(target, 0o644)

    def _prepare_canaries(self) -> None:
        self.layers.mkdir(mode=0o755)
        self.canary_bin.mkdir(parents=True)
        self.canary_log.parent.mkdir(mode=0o755)
        self.canary_log.touch()
        os.chown(self.canary_log, AGENT_UID, AGENT_GID)
        os.chmod(self.canary_log, 0o666)
        # The pinned CLIs, on PATH as in the image (for launchers that look them up).
        for tool in CLI_NAMES:
            if (CLI_BIN / tool).exists():
                (self.canary_bin / tool).symlink_to((CLI_BIN / tool).resolve())
        # The Node they run on, where the image has it (the host's may be in a virtual environment).
        node = shutil.which("node")
        if node:
            (self.canary_bin / "node").symlink_to(Path(node).resolve())
        for program in CANARY_PROGRAMS:
            script = self.canary_bin / program
            script.write_text(
                "#!/bin/sh\n"
                "# Conformance canary: proves the call happened, does nothing else.\n"
                f"{{ printf '%s' {program}; for a in \"$@\"; do printf '\\t%s' \"$a\"; done; printf '\\n'; }}"
                f" >> {shlex.quote(str(self.canary_log))}\n"
                "exit 0\n")
            os.chmod(script, 0o755)

    def _prepare_repo(self) -> None:
        env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.base), "PATH": SYSTEM_PATH}
        _git(["init", "-q", "--bare", "-b", "main", str(self.remote)], env=env)
        _git(["init", "-q", "-b", "main", str(self.workspace)], env=env)
        (self.workspace / "README.md").write_text("conformance workspace\n")
        ws = ["-C", str(self.workspace)]
        _git([*ws, "config", "user.name", "Agent"], env=env)
        _git([*ws, "config", "user.email", "agent@example.invalid"], env=env)
        _git([*ws, "add", "README.md"], env=env)
        _git([*ws, "commit", "-q", "-m", "initial"], env=env)
        _git([*ws, "remote", "add", "origin", str(self.remote)], env=env)
        _git([*ws, "push", "-q", "-u", "origin", "main"], env=env)
        for path in [self.workspace, *_walk(self.workspace), self.remote, *_walk(self.remote)]:
            os.lchown(path, AGENT_UID, AGENT_GID)


def make_config_tree(root: Path | str, files: Mapping[str, str | bytes]) -> Path:
    """Write a hand-made config tree: {"etc/codex/rules/x.rules": "...", ...} under root."""
    root = Path(root)
    for rel, content in files.items():
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise ValueError(f"config tree path {rel!r} must be relative, without '..'")
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return root


# -- helpers ------------------------------------------------------------------
def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _git(args: list[str], env: Mapping[str, str] | None = None) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True,
                          env=dict(env) if env is not None else None).stdout


def _walk(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            yield Path(dirpath, name)


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)


def _manifest_modes(config_root: Path) -> dict[str, tuple[int, int]]:
    """{absolute path: (owner, mode)} from the image manifest, when the tree has one."""
    manifest = config_root / "etc" / "agent-sandbox" / "manifest.json"
    if not manifest.exists():
        return {}
    files = json.loads(manifest.read_text()).get("files", {})
    return {path: (int(info.get("owner", 0)), int(info.get("mode", "0444"), 8)) for path, info in files.items()}


def _apply_ownership(path: Path, rel: str, manifest_entry: tuple[int, int] | None) -> None:
    """Root owns everything outside /home/agent; the agent owns its home, except manifest files.

    Nothing root-owned stays group- or other-writable: Gemini skips such system files.
    """
    in_agent_home = rel == AGENT_HOME or rel.startswith(AGENT_HOME + "/")
    if path.is_symlink():
        os.lchown(path, 0 if not in_agent_home else AGENT_UID, 0 if not in_agent_home else AGENT_GID)
        return
    if manifest_entry is not None:
        owner, mode = manifest_entry
        os.chown(path, owner, owner)
        os.chmod(path, mode)
        return
    current = stat.S_IMODE(path.stat().st_mode)
    if in_agent_home:
        os.chown(path, AGENT_UID, AGENT_GID)
    else:
        os.chown(path, 0, 0)
        os.chmod(path, current & ~0o022)
