"""Codex's ChatGPT login in the credential gateway (docs/logins.md, "Codex", `codex/chatgpt`).

With a ChatGPT login Codex talks to ChatGPT's backend, not to api.openai.com: model turns go to
`POST {chatgpt}/backend-api/codex/responses` (the Responses API body, judged by the same check as
an API-key run) with `Authorization: Bearer <access token>` and `chatgpt-account-id: <account>`.
The access token expires; Codex renews it with the refresh token at auth.openai.com, which rotates
the refresh token each time.

In a run, Codex holds placeholders (made here, so that the launcher and the gateway make the same
ones): JWTs nobody signed, with a far expiry and a placeholder account, so Codex never tries to
refresh them. The gateway holds the real access, id and refresh token, sets the real bearer token
and account on each forwarded call, and refreshes the access token itself. It answers three calls
itself: Codex's own refresh (with the placeholders again, should Codex ever try one), and two
start-up calls about the account (the accounts list and the user's settings), which would put the
user's account data in the container and which Codex does not need to work.
"""
from __future__ import annotations

import base64
import json

import jwt

from egress import logins
from egress.gateway_rules import Endpoint

KIND = "codex/chatgpt"
UPSTREAM = "https://chatgpt.com"
TOKEN_URL = "https://auth.openai.com/oauth/token"
CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"         # Codex's OAuth client (public, in the CLI)
AUTH_CLAIM = "https://api.openai.com/auth"          # where the tokens carry the account and plan
ACCOUNT_HEADER = "chatgpt-account-id"
BACKEND = "/backend-api"
MODELS_PATH = f"{BACKEND}/codex"                    # Codex's provider base URL under the backend

PLACEHOLDER = "agent-sandbox-placeholder"
PLACEHOLDER_ACCOUNT = "agent-sandbox-placeholder-account"
PLACEHOLDER_EMAIL = "agent-sandbox@placeholder.invalid"
# 2100-01-01: far enough that Codex never refreshes on its own (it does within minutes of expiry),
# fixed so that every placeholder of every run is the same bytes.
PLACEHOLDER_EXPIRY = 4102444800
PLANS = ("free", "go", "plus", "pro", "team", "business", "enterprise", "edu", "education", "hc")


# --- tokens ------------------------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_claims(token: str) -> dict:
    """The claims of a JWT, unverified, as Codex itself reads them (the account, the plan, the
    expiry). Only the vendor can verify them; here they say no more than when to refresh."""
    try:
        return jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise logins.LoginError("not a JWT (three base64url parts, the middle one a JSON object)") from None


def plan_of(claims: dict) -> str | None:
    auth = claims.get(AUTH_CLAIM)
    plan = auth.get("chatgpt_plan_type") if isinstance(auth, dict) else None
    return plan.lower() if isinstance(plan, str) and plan.lower() in PLANS else None


def _placeholder_jwt(claims: dict) -> str:
    # Made by hand: Codex wants three non-empty parts, and an unsigned token from a JWT library
    # ("alg": "none") has an empty signature.
    head = {"alg": "RS256", "typ": "JWT", "kid": PLACEHOLDER}
    return ".".join((_b64(json.dumps(head, separators=(",", ":")).encode()),
                     _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()),
                     _b64(PLACEHOLDER.encode())))


def placeholder_tokens(plan: str | None) -> dict:
    """The tokens Codex holds in a run: well-formed, unsigned, expiring in 2100, naming a placeholder
    account; the plan is the real one (Codex shapes its defaults by it; it is no secret)."""
    auth = {"chatgpt_account_id": PLACEHOLDER_ACCOUNT, "chatgpt_user_id": PLACEHOLDER, "user_id": PLACEHOLDER}
    if plan in PLANS:
        auth["chatgpt_plan_type"] = plan
    common = {"iss": PLACEHOLDER, "sub": PLACEHOLDER, "iat": 1767225600, "exp": PLACEHOLDER_EXPIRY, AUTH_CLAIM: auth}
    return {"id_token": _placeholder_jwt({**common, "aud": [CLIENT_ID], "email": PLACEHOLDER_EMAIL}),
            "access_token": _placeholder_jwt({**common, "aud": ["https://api.openai.com/v1"]}),
            "refresh_token": PLACEHOLDER}


def expiry_of(access_token: str, origin: str) -> int:
    try:
        exp = jwt_claims(access_token).get("exp")
    except logins.LoginError as error:
        raise logins.LoginError(f"{origin}: the access token: {error}") from None
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise logins.LoginError(f"{origin}: the access token has no expiry (exp)")
    return int(exp)


def parse_refresh(response: dict, doc: dict) -> dict:
    """auth.openai.com's answer to Codex's refresh grant: a new access token and, usually, a new id
    token and a rotated refresh token. The expiry is the new access token's own `exp` (Codex reads it
    the same way; the answer's expires_in, if any, is not needed)."""
    origin = "the token response"
    update = {"access_token": logins.check_token(response.get("access_token"), "access_token", origin)}
    update["expires_at"] = expiry_of(update["access_token"], origin)
    for name in ("id_token", "refresh_token"):
        if response.get(name) is not None:
            update[name] = logins.check_token(response[name], name, origin)
    return update


# --- the calls the gateway answers itself --------------------------------------------------------------

def _answer_refresh(doc: dict) -> tuple[int, object]:
    # Codex's own refresh (it tries one after two 401s in a row): the placeholders again. The real
    # refresh token never leaves the gateway.
    return 200, placeholder_tokens(doc.get("plan_type"))


def _answer_accounts(doc: dict) -> tuple[int, object]:
    # The accounts the user belongs to (names, plans, workspaces): only the placeholder account, with
    # no routing constraint (Codex then keeps the base URL it was given).
    return 200, {"accounts": [{"id": PLACEHOLDER_ACCOUNT, "workspace_backend_origin": "NO_CONSTRAINT",
                               "account_routing_override": "NO_CONSTRAINT"}]}


def _answer_settings(doc: dict) -> tuple[int, object]:
    return 200, {}


CLIENT_VERSION = r"[0-9][0-9A-Za-z.+-]{0,31}"

GATEWAY_KIND = logins.register(logins.GatewayKind(
    name=KIND, vendor="openai", header="authorization", prefix="Bearer ", default_upstream=UPSTREAM,
    endpoints=(
        Endpoint("responses", "POST", rf"{MODELS_PATH}/responses", {}, "openai"),
        Endpoint("responses_compact", "POST", rf"{MODELS_PATH}/responses/compact", {}, "openai"),
        Endpoint("models", "GET", rf"{MODELS_PATH}/models", {"client_version": CLIENT_VERSION}),
    ),
    answers=(
        logins.Answer("codex_refresh", "POST", r"/oauth/token", _answer_refresh),
        logins.Answer("accounts_check", "GET", rf"{BACKEND}/wham/accounts/check", _answer_accounts),
        logins.Answer("settings_user", "GET", rf"{BACKEND}/wham/settings/user", _answer_settings),
    ),
    refresh=logins.Refresh(TOKEN_URL, fields={"client_id": CLIENT_ID}, body="json", parse=parse_refresh),
    secret_headers=lambda doc: {ACCOUNT_HEADER: doc["account_id"]},
    check_call=("GET", f"{MODELS_PATH}/models?client_version=0.169.0", None),
))

