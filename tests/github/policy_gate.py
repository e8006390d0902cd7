"""egress.github_policy in front of the fake GitHub, the way the gateway applies it: the tests'
stand-in for the gateway's GitHub routes, to prove the policy on the bytes real clients send."""
from __future__ import annotations

import json

from egress.github_policy import ReceivePackInspector, api_needs_body, check_api, check_git, check_registry


def policy_gate(policy, decisions: list, chunk: int = 7):
    """A FakeGitHub gate. The push body is fed in small pieces, as it arrives over a network."""
    def gate(request):
        if request.server == "git":
            result = check_git(policy, request.method, request.path, request.query, request.headers)
            if isinstance(result, ReceivePackInspector):
                decision = None
                for start in range(0, len(request.body), chunk):
                    decision = result.feed(request.body[start:start + chunk])
                    if decision is not None:
                        break
                decision = decision or result.finish()
                decisions.append(decision)
                refusal = result.refusal()
                if refusal is not None:
                    return 200, {"Content-Type": refusal[0]}, refusal[1]
            else:
                decision = result
                decisions.append(decision)
        else:
            body = request.body if api_needs_body(request.method, request.path) else None
            decision = check_api(policy, request.method, request.path, request.headers, body)
            decisions.append(decision)
        if decision.allowed:
            return None
        return 403, {"Content-Type": "application/json"}, json.dumps({"message": decision.message()}).encode()
    return gate


def registry_gate(policy, registry: str, decisions: list):
    def gate(method, path, headers):
        decision = check_registry(policy, registry, method, path, headers)
        decisions.append(decision)
        return None if decision.allowed else decision.message()
    return gate
