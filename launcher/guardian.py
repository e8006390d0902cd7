"""A run's guardian: a small process in a session of its own that outlives agent-run and tears the
run down when agent-run ends without its own wrap-up (kill -9, the OOM killer, a crash of the
interpreter). Signals agent-run can catch are its own business (launcher/execute.py); this is for
the ones it cannot.

The guardian holds the read end of a pipe whose only write end is agent-run's: when agent-run
finishes its wrap-up it writes "done" and the guardian leaves quietly; when the pipe closes without
it, the kernel has closed agent-run's end, so agent-run is gone, and the guardian removes the
containers and networks, revokes the GitHub token, deletes the in-memory folder (the key, the
token, the report), writes the audit from the logs there are, and marks the run "killed".

It runs `python3 -m launcher.guardian`, a fresh interpreter rather than a fork, so that a sweep's
threads are not copied half-way through something.
"""
from __future__ import annotations

import json
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from launcher import audit
from launcher.commands import remove_all, write_record
from launcher.plan import RunError

DONE = b"done\n"
ARMED = b"armed\n"
ARM_TIMEOUT = 20.0


@dataclass
class Job:
    teardown: list                     # the plan's teardown commands
    memory_dir: str | None             # the run's (or the sweep's services') in-memory folder
    run_dir: str | None                # where run.json, the logs and audit.json are (None: a sweep's services)
    revoke: dict | None = None         # {"api_url", "token"}: a minted GitHub token to revoke


class Guardian:
    def __init__(self, process: subprocess.Popen):
        self.process = process

    @classmethod
    def start(cls, job: Job, log_path: Path) -> "Guardian":
        """Start the guardian and wait until it holds the job. Fails closed: a run without a guardian
        does not start."""
        with open(log_path, "ab") as log:
            try:
                process = subprocess.Popen([sys.executable, "-m", "launcher.guardian"], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, stderr=log, start_new_session=True)
            except OSError as error:
                raise RunError(f"could not start the run's guardian: {error}") from None
        guardian = cls(process)
        try:
            guardian._arm(job, log_path)
        except BaseException:
            guardian.release()
            raise
        return guardian

    def _arm(self, job: Job, log_path: Path) -> None:
        process = self.process
        try:
            process.stdin.write(json.dumps(job.__dict__).encode() + b"\n")
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], ARM_TIMEOUT)
            answer = process.stdout.readline() if ready else b""
        except OSError as error:
            answer, failure = b"", str(error)
        else:
            failure = f"it answered {answer[:40]!r}" if answer else f"no answer within {ARM_TIMEOUT:.0f} s"
        if answer != ARMED:
            raise RunError(f"the run's guardian did not start ({failure}); see {log_path}")
        process.stdout.close()

    def release(self) -> None:
        """agent-run's own wrap-up is done: the guardian leaves without touching anything."""
        try:
            self.process.stdin.write(DONE)
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def tear_down(job: Job) -> list[str]:
    """What agent-run's wrap-up would have done that does not need agent-run: returns the problems."""
    problems = ["agent-run ended without its wrap-up (killed?); its guardian tore the run down"]
    problems += remove_all(job.teardown)
    if job.revoke:
        from launcher.github_app import GitHubError, revoke_token
        try:
            revoke_token(job.revoke["api_url"], job.revoke["token"], 10.0, None)
        except GitHubError as error:
            problems.append(f"GitHub token not revoked: {error}; it expires within the hour")
    if job.memory_dir:
        shutil.rmtree(job.memory_dir, ignore_errors=True)
    if job.run_dir:
        run_dir = Path(job.run_dir)
        problems.append(f"the agent's work was not brought back; its copy is kept in {run_dir / 'workspace'} "
                        f"(never run git there: it holds the agent's .git)")
        result = audit.build_audit(run_dir / "proxy-log" / "access.log", run_dir / "gateway-log" / "access.log", None)
        result["problems"] = list(result.get("problems", [])) + problems
        audit.write_audit(run_dir / "audit.json", result)
        write_record(run_dir / "run.json", {"status": "killed", "problems": problems,
                                             "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return problems


def main() -> int:
    # In a session of its own already; a hang-up or Ctrl-C meant for agent-run is not for the guardian.
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_IGN)
    stdin = sys.stdin.buffer
    try:
        job = Job(**json.loads(stdin.readline()))
    except (ValueError, TypeError) as error:
        print(f"agent-run guardian: unreadable job: {error}", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(ARMED)
    sys.stdout.buffer.flush()
    sys.stdout.close()
    if stdin.read() == DONE:
        return 0
    for problem in tear_down(job):
        print(f"agent-run guardian: {problem}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
