"""image/contract.json is valid against its published schema, and the schema rejects the
contracts that would make a weaker image."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = json.loads((ROOT / "image" / "contract.json").read_text())
SCHEMA = json.loads((ROOT / "image" / "contract.schema.json").read_text())
DESIGN = (ROOT / "docs" / "design.md").read_text()


def validator() -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    return jsonschema.Draft202012Validator(SCHEMA)


def test_contract_matches_its_schema() -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(CONTRACT)]
    assert errors == []


def mutated(path: list, value) -> dict:
    contract = copy.deepcopy(CONTRACT)
    target = contract
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return contract


WEAKER = {
    "root-user": (["config", "User"], "0:0"),
    "named-user": (["config", "User"], "agent"),
    "sandbox-flag-off": (["env", "AGENT_SANDBOX"], "0"),
    "sandbox-flag-missing": (["env", "AGENT_SANDBOX"], KeyError),
    "shims-not-first": (["env", "PATH"], "/usr/bin:/usr/lib/agent-sandbox/shims"),
    "setuid-allowed": (["forbid_setuid_setgid"], False),
    "no-forbidden-programs": (["forbidden_programs"], []),
    "agent-owned-configs": (["baked", "owner"], 1000),
    "agent-owned-manifest": (["baked", "manifest", "owner"], 1000),
    "tmp-not-sticky": (["sticky_dirs", 0, "mode"], "0777"),
    "unknown-key": (["surprise"], True),
    "lowercase-env-name": (["env", "path"], "/bin"),
    "uid-zero-agent": (["user", "uid"], 0),
    "relative-home": (["user", "home"], "home/agent"),
}


@pytest.mark.parametrize("case", sorted(WEAKER))
def test_schema_rejects_weaker_contracts(case: str) -> None:
    path, value = WEAKER[case]
    assert list(validator().iter_errors(mutated(path, value))), f"{case} was accepted"


def test_quiet_switches_and_nothing_secret() -> None:
    env = CONTRACT["env"]
    for name in ("DISABLE_TELEMETRY", "DISABLE_ERROR_REPORTING", "DISABLE_AUTOUPDATER",
                 "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"):
        assert env[name] == "1"
    assert env["GEMINI_CLI_NO_RELAUNCH"] == "true"
    from image.verify import looks_like_credential
    assert [n for n, v in env.items() if v and looks_like_credential(n, CONTRACT["credential_env_patterns"])] == []


def test_baked_paths_are_the_ones_design_md_names() -> None:
    """design.md's "Image root and manifest" table is the renderer's promise; the contract
    must not require a path the design does not list (nor miss the profiles it bakes)."""
    for path in CONTRACT["baked"]["required_files"]:
        relative = path.lstrip("/")
        generic = relative.replace("profiles/autonomous.json", "profiles/<name>.json").replace(
            "profiles/ci.json", "profiles/<name>.json")
        assert f"`{generic}`" in DESIGN or f"`{relative}`" in DESIGN, path
    assert CONTRACT["baked"]["manifest"]["path"].lstrip("/") in DESIGN
    for prefix in CONTRACT["baked"]["required_prefixes"]:
        assert prefix.lstrip("/") in DESIGN
    for path in ("/home/agent/.claude", "/home/agent/.codex", "/home/agent/.gemini"):
        assert path in CONTRACT["agent_writable_dirs"] and f"`{path}`" in DESIGN
    assert CONTRACT["baked"]["render_args"] == [
        arg for profile in CONTRACT["baked"]["profiles"] for arg in ("--profile", profile)]
