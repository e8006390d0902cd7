"""The stand-in for the internet in the podman test: HTTPS on 443 (test CA) for the allowlisted
names and the model vendor. Records each request to OUT/requests.jsonl; answers POSTs with an SSE
stream and anything else with "upstream-ok". Usage: podman_upstream.py CERT KEY OUT_DIR"""
import json
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CERT, KEY, OUT = sys.argv[1:4]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def _record(self):
        with open(f"{OUT}/requests.jsonl", "a") as out:
            out.write(json.dumps({"time": time.time(), "method": self.command, "path": self.path,
                                  "headers": {k.lower(): v for k, v in self.headers.items()}}) + "\n")

    def do_GET(self):
        self._record()
        self.send_response(200)
        self.send_header("content-length", "11")
        self.end_headers()
        self.wfile.write(b"upstream-ok")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self._record()
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        self.wfile.write(b"event: message_start\ndata: {}\n\nevent: message_stop\ndata: {}\n\n")


server = ThreadingHTTPServer(("0.0.0.0", 443), Handler)
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(CERT, KEY)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
