"""Gemini CLI's Google login and Vertex AI in the gateway (docs/logins.md, "Gemini CLI").

`gemini/google` ("Login with Google"): in the container the CLI runs in its Code Assist mode with
an access token that is a placeholder (GOOGLE_CLOUD_ACCESS_TOKEN: no expiry, no refresh token, so
the CLI never refreshes it and never asks Google's tokeninfo) and CODE_ASSIST_ENDPOINT pointing at
the gateway. It calls `POST /v1internal:<method>` there; the gateway forwards the methods below to
cloudcode-pa.googleapis.com with the user's real access token as `Authorization: Bearer`, and
refreshes that token at Google's token endpoint with the refresh token and the CLI's own OAuth
client (a refresh token only works with the client that obtained it).

Forwarded: the model calls (streamGenerateContent, generateContent, countTokens; their wrapped
request gets the Gemini server-side tool check) and the start-up calls the CLI cannot start or
choose a model without (loadCodeAssist: the user's tier and Code Assist project; retrieveUserQuota;
listExperiments: feature flags; fetchAdminControls: an organisation's restrictions, which must keep
holding; getCodeAssistGlobalUserSetting). Answered by the gateway: recordCodeAssistMetrics (what
the CLI reports to Google about each conversation: nothing the run needs). Refused like any other
path: onboardUser and its operations, setCodeAssistGlobalUserSetting (they change the account: log
in and onboard with the CLI on the host, once).
"""
from __future__ import annotations

import time

import jwt

from egress.gateway_rules import MODEL_NAME, Endpoint
from egress.logins import Answer, GatewayKind, Refresh, register

UPSTREAM = "https://cloudcode-pa.googleapis.com"
TOKEN_URL = "https://oauth2.googleapis.com/token"
# The Gemini CLI's own OAuth client: an installed application, whose secret ships in the CLI (Google
# does not treat it as confidential). tests/logins/test_gemini_gateway.py holds these to the pinned
# CLI's code.
CLIENT_ID = "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com"
CLIENT_SECRET = "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"
API = "/v1internal:"
# What the container holds instead of an access token (the shape of Google's); the gateway replaces it.
PLACEHOLDER_TOKEN = "ya29.agent-sandbox-placeholder"

CODE_ASSIST_ENDPOINTS = (
    Endpoint("stream_generate", "POST", rf"{API}streamGenerateContent", {"alt": "sse"}, "code_assist"),
    Endpoint("generate", "POST", rf"{API}generateContent", {}, "code_assist"),
    Endpoint("count_tokens", "POST", rf"{API}countTokens", {}, "code_assist"),
    Endpoint("load_code_assist", "POST", rf"{API}loadCodeAssist", {}, "json"),
    Endpoint("user_quota", "POST", rf"{API}retrieveUserQuota", {}, "json"),
    Endpoint("experiments", "POST", rf"{API}listExperiments", {}, "json"),
    Endpoint("admin_controls", "POST", rf"{API}fetchAdminControls", {}, "json"),
    Endpoint("user_setting", "GET", rf"{API}getCodeAssistGlobalUserSetting", {}, None),
)
ANSWERS = (
    Answer("metrics", "POST", rf"{API}recordCodeAssistMetrics", lambda secret: (200, {})),
)
# login-check: the CLI's own first call, which needs the token and says the user's tier.
CHECK_CALL = ("POST", f"{API}loadCodeAssist",
              {"metadata": {"ideType": "IDE_UNSPECIFIED", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}})

GOOGLE = register(GatewayKind(
    "gemini/google", "gemini", "authorization", "Bearer ", UPSTREAM, CODE_ASSIST_ENDPOINTS, ANSWERS,
    Refresh(TOKEN_URL, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, "form"),
    check_call=CHECK_CALL))


# --- gemini/vertex -----------------------------------------------------------------------------------
#
# Vertex AI with the user's application default credentials: a service account's key, or gcloud's
# application default login. In the container the CLI's Google library finds no credentials file and
# asks the metadata server, which GCE_METADATA_HOST makes the gateway: it answers a placeholder token
# that lasts ten years (with the `Metadata-Flavor: Google` header the library requires). The model
# calls then come to the gateway (GOOGLE_VERTEX_BASE_URL) with that placeholder; the gateway sends
# them to Vertex with a real access token it mints from the key (a JWT-bearer grant, the assertion
# signed with the key's private key) or refreshes with gcloud's refresh token and client.

METADATA = {"Metadata-Flavor": "Google"}
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
PROJECT = r"(?:[a-z][a-z0-9.-]{0,62}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]"
LOCATION = r"[a-z][a-z0-9-]{1,30}"
VERTEX_MODEL = rf"/v1(?:beta1)?/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{MODEL_NAME}"
VERTEX_ENDPOINTS = (
    Endpoint("vertex_stream_generate", "POST", rf"{VERTEX_MODEL}:streamGenerateContent", {"alt": "sse"}, "gemini"),
    Endpoint("vertex_generate", "POST", rf"{VERTEX_MODEL}:generateContent", {}, "gemini"),
    Endpoint("vertex_count_tokens", "POST", rf"{VERTEX_MODEL}:countTokens", {}, "gemini"),
)
METADATA_ANSWERS = (
    Answer("metadata_probe", "GET", r"/computeMetadata/v1/instance/?", lambda secret: (200, {}, METADATA)),
    Answer("metadata_token", "GET", r"/computeMetadata/v1/instance/service-accounts/default/token",
           lambda secret: (200, {"access_token": PLACEHOLDER_TOKEN, "expires_in": 10 * 365 * 86400,
                                 "token_type": "Bearer"}, METADATA)),
)
# login-check: reading a Google model's card needs a token and no project.
VERTEX_CHECK_CALL = ("GET", "/v1beta1/publishers/google/models/gemini-2.5-flash", None)


def vertex_grant(secret: dict) -> dict:
    """The token request: a service account signs a JWT assertion with its key (an hour, Google's
    limit); gcloud's application default login refreshes with its own client."""
    if "private_key" in secret:
        now = int(time.time())
        claims = {"iss": secret["client_email"], "scope": CLOUD_PLATFORM, "aud": secret["token_uri"],
                  "iat": now, "exp": now + 3600}
        headers = {"kid": secret["private_key_id"]} if secret.get("private_key_id") else None
        return {"grant_type": JWT_BEARER,
                "assertion": jwt.encode(claims, secret["private_key"], algorithm="RS256", headers=headers)}
    return {"grant_type": "refresh_token", "refresh_token": secret["refresh_token"],
            "client_id": secret["client_id"], "client_secret": secret["client_secret"]}


# The global endpoint; a run names its location's host (launcher/login_gemini.py, vertex_upstream).
VERTEX_UPSTREAM = "https://aiplatform.googleapis.com"
VERTEX = register(GatewayKind(
    "gemini/vertex", "gemini", "authorization", "Bearer ", VERTEX_UPSTREAM, VERTEX_ENDPOINTS,
    METADATA_ANSWERS, Refresh(TOKEN_URL, {}, "form", grant=vertex_grant), check_call=VERTEX_CHECK_CALL))
