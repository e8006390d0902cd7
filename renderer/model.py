"""Profile (YAML data) -> tool-neutral policy model.

Loading validates every file against profiles/profile.schema.json, resolves `extends`, and
checks what a schema cannot: cycles, duplicate ids, one pattern under two decisions, a bypass
profile without a deny list, domains, and patterns that no CLI could render faithfully.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml

from guard.policy import PolicyError, Rule, ToolOptions, deny_programs, parse_rule, parse_tools

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
STRICTEST_FIRST = ("deny", "ask", "allow")
CLIS = ("claude", "codex", "gemini")
RUNTIME_FORMAT = 1


GUARD_PROGRAM = "agent-guard"


def hook_command(cli: str, profile: str | None = None) -> str:
    """The guard hook as each CLI runs it (through sh). All three let a call through when a hook
    crashes, and Codex and Gemini also when it exits 2 saying nothing, so 0 (allow) and 2 (deny,
    with the guard's reason) pass through and anything else becomes exit 2 with a reason. In the
    image the profile comes from $AGENT_PROFILE; on a workstation it is named. The install puts
    the absolute path of the agent-guard it runs with in place of the bare name."""
    named = f" --profile {profile}" if profile else ""
    return (f"{GUARD_PROGRAM} hook {cli}{named}; s=$?; case $s in 0|2) exit $s ;; esac; "
            f"echo \"agent-sandbox: the guard hook failed (exit $s); refusing the call\" >&2; exit 2")


# Characters a word cannot carry into every CLI's rule syntax: Claude's Bash(...) rules end at a
# parenthesis and treat * as a wildcard; quotes and backslashes change meaning in shells and rules.
UNRENDERABLE_WORD = re.compile(r"[()*?\[\]'\"\\`$;&|<>]")
DOMAIN = re.compile(r"^\.?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")


class ProfileError(Exception):
    """Bad input. The message names the file, the key and the fix."""


@dataclass(frozen=True)
class PolicyModel:
    name: str
    description: str
    posture: str
    output: str
    rules: tuple[Rule, ...]
    blocked_files: tuple[str, ...]
    read_only_files: tuple[str, ...]
    network_allow: tuple[str, ...]
    model_server_tools: bool = False
    quiet_env: dict = field(default_factory=dict)
    launcher_only: tuple[str, ...] = ()
    tools: dict = field(default_factory=dict)  # as the profile writes it: the runtime profile carries it
    tool_options: dict[str, ToolOptions] = field(default_factory=dict)  # compiled, for matching
    kubernetes: dict = field(default_factory=dict)  # render-profiles --kubernetes: runtime class, sizes, pool

    @property
    def bypass(self) -> bool:
        return self.posture == "bypass"

    def rules_for(self, decision: str) -> list[Rule]:
        return [r for r in self.rules if r.decision == decision]

    @property
    def tripwire(self) -> list[Rule]:
        return [r for r in self.rules if r.tripwire]

    @property
    def guarded_programs(self) -> list[str]:
        return deny_programs(self.rules)


# ---------------------------------------------------------------- loading


def profiles_dir(root: Path | None = None) -> Path:
    return (root or PACKAGE_ROOT) / "profiles"


YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such profile file") from None
    try:
        data = yaml.load(text, Loader=YAML_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ProfileError(f"{where}: YAML syntax error: {exc.problem or exc}; fix the YAML at that line and column") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: YAML error: {exc}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a profile must be a YAML mapping with keys profile, description, ...")
    return data


def _read_validated(path: Path, validator: jsonschema.Draft202012Validator, schema_name: str) -> dict:
    data = _read_yaml(path)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors[:10]:
            key = "/".join(str(p) for p in err.absolute_path) or "(top level)"
            lines.append(f"{path}: at key '{key}': {err.message} (see {schema_name})")
        raise ProfileError("\n".join(lines))
    if data["profile"] != path.stem:
        raise ProfileError(f"{path}: at key 'profile': '{data['profile']}' must equal the file name '{path.stem}'")
    return data


def available_profiles(root: Path | None = None) -> list[str]:
    """Renderable (non-abstract) profiles, by file name."""
    names = []
    for path in sorted(profiles_dir(root).glob("*.yaml")):
        if not _read_yaml(path).get("abstract"):
            names.append(path.stem)
    return names


def _load_chain(name: str, root: Path | None) -> list[tuple[Path, dict]]:
    directory = profiles_dir(root)
    schema_path = directory / "profile.schema.json"
    validator = jsonschema.Draft202012Validator(json.loads(schema_path.read_text()))
    chain: list[tuple[Path, dict]] = []
    seen: list[str] = []
    current: str | None = name
    while current is not None:
        if current in seen:
            cycle = " -> ".join(seen + [current])
            raise ProfileError(f"{directory / (seen[-1] + '.yaml')}: at key 'extends': cycle {cycle}; remove one extends")
        path = directory / f"{current}.yaml"
        if not path.exists():
            if not seen:
                known = ", ".join(available_profiles(root)) or "none"
                raise ProfileError(f"unknown profile '{name}': no {path}; known profiles: {known}")
            raise ProfileError(f"{directory / (seen[-1] + '.yaml')}: at key 'extends': no profile '{current}' ({path} does not exist)")
        data = _read_validated(path, validator, schema_path.name)
        seen.append(current)
        chain.append((path, data))
        current = data.get("extends")
    chain.reverse()  # base first
    return chain


def _merge(chain: list[tuple[Path, dict]]) -> tuple[dict, dict[str, str]]:
    """Lists concatenate base first, mappings merge, scalars: the child wins.
    Also returns, for every rule id, the file it came from."""
    merged: dict = {}
    origin: dict[str, str] = {}

    def merge_into(dst: dict, src: dict) -> None:
        for key, value in src.items():
            if isinstance(value, dict):
                merge_into(dst.setdefault(key, {}), value)
            elif isinstance(value, list):
                dst.setdefault(key, [])
                dst[key] = dst[key] + value
            else:
                dst[key] = value

    for path, data in chain:
        for section in ("tripwire",):
            for rule in data.get(section, []):
                origin.setdefault(rule["id"], str(path))
        for decision, rules in (data.get("commands") or {}).items():
            for rule in rules:
                origin.setdefault(rule["id"], str(path))
        merge_into(merged, {k: v for k, v in data.items() if k not in ("abstract", "extends", "profile")})
    return merged, origin


def _rule(raw: dict, decision: str, tripwire: bool, source: str, key: str) -> Rule:
    try:
        rule = parse_rule(raw, f"at key '{key}'", decision=decision, tripwire=tripwire, source=source)
    except PolicyError as exc:
        raise ProfileError(f"{source}: {exc}") from None
    _check_renderable(rule, key)
    return rule


def _check_renderable(rule: Rule, key: str) -> None:
    where = f"{rule.source}: at key '{key}' (rule '{rule.id}')"
    for words in rule.command:
        for word in words:
            if UNRENDERABLE_WORD.search(word):
                raise ProfileError(
                    f"{where}: the word '{word}' has a character that Claude's Bash(...) rules, Codex "
                    f"prefix rules or a shell would read differently; use plain words"
                )
    for word in rule.command[0]:
        if "/" in word:
            raise ProfileError(f"{where}: the program '{word}' must be a name, not a path; paths are matched by their last component")
    if rule.any_of and not rule.literal_forms():
        kinds = " and ".join(sorted({repr(m.kind) for m in rule.any_of}))
        raise ProfileError(
            f"{where}: only {kinds} matchers: no CLI's prefix rules can express them, so the rule would have "
            f"no native form in claude and codex; add a flag or option matcher, or drop any_of"
        )
    if rule.decision == "allow" and rule.any_of:
        raise ProfileError(
            f"{where}: an allow rule with any_of would be rendered as a prefix allow, which permits every "
            f"argument after the prefix (more than the rule says); allow whole command words instead"
        )


def _rules(merged: dict, origin: dict[str, str], name: str) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    for index, raw in enumerate(merged.get("tripwire", [])):
        rules.append(_rule(raw, "deny", True, origin[raw["id"]], f"tripwire/{index}"))
    commands = merged.get("commands") or {}
    for decision in STRICTEST_FIRST:
        for index, raw in enumerate(commands.get(decision, [])):
            rules.append(_rule(raw, decision, False, origin[raw["id"]], f"commands/{decision}/{index}"))

    by_id: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in by_id:
            other = by_id[rule.id]
            raise ProfileError(f"{rule.source}: rule id '{rule.id}' is also used in {other.source}; rule ids must be unique")
        by_id[rule.id] = rule

    seen: dict[tuple, Rule] = {}
    for rule in rules:
        matchers = tuple(sorted(m.identity() for m in rule.any_of))
        for prefix in rule.prefixes():
            key = (prefix, matchers)
            other = seen.get(key)
            if other is not None and other.decision != rule.decision:
                raise ProfileError(
                    f"{rule.source}: the pattern '{' '.join(prefix)}' is both {other.decision} (rule '{other.id}') "
                    f"and {rule.decision} (rule '{rule.id}') in profile '{name}'; keep it under one decision"
                )
            seen.setdefault(key, rule)
    return tuple(rules)


def _domains(merged: dict, origin_file: str) -> tuple[str, ...]:
    domains = (merged.get("network") or {}).get("allow", [])
    for index, domain in enumerate(domains):
        if not DOMAIN.match(domain) or re.match(r"^\.?[0-9.]+$", domain):
            raise ProfileError(
                f"{origin_file}: at key 'network/allow/{index}': '{domain}' is not a valid domain; write "
                f"a lower-case host name (api.example.com) or a leading dot for a domain and its subdomains (.example.com), never an IP"
            )
    if len(set(domains)) != len(domains):
        dup = sorted({d for d in domains if domains.count(d) > 1})
        raise ProfileError(f"{origin_file}: at key 'network/allow': listed twice: {', '.join(dup)}")
    return tuple(domains)


@functools.lru_cache(maxsize=None)
def load(name: str, root: Path | None = None) -> PolicyModel:
    """The named profile, validated and resolved: read once per process and project root."""
    root_path = Path(root) if root else None
    chain = _load_chain(name, root_path)
    leaf_path, leaf = chain[-1]
    if leaf.get("abstract"):
        known = ", ".join(available_profiles(root_path))
        raise ProfileError(f"{leaf_path}: profile '{name}' is abstract (only extended); render one of: {known}")
    merged, origin = _merge(chain)
    for key in ("posture", "output"):
        if key not in merged:
            raise ProfileError(f"{leaf_path}: at key '{key}': missing (not set here nor in any profile it extends)")
    rules = _rules(merged, origin, name)
    tools = {k: {key: v.get(key, []) for key in ToolOptions.TABLE_KEYS + ToolOptions.COMMAND_KEYS
                 if key in ("options_with_value", "flags") or v.get(key)}
             for k, v in (merged.get("tools") or {}).items()}
    model = PolicyModel(
        name=name,
        description=" ".join(merged["description"].split()),
        posture=merged["posture"],
        output=merged["output"],
        rules=rules,
        blocked_files=tuple(merged.get("files", {}).get("blocked", [])),
        read_only_files=tuple(merged.get("files", {}).get("read_only", [])),
        network_allow=_domains(merged, str(leaf_path)),
        model_server_tools=bool((merged.get("network") or {}).get("model_server_tools", False)),
        quiet_env=dict((merged.get("environment") or {}).get("quiet", {})),
        launcher_only=tuple((merged.get("environment") or {}).get("launcher_only", [])),
        tools=tools,
        tool_options=parse_tools(tools),
        kubernetes=dict(merged.get("kubernetes") or {}),
    )
    if model.bypass and not model.rules_for("deny"):
        raise ProfileError(
            f"{leaf_path}: profile '{name}' bypasses approvals but its deny list is empty; a bypass profile "
            f"must carry the residual deny list (extend common, or add tripwire entries)"
        )
    if model.bypass and model.output not in ("text", "machine"):
        raise ProfileError(f"{leaf_path}: at key 'output': unknown output '{model.output}'")
    return model
