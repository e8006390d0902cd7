"""The conformance matrix inside the built image (image_matrix.py), on the Debian stand-in CI
builds and loads (.ci/install-podman-image.sh): every row, all three CLIs, through the image's
own entrypoint, on a private network that reaches only the fake model servers. One run serves
every test here (about 70 s)."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading

import pytest

from image import layout

from . import image_matrix as im
from . import matrix as m

IMAGE = layout.AGENT_IMAGE.tagged(os.environ.get("AGENT_IMAGE_TAG", "test"))
INSTALL_HINT = "build and load it with: bash .ci/install-podman-image.sh"


@pytest.fixture(scope="module")
def result() -> m.Matrix:
    loaded = subprocess.run(["podman", "image", "exists", IMAGE], env=im.engine_env())
    if loaded.returncode != 0:
        pytest.fail(f"{IMAGE} is not loaded in podman; {INSTALL_HINT}")
    return im.run_image_matrix(IMAGE)


def test_every_cli_ran_a_session_in_the_image(result):
    assert sorted(cli for cli, _ in result.sessions) == sorted(m.CLIS)
    for (cli, _), session in result.sessions.items():
        assert session.returncode == 0, f"{cli}: {session.stderr_tail}"


def test_the_control_run_in_the_image_sees_every_rows_effect(result):
    assert [row_id for row_id, ran in result.control.items() if not ran] == []


def test_nothing_denied_runs_nothing_safe_is_blocked_every_refusal_is_explained(result):
    assert m.problems(result) == []


def test_the_image_behaves_as_the_published_matrix_says(result):
    """Cell for cell the published `+ shims` column, and the versions the matrix proved."""
    assert im.differences(result, im.published_cells()) == []


def test_a_published_cell_that_differs_is_reported(result, tmp_path):
    doc = tmp_path / "conformance.md"
    published = m.DOC.read_text()
    row = next(line for line in published.splitlines() if line.startswith("| r63 |"))
    doc.write_text(published.replace(row, row[: row.rindex("| shim |")] + "| **RAN** |"))
    cells = im.published_cells(doc)
    assert cells[("gemini", "r63")] == "**RAN**" and cells[("claude", "r63")] == "shim"
    assert [d for d in im.differences(result, cells) if d.startswith("gemini r63 ")] != []


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(f"hello from {self.server.server_address[1]}".encode())

    def log_message(self, *args):
        pass


def test_the_private_network_reaches_the_fakes_and_nothing_else():
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    exposed, hidden = (server.server_address[1] for server in servers)
    try:
        with im.PrivateNetwork() as network:
            sandbox = im.ImageSandbox(IMAGE, network)
            try:
                network.expose(exposed)
                # in a file: a loopback URL on the command line would be exposed for the run
                probe = sandbox.base / "probe.sh"
                probe.write_text(f"curl -s -m 5 http://127.0.0.1:{exposed}/; echo\n"
                                 f"curl -s -m 5 http://127.0.0.1:{hidden}/ || echo hidden-refused\n"
                                 "curl -s -m 5 http://deb.debian.org/ >/dev/null || echo outside-refused\n"
                                 "ls /sys/class/net\n")
                run = sandbox.run_argv(["sh", str(probe)], env={"PATH": "/usr/bin:/bin"}, timeout=60)
            finally:
                sandbox.cleanup()
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    assert run.returncode == 0, run.stderr
    assert f"hello from {exposed}" in run.stdout
    assert "hidden-refused" in run.stdout and "outside-refused" in run.stdout
    assert run.stdout.split()[-1] == "lo"  # no interface but the loopback
