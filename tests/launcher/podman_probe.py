"""Runs as the agent inside the podman test's agent container (the real image, in place of the CLI);
writes what it saw to /workspace/probe.json, which comes back with the copy's uncommitted work.
Usage: podman_probe.py CA_FILE UPSTREAM_IP HOST_PORT [SLEEP] (HOST_PORT: the host listens on every address)"""
import json
import os
import socket
import ssl
import sys

CA, UPSTREAM_IP, HOST_PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
seen = {}


def attempt(name, action):
    try:
        seen[name] = {"ok": True, "value": action()}
    except Exception as error:  # the probe reports every failure; the test judges it
        seen[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"}


def connect_via_proxy(host):
    sock = socket.create_connection(("agent-proxy", 3128), timeout=5)
    sock.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    status = int(head.split()[1])
    if status != 200:
        sock.close()
        return status
    with ssl.create_default_context(cafile=CA).wrap_socket(sock, server_hostname=host) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(4096):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[-1].decode()


def gateway_post():
    sock = socket.create_connection(("agent-gateway", 8081), timeout=5)
    body = b'{"stream": true}'
    sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: agent-gateway\r\nConnection: close\r\n"
                 b"x-api-key: " + os.environ["ANTHROPIC_API_KEY"].encode() +
                 b"\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data.decode(errors="replace")


def direct(host, port):
    socket.create_connection((host, port), timeout=2).close()
    return "connected"


def write(path, text="x"):
    with open(path, "w") as out:
        out.write(text)
    return "written"


def status_field(name):
    for line in open("/proc/self/status"):
        if line.startswith(name + ":"):
            return line.split()[1]


attempt("uid", os.getuid)
attempt("uid_map", lambda: open("/proc/self/uid_map").read().split())
attempt("seccomp", lambda: status_field("Seccomp"))
attempt("cap_eff", lambda: status_field("CapEff"))
attempt("no_new_privs", lambda: status_field("NoNewPrivs"))
attempt("environ", lambda: dict(os.environ))
attempt("allowed", lambda: connect_via_proxy("pypi.org"))
attempt("not_allowlisted", lambda: connect_via_proxy("evil.example.com"))
attempt("vendor_direct_via_proxy", lambda: connect_via_proxy("api.anthropic.com"))
attempt("gateway", gateway_post)
attempt("direct_upstream", lambda: direct(UPSTREAM_IP, 443))
attempt("direct_proxy_other_port", lambda: direct("agent-proxy", 22))
bridge = os.environ["HTTPS_PROXY"] and socket.gethostbyname("agent-proxy").rsplit(".", 1)[0] + ".1"
attempt("host_via_bridge", lambda: direct(bridge, HOST_PORT))
attempt("github_via_proxy", lambda: connect_via_proxy("github.com"))
attempt("secrets_folder", lambda: os.listdir("/var/lib/agent-run/secrets"))


def tokens_anywhere():
    """GitHub-token-shaped strings in every process's environment and command line and in every
    readable file the agent could look in."""
    import re
    shape, found, scanned = re.compile(rb"gh[opsur]_[A-Za-z0-9_]{16,}"), set(), 0
    paths = [f"/proc/{pid}/{part}" for pid in os.listdir("/proc") if pid.isdigit() for part in ("environ", "cmdline")]
    for top in ("/workspace", "/tmp", "/home", "/var/lib/agent-run", "/run", "/etc"):
        for folder, _, files in os.walk(top):
            paths += [os.path.join(folder, name) for name in files]
    for path in paths:
        try:
            with open(path, "rb") as handle:
                data = handle.read(1 << 20)
        except OSError:
            continue
        scanned += 1
        found.update(m.decode() for m in shape.findall(data))
    return {"scanned": scanned, "found": sorted(found)}


attempt("tokens_found", tokens_anywhere)
attempt("ipv6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b"x", ("ff02::1", HOST_PORT, 0, 2)))
attempt("read_blocked", lambda: open("/workspace/.env").read())
attempt("write_workspace", lambda: write("/workspace/made-by-agent.txt"))
attempt("write_root", lambda: write("/usr/local/agent-was-here"))
attempt("write_tmp", lambda: write("/tmp/x"))
attempt("write_home", lambda: write("/home/agent/x"))
report = {"tool": "claude", "exit_code": 0, "tool_calls": [{"command": "git push --force"}],
          "denials": [{"command": "git push --force", "rule": "git-push-force"}]}
attempt("report", lambda: write(os.environ["AGENT_REPORT"], json.dumps(report)))
with open("/workspace/probe.json", "w") as out:
    json.dump(seen, out)
if len(sys.argv) > 4:  # a run that overstays its timeout
    import time
    time.sleep(float(sys.argv[4]))
sys.exit(7)  # agent-run must hand the agent's exit code back
