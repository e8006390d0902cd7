"""Gemini CLI's Google login in the gateway (docs/logins.md, "Gemini CLI").

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

from egress.gateway_rules import Endpoint
from egress.logins import Answer, GatewayKind, Refresh, register

UPSTREAM = "https://cloudcode-pa.googleapis.com"
TOKEN_URL = "https://oauth2.googleapis.com/token"
# The Gemini CLI's own OAuth client: an installed application, whose secret ships in the CLI (Google
# does not treat it as confidential). tests/logins/test_gemini_login.py holds these to the pinned
# CLI's code.
CLIENT_ID = "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com"
CLIENT_SECRET = "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"
API = "/v1internal:"

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
