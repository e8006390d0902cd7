"""Claude Code: policy model -> file contents (dicts).

Bypass: deny rules, the file tiers and the guard hook go in the managed layer
(/etc/claude-code/managed-settings.json), which the agent cannot change; the bypass posture goes
in the agent's user settings, because bypass in project settings is ignored (docs/cli-facts.md).
Interactive: one user settings file with allow / ask / deny, bypass and auto mode disabled, the
agent-guard hook; and, for the admin layer (--install --system), a managed drop-in with the deny
rules, the refusals and the hook.
"""

from __future__ import annotations

from guard.policy import Rule
from image.layout import HOME, SEED_DIR, WORKSPACE
from renderer.model import PolicyModel, hook_command

MANAGED = "/etc/claude-code/managed-settings.json"
MANAGED_DROP_IN = "/etc/claude-code/managed-settings.d/agent-sandbox.json"
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
        "hooks": hook(HOOK_COMMAND),
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


def narrowing_rules(model: PolicyModel) -> list[str]:
    """Ask rules for the options that make an allowed program write a file or run a program: a
    `Bash(git log *)` allow cannot say "without --output", but an ask rule wins over an allow,
    and a `*` may stand anywhere in the pattern. A short option is caught where a word starts
    with it; inside a cluster (`-nO`) only the hook sees it."""
    out: list[str] = []
    for rule in model.rules_for("allow"):
        excluded = [name for matcher in rule.none_of for name in getattr(matcher, "names", ())]
        for program in rule.command[0]:
            options = model.tool_options.get(program)
            before = options.global_writes_or_runs if options else ()
            after = excluded + list(options.writes_or_runs if options else ())
            for name in [*before, *after]:
                if name.startswith("--"):
                    out.append(f"Bash({program} *{name}*)")
                elif name in before:  # only right after the program: later, `git log -p` is a patch
                    out.append(f"Bash({program} {name}*)")
                else:
                    out += [f"Bash({program} {name}*)", f"Bash({program} * {name}*)"]
    return list(dict.fromkeys(out))


def hook(command: str) -> dict:
    return {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": command, "timeout": 10}]}]}


def user_settings_interactive(model: PolicyModel) -> dict:
    return {
        "permissions": {
            "allow": bash_rules(model.rules_for("allow")),
            "ask": bash_rules(model.rules_for("ask")) + narrowing_rules(model),
            "deny": bash_rules(model.rules_for("deny")) + file_rules(model),
            "defaultMode": "default",
            "disableBypassPermissionsMode": "disable",
            # auto mode lets a model on the vendor's servers approve commands; the rules decide here
            "disableAutoMode": "disable",
        },
        "hooks": hook(hook_command("claude", model.name)),
        "env": dict(sorted(model.quiet_env.items())),
    }


def managed_interactive(model: PolicyModel) -> dict:
    """The admin layer of a workstation (render-profiles --install interactive --system): the
    deny rules, the bypass and auto-mode refusals and the hook, where the agent cannot write. A
    drop-in beside an administrator's own managed-settings.json, merged after it."""
    return {
        "permissions": {
            "deny": bash_rules(model.rules_for("deny")) + file_rules(model),
            "disableBypassPermissionsMode": "disable",
            "disableAutoMode": "disable",
        },
        "hooks": hook(hook_command("claude", model.name)),
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
    return {
        "~/.claude/settings.json": user_settings_interactive(model),
        MANAGED_DROP_IN: managed_interactive(model),
    }
