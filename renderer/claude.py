"""Claude Code: policy model -> file contents (dicts).

Bypass: deny rules, the file tiers and the guard hook go in the managed layer
(/etc/claude-code/managed-settings.json), which the agent cannot change; the bypass posture goes
in the agent's user settings, because bypass in project settings is ignored (docs/cli-facts.md).
Interactive: one user settings file with allow / ask / deny, bypass disabled.
"""

from __future__ import annotations

from guard.policy import Rule
from image.layout import HOME, SEED_DIR, WORKSPACE
from renderer.model import PolicyModel, hook_command

MANAGED = "/etc/claude-code/managed-settings.json"
HOOK_COMMAND = hook_command("claude")


def bash_rules(rules: list[Rule]) -> list[str]:
    """`Bash(words)` is an exact match and `Bash(words *)` a word-boundary prefix: both, so the
    bare command and the command with arguments are each covered."""
    out: list[str] = []
    for rule in rules:
        for form in rule.literal_forms():
            text = " ".join(form)
            out += [f"Bash({text})", f"Bash({text} *)"]
    return list(dict.fromkeys(out))


def path_pattern(glob: str) -> str:
    """Claude reads a pattern without ./, / or ~/ as relative to the settings file; ./ anchors it
    at the working directory, ** keeps it anywhere below."""
    return glob if glob.startswith(("**/", "/", "~/", "./")) else f"./{glob}"


def file_rules(model: PolicyModel) -> list[str]:
    out: list[str] = []
    for glob in model.blocked_files:
        out += [f"Read({path_pattern(glob)})", f"Edit({path_pattern(glob)})"]
    for glob in model.read_only_files:
        out.append(f"Edit({path_pattern(glob)})")
    return list(dict.fromkeys(out))


def managed_settings(model: PolicyModel) -> dict:
    return {
        "permissions": {"deny": bash_rules(model.rules_for("deny")) + file_rules(model)},
        "hooks": {
            "PreToolUse": [
                {"matcher": "Bash", "hooks": [{"type": "command", "command": HOOK_COMMAND, "timeout": 10}]}
            ]
        },
        "allowManagedHooksOnly": True,
        "disableAllHooks": False,
        "env": dict(sorted(model.quiet_env.items())),
    }


def user_settings_bypass(model: PolicyModel) -> dict:
    return {
        "permissions": {"defaultMode": "bypassPermissions"},
        "skipDangerousModePermissionPrompt": True,
        "env": dict(sorted(model.quiet_env.items())),
    }


def user_settings_interactive(model: PolicyModel) -> dict:
    return {
        "permissions": {
            "allow": bash_rules(model.rules_for("allow")),
            "ask": bash_rules(model.rules_for("ask")),
            "deny": bash_rules(model.rules_for("deny")) + file_rules(model),
            "defaultMode": "default",
            "disableBypassPermissionsMode": "disable",
        },
        "env": dict(sorted(model.quiet_env.items())),
    }


def state_seed() -> dict:
    """~/.claude.json is rewritten by the CLI at every start: a seed, not policy."""
    return {"hasCompletedOnboarding": True, "projects": {WORKSPACE: {"hasTrustDialogAccepted": True}}}


def render(model: PolicyModel) -> dict[str, dict]:
    """{path: document}. Bypass paths are image paths; interactive paths are under ~."""
    if model.bypass:
        return {
            MANAGED: managed_settings(model),
            f"{HOME}/.claude/settings.json": user_settings_bypass(model),
            f"{SEED_DIR}/.claude.json": state_seed(),
        }
    return {"~/.claude/settings.json": user_settings_interactive(model)}
