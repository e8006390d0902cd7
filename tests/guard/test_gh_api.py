"""Issue 13: the raw API has the same effects as the gh subcommands the tripwire denies. The
endpoint matcher decides the method as gh does (-X/--method, else POST when the call sends fields
or --input, else GET) and reads GraphQL documents with the credential gateway's own parser and
allowlist (egress/github_policy.py)."""

import pytest

from guard.classify import classify
from guard.policy import Endpoint, PolicyError, compile_policy, parse_matcher
from guard.shellparse import parse

ARCHIVE = "mutation { archiveRepository(input: {repositoryId: \"R_1\"}) { clientMutationId } }"
COMMENT = "mutation { addComment(input: {subjectId: \"I_1\", body: \"done\"}) { clientMutationId } }"


@pytest.mark.parametrize("command", [
    "gh api -X PATCH repos/o/r -f archived=true",
    "gh api --method=patch /repos/o/r -F private=false",
    "gh api -XPATCH https://api.github.com/repos/o/r -f name=renamed",
    "gh api repos/o/r -f name=renamed",  # fields make gh POST
    "gh api repos/o/r --input settings.json",
    "gh api -X DELETE repos/o/r",
    'gh api -X PATCH "repos/$REPO" -f archived=true',  # $REPO is owner/name
    "gh api -X POST repos/o/r/transfer -f new_owner=elsewhere",
    "gh api -X PUT repos/o/r/topics -f 'names[]=x'",
    "gh api repos/{owner}/{repo}/actions/secrets",
    "gh api repos/o/r/actions/secrets/public-key",
    "gh api -X PUT repos/o/r/actions/secrets/TOKEN -f encrypted_value=x",
    "gh api orgs/o/actions/secrets",
    "gh api repos/o/r/actions/variables",
    'gh api "repos/$R/actions/variables/NAME" -X PATCH -f value=x',
    f"gh api graphql -f query='{ARCHIVE}'",
    f"gh api graphql --raw-field query='{ARCHIVE}'",
    "gh api graphql -f query='mutation { deleteRef(input: {refId: \"x\"}) { clientMutationId } }'",
    f"gh api graphql -f query='{COMMENT} mutation B {{ deleteIssue(input: {{issueId: \"x\"}}) {{ clientMutationId }} }}' "
    "-f operationName=A",  # every operation is judged, not only the one named
    "gh api graphql -F query=@mutation.graphql",  # from a file: not known here
    "gh api graphql --input body.json",
    'gh api graphql -f query="$Q"',
    "gh api graphql -f query='mutation {'",  # the gateway cannot parse it either
])
def test_raw_api_calls_with_the_effects_of_denied_subcommands(runtime, command):
    decision = classify(command, runtime)
    assert decision.decision == "deny" and "gh-api-write" in decision.matched, decision


@pytest.mark.parametrize("command", [
    "gh api repos/o/r",
    "gh api repos/o/r/pulls --jq '.[].title'",
    "gh api repos/o/r/issues -f title=bug -f body=text",
    "gh api -X PATCH repos/o/r/issues/12 -f state=closed",
    "gh api repos/o/r/pulls/3/comments -f body=looks-good",
    "gh api repos/o/r/actions/runs",
    'gh api "repos/$REPO/pulls" --paginate',
    "gh api graphql -f query='query { viewer { login } }'",
    f"gh api graphql -f query='{COMMENT}'",
    "gh api graphql -F owner=$OWNER -f query='query($owner: String!) { repositoryOwner(login: $owner) { login } }'",
    "gh pr create --title x --body y",
    "echo 'gh api -X PATCH repos/o/r -f archived=true'",
])
def test_everyday_api_calls_stay_allowed(runtime, command):
    assert classify(command, runtime).decision == "allow"


def test_gh_subcommands_with_the_same_effects(runtime):
    assert classify("gh release delete-asset v1.0 build.zip", runtime).rule == "gh-release-delete"
    assert classify("gh api -X POST repos/o/r/rename -f new_name=x", runtime).rule == "gh-api-write"


def words(text):
    return parse(text)[0].words[2:]


@pytest.mark.parametrize("text,methods", [
    ("gh api x", {"GET"}), ("gh api x -f a=b", {"POST"}), ("gh api x -Fa=b", {"POST"}),
    ("gh api x --input f", {"POST"}), ("gh api -X put x -f a=b", {"PUT"}), ("gh api -iX PATCH x", {"PATCH"}),
    ("gh api --method=delete x", {"DELETE"}), ("gh api -X $M x", {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                                                  "OPTIONS"}),
])
def test_the_method_as_gh_decides_it(text, methods):
    assert Endpoint("x").method(words(text)) == frozenset(methods)


@pytest.mark.parametrize("raw,error", [
    ({"endpoint": ""}, r"expected an API path glob"),
    ({"endpoint": "repos/*/*", "method": ["FETCH"]}, r"\['FETCH'\] are not HTTP methods"),
    ({"endpoint": "graphql", "mutation": "any"}, r"expected 'not-allowlisted'"),
    ({"endpoint": "x", "flag": ["-f"]}, r"unknown matcher keys"),
])
def test_a_bad_endpoint_matcher_names_the_key(raw, error):
    with pytest.raises(PolicyError, match=error):
        parse_matcher(raw, "rules[0].any_of[0]")


def test_an_endpoint_matcher_round_trips():
    raw = {"endpoint": "repos/*/*", "method": ["PATCH"]}
    rule = {"id": "x", "decision": "deny", "reason": "r", "command": ["gh", "api"], "any_of": [raw]}
    assert compile_policy({"rules": [rule]}).rules[0].to_json()["any_of"] == [raw]
