"""The runtime profile the guard tests run against.

The lead's renderer.model.runtime_profile("autonomous") is the real one; until it exists the
fixture in this folder (the tripwire written in the design.md rule format) stands in for it.
"""

import importlib
import json
from pathlib import Path

import pytest

HERE = Path(__file__).parent
CORPUS = HERE.parent / "corpus"
FIXTURE = HERE / "fixture_runtime.json"


def load_fixture_runtime() -> dict:
    return json.loads(FIXTURE.read_text())


def load_runtime() -> tuple[str, dict]:
    try:
        model = importlib.import_module("renderer.model")
    except ModuleNotFoundError:
        return "fixture", load_fixture_runtime()
    render = getattr(model, "runtime_profile", None)
    if render is None:
        return "fixture", load_fixture_runtime()
    return "renderer.model.runtime_profile('autonomous')", render("autonomous")


@pytest.fixture(scope="session")
def runtime() -> dict:
    return load_runtime()[1]


@pytest.fixture(scope="session")
def fixture_runtime() -> dict:
    return load_fixture_runtime()
