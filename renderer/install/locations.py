"""Where each rendered file lands on this machine, and how the install treats it.

The renderer names interactive files as the CLIs' defaults (`~/.claude/...`, `~/.codex/...`,
`~/.gemini/...`) and admin files by their fixed paths (`/etc/...`). Each CLI reads its user
folder from an environment variable when it is set, so the install does too: Claude Code
`$CLAUDE_CONFIG_DIR` (holds settings.json), Codex `$CODEX_HOME` (holds config.toml and rules/),
Gemini CLI `$GEMINI_CLI_HOME` (stands for the home folder: settings in `$GEMINI_CLI_HOME/.gemini`).

A file is either merged (a settings file the user owns too: the install changes only what the
profile needs, recorded in the state file) or the project's own (a rules or policy file named
agent-sandbox, or under an agent-sandbox folder: written whole, stamped as rendered).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

# Settings files the install merges into: rendered path -> kind (strictness.ORDERS' keys).
MERGED = {
    "~/.claude/settings.json": "claude-settings",
    "~/.codex/config.toml": "codex-config",
    "~/.gemini/settings.json": "gemini-settings",
    "/etc/claude-code/managed-settings.json": "claude-managed",
    "/etc/codex/requirements.toml": "codex-requirements",
    "/etc/gemini-cli/settings.json": "gemini-system-settings",
}
USER_DIRS = (  # rendered prefix, variable, what the variable stands for
    ("~/.claude/", "CLAUDE_CONFIG_DIR", ""),
    ("~/.codex/", "CODEX_HOME", ""),
    ("~/.gemini/", "GEMINI_CLI_HOME", ".gemini/"),
)
USER_STATE = ".config/agent-sandbox/install-state.json"
SYSTEM_STATE = "/etc/agent-sandbox/install-state.json"


class LocationError(Exception):
    pass


@dataclass(frozen=True)
class Target:
    rendered: str  # the renderer's name for it
    path: Path  # where it is on this machine
    kind: str  # a strictness kind for merged files, "owned" for the project's own
    layer: str  # "user" | "system"
    via: str = ""  # the variable that placed it, if any

    @property
    def merged(self) -> bool:
        return self.kind != "owned"


def is_owned(rendered: str) -> bool:
    name = rendered.rsplit("/", 1)[-1]
    return name.startswith("agent-sandbox") or "/agent-sandbox/" in rendered


def target(rendered: str, home: Path, env: Mapping[str, str]) -> Target:
    if rendered in MERGED:
        kind = MERGED[rendered]
    elif is_owned(rendered):
        kind = "owned"
    else:
        raise LocationError(f"the install does not know how to place {rendered}: neither a settings file it merges "
                            f"into nor a file of its own (named agent-sandbox*)")
    if rendered.startswith("/"):
        return Target(rendered, Path(rendered), kind, "system")
    if not rendered.startswith("~/"):
        raise LocationError(f"rendered path {rendered} is neither ~/... nor absolute")
    for prefix, variable, inside in USER_DIRS:
        if rendered.startswith(prefix):
            folder = env_folder(env, variable)
            if folder is not None:
                return Target(rendered, folder / inside / rendered[len(prefix):], kind, "user", f"${variable}")
    return Target(rendered, home / rendered[2:], kind, "user")


def env_folder(env: Mapping[str, str], variable: str) -> Path | None:
    value = env.get(variable)
    if not value:
        return None
    if not os.path.isabs(value):
        raise LocationError(f"${variable} is {value!r}, a relative path: the CLI would read it from whatever folder it "
                            f"starts in; set it to an absolute path (or unset it) and run again")
    return Path(value)


def state_path(layer: str, home: Path) -> Path:
    return home / USER_STATE if layer == "user" else Path(SYSTEM_STATE)


def could_be(path: str, rendered: str) -> bool:
    """Whether `path` is where `rendered` may land (its own path for an admin file; for a user file,
    the same name below the CLI's folder, wherever a variable put that folder): a state file that
    names anything else was changed by someone else, and uninstall must not delete it."""
    if rendered.startswith("/"):
        return path == rendered
    below = rendered[2:].split("/", 1)[1] if "/" in rendered[2:] else rendered[2:]
    return os.path.isabs(path) and ".." not in Path(path).parts and path.endswith("/" + below)

