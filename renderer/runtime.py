"""The runtime profile: what the guard (hook, shims, agent-guard) and the entrypoint read at run
time. JSON, so neither needs YAML, jsonschema or the renderer to start."""

from __future__ import annotations

from guard.policy import PolicyError, compile_policy
from renderer.model import RUNTIME_FORMAT, PolicyModel, ProfileError
from renderer.shims import fast_path_table


def runtime_profile(model: PolicyModel) -> dict:
    runtime = {
        "format": RUNTIME_FORMAT,
        "profile": model.name,
        "posture": model.posture,
        "output": model.output,
        "default_decision": "allow" if model.bypass else "ask",
        "rules": [rule.to_json() for rule in model.rules],
        "tools": model.tools,
        "guarded_programs": model.guarded_programs,
        "environment": {"quiet": dict(sorted(model.quiet_env.items())), "launcher_only": list(model.launcher_only)},
        "files": {"blocked": list(model.blocked_files), "read_only": list(model.read_only_files)},
        "network": {"allow": list(model.network_allow)},
    }
    try:
        policy = compile_policy(runtime)  # what the hook and shims will load: refuse now, not at run time
    except PolicyError as exc:
        raise ProfileError(f"profile '{model.name}': the guard cannot compile its rules: {exc}") from None
    runtime["fast_path"] = fast_path_table(policy)
    return runtime
