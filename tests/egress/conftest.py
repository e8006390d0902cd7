import sys
from pathlib import Path

# The egress tests' helper modules (egress_lab, egress_certs, ...) are imported by name.
sys.path.insert(0, str(Path(__file__).parent))
