"""A stand-in model vendor on 127.0.0.1: HTTPS (test CA) or plain HTTP, answering every request
with a server-sent-event stream whose second event waits until the test releases it, and recording
every request (method, path, headers, body, the client's port) so a test can see what arrived."""
from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class SseUpstream:
    def __init__(self, cert: Path | None = None, key: Path | None = None, hold_second_event: bool = True,
                 delay: float = 0.0, cut: bool = False):
        self.requests: list[dict] = []
        self.delay, self.cut = delay, cut
        self.release = threading.Event()
        if not hold_second_event:
            self.release.set()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # small SSE writes must not wait for a delayed ACK

            def log_message(self, *args):
                pass

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("transfer-encoding", "").lower():
                    parts = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("content-length") or 0)
                return self.rfile.read(length) if length else b""

            def do_POST(self):
                try:
                    body = self._body()
                except (ValueError, OSError):  # a cut upload
                    upstream.requests.append({"method": self.command, "path": self.path, "cut": True})
                    return
                upstream.requests.append({"method": self.command, "path": self.path, "body": body,
                                          "headers": {k.lower(): v for k, v in self.headers.items()},
                                          "client_port": self.client_address[1]})
                if upstream.delay:
                    import time
                    time.sleep(upstream.delay)
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                self._chunk(b"event: message_start\ndata: {\"n\": 1}\n\n")
                upstream.release.wait(30)
                if upstream.cut:  # the vendor drops the connection mid-stream
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self._chunk(b"event: message_stop\ndata: {\"n\": 2}\n\n")
                self._chunk(b"")

            do_GET = do_DELETE = do_PUT = do_PATCH = do_POST

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if cert:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.scheme = "https" if cert else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "SseUpstream":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
