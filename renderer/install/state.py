"""The install's record of what it added, so that a re-install can take out what the profile
dropped and --uninstall can give the user back exactly their own settings.

One JSON file per layer: ~/.config/agent-sandbox/install-state.json for the user's files,
/etc/agent-sandbox/install-state.json for the admin layer. Per file: the rendered name, the kind,
whether the install created it, the changes (merge.apply's records) and the user's own text from
before the first install (restored byte for byte when nothing but the install's changes differ),
or, for the project's own files, the sha256 of what was written. Mode 0600: the user's settings
may hold secrets (an `env` block with a key).
"""

from __future__ import annotations

import json
from pathlib import Path

FORMAT = 1


class StateError(Exception):
    pass


def empty(profile: str, layer: str) -> dict:
    return {"format": FORMAT, "profile": profile, "layer": layer, "files": {}, "folders": []}


def parse(text: str | None, path: Path) -> dict | None:
    if text is None:
        return None
    try:
        state = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"{path}: the install's state file is not valid JSON ({exc}); move it away to start afresh "
                         f"(the next install then treats every entry in your settings as yours)") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or not isinstance(state.get("files"), dict):
        raise StateError(f"{path}: not an install state file this version understands (format {FORMAT}); move it away "
                         f"to start afresh")
    for name, entry in state["files"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str) or not isinstance(entry.get("rendered"), str):
            raise StateError(f"{path}: files.{name} is malformed; move the state file away to start afresh")
        if entry["kind"] != "owned" and not isinstance(entry.get("changes"), list):
            raise StateError(f"{path}: files.{name}.changes is missing; move the state file away to start afresh")
    state.setdefault("folders", [])
    return state


def dump(state: dict) -> bytes:
    return (json.dumps(state, indent=2, ensure_ascii=False) + "\n").encode()
