"""Work done in a forked child, so that it uses the second core while this process goes on.

Nothing is trusted that the child did not finish: unless it exits 0 after writing its whole
answer, result() is None and the caller does the work itself. No state outlives the process.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable


def spare_core() -> bool:
    """Whether a second process would run now instead of waiting: fewer tasks runnable at this
    moment (this one included) than CPUs. On a busy machine a child only adds its own cost."""
    try:
        with open("/proc/loadavg", "rb") as handle:
            running = int(handle.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return True
    return running < len(os.sched_getaffinity(0))


class Forked:
    def __init__(self, work: Callable[[], object]) -> None:
        self.pid: int | None = None
        if not spare_core():  # result() is None: the caller does the work, as with no fork
            return
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # no second process today: result() is None
            os.close(read)
            os.close(write)
            return
        if pid == 0:
            status = 1
            try:
                os.close(read)
                with os.fdopen(write, "wb") as pipe:
                    pickle.dump(work(), pipe)
                status = 0
            finally:
                os._exit(status)
        os.close(write)
        self.pid, self.read = pid, read

    def result(self) -> object | None:
        """The child's answer, or None when there is none to trust (no child, or it failed)."""
        if self.pid is None:
            return None
        with os.fdopen(self.read, "rb") as pipe:
            answer = pipe.read()
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        return pickle.loads(answer) if os.waitstatus_to_exitcode(status) == 0 else None

    def __enter__(self) -> Forked:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.pid is not None:  # never asked for: stop our own child and reap it
            os.close(self.read)
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = None
