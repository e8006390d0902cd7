import pytest

from entrypoint_world import World


@pytest.fixture
def world():
    created = World.create()
    try:
        yield created
    finally:
        created.cleanup()
