import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# The launcher's podman test shares the egress tests' helpers (egress_certs) and its own by name.
sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1] / "egress")]


@pytest.fixture
def user_tmp():
    """A folder an ordinary user can reach (pytest's own live under root's 0700 folder)."""
    folder = Path(tempfile.mkdtemp(prefix="agent-run-test-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
