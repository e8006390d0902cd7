"""The push rule on the bytes real git sends, judged by the refs of the fake GitHub's bare repository.

The token here is a broad one (every permission of the installation, like a user's long-lived
token), so what stops a force push or a delete is the policy alone; the policy stands where the
gateway will stand (tests/github/policy_gate.py)."""
from __future__ import annotations

import base64
import gzip
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from github_setup import INSTALLED, REPOSITORY, RUN_ID
from policy_gate import policy_gate

from egress.github_policy import render_policy
from renderer.model import load

NS = f"refs/heads/agent/{RUN_ID}"


class Client:
    def __init__(self, github, home: Path, token: str):
        self.github, self.home, self.token = github, home, token
        home.mkdir(parents=True, exist_ok=True)
        header = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        # The token stands in for what the gateway adds; the agent's own config carries nothing else.
        (home / ".gitconfig").write_text(f"[http]\n\textraHeader = Authorization: Basic {header}\n"
                                         "[user]\n\tname = agent\n\temail = agent@example.com\n")
        self.env = {"HOME": str(home), "PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_TERMINAL_PROMPT": "0", "LANG": "C"}
        self.url = f"{github.git_url}/{REPOSITORY}.git"
        self.work = home / "work"

    def run(self, *argv, env: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
        done = subprocess.run(list(argv), cwd=self.work if self.work.exists() else self.home, capture_output=True,
                              text=True, env={**self.env, **(env or {})}, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"{argv}: {done.stderr}")
        return done

    def clone(self) -> "Client":
        self.run("git", "clone", "-q", self.url, str(self.work), check=True)
        return self

    def rewrite_history(self) -> None:
        """A commit that replaces main's: pushing it to main can only be a force push."""
        (self.work / "README.md").write_text("rewritten\n")
        self.run("git", "commit", "-q", "-a", "--amend", "-m", "rewritten", check=True)


@pytest.fixture
def decisions():
    return []


@pytest.fixture
def client(github, tmp_path, decisions):
    policy = render_policy(load("autonomous").tripwire, repository=REPOSITORY, run_id=RUN_ID)
    github.gate = policy_gate(policy, decisions)
    token = github.issue_token(None, INSTALLED, prefix="ghp_")
    return Client(github, tmp_path / "agent", token).clone()


def ref_effects(github) -> list[dict]:
    return [e for e in github.effects if e["kind"].startswith("ref-")]


FORCE_ROUTES = {
    "--force": [["git", "push", "--force", "origin", "HEAD:main"]],
    "-f after the refspec": [["git", "push", "origin", "HEAD:main", "-f"]],
    "+refspec": [["git", "push", "origin", "+HEAD:main"]],
    "--force-with-lease": [["git", "push", "--force-with-lease", "origin", "HEAD:main"]],
    "-c remote.origin.push": [["git", "-c", "remote.origin.push=+HEAD:refs/heads/main", "push", "origin"]],
    "config then plain push": [["git", "config", "remote.origin.push", "+HEAD:refs/heads/main"], ["git", "push", "origin"]],
    "remote.origin.mirror": [["git", "config", "remote.origin.mirror", "true"], ["git", "push", "origin"]],
    "dashed builtin": [["/usr/lib/git-core/git-push", "--force", "origin", "HEAD:main"]],
    "copied binary": [["{copy}", "push", "--force", "origin", "HEAD:main"]],
    "remote helper by hand": [["git", "push", "--force", "--receive-pack=git-receive-pack", "origin", "HEAD:main"]],
}


@pytest.mark.parametrize("route", sorted(FORCE_ROUTES))
def test_a_force_push_to_main_changes_nothing_by_any_route(github, client, decisions, route):
    client.rewrite_history()
    before = github.refs(REPOSITORY)
    copy = client.home / "definitely-not-git"
    shutil.copy("/usr/bin/git", copy)
    for argv in FORCE_ROUTES[route]:
        last = client.run(*[str(copy) if a == "{copy}" else a for a in argv])
    assert last.returncode != 0
    assert github.refs(REPOSITORY) == before and ref_effects(github) == []
    refusals = [d for d in decisions if not d.allowed]
    # A mirror push also deletes the branches the clone lacks: either rule may come first.
    expected = {"github-push-namespace", "git-push-delete"} if "mirror" in route else {"github-push-namespace"}
    assert refusals and refusals[-1].rule in expected
    assert "[remote rejected]" in last.stderr and refusals[-1].rule in last.stderr


def test_a_force_push_through_git_config_environment(github, client, decisions):
    client.rewrite_history()
    before = github.refs(REPOSITORY)
    done = client.run("git", "push", "origin", env={"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "remote.origin.push",
                                                    "GIT_CONFIG_VALUE_0": "+HEAD:refs/heads/main"})
    assert done.returncode != 0 and github.refs(REPOSITORY) == before
    assert decisions[-1].rule == "github-push-namespace"


DELETE_ROUTES = {
    "--delete": ["git", "push", "origin", "--delete", "feature"],
    "-d": ["git", "push", "-d", "origin", "feature"],
    ":ref": ["git", "push", "origin", ":feature"],
    ":refs/heads/ref": ["git", "push", "origin", ":refs/heads/feature"],
    "--prune": ["git", "push", "--prune", "origin", "refs/heads/*:refs/heads/*"],
    "--mirror": ["git", "push", "--mirror", "origin"],
    "--atomic delete": ["git", "push", "--atomic", "origin", f"HEAD:{NS}/ok", ":feature"],
}


@pytest.mark.parametrize("route", sorted(DELETE_ROUTES))
def test_deleting_a_branch_changes_nothing_by_any_route(github, client, decisions, route):
    before = github.refs(REPOSITORY)
    done = client.run(*DELETE_ROUTES[route])
    assert done.returncode != 0
    assert github.refs(REPOSITORY) == before and ref_effects(github) == []
    assert not decisions[-1].allowed and decisions[-1].rule in ("git-push-delete", "github-push-namespace")


def test_a_tag_and_a_new_branch_outside_the_namespace_are_refused(github, client, decisions):
    before = github.refs(REPOSITORY)
    client.run("git", "tag", "v9", check=True)
    assert client.run("git", "push", "origin", "v9").returncode != 0
    assert client.run("git", "push", "origin", "HEAD:refs/heads/hotfix").returncode != 0
    assert github.refs(REPOSITORY) == before


def test_the_run_namespace_takes_pushes_forced_or_not_and_deletes(github, client, decisions):
    (client.work / "fix.txt").write_text("fix\n")
    client.run("git", "add", "fix.txt", check=True)
    client.run("git", "commit", "-q", "-m", "fix", check=True)
    client.run("git", "push", "origin", f"HEAD:{NS}/fix", check=True)
    client.rewrite_history()
    client.run("git", "push", "--force", "origin", f"HEAD:{NS}/fix", check=True)
    client.run("git", "push", "origin", f"HEAD:{NS}", check=False)   # D/F conflict with .../fix: git's own refusal
    client.run("git", "push", "origin", "--delete", f"{NS}/fix", check=True)
    assert [e["kind"] for e in ref_effects(github)] == ["ref-created", "ref-forced", "ref-deleted"]
    assert {e["ref"] for e in ref_effects(github)} == {f"{NS}/fix"}


@pytest.mark.parametrize("version", ["0", "2"])
def test_clone_and_fetch_pass(github, client, version):
    done = client.run("git", "-c", f"protocol.version={version}", "fetch", "origin", "feature")
    assert done.returncode == 0, done.stderr
    other = client.home / "second"
    done = client.run("git", "-c", f"protocol.version={version}", "clone", "-q", f"{github.git_url}/octo/other", str(other))
    assert done.returncode == 0, done.stderr


def test_a_push_to_another_repository_is_refused(github, client, decisions):
    before = github.refs("octo/other")
    done = client.run("git", "push", f"{github.git_url}/octo/other.git", f"HEAD:{NS}/x")
    assert done.returncode != 0 and github.refs("octo/other") == before
    assert decisions[-1].rule == "github-push-repository"


def _forged_push(client, ref: str, gzip_body: bool, create: bool = False) -> int:
    """What a script would send with curl: a command list and a real pack, no git push at all."""
    client.rewrite_history()
    head = client.run("git", "rev-parse", "HEAD", check=True).stdout.strip()
    old = client.run("git", "rev-parse", "origin/main", check=True).stdout.strip()
    pack = subprocess.run(["git", "pack-objects", "--stdout", "--revs"], cwd=client.work, input=f"{head}\n^{old}\n".encode(),
                          capture_output=True, check=True).stdout
    line = f"{'0' * 40 if create else old} {head} {ref}\0report-status".encode()
    body = f"{len(line) + 4:04x}".encode() + line + b"0000" + pack
    headers = {"Content-Type": "application/x-git-receive-pack-request",
               "Authorization": "Basic " + base64.b64encode(f"x-access-token:{client.token}".encode()).decode()}
    if gzip_body:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    request = urllib.request.Request(f"{client.url}/git-receive-pack", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("gzip_body", [False, True])
def test_a_forged_request_without_git_push_is_judged_the_same(github, client, decisions, gzip_body):
    before = github.refs(REPOSITORY)
    _forged_push(client, "refs/heads/main", gzip_body)
    assert github.refs(REPOSITORY) == before and decisions[-1].rule == "github-push-namespace"
    assert _forged_push(client, f"{NS}/forged", gzip_body, create=True) == 200
    assert [e["kind"] for e in ref_effects(github)] == ["ref-created"]


def test_without_the_policy_the_same_pushes_land(github, client):
    """The fake and these checks can fail: with no gate, the broad token force-pushes and deletes."""
    github.gate = None
    client.rewrite_history()
    client.run("git", "push", "--force", "origin", "HEAD:main", check=True)
    client.run("git", "push", "origin", "--delete", "feature", check=True)
    assert [e["kind"] for e in ref_effects(github)] == ["ref-forced", "ref-deleted"]


def test_a_workflow_file_needs_a_token_the_launcher_never_mints(github, tmp_path, decisions, app_key):
    """Even inside the run's namespace a pushed workflow could run on push with the repository's
    secrets; the App token's permissions (no `workflows`) make GitHub refuse it."""
    from launcher import github_app as ga
    key = tmp_path / "app.pem"
    key.write_bytes(app_key[0])
    key.chmod(0o600)
    config = ga.load_app_config(tmp_path / "absent.toml", app_id="424242", key_file=key, installation_id="77",
                                api_url=github.api_url)
    minted = ga.mint_token(config, REPOSITORY)
    github.gate = policy_gate(render_policy(load("autonomous").tripwire, repository=REPOSITORY, run_id=RUN_ID), decisions)
    agent = Client(github, tmp_path / "agent", minted.token).clone()
    (agent.work / ".github" / "workflows").mkdir(parents=True)
    (agent.work / ".github" / "workflows" / "leak.yml").write_text("on: push\njobs: {}\n")
    agent.run("git", "add", ".github", check=True)
    agent.run("git", "commit", "-q", "-m", "ci", check=True)
    done = agent.run("git", "push", "origin", f"HEAD:{NS}/ci")
    assert done.returncode != 0 and "workflows permission" in done.stderr
    assert ref_effects(github) == [] and decisions[-1].allowed    # the policy let it by; the token's scope did not
    broad = Client(github, tmp_path / "broad", github.issue_token(None, INSTALLED, prefix="ghp_"))
    broad.work = agent.work
    assert broad.run("git", "push", "origin", f"HEAD:{NS}/ci").returncode == 0
    assert [e["kind"] for e in ref_effects(github)] == ["ref-created"]
