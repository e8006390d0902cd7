"""agent-run --engine kubernetes against a recorded API (tests/launcher/fake_kubernetes.py), through the
official client: the claim it makes (the task as variables, no secret), the log it follows, the
bundle and the report it takes through exec, the Finished condition it waits for, the refs it
fetches (verified, as data), the audit it cuts from the proxy's and gateway's logs, the claim it
deletes; its refusals; the timeout; and a sweep on the engine."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from fake_kubernetes import FakeCluster, Pod
from launcher.cli import main
from launcher.kube_engine import github_repository
from repos import git, make_repo

POD_IP = "10.44.0.7"


def user_repository(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path, {"README.md": "# widgets\n", "src/app.py": "print(1)\n"})
    git(repo, "remote", "add", "origin", "https://github.com/acme/widgets.git")
    return repo


def agents_bundle(repo: Path, folder: Path) -> bytes:
    """What the pod's task bundles: the agent's branch and HEAD, over the commit it cloned."""
    start = git(repo, "rev-parse", "HEAD")
    work = folder / "pod-workspace"
    subprocess.run(["git", "clone", "-q", str(repo), str(work)], check=True, capture_output=True)
    env = ["-c", "user.name=agent", "-c", "user.email=a@x"]
    subprocess.run(["git", "-C", str(work), "switch", "-q", "-c", "agent/fix"], check=True)
    (work / "src" / "app.py").write_text("print(2)\n")
    subprocess.run(["git", *env, "-C", str(work), "commit", "-qam", "Fix the app"], check=True)
    subprocess.run(["git", "-C", str(work), "update-ref", "refs/agent-run/HEAD", "HEAD"], check=True)
    subprocess.run(["git", "-C", str(work), "bundle", "create", "-q", str(folder / "b.bundle"), "--branches",
                    "refs/agent-run/HEAD", "--not", start], check=True)
    return (folder / "b.bundle").read_bytes()


def access_logs(now: float) -> dict:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
    squid = "{t:.3f} client={c} status=TCP_DENIED/403 bytes_up=0 bytes_down=0 method=CONNECT url={u}:443 server=- " \
            "decision=deny_not_allowlisted"
    return {"agent-proxy": [squid.format(t=now, c=POD_IP, u="evil.example.com"),
                            squid.format(t=now, c="10.44.3.3", u="someone-elses.example.com")],
            "agent-gateway": [json.dumps({"time": stamp, "client": c, "vendor": "anthropic", "method": "POST",
                                          "path": "/v1/messages", "status": 200, "decision": "forward", "rule": "r",
                                          "reason": "", "bytes_up": 10, "bytes_down": 20})
                              for c in (POD_IP, POD_IP, "10.44.3.3")]}


@pytest.fixture
def world(tmp_path):
    repo = user_repository(tmp_path)
    bundle = agents_bundle(repo, tmp_path)
    report = json.dumps({"tool": "claude", "exit_code": 0, "tool_calls": [], "denials": [
        {"command": "git push --force", "rule": "git-push-force"}]}).encode()

    def pod_for(claim):
        return Pod(log=["agent-run-task: cloned acme/widgets", "agent-entrypoint: checkpoint x", "\x1b[2JFixed it.",
                        'agent-run-task: done {"bundle": true, "collected": 0, "exit_code": 0, "report": true}'],
                   files={"/tmp/agent-run-out/result.bundle": bundle, "/var/lib/agent-run/report/report.json": report},
                   ip=POD_IP)
    cluster = FakeCluster(pod_for, lambda: access_logs(time.time()))  # written while the run lasted
    yield {"repo": repo, "cluster": cluster, "kubeconfig": cluster.kubeconfig(tmp_path), "tmp": tmp_path}
    cluster.close()


def run(world, *args: str) -> int:
    return main(["--engine", "kubernetes", "--kubeconfig", str(world["kubeconfig"]), "--workspace", str(world["repo"]),
                 "--run-dir", str(world["tmp"] / "run"), *args])


def test_a_run_claims_a_sandbox_follows_it_and_brings_the_work_back(world, capsys):
    code = run(world, "claude", "-p", "fix the app")
    err = capsys.readouterr().err
    assert code == 0, err
    cluster, repo = world["cluster"], world["repo"]
    # the claim: the warm pool, the lifecycle, the task as variables, no key anywhere
    (name,) = cluster.deleted
    created = next(r for r in cluster.requests if r[0] == "POST")
    assert created[1] == "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/agent-sandbox/sandboxclaims"
    run_id = json.loads((world["tmp"] / "run" / "run.json").read_text())["run_id"]
    assert name == f"agent-run-{run_id}"
    # the log, escaped, and the exec sequence: bundle, report, then the mark
    assert "\\x1b[2JFixed it." in err and "\x1b" not in err
    assert [c[-1] for c in cluster.execs] == ["/tmp/agent-run-out/result.bundle",
                                              "/var/lib/agent-run/report/report.json", "/tmp/agent-run-out/fetched"]
    # the Finished condition was waited for before the claim went
    gets = [r for r in cluster.requests if r[0] == "GET" and r[1].endswith(f"sandboxclaims/{name}")]
    assert gets and cluster.requests.index(gets[-1]) < cluster.requests.index(("DELETE", next(
        r[1] for r in cluster.requests if r[0] == "DELETE")))
    # the refs, as a podman run's
    assert git(repo, "show", f"refs/agent/{run_id}/heads/agent/fix:src/app.py") == "print(2)"
    assert git(repo, "status", "--porcelain") == ""
    # the audit: this pod's lines only, and the report
    result = json.loads((world["tmp"] / "run" / "audit.json").read_text())
    assert [(r["host"], r["rule"]) for r in result["network"]["refused"]] == [("evil.example.com", "deny_not_allowlisted")]
    assert result["model_api"]["bytes_by_route"] == [{"vendor": "anthropic", "requests": 2, "bytes_up": 20,
                                                      "bytes_down": 40}]
    assert result["run"]["tool_denials"] == [{"command": "git push --force", "rule": "git-push-force"}]
    record = json.loads((world["tmp"] / "run" / "run.json").read_text())
    assert record["status"] == "finished" and record["exit_code"] == 0 and record["mode"] == "kubernetes"


def test_the_claim_carries_the_task_and_nothing_secret(world, capsys):
    assert run(world, "--print", "codex", "exec", "add --json") == 0
    out = capsys.readouterr().out
    claim = json.loads(out[out.index("{"):out.rindex("}") + 1])
    env = {e["name"]: e["value"] for e in claim["spec"]["env"]}
    assert claim["spec"]["warmPoolRef"] == {"name": "agent-autonomous"}
    assert claim["spec"]["lifecycle"]["ttlSecondsAfterFinished"] == 600
    assert env["AGENT_RUN_CLI"] == "codex" and json.loads(env["AGENT_RUN_ARGS"]) == ["exec", "add --json"]
    assert env["AGENT_RUN_REPOSITORY"] == "acme/widgets"
    assert env["AGENT_RUN_COMMIT"] == git(world["repo"], "rev-parse", "HEAD")
    assert not any(k in json.dumps(claim) for k in ("KEY", "TOKEN", "sk-"))
    assert world["cluster"].requests == []  # --print asks the cluster nothing


def test_uncommitted_work_or_no_github_origin_is_refused_before_anything(world, capsys):
    (world["repo"] / "new.txt").write_text("x")
    assert run(world, "claude", "-p", "hi") == 2
    assert "has uncommitted changes; on Kubernetes the pod clones acme/widgets" in capsys.readouterr().err
    (world["repo"] / "new.txt").unlink()
    git(world["repo"], "remote", "set-url", "origin", "https://gitlab.example.com/acme/widgets.git")
    assert run(world, "claude", "-p", "hi") == 2
    assert "needs a github.com origin" in capsys.readouterr().err
    assert world["cluster"].requests == []


@pytest.mark.parametrize("url, repository", [
    ("https://github.com/acme/widgets.git", "acme/widgets"), ("git@github.com:acme/widgets.git", "acme/widgets"),
    ("ssh://git@github.com/acme/wid.gets", "acme/wid.gets"), ("https://github.com/acme/widgets/", "acme/widgets"),
    ("https://github.com.evil.com/acme/widgets", None), ("https://gitlab.com/acme/widgets", None),
])
def test_the_github_repository_of_a_remote(url, repository):
    assert github_repository(url) == repository


def test_a_run_that_overstays_deletes_its_claim_and_still_writes_the_audit(tmp_path, capsys):
    repo = user_repository(tmp_path)
    cluster = FakeCluster(lambda claim: Pod(log=["agent-run-task: cloned", "still working"], finishes=False))
    try:
        started = time.monotonic()
        code = main(["--engine", "kubernetes", "--kubeconfig", str(cluster.kubeconfig(tmp_path)), "--workspace",
                     str(repo), "--run-dir", str(tmp_path / "run"), "--timeout", "3", "claude", "-p", "hi"])
        assert code == 124 and time.monotonic() - started < 30
        assert len(cluster.deleted) == 1 and not cluster.claims
        assert "the run exceeded its time" in capsys.readouterr().err
        assert (tmp_path / "run" / "audit.json").is_file()
    finally:
        cluster.close()


def test_a_sweep_runs_on_kubernetes_too(tmp_path, capsys):
    repo = user_repository(tmp_path)
    bundle = agents_bundle(repo, tmp_path)

    def pod_for(claim):
        return Pod(log=['agent-run-task: done {"bundle": true, "collected": 0, "exit_code": 0, "report": false}'],
                   files={"/tmp/agent-run-out/result.bundle": bundle})
    cluster = FakeCluster(pod_for)
    try:
        tasks = tmp_path / "tasks.txt"
        tasks.write_text(f"claude {repo} one\ngemini {repo} two\ncodex {repo} three\n")
        code = main(["sweep", str(tasks), "--engine", "kubernetes", "--kubeconfig", str(cluster.kubeconfig(tmp_path)),
                     "-j", "2"])
        captured = capsys.readouterr()
        assert code == 0, captured.err[-3000:]
        assert len(cluster.deleted) == 3 and not cluster.claims
        assert [line.split()[6] for line in captured.out.splitlines()[1:]] == ["done", "done", "done"]
        assert len([r for r in cluster.requests if r[0] == "POST"]) == 3
        for line in captured.out.splitlines()[1:]:
            run_id = line.split()[4]
            assert git(repo, "show", f"refs/agent/{run_id}/heads/agent/fix:src/app.py") == "print(2)"
    finally:
        cluster.close()
