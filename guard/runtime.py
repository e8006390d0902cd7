"""The runtime profile the guard reads: where it is looked up, reading it, and what goes wrong.

The renderer writes it as JSON (docs/design.md, "Runtime profile JSON"), so the hook and the
shims need neither YAML nor the renderer. Standard library only: they load it on every call.
"""

from __future__ import annotations

import json
import os
import re

from guard.policy import Policy, PolicyError, compile_policy
from image.layout import RUNTIME_PROFILES_DIR

DEFAULT_PROFILE = "autonomous"
HOME_PROFILES_DIR = "~/.config/agent-sandbox/profiles"  # where an interactive install puts them
PROFILE_DIRS = (RUNTIME_PROFILES_DIR, HOME_PROFILES_DIR)
_PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\Z")
# the checkout this package runs from, when it is one: its rendered/ tree is kept current by
# `render-profiles --check`
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RuntimeProfileError(Exception):
    """No usable runtime profile; the message names the file or the key, and the fix."""


def read(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise RuntimeProfileError(f"cannot read runtime profile {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise RuntimeProfileError(f"runtime profile {path} is not valid JSON: {exc}; re-render it with render-profiles") from None
    if not isinstance(data, dict):
        raise RuntimeProfileError(f"runtime profile {path}: expected a JSON object; re-render it with render-profiles")
    return data


def find(name: str | None, profile_dir: str | None = None) -> str:
    """NAME.json in profile_dir (only there, when given); else in /etc/agent-sandbox/profiles,
    ~/.config/agent-sandbox/profiles, then (a development checkout) the committed render."""
    name = name or DEFAULT_PROFILE
    if not _PROFILE_NAME.match(name):
        raise RuntimeProfileError(f"profile name {name!r} is not valid: use lower-case letters, digits and '-'")
    dirs = (profile_dir,) if profile_dir else PROFILE_DIRS
    for directory in dirs:
        candidate = os.path.join(os.path.expanduser(directory), f"{name}.json")
        if os.path.exists(candidate):
            return candidate
    committed = _committed_render(name) if profile_dir is None else None
    if committed:
        return committed
    looked = ", ".join(os.path.join(d, f"{name}.json") for d in dirs)
    raise RuntimeProfileError(f"profile {name!r} not found (looked in {looked}); render it with render-profiles")


def _committed_render(name: str) -> str | None:
    import glob

    pattern = os.path.join(glob.escape(CHECKOUT), "rendered", name, "**", "agent-sandbox", "profiles", f"{name}.json")
    found = sorted(glob.glob(pattern, recursive=True))
    return found[0] if found else None


def load_runtime(name: str | None, path: str | None = None, profile_dir: str | None = None) -> dict:
    """The runtime profile: an explicit file, else the one `find` finds."""
    return read(path or find(name, profile_dir))


def compiled(runtime: dict, where: str) -> Policy:
    try:
        return compile_policy(runtime)
    except PolicyError as exc:
        raise RuntimeProfileError(f"{where}: {exc}") from None
