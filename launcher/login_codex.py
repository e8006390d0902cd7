"""Codex's ChatGPT login on the host (docs/logins.md, "Codex", `codex/chatgpt`).

`codex/chatgpt`: the login `codex login` keeps in ~/.codex/auth.json ($CODEX_HOME if set): an
access token, an id token and a refresh token, all from auth.openai.com, and the ChatGPT account.
Or a --login-command that prints that JSON (for a keyring store: `cli_auth_credentials_store`).

The gateway gets the three tokens and the account (egress/login_codex.py); the container gets an
auth.json of placeholders (well-formed JWTs nobody signed, expiring in 2100, a placeholder account
and refresh token) and the settings that send Codex to the gateway: ChatGPT's backend URL, a model
provider that uses the ChatGPT login, and its own refresh endpoint, all pointing at the gateway.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

from egress import login_codex as gateway
from egress import logins as gateway_logins
from egress.gateway import VENDORS
from image import layout
from launcher.logins import (Container, Context, Found, HostKind, LoginError, json_credential, register,
                             write_back_file)

CONTAINER_AUTH = f"{layout.HOME}/.codex/auth.json"
PROVIDER = "agent_gateway_chatgpt"


def auth_path(context: Context) -> Path:
    folder = context.environ.get("CODEX_HOME")
    return (Path(folder) if folder else context.home / ".codex") / "auth.json"


def parse_auth_json(text: str, origin: str) -> tuple[dict, dict]:
    """Codex's auth.json -> (the gateway's secret, what the container may know: the plan). Errors
    name the key and the fix, never a token."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise LoginError(f"codex/chatgpt from {origin}: not JSON ({error.msg})") from None
    tokens = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(tokens, dict) and isinstance(data, dict) and data.get("OPENAI_API_KEY"):
        raise LoginError(f"codex/chatgpt from {origin}: holds an API key (`codex login --with-api-key`), not a "
                         "ChatGPT login; give agent-run the key instead: --key-file openai=PATH")
    if not isinstance(tokens, dict):
        raise LoginError(f"codex/chatgpt from {origin}: no 'tokens' object, so not a ChatGPT login (run `codex login` "
                         "and sign in with ChatGPT, or give an API key with --key-file openai=PATH)")
    try:
        secret = {"kind": gateway.KIND}
        for name in ("access_token", "refresh_token", "id_token"):
            secret[name] = gateway_logins.check_token(tokens.get(name), f"tokens.{name}", origin)
        if secret["refresh_token"] == gateway.PLACEHOLDER:
            raise LoginError(f"codex/chatgpt from {origin}: holds agent-run's placeholder, not a real login")
        try:
            id_claims = gateway.jwt_claims(secret["id_token"])
        except gateway_logins.LoginError as error:
            raise LoginError(f"codex/chatgpt from {origin}: tokens.id_token is {error}") from None
        auth = id_claims.get(gateway.AUTH_CLAIM)
        auth = auth if isinstance(auth, dict) else {}
        account = tokens.get("account_id") or auth.get("chatgpt_account_id")
        if not isinstance(account, str) or not gateway_logins.TOKEN.match(account):
            raise LoginError(f"codex/chatgpt from {origin}: no ChatGPT account (tokens.account_id, or the id token's "
                             "chatgpt_account_id); run `codex login` again")
        secret["account_id"] = account
        secret["expires_at"] = gateway.expiry_of(secret["access_token"], f"codex/chatgpt from {origin}")
    except gateway_logins.LoginError as error:
        raise LoginError(str(error) if str(error).startswith("codex/chatgpt") else
                         f"codex/chatgpt from {origin}: {error}") from None
    plan = gateway.plan_of(id_claims)
    if plan:
        secret["plan_type"] = plan
    return secret, ({"plan_type": plan} if plan else {})


def find(context: Context) -> Found | None:
    found = json_credential(context, "codex", auth_path(context), "Codex's auth.json")
    if found is None:
        return None
    origin, text = found
    secret, details = parse_auth_json(text, origin)
    return Found(gateway.KIND, origin, secret, details)


def placeholder_auth_json(plan: str | None, now: float | None = None) -> str:
    """The container's ~/.codex/auth.json: what `codex login` writes, with placeholders."""
    tokens = gateway.placeholder_tokens(plan)
    when = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    doc = {"auth_mode": "chatgpt", "OPENAI_API_KEY": None,
           "tokens": {**tokens, "account_id": gateway.PLACEHOLDER_ACCOUNT},
           "last_refresh": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    return json.dumps(doc, indent=2) + "\n"


def codex_arguments(gateway_host: str) -> list[str]:
    """Codex takes the ChatGPT backend's URL and its model provider from its config only. The
    built-in provider in ChatGPT mode wants an https backend, so a provider of our own that uses the
    ChatGPT login (requires_openai_auth) points at the plain-HTTP gateway instead. Apps (ChatGPT's
    connectors, run at the vendor on the user's account) are off: the gateway would refuse them."""
    root = f"http://{gateway_host}:{VENDORS['openai'].port}"
    provider = f"model_providers.{PROVIDER}"
    overrides = [
        f'chatgpt_base_url="{root}{gateway.BACKEND}/"',
        f'model_provider="{PROVIDER}"', f'{provider}.name="agent-gateway (ChatGPT login)"',
        f'{provider}.base_url="{root}{gateway.MODELS_PATH}"', f'{provider}.wire_api="responses"',
        f"{provider}.requires_openai_auth=true", "features.apps=false",
    ]
    return [a for o in overrides for a in ("-c", o)]


def container(gateway_host: str, details: dict) -> Container:
    root = f"http://{gateway_host}:{VENDORS['openai'].port}"
    # Codex's own refresh, should it try one, goes to the gateway (which answers with placeholders).
    env = {"CODEX_REFRESH_TOKEN_URL_OVERRIDE": f"{root}/oauth/token"}
    return Container(env, files={CONTAINER_AUTH: placeholder_auth_json(details.get("plan_type"))},
                     args=tuple(codex_arguments(gateway_host)))


def write_back(context: Context, started_with: dict, renewed: dict) -> str:
    """The refreshed tokens into the user's auth.json, if it still holds the login the run started
    with (auth.openai.com rotates the refresh token: the old one no longer works)."""
    if context.login_command:
        return ("the gateway refreshed the ChatGPT login, which came from --login-command; auth.openai.com rotated "
                "its refresh token, so the stored one no longer works: run `codex login` again before using Codex "
                "outside agent-run")
    def apply(data: dict, tokens: dict) -> None:
        tokens.update({name: renewed[name] for name in ("access_token", "id_token", "refresh_token")
                       if renewed.get(name)})
        data["last_refresh"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return write_back_file(auth_path(context), "Codex's auth.json", started_with, renewed,
                           lambda data: data.get("tokens"), "refresh_token", apply)


CHATGPT = register(HostKind(gateway.KIND, "codex", "Codex ChatGPT login (~/.codex/auth.json or --login-command)",
                            find, container, write_back=write_back, auto_order=10))
