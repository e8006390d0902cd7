"""What the credential gateway forwards, as data and pure functions: the endpoints each CLI uses
(method, path, query) and the request bodies it refuses.

A request reaches a vendor only if it matches one endpoint of its route exactly and its body asks
the vendor for nothing that fetches a URL or reaches a server on the vendor's side (web search and
fetch tools, MCP connectors, URL context, images or files given by URL): such a request would let
an agent that holds only a placeholder make the vendor, with the user's key, carry data to any
address. A profile can allow them (`network.model_server_tools: true`).

Every refusal is a `Refusal` naming the rule and the reason; the gateway sends it to the CLI as a
JSON error in the vendor's own shape and writes it to its log.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    status: int
    decision: str       # "deny_<why>", as in the access log
    rule: str
    reason: str


@dataclass(frozen=True)
class Endpoint:
    id: str
    method: str
    path: str                   # a regular expression, matched in full against the raw path
    query: dict                 # parameter name -> regular expression its value must match in full
    body: str | None = None     # the name of the body check in BODY_CHECKS, or None (no body)


# Observed with the pinned CLIs against the fakes (tests/egress/test_gateway_clis.py), plus the
# model endpoints each CLI's own code calls for side requests (docs/egress.md says which and why).
MODEL_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
ENDPOINTS: dict[str, tuple[Endpoint, ...]] = {
    "anthropic": (
        Endpoint("messages", "POST", r"/v1/messages", {"beta": "true"}, "anthropic"),
        Endpoint("count_tokens", "POST", r"/v1/messages/count_tokens", {"beta": "true"}, "anthropic"),
    ),
    "openai": (
        Endpoint("responses", "POST", r"/v1/responses", {}, "openai"),
        Endpoint("responses_compact", "POST", r"/v1/responses/compact", {}, "openai"),
    ),
    "gemini": (
        Endpoint("stream_generate", "POST", rf"/v1beta/models/{MODEL_NAME}:streamGenerateContent",
                 {"alt": "sse"}, "gemini"),
        Endpoint("generate", "POST", rf"/v1beta/models/{MODEL_NAME}:generateContent", {}, "gemini"),
        Endpoint("count_tokens", "POST", rf"/v1beta/models/{MODEL_NAME}:countTokens", {}, "gemini"),
    ),
}

# Query parameters that would carry a credential of the client's choosing (another account).
CREDENTIAL_PARAMETERS = {"key", "access_token", "api_key", "apikey", "token"}

# anthropic-beta values that switch on tools the vendor runs against URLs or remote servers.
SERVER_TOOL_BETAS = ("mcp-client-", "mcp-servers-", "web-fetch-", "web-search-")


def refuse(status: int, decision: str, rule: str, reason: str) -> Refusal:
    return Refusal(status, decision, rule, reason)


def match_endpoint(endpoints, method: str, raw_path: str) -> tuple[Endpoint | None, Refusal | None]:
    """The endpoint a request is for, or the refusal: other paths 404, a known path with another
    method 405."""
    same_path = [e for e in endpoints if re.fullmatch(e.path, raw_path)]
    for endpoint in same_path:
        if endpoint.method == method:
            return endpoint, None
    if same_path:
        allowed = ", ".join(sorted({e.method for e in same_path}))
        return None, refuse(405, "deny_method", "endpoint-allowlist",
                            f"{method} is not forwarded on this path (only {allowed})")
    return None, refuse(404, "deny_endpoint", "endpoint-allowlist",
                        "this path is not one of the model endpoints the gateway forwards")


def check_query(endpoint: Endpoint, pairs: list[tuple[str, str]]) -> Refusal | None:
    """pairs: the decoded query parameters in order. Values never appear in a reason."""
    seen = set()
    for name, value in pairs:
        if name.lower() in CREDENTIAL_PARAMETERS:
            return refuse(400, "deny_key_in_query", "key-in-query",
                          f"query parameter {name!r} would carry a credential; the gateway adds the key itself")
        pattern = endpoint.query.get(name)
        if pattern is None:
            return refuse(400, "deny_query", "query-allowlist",
                          f"query parameter {_short(name)!r} is not forwarded on this endpoint")
        if name in seen:
            return refuse(400, "deny_query", "query-allowlist", f"query parameter {name!r} is given twice")
        seen.add(name)
        if not re.fullmatch(pattern, value):
            return refuse(400, "deny_query", "query-allowlist", f"query parameter {name!r} has a value that is not forwarded")
    return None


def check_headers(vendor: str, headers: list[tuple[str, str]], allow_server_tools: bool) -> Refusal | None:
    if allow_server_tools or vendor != "anthropic":
        return None
    for name, value in headers:
        if name.lower() != "anthropic-beta":
            continue
        for beta in (v.strip().lower() for v in value.split(",")):
            if beta.startswith(SERVER_TOOL_BETAS):
                return refuse(400, "deny_server_tool", "server-side-tools",
                              f"anthropic-beta {_short(beta)!r} enables a tool the vendor runs against URLs "
                              "or remote servers; the profile does not allow them (network.model_server_tools)")
    return None


# --- bodies --------------------------------------------------------------------------------------

class BodyError(ValueError):
    pass


def _no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise BodyError(f"key {_short(key)!r} appears twice in one object")
        obj[key] = value
    return obj


def _no_constant(name):
    raise BodyError(f"{name} is not JSON")


def parse_body(raw: bytes) -> dict:
    """Strict JSON: UTF-8, an object, no repeated keys (a vendor's parser might keep the other one),
    no NaN or Infinity."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("the body is not UTF-8") from None
    try:
        body = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except BodyError:
        raise
    except ValueError as error:
        raise BodyError(f"the body is not JSON ({error.msg} at character {error.pos})") from None
    except RecursionError:
        raise BodyError("the body nests too deeply") from None
    if not isinstance(body, dict):
        raise BodyError("the body is not a JSON object")
    return body


def _norm(key: str) -> str:
    # Protocol-buffer JSON accepts both fileData and file_data; compare keys the way the most
    # lenient parser would.
    return key.replace("_", "").replace("-", "").lower()


def _values(obj: dict, name: str) -> list:
    """Every value whose key means `name`; more than one is ambiguous."""
    found = [value for key, value in obj.items() if _norm(key) == _norm(name)]
    if len(found) > 1:
        raise BodyError(f"the object has {len(found)} keys that mean {name!r}")
    return found


def _walk(value):
    """Every dict inside value, depth first (iteratively: bodies can be deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _server_tool(what: str) -> Refusal:
    return refuse(400, "deny_server_tool", "server-side-tools",
                  f"{what}: the vendor would fetch URLs or reach servers on its side with the user's key; "
                  "the profile does not allow it (network.model_server_tools)")


def _short(text, limit: int = 80) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "..."


def _is_fetched_url(url) -> bool:
    """A URL the vendor would fetch (anything but inline data)."""
    return isinstance(url, str) and not url.strip().lower().startswith("data:")


# Anthropic: tools without a type (or "custom") are the client's own; these versioned types are
# executed by the client too. Everything else (web_search_*, web_fetch_*, code_execution_*,
# mcp_toolset, tool_search_*, ...) runs at the vendor.
ANTHROPIC_CLIENT_TOOL_TYPES = re.compile(r"custom|(bash|text_editor|computer|memory)_[0-9]{8}")


def check_anthropic(body: dict) -> Refusal | None:
    for servers in _values(body, "mcp_servers"):
        if servers:
            return _server_tool("the request names MCP servers (mcp_servers) for the vendor to connect to")
    for tools in _values(body, "tools"):
        for tool in tools if isinstance(tools, list) else [tools]:
            kind = tool.get("type") if isinstance(tool, dict) else None
            if kind is not None and not (isinstance(kind, str) and ANTHROPIC_CLIENT_TOOL_TYPES.fullmatch(kind)):
                return _server_tool(f"tool type {_short(kind)!r} runs at the vendor")
    for part in ("messages", "system"):
        for value in _values(body, part):
            for block in _walk(value):
                source_type = block.get("type")
                if isinstance(source_type, str) and source_type.lower() == "url" and "url" in block:
                    return _server_tool("a content block is given by URL (source type 'url')")
    return None


OPENAI_CLIENT_TOOL_TYPES = {"function", "custom", "local_shell", "shell", "apply_patch"}


def _openai_tools(tools) -> Refusal | None:
    for tool in tools if isinstance(tools, list) else [tools]:
        if not isinstance(tool, dict):
            continue
        kind = tool.get("type")
        if kind == "namespace":
            for inner in _values(tool, "tools"):
                refusal = _openai_tools(inner)
                if refusal:
                    return refusal
        elif kind not in OPENAI_CLIENT_TOOL_TYPES:
            return _server_tool(f"tool type {_short(kind)!r} runs at the vendor")
    return None


def check_openai(body: dict) -> Refusal | None:
    for tools in _values(body, "tools"):
        refusal = _openai_tools(tools)
        if refusal:
            return refusal
    if _values(body, "prompt"):
        return _server_tool("a stored prompt (prompt) brings its own tools and settings")
    for value in _values(body, "input"):
        for item in _walk(value):
            # Tools can come inside the input too: Codex's own default models get theirs as an
            # `additional_tools` item there (seen in ChatGPT-login runs), and the vendor runs them.
            for tools in _values(item, "tools"):
                refusal = _openai_tools(tools)
                if refusal:
                    return refusal
            for url in _values(item, "image_url"):
                if isinstance(url, dict):
                    url = url.get("url")
                if _is_fetched_url(url):
                    return _server_tool("an image is given by URL (image_url)")
            if _values(item, "file_url"):
                return _server_tool("a file is given by URL (file_url)")
    return None


GEMINI_CLIENT_TOOL_KEYS = {"functiondeclarations"}
GEMINI_FILE_PREFIX = "https://generativelanguage.googleapis.com/"


def check_gemini(body: dict) -> Refusal | None:
    for tools in _values(body, "tools"):
        for tool in tools if isinstance(tools, list) else [tools]:
            if not isinstance(tool, dict):
                continue
            for key in tool:
                if _norm(key) not in GEMINI_CLIENT_TOOL_KEYS:
                    return _server_tool(f"tool {_short(key)!r} runs at the vendor")
    for contents in _values(body, "contents"):
        for item in _walk(contents):
            for data in _values(item, "file_data"):
                uri = next(iter(_values(data, "file_uri")), None) if isinstance(data, dict) else None
                if isinstance(uri, str) and not uri.startswith(GEMINI_FILE_PREFIX):
                    return _server_tool("a part is given by URL (fileData.fileUri)")
    return None


def check_code_assist(body: dict) -> Refusal | None:
    """Google's Code Assist API (Gemini CLI logged in with Google) wraps the Gemini API request:
    {"model", "project", "request": {...}}; the tools are inside "request"."""
    for inner in _values(body, "request"):
        if isinstance(inner, dict):
            refusal = check_gemini(inner)
            if refusal:
                return refusal
    return None


def check_json_only(body: dict) -> Refusal | None:
    """Start-up calls that carry no model input (quota, experiments, the account's tier): strict
    JSON is all that is asked of them."""
    return None


BODY_CHECKS = {"anthropic": check_anthropic, "openai": check_openai, "gemini": check_gemini,
               "code_assist": check_code_assist, "json": check_json_only}


def check_body(check: str, raw: bytes, allow_server_tools: bool) -> Refusal | None:
    try:
        body = parse_body(raw)
        if allow_server_tools:
            return None
        return BODY_CHECKS[check](body)
    except BodyError as error:
        return refuse(400, "deny_body", "body-format", str(error))
    except RecursionError:
        return refuse(400, "deny_body", "body-format", "the body nests too deeply")


def error_body(vendor: str, refusal: Refusal) -> bytes:
    """The refusal in the vendor's error shape, so that each CLI shows the message."""
    if refusal.decision == "forward":  # forwarded, but the vendor failed
        message = f"agent-sandbox gateway: {refusal.reason}"
    else:
        message = f"agent-sandbox gateway refused this request (rule {refusal.rule}): {refusal.reason}"
    detail = {"rule": refusal.rule, "decision": refusal.decision, "reason": refusal.reason}
    status = refusal.status
    if vendor == "anthropic":
        kind = {403: "permission_error", 404: "not_found_error", 413: "request_too_large"}.get(
            status, "invalid_request_error" if status < 500 else "api_error")
        payload = {"type": "error", "error": {"type": kind, "message": message}, "agent_sandbox": detail}
    elif vendor == "openai":
        kind = "invalid_request_error" if status < 500 else "server_error"
        payload = {"error": {"message": message, "type": kind, "param": None,
                             "code": f"agent_sandbox_{refusal.decision}"}, "agent_sandbox": detail}
    else:
        code = {403: "PERMISSION_DENIED", 404: "NOT_FOUND", 408: "DEADLINE_EXCEEDED", 504: "DEADLINE_EXCEEDED",
                502: "UNAVAILABLE"}.get(status, "INVALID_ARGUMENT" if status < 500 else "INTERNAL")
        payload = {"error": {"code": status, "message": message, "status": code}, "agent_sandbox": detail}
    return json.dumps(payload).encode()
