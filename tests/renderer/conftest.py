import shutil

import pytest

from render_helpers import REPO, runtime_of


@pytest.fixture(scope="session")
def runtime() -> dict:
    return runtime_of("autonomous")


@pytest.fixture
def project(tmp_path):
    """A copy of the project's profiles/ (with the corpus) and rendered/ that a test may break."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "profiles", root / "profiles")
    if (REPO / "rendered").exists():
        shutil.copytree(REPO / "rendered", root / "rendered")
    return root
