"""Gemini CLI: policy model -> file contents.

Bypass: deny rules as commandRegex policies in /etc/gemini-cli/policies (the admin tier, which
beats a user allow and holds in yolo), system settings in /etc/gemini-cli/settings.json (wins over
the user file). Never `defaultApprovalMode: yolo` (invalid there; yolo is a command-line flag),
never `tools.exclude: ["run_shell_command(...)"]` (blocks nothing). Auth pinned to an API key so
a base URL (the credential gateway) works.
Interactive: ~/.gemini/settings.json with yolo disabled and user-tier policies.
"""

from __future__ import annotations

import re

from guard.native import GEMINI_POLICY_FILE, deny_message
from guard.policy import Rule, ToolOptions
from renderer.gemini_regex import rule_to_gemini_regex
from renderer.model import PolicyModel, ProfileError, hook_command

SHELL_TOOL = "run_shell_command"
READ_TOOLS = ["read_file", "read_many_files"]
WRITE_TOOLS = ["write_file", "replace"]
POLICY_FILE = GEMINI_POLICY_FILE
GEMINI_DECISION = {"deny": "deny", "ask": "ask_user", "allow": "allow"}
PRIORITY = {"deny": 950, "ask": 500, "allow": 100}
HOOK_COMMAND = hook_command("gemini")
HOOK_TIMEOUT_MS = 10000  # milliseconds in gemini: a Claude-style 10 kills the hook and the command runs


def glob_to_path_regex(glob: str) -> str:
    """A file-tier glob as a regex for the end of a JSON string value holding a path (a JS- and
    Python-compatible subset): any folder may stand before it, the value ends after it."""
    out, i = [], 0
    body = glob[3:] if glob.startswith("**/") else glob
    while i < len(body):
        if body.startswith("**", i):
            out.append(r'[^"]*')
            i += 2
        elif body[i] == "*":
            out.append(r'[^"/]*')
            i += 1
        else:
            out.append(re.escape(body[i]).replace("\\/", "/"))
            i += 1
    # (?:X|) rather than (?:X)?: gemini's loader drops any pattern with a quantified group
    return r'(?:[^"]*/|)' + "".join(out) + r'"'


def command_rules(rules: list[Rule], decision: str, tools: dict[str, ToolOptions]) -> list[dict]:
    out = []
    for rule in rules:
        entry = {"toolName": SHELL_TOOL, "decision": GEMINI_DECISION[decision], "priority": PRIORITY[decision]}
        if decision == "deny":
            try:
                entry["commandRegex"] = rule_to_gemini_regex(rule, tools)
            except ValueError as exc:
                raise ProfileError(f"{rule.source}: rule '{rule.id}' cannot be rendered for gemini: {exc}") from None
        else:
            # allow and ask take the exact words: a prefix is never wider than the rule, and in the
            # interactive posture anything unlisted asks anyway.
            entry["commandPrefix"] = [" ".join(form) for form in rule.literal_forms()]
        if decision == "deny":
            entry["denyMessage"] = deny_message(rule.id, rule.reason)
        out.append(entry)
    return out


def file_rules(model: PolicyModel) -> list[dict]:
    out = []
    for tier, tools, globs in (("blocked", READ_TOOLS + WRITE_TOOLS, model.blocked_files),
                               ("read-only", WRITE_TOOLS, model.read_only_files)):
        for glob in globs:
            out.append({
                "toolName": tools,
                "argsPattern": r'"(?:file_path|absolute_path|path)":"' + glob_to_path_regex(glob),
                "decision": "deny",
                "priority": PRIORITY["deny"],
                "denyMessage": f"agent-sandbox files/{tier}: {glob} is {'not to be read or written' if tier == 'blocked' else 'read-only'} for the agent.",
            })
    return out


def policy_toml(model: PolicyModel, decisions: tuple[str, ...]) -> dict:
    rules = []
    for decision in decisions:
        rules += command_rules(model.rules_for(decision), decision, model.tool_options)
    rules += file_rules(model)
    return {"rule": rules}


def system_settings(model: PolicyModel) -> dict:
    return {
        "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
        # A second layer only: a user or workspace hooksConfig.disabled can switch it off
        # (docs/hooks.md), so the admin policies above stay the hard layer for gemini.
        "hooksConfig": {"enabled": True},
        "hooks": {"BeforeTool": [{"matcher": SHELL_TOOL, "hooks": [
            {"name": "agent-guard", "type": "command", "command": HOOK_COMMAND, "timeout": HOOK_TIMEOUT_MS}]}]},
    }


def user_settings_interactive(model: PolicyModel) -> dict:
    return {
        "security": {"disableYoloMode": True},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
    }


def render(model: PolicyModel) -> dict[str, object]:
    if model.bypass:
        return {
            "/etc/gemini-cli/settings.json": system_settings(model),
            f"/etc/gemini-cli/policies/{POLICY_FILE}": policy_toml(model, ("deny",)),
        }
    return {
        "~/.gemini/settings.json": user_settings_interactive(model),
        f"~/.gemini/policies/{POLICY_FILE}": policy_toml(model, ("deny", "ask", "allow")),
    }
