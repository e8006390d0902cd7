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
import re
from pathlib import Path

from egress.gateway import base_urls
from egress.login_gemini import LOCATION as LOCATION_ID
from egress.login_gemini import PLACEHOLDER_TOKEN, TOKEN_URL, VERTEX_UPSTREAM
from egress.login_gemini import PROJECT as PROJECT_ID
from image import layout
from launcher.logins import (Container, Context, Found, HostKind, LoginError, json_credential, register,
                             token_from, write_back_file)

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


def _credential_text(context: Context, path: Path, what: str, kind_of: str) -> tuple[str, str] | None:
    """(origin, text) of the kind's JSON: --login-command's output when it holds this kind's (a Google
    login has no "type"; application default credentials have one), else the file at path."""
    found = json_credential(context, "gemini", path, what)
    if found is None or not context.login_command:
        return found
    try:
        doc = json.loads(found[1])
    except ValueError:
        return None
    return found if isinstance(doc, dict) and ("type" in doc) == (kind_of == "adc") else None


def find_google(context: Context) -> Found | None:
    found = _credential_text(context, credentials_path(context), "Gemini CLI's Google login", "login")
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
        if not re.fullmatch(PROJECT_ID, project):
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

ADC_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
LOCATION_ENV = "GOOGLE_CLOUD_LOCATION"
UNMINTED = "not-minted-yet"      # the gateway gets a real access token before the first call


def adc_path(context: Context) -> Path:
    """Where Google's libraries look for application default credentials: the variable, else gcloud's."""
    if context.environ.get(ADC_ENV):
        return Path(context.environ[ADC_ENV])
    folder = context.environ.get("CLOUDSDK_CONFIG")
    return (Path(folder) if folder else context.home / ".config" / "gcloud") / "application_default_credentials.json"


def parse_adc(text: str, origin: str) -> tuple[dict, str | None]:
    """A service account's key or gcloud's application default login -> (the gateway's secret, the
    project it names)."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise LoginError(f"gemini/vertex from {origin}: not JSON ({error.msg})") from None
    kind = data.get("type") if isinstance(data, dict) else None
    secret = {"kind": "gemini/vertex", "access_token": UNMINTED, "expires_at": 0}
    if kind == "service_account":
        from cryptography.hazmat.primitives import serialization
        for key in ("client_email", "private_key"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise LoginError(f"gemini/vertex from {origin}: the service account key has no {key}")
        try:
            serialization.load_pem_private_key(data["private_key"].encode(), password=None)
        except (ValueError, TypeError):
            raise LoginError(f"gemini/vertex from {origin}: private_key is not an unencrypted PEM private key") \
                from None
        secret.update({"client_email": data["client_email"], "private_key": data["private_key"],
                       "token_uri": data.get("token_uri") or TOKEN_URL})
        if isinstance(data.get("private_key_id"), str):
            secret["private_key_id"] = data["private_key_id"]
        return secret, data.get("project_id")
    if kind == "authorized_user":
        for key in ("client_id", "client_secret", "refresh_token"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise LoginError(f"gemini/vertex from {origin}: the application default login has no {key}; "
                                 "run `gcloud auth application-default login` again")
        secret.update({"refresh_token": token_from(data["refresh_token"], "refresh_token", origin),
                       "client_id": data["client_id"], "client_secret": data["client_secret"]})
        return secret, data.get("quota_project_id")
    raise LoginError(f"gemini/vertex from {origin}: credentials of type {kind!r} are not supported (a service "
                     "account key or `gcloud auth application-default login` are)")


def find_vertex(context: Context) -> Found | None:
    """Google's application default credentials, with the project and location the CLI needs."""
    found = _credential_text(context, adc_path(context), "Google application default credentials", "adc")
    if found is None:
        return None
    origin, text = found
    secret, named_project = parse_adc(text, origin)
    project = next((context.environ[name] for name in PROJECT_ENVS if context.environ.get(name)), None) or named_project
    location = context.environ.get(LOCATION_ENV)
    if not project or not location:
        raise LoginError(f"gemini/vertex from {origin}: Vertex AI needs the project and the location: set "
                         f"${PROJECT_ENVS[0]} and ${LOCATION_ENV} (under sudo: sudo --preserve-env="
                         f"{PROJECT_ENVS[0]},{LOCATION_ENV})")
    if not re.fullmatch(PROJECT_ID, project) or not re.fullmatch(LOCATION_ID, location):
        raise LoginError(f"gemini/vertex: project {project!r} or location {location!r} is not a Google Cloud name")
    return Found("gemini/vertex", origin, secret, {"project": project, "location": location})


def vertex_upstream(details: dict) -> str:
    """Vertex's host for the location, as Google's SDK and the CLI pick it: the global endpoint, a
    multi-region one (us, eu) or a regional one."""
    location = details["location"]
    if location == "global":
        return VERTEX_UPSTREAM
    if location in ("us", "eu"):
        return f"https://aiplatform.{location}.rep.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def vertex_container(gateway_host: str, details: dict) -> Container:
    url = base_urls(gateway_host)["gemini"]
    env = {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_CLOUD_PROJECT": details["project"],
           LOCATION_ENV: details["location"], "GOOGLE_VERTEX_BASE_URL": url,
           # Google's libraries ask this "metadata server" for a token: the gateway answers a placeholder.
           "GCE_METADATA_HOST": url.removeprefix("http://")}
    settings = {"security": {"auth": {"selectedType": "vertex-ai"}}}
    return Container(env, {SETTINGS: json.dumps(settings, indent=2) + "\n"})


VERTEX = register(HostKind("gemini/vertex", "gemini", "Vertex AI (application default credentials: "
                           f"${ADC_ENV} or gcloud's, with ${PROJECT_ENVS[0]} and ${LOCATION_ENV})",
                           find_vertex, vertex_container, auto_order=20, upstream=vertex_upstream))
