"""Hand-written native deny rules (one per CLI, in its strongest admin layer) and the
scripted session the drive tests and the fixtures share."""

from __future__ import annotations

import json

from .fakes import Scenario

SAFE_COMMAND = "touch ok-marker"
SAFE_MARKER = "ok-marker"
DENIED_COMMAND = "gh secret list"
DENY_REASON = "gh secret is denied by the conformance harness"
FINAL_TEXT = "Scripted session finished."


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
