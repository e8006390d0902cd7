"""The agent CLIs and the versions package-lock.json pins.

One list of versions: package.json names the pins, `npm install` writes package-lock.json, and
everything else reads the lockfile: the stand-in build and the flake (the CLIs and the image's
io.agent-sandbox.cli.* labels), image-verify (labels and `--version` inside the image), the
conformance matrix. `bump_problems` says which step of a version bump is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE_JSON = REPO / "package.json"
PACKAGE_LOCK = REPO / "package-lock.json"
LABEL_PREFIX = "io.agent-sandbox.cli."


class PinError(Exception):
    """package.json or package-lock.json cannot say what a CLI is pinned to."""


def read_json(path: Path, fix: str) -> dict:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise PinError(f"{path}: cannot read it ({err.strerror}); {fix}") from err
    except ValueError as err:
        raise PinError(f"{path}: not valid JSON ({err}); {fix}") from err
    if not isinstance(document, dict):
        raise PinError(f"{path}: not a JSON object; {fix}")
    return document


def lockfile_pins(clis: dict, lock_path: Path = PACKAGE_LOCK) -> dict[str, str]:
    """{CLI key (contract.json `clis`): version} from package-lock.json's packages table."""
    lock = read_json(lock_path, "run `npm install` to write it")
    packages = lock.get("packages")
    if lock.get("lockfileVersion") not in (2, 3) or not isinstance(packages, dict):
        raise PinError(f"{lock_path}: lockfileVersion {lock.get('lockfileVersion')!r} has no `packages` table; "
                       "write it with npm 7 or later (`npm install`)")
    pins = {}
    for name, cli in clis.items():
        entry = packages.get(f"node_modules/{cli['npm']}")
        version = entry.get("version") if isinstance(entry, dict) else None
        if not isinstance(version, str) or not version:
            raise PinError(f"{lock_path}: packages[\"node_modules/{cli['npm']}\"].version is missing; "
                           f"pin {cli['npm']} in package.json and run `npm install`")
        pins[name] = version
    return pins


def label(name: str) -> str:
    return LABEL_PREFIX + name
