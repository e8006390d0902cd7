import shutil

import pytest

from podman_image import IMAGE, INSTALL_HINT, PodmanService


@pytest.fixture(scope="session")
def podman_service():
    missing = [tool for tool in ("podman", "runc", "docker") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed; {INSTALL_HINT}")
    service = PodmanService().start()
    try:
        if service.image_id() is None:
            pytest.fail(f"{IMAGE} is not loaded in podman; {INSTALL_HINT}")
        yield service
    finally:
        service.stop()
