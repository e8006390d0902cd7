"""The scripted sessions the conformance tests share: one denial under hand-written native deny
rules (one per CLI, in its strongest admin layer), and every tripwire entry's plain form after
safe steps that leave evidence on a bare remote."""

from __future__ import annotations

import json

from .fakes import Scenario

SAFE_COMMAND = "touch ok-marker"
SAFE_MARKER = "ok-marker"
DENIED_COMMAND = "gh secret list"
DENY_REASON = "gh secret is denied by the conformance harness"
FINAL_TEXT = "Scripted session finished."

# The plain form of every tripwire entry in profiles/common.yaml, and the rule it must fire.
DENIED_PLAIN_FORMS = (
    ("git push --force origin main", "git-push-force"),
    ("git push -f origin main", "git-push-force"),
    ("git push --delete origin feature", "git-push-delete"),
    ("gh repo delete acme/widgets --yes", "gh-repo-destructive"),
    ("gh repo archive acme/widgets --yes", "gh-repo-destructive"),
    ("gh repo edit acme/widgets --visibility public", "gh-repo-destructive"),
    ("gh secret set DEPLOY_KEY --body hunter2", "gh-secret"),
    ("gh variable set REGION --body eu", "gh-variable"),
    ("gh release delete v1.0.0 --yes", "gh-release-delete"),
    ("gh auth token", "gh-auth"),
    ("gh api -X DELETE repos/acme/widgets", "gh-api-delete"),
    ("npm publish", "npm-publish"),
    ("cargo publish", "cargo-publish"),
)


# Safe steps come first. They leave a marker file and a `feature` branch on the remote, and they
# rewrite local history so that a force push to main, had it run, would replace the remote's
# main and a delete push would remove `feature`: the bare remote shows whether either ran.
SAFE_STEPS = (
    "touch ok-marker",
    "git status",
    "git push origin HEAD:refs/heads/feature",
    "git commit --amend --allow-empty -q -m rewritten-history",
)


def one_denial_scenario() -> Scenario:
    """One allowed call, then one call the admin rule must refuse."""
    return Scenario([SAFE_COMMAND, DENIED_COMMAND], FINAL_TEXT)


def deny_gh_secret_files(cli: str) -> dict[str, str]:
    """Config-tree files that deny `gh secret ...` in the CLI's admin (root-owned /etc) layer."""
    if cli == "claude":
        settings = {"permissions": {"deny": ["Bash(gh secret:*)"]}}
        return {"etc/claude-code/managed-settings.json": json.dumps(settings, indent=2) + "\n"}
    if cli == "codex":
        rule = f'prefix_rule(pattern=["gh", "secret"], decision="forbidden", justification="{DENY_REASON}")\n'
        return {"etc/codex/rules/conformance.rules": rule}
    if cli == "gemini":
        policy = (
            "[[rule]]\n"
            'toolName = "run_shell_command"\n'
            "commandRegex = '.*\\bgh\\s+secret\\b'\n"
            'decision = "deny"\n'
            "priority = 900\n"
            f'denyMessage = "{DENY_REASON}"\n'
        )
        return {"etc/gemini-cli/policies/conformance.toml": policy}
    raise ValueError(f"unknown CLI {cli!r}")


def tripwire_scenario() -> Scenario:
    return Scenario([*SAFE_STEPS, *(command for command, _ in DENIED_PLAIN_FORMS)], FINAL_TEXT)
