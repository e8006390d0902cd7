"""egress.github_policy on its own: pure data in, a decision out."""
from __future__ import annotations

import gzip
import json

import pytest

from egress import github_policy as gp
from renderer.model import load

RUN = "20250101-120000-abc123"
NS = f"refs/heads/agent/{RUN}"
A, B, Z = "a" * 40, "b" * 40, "0" * 40


@pytest.fixture(scope="module")
def tripwire():
    return load("autonomous").tripwire


@pytest.fixture(scope="module")
def policy(tripwire):
    return gp.render_policy(tripwire, repository="octo/widgets", run_id=RUN)


def pkt(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return f"{len(data) + 4:04x}".encode() + data


def push_body(*commands: tuple[str, str, str], caps: str = "report-status side-band-64k agent=git/2.39",
              pack: bytes = b"PACK\x00\x00\x00\x02garbage that is never read") -> bytes:
    lines = [f"{old} {new} {ref}" for old, new, ref in commands]
    body = pkt(lines[0] + "\0" + caps) if lines else b""
    body += b"".join(pkt(line + "\n") for line in lines[1:])
    return body + b"0000" + pack


def decide(policy, body: bytes, encoding: str = "", chunk: int | None = None) -> gp.Decision:
    inspector = gp.check_git(policy, "POST", "/octo/widgets.git/git-receive-pack", "",
                             {"Content-Encoding": encoding} if encoding else {})
    assert isinstance(inspector, gp.ReceivePackInspector)
    step = chunk or len(body) or 1
    for start in range(0, len(body), step):
        decision = inspector.feed(body[start:start + step])
        if decision is not None:
            return decision
    return inspector.finish()


# --- rendering from the profile -------------------------------------------------------------------

def test_refusals_take_the_tripwires_ids_and_reasons(policy, tripwire):
    reasons = {rule.id: rule.reason for rule in tripwire}
    for key, wall in {"secret": "gh-secret", "variable": "gh-variable", "push-delete": "git-push-delete",
                      "repo-destructive": "gh-repo-destructive", "release-delete": "gh-release-delete",
                      "auth": "gh-auth", "delete": "gh-api-delete", "npm-publish": "npm-publish",
                      "cargo-publish": "cargo-publish"}.items():
        assert policy.rules[key] == (wall, reasons[wall])
    assert NS in policy.rules["push-namespace"][1]
    assert policy.tripwire_only == ()


def test_a_wall_holds_when_the_profile_lacks_its_tripwire_rule():
    bare = gp.render_policy([{"id": "gh-pr-merge", "reason": "Merging is a person's decision."}],
                            repository="octo/widgets", run_id=RUN)
    decision = gp.check_api(bare, "PUT", "/repos/octo/widgets/actions/secrets/TOKEN")
    assert not decision.allowed and decision.rule == "gh-secret"
    assert bare.tripwire_only == ("gh-pr-merge",)


@pytest.mark.parametrize("repository", ["octo", "octo/wid gets", "-octo/x", "octo/x.git", "octo/..", "a/b/c"])
def test_a_bad_repository_is_refused(repository):
    with pytest.raises(ValueError, match="OWNER/NAME"):
        gp.render_policy([], repository=repository, run_id=RUN)


@pytest.mark.parametrize("namespace", ["refs/tags/agent/{run_id}", "refs/heads/agent/{run_id}/..", "agent/{run_id}",
                                       "refs/heads/agent/{run_id}.lock", "refs/heads/{other}"])
def test_a_bad_namespace_is_refused(namespace):
    with pytest.raises(ValueError, match="namespace"):
        gp.render_policy([], repository="octo/widgets", run_id=RUN, ref_namespace=namespace)


def test_the_policy_round_trips_through_json_and_refuses_a_partial_one(policy):
    data = json.loads(json.dumps(policy.to_json()))
    assert gp.Policy.from_json(data) == policy
    del data["rules"]["secret"]
    with pytest.raises(ValueError, match="secret"):
        gp.Policy.from_json(data)
    with pytest.raises(ValueError, match="missing or malformed"):
        gp.Policy.from_json({"repository": "octo/widgets"})


# --- git pushes: the command list ------------------------------------------------------------------

@pytest.mark.parametrize("command", [(Z, A, f"{NS}/fix"), (A, B, f"{NS}/fix"), (A, Z, f"{NS}/fix"), (Z, A, NS)])
def test_creates_updates_and_deletes_in_the_run_namespace_pass(policy, command):
    assert decide(policy, push_body(command)).allowed


@pytest.mark.parametrize("command,rule", [
    ((A, B, "refs/heads/main"), "github-push-namespace"),          # a force push looks like any update
    ((Z, A, "refs/heads/new-branch"), "github-push-namespace"),
    ((Z, A, "refs/tags/v1.0"), "github-push-namespace"),
    ((A, Z, "refs/heads/feature"), "git-push-delete"),
    ((A, Z, "refs/tags/v1.0"), "git-push-delete"),
    ((Z, A, f"{NS}-evil/x"), "github-push-namespace"),
    ((Z, A, f"refs/heads/AGENT/{RUN}/x"), "github-push-namespace"),
    ((Z, A, "refs/heads/agent/another-run/x"), "github-push-namespace"),
    ((Z, A, "refs/notes/commits"), "github-push-namespace"),
])
def test_refs_outside_the_namespace_are_refused(policy, command, rule):
    decision = decide(policy, push_body(command))
    assert not decision.allowed and decision.rule == rule and decision.kind == "git"


def test_one_ref_outside_refuses_the_whole_push(policy):
    decision = decide(policy, push_body((Z, A, f"{NS}/ok"), (A, B, "refs/heads/main")))
    assert not decision.allowed and decision.rule == "github-push-namespace"


def test_the_delete_reason_is_the_tripwires(policy, tripwire):
    decision = decide(policy, push_body((A, Z, "refs/heads/main")))
    assert decision.reason == next(r.reason for r in tripwire if r.id == "git-push-delete")
    assert decision.message().startswith("refused by the agent-sandbox gateway: git-push-delete: ")


@pytest.mark.parametrize("ref", [f"{NS}/../../main", f"{NS}/x.lock", f"{NS}/.hidden", f"{NS}/a b", f"{NS}//x",
                                 f"{NS}/x~1", f"{NS}/x^", f"{NS}/x:y", f"{NS}/@{{1}}", f"{NS}/", "HEAD", "main"])
def test_invalid_ref_names_are_refused_as_unreadable(policy, ref):
    decision = decide(policy, push_body((Z, A, ref)))
    assert not decision.allowed and decision.rule == "github-git-protocol"


def test_byte_by_byte_gives_the_same_decisions(policy):
    for body in (push_body((Z, A, f"{NS}/fix")), push_body((A, B, "refs/heads/main"))):
        assert decide(policy, body, chunk=1) == decide(policy, body)


def test_the_decision_comes_before_the_pack(policy):
    inspector = gp.check_git(policy, "POST", "/octo/widgets/git-receive-pack", "", {})
    decision = inspector.feed(push_body((A, B, "refs/heads/main"), pack=b""))
    assert decision is not None and not decision.allowed


def test_shallow_lines_sha256_ids_and_capabilities_on_any_line(policy):
    body = pkt(f"shallow {A}\n") + push_body((Z, A, f"{NS}/x"))
    assert decide(policy, body).allowed
    long_old, long_new = "1" * 64, "2" * 64
    assert decide(policy, push_body((long_old, long_new, f"{NS}/x"), caps="object-format=sha256")).allowed
    mixed = push_body((A, "2" * 64, f"{NS}/x"))
    assert decide(policy, mixed).rule == "github-git-protocol"
    later_caps = pkt(f"{Z} {A} {NS}/x\n") + pkt(f"{A} {B} refs/heads/main\0report-status") + b"0000"
    assert decide(policy, later_caps).rule == "github-push-namespace"


def test_upper_case_lengths_and_ids_are_read_as_git_reads_them(policy):
    line = f"{A.upper()} {B.upper()} refs/heads/main\0report-status".encode()
    body = f"{len(line) + 4:04X}".encode() + line + b"0000"
    assert decide(policy, body).rule == "github-push-namespace"


@pytest.mark.parametrize("body", [
    b"zzzz", b"0003", b"0001", pkt(f"{Z} {A}\0report-status") + b"0000",
    pkt(f"{Z}  {A} {NS}/x") + b"0000", pkt(b"push-cert\0report-status\n") + b"0000",
    pkt(f"{Z} {A} {NS}/x\0".encode() + b"\xff\xfe") + b"0000", pkt(f"shallow {A[:-1]}\n") + b"0000",
])
def test_malformed_command_lists_are_refused(policy, body):
    decision = decide(policy, body)
    assert not decision.allowed and decision.rule == "github-git-protocol"


def test_a_truncated_or_endless_command_list_is_refused(policy):
    assert decide(policy, push_body((Z, A, f"{NS}/x"))[:30]).rule == "github-git-protocol"
    endless = b"".join(pkt(f"{Z} {A} {NS}/x{i}\n") for i in range(15000))
    decision = decide(policy, endless, chunk=65536)
    assert not decision.allowed and decision.rule == "github-git-protocol"


def test_an_empty_command_list_changes_nothing_and_passes(policy):
    assert decide(policy, b"0000").allowed


def test_a_gzip_body_is_read_too(policy):
    assert decide(policy, gzip.compress(push_body((Z, A, f"{NS}/x"))), "gzip", chunk=5).allowed
    decision = decide(policy, gzip.compress(push_body((A, B, "refs/heads/main"))), "x-gzip", chunk=5)
    assert decision.rule == "github-push-namespace"
    assert decide(policy, b"not gzip at all", "gzip").rule == "github-git-protocol"
    assert decide(policy, push_body((Z, A, f"{NS}/x")), "deflate").rule == "github-git-protocol"


def test_a_gzip_bomb_stops_at_the_limit(policy):
    bomb = gzip.compress(pkt(f"{Z} {A} {NS}/x\0report-status") + b"0004" * (4 << 20))
    decision = decide(policy, bomb, "gzip", chunk=4096)
    assert not decision.allowed and decision.rule == "github-git-protocol"


def _pkt_payloads(data: bytes) -> list[bytes]:
    out, offset = [], 0
    while offset < len(data):
        size = int(data[offset:offset + 4], 16)
        out.append(data[offset + 4:offset + size] if size else b"")
        offset += size or 4
    return out


def test_the_refusal_is_a_report_git_prints(policy):
    inspector = gp.check_git(policy, "POST", "/octo/widgets.git/git-receive-pack", "", {})
    inspector.feed(push_body((Z, A, f"{NS}/ok"), (A, B, "refs/heads/main"), caps="report-status"))
    content_type, body = inspector.refusal()
    assert content_type == "application/x-git-receive-pack-result"
    lines = _pkt_payloads(body)
    assert lines[0] == b"unpack ok\n" and lines[-1] == b""
    assert lines[2].startswith(b"ng refs/heads/main github-push-namespace: A push may")
    assert lines[1].startswith(f"ng {NS}/ok refused with the rest".encode())
    inspector = gp.check_git(policy, "POST", "/octo/widgets.git/git-receive-pack", "", {})
    inspector.feed(push_body((A, B, "refs/heads/main")))
    banded = _pkt_payloads(inspector.refusal()[1])
    assert banded[0].startswith(b"\x02refused by the agent-sandbox gateway") and banded[1].startswith(b"\x01")
    inspector = gp.check_git(policy, "POST", "/octo/widgets.git/git-receive-pack", "", {})
    inspector.feed(push_body((A, B, "refs/heads/main"), caps="agent=curl"))
    assert inspector.refusal() is None


# --- git smart HTTP paths --------------------------------------------------------------------------

@pytest.mark.parametrize("method,path,query", [
    ("GET", "/octo/widgets.git/info/refs", "service=git-upload-pack"),
    ("GET", "/octo/widgets/info/refs", "service=git-receive-pack"),
    ("POST", "/octo/widgets.git/git-upload-pack", ""),
    ("POST", "/someone/else.git/git-upload-pack", ""),
    ("GET", "/someone/else/info/refs", "service=git-upload-pack"),
])
def test_fetch_and_clone_pass(policy, method, path, query):
    assert gp.check_git(policy, method, path, query, {}).allowed


@pytest.mark.parametrize("method,path,query,rule", [
    ("POST", "/octo/other.git/git-receive-pack", "", "github-push-repository"),
    ("POST", "/attacker/widgets.git/git-receive-pack", "", "github-push-repository"),
    ("GET", "/octo/widgets.git/git-receive-pack", "", "github-git-path"),
    ("GET", "/octo/widgets.git/info/refs", "", "github-git-path"),
    ("GET", "/octo/widgets.git/info/refs", "service=git-upload-pack&service=x", "github-git-path"),
    ("GET", "/octo/widgets.git/HEAD", "", "github-git-path"),
    ("GET", "/octo/widgets.git/objects/info/packs", "", "github-git-path"),
    ("POST", "/octo/widgets.git/info/lfs/objects/batch", "", "github-git-path"),
    ("POST", "/octo/widgets%2egit/git-receive-pack", "", "github-git-path"),
    ("POST", "/octo/../octo/widgets.git/git-receive-pack", "", "github-git-path"),
])
def test_other_git_requests_are_refused(policy, method, path, query, rule):
    decision = gp.check_git(policy, method, path, query, {})
    assert isinstance(decision, gp.Decision) and not decision.allowed and decision.rule == rule


def test_the_run_repository_is_matched_without_case(policy):
    assert isinstance(gp.check_git(policy, "POST", "/Octo/Widgets.git/git-receive-pack", "", {}),
                      gp.ReceivePackInspector)


def test_a_method_override_header_is_refused_everywhere(policy):
    headers = {"X-HTTP-Method-Override": "DELETE"}
    assert gp.check_git(policy, "GET", "/octo/widgets/info/refs", "service=git-upload-pack", headers).rule \
        == "github-method-override"
    assert gp.check_api(policy, "GET", "/repos/octo/widgets", headers).rule == "github-method-override"
    assert gp.check_registry(policy, "npm", "GET", "/left-pad", {"x-http-method": "PUT"}).rule \
        == "github-method-override"


# --- the REST API ----------------------------------------------------------------------------------

R = "/repos/octo/widgets"


@pytest.mark.parametrize("method,path", [
    ("GET", "/"), ("GET", R), ("HEAD", R), ("GET", f"{R}/pulls"), ("GET", f"{R}/pulls/3/files"),
    ("GET", f"{R}/contents/src/a%20b.py"), ("GET", f"{R}/actions/runs/9/logs"), ("GET", f"{R}/collaborators"),
    ("GET", "/repos/someone/library/contents/README.md"), ("GET", "/search/code"), ("GET", "/users/octocat"),
    ("GET", "/rate_limit"), ("GET", "/user"), ("GET", "/orgs/octo"), ("GET", "/installation/repositories"),
    ("POST", f"{R}/pulls"), ("PATCH", f"{R}/pulls/3"), ("POST", f"{R}/pulls/3/comments"),
    ("POST", f"{R}/pulls/3/requested_reviewers"), ("POST", f"{R}/issues"), ("PATCH", f"{R}/issues/4"),
    ("POST", f"{R}/issues/4/comments"), ("PATCH", f"{R}/issues/comments/5"), ("POST", f"{R}/issues/4/labels"),
    ("POST", f"{R}/issues/comments/5/reactions"), ("POST", f"{R}/git/blobs"), ("POST", f"{R}/git/commits"),
    ("POST", "/repos/OCTO/Widgets/issues"),
])
def test_what_a_coding_agent_does_passes(policy, method, path):
    decision = gp.check_api(policy, method, path)
    assert decision.allowed, decision


@pytest.mark.parametrize("method,path,rule", [
    # gh repo delete / archive / edit / rename, and their raw API forms
    ("DELETE", R, "gh-repo-destructive"), ("PATCH", R, "gh-repo-destructive"), ("DELETE", f"{R}/", "gh-repo-destructive"),
    ("DELETE", "/REPOS/octo/widgets", "gh-repo-destructive"), ("POST", f"{R}/transfer", "gh-repo-destructive"),
    ("PUT", f"{R}/topics", "gh-repo-destructive"), ("PUT", f"{R}/branches/main/protection", "gh-repo-destructive"),
    ("POST", f"{R}/branches/main/rename", "gh-repo-destructive"), ("PUT", f"{R}/vulnerability-alerts", "gh-repo-destructive"),
    ("POST", f"{R}/rulesets", "gh-repo-destructive"), ("PATCH", "/repos/someone/else", "gh-repo-destructive"),
    # gh secret ..., including reads and the public key needed to write one
    ("GET", f"{R}/actions/secrets", "gh-secret"), ("GET", f"{R}/actions/secrets/public-key", "gh-secret"),
    ("PUT", f"{R}/actions/secrets/NPM_TOKEN", "gh-secret"), ("DELETE", f"{R}/actions/secrets/X", "gh-secret"),
    ("GET", f"{R}/environments/prod/secrets", "gh-secret"), ("PUT", "/orgs/octo/actions/secrets/X", "gh-secret"),
    ("GET", f"{R}/dependabot/secrets", "gh-secret"), ("GET", f"{R}/codespaces/secrets/X", "gh-secret"),
    # gh variable ...
    ("GET", f"{R}/actions/variables", "gh-variable"), ("PATCH", f"{R}/actions/variables/ENV", "gh-variable"),
    ("POST", f"{R}/environments/prod/variables", "gh-variable"), ("POST", "/orgs/octo/actions/variables", "gh-variable"),
    # gh release delete / delete-asset, and other release changes
    ("DELETE", f"{R}/releases/1", "gh-release-delete"), ("DELETE", f"{R}/releases/assets/7", "gh-release-delete"),
    ("POST", f"{R}/releases", "github-release"), ("PATCH", f"{R}/releases/1", "github-release"),
    # gh auth, and the run's own token
    ("DELETE", "/installation/token", "gh-auth"), ("POST", "/authorizations", "gh-auth"),
    ("GET", "/user/keys", "gh-auth"), ("POST", "/app/installations/1/access_tokens", "gh-auth"),
    ("DELETE", "/applications/abc/token", "gh-auth"),
    # access
    ("POST", f"{R}/hooks", "github-access"), ("GET", f"{R}/hooks/1/config", "github-access"),
    ("POST", f"{R}/keys", "github-access"), ("PUT", f"{R}/collaborators/mallory", "github-access"),
    ("PATCH", f"{R}/invitations/3", "github-access"), ("POST", f"{R}/actions/runners/registration-token", "github-access"),
    ("PUT", "/orgs/octo/memberships/mallory", "github-access"),
    # actions and workflows
    ("POST", f"{R}/actions/workflows/ci.yml/dispatches", "github-actions"), ("POST", f"{R}/dispatches", "github-actions"),
    ("POST", f"{R}/actions/runs/9/rerun", "github-actions"), ("PUT", f"{R}/actions/permissions", "github-actions"),
    ("PUT", f"{R}/actions/workflows/ci.yml/enable", "github-actions"),
    # merges, statuses, reviews
    ("PUT", f"{R}/pulls/3/merge", "github-merge"), ("POST", f"{R}/merges", "github-merge"),
    ("POST", f"{R}/merge-upstream", "github-merge"), ("POST", f"{R}/statuses/{A}", "github-status"),
    ("POST", f"{R}/check-runs", "github-status"), ("POST", f"{R}/deployments", "github-status"),
    ("POST", f"{R}/pulls/3/reviews", "github-review"), ("POST", f"{R}/pulls/3/reviews/1/events", "github-review"),
    # other DELETEs, other writes
    ("DELETE", f"{R}/issues/comments/5", "gh-api-delete"), ("DELETE", "/gists/abc", "gh-api-delete"),
    ("DELETE", f"{R}/contents/README.md", "gh-api-delete"),
    ("PUT", f"{R}/contents/README.md", "github-api-allowlist"), ("POST", f"{R}/forks", "github-api-allowlist"),
    ("POST", "/user/repos", "github-api-allowlist"), ("POST", "/orgs/octo/repos", "github-api-allowlist"),
    ("POST", "/repos/someone/else/pulls", "github-api-allowlist"), ("POST", "/repos/octo/other/issues", "github-api-allowlist"),
    ("TRACE", R, "github-api-allowlist"), ("OPTIONS", R, "github-api-allowlist"), ("GET", "/notifications", "github-api-allowlist"),
    # paths GitHub could read differently
    ("GET", f"{R}/actions%2Fsecrets", "github-api-path"), ("GET", f"{R}/./actions/secrets", "github-api-path"),
    ("GET", f"{R}/x/../actions/secrets", "github-api-path"), ("GET", f"/{R}", "github-api-path"),
    ("GET", f"{R}/actions/%73ecrets/%2e%2e", "github-api-path"), ("GET", f"{R}/actions/secrets;x", "github-api-path"),
    ("GET", f"{R}/%25", "github-api-path"), ("GET", "repos/octo/widgets", "github-api-path"),
    ("GET", f"{R}/actions\\secrets", "github-api-path"), ("GET", f"{R}/%ff", "github-api-path"),
])
def test_the_rest_is_refused_with_its_rule(policy, method, path, rule):
    decision = gp.check_api(policy, method, path)
    assert not decision.allowed and decision.rule == rule, decision
    assert decision.kind == "api" and decision.log_decision == "deny_api"


def test_percent_decoding_does_not_hide_a_secret(policy):
    decision = gp.check_api(policy, "GET", f"{R}/actions/%73ecrets")
    assert not decision.allowed and decision.rule == "gh-secret"


def test_refs_through_the_api_follow_the_push_rule(policy):
    def post(body):
        assert gp.api_needs_body("POST", f"{R}/git/refs")
        return gp.check_api(policy, "POST", f"{R}/git/refs", {}, body)
    assert post(json.dumps({"ref": f"{NS}/x", "sha": A}).encode()).allowed
    assert post(json.dumps({"ref": "refs/heads/main", "sha": A}).encode()).rule == "github-push-namespace"
    assert post(None).rule == "github-request-body"
    assert post(b"{not json").rule == "github-request-body"
    duplicate = f'{{"ref": "{NS}/x", "ref": "refs/heads/main", "sha": "{A}"}}'.encode()
    assert post(duplicate).rule == "github-request-body"
    assert gp.check_api(policy, "PATCH", f"{R}/git/refs/heads/main").rule == "github-push-namespace"
    assert gp.check_api(policy, "DELETE", f"{R}/git/refs/heads/feature").rule == "git-push-delete"
    assert gp.check_api(policy, "PATCH", f"{R}/git/refs/heads/agent/{RUN}/x").allowed
    assert gp.check_api(policy, "DELETE", f"{R}/git/refs/heads/agent/{RUN}/x").allowed
    assert gp.check_api(policy, "DELETE", "/repos/someone/else/git/refs/heads/main").rule == "gh-api-delete"
    assert not gp.api_needs_body("POST", f"{R}/git/blobs") and not gp.api_needs_body("GET", "/graphql")


# --- GraphQL ---------------------------------------------------------------------------------------

def gql(policy, query, operation=None, raw=None):
    body = raw if raw is not None else json.dumps({"query": query, "operationName": operation, "variables": {}}).encode()
    assert gp.api_needs_body("POST", "/graphql")
    return gp.check_api(policy, "POST", "/graphql", {}, body)


@pytest.mark.parametrize("query", [
    "{ viewer { login } }",
    "query Repo($o: String!) { repository(owner: $o, name: \"widgets\") { pullRequests(first: 5) { nodes { title } } } }",
    "mutation { createPullRequest(input: {repositoryId: \"R\", baseRefName: \"main\", headRefName: \"x\", title: \"t\"}) "
    "{ pullRequest { url } } }",
    "mutation C($i: AddCommentInput!) { addComment(input: $i) { clientMutationId } __typename }",
    "mutation { a: createIssue(input: {repositoryId: \"R\", title: \"t\"}) { issue { url } } }",
])
def test_queries_and_allowlisted_mutations_pass(policy, query):
    assert gql(policy, query).allowed


@pytest.mark.parametrize("query,rule", [
    ("mutation { deleteRef(input: {refId: \"x\"}) { clientMutationId } }", "git-push-delete"),
    ("mutation { updateRefs(input: {repositoryId: \"R\", refUpdates: []}) { clientMutationId } }", "github-push-namespace"),
    ("mutation { updateRef(input: {refId: \"x\", oid: \"a\", force: true}) { clientMutationId } }", "github-push-namespace"),
    ("mutation { createCommitOnBranch(input: {}) { clientMutationId } }", "github-push-namespace"),
    ("mutation { archiveRepository(input: {repositoryId: \"R\"}) { clientMutationId } }", "gh-repo-destructive"),
    ("mutation { updateRepository(input: {repositoryId: \"R\", name: \"x\"}) { clientMutationId } }", "gh-repo-destructive"),
    ("mutation { mergePullRequest(input: {pullRequestId: \"P\"}) { clientMutationId } }", "github-merge"),
    ("mutation { addPullRequestReview(input: {event: APPROVE}) { clientMutationId } }", "github-review"),
    ("mutation { deleteIssue(input: {issueId: \"I\"}) { clientMutationId } }", "gh-api-delete"),
    ("mutation { addStar(input: {starrableId: \"R\"}) { clientMutationId } }", "github-graphql-mutation"),
    ("mutation { ok: addComment(input: {}) { clientMutationId } addComment: deleteRef(input: {}) { clientMutationId } }",
     "git-push-delete"),
    ("mutation { ...F } fragment F on Mutation { deleteRef(input: {}) { clientMutationId } }", "git-push-delete"),
    ("mutation { ... on Mutation { ...G } } fragment G on Mutation { archiveRepository(input: {}) { clientMutationId } }",
     "gh-repo-destructive"),
    ("mutation { ...Missing }", "github-graphql-parse"),
    ("mutation { ...F } fragment F on Mutation { ...F }", "github-graphql-parse"),
    ("subscription { issueUpdated { id } }", "github-graphql-subscription"),
    ("query A { viewer { login } } query B { viewer { id } }", "github-graphql-ambiguous"),
    ("mutation { deleteRef(", "github-graphql-parse"),
    ("type Query { x: Int }", "github-graphql-parse"),
    ("query A { viewer { login } } type Query { x: Int }", "github-graphql-parse"),
    ("{" * 3000 + "}" * 3000, "github-graphql-parse"),
    ("{ " + "a " * 30000 + "}", "github-graphql-parse"),
])
def test_mutations_outside_the_allowlist_and_odd_documents_are_refused(policy, query, rule):
    decision = gql(policy, query)
    assert not decision.allowed and decision.rule == rule, decision
    assert decision.log_decision == "deny_graphql"


def test_every_operation_is_judged_not_only_the_named_one(policy):
    document = "query Safe { viewer { login } } mutation Bad { deleteRef(input: {}) { clientMutationId } }"
    assert gql(policy, document, operation="Safe").rule == "git-push-delete"
    assert gql(policy, "query A { viewer { login } } query B { viewer { id } }", operation="B").allowed
    assert gql(policy, "query A { viewer { login } }", operation="Other").rule == "github-graphql-ambiguous"


@pytest.mark.parametrize("raw,rule", [
    (b"not json", "github-request-body"), (b"[{\"query\": \"{ viewer { login } }\"}]", "github-graphql-parse"),
    (b'{"query": 3}', "github-graphql-parse"), (b'{"query": "{ a }", "operationName": 1}', "github-graphql-parse"),
    (b'{"query": "{ a }", "query": "mutation { deleteRef(input: {}) { x } }"}', "github-request-body"),
    (b" " * (gp.MAX_INSPECTED_BODY + 1), "github-request-body"),
])
def test_graphql_bodies_that_cannot_be_read_are_refused(policy, raw, rule):
    assert gql(policy, None, raw=raw).rule == rule


def test_graphql_only_by_post(policy):
    assert gp.check_api(policy, "GET", "/graphql").rule == "github-api-allowlist"


# --- registries ------------------------------------------------------------------------------------

@pytest.mark.parametrize("registry,method,path", [
    ("npm", "GET", "/left-pad"), ("npm", "HEAD", "/left-pad/-/left-pad-1.3.0.tgz"),
    ("npm", "POST", "/-/npm/v1/security/advisories/bulk"), ("npm", "POST", "/-/npm/v1/security/audits/quick"),
    ("pypi", "GET", "/simple/requests/"), ("crates", "GET", "/api/v1/crates/serde"),
])
def test_registry_reads_pass(policy, registry, method, path):
    assert gp.check_registry(policy, registry, method, path).allowed


@pytest.mark.parametrize("registry,method,path,rule", [
    ("npm", "PUT", "/left-pad", "npm-publish"), ("npm", "PUT", "/@scope%2fpkg", "npm-publish"),
    ("npm", "DELETE", "/left-pad/-rev/3-abc", "npm-publish"), ("npm", "POST", "/-/v1/login", "npm-publish"),
    ("npm", "PUT", "/-/package/left-pad/dist-tags/latest", "npm-publish"),
    ("npm", "POST", "/-/npm/v1/security/advisories/bulk/../../../left-pad", "npm-publish"),
    ("crates", "PUT", "/api/v1/crates/new", "cargo-publish"), ("crates", "DELETE", "/api/v1/crates/serde/1.0.0/yank",
                                                               "cargo-publish"),
    ("crates", "PUT", "/api/v1/crates/serde/owners", "cargo-publish"), ("pypi", "POST", "/legacy/", "pypi-publish"),
])
def test_registry_writes_are_refused(policy, registry, method, path, rule):
    decision = gp.check_registry(policy, registry, method, path)
    assert not decision.allowed and decision.rule == rule and decision.log_decision == "deny_registry"


def test_an_unknown_registry_is_an_error(policy):
    with pytest.raises(ValueError, match="registry 'rubygems'"):
        gp.check_registry(policy, "rubygems", "GET", "/")


def test_a_run_without_a_github_credential_reads_only(tripwire):
    readonly = gp.render_policy(tripwire, repository=None, run_id=RUN)
    assert gp.Policy.from_json(json.loads(json.dumps(readonly.to_json()))) == readonly
    decision = gp.check_git(readonly, "POST", "/octo/widgets.git/git-receive-pack", "", {})
    assert decision.rule == "github-push-repository" and "none in this run" in decision.reason
    assert gp.check_api(readonly, "POST", f"{R}/pulls").rule == "github-api-allowlist"
    assert gp.check_api(readonly, "POST", f"{R}/git/refs", {}, json.dumps({"ref": f"{NS}/x"}).encode()).rule \
        == "github-api-allowlist"
    assert gp.check_api(readonly, "GET", f"{R}/pulls").allowed
    assert gp.check_git(readonly, "POST", "/octo/widgets.git/git-upload-pack", "", {}).allowed
