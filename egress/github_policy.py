"""The GitHub and package-registry walls: what the gateway lets through, as pure functions.

The gateway holds the run's GitHub token and adds it to requests it forwards; this module decides
which requests those are. Pure data in (method, path, headers, body bytes), a Decision out, no I/O:

- git smart HTTP: fetch and clone pass; a push (`git-receive-pack`) passes only if every ref it
  updates is in the run's namespace (`refs/heads/agent/<run-id>`, and below it). The decision is
  read from the pkt-line command list at the start of the request body, before the pack, so it
  holds for every client: `git push --force`, `git send-pack`, a copied git binary, `curl`.
- the REST API: a method + path allowlist (reads; pull requests, issues, comments), refusing the
  rest, with the tripwire's rule id and reason where the same effect has a tripwire rule.
- GraphQL: parsed with graphql-core; queries pass, mutations only by name from an allowlist.
- package registries: GET and HEAD (and npm's audit query), so publishing fails at the wall.

`render_policy(...)` makes the per-run policy from the profile's tripwire (rule ids and reasons)
and is JSON-serialisable (`to_json` / `from_json`) for the gateway's config.
"""
from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Iterable, Mapping
from urllib.parse import unquote

import graphql

# --- rules: an id and a reason, like the tripwire's ----------------------------------------------

# Each wall rule, by key: (the tripwire rule whose id and reason it takes when the profile has it,
# the id and reason used otherwise).
WALL_RULES: dict[str, tuple[str | None, str, str]] = {
    "push-namespace": (None, "github-push-namespace",
                       "A push may create or update only the run's own branches ({namespace}/...); "
                       "every other branch and tag, and so any force push over shared history, is a person's to change."),
    "push-delete": ("git-push-delete", "git-push-delete", "Deleting a remote branch or tag is a person's decision."),
    "push-repository": (None, "github-push-repository",
                        "Pushes go only to the run's own repository ({repository}), and only with the token the "
                        "launcher obtained for it."),
    "push-protocol": (None, "github-git-protocol",
                      "The push's command list could not be read exactly (malformed, truncated, signed or too "
                      "long), so it is refused rather than guessed at."),
    "git-path": (None, "github-git-path",
                 "Only git's smart HTTP endpoints (info/refs, git-upload-pack, git-receive-pack) are served."),
    "repo-destructive": ("gh-repo-destructive", "gh-repo-destructive",
                         "Deleting, archiving or editing a repository's settings is irreversible or visible to "
                         "everyone; a person does it."),
    "secret": ("gh-secret", "gh-secret", "Repository and organisation secrets are never read or changed by an agent."),
    "variable": ("gh-variable", "gh-variable", "Actions variables configure CI for everyone; an agent does not change them."),
    "release-delete": ("gh-release-delete", "gh-release-delete", "Deleting a release removes what users download."),
    "release": (None, "github-release", "Publishing or editing a release changes what users download; a person does it."),
    "auth": ("gh-auth", "gh-auth",
             "The agent's credentials are set up outside the container; the API that reads or changes them is "
             "closed to it."),
    "access": (None, "github-access",
               "Collaborators, invitations, deploy keys and webhooks grant access to the repository or send its "
               "contents elsewhere; a person grants them."),
    "actions": (None, "github-actions",
                "Running, re-running or changing CI workflows acts with the repository's CI credentials; a person "
                "does it."),
    "merge": (None, "github-merge",
              "Merging into a shared branch is a person's decision; the agent opens a pull request."),
    "status": (None, "github-status",
               "Commit statuses, checks and deployments say what CI decided; an agent does not set them."),
    "review": (None, "github-review", "Approving or submitting a review is a person's decision; the agent comments."),
    "delete": ("gh-api-delete", "gh-api-delete", "A DELETE through the raw API bypasses every other rule."),
    "api-allowlist": (None, "github-api-allowlist",
                      "Through the gateway an agent reads GitHub and opens pull requests, issues and comments; "
                      "nothing else reaches the API."),
    "api-path": (None, "github-api-path",
                 "The path has encoded slashes, dot segments or doubled slashes, which GitHub could read "
                 "differently from the gateway."),
    "method-override": (None, "github-method-override",
                        "A method-override header would make the server run another method than the one checked."),
    "body": (None, "github-request-body",
             "The request body the decision depends on is missing, too large or not valid JSON."),
    "graphql-parse": (None, "github-graphql-parse",
                      "The GraphQL request could not be parsed, so it cannot be judged and is refused."),
    "graphql-subscription": (None, "github-graphql-subscription", "GraphQL subscriptions are not served."),
    "graphql-ambiguous": (None, "github-graphql-ambiguous",
                          "The GraphQL document has several operations and does not name one that exists."),
    "graphql-mutation": (None, "github-graphql-mutation",
                         "Only allowlisted GraphQL mutations pass (pull requests, issues, comments, labels, "
                         "reactions)."),
    "npm-publish": ("npm-publish", "npm-publish", "Publishing a package is a release; a person does it."),
    "cargo-publish": ("cargo-publish", "cargo-publish", "Publishing a crate is permanent; a person does it."),
    "pypi-publish": (None, "pypi-publish", "Publishing a package is a release; a person does it."),
}

# Which tripwire rules have a wall here. A tripwire rule not listed is a tripwire only, and the
# rendered policy says so (`tripwire_only`).
TRIPWIRE_WALLS = {
    "git-push-force": "push-namespace",     # the namespace rule, under its own id: not every update outside is forced
    "git-push-delete": "push-delete",
    "gh-repo-destructive": "repo-destructive",
    "gh-secret": "secret",
    "gh-variable": "variable",
    "gh-release-delete": "release-delete",
    "gh-auth": "auth",
    "gh-api-delete": "delete",
    "gh-api-write": "api-allowlist",       # repository settings, secrets, variables, GraphQL mutations
    "npm-publish": "npm-publish",
    "cargo-publish": "cargo-publish",
}

ALLOWED_MUTATIONS = (
    "createPullRequest", "updatePullRequest", "markPullRequestReadyForReview", "convertPullRequestToDraft",
    "requestReviews", "createIssue", "updateIssue", "addComment", "updateIssueComment", "addReaction",
    "removeReaction", "addLabelsToLabelable", "addAssigneesToAssignable",
)

# Refused mutations whose effect has a named rule (everything else not allowed: graphql-mutation).
MUTATION_RULES = {
    "archiveRepository": "repo-destructive", "unarchiveRepository": "repo-destructive",
    "updateRepository": "repo-destructive", "transferRepository": "repo-destructive",
    "deleteRepository": "repo-destructive", "createBranchProtectionRule": "repo-destructive",
    "updateBranchProtectionRule": "repo-destructive", "deleteBranchProtectionRule": "repo-destructive",
    "createRepositoryRuleset": "repo-destructive", "updateRepositoryRuleset": "repo-destructive",
    "deleteRepositoryRuleset": "repo-destructive",
    "deleteRef": "push-delete", "updateRef": "push-namespace", "updateRefs": "push-namespace",
    "createRef": "push-namespace", "createCommitOnBranch": "push-namespace", "mergeBranch": "merge",
    "mergePullRequest": "merge", "enablePullRequestAutoMerge": "merge", "enqueuePullRequest": "merge",
    "addPullRequestReview": "review", "submitPullRequestReview": "review", "dismissPullRequestReview": "review",
    "approveDeployments": "actions", "rejectDeployments": "actions",
    "createDeployment": "status", "createDeploymentStatus": "status", "createCheckRun": "status",
    "updateCheckRun": "status", "createCheckSuite": "status", "rerequestCheckSuite": "actions",
    "deleteRelease": "release-delete", "createRelease": "release", "updateRelease": "release",
    "addDeployKey": "access", "inviteCollaborator": "access", "updateTeamsRepository": "access",
    "deleteIssue": "delete", "deleteIssueComment": "delete", "deletePullRequestReviewComment": "delete",
    "deleteDiscussion": "delete", "deleteProjectV2": "delete",
}

REGISTRIES = {"npm": "npm-publish", "crates": "cargo-publish", "pypi": "pypi-publish"}
# npm's audit sends the dependency list with POST and only reads advisories back.
NPM_READ_POSTS = ("/-/npm/v1/security/advisories/bulk", "/-/npm/v1/security/audits/quick",
                  "/-/npm/v1/security/audits")
METHOD_OVERRIDE_HEADERS = ("x-http-method-override", "x-http-method", "x-method-override")
MAX_INSPECTED_BODY = 1 << 20        # JSON/GraphQL bodies the decision reads
MAX_COMMAND_LIST = 1 << 20          # the pkt-line prefix of a push, decompressed
DEFAULT_NAMESPACE = "refs/heads/agent/{run_id}"

_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_REPO = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str
    reason: str
    kind: str = "github"       # git | api | graphql | registry: the gateway log's deny_<kind>

    @property
    def log_decision(self) -> str:
        return "forward" if self.allowed else f"deny_{self.kind}"

    def message(self) -> str:
        """What the client sees on a refusal (body of the 403), like the hook's denials."""
        return f"refused by the agent-sandbox gateway: {self.rule}: {self.reason}"


@dataclass(frozen=True)
class Policy:
    repository: str | None                # "owner/name", the run's repository; None: no writes at all
    ref_namespace: str                    # "refs/heads/agent/<run-id>"
    rules: Mapping[str, tuple[str, str]]  # wall rule key -> (id, reason)
    mutations: tuple[str, ...] = ALLOWED_MUTATIONS
    tripwire_only: tuple[str, ...] = ()   # profile rules that have no wall here
    registries: tuple[str, ...] = tuple(REGISTRIES)

    def allow(self, rule: str, reason: str, kind: str) -> Decision:
        return Decision(True, rule, reason, kind)

    def deny(self, key: str, kind: str) -> Decision:
        rule, reason = self.rules[key]
        return Decision(False, rule, reason, kind)

    def in_namespace(self, ref: str) -> bool:
        return ref == self.ref_namespace or ref.startswith(self.ref_namespace + "/")

    def is_run_repository(self, owner: str, name: str) -> bool:
        return self.repository is not None and f"{owner}/{name}".lower() == self.repository.lower()

    def to_json(self) -> dict:
        return {"repository": self.repository, "ref_namespace": self.ref_namespace,
                "rules": {key: {"id": rule, "reason": reason} for key, (rule, reason) in sorted(self.rules.items())},
                "mutations": list(self.mutations), "tripwire_only": list(self.tripwire_only),
                "registries": list(self.registries)}

    @classmethod
    def from_json(cls, data: Mapping) -> "Policy":
        """The policy from the gateway's config; anything missing or unknown is an error, never a default."""
        try:
            rules = {key: (value["id"], value["reason"]) for key, value in data["rules"].items()}
            policy = cls(repository=data["repository"], ref_namespace=data["ref_namespace"], rules=rules,
                         mutations=tuple(data["mutations"]), tripwire_only=tuple(data.get("tripwire_only", ())),
                         registries=tuple(data["registries"]))
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"github policy: missing or malformed key {error}") from None
        missing = sorted(set(WALL_RULES) - set(rules))
        if missing:
            raise ValueError(f"github policy: rules {missing} missing")
        texts = [*policy.mutations, *policy.registries, *(t for pair in rules.values() for t in pair)]
        if not all(isinstance(text, str) for text in texts):
            raise ValueError("github policy: rules, mutations and registries must be strings")
        if policy.repository is not None:
            check_repository(policy.repository)
        if not valid_refname(policy.ref_namespace) or not policy.ref_namespace.startswith("refs/heads/"):
            raise ValueError(f"github policy: ref_namespace {policy.ref_namespace!r} is not a branch namespace")
        return policy


def check_repository(repository: str) -> str:
    owner, sep, name = repository.partition("/")
    if not sep or not _OWNER.match(owner) or not _REPO.match(name) or name in (".", "..") or name.endswith(".git"):
        raise ValueError(f"repository {repository!r}: expected OWNER/NAME as on github.com")
    return repository


def render_policy(tripwire: Iterable, *, repository: str | None, run_id: str,
                  ref_namespace: str = DEFAULT_NAMESPACE) -> Policy:
    """The run's policy. tripwire: the profile's tripwire rules, as objects with .id and .reason or
    as {"id", "reason"} mappings; a wall rule whose effect has a tripwire rule takes its id and reason.

    The walls do not depend on the profile having those rules: a wall is never switched off by
    leaving a tripwire entry out. The tripwire rules with no wall here are listed in tripwire_only.
    repository None (a run with no GitHub credential): reads only, every write refused.
    """
    if repository is not None:
        check_repository(repository)
    namespace = ref_namespace.replace("{run_id}", run_id)
    if not run_id or "{" in namespace or not valid_refname(namespace) or not namespace.startswith("refs/heads/"):
        raise ValueError(f"ref namespace {namespace!r} (run id {run_id!r}) is not a valid branch namespace "
                         f"under refs/heads/")
    profile = {}
    for rule in tripwire:
        rule_id = rule["id"] if isinstance(rule, Mapping) else rule.id
        reason = rule["reason"] if isinstance(rule, Mapping) else rule.reason
        profile[rule_id] = reason
    rules = {}
    for key, (tripwire_id, own_id, own_reason) in WALL_RULES.items():
        if tripwire_id and tripwire_id in profile:
            rules[key] = (tripwire_id, profile[tripwire_id])
        else:
            rules[key] = (own_id, own_reason.format(namespace=namespace, repository=repository or "none in this run"))
    tripwire_only = tuple(sorted(r for r in profile if r not in TRIPWIRE_WALLS))
    return Policy(repository=repository, ref_namespace=namespace, rules=rules, tripwire_only=tripwire_only)


# --- git refs ------------------------------------------------------------------------------------

_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def valid_refname(ref: str) -> bool:
    """git check-ref-format's rules for a full ref name (refs/...), strictly."""
    if not ref.startswith("refs/") or ref.endswith("/") or ref.endswith(".") or "@{" in ref or ".." in ref \
            or "//" in ref or _REF_FORBIDDEN.search(ref):
        return False
    return all(part and not part.startswith(".") and not part.endswith(".lock") for part in ref.split("/"))


# --- git smart HTTP: the push command list -----------------------------------------------------

class PktLineError(ValueError):
    pass


@dataclass(frozen=True)
class RefUpdate:
    old: str
    new: str
    ref: str

    @property
    def is_delete(self) -> bool:
        return set(self.new) == {"0"}

    @property
    def is_create(self) -> bool:
        return set(self.old) == {"0"}


_OID = re.compile(r"^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")


def _pkt_lines(data: bytes, start: int):
    """(payload or None for a flush, next offset) from start; stops when data runs out."""
    offset = start
    while offset + 4 <= len(data):
        head = data[offset:offset + 4]
        size = int(head, 16) if re.fullmatch(rb"[0-9a-fA-F]{4}", head) else -1
        # 1 and 2 are protocol v2's delimiters, which a push never carries; 3 and 4 are no line.
        if size < 0 or size in (1, 2, 3) or size > 65520:
            raise PktLineError(f"bad pkt-line length {head!r}")
        if size == 0:
            yield None, offset + 4
            offset += 4
            continue
        if offset + size > len(data):
            return
        yield data[offset + 4:offset + size], offset + size
        offset += size


def parse_command_list(data: bytes) -> tuple[list[RefUpdate], list[str]] | None:
    """The ref updates and capabilities of a receive-pack request body, or None if data does not
    yet hold the whole command list. Raises PktLineError for anything git would not send."""
    updates: list[RefUpdate] = []
    capabilities: list[str] = []
    seen_command = False
    for payload, _ in _pkt_lines(data, 0):
        if payload is None:
            return updates, capabilities
        try:
            text = payload.decode("utf-8", "strict")
        except UnicodeDecodeError:
            raise PktLineError("command line is not UTF-8") from None
        if text.endswith("\n"):
            text = text[:-1]
        command, nul, caps = text.partition("\0")
        if command.startswith("shallow ") and not seen_command:
            if not _OID.match(command[8:]):
                raise PktLineError("bad shallow line")
            continue
        if command.startswith("push-cert"):
            raise PktLineError("signed pushes (push certificates) are not accepted")
        if nul:
            capabilities.extend(caps.split())
        parts = command.split(" ")
        if len(parts) != 3 or not _OID.match(parts[0]) or not _OID.match(parts[1]) \
                or len(parts[0]) != len(parts[1]):
            raise PktLineError("expected 'old-id new-id refname'")
        if not valid_refname(parts[2]):
            raise PktLineError(f"invalid ref name {parts[2]!r}")
        updates.append(RefUpdate(parts[0].lower(), parts[1].lower(), parts[2]))
        seen_command = True
    return None


def check_ref_updates(policy: Policy, updates: list[RefUpdate]) -> Decision:
    """Every update must be in the run's namespace; one outside refuses the whole push."""
    for update in updates:
        if policy.in_namespace(update.ref):
            continue
        return policy.deny("push-delete" if update.is_delete else "push-namespace", "git")
    return policy.allow("github-push", f"{len(updates)} ref update(s) in {policy.ref_namespace}", "git")


class ReceivePackInspector:
    """Fed the body of a git-receive-pack POST as it arrives; decides once the command list is
    complete, before any of the pack. The gateway forwards the original bytes unchanged."""

    def __init__(self, policy: Policy, content_encoding: str = ""):
        self.policy = policy
        self.buffer = b""
        self.decision: Decision | None = None
        self.updates: list[RefUpdate] = []
        self.capabilities: list[str] = []
        encoding = content_encoding.strip().lower()
        self.inflater = None
        if encoding in ("gzip", "x-gzip"):
            self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding not in ("", "identity"):
            self.decision = policy.deny("push-protocol", "git")

    def feed(self, chunk: bytes) -> Decision | None:
        if self.decision is not None:
            return self.decision
        if self.inflater is not None:
            try:
                chunk = self.inflater.decompress(chunk, MAX_COMMAND_LIST + 1 - len(self.buffer))
            except zlib.error:
                self.decision = self.policy.deny("push-protocol", "git")
                return self.decision
        self.buffer += chunk
        try:
            parsed = parse_command_list(self.buffer)
        except PktLineError:
            self.decision = self.policy.deny("push-protocol", "git")
            return self.decision
        if parsed is not None:
            self.updates, self.capabilities = parsed
            self.decision = check_ref_updates(self.policy, self.updates)
        elif len(self.buffer) > MAX_COMMAND_LIST:
            self.decision = self.policy.deny("push-protocol", "git")
        return self.decision

    def finish(self) -> Decision:
        """At the end of the body: a command list never completed is refused."""
        if self.decision is None:
            self.decision = self.policy.deny("push-protocol", "git")
        return self.decision


    def refusal(self) -> tuple[str, bytes] | None:
        """(content type, body) of a receive-pack answer refusing every ref with the rule and
        reason, so git prints `! [remote rejected] ref (rule: reason)`; None when the client did
        not ask for a status report (answer 403 with Decision.message() then)."""
        if self.decision is None or self.decision.allowed or not self.updates \
                or not {"report-status", "report-status-v2"} & set(self.capabilities):
            return None
        why = f"{self.decision.rule}: {self.decision.reason}".replace("\n", " ")
        report = _pkt(b"unpack ok\n")
        for update in self.updates:
            note = why if not self.policy.in_namespace(update.ref) else f"refused with the rest of the push ({self.decision.rule})"
            report += _pkt(f"ng {update.ref} {note}\n".encode())
        report += b"0000"
        if {"side-band-64k", "side-band"} & set(self.capabilities):
            size = 65515 if "side-band-64k" in self.capabilities else 995
            banded = _pkt(b"\x02" + self.decision.message().encode()[:size - 1] + b"\n")
            for start in range(0, len(report), size):
                banded += _pkt(b"\x01" + report[start:start + size])
            report = banded + b"0000"
        return "application/x-git-receive-pack-result", report


def _pkt(payload: bytes) -> bytes:
    return f"{len(payload) + 4:04x}".encode() + payload


_GIT_PATH = re.compile(r"^/([A-Za-z0-9-]+)/([A-Za-z0-9._-]+?)(?:\.git)?/(info/refs|git-upload-pack|git-receive-pack)$")


def check_git(policy: Policy, method: str, path: str, query: str = "",
              headers: Mapping[str, str] | None = None) -> Decision | ReceivePackInspector:
    """A request to github.com's git smart HTTP: a Decision now, or, for a push to the run's
    repository, an inspector to feed the body to."""
    override = _override(policy, headers, "git")
    if override:
        return override
    match = _GIT_PATH.match(path)
    method = method.upper()
    if not match or "%" in path:
        return policy.deny("git-path", "git")
    owner, name, endpoint = match.groups()
    service = _query_value(query, "service")
    if endpoint == "info/refs" and method in ("GET", "HEAD") and service in ("git-upload-pack", "git-receive-pack"):
        return policy.allow("github-git-refs", "ref advertisement", "git")
    if endpoint == "git-upload-pack" and method == "POST":
        return policy.allow("github-git-fetch", "fetch", "git")
    if endpoint == "git-receive-pack" and method == "POST":
        if not policy.is_run_repository(owner, name):
            return policy.deny("push-repository", "git")
        encoding = _header(headers, "content-encoding")
        return ReceivePackInspector(policy, encoding)
    return policy.deny("git-path", "git")


def _query_value(query: str, key: str) -> str | None:
    values = [part.partition("=")[2] for part in query.split("&") if part.partition("=")[0] == key]
    return values[0] if len(values) == 1 else None


def _header(headers: Mapping[str, str] | None, name: str) -> str:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return ""


def _override(policy: Policy, headers: Mapping[str, str] | None, kind: str) -> Decision | None:
    if any(key.lower() in METHOD_OVERRIDE_HEADERS for key in (headers or {})):
        return policy.deny("method-override", kind)
    return None


# --- the REST API ----------------------------------------------------------------------------------

READ = frozenset({"GET", "HEAD"})
WRITE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ANY = READ | WRITE


@dataclass(frozen=True)
class Route:
    methods: frozenset
    pattern: tuple[str, ...]   # segments; "*" one segment, "**" any number (zero included), "R" = repos/{run repo}
    verdict: str               # allow | deny | refs
    key: str                   # the wall rule for a deny; a label for an allow


def _route(methods, pattern: str, verdict: str, key: str) -> Route:
    return Route(frozenset(methods), tuple(pattern.strip("/").split("/")) if pattern != "/" else (), verdict, key)


_SETTINGS = ("topics", "branches/**", "rulesets/**", "pages/**", "vulnerability-alerts", "automated-security-fixes",
             "private-vulnerability-reporting", "environments/**", "interaction-limits", "properties/**",
             "autolinks/**", "tags/protection/**", "transfer", "rename", "lfs", "immutable-releases",
             "code-scanning/default-setup", "security-advisories/**", "subscribers/**", "subscription")

ROUTES: tuple[Route, ...] = (
    # Secrets and variables, whatever the method: reading them is as bad as writing them.
    *[_route(ANY, p, "deny", "secret") for p in (
        "/repos/*/*/actions/secrets/**", "/repos/*/*/dependabot/secrets/**", "/repos/*/*/codespaces/secrets/**",
        "/repos/*/*/environments/*/secrets/**", "/repositories/*/environments/*/secrets/**",
        "/orgs/*/actions/secrets/**", "/orgs/*/dependabot/secrets/**", "/orgs/*/codespaces/secrets/**",
        "/user/codespaces/secrets/**", "/repos/*/*/actions/organization-secrets/**")],
    *[_route(ANY, p, "deny", "variable") for p in (
        "/repos/*/*/actions/variables/**", "/repos/*/*/environments/*/variables/**",
        "/repositories/*/environments/*/variables/**", "/orgs/*/actions/variables/**",
        "/repos/*/*/actions/organization-variables/**")],
    *[_route(ANY, p, "deny", "auth") for p in (
        "/authorizations/**", "/applications/**", "/app/**", "/app-manifests/**", "/installation/token",
        "/user/keys/**", "/user/gpg_keys/**", "/user/ssh_signing_keys/**", "/user/installations/**",
        "/user/emails/**", "/user/social_accounts/**", "/credentials/**", "/user/codespaces/**")],
    *[_route(ANY, p, "deny", "access") for p in (
        "/repos/*/*/hooks/**", "/orgs/*/hooks/**", "/repos/*/*/keys/**", "/repos/*/*/invitations/**",
        "/user/repository_invitations/**", "/repos/*/*/actions/runners/**", "/orgs/*/actions/runners/**")],
    *[_route(WRITE, p, "deny", "access") for p in (
        "/repos/*/*/collaborators/**", "/orgs/*/members/**", "/orgs/*/memberships/**",
        "/orgs/*/outside_collaborators/**", "/orgs/*/teams/**", "/teams/**", "/orgs/*/invitations/**")],
    # The repository itself and its settings.
    _route(["DELETE", "PATCH", "PUT", "POST"], "/repos/*/*", "deny", "repo-destructive"),
    *[_route(WRITE, f"/repos/*/*/{p}", "deny", "repo-destructive") for p in _SETTINGS],
    # Releases: deleting one (or an asset) has its own tripwire rule.
    _route(["DELETE"], "/repos/*/*/releases/**", "deny", "release-delete"),
    _route(WRITE, "/repos/*/*/releases/**", "deny", "release"),
    _route(WRITE, "/repos/*/*/actions/**", "deny", "actions"),
    _route(WRITE, "/repos/*/*/dispatches", "deny", "actions"),
    _route(WRITE, "/repos/*/*/pulls/*/merge", "deny", "merge"),
    _route(WRITE, "/repos/*/*/merges", "deny", "merge"),
    _route(WRITE, "/repos/*/*/merge-upstream", "deny", "merge"),
    _route(WRITE, "/repos/*/*/pulls/*/update-branch", "deny", "merge"),
    *[_route(WRITE, f"/repos/*/*/{p}", "deny", "status") for p in (
        "statuses/**", "check-runs/**", "check-suites/**", "deployments/**", "commits/*/statuses/**")],
    _route(WRITE, "/repos/*/*/pulls/*/reviews/**", "deny", "review"),
    # Refs through the API: the same namespace rule as a push.
    _route(["POST"], "/R/git/refs", "refs", "create"),
    _route(["PATCH", "DELETE"], "/R/git/refs/**", "refs", "update"),
    # What an agent may change: pull requests, issues, comments (the run's repository only).
    *[_route(["POST"], f"/R/{p}", "allow", "write") for p in (
        "pulls", "pulls/*/comments", "pulls/*/comments/*/replies", "pulls/*/requested_reviewers",
        "issues", "issues/*/comments", "issues/*/labels", "issues/*/assignees", "issues/*/reactions",
        "issues/comments/*/reactions", "pulls/comments/*/reactions", "git/blobs", "git/trees",
        "git/commits", "git/tags")],
    *[_route(["PATCH"], f"/R/{p}", "allow", "write") for p in (
        "pulls/*", "issues/*", "issues/comments/*", "pulls/comments/*")],
    # Reads.
    *[_route(READ, p, "allow", "read") for p in (
        "/", "/meta", "/rate_limit", "/zen", "/octocat", "/emojis", "/versions", "/licenses/**", "/gitignore/**",
        "/codes_of_conduct/**", "/repos/*/*/**", "/repositories/*/**", "/search/**", "/users/**", "/user",
        "/orgs/*", "/orgs/*/repos", "/installation/repositories", "/gists/**", "/networks/*/*/events")],
    _route(["DELETE"], "/**", "deny", "delete"),
)


def api_needs_body(method: str, path: str) -> bool:
    """Whether check_api reads the body of this request (GraphQL, creating a ref): the gateway then
    reads it whole, up to MAX_INSPECTED_BODY; other bodies stream through unread."""
    method = method.upper()
    segments = _segments(path)
    return method == "POST" and (segments == ["graphql"] or
                                 (segments is not None and len(segments) == 5 and segments[0] == "repos"
                                  and segments[3:] == ["git", "refs"]))


def _segments(path: str) -> list[str] | None:
    """The path's segments, decoded once; None when it could be read two ways."""
    raw = path.split("?", 1)[0]
    if not raw.startswith("/") or "\\" in raw or "//" in raw or ";" in raw:
        return None
    if re.search(r"%(2[fF]|5[cC]|2[eE]|25|00|3[bB])", raw):
        return None
    try:
        decoded = unquote(raw, errors="strict") if "%" in raw else raw
    except UnicodeDecodeError:
        return None
    parts = decoded.strip("/").split("/") if decoded.strip("/") else []
    if any(p in (".", "..") for p in parts) or any(ord(c) < 0x20 for c in decoded):
        return None
    return parts


def _match(pattern: tuple[str, ...], parts: list[str], repository: str | None) -> bool:
    if not pattern:
        return not parts
    head = pattern[0]
    if head == "**":
        return any(_match(pattern[1:], parts[i:], repository) for i in range(len(parts) + 1))
    if head == "R":
        return repository is not None and len(parts) >= 3 and parts[0] == "repos" \
            and f"{parts[1]}/{parts[2]}".lower() == repository.lower() and _match(pattern[1:], parts[3:], repository)
    return bool(parts) and (head == "*" or parts[0].lower() == head) and _match(pattern[1:], parts[1:], repository)


def check_api(policy: Policy, method: str, path: str, headers: Mapping[str, str] | None = None,
              body: bytes | None = None) -> Decision:
    """A request to the REST API (api.github.com; path relative to the API root, query ignored)."""
    override = _override(policy, headers, "api")
    if override:
        return override
    method = method.upper()
    parts = _segments(path)
    if parts is None:
        return policy.deny("api-path", "api")
    if parts == ["graphql"]:
        if method != "POST":
            return policy.deny("api-allowlist", "graphql")
        return check_graphql(policy, body)
    if method not in ANY:
        return policy.deny("api-allowlist", "api")
    for route in ROUTES:
        if method not in route.methods or not _match(route.pattern, parts, policy.repository):
            continue
        if route.verdict == "allow":
            return policy.allow(f"github-api-{route.key.replace(' ', '-')}", f"{method} {'/'.join(route.pattern)}", "api")
        if route.verdict == "refs":
            return _check_ref_route(policy, method, parts, body)
        return policy.deny(route.key, "api")
    return policy.deny("delete" if method == "DELETE" else "api-allowlist", "api")


def _check_ref_route(policy: Policy, method: str, parts: list[str], body: bytes | None) -> Decision:
    if method == "POST":
        data = _json_body(body)
        ref = data.get("ref") if isinstance(data, dict) else None
        if not isinstance(ref, str):
            return policy.deny("body", "api")
    else:
        ref = "refs/" + "/".join(parts[5:])
    if valid_refname(ref) and policy.in_namespace(ref):
        return policy.allow("github-api-refs", f"{method} {ref}", "api")
    return policy.deny("push-delete" if method == "DELETE" else "push-namespace", "api")


def _json_body(body: bytes | None):
    """The body as JSON, or None. Duplicate keys are refused: the server may keep another copy."""
    if body is None or len(body) > MAX_INSPECTED_BODY:
        return None
    try:
        return json.loads(body, object_pairs_hook=_unique_keys)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _unique_keys(pairs: list) -> dict:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


# --- GraphQL --------------------------------------------------------------------------------------

def check_graphql(policy: Policy, body: bytes | None) -> Decision:
    """POST /graphql: every operation in the document is judged, not only the one to be run, so no
    difference between this parser's choice and GitHub's can let a mutation through."""
    data = _json_body(body)
    if not isinstance(data, dict):
        return policy.deny("body" if data is None else "graphql-parse", "graphql")
    query, name = data.get("query"), data.get("operationName")
    if not isinstance(query, str) or not (name is None or isinstance(name, str)):
        return policy.deny("graphql-parse", "graphql")
    try:
        document = graphql.parse(query, no_location=True, max_tokens=20_000)
    except (graphql.GraphQLError, RecursionError):
        return policy.deny("graphql-parse", "graphql")
    operations = [d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode)]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, graphql.FragmentDefinitionNode)}
    if not operations or len(operations) + len(fragments) != len(document.definitions):
        return policy.deny("graphql-parse", "graphql")   # type definitions, extensions: not a request
    names = [op.name.value if op.name else None for op in operations]
    if len(operations) > 1 and (name is None or names.count(name) != 1):
        return policy.deny("graphql-ambiguous", "graphql")
    if len(operations) == 1 and name not in (None, names[0]):
        return policy.deny("graphql-ambiguous", "graphql")
    mutations = []
    for operation in operations:
        kind = operation.operation
        if kind == graphql.OperationType.SUBSCRIPTION:
            return policy.deny("graphql-subscription", "graphql")
        if kind == graphql.OperationType.MUTATION:
            try:
                fields = _top_fields(operation.selection_set, fragments, set())
            except RecursionError:
                fields = None
            if fields is None:
                return policy.deny("graphql-parse", "graphql")
            for field_name in fields:
                if field_name == "__typename" or field_name in policy.mutations:
                    continue
                return policy.deny(MUTATION_RULES.get(field_name, "graphql-mutation"), "graphql")
            mutations.extend(fields)
    if mutations:
        return policy.allow("github-graphql-mutation", "mutations " + ", ".join(mutations), "graphql")
    return policy.allow("github-graphql-query", "query", "graphql")


def _top_fields(selection_set, fragments: dict, visiting: set) -> list[str] | None:
    """The mutation's root fields, through fragment spreads and inline fragments (aliases do not
    hide a field's name). None for a spread of a fragment that is not defined, or a cycle."""
    found: list[str] = []
    for selection in selection_set.selections:
        if isinstance(selection, graphql.FieldNode):
            found.append(selection.name.value)
            continue
        if isinstance(selection, graphql.InlineFragmentNode):
            inner = _top_fields(selection.selection_set, fragments, visiting)
        else:
            spread = selection.name.value
            if spread not in fragments or spread in visiting:
                return None
            inner = _top_fields(fragments[spread].selection_set, fragments, visiting | {spread})
        if inner is None:
            return None
        found.extend(inner)
    return found


# --- package registries ---------------------------------------------------------------------------

def check_registry(policy: Policy, registry: str, method: str, path: str,
                   headers: Mapping[str, str] | None = None) -> Decision:
    """npm, PyPI, crates.io: read-only. GET and HEAD pass (and npm's audit query, a POST that only
    reads); publish, unpublish, yank, owner and dist-tag changes fail here."""
    if registry not in REGISTRIES or registry not in policy.registries:
        raise ValueError(f"registry {registry!r}: expected one of {sorted(policy.registries)}")
    override = _override(policy, headers, "registry")
    if override:
        return override
    method = method.upper()
    if method in READ:
        return policy.allow("registry-read", f"{method} {registry}", "registry")
    if registry == "npm" and method == "POST" and path.split("?", 1)[0] in NPM_READ_POSTS:
        return policy.allow("registry-read", "npm audit", "registry")
    return policy.deny(REGISTRIES[registry], "registry")
