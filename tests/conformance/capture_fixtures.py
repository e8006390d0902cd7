"""Re-capture the machine-readable outputs in fixtures/ from the real CLIs.

Run as root after .ci/install-clis.sh (and after every CLI bump):

    python tests/conformance/capture_fixtures.py

Each CLI plays one_denial_scenario() (one allowed call, one call refused by an
admin-layer deny rule) against its fake server. The files are the CLIs' own
output, unedited; paths, ids and timestamps differ from run to run.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "conformance"

from conformance.drivers import CLIS, drive  # noqa: E402
from conformance.sandbox import make_config_tree  # noqa: E402
from conformance.scenarios import deny_gh_secret_files, one_denial_scenario  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def capture(cli: str) -> dict[str, str]:
    """{fixture file name: content} for one CLI."""
    with tempfile.TemporaryDirectory() as tree:
        run = drive(cli, one_denial_scenario(), make_config_tree(tree, deny_gh_secret_files(cli)), timeout=120)
    try:
        if run.result.returncode != 0 or run.result.timed_out:
            raise SystemExit(f"{cli} failed (rc {run.result.returncode}): {run.result.stderr[-2000:]}")
        if cli == "claude":
            return {"claude-stream-json-one-denial.jsonl": run.result.stdout}
        if cli == "gemini":
            return {"gemini-stream-json-one-denial.jsonl": run.result.stdout,
                    "gemini-stderr-one-denial.txt": run.result.stderr}
        sessions = sorted((run.sandbox.home / ".codex" / "sessions").rglob("*.jsonl"))
        if len(sessions) != 1:
            raise SystemExit(f"codex: expected one session file, found {sessions}")
        return {"codex-exec-json-one-denial.jsonl": run.result.stdout,
                "codex-exec-stderr-one-denial.txt": run.result.stderr,
                "codex-session-one-denial.jsonl": sessions[0].read_text()}
    finally:
        run.sandbox.cleanup()


def main() -> None:
    FIXTURES.mkdir(exist_ok=True)
    for cli in CLIS:
        for name, content in capture(cli).items():
            target = FIXTURES / name
            temporary = target.with_suffix(target.suffix + ".tmp")
            temporary.write_text(content)
            temporary.replace(target)
            print(f"wrote {target.relative_to(Path.cwd()) if target.is_relative_to(Path.cwd()) else target}")


if __name__ == "__main__":
    main()
