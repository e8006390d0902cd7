"""The model vendor of the end-to-end suite, run in a container on the run's outside network (an
--internal one, so nothing leaves the machine): one of the conformance fakes
(tests/conformance/fakes.py), listening on every address, recording each request it gets to
OUT/requests.jsonl for the suite to read. Standard library only.

  python3 tests/e2e/fake_vendor.py CLI SCENARIO PORT OUT
"""
import json
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.conformance import fakes  # noqa: E402
from tests.e2e.scenarios import SCENARIOS  # noqa: E402

CLI, SCENARIO, PORT, OUT = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
lock = threading.Lock()


class OnEveryAddress(ThreadingHTTPServer):
    def __init__(self, address, handler):
        super().__init__(("0.0.0.0", PORT), handler)


fakes.ThreadingHTTPServer = OnEveryAddress  # the fakes bind 127.0.0.1; the gateway is another host


class Recording(fakes.FAKES[CLI]):
    def _record_request(self, handler, body):
        super()._record_request(handler, body)
        entry = {"method": handler.command, "path": handler.path, "time": time.time(),
                 "headers": {k.lower(): v for k, v in handler.headers.items()}, "body": body}
        with lock, open(OUT / "requests.jsonl", "a") as out:
            out.write(json.dumps(entry) + "\n")


server = Recording(SCENARIOS[SCENARIO]).start()
(OUT / "ready").write_text(str(PORT))
threading.Event().wait()
