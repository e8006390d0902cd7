"""The agent-guard hook as installed on this machine.

The renderer writes the hook as `agent-guard hook CLI --profile NAME ...`. A CLI runs it through
sh with the CLI's own PATH, where `agent-guard` may not be (a virtual environment that is not
active), and a hook that cannot start refuses every command (the rendered command turns any exit
but 0 and 2 into a refusal). So the install writes the absolute path of the agent-guard it found
(or was given with --guard), and refuses to install hooks that could not run.

Codex runs a hook from the user's config.toml only once the user has trusted it: Codex keeps the
hook's hash under `[hooks.state."<config path>:pre_tool_use:<group>:<handler>"] trusted_hash`.
The install asks Codex itself for that hash (`codex app-server`, the JSON-RPC `hooks/list` that
Codex's own /hooks screen uses) on a copy of the merged file, and records the trust, as a person
accepting the hook under /hooks would.
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Mapping

from renderer.model import GUARD_PROGRAM

HOOK_PREFIX = f"{GUARD_PROGRAM} hook "
APP_SERVER_TIMEOUT = 30.0


class HookError(Exception):
    pass


def guard_path(explicit: str | None, env: Mapping[str, str]) -> str:
    if explicit:
        if not os.path.isabs(explicit):
            raise HookError(f"--guard {explicit}: give the absolute path of agent-guard as the CLIs will run it")
        return explicit
    found = shutil.which(GUARD_PROGRAM, path=env.get("PATH", os.defpath))
    if not found:
        raise HookError(f"{GUARD_PROGRAM} is not on PATH, and the hooks this profile installs run it: without it every "
                        f"command would be refused. Install the project (pip install agent-sandbox) or give its path "
                        f"with --guard PATH, and run again; nothing was changed")
    return os.path.abspath(found)


def localize(document, guard: str):
    """The document with every hook command's bare agent-guard replaced by `guard`."""
    if isinstance(document, dict):
        return {key: localize(value, guard) for key, value in document.items()}
    if isinstance(document, list):
        return [localize(value, guard) for value in document]
    if isinstance(document, str) and document.startswith(HOOK_PREFIX):
        return shlex.quote(guard) + " hook " + document[len(HOOK_PREFIX):]
    return document


def codex_program(env: Mapping[str, str]) -> str | None:
    return shutil.which("codex", path=env.get("PATH", os.defpath))


def codex_trust(config_text: str, target: Path, commands: set[str], codex: str) -> dict:
    """{"hooks": {"state": {key: {"trusted_hash": ...}}}} for the hooks whose command is one of
    `commands`, keyed by `target` (the real config.toml) as Codex keys them."""
    with tempfile.TemporaryDirectory(prefix="agent-sandbox-codex-trust-") as home:
        config = Path(home) / "config.toml"
        config.write_text(config_text)
        hooks = _hooks_list(codex, home)
    state = {}
    for hook in hooks:
        if hook.get("command") in commands and hook.get("source") == "user":
            key = str(hook["key"])
            if not key.startswith(str(config) + ":"):
                raise HookError(f"codex app-server named the hook {key!r}, not under {config}; cannot record its trust")
            state[str(target) + key[len(str(config)):]] = {"trusted_hash": hook["currentHash"]}
    if len(state) != len(commands):
        raise HookError(f"codex app-server listed {len(state)} of the {len(commands)} agent-guard hooks")
    return {"hooks": {"state": state}}


def _hooks_list(codex: str, home: str) -> list[dict]:
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": home, "CODEX_HOME": home, "LANG": "C.UTF-8"}
    process = subprocess.Popen([codex, "app-server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, env=env, cwd=home, text=True)
    try:
        requests = [{"jsonrpc": "2.0", "id": 1, "method": "initialize",
                     "params": {"clientInfo": {"name": "render-profiles", "version": "1"}}},
                    {"jsonrpc": "2.0", "method": "initialized"},
                    {"jsonrpc": "2.0", "id": 2, "method": "hooks/list", "params": {"cwds": [home]}}]
        process.stdin.write("".join(json.dumps(r) + "\n" for r in requests))
        process.stdin.flush()
        lines: queue.Queue = queue.Queue()

        def read() -> None:
            for line in process.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + APP_SERVER_TIMEOUT
        while True:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            message = json.loads(line)
            if message.get("id") == 2:
                if "error" in message:
                    raise HookError(f"codex app-server hooks/list failed: {message['error']}")
                return [hook for entry in message["result"]["data"] for hook in entry.get("hooks", [])]
        raise HookError(f"codex app-server did not list the hooks within {APP_SERVER_TIMEOUT:.0f} s")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HookError(f"codex app-server: {exc}") from None
    finally:
        process.kill()
        process.wait()
