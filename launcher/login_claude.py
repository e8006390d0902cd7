"""Claude Code's subscription logins on the host (docs/logins.md, "Claude Code").

- `claude/oauth-token`: the long-lived token `claude setup-token` prints, from the user's
  CLAUDE_CODE_OAUTH_TOKEN (keep it under sudo: `sudo --preserve-env=CLAUDE_CODE_OAUTH_TOKEN`) or a
  --login-command that prints it.
- `claude/login`: the login `claude` keeps in ~/.claude/.credentials.json ($CLAUDE_CONFIG_DIR if
  set), or a --login-command that prints that JSON (macOS keeps it in the keychain:
  `security find-generic-password -s "Claude Code-credentials" -w`).

Either way the container gets CLAUDE_CODE_OAUTH_TOKEN set to a placeholder and ANTHROPIC_BASE_URL
set to the gateway: Claude Code then sends its model requests there with `Authorization: Bearer
<placeholder>`, treats the token as one it cannot refresh (it never calls the token endpoint), and
needs no credentials file. The gateway holds the real token (and the refresh token of a login).
"""
from __future__ import annotations

import json
from pathlib import Path

from egress.gateway import base_urls
from launcher.logins import (Container, Context, Found, HostKind, LoginError, json_credential, register,
                             run_login_command, token_from, write_back_file)

# The shape of Claude Code's OAuth access tokens; the gateway replaces it.
PLACEHOLDER_TOKEN = "sk-ant-oat01-agent-sandbox-placeholder"
TOKEN_ENV = "CLAUDE_CODE_OAUTH_TOKEN"
PLANS = ("free", "pro", "max", "team", "enterprise")


def credentials_path(context: Context) -> Path:
    folder = context.environ.get("CLAUDE_CONFIG_DIR")
    return (Path(folder) if folder else context.home / ".claude") / ".credentials.json"


def _command_output(context: Context) -> str | None:
    if not context.login_command:
        return None
    return run_login_command(context.login_command, "claude").decode("utf-8", "replace").strip()


def _is_json(text: str) -> bool:
    return text.lstrip().startswith("{")


# --- claude/oauth-token ----------------------------------------------------------------------------

def find_oauth_token(context: Context) -> Found | None:
    output = _command_output(context)
    if output is not None and not _is_json(output):
        origin = "--login-command"
        token = token_from(output, "the token", origin)
    elif output is None and context.environ.get(TOKEN_ENV):
        origin = f"${TOKEN_ENV}"
        token = token_from(context.environ[TOKEN_ENV], "the token", origin)
    else:
        return None
    if token == PLACEHOLDER_TOKEN:
        raise LoginError(f"claude/oauth-token from {origin}: holds agent-run's placeholder, not a real token")
    return Found("claude/oauth-token", origin, {"kind": "claude/oauth-token", "access_token": token})


# --- claude/login ------------------------------------------------------------------------------------

def parse_credentials(text: str, origin: str) -> tuple[dict, dict]:
    """Claude Code's credentials JSON -> (the gateway's secret, details the container may know)."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise LoginError(f"claude/login from {origin}: not JSON ({error.msg})") from None
    oauth = data.get("claudeAiOauth") if isinstance(data, dict) else None
    if not isinstance(oauth, dict):
        raise LoginError(f"claude/login from {origin}: no 'claudeAiOauth' object (log in with `claude` first, "
                         "or use `claude setup-token` and --login claude/oauth-token)")
    if not oauth.get("refreshToken"):
        raise LoginError(f"claude/login from {origin}: the login holds no refresh token (claudeAiOauth.refreshToken "
                         "is empty: Claude Code ended it); run `claude` and log in again")
    expires_ms = oauth.get("expiresAt")
    if not isinstance(expires_ms, (int, float)) or isinstance(expires_ms, bool):
        raise LoginError(f"claude/login from {origin}: claudeAiOauth.expiresAt is not a time in milliseconds")
    secret = {"kind": "claude/login",
              "access_token": token_from(oauth.get("accessToken"), "claudeAiOauth.accessToken", origin),
              "refresh_token": token_from(oauth.get("refreshToken"), "claudeAiOauth.refreshToken", origin),
              "expires_at": int(expires_ms // 1000)}
    scopes = oauth.get("scopes")
    if isinstance(scopes, list) and all(isinstance(s, str) for s in scopes):
        secret["scopes"] = scopes
    if "user:inference" not in (scopes or ["user:inference"]):
        raise LoginError(f"claude/login from {origin}: the login's scopes do not include user:inference (it is a "
                         "Console login for creating API keys); use an API key instead")
    details = {}
    plan = oauth.get("subscriptionType")
    if isinstance(plan, str) and plan in PLANS:
        details["subscription_type"] = plan
    tier = oauth.get("rateLimitTier")
    if isinstance(tier, str) and tier.replace("_", "").isalnum() and len(tier) < 64:
        details["rate_limit_tier"] = tier
    return secret, details


def find_login(context: Context) -> Found | None:
    found = json_credential(context, "claude", credentials_path(context), "Claude Code's credentials")
    if found is None:
        return None
    origin, text = found
    secret, details = parse_credentials(text, origin)
    return Found("claude/login", origin, secret, details)


def write_back_login(context: Context, started_with: dict, renewed: dict) -> str:
    """The refreshed tokens into the user's credentials file, if it still holds the login the run
    started with (their own claude may have refreshed it meanwhile: then theirs wins)."""
    if context.login_command:
        return ("the gateway refreshed the login, which came from --login-command; the user's store still holds "
                "the old tokens (run `claude` once to log in again if the vendor rotated them)")
    return write_back_file(
        credentials_path(context), "Claude Code's credentials", started_with, renewed,
        lambda data: data.get("claudeAiOauth"), "refreshToken",
        lambda data, oauth: oauth.update({"accessToken": renewed["access_token"],
                                          "refreshToken": renewed["refresh_token"],
                                          "expiresAt": int(renewed["expires_at"]) * 1000}))


# --- the container ---------------------------------------------------------------------------------

def container(gateway_host: str, details: dict) -> Container:
    env = {"ANTHROPIC_BASE_URL": base_urls(gateway_host)["anthropic"], TOKEN_ENV: PLACEHOLDER_TOKEN}
    # Claude Code reads the plan of an environment token from these (it shapes its defaults).
    if details.get("subscription_type"):
        env["CLAUDE_CODE_SUBSCRIPTION_TYPE"] = details["subscription_type"]
    if details.get("rate_limit_tier"):
        env["CLAUDE_CODE_RATE_LIMIT_TIER"] = details["rate_limit_tier"]
    return Container(env)


OAUTH_TOKEN = register(HostKind("claude/oauth-token", "claude", f"Claude Code OAuth token (${TOKEN_ENV} or "
                                "--login-command, from `claude setup-token`)", find_oauth_token, container,
                                auto_order=10))
LOGIN = register(HostKind("claude/login", "claude", "Claude Code login (~/.claude/.credentials.json or "
                          "--login-command)", find_login, container, write_back=write_back_login, auto_order=20))
