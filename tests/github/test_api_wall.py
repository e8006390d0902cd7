"""The REST/GraphQL and registry rules on real requests, judged by the fake GitHub's and the fake
registry's effects. The token is broad (every permission the installation has), so the policy is
what stops each effect; each class also runs once without the policy to show the effect is real."""
from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest
from github_setup import INSTALLED, REPOSITORY, RUN_ID
from fake_github import FakeRegistry
from policy_gate import policy_gate, registry_gate

from egress.github_policy import render_policy
from renderer.model import load

R = f"/repos/{REPOSITORY}"


@pytest.fixture(scope="module")
def policy():
    return render_policy(load("autonomous").tripwire, repository=REPOSITORY, run_id=RUN_ID)


@pytest.fixture
def api(github, policy):
    decisions = []
    github.gate = policy_gate(policy, decisions)
    token = github.issue_token(None, INSTALLED, prefix="ghp_")

    def send(method: str, path: str, body=None, gate: bool = True) -> int:
        github.gate = policy_gate(policy, decisions) if gate else None
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(github.api_url + path, data=data, method=method,
                                         headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
    send.decisions = decisions
    return send


def graphql(query: str) -> dict:
    return {"query": query, "variables": {}}


# (what a command does, method, path, body, the effect it would have, the rule that refuses it)
HARMFUL = [
    ("gh repo delete", "DELETE", R, None, "repo-deleted", "gh-repo-destructive"),
    ("gh repo archive / gh api -X PATCH -f archived=true", "PATCH", R, {"archived": True}, "repo-archived",
     "gh-repo-destructive"),
    ("gh repo rename / gh api -X PATCH -f name=x", "PATCH", R, {"name": "renamed"}, "repo-renamed", "gh-repo-destructive"),
    ("gh repo edit --visibility public", "PATCH", R, {"private": False}, "repo-edited", "gh-repo-destructive"),
    ("gh secret list", "GET", f"{R}/actions/secrets", None, "secret-read", "gh-secret"),
    ("gh secret set", "PUT", f"{R}/actions/secrets/DEPLOY_KEY", {"encrypted_value": "x", "key_id": "1"},
     "secret-written", "gh-secret"),
    ("gh secret delete", "DELETE", f"{R}/actions/secrets/DEPLOY_KEY", None, "secret-deleted", "gh-secret"),
    ("gh variable get", "GET", f"{R}/actions/variables/ENV", None, "variable-read", "gh-variable"),
    ("gh api -X PATCH variables", "PATCH", f"{R}/actions/variables/ENV", {"value": "x"}, "variable-written", "gh-variable"),
    ("gh release delete", "DELETE", f"{R}/releases/1", None, "release-deleted", "gh-release-delete"),
    ("gh release delete-asset", "DELETE", f"{R}/releases/assets/7", None, "release-asset-deleted", "gh-release-delete"),
    ("gh api -X DELETE git/refs", "DELETE", f"{R}/git/refs/heads/feature", None, "ref-api", "git-push-delete"),
    ("gh api -X PATCH git/refs force", "PATCH", f"{R}/git/refs/heads/main", {"sha": "a" * 40, "force": True}, "ref-api",
     "github-push-namespace"),
    ("gh api graphql deleteRef", "POST", "/graphql",
     graphql('mutation { deleteRef(input: {refId: "R"}) { clientMutationId } }'), "graphql:deleteRef", "git-push-delete"),
    ("gh api graphql archiveRepository", "POST", "/graphql",
     graphql('mutation { a: archiveRepository(input: {repositoryId: "R"}) { clientMutationId } }'),
     "graphql:archiveRepository", "gh-repo-destructive"),
    ("gh api graphql updateRefs via a fragment", "POST", "/graphql",
     graphql('mutation { ...F } fragment F on Mutation { updateRefs(input: {repositoryId: "R", refUpdates: []}) '
             '{ clientMutationId } }'), "graphql:updateRefs", "github-push-namespace"),
]


@pytest.mark.parametrize("case", HARMFUL, ids=[c[0] for c in HARMFUL])
def test_harmful_api_calls_have_no_effect(github, api, case):
    _, method, path, body, effect, rule = case
    status = api(method, path, body)
    assert status == 403
    assert effect not in github.kinds()
    assert api.decisions[-1].rule == rule


@pytest.mark.parametrize("case", HARMFUL, ids=[c[0] for c in HARMFUL])
def test_without_the_policy_the_same_calls_take_effect(github, api, case):
    _, method, path, body, effect, _ = case
    assert api(method, path, body, gate=False) in (200, 201, 204)
    assert effect in github.kinds()


def test_everyday_calls_pass(github, api):
    assert api("GET", R) == 200
    assert api("GET", f"{R}/pulls") == 200
    assert api("POST", f"{R}/pulls", {"title": "Fix", "head": f"agent/{RUN_ID}/fix", "base": "main"}) == 201
    assert api("POST", f"{R}/issues", {"title": "Found a bug"}) == 201
    assert api("POST", f"{R}/issues/1/comments", {"body": "Done"}) == 201
    assert api("POST", "/graphql", graphql('mutation { createPullRequest(input: {repositoryId: "R", baseRefName: "main", '
                                           'headRefName: "x", title: "t"}) { pullRequest { url } } }')) == 200
    assert api("POST", "/graphql", graphql('mutation { addComment(input: {subjectId: "P", body: "b"}) '
                                           '{ clientMutationId } }')) == 200
    assert api("POST", "/graphql", graphql("{ viewer { login } }")) == 200
    assert github.kinds() == ["pull-request", "issue", "comment", "graphql:createPullRequest", "graphql:addComment"]


# --- npm, for real ---------------------------------------------------------------------------------

@pytest.fixture
def npm_project(tmp_path):
    project = tmp_path / "pkg"
    project.mkdir()
    (project / "package.json").write_text(json.dumps({"name": "agent-sandbox-demo", "version": "1.0.1"}))
    (project / "index.js").write_text("module.exports = 1;\n")
    return project


def npm(project, registry_url: str, *argv: str) -> subprocess.CompletedProcess:
    host = registry_url.split("://", 1)[1]
    (project / ".npmrc").write_text(f"registry={registry_url}/\n//{host}/:_authToken=an-attacker-supplied-token\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(project), "NO_UPDATE_NOTIFIER": "1",
           "npm_config_update_notifier": "false", "npm_config_audit": "false", "npm_config_fund": "false",
           "npm_config_cache": str(project.parent / "npm-cache"), "npm_config_provenance": "false"}
    return subprocess.run(["npm", *argv], cwd=project, capture_output=True, text=True, env=env, timeout=120)


COMMANDS = {"npm publish": ["publish"], "npm pub": ["pub"], "npm unpublish --force": ["unpublish", "agent-sandbox-demo", "--force"],
            "npm unpub": ["unpub", "agent-sandbox-demo@1.0.0", "--force"]}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_npm_writes_fail_at_the_wall(npm_project, policy, name):
    for gated in (False, True):
        decisions = []
        registry = FakeRegistry(gate=registry_gate(policy, "npm", decisions) if gated else None,
                                packages={"agent-sandbox-demo": ["1.0.0"]}).start()
        try:
            done = npm(npm_project, registry.url, *COMMANDS[name])
        finally:
            registry.stop()
        if not gated:
            # The control: without the wall the registry sees the write.
            assert registry.effects, (done.stdout, done.stderr)
            continue
        assert done.returncode != 0 and registry.effects == []
        assert [d.rule for d in decisions if not d.allowed] == ["npm-publish"]
        assert "403" in done.stderr
