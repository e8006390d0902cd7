"""The real agent-gateway process with its GitHub and npm routes, in front of the fake GitHub and
the fake registry: clients hold no credential, the gateway adds the run's minted token, the policy
decides, the fake judges by effect."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fake_github import FakeRegistry
from github_setup import APP_ID, INSTALLED, REPOSITORY, RUN_ID

from egress.gateway_github import add_github_routes
from egress.github_policy import render_policy
from launcher import github_app as ga
from renderer.model import load

sys.path.insert(0, str(Path(__file__).parents[1] / "egress"))
from gateway_process import GatewayProcess, free_ports  # noqa: E402

NS = f"refs/heads/agent/{RUN_ID}"


@pytest.fixture
def minted(github, tmp_path, app_key):
    key = tmp_path / "app.pem"
    key.write_bytes(app_key[0])
    key.chmod(0o600)
    config = ga.load_app_config(tmp_path / "absent.toml", app_id=str(APP_ID), key_file=key, installation_id="77",
                                api_url=github.api_url)
    return ga.mint_token(config, REPOSITORY)


@pytest.fixture
def registry():
    fake = FakeRegistry(packages={"agent-sandbox-demo": ["1.0.0"]}).start()
    yield fake
    fake.stop()


@pytest.fixture
def gateway(github, minted, registry, tmp_path):
    process = GatewayProcess(tmp_path / "gateway", {"anthropic": "sk-ant-" + "k" * 30, "github": minted.token},
                             {"anthropic": "http://127.0.0.1:9"})
    github_port, npm_port = free_ports(2)
    policy = render_policy(load("autonomous").tripwire, repository=REPOSITORY, run_id=RUN_ID)
    process.conf.write_text(add_github_routes(process.conf_text, policy, port=github_port,
                                              registry_ports={"npm": npm_port},
                                              upstreams={"git": github.git_url, "api": github.api_url,
                                                         "npm": registry.url}))
    process.github_url = f"http://127.0.0.1:{github_port}"
    process.npm_url = f"http://127.0.0.1:{npm_port}"
    with process:
        yield process


class Agent:
    """git with no credential at all, GitHub's URLs rewritten to the gateway as in the container."""

    def __init__(self, home: Path, gateway_url: str):
        home.mkdir(parents=True, exist_ok=True)
        (home / ".gitconfig").write_text(f'[url "{gateway_url}/"]\n\tinsteadOf = https://github.com/\n'
                                         "[user]\n\tname = agent\n\temail = agent@example.com\n")
        self.home, self.work = home, home / "work"
        self.env = {"HOME": str(home), "PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_TERMINAL_PROMPT": "0", "LANG": "C"}

    def git(self, *argv, check: bool = False) -> subprocess.CompletedProcess:
        done = subprocess.run(["git", *argv], cwd=self.work if self.work.exists() else self.home, capture_output=True,
                              text=True, env=self.env, timeout=60)
        assert not check or done.returncode == 0, done.stderr
        return done


def settled(process) -> list[dict]:
    """The access log once it stops growing: a line is written after its response is sent, so a
    client can finish a moment before the gateway logs it."""
    previous, deadline = None, time.monotonic() + 5
    while time.monotonic() < deadline:
        current = process.log()
        if current and current == previous:
            return current
        previous = current
        time.sleep(0.1)
    return process.log()


def ref_kinds(github) -> list[str]:
    return [e["kind"] for e in github.effects if e["kind"].startswith("ref-")]


def test_git_through_the_gateway(github, gateway, tmp_path, minted):
    agent = Agent(tmp_path / "agent", gateway.github_url)
    agent.git("clone", "-q", f"https://github.com/{REPOSITORY}.git", str(agent.work), check=True)
    (agent.work / "fix.txt").write_text("fix\n")
    agent.git("add", "fix.txt", check=True)
    agent.git("commit", "-q", "-m", "fix", check=True)
    agent.git("push", "origin", f"HEAD:{NS}/fix", check=True)
    before = github.refs(REPOSITORY)
    forced = agent.git("push", "--force", "origin", "HEAD:main")
    deleted = agent.git("push", "origin", "--delete", "feature")
    assert forced.returncode != 0 and deleted.returncode != 0
    assert "[remote rejected] HEAD -> main (github-push-namespace: A push may" in forced.stderr
    assert "remote: refused by the agent-sandbox gateway: git-push-delete" in deleted.stderr
    assert github.refs(REPOSITORY) == before and ref_kinds(github) == ["ref-created"]
    # What the gateway logged, and that the token is in none of it.
    log = settled(gateway)
    decisions = [(e["method"], e["decision"], e["rule"]) for e in log]
    assert ("POST", "deny_git", "github-push-namespace") in decisions
    assert ("POST", "deny_git", "git-push-delete") in decisions
    assert ("POST", "forward", "github-push") in decisions
    assert minted.token not in gateway.access_log.read_text()
    assert all(e["vendor"] == "github-git" for e in log)


def test_a_large_push_streams_through(github, gateway, tmp_path):
    agent = Agent(tmp_path / "agent", gateway.github_url)
    agent.git("clone", "-q", f"https://github.com/{REPOSITORY}", str(agent.work), check=True)
    (agent.work / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    agent.git("add", "blob.bin", check=True)
    agent.git("commit", "-q", "-m", "big", check=True)
    agent.git("push", "origin", f"HEAD:{NS}/big", check=True)
    assert ref_kinds(github) == ["ref-created"]
    assert max(e["bytes_up"] for e in settled(gateway)) > 3 * 1024 * 1024


def api(gateway, method: str, path: str, body=None, token: str | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Host": "api.github.localhost", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"token {token}"
    request = urllib.request.Request(gateway.github_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_the_api_through_the_gateway(github, gateway):
    assert api(gateway, "GET", f"/repos/{REPOSITORY}")[0] == 200
    assert api(gateway, "POST", f"/repos/{REPOSITORY}/pulls", {"title": "t", "head": f"agent/{RUN_ID}/x",
                                                               "base": "main"})[0] == 201
    status, answer = api(gateway, "PATCH", f"/repos/{REPOSITORY}", {"archived": True})
    assert status == 403 and answer["agent_sandbox"]["rule"] == "gh-repo-destructive"
    assert api(gateway, "GET", f"/repos/{REPOSITORY}/actions/secrets")[0] == 403
    query = 'mutation { deleteRef(input: {refId: "R"}) { clientMutationId } }'
    assert api(gateway, "POST", "/graphql", {"query": query})[0] == 403
    query = 'mutation { addComment(input: {subjectId: "P", body: "b"}) { clientMutationId } }'
    assert api(gateway, "POST", "/graphql", {"query": query})[0] == 200
    assert github.kinds() == ["token-issued", "pull-request", "graphql:addComment"]


def test_the_clients_own_token_is_never_used(github, gateway):
    """A broad token the agent found (in an issue, a file) is replaced by the run's narrow one."""
    broad = github.issue_token(None, INSTALLED, prefix="ghp_")
    assert api(gateway, "GET", "/repos/octo/other", token=broad)[0] == 403          # the run's token cannot
    request = urllib.request.Request(f"{gateway.github_url}/octo/other.git/info/refs?service=git-upload-pack",
                                     headers={"Authorization": "Basic " + base64.b64encode(
                                         f"x-access-token:{broad}".encode()).decode()})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=20)
    assert error.value.code == 403


def test_npm_through_the_gateway_reads_but_never_publishes(registry, gateway, tmp_path):
    project = tmp_path / "pkg"
    project.mkdir()
    (project / "package.json").write_text(json.dumps({"name": "agent-sandbox-demo", "version": "1.0.1"}))
    host = gateway.npm_url.split("://", 1)[1]
    (project / ".npmrc").write_text(f"registry={gateway.npm_url}/\n//{host}/:_authToken=an-attacker-supplied-token\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(project), "NO_UPDATE_NOTIFIER": "1",
           "npm_config_cache": str(tmp_path / "cache"), "npm_config_audit": "false"}

    def npm(*argv):
        return subprocess.run(["npm", *argv], cwd=project, capture_output=True, text=True, env=env, timeout=120)
    viewed = npm("view", "agent-sandbox-demo", "version")
    assert viewed.returncode == 0 and viewed.stdout.strip() == "1.0.0", viewed.stderr
    assert npm("publish").returncode != 0
    assert npm("unpublish", "agent-sandbox-demo", "--force").returncode != 0
    assert registry.effects == []
    refused = [e for e in settled(gateway) if e["vendor"] == "npm" and e["decision"] != "forward"]
    assert {(e["method"], e["rule"]) for e in refused} == {("PUT", "npm-publish"), ("DELETE", "npm-publish")}


GH_REFUSED = {
    "gh repo archive (api -X PATCH)": (["api", "-X", "PATCH", f"repos/{REPOSITORY}", "-F", "archived=true"],
                                       "gh-repo-destructive", "repo-archived"),
    "gh repo rename": (["repo", "rename", "renamed", "--yes"], "gh-repo-destructive", "repo-renamed"),
    "gh repo delete (api -X DELETE)": (["api", "-X", "DELETE", f"repos/{REPOSITORY}"], "gh-repo-destructive",
                                       "repo-deleted"),
    "gh secret list": (["secret", "list"], "gh-secret", "secret-read"),
    "gh api secrets": (["api", f"repos/{REPOSITORY}/actions/secrets"], "gh-secret", "secret-read"),
    "gh api -X PATCH variables": (["api", "-X", "PATCH", f"repos/{REPOSITORY}/actions/variables/ENV", "-f", "value=x"],
                                  "gh-variable", "variable-written"),
    "gh release delete-asset (api -X DELETE)": (["api", "-X", "DELETE", f"repos/{REPOSITORY}/releases/assets/7"],
                                                "gh-release-delete", "release-asset-deleted"),
    "gh release delete (api -X DELETE)": (["api", "-X", "DELETE", f"repos/{REPOSITORY}/releases/1"],
                                          "gh-release-delete", "release-deleted"),
    "gh api graphql deleteRef": (["api", "graphql", "-f", 'query=mutation { deleteRef(input: {refId: "R"}) '
                                  '{ clientMutationId } }'], "git-push-delete", "graphql:deleteRef"),
}


def gh(gateway, tmp_path, *argv, env: dict | None = None) -> subprocess.CompletedProcess:
    from egress.gateway_github import agent_environment
    home = tmp_path / "gh-home"
    home.mkdir(exist_ok=True)
    # In the container api.github.localhost resolves to the gateway (--add-host) on port 80; here
    # the same requests reach the gateway's loopback port as an HTTP proxy would send them.
    full = {"PATH": os.environ["PATH"], "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            **agent_environment(repository=REPOSITORY, registries=()), "HTTP_PROXY": gateway.github_url,
            "http_proxy": gateway.github_url, "NO_COLOR": "1", **(env or {})}
    full = {k: v for k, v in full.items() if v is not None}
    return subprocess.run(["gh", *argv], capture_output=True, text=True, env=full, timeout=60, cwd=home)


@pytest.mark.parametrize("name", sorted(GH_REFUSED))
def test_gh_through_the_gateway(github, gateway, tmp_path, name):
    argv, rule, effect = GH_REFUSED[name]
    done = gh(gateway, tmp_path, *argv)
    assert done.returncode != 0
    assert effect not in github.kinds()
    refused = [e for e in settled(gateway) if e["decision"] != "forward"]
    assert refused and refused[-1]["rule"] == rule, (done.stderr, settled(gateway))


def test_gh_everyday_calls_pass(github, gateway, tmp_path):
    done = gh(gateway, tmp_path, "api", f"repos/{REPOSITORY}")
    assert done.returncode == 0 and json.loads(done.stdout)["full_name"] == REPOSITORY, done.stderr
    done = gh(gateway, tmp_path, "api", "graphql", "-f", 'query=mutation { createPullRequest(input: {repositoryId: "R", '
              'baseRefName: "main", headRefName: "x", title: "t"}) { pullRequest { url } } }')
    assert done.returncode == 0, done.stderr
    assert github.kinds()[-1] == "graphql:createPullRequest"
    assert all(e["decision"] == "forward" for e in settled(gateway))


def test_gh_works_when_the_shell_drops_gh_token(github, gateway, tmp_path):
    """Codex's shell drops *TOKEN* variables; gh needs no token for github.localhost (gh 2.23)."""
    done = gh(gateway, tmp_path, "api", f"repos/{REPOSITORY}", env={"GH_TOKEN": None})
    assert done.returncode == 0 and json.loads(done.stdout)["full_name"] == REPOSITORY, done.stderr
    assert settled(gateway)[-1]["decision"] == "forward"


def test_without_a_credential_github_is_anonymous_and_read_only(github, registry, tmp_path):
    """A run with no GitHub credential: a token the agent found is dropped, a push refused."""
    process = GatewayProcess(tmp_path / "gateway", {"anthropic": "sk-ant-" + "k" * 30}, {"anthropic": "http://127.0.0.1:9"})
    (github_port,) = free_ports(1)
    policy = render_policy(load("autonomous").tripwire, repository=None, run_id=RUN_ID)
    process.conf.write_text(add_github_routes(process.conf_text, policy, with_token=False, port=github_port,
                                              registries=(), upstreams={"git": github.git_url, "api": github.api_url}))
    broad = github.issue_token(None, INSTALLED, prefix="ghp_")
    with process:
        url = f"http://127.0.0.1:{github_port}"
        status, _ = api(type("G", (), {"github_url": url}), "GET", f"/repos/{REPOSITORY}", token=broad)
        assert status == 401                                    # the fake saw no token at all
        agent = Agent(tmp_path / "agent", url)
        agent.git("init", "-q", str(agent.work), check=True)
        agent.git("commit", "-q", "--allow-empty", "-m", "x", check=True)
        header = base64.b64encode(f"x-access-token:{broad}".encode()).decode()
        done = agent.git("-c", f"http.extraHeader=Authorization: Basic {header}", "push",
                         f"https://github.com/{REPOSITORY}.git", f"HEAD:{NS}/x")
        assert done.returncode != 0
        git_entries = [e for e in settled(process) if e["vendor"] == "github-git"]
        assert git_entries and all(e["status"] == 401 for e in git_entries)
        # The push itself, sent by hand with the found token: refused before it reaches GitHub.
        line = f"{'0' * 40} {'a' * 40} {NS}/x\0report-status".encode()
        forged = urllib.request.Request(f"{url}/{REPOSITORY}.git/git-receive-pack", method="POST",
                                        data=f"{len(line) + 4:04x}".encode() + line + b"0000",
                                        headers={"Authorization": f"Basic {header}"})
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(forged, timeout=20)
        assert error.value.code == 403 and settled(process)[-1]["rule"] == "github-push-repository"
    assert ref_kinds(github) == []
