"""The runtime profile the guard tests run against: the real `autonomous` profile, rendered from
the repo's profiles/ by renderer.runtime.runtime_profile (what the image ships as
/etc/agent-sandbox/profiles/autonomous.json)."""

from pathlib import Path

from renderer.model import load
from renderer.runtime import runtime_profile

HERE = Path(__file__).parent
CORPUS = HERE.parents[1] / "profiles" / "corpus"


def load_runtime() -> tuple[str, dict]:
    return "renderer.runtime.runtime_profile(load('autonomous'))", runtime_profile(load("autonomous"))
