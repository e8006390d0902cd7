"""GitHub wall benchmark: what the gateway's GitHub route and the policy add.

    python benchmarks/github_bench.py [--rounds 20] [--policy-rounds 2000]

1. Real git against the fake GitHub of tests/github (git http-backend on loopback): `git
   ls-remote`, `git fetch` of a new commit, and a push into the run's namespace, each straight to
   the fake (the token in the client's config) and through the real agent-gateway (no token in
   the client). Medians, interleaved, and the ratio gateway/direct.
2. The policy on its own, per call: a REST decision, a GraphQL document parsed and judged, a push
   command list read (the hot path's share of each request).
Everything runs on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "github"), str(ROOT / "tests" / "egress")]

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from fake_github import FakeGitHub, Installation  # noqa: E402
from gateway_process import GatewayProcess, free_ports  # noqa: E402
from github_setup import INSTALLED, REPOSITORY, RUN_ID  # noqa: E402

from egress import github_policy as gp  # noqa: E402
from egress.gateway_github import add_github_routes  # noqa: E402
from renderer.model import load  # noqa: E402

NS = f"refs/heads/agent/{RUN_ID}"


def git(home: Path, *argv: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *argv], cwd=cwd or home, check=True, capture_output=True, timeout=60,
                   env={"HOME": str(home), "PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1",
                        "GIT_TERMINAL_PROMPT": "0"})


def client(folder: Path, url: str, header: str | None) -> Path:
    folder.mkdir(parents=True)
    extra = f"[http]\n\textraHeader = {header}\n" if header else ""
    (folder / ".gitconfig").write_text(f'[url "{url}/"]\n\tinsteadOf = https://github.com/\n{extra}'
                                       "[user]\n\tname = bench\n\temail = bench@example.com\n")
    git(folder, "clone", "-q", f"https://github.com/{REPOSITORY}.git", "work")
    return folder


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def git_rounds(rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        fake = FakeGitHub(root=tmp / "github", app_id=1, public_key_pem=public,
                          installations=[Installation(1, "octo", [REPOSITORY], dict(INSTALLED))])
        fake.create_repository(REPOSITORY)
        fake.start()
        token = fake.issue_token([REPOSITORY], {"contents": "write", "metadata": "read"})
        gateway = GatewayProcess(tmp / "gateway", {"anthropic": "sk-ant-" + "k" * 30, "github": token},
                                 {"anthropic": "http://127.0.0.1:9"})
        (port,) = free_ports(1)
        policy = gp.render_policy(load("autonomous").tripwire, repository=REPOSITORY, run_id=RUN_ID)
        gateway.conf.write_text(add_github_routes(gateway.conf_text, policy, port=port, registries=(),
                                                  upstreams={"git": fake.git_url, "api": fake.api_url}))
        try:
            with gateway:
                basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
                paths = {"direct": client(tmp / "direct", fake.git_url, f"Authorization: Basic {basic}"),
                         "gateway": client(tmp / "via", f"http://127.0.0.1:{port}", None)}
                seeder = paths["direct"] / "work"
                times = {(op, way): [] for op in ("ls-remote", "fetch", "push") for way in paths}
                for index in range(rounds):
                    git(paths["direct"], "commit", "-q", "--allow-empty", "-m", f"c{index}", cwd=seeder)
                    git(paths["direct"], "push", "-q", "origin", f"HEAD:{NS}/seed", cwd=seeder)
                    for way, home in (paths.items() if index % 2 else reversed(list(paths.items()))):
                        work = home / "work"
                        times[("ls-remote", way)].append(timed(lambda: git(home, "ls-remote", "origin", cwd=work)))
                        times[("fetch", way)].append(timed(lambda: git(home, "fetch", "-q", "origin", cwd=work)))
                        git(home, "commit", "-q", "--allow-empty", "-m", f"{way}{index}", cwd=work)
                        times[("push", way)].append(timed(lambda: git(home, "push", "-q", "origin",
                                                                      f"HEAD:{NS}/{way}{index}", cwd=work)))
        finally:
            fake.stop()
    return {key: statistics.median(values) for key, values in times.items()}


def policy_rounds(rounds: int) -> dict:
    policy = gp.render_policy(load("autonomous").tripwire, repository=REPOSITORY, run_id=RUN_ID)
    graphql = json.dumps({"query": 'mutation { createPullRequest(input: {repositoryId: "R", baseRefName: "main", '
                                   'headRefName: "x", title: "t"}) { pullRequest { url } } }'}).encode()
    line = f"{'0' * 40} {'a' * 40} {NS}/x\0report-status side-band-64k".encode()
    push = f"{len(line) + 4:04x}".encode() + line + b"0000PACK"
    cases = {
        "REST decision (GET /repos/o/r/pulls/1/files)": lambda: gp.check_api(policy, "GET", f"/repos/{REPOSITORY}/pulls/1/files"),
        "REST refusal (PATCH /repos/o/r)": lambda: gp.check_api(policy, "PATCH", f"/repos/{REPOSITORY}"),
        "GraphQL mutation parsed and judged": lambda: gp.check_api(policy, "POST", "/graphql", {}, graphql),
        "push command list read": lambda: gp.check_git(policy, "POST", f"/{REPOSITORY}.git/git-receive-pack",
                                                       "", {}).feed(push),
    }
    result = {}
    for name, call in cases.items():
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            call()
            samples.append(time.perf_counter() - started)
        result[name] = statistics.median(samples)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--policy-rounds", type=int, default=2000)
    args = parser.parse_args()
    medians = git_rounds(args.rounds)
    print(f"git against the fake GitHub, median of {args.rounds} interleaved rounds")
    print(f"{'operation':12} {'direct':>10} {'gateway':>10} {'ratio':>7}")
    for op in ("ls-remote", "fetch", "push"):
        direct, via = medians[(op, "direct")], medians[(op, "gateway")]
        print(f"{op:12} {direct * 1000:8.1f}ms {via * 1000:8.1f}ms {via / direct:7.2f}")
    print(f"\nthe policy alone, median of {args.policy_rounds} calls")
    for name, value in policy_rounds(args.policy_rounds).items():
        print(f"  {name:48} {value * 1e6:8.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
