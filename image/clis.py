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


# ---- a version bump, step by step -----------------------------------------------------------------

BUMP_STEPS = (
    "1. edit package.json: the CLI's exact new version (no range)",
    "2. npm install (writes package-lock.json)",
    "3. bash .ci/install-clis.sh (installs node_modules from the lockfile and checks each --version)",
    "4. python3 tests/conformance/matrix.py --write docs/conformance.md (the matrix proves the new version)",
    "5. rebuild the image: bash .ci/install-podman-image.sh (the stand-in), nix build .#agent-image (Nix)",
)


def installed_version(node_modules: Path, npm: str) -> str | None:
    try:
        return json.loads((node_modules / npm / "package.json").read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError, AttributeError):
        return None


def bump_problems(clis: dict, package_json: Path = PACKAGE_JSON, lock_path: Path = PACKAGE_LOCK,
                  node_modules: Path | None = None, proved: dict[str, str] | None = None) -> list[str]:
    """What is out of step between package.json, package-lock.json, node_modules and the versions
    the conformance matrix proved (`proved`, by CLI key), each naming the step that fixes it."""
    try:
        wanted = read_json(package_json, "restore it").get("dependencies") or {}
        lock = read_json(lock_path, "run `npm install`")
        pins = lockfile_pins(clis, lock_path)
    except PinError as err:
        return [str(err)]
    root = ((lock.get("packages") or {}).get("") or {}).get("dependencies") or {}
    problems = []
    for name, cli in clis.items():
        npm, pin = cli["npm"], pins[name]
        spec = wanted.get(npm)
        if spec is None:
            problems.append(f"{package_json}: dependencies lack {npm}; step {BUMP_STEPS[0]}")
            continue
        if not spec[:1].isdigit():
            problems.append(f"{package_json}: {npm} is {spec!r}, not an exact version; step {BUMP_STEPS[0]}")
            continue
        if root.get(npm) != spec or pin != spec:
            problems.append(f"{lock_path}: pins {npm} at {pin!r} while package.json asks for {spec!r}; "
                            f"step {BUMP_STEPS[1]}")
            continue
        if node_modules is not None and installed_version(node_modules, npm) != pin:
            problems.append(f"{node_modules / npm}: holds {installed_version(node_modules, npm)!r}, the lockfile pins "
                            f"{pin!r}; step {BUMP_STEPS[2]}")
            continue
        if proved is not None and proved.get(name) != pin:
            problems.append(f"docs/conformance.md: proved {npm} {proved.get(name)!r}, the lockfile pins {pin!r}; "
                            f"step {BUMP_STEPS[3]}")
    return problems
