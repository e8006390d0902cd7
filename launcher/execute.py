"""agent-run's execution of a plan: write the files, start the services, run the agent, tear down."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from egress.gateway import write_key_includes
from launcher import audit
from launcher.plan import AGENT_UID, EXIT_TIMEOUT, PROG, Options, Plan, RunError

# --- execution ----------------------------------------------------------------------------------

def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        raise RunError(f"{shlex.join(argv[:4])}... failed ({done.returncode}): {done.stderr.strip()[-800:]}")


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RunError(f"timed out after {timeout:.0f} s waiting for {what}")


def execute(plan: Plan, options: Options, run_dir: Path, keys: dict, token: str | None) -> int:
    for path, (text, mode) in plan.files.items():
        _write(path, text, mode)
    for folder in ("proxy-log", "gateway-log", "gateway-run"):
        (run_dir / folder).mkdir(mode=0o777, exist_ok=True)
        os.chmod(run_dir / folder, 0o777)  # the services' own users write here; run_dir itself is 0700
    key_dir = run_dir / "gateway" / "keys"
    report_dir = plan.report_host_path.parent
    report_dir.mkdir(parents=True, exist_ok=True)
    for folder in [report_dir, *report_dir.parents][:3]:
        os.chown(folder, AGENT_UID if not options.rootless else os.getuid(), -1)
    try:
        write_key_includes(key_dir, keys)
        for argv in plan.setup:
            _run(argv)
        cache_log = run_dir / "proxy-log" / "cache.log"
        _wait(lambda: cache_log.exists() and "Accepting HTTP Socket connections" in cache_log.read_text(),
              30, "the proxy")
        _wait(lambda: (run_dir / "gateway-run" / "nginx.pid").exists(), 30, "the gateway")
        shutil.rmtree(key_dir)  # nginx holds the keys in memory from here on
        _run(plan.agent_create)
        if plan.token_copy:
            token_file = run_dir / "github-token"
            _write(token_file, token + "\n", 0o400)
            if not options.rootless:  # rootless: keep-id already maps the file's owner to the agent
                os.chown(token_file, AGENT_UID, AGENT_UID)
            try:
                _run(plan.token_copy)
            finally:
                token_file.unlink()
        process = subprocess.Popen(plan.start_agent, stdin=None)
        try:
            code = process.wait(timeout=options.timeout)
        except subprocess.TimeoutExpired:
            print(f"{PROG}: the run exceeded {options.timeout} s; stopping it", file=sys.stderr)
            subprocess.run(plan.stop_agent, capture_output=True)
            process.wait()
            code = EXIT_TIMEOUT
        return code
    finally:
        if key_dir.exists():
            shutil.rmtree(key_dir)
        for argv in plan.teardown:
            subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True)
        result = audit.build_audit(run_dir / "proxy-log" / "access.log", run_dir / "gateway-log" / "access.log",
                                   plan.report_host_path)
        audit.write_audit(run_dir / "audit.json", result)
        sys.stderr.write(f"{PROG}: audit {run_dir / 'audit.json'}\n" + audit.format_audit(result))


