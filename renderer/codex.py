"""Codex CLI: policy model -> file contents.

Bypass: forbidden prefix rules in /etc/codex/rules and /etc/codex/requirements.toml (the admin
layers; the /etc rules survive --ignore-rules), the posture and the quiet, secret-stripping keys
in ~/.codex/config.toml, and the ci layer as ~/.codex/ci.config.toml (0.169 rejects [profiles.x]).
Interactive: ~/.codex/config.toml (on-request, workspace-write, the agent-guard hook) plus
~/.codex/rules with prompt / forbidden rules; no allow rules (they would run outside the sandbox).
"""

from __future__ import annotations

import json

from guard.native import deny_message
from guard.policy import Rule
from image.layout import HOME
from renderer.model import PolicyModel, hook_command
from renderer.templating import render_template

CODEX_DECISION = {"deny": "forbidden", "ask": "prompt", "allow": "allow"}
RULES_FILE = "agent-sandbox.rules"
HOOK_COMMAND = hook_command("codex")


def _grouped_forms(rule: Rule) -> list[list]:
    """Prefix patterns for one rule, alternatives grouped at the last position where forms differ."""
    groups: dict[tuple, list[str]] = {}
    for form in rule.literal_forms():
        groups.setdefault(form[:-1], []).append(form[-1])
    patterns = []
    for head, lasts in groups.items():
        last = lasts[0] if len(lasts) == 1 else list(dict.fromkeys(lasts))
        patterns.append([*head, last] if head else [last])
    return patterns


def _justification(rule: Rule) -> str:
    return deny_message(rule.id, rule.reason)


def rule_entries(rules: list[Rule]) -> list[dict]:
    entries = []
    for rule in rules:
        for pattern in _grouped_forms(rule):
            if isinstance(pattern[0], list):  # Codex wants a literal first token
                for program in pattern[0]:
                    entries.append({"id": rule.id, "pattern": [program, *pattern[1:]], "rule": rule})
            else:
                entries.append({"id": rule.id, "pattern": pattern, "rule": rule})
    return entries


def rules_file(model: PolicyModel, decisions: tuple[str, ...]) -> str:
    rows = []
    for decision in decisions:
        for entry in rule_entries(model.rules_for(decision)):
            rows.append({
                "id": entry["id"],
                "pattern": json.dumps(entry["pattern"]),
                "decision": CODEX_DECISION[decision],
                "justification": json.dumps(_justification(entry["rule"])),
            })
    return render_template("codex.rules.j2", rules=rows)


def requirements(model: PolicyModel) -> dict:
    prefix_rules = []
    for entry in rule_entries(model.rules_for("deny")):
        tokens = [{"any_of": t} if isinstance(t, list) else {"token": t} for t in entry["pattern"]]
        prefix_rules.append({"pattern": tokens, "decision": "forbidden", "justification": _justification(entry["rule"])})
    return {
        "rules": {"prefix_rules": prefix_rules},
        # Managed hooks need no trust step, and pinning the features here is what stops the agent
        # from switching hooks off (user config, -c, --disable, a project .codex/config.toml).
        # unified_exec_tty off closes the interactive-shell route: no hook fires for write_stdin.
        "hooks": hooks(HOOK_COMMAND),
        "features": {"hooks": True, "unified_exec_tty": False},
    }


# What a workstation's admin layer allows: never asking, and running outside the sandbox, are not
# among them, so `codex --yolo` (and -a never, -s danger-full-access) refuses to start.
ALLOWED_APPROVAL_POLICIES = ["untrusted", "on-failure", "on-request"]
ALLOWED_SANDBOX_MODES = ["read-only", "workspace-write"]


def requirements_interactive(model: PolicyModel) -> dict:
    """The admin layer of a workstation (render-profiles --install interactive --system)."""
    document = requirements(model)
    document["hooks"] = hooks(hook_command("codex", model.name))
    return {"allowed_approval_policies": ALLOWED_APPROVAL_POLICIES, "allowed_sandbox_modes": ALLOWED_SANDBOX_MODES,
            **document}


def _quiet_keys(model: PolicyModel) -> dict:
    return {
        "check_for_update_on_startup": False,
        "analytics": {"enabled": False},
        "feedback": {"enabled": False},
        "features": {"plugins": False, "unbounded_connection_retries": False},
        "shell_environment_policy": {
            "inherit": "all",
            "ignore_default_excludes": False,
            "exclude": list(model.launcher_only),
        },
    }


def config_bypass(model: PolicyModel) -> dict:
    # Codex's web search is a tool the vendor runs; the credential gateway refuses every request
    # that carries it unless the profile allows server-side tools.
    search = {} if model.model_server_tools else {"web_search": "disabled"}
    return {"approval_policy": "never", "sandbox_mode": "danger-full-access", **search, **_quiet_keys(model)}


def config_ci_layer(model: PolicyModel) -> dict:
    """Layered over config.toml by `codex exec --profile ci`: the posture again, so a changed
    user config cannot weaken a ci run's settings, and the secret-stripping policy."""
    return {
        "approval_policy": "never",
        "sandbox_mode": "danger-full-access",
        "shell_environment_policy": _quiet_keys(model)["shell_environment_policy"],
    }


def hooks(command: str) -> dict:
    return {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": command, "timeout": 10}]}]}


def config_interactive(model: PolicyModel) -> dict:
    config = {"approval_policy": "on-request", "sandbox_mode": "workspace-write", **_quiet_keys(model)}
    # a user-level hook runs only once Codex trusts it: the install records that trust
    config["features"] = {**config["features"], "hooks": True}
    config["hooks"] = hooks(hook_command("codex", model.name))
    return config


def render(model: PolicyModel) -> dict[str, object]:
    if model.bypass:
        files: dict[str, object] = {
            "/etc/codex/requirements.toml": requirements(model),
            f"/etc/codex/rules/{RULES_FILE}": rules_file(model, ("deny",)),
            f"{HOME}/.codex/config.toml": config_bypass(model),
        }
        if model.output == "machine":
            files[f"{HOME}/.codex/ci.config.toml"] = config_ci_layer(model)
        return files
    # No allow rules: Codex runs an allow-listed command outside its own sandbox, so reading
    # commands are left to the sandbox, which runs them without a prompt as the vendor does.
    return {
        "~/.codex/config.toml": config_interactive(model),
        f"~/.codex/rules/{RULES_FILE}": rules_file(model, ("deny", "ask")),
        "/etc/codex/requirements.toml": requirements_interactive(model),
        f"/etc/codex/rules/{RULES_FILE}": rules_file(model, ("deny",)),
    }
