import pytest

from guard_helpers import load_runtime


@pytest.fixture(scope="session")
def runtime() -> dict:
    return load_runtime()[1]
