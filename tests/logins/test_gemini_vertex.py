"""gemini/vertex: Vertex AI with the user's application default credentials (a service account's
key, or gcloud's application default login). On the host: what is read, what the container gets
(no key, no token). Through the real gateway against Google's fake: the gateway plays the metadata
server with a placeholder token, mints real tokens from the key with a JWT assertion Google's fake
verifies against the key's public half (or refreshes gcloud's login with its own client), forwards
only the Vertex model calls. login-check mints and calls Vertex."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from launcher import logins
from tests.conformance.fakes import Scenario
from tests.egress.gateway_process import GatewayProcess
from tests.logins.fake_google import GoogleAccount, GoogleFake

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = "ya29.agent-sandbox-placeholder"
SA_EMAIL = "agent-runner@my-project-1.iam.gserviceaccount.com"
MODEL = "/v1beta1/projects/my-project-1/locations/us-central1/publishers/google/models/gemini-2.5-flash"
TURN = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def service_account_key(private: str, token_uri: str = "https://oauth2.googleapis.com/token") -> dict:
    return {"type": "service_account", "project_id": "my-project-1", "private_key_id": "k-1", "private_key": private,
            "client_email": SA_EMAIL, "client_id": "1234567890", "token_uri": token_uri}


def write_key(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "key.json"
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    return path


def vertex_context(tmp_path: Path, key: Path | None, **environ) -> logins.Context:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"HOME": str(home), "GOOGLE_CLOUD_LOCATION": "us-central1", **environ}
    if key is not None:
        env["GOOGLE_APPLICATION_CREDENTIALS"] = str(key)
    return logins.Context(home, env)


def test_a_service_account_key_becomes_the_gateways_secret_and_the_container_gets_none(tmp_path, key_pair):
    private, _ = key_pair
    found = logins.choose("gemini", "gemini/vertex", vertex_context(tmp_path, write_key(
        tmp_path, service_account_key(private))))
    assert found.details == {"project": "my-project-1", "location": "us-central1"}
    assert found.secret["private_key"] == private and found.secret["expires_at"] == 0
    box = logins.container_for(found.kind, "gateway", found.details)
    assert box.env == {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_CLOUD_PROJECT": "my-project-1",
                       "GOOGLE_CLOUD_LOCATION": "us-central1", "GOOGLE_VERTEX_BASE_URL": "http://gateway:8083",
                       "GCE_METADATA_HOST": "gateway:8083"}
    assert [json.loads(t) for t in box.files.values()] == [{"security": {"auth": {"selectedType": "vertex-ai"}}}]
    assert "PRIVATE KEY" not in json.dumps([box.env, box.files])


@pytest.mark.parametrize("doc, environ, message", [
    ({"type": "external_account"}, {}, "type 'external_account' are not supported"),
    ({"type": "authorized_user", "client_id": "c"}, {}, "no client_secret"),
    ({"type": "service_account", "client_email": SA_EMAIL, "private_key": "not a key"}, {}, "not an unencrypted PEM"),
    ("sa", {"GOOGLE_CLOUD_LOCATION": ""}, "needs the project and the location"),
    ("sa", {"GOOGLE_CLOUD_PROJECT": "Bad Project!"}, "not a Google Cloud name"),
])
def test_credentials_vertex_cannot_use_are_refused_saying_why(tmp_path, key_pair, doc, environ, message):
    doc = service_account_key(key_pair[0]) if doc == "sa" else doc
    with pytest.raises(logins.LoginError, match=message):
        logins.choose("gemini", "gemini/vertex", vertex_context(tmp_path, write_key(tmp_path, doc), **environ))


def test_auto_prefers_the_google_login_and_finds_gcloud_s_login_otherwise(tmp_path):
    context = vertex_context(tmp_path, None, GOOGLE_CLOUD_PROJECT="my-project-1")
    adc = context.home / ".config" / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    adc.write_text(json.dumps({"type": "authorized_user", "client_id": "gcloud-client", "client_secret": "s3cret",
                               "refresh_token": "1//gcloud-refresh-0123456789"}))
    found = logins.choose("gemini", "auto", context)
    assert (found.kind, found.origin) == ("gemini/vertex", str(adc))
    (context.home / ".gemini").mkdir()
    (context.home / ".gemini" / "oauth_creds.json").write_text(json.dumps(
        {"access_token": "ya29.a-0123456789", "refresh_token": "1//r-0123456789", "expiry_date": 1}))
    assert logins.choose("gemini", "auto", context).kind == "gemini/google"


def call(base: str, path: str, body: dict | None = None, token: str = PLACEHOLDER, headers: dict | None = None):
    request = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode(),
                                     method="GET" if body is None else "POST",
                                     headers={"authorization": f"Bearer {token}", "content-type": "application/json",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status, answer.read().decode(), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def vertex_fake(public: str, **account) -> GoogleFake:
    fake = GoogleFake(Scenario(("echo hi",), "Hello."), GoogleAccount(
        service_account_email=SA_EMAIL, service_account_public_key=public, **account))
    fake.account.token_audience = None  # the fake's own token URL, which the key names below
    return fake.start()


def test_the_gateway_plays_the_metadata_server_and_mints_real_tokens_from_the_key(tmp_path, key_pair):
    private, public = key_pair
    with vertex_fake(public) as fake:
        key = write_key(tmp_path, service_account_key(private, token_uri=fake.token_url))
        secret = logins.choose("gemini", "gemini/vertex", vertex_context(tmp_path, key)).secret
        with GatewayProcess(tmp_path / "gw", {"gemini": secret}, {"gemini": fake.base_url},
                            logins={"gemini": "gemini/vertex"}, token_urls={"gemini": fake.token_url}) as gw:
            base = gw.url("gemini")
            probe = call(base, "/computeMetadata/v1/instance", headers={"Metadata-Flavor": "Google"})
            token = call(base, "/computeMetadata/v1/instance/service-accounts/default/token?scopes=x",
                         headers={"Metadata-Flavor": "Google"})
            turn = call(base, MODEL + ":streamGenerateContent?alt=sse", TURN)
            again = call(base, MODEL + ":generateContent", TURN)
            refused = [call(base, path, TURN)[0] for path in (
                "/v1beta1/projects/my-project-1/locations/us-central1/endpoints/e1:predict",
                "/v1internal:generateContent", "/token")]
            search = call(base, MODEL + ":generateContent", {**TURN, "tools": [{"googleSearch": {}}]})
        log = gw.log()
        requests, token_url = fake.requests, fake.token_url
    assert probe[0] == 200 and probe[2]["Metadata-Flavor"] == "Google"
    assert token[0] == 200 and token[2]["Metadata-Flavor"] == "Google"
    assert json.loads(token[1])["access_token"] == PLACEHOLDER and json.loads(token[1])["expires_in"] > 10 ** 8
    assert turn[0] == 200 and "Hello." in turn[1] and again[0] == 200
    assert refused == [404, 404, 404] and search[0] == 400
    [minted] = fake.issued
    mint, *model = requests
    form = dict(pair.split("=", 1) for pair in mint.body.split("&"))
    assert form["grant_type"] == "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
    claims = jwt.decode(form["assertion"], public, algorithms=["RS256"], audience=token_url)
    assert claims["iss"] == SA_EMAIL and jwt.get_unverified_header(form["assertion"])["kid"] == "k-1"
    assert [r.headers["authorization"] for r in model] == [f"Bearer {minted['token']}"] * 2
    assert [(e.get("event") or e["decision"]) for e in log][:3] == ["answer", "answer", "refresh"]
    assert "PRIVATE KEY" not in json.dumps(log) and minted["token"] not in json.dumps(log)


def test_a_key_google_does_not_know_gets_no_token_and_the_cli_googles_401(tmp_path, key_pair):
    private, _ = key_pair
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with vertex_fake(other) as fake:
        key = write_key(tmp_path, service_account_key(private, token_uri=fake.token_url))
        secret = logins.choose("gemini", "gemini/vertex", vertex_context(tmp_path, key)).secret
        with GatewayProcess(tmp_path / "gw", {"gemini": secret}, {"gemini": fake.base_url},
                            logins={"gemini": "gemini/vertex"}, token_urls={"gemini": fake.token_url}) as gw:
            status, text, _ = call(gw.url("gemini"), MODEL + ":generateContent", TURN)
        log = gw.log()
    assert status == 401 and fake.issued == []
    assert log[0]["outcome"] == "failed" and "invalid_grant" in log[0]["reason"]


def test_login_check_mints_a_token_from_gclouds_login_and_calls_vertex(tmp_path):
    account = GoogleAccount()
    with GoogleFake(Scenario(("echo hi",), "Hello."), account) as fake:
        adc = write_key(tmp_path, {"type": "authorized_user", "client_id": "gcloud-client", "client_secret": "s3cret",
                                   "refresh_token": account.refresh_token})
        # gcloud's own client refreshes gcloud's login (the fake knows only the CLI's: teach it this one).
        import tests.logins.fake_google as fake_google
        saved = (fake_google.GEMINI_CLI_CLIENT_ID, fake_google.GEMINI_CLI_CLIENT_SECRET)
        fake_google.GEMINI_CLI_CLIENT_ID, fake_google.GEMINI_CLI_CLIENT_SECRET = "gcloud-client", "s3cret"
        try:
            env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
                   "GOOGLE_APPLICATION_CREDENTIALS": str(adc), "GOOGLE_CLOUD_PROJECT": "my-project-1",
                   "GOOGLE_CLOUD_LOCATION": "us-central1"}
            done = subprocess.run([sys.executable, "-m", "launcher.cli", "login-check", "gemini", "--login",
                                   "gemini/vertex", "--gateway-upstream", fake.base_url, "--gateway-token-url",
                                   fake.token_url], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
        finally:
            fake_google.GEMINI_CLI_CLIENT_ID, fake_google.GEMINI_CLI_CLIENT_SECRET = saved
        seen = [r.path for r in fake.requests]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "login:   gemini/vertex" in done.stdout and "usable:  yes" in done.stdout
    assert seen == ["/token", "/v1beta1/publishers/google/models/gemini-2.5-flash"]
    assert account.refresh_token not in done.stdout + done.stderr


def test_a_login_command_that_prints_a_key_is_taken_for_vertex_by_auto(tmp_path, key_pair):
    script = tmp_path / "print-key"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(service_account_key(key_pair[0]))}\nEOF\n")
    script.chmod(0o700)
    context = vertex_context(tmp_path, None)
    context.login_command = (str(script),)
    found = logins.choose("gemini", "auto", context)
    assert (found.kind, found.origin) == ("gemini/vertex", "--login-command")
    assert found.secret["client_email"] == SA_EMAIL


@pytest.mark.parametrize("location, host", [("us-central1", "https://us-central1-aiplatform.googleapis.com"),
                                            ("europe-west4", "https://europe-west4-aiplatform.googleapis.com"),
                                            ("global", "https://aiplatform.googleapis.com"),
                                            ("eu", "https://aiplatform.eu.rep.googleapis.com")])
def test_the_run_s_gateway_goes_to_the_host_that_serves_the_location(tmp_path, key_pair, location, host):
    from egress.gateway import is_model_api_host
    from launcher import plan
    found = logins.choose("gemini", "gemini/vertex", vertex_context(
        tmp_path, write_key(tmp_path, service_account_key(key_pair[0])), GOOGLE_CLOUD_LOCATION=location))
    options = plan.Options(cli="gemini", cli_args=[], workspace=tmp_path, login=found.kind,
                           login_details=found.details)
    assert plan.gateway_upstream(options, "gemini") == {"gemini": host}
    assert is_model_api_host(host.removeprefix("https://"))    # never through the proxy
