import sys
from pathlib import Path

# The launcher's podman test shares the egress tests' helpers (egress_certs) and its own by name.
sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1] / "egress")]
