"""Claude Code's subscription logins in the gateway (docs/logins.md, "Claude Code").

Claude Code 2.1 with an OAuth token (CLAUDE_CODE_OAUTH_TOKEN, or the login it keeps in
~/.claude/.credentials.json) sends its model requests to ANTHROPIC_BASE_URL as with a key, but with
`Authorization: Bearer <token>` and the `oauth-2025-04-20` beta. The gateway forwards the same
endpoints as for a key (egress.gateway_rules), with the real token in that header.

- `claude/oauth-token`: the long-lived token of `claude setup-token` (a year); never refreshed.
- `claude/login`: the interactive login's access token (hours) and refresh token; the gateway
  refreshes it at Anthropic's token endpoint with Claude Code's own public OAuth client id.
"""
from __future__ import annotations

from egress.gateway_rules import ENDPOINTS
from egress.logins import GatewayKind, Refresh, register

UPSTREAM = "https://api.anthropic.com"
TOKEN_URL = "https://platform.claude.com/v1/oauth/token"
CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"   # Claude Code's own (public) OAuth client
OAUTH_BETA = "oauth-2025-04-20"
# What Claude Code 2.1.330 asks for when it refreshes a login (its own list, whatever scopes the
# login recorded: observed against a stand-in token endpoint).
SCOPES = ("user:profile", "user:inference", "user:sessions:claude_code", "user:mcp_servers", "user:file_upload",
          "user:plugins")
# login-check: authentication comes before the body is judged, so a refused body (400) or an
# unknown model (404) still proves the token; 1 output token at most otherwise. Shaped as Claude
# Code's own requests (its betas, its first system line), which a subscription token is for.
CHECK_CALL = ("POST", "/v1/messages?beta=true",
              {"model": "claude-haiku-4-5", "max_tokens": 1,
               "system": [{"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."}],
               "messages": [{"role": "user", "content": "ping"}]})
CHECK_HEADERS = {"anthropic-version": "2023-06-01", "content-type": "application/json", "x-app": "cli",
                 "anthropic-beta": f"claude-code-20250219,{OAUTH_BETA}", "user-agent": "claude-cli/2.1.330 (external, cli)"}


def _kind(name: str, refresh: Refresh | None) -> GatewayKind:
    return GatewayKind(name, "anthropic", "authorization", "Bearer ", UPSTREAM, ENDPOINTS["anthropic"],
                       refresh=refresh, required_headers={"anthropic-beta": OAUTH_BETA},
                       check_call=CHECK_CALL, check_headers=CHECK_HEADERS,
                       check_accepts=(200, 400, 404, 429))


OAUTH_TOKEN = register(_kind("claude/oauth-token", None))
LOGIN = register(_kind("claude/login", Refresh(TOKEN_URL, {"client_id": CLIENT_ID, "scope": " ".join(SCOPES)}, "json")))
