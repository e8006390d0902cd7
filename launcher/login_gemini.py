"""Gemini CLI's Google login on the host (docs/logins.md, "Gemini CLI").

- `gemini/google`: the "Login with Google" that `gemini` keeps in ~/.gemini/oauth_creds.json
  ($GEMINI_CLI_HOME/.gemini if set): an access token (an hour), a refresh token and the expiry in
  milliseconds; or a --login-command that prints that JSON.

The container gets no credentials file: a placeholder oauth_creds.json cannot work, since the CLI
first checks a cached login with Google's tokeninfo endpoint, which the container cannot reach (and
which would refuse a placeholder). Instead it gets the CLI's own variables for a token given from
outside: GOOGLE_GENAI_USE_GCA=true and GOOGLE_CLOUD_ACCESS_TOKEN set to a placeholder (a token with
no expiry and no refresh token: the CLI never refreshes it), CODE_ASSIST_ENDPOINT set to the gateway,
and user settings that select the login (`security.auth.selectedType: oauth-personal`; the image's
default is the API key). The gateway holds the real tokens and refreshes the access token.
"""
from __future__ import annotations

import json
from pathlib import Path

from egress.gateway import base_urls
from image import layout
from launcher.logins import (Container, Context, Found, HostKind, LoginError, json_credential, register,
                             token_from, write_back_file)

# The shape of a Google access token; the gateway replaces it.
PLACEHOLDER_TOKEN = "ya29.agent-sandbox-placeholder"
SETTINGS = f"{layout.HOME}/.gemini/settings.json"
ENCRYPTED_STORAGE_ENV = "GEMINI_FORCE_ENCRYPTED_FILE_STORAGE"
PROJECT_ENVS = ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_PROJECT_ID")


def credentials_path(context: Context) -> Path:
    home = context.environ.get("GEMINI_CLI_HOME")
    return (Path(home) if home else context.home) / ".gemini" / "oauth_creds.json"


def parse_credentials(text: str, origin: str) -> dict:
    """The CLI's cached Google login (google-auth-library's credentials) -> the gateway's secret."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise LoginError(f"gemini/google from {origin}: not JSON ({error.msg})") from None
    if not isinstance(data, dict):
        raise LoginError(f"gemini/google from {origin}: not a JSON object")
    kind = data.get("type")
    if kind is not None and kind != "authorized_user":
        raise LoginError(f"gemini/google from {origin}: holds {kind!r} credentials, not a Google login "
                         "(a service account or application default credentials are for Vertex AI)")
    if not data.get("refresh_token"):
        raise LoginError(f"gemini/google from {origin}: the login holds no refresh token; run `gemini`, choose "
                         "'Login with Google' and log in again")
    access = data.get("access_token")
    expiry_ms = data.get("expiry_date")
    if not isinstance(expiry_ms, (int, float)) or isinstance(expiry_ms, bool) or not access:
        access, expiry_ms = "expired-before-the-run", 0   # the gateway refreshes before the first call
    secret = {"kind": "gemini/google", "access_token": token_from(access, "access_token", origin),
              "refresh_token": token_from(data["refresh_token"], "refresh_token", origin),
              "expires_at": int(expiry_ms // 1000)}
    if PLACEHOLDER_TOKEN in (secret["access_token"], secret["refresh_token"]):
        raise LoginError(f"gemini/google from {origin}: holds agent-run's placeholder, not a real login")
    return secret


def find_google(context: Context) -> Found | None:
    found = json_credential(context, "gemini", credentials_path(context), "Gemini CLI's Google login")
    if found is None:
        if not context.login_command and context.environ.get(ENCRYPTED_STORAGE_ENV) == "true":
            raise LoginError(f"gemini/google: {ENCRYPTED_STORAGE_ENV}=true keeps the login in encrypted storage, "
                             "which agent-run does not read; give --login-command a command that prints the "
                             "login's JSON (access_token, refresh_token, expiry_date)")
        return None
    origin, text = found
    details = {}
    project = next((context.environ[name] for name in PROJECT_ENVS if context.environ.get(name)), None)
    if project is not None:
        if not project.replace("-", "").replace(":", "").replace(".", "").isalnum() or len(project) > 100:
            raise LoginError(f"gemini/google: ${PROJECT_ENVS[0]} {project!r} is not a Google Cloud project id")
        details["project"] = project
    return Found("gemini/google", origin, parse_credentials(text, origin), details)


def write_back_google(context: Context, started_with: dict, renewed: dict) -> str:
    """The refreshed access token into the CLI's file, if it still holds the login the run started
    with (the user's own gemini may have refreshed it meanwhile: then theirs wins)."""
    if context.login_command:
        return "the gateway refreshed the login, which came from --login-command; the user's store was left as it was"
    return write_back_file(
        credentials_path(context), "Gemini CLI's Google login", started_with, renewed,
        lambda data: data, "refresh_token",
        lambda data, login: login.update({"access_token": renewed["access_token"],
                                          "refresh_token": renewed["refresh_token"],
                                          "expiry_date": int(renewed["expires_at"]) * 1000}))


def container(gateway_host: str, details: dict) -> Container:
    env = {"GOOGLE_GENAI_USE_GCA": "true", "GOOGLE_CLOUD_ACCESS_TOKEN": PLACEHOLDER_TOKEN,
           "CODE_ASSIST_ENDPOINT": base_urls(gateway_host)["gemini"]}
    if details.get("project"):
        env["GOOGLE_CLOUD_PROJECT"] = details["project"]
    settings = {"security": {"auth": {"selectedType": "oauth-personal"}}}
    return Container(env, {SETTINGS: json.dumps(settings, indent=2) + "\n"})


GOOGLE = register(HostKind("gemini/google", "gemini", "Gemini CLI's Google login (~/.gemini/oauth_creds.json or "
                           "--login-command)", find_google, container, write_back=write_back_google, auto_order=10))


# --- gemini/vertex ---------------------------------------------------------------------------------

VERTEX_REFUSED = (
    "Vertex AI through the gateway is not built yet: the CLI's application default credentials would "
    "need the gateway to play the metadata server and mint tokens from the service-account key "
    "(docs/logins.md, 'Vertex AI'), and agent-run never puts a key file or gcloud's refresh token in the "
    "container; use --login gemini/google (Login with Google) or a Gemini API key (--key-file gemini=PATH)")


def _vertex_not_found(context: Context) -> Found | None:
    return None


def _vertex_container(gateway_host: str, details: dict) -> Container:
    raise LoginError(f"gemini/vertex: {VERTEX_REFUSED}")


VERTEX = register(HostKind("gemini/vertex", "gemini", "Vertex AI (application default credentials)",
                           _vertex_not_found, _vertex_container, refused=VERTEX_REFUSED, auto_order=90))
