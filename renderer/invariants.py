"""What must hold of every render, whatever the profiles say. Each check returns problems as text.

- bypass appears only in bypass profiles, and the interactive files switch bypass off;
- every residual-deny entry reaches every CLI, in that CLI's enforced layer;
- no output carries a setting a pinned CLI rejects or ignores (the traps in docs/cli-facts.md);
- every output parses and validates against the schema the project keeps for it;
- the Gemini regexes and the shims' fast path agree with the classifier on profiles/corpus/.

Each output is parsed once and each regex compiled once per check, so the work grows with the
number of rules (benchmarks/render_scale_bench.py).
"""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from pathlib import Path

import jsonschema

from guard.native import DENY_TAG, GEMINI_PREFIX, json_command_text, rule_id_of
from guard.policy import compile_policy
from image.layout import HOME, SHIMS_DIR, runtime_profile
from renderer.agreement import decide_all, gap_problems, load_corpus, regex_disagreements, shim_disagreements
from renderer.gemini_regex import MAX_LENGTH, unsafe
from renderer.model import PACKAGE_ROOT, PolicyModel, load
from renderer.outputs import Output

SCHEMA_DIR = Path(__file__).parent / "schemas"
SCHEMA_FOR = {
    "/etc/claude-code/managed-settings.json": "claude-managed-settings",
    "/etc/claude-code/managed-settings.d/*.json": "claude-managed-drop-in",
    "*/.claude/settings.json": "claude-user-settings",
    "*/.claude.json": "claude-state",
    "*/.codex/config.toml": "codex-config",
    "*/.codex/ci.config.toml": "codex-config",
    "/etc/codex/requirements.toml": "codex-requirements",
    "/etc/gemini-cli/settings.json": "gemini-settings",
    "/etc/gemini-cli/system-defaults.json": "gemini-settings",
    "*/.gemini/settings.json": "gemini-settings",
    "*/policies/*.toml": "gemini-policy",
    "*/agent-sandbox/profiles/*.json": "runtime-profile",
}
BYPASS_MARKERS = ("bypassPermissions", "danger-full-access", '"never"', "yolo", "dangerously")


class Patterns(dict):
    """Each distinct regex compiled once per check (a Gemini regex is ~1-2 KB: ~2 ms to compile)."""

    def __missing__(self, pattern: str) -> re.Pattern:
        compiled = self[pattern] = re.compile(pattern)
        return compiled


def parse(out: Output) -> object:
    if out.format == "json":
        return json.loads(out.content)
    if out.format == "toml":
        return tomllib.loads(out.content.decode())
    return out.content.decode()


def schema_name(path: str) -> str | None:
    for pattern, name in SCHEMA_FOR.items():
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.replace("~/", "/~/"), pattern):
            return name
    return None


def check_parse_and_schema(profile: str, outputs: dict[str, Output], docs: dict) -> list[str]:
    """Parses every output into `docs` ({path: document}) and validates it against its schema."""
    problems = []
    validators: dict = {}
    for path, out in outputs.items():
        try:
            docs[path] = parse(out)
        except (ValueError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            problems.append(f"{profile}: {path} does not parse as {out.format}: {exc}")
            continue
        name = schema_name(path)
        if out.format in ("json", "toml") and name is None:
            problems.append(f"{profile}: {path} has no schema in renderer/schemas; add one to SCHEMA_FOR")
        elif name is not None:
            if name not in validators:
                validators[name] = jsonschema.Draft202012Validator(json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text()))
            for err in validators[name].iter_errors(docs[path]):
                key = "/".join(map(str, err.absolute_path)) or "(top level)"
                problems.append(f"{profile}: {path} at key '{key}': {err.message} (schema {name})")
    return problems


def check_posture(model: PolicyModel, outputs: dict[str, Output], docs: dict) -> list[str]:
    problems = []
    if model.bypass:
        for path, out in outputs.items():
            if path.startswith("~/"):
                problems.append(f"{model.name}: bypass profile renders {path} into a home folder; bypass configs go only into an image root")
        claude_user = docs[f"{HOME}/.claude/settings.json"]
        if "disableBypassPermissionsMode" in claude_user.get("permissions", {}):
            problems.append(f"{model.name}: disableBypassPermissionsMode in a bypass profile silently downgrades Claude to default mode")
        return problems
    for path, out in outputs.items():
        if out.format == "text" and not path.endswith(".toml"):
            continue
        text = out.content.decode()
        for marker in BYPASS_MARKERS:
            if marker in text and not (marker == "yolo" and '"disableYoloMode": true' in text):
                problems.append(f"{model.name}: interactive output {path} contains bypass marker {marker!r}")
    claude = docs["~/.claude/settings.json"]
    if claude["permissions"].get("disableBypassPermissionsMode") != "disable":
        problems.append(f"{model.name}: ~/.claude/settings.json must disable bypass mode")
    gemini = docs["~/.gemini/settings.json"]
    if gemini.get("security", {}).get("disableYoloMode") is not True:
        problems.append(f"{model.name}: ~/.gemini/settings.json must disable yolo mode")
    codex = docs["~/.codex/config.toml"]
    if codex.get("approval_policy") == "never" or codex.get("sandbox_mode") == "danger-full-access":
        problems.append(f"{model.name}: ~/.codex/config.toml must not bypass approvals or the sandbox")
    return problems


def check_traps(model: PolicyModel, outputs: dict[str, Output], docs: dict, patterns: Patterns) -> list[str]:
    """Settings that look right and silently do nothing, or break a run, in the pinned CLIs."""
    problems = []
    for path, out in outputs.items():
        if out.format not in ("json", "toml"):
            continue
        doc = docs[path]
        if "gemini" in path and path.endswith("settings.json"):
            if doc.get("general", {}).get("defaultApprovalMode") == "yolo":
                problems.append(f"{model.name}: {path}: general.defaultApprovalMode 'yolo' is invalid (yolo is a command-line flag only)")
            for entry in doc.get("tools", {}).get("exclude", []):
                if "(" in entry:
                    problems.append(f"{model.name}: {path}: tools.exclude '{entry}' blocks nothing (it becomes a literal tool name)")
        if "/.codex/" in path and ("profiles" in doc or "profile" in doc):
            problems.append(f"{model.name}: {path}: codex 0.169 rejects [profiles.x] and top-level profile; use ~/.codex/<name>.config.toml")
        if path.startswith("/etc/claude-code") and doc.get("permissions", {}).get("defaultMode"):
            problems.append(f"{model.name}: {path}: defaultMode in managed settings; the bypass posture belongs in the agent's user settings")
        if path.endswith(".toml") and "policies" in path:
            for rule in doc.get("rule", []):
                if not 0 <= rule.get("priority", 0) <= 999:
                    problems.append(f"{model.name}: {path}: priority {rule['priority']} outside 0..999 makes gemini skip the whole file")
                for key, prefix in (("commandRegex", GEMINI_PREFIX), ("argsPattern", "")):
                    if key in rule:
                        pattern = prefix + rule[key]
                        if len(pattern) > MAX_LENGTH or unsafe(pattern):
                            problems.append(f"{model.name}: {path}: {key} {rule[key][:60]!r}... fails gemini's loader check "
                                            f"(over {MAX_LENGTH} characters, or a quantified group): gemini would silently drop the rule")
                        try:
                            patterns[pattern]  # as gemini compiles it
                        except re.error as exc:
                            problems.append(f"{model.name}: {path}: {key} {rule[key]!r} does not compile: {exc}")
    return problems


def check_tripwire_reach(model: PolicyModel, outputs: dict[str, Output], docs: dict, patterns: Patterns) -> list[str]:
    """Each deny rule, in its literal forms, is enforced by every CLI's strongest layer."""
    if model.bypass:
        claude_path, codex_rules, codex_req, gemini_policy = (
            "/etc/claude-code/managed-settings.json", "/etc/codex/rules/agent-sandbox.rules",
            "/etc/codex/requirements.toml", "/etc/gemini-cli/policies/agent-sandbox.toml")
    else:
        claude_path, codex_rules, codex_req, gemini_policy = (
            "~/.claude/settings.json", "~/.codex/rules/agent-sandbox.rules", None, "~/.gemini/policies/agent-sandbox.toml")
    problems = []
    claude_deny = set(docs[claude_path]["permissions"]["deny"])
    codex_tagged = set(re.findall(r'"(agent-sandbox [a-z0-9-]+:)', outputs[codex_rules].content.decode()))
    required = {rule_id_of(r["justification"]) for r in docs[codex_req]["rules"]["prefix_rules"]} if codex_req else None
    gemini_regexes: dict[str, list] = {}
    for entry in docs[gemini_policy]["rule"]:
        if entry["decision"] == "deny" and "commandRegex" in entry:
            gemini_regexes.setdefault(rule_id_of(entry.get("denyMessage", "")), []).append(entry["commandRegex"])
    runtime = docs[next(p for p in outputs if p.endswith(f"profiles/{model.name}.json"))]
    runtime_ids = {r["id"] for r in runtime["rules"] if r["decision"] == "deny"}

    for rule in model.rules_for("deny"):
        tag = DENY_TAG.format(id=rule.id)
        regexes = [patterns[GEMINI_PREFIX + rx] for rx in gemini_regexes.get(rule.id, ())]
        for form in rule.literal_forms():
            text = " ".join(form)
            if f"Bash({text} *)" not in claude_deny:
                problems.append(f"{model.name}: deny rule '{rule.id}' form '{text}' missing from claude {claude_path}")
            if not any(regex.search(json_command_text(text)) for regex in regexes):
                problems.append(f"{model.name}: deny rule '{rule.id}' form '{text}' not matched by any gemini commandRegex in {gemini_policy}")
        if tag not in codex_tagged:
            problems.append(f"{model.name}: deny rule '{rule.id}' missing from codex {codex_rules}")
        if required is not None and rule.id not in required:
            problems.append(f"{model.name}: deny rule '{rule.id}' missing from codex {codex_req}")
        if rule.id not in runtime_ids:
            problems.append(f"{model.name}: deny rule '{rule.id}' missing from the guard's runtime profile")
        if model.bypass:
            for program in rule.command[0]:
                if f"{SHIMS_DIR}/{program}" not in outputs:
                    problems.append(f"{model.name}: deny rule '{rule.id}' names '{program}' but no shim is rendered for it")
    return problems


def check_hooks(model: PolicyModel, docs: dict) -> list[str]:
    """In bypass profiles the guard hook sits in each CLI's admin layer, with the switches that keep it on."""
    if not model.bypass:
        return []
    problems = []
    claude = docs["/etc/claude-code/managed-settings.json"]
    if not any("agent-guard hook claude" in h["command"] for m in claude.get("hooks", {}).get("PreToolUse", []) for h in m["hooks"]):
        problems.append(f"{model.name}: claude managed settings lack the agent-guard PreToolUse hook")
    requirements = docs["/etc/codex/requirements.toml"]
    if not any("agent-guard hook codex" in h["command"] for m in requirements.get("hooks", {}).get("PreToolUse", []) for h in m["hooks"]):
        problems.append(f"{model.name}: codex requirements.toml lacks the agent-guard PreToolUse hook")
    if requirements.get("features", {}) != {"hooks": True, "unified_exec_tty": False}:
        problems.append(f"{model.name}: codex requirements.toml must pin features hooks=true, unified_exec_tty=false, or the agent can turn hooks off")
    gemini = docs["/etc/gemini-cli/settings.json"]
    hooks = [h for m in gemini.get("hooks", {}).get("BeforeTool", []) for h in m["hooks"]]
    if not any("agent-guard hook gemini" in h["command"] and h.get("timeout", 0) >= 1000 for h in hooks):
        problems.append(f"{model.name}: gemini system settings lack the agent-guard BeforeTool hook (timeout in ms, at least 1000)")
    return problems


CORPUS_DIR = Path("profiles") / "corpus"


def check_corpus(model: PolicyModel, outputs: dict[str, Output], docs: dict, patterns: Patterns, root: Path,
                 seen: dict) -> list[str]:
    """The rendered Gemini regexes and the shims agree with the classifier on the project's corpus,
    except where profiles/corpus/regex_known_gaps.yaml says why a regex cannot."""
    if not model.bypass:
        return []
    runtime = docs[runtime_profile(model.name)]
    policy_out = outputs["/etc/gemini-cli/policies/agent-sandbox.toml"]
    # autonomous and ci differ in name and output, not in what this compares: check once
    key = (json.dumps([runtime["rules"], runtime["tools"], runtime["fast_path"]], sort_keys=True), policy_out.sha256)
    if key not in seen:
        folder = (root or Path.cwd()) / CORPUS_DIR
        if not (folder / "deny.yaml").is_file():
            return [f"{model.name}: no corpus at {folder}; --check compares the rendered layers with the classifier on it"]
        corpus = load_corpus(folder)
        policy = compile_policy(runtime)
        regexes = [patterns[GEMINI_PREFIX + r["commandRegex"]] for r in docs["/etc/gemini-cli/policies/agent-sandbox.toml"]["rule"]
                   if r.get("decision") == "deny" and "commandRegex" in r]
        decided = decide_all(policy, corpus.commands)
        missed, extra = regex_disagreements(policy, regexes, corpus.commands, decided)
        deny_commands = [c for commands in corpus.deny.values() for c in commands]
        seen[key] = gap_problems(missed, extra, corpus.gaps) + shim_disagreements(policy, runtime["fast_path"], deny_commands, decided)
    return [f"{model.name}: {problem}" for problem in seen[key]]


def check(rendered: dict[str, dict[str, Output]], root: Path | None = None) -> list[str]:
    """Every invariant of every profile, in order. A profile whose files do not parse or validate
    gets no further checks (they would read broken documents); the other profiles still get all."""
    problems: list[str] = []
    corpus_results: dict = {}
    patterns = Patterns()
    for name, outputs in rendered.items():
        model = load(name, root)
        docs: dict = {}
        unreadable = check_parse_and_schema(name, outputs, docs)
        problems += unreadable
        if unreadable:
            continue
        problems += check_posture(model, outputs, docs)
        problems += check_traps(model, outputs, docs, patterns)
        problems += check_tripwire_reach(model, outputs, docs, patterns)
        problems += check_hooks(model, docs)
        problems += check_corpus(model, outputs, docs, patterns, root or PACKAGE_ROOT, corpus_results)
    return problems
