"""The README's first command on a fresh Debian 12 with nothing installed beforehand but what
Debian ships (debootstrap minbase), from a terminal and without one.

The container reaches Debian's mirror, PyPI and the npm registry as this machine does; the only
thing given to it from the host is this machine's CA bundle, because the machine's egress
re-signs TLS (a network property, not something the project installs). amd64 only: there is no
arm64 machine or emulator here.
"""
from __future__ import annotations

from .fresh_debian import fresh_debian_image, podman, source_copy

HOST_CA = "/etc/ssl/certs/ca-certificates.crt"


def test_the_demo_installs_and_runs_on_a_fresh_debian_12_without_and_with_a_terminal(tmp_path):
    image = fresh_debian_image()
    source = source_copy(tmp_path / "agent-sandbox")
    ca_env = [a for v in ("SSL_CERT_FILE", "PIP_CERT", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
              for a in ("--env", f"{v}=/host-ca.crt")]
    script = (
        "set -e; cd /src; "
        # without a terminal (CI's way): stdin closed, no tty
        "bash demo/run.sh claude </dev/null > /tmp/no-terminal.log 2>&1 || { cat /tmp/no-terminal.log; exit 11; }; "
        "cat /tmp/no-terminal.log; echo '=== terminal'; "
        # from a terminal: script gives the demo a pseudo-terminal and, its own stdin being closed, types EOF
        "script -qec 'bash demo/run.sh gemini' /dev/null </dev/null || exit 12"
    )
    # /tmp on a tmpfs, as on a machine: the demo's private namespace makes overlay whiteouts there,
    # which the container's own overlay root refuses.
    done = podman("run", "--rm", "--privileged", "--network", "podman", "--tmpfs", "/tmp:rw,exec,size=4g",
                  "-v", f"{source}:/src",
                  "-v", f"{HOST_CA}:/host-ca.crt:ro", *ca_env, image, "timeout", "--kill-after=10", "900",
                  "bash", "-c", script, capture_output=True, timeout=960)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    no_terminal, _, terminal = output.partition("=== terminal")
    for log in (no_terminal, terminal):
        assert "REFUSED by rule git-push-force" in log, log[-4000:]
        assert any(line.startswith(("OK:", "\x1b[32m\x1b[1mOK:")) for line in log.splitlines()), log[-4000:]
    assert "project-env: installing python3-venv" in no_terminal      # Debian's python3 needed it
    assert "WARNING: Running pip as the 'root' user" not in output    # pip ran inside the venv
    assert "EBADENGINE" not in output and "Unsupported engine" not in output
