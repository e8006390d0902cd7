#!/usr/bin/env python3
"""Run by the agent of each task of the end-to-end sweep (tools/neighbours.py): a refused CONNECT
through the proxy that names the repository's marker (so that the run's audit can be told from
its neighbours'), then what an agent of a sweep can reach of the others (the sweep's proxy and
gateways are on every run's network; the agents must still see only their own /24), then a commit
of neighbours.json on a branch named after the marker. The suite judges it all on the host.
Standard library only."""
import errno
import json
import os
import socket
import subprocess

marker = open("marker.txt").read().strip()
subprocess.run(["curl", "-s", "-o", "/dev/null", "--max-time", "10", "-x", os.environ["HTTPS_PROXY"],
                f"https://{marker}.example.com/"])

own = socket.gethostbyname("agent-gateway").rsplit(".", 1)[0]   # 10.213.N: this run's /24
seen = {"own": own, "reachable": [], "errors": {}}
for n in range(1, 255):
    prefix = f"10.213.{n}"
    if prefix == own:
        continue
    for host in (2, 3, 10):   # another run's proxy, gateway and agent addresses
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(0.2)
        try:
            code = sock.connect_ex((f"{prefix}.{host}", 3128 if host == 2 else 8081 if host == 3 else 22))
        finally:
            sock.close()
        if code not in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            seen["reachable"].append(f"{prefix}.{host}")
        name = errno.errorcode.get(code, str(code))
        seen["errors"][name] = seen["errors"].get(name, 0) + 1
# Its own gateway address serves its own vendor's port only (the other vendors' gateways are
# never on this run's network).
for port in (8081, 8082, 8083):
    try:
        socket.create_connection((f"{own}.3", port), timeout=1).close()
        seen[f"gateway_port_{port}"] = "open"
    except OSError as error:
        seen[f"gateway_port_{port}"] = errno.errorcode.get(error.errno, str(error))
with open("neighbours.json", "w") as out:
    json.dump(seen, out, indent=1)
print(json.dumps({k: v for k, v in seen.items() if k != "errors"}))
for step in (["git", "switch", "-q", "-c", f"agent/{marker}"], ["git", "add", "-A"],
             ["git", "commit", "-q", "-m", f"work on {marker}"]):
    subprocess.run(step, check=True)
