"""Gemini CLI: policy model -> file contents.

Bypass: deny rules as commandRegex policies in /etc/gemini-cli/policies (the admin tier, which
beats a user allow and holds in yolo), system settings in /etc/gemini-cli/settings.json (wins over
the user file). Never `defaultApprovalMode: yolo` (invalid there; yolo is a command-line flag),
never `tools.exclude: ["run_shell_command(...)"]` (blocks nothing). The auth type defaults to an
API key (so that a base URL, the credential gateway, works) in /etc/gemini-cli/system-defaults.json,
the lowest layer: a run with a Google login or Vertex selects its own in the run's user settings
(launcher/login_gemini.py), which system settings would override.
Interactive: ~/.gemini/settings.json with yolo disabled and user-tier policies.
"""

from __future__ import annotations

import re

from guard.native import GEMINI_POLICY_FILE, deny_message
from guard.policy import Rule, ToolOptions
from renderer.gemini_regex import rule_to_gemini_regexes
from renderer.model import PolicyModel, ProfileError, hook_command

SHELL_TOOL = "run_shell_command"
READ_TOOLS = ["read_file", "read_many_files"]
WRITE_TOOLS = ["write_file", "replace"]
POLICY_FILE = GEMINI_POLICY_FILE
GEMINI_DECISION = {"deny": "deny", "ask": "ask_user", "allow": "allow"}
PRIORITY = {"deny": 950, "ask": 500, "allow": 100}
HOOK_COMMAND = hook_command("gemini")
MAX_REGEX = 2048  # Gemini refuses a longer pattern
NESTED_QUANTIFIER = re.compile(r"\([^)]*[*+?{].*\)[*+?{]")  # and one this matches
HOOK_TIMEOUT_MS = 10000  # milliseconds in gemini: a Claude-style 10 kills the hook and the command runs


def glob_to_path_regex(glob: str) -> str:
    """A file-tier glob as a regex for the end of a JSON string value holding a path (a JS- and
    Python-compatible subset): any folder may stand before it, the value ends after it."""
    out, i = [], 0
    # `~/X`: the home folder is not known when rendering, so X below any folder (wider, never narrower)
    body = glob[3:] if glob.startswith("**/") else glob[2:] if glob.startswith("~/") else glob
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
                regexes = rule_to_gemini_regexes(rule, tools)
            except ValueError as exc:
                raise ProfileError(f"{rule.source}: rule '{rule.id}' cannot be rendered for gemini: {exc}") from None
            message = deny_message(rule.id, rule.reason)
            out += [{**entry, "commandRegex": regex, "denyMessage": message} for regex in regexes]
            continue
        if decision == "allow" and excluded_options(rule, tools):
            entry["commandRegex"] = allow_regex(rule, excluded_options(rule, tools))
        else:
            # allow and ask take the exact words: a prefix is never wider than the rule, and in the
            # interactive posture anything unlisted asks anyway.
            entry["commandPrefix"] = [" ".join(form) for form in rule.literal_forms()]
        out.append(entry)
    return out


def excluded_options(rule: Rule, tools: dict[str, ToolOptions]) -> list[str]:
    """The option names an allow rule must not see after its command words: its none_of flags
    and, for its programs, the options that make them write a file or run a program (tools:
    writes_or_runs). Options before the command words need no list: the regex allows none."""
    names = [name for matcher in rule.none_of for name in getattr(matcher, "names", ())]
    for program in rule.command[0]:
        options = tools.get(program)
        if options:
            names += list(options.writes_or_runs)
    return list(dict.fromkeys(names))


# what an allowed command's arguments may hold: no quote, escape, expansion, redirection or
# command separator (a command with one asks; Gemini judges compounds part by part anyway)
_PLAIN_ARGUMENTS = r'(?:\s[^"\\;&|<>`$()]*|)"'


def allow_regex(rule: Rule, excluded: list[str]) -> str:
    """An allow rule as a commandRegex: the program and its command words straight after each
    other (global options, such as `git -c`, are not allowed here and ask), then plain arguments
    none of which is an excluded option (a long one also abbreviated, as git and npm accept; a
    short one anywhere in a cluster). Gemini's loader refuses a quantified group, so repetition is
    character classes and the exclusions a lookahead over the rest of the command."""
    longs, shorts = [], []
    for name in excluded:
        if name.startswith("--"):
            body = name[2:]
            longs += [re.escape(body[:n]) for n in range(len(body), 1, -1)]
        else:
            shorts.append(re.escape(name[1]))
    bad = []
    if longs:
        bad.append(r"\s--(?:" + "|".join(dict.fromkeys(longs)) + r")(?![A-Za-z0-9-])")
    if shorts:
        bad.append(r"\s-[A-Za-z0-9]*[" + "".join(dict.fromkeys(shorts)) + "]")
    words = "|".join(r"\s+".join(re.escape(word) for word in form) for form in rule.prefixes())
    regex = f"(?:{words})(?![^\"]*?(?:{'|'.join(bad)})){_PLAIN_ARGUMENTS}"
    if len(regex) > MAX_REGEX or NESTED_QUANTIFIER.search(regex):
        raise ProfileError(f"{rule.source}: rule '{rule.id}' cannot be rendered as a gemini allow regex (too long or "
                           f"a quantified group, which gemini refuses); split the rule")
    return regex


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
    rules += file_rules(model) + home_files_rule(model)
    return {"rule": rules}


def system_settings(model: PolicyModel) -> dict:
    return {
        "security": {"folderTrust": {"enabled": False}},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
        # A second layer only: a user or workspace hooksConfig.disabled can switch it off
        # (docs/hooks.md), so the admin policies above stay the hard layer for gemini.
        **hook_settings(HOOK_COMMAND),
    }


def system_defaults(model: PolicyModel) -> dict:
    return {"security": {"auth": {"selectedType": "gemini-api-key"}}}


def hook_settings(command: str) -> dict:
    return {"hooksConfig": {"enabled": True}, "hooks": {"BeforeTool": [{"matcher": SHELL_TOOL, "hooks": [
        {"name": "agent-guard", "type": "command", "command": command, "timeout": HOOK_TIMEOUT_MS}]}]}}


def user_settings_interactive(model: PolicyModel) -> dict:
    return {
        "security": {"disableYoloMode": True},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
        **hook_settings(hook_command("gemini", model.name)),
    }


def system_settings_interactive(model: PolicyModel) -> dict:
    """The admin layer of a workstation (--install --system): the system settings win over the
    user's, so yolo stays refused and the hook on; the admin policies hold the deny rules."""
    return {"security": {"disableYoloMode": True}, **hook_settings(hook_command("gemini", model.name))}


# a shell word that writes the file named after it (within the same simple command)
_WRITING_WORDS = r"(?:>|\btee\b|--output|\s-o\s|\b(?:cp|mv|install|ln|rsync|dd|sed|perl|truncate|touch|chmod|chown|rm|unlink|shred)\b)"
_HOME = r"(?:~|\$HOME|\$\{HOME\}|/home/[^/\s\"]+|/root|/Users/[^/\s\"]+)"


def home_files_rule(model: PolicyModel) -> list[dict]:
    """The read-only files under the home folder (the agent's own settings, rules and hooks, the
    shell's start-up files) against the shell's writing words: a redirection, tee, --output, cp,
    sed and the like followed, in the same simple command, by such a path. The file tools are
    covered by file_rules; a program that writes it some other way, only by the hook."""
    names = []
    for glob in model.read_only_files + model.blocked_files:
        if glob.startswith("~/"):
            names.append(re.escape(glob[2:].removesuffix("/**")).replace("\\/", "/"))
    if not names:
        return []
    return [{
        "toolName": SHELL_TOOL,
        "commandRegex": f".*{_WRITING_WORDS}[^;&|\"]*?{_HOME}/(?:{'|'.join(names)})(?![A-Za-z0-9_.-])",
        "decision": "deny",
        "priority": PRIORITY["deny"],
        "denyMessage": deny_message("files-read-only", "the agent's own settings, rules and hooks, and the shell's "
                                                       "start-up files, are written by a person, not by the agent."),
    }]


def render(model: PolicyModel) -> dict[str, object]:
    if model.bypass:
        return {
            "/etc/gemini-cli/settings.json": system_settings(model),
            "/etc/gemini-cli/system-defaults.json": system_defaults(model),
            f"/etc/gemini-cli/policies/{POLICY_FILE}": policy_toml(model, ("deny",)),
        }
    return {
        "~/.gemini/settings.json": user_settings_interactive(model),
        f"~/.gemini/policies/{POLICY_FILE}": policy_toml(model, ("deny", "ask", "allow")),
        "/etc/gemini-cli/settings.json": system_settings_interactive(model),
        f"/etc/gemini-cli/policies/{POLICY_FILE}": policy_toml(model, ("deny",)),
    }
