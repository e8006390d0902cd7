"""launcher.github_app against the fake GitHub: the run's token is minted narrow, checked, revoked."""
from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import jwt
import pytest
from github_setup import APP_ID, REPOSITORY
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from egress.gateway import KeySource
from egress.gateway_github import parse_git_config_parameters
from launcher import github_app as ga


def write_key(path: Path, pem: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(pem)
    path.chmod(mode)
    return path


@pytest.fixture
def config(tmp_path, app_key, github):
    key = write_key(tmp_path / "app.pem", app_key[0])
    return ga.load_app_config(tmp_path / "absent.toml", app_id=str(APP_ID), key_file=key, installation_id="77",
                              api_url=github.api_url)


def call(url: str, method: str = "GET", token: str | None = None, body: dict | None = None, basic: bool = False):
    headers = {}
    if token:
        headers["Authorization"] = ("Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()) if basic \
            else f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


# --- minting -------------------------------------------------------------------------------------

def test_the_token_is_narrowed_to_the_repository_and_the_run_permissions(github, config):
    minted = ga.mint_token(config, REPOSITORY)
    issued = [{k: v for k, v in e.items() if k not in ("time", "fingerprint")} for e in github.effects
              if e["kind"] == "token-issued"]
    assert issued == [{"kind": "token-issued", "installation": 77, "repositories": [REPOSITORY],
                       "permissions": ga.RUN_PERMISSIONS}]
    assert minted.token.startswith("ghs_") and minted.token not in repr(minted)
    assert minted.expires_at.timestamp() <= time.time() + 3600 + 5
    # What the token can do at GitHub: its repository, not another; nothing that needs administration.
    assert call(f"{github.git_url}/octo/widgets.git/info/refs?service=git-upload-pack", token=minted.token, basic=True)[0] == 200
    assert call(f"{github.git_url}/octo/other.git/info/refs?service=git-upload-pack", token=minted.token, basic=True)[0] == 403
    assert call(f"{github.api_url}/repos/{REPOSITORY}", "DELETE", minted.token)[0] == 403
    assert call(f"{github.api_url}/repos/{REPOSITORY}/actions/secrets", token=minted.token)[0] == 403
    assert "repo-deleted" not in github.kinds() and "secret-read" not in github.kinds()


def test_the_installation_is_looked_up_from_the_repository(github, tmp_path, app_key):
    key = write_key(tmp_path / "app.pem", app_key[0])
    config = ga.load_app_config(tmp_path / "absent.toml", app_id=str(APP_ID), key_file=key, api_url=github.api_url)
    assert config.installation_id is None
    assert ga.mint_token(config, "Octo/Widgets").repository == "Octo/Widgets"
    with pytest.raises(ga.GitHubError, match="404.*installed on this repository"):
        ga.mint_token(config, "someone/else")


def test_teardown_revokes_the_token(github, config, tmp_path):
    credential = ga.GitHubCredential(*(lambda m: (m.token, m.repository, "app", m))(ga.mint_token(config, REPOSITORY)))
    url = f"{github.git_url}/octo/widgets.git/info/refs?service=git-upload-pack"
    assert call(url, token=credential.token, basic=True)[0] == 200
    assert credential.revoke() is None
    assert call(url, token=credential.token, basic=True)[0] == 401
    assert github.kinds()[-1] == "token-revoked"
    assert "401" in credential.revoke()      # a second revoke reports, never raises


def test_a_narrower_config_asks_for_less(github, tmp_path, app_key):
    write_key(tmp_path / "app.pem", app_key[0])
    (tmp_path / "github-app.toml").write_text(f'app_id = {APP_ID}\nprivate_key_file = "app.pem"\ninstallation_id = 77\n'
                                              f'api_url = "{github.api_url}"\n[permissions]\nissues = "none"\n'
                                              f'contents = "read"\n')
    config = ga.load_app_config(tmp_path / "github-app.toml")
    ga.mint_token(config, REPOSITORY)
    assert github.effects[-1]["permissions"] == {"contents": "read", "pull_requests": "write", "metadata": "read"}


def test_an_installation_without_the_permission_is_a_clear_error(github, config):
    github.installations[0].permissions.pop("issues")
    with pytest.raises(ga.GitHubError, match=r"422.*not granted.*lacks a permission"):
        ga.mint_token(config, REPOSITORY)


@pytest.mark.parametrize("answer,problem", [
    ({"permissions": {**ga.RUN_PERMISSIONS, "administration": "write"}}, "more than"),
    ({"repository_selection": "all"}, "not limited to"),
    ({"repositories": [{"full_name": "octo/widgets"}, {"full_name": "octo/other"}]}, "not limited to"),
    ({"expires_at": "2099-01-01T00:00:00Z"}, "does not expire within the hour"),
    ({"expires_at": "tomorrow"}, "cannot be read"),
])
def test_a_broader_answer_is_revoked_and_never_used(github, config, answer, problem):
    issue = github.access_tokens

    def broader(installation_id, body):
        return {**issue(installation_id, body), **answer}
    github.access_tokens = broader
    with pytest.raises(ga.GitHubError, match=problem):
        ga.mint_token(config, REPOSITORY)
    assert github.kinds()[-1] == "token-revoked"


def test_a_wrong_key_or_app_id_is_refused_by_github(github, tmp_path, other_key, app_key):
    wrong = ga.load_app_config(tmp_path / "absent.toml", app_id=str(APP_ID), key_file=write_key(tmp_path / "o.pem", other_key),
                               installation_id="77", api_url=github.api_url)
    with pytest.raises(ga.GitHubError, match=r"401.*App id or key is wrong"):
        ga.mint_token(wrong, REPOSITORY)
    other_app = ga.load_app_config(tmp_path / "absent.toml", app_id="1", key_file=write_key(tmp_path / "k.pem", app_key[0]),
                                   installation_id="77", api_url=github.api_url)
    with pytest.raises(ga.GitHubError, match="401"):
        ga.mint_token(other_app, REPOSITORY)
    assert "token-issued" not in github.kinds()


def test_an_unreachable_github_is_an_error_not_a_hang(tmp_path, app_key):
    config = ga.load_app_config(tmp_path / "absent.toml", app_id=str(APP_ID), key_file=write_key(tmp_path / "k.pem", app_key[0]),
                                installation_id="77", api_url="http://127.0.0.1:9")
    with pytest.raises(ga.GitHubError, match="POST http://127.0.0.1:9/app/installations/77/access_tokens"):
        ga.mint_token(config, REPOSITORY, timeout=5)


# --- the fake's own checks (a fake that accepted anything would prove nothing) --------------------

def _claims(**overrides):
    now = int(time.time())
    return {"iat": now - 60, "exp": now + 540, "iss": str(APP_ID), **overrides}


@pytest.mark.parametrize("make", [
    lambda key: jwt.encode(_claims(exp=int(time.time()) - 5, iat=int(time.time()) - 300), key, algorithm="RS256"),
    lambda key: jwt.encode(_claims(iss="999"), key, algorithm="RS256"),
    lambda key: jwt.encode(_claims(exp=int(time.time()) + 3600), key, algorithm="RS256"),
    lambda key: jwt.encode(_claims(), "a shared secret of at least thirty-two bytes", algorithm="HS256"),
    lambda key: jwt.encode(_claims(), None, algorithm="none"),
    lambda key: jwt.encode({"iat": int(time.time()), "iss": str(APP_ID)}, key, algorithm="RS256"),
    lambda key: "not.a.jwt",
])
def test_the_fake_refuses_bad_jwts(github, app_key, make):
    status, body = call(f"{github.api_url}/app/installations/77/access_tokens", "POST", make(app_key[0]),
                        {"repositories": ["widgets"], "permissions": {"contents": "read"}})
    assert status == 401, body
    assert "token-issued" not in github.kinds()


def test_the_fake_refuses_an_unscoped_token_request(github, config):
    for body in ({}, {"repositories": ["widgets"]}, {"permissions": {"contents": "read"}}):
        status, answer = call(f"{github.api_url}/app/installations/77/access_tokens", "POST", ga.app_jwt(config), body)
        assert status == 422 and b"unscoped" in answer
    status, _ = call(f"{github.api_url}/app/installations/77/access_tokens", "POST", ga.app_jwt(config),
                     {"repositories": ["widgets"], "permissions": {"contents": "read"}})
    assert status == 201


def test_the_fake_refuses_an_expired_token(github):
    token = github.issue_token([REPOSITORY], {"contents": "read"}, lifetime=-1)
    assert call(f"{github.git_url}/octo/widgets.git/info/refs?service=git-upload-pack", token=token, basic=True)[0] == 401
    assert call(f"{github.git_url}/octo/widgets.git/info/refs?service=git-upload-pack")[0] == 401


# --- configuration ---------------------------------------------------------------------------------

def test_the_config_file_is_read_relative_to_itself(tmp_path, app_key, monkeypatch):
    folder = tmp_path / "xdg" / "agent-sandbox"
    folder.mkdir(parents=True)
    write_key(folder / "app.pem", app_key[0])
    (folder / "github-app.toml").write_text('client_id = "Iv23liABCDEF"\nprivate_key_file = "app.pem"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    config = ga.load_app_config()
    assert config.issuer == "Iv23liABCDEF" and config.key_file == folder / "app.pem"
    assert config.api_url == ga.DEFAULT_API and config.installation_id is None
    assert config.permissions == ga.RUN_PERMISSIONS and str(folder / "github-app.toml") in config.describe()
    assert jwt.decode(ga.app_jwt(config), app_key[1], algorithms=["RS256"], issuer="Iv23liABCDEF")
    # Flags win over the file.
    assert ga.load_app_config(app_id="5", installation_id="9").issuer == "5"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    assert ga.load_app_config() is None


@pytest.mark.parametrize("text,message", [
    ("app_id = [", "not valid TOML"),
    ('app_id = 1\nprivate_key_file = "app.pem"\nsecret = 1\n', "unknown key 'secret'"),
    ('private_key_file = "app.pem"\n', "no app_id"),
    ('app_id = 1\nclient_id = "Iv1abcd"\nprivate_key_file = "app.pem"\n', "app_id or client_id, not both"),
    ('app_id = "one"\nprivate_key_file = "app.pem"\n', "neither an App id"),
    ("app_id = 1\n", "no private_key_file"),
    ('app_id = 1\nprivate_key_file = "missing.pem"\n', "private_key_file .*missing.pem: No such file"),
    ('app_id = 1\nprivate_key_file = "app.pem"\ninstallation_id = "x"\n', "installation_id 'x' is not a number"),
    ('app_id = 1\nprivate_key_file = "app.pem"\napi_url = "http://github.example.com"\n', "must be https"),
    ('app_id = 1\nprivate_key_file = "app.pem"\n[permissions]\nadministration = "write"\n',
     "permissions.administration: a run's token never holds"),
    ('app_id = 1\nprivate_key_file = "app.pem"\n[permissions]\nworkflows = "write"\n', "permissions.workflows"),
    ('app_id = 1\nprivate_key_file = "app.pem"\n[permissions]\nmetadata = "write"\n', "permissions.metadata = 'write'"),
    ('app_id = 1\nprivate_key_file = "app.pem"\npermissions = "all"\n', "permissions must be a table"),
])
def test_config_errors_name_the_file_and_the_key(tmp_path, app_key, text, message):
    write_key(tmp_path / "app.pem", app_key[0])
    (tmp_path / "github-app.toml").write_text(text)
    with pytest.raises(ga.GitHubError, match=message) as error:
        ga.load_app_config(tmp_path / "github-app.toml")
    assert str(tmp_path / "github-app.toml") in str(error.value)


def test_key_file_problems(tmp_path, app_key):
    def load(path):
        return ga.load_app_config(tmp_path / "absent.toml", app_id="1", key_file=path)
    with pytest.raises(ga.GitHubError, match="readable by others.*chmod 600"):
        load(write_key(tmp_path / "loose.pem", app_key[0], 0o644))
    with pytest.raises(ga.GitHubError, match="not an unencrypted PEM"):
        load(write_key(tmp_path / "junk.pem", b"-----BEGIN RSA PRIVATE KEY-----\nnope\n"))
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(ga.GitHubError, match="not an RSA key"):
        load(write_key(tmp_path / "ec.pem", ec_pem))
    with pytest.raises(ga.GitHubError, match="--github-app-config"):
        ga.load_app_config(tmp_path / "missing.toml", explicit_path=True)


# --- tokens from a command or a file ---------------------------------------------------------------

def test_long_lived_tokens_are_refused_unless_allowed(tmp_path):
    for prefix in ("ghp_", "gho_"):
        with pytest.raises(ga.GitHubError, match="--allow-long-lived-token"):
            ga.check_token(prefix + "x" * 36, "key command 'vault'", False)
        assert ga.check_token(prefix + "x" * 36, "x", True)
    for token in ("ghs_" + "x" * 36, "github_pat_" + "x" * 60, "ghu_" + "y" * 36):
        assert ga.check_token(token, "x", False) == token


def test_tokens_are_read_from_a_command_or_a_file_without_echoing_them(tmp_path):
    token = "ghs_" + "a1" * 18
    assert ga.read_token(KeySource("github", command=("printf", f"{token}\n"))) == token
    (tmp_path / "t").write_text(token + "\n")
    assert ga.read_token(KeySource("github", file=tmp_path / "t")) == token
    with pytest.raises(ga.GitHubError, match="exited 1"):
        ga.read_token(KeySource("github", command=("false",)))
    (tmp_path / "bad").write_text("ghs_two words SECRETVALUE\n")
    with pytest.raises(ga.GitHubError, match="not an API key") as error:
        ga.read_token(KeySource("github", file=tmp_path / "bad"))
    assert "SECRETVALUE" not in str(error.value)
    with pytest.raises(ga.GitHubError, match="timed out"):
        ga.read_token(KeySource("github", command=("sleep", "5")), timeout=0.5)


def test_obtain_with_a_command_refuses_a_classic_token_and_never_revokes_it(tmp_path):
    options = ga.GitHubOptions(token_source=KeySource("github", command=("printf", "ghp_" + "z" * 36)),
                               repository=REPOSITORY)
    with pytest.raises(ga.GitHubError, match="classic personal access token"):
        ga.obtain(options, REPOSITORY)
    allowed = ga.GitHubOptions(token_source=options.token_source, repository=REPOSITORY, allow_long_lived=True)
    credential = ga.obtain(allowed, REPOSITORY)
    assert credential.minted is None and credential.revoke() is None
    assert ga.obtain(ga.GitHubOptions(), REPOSITORY) is None


# --- the repository from the workspace ------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://github.com/octo/widgets", "https://github.com/octo/widgets.git", "https://github.com/octo/widgets/",
    "https://user@github.com/octo/widgets.git", "https://x-access-token:abc@GitHub.com/octo/widgets.git",
    "http://github.com/octo/widgets", "git@github.com:octo/widgets.git", "github.com:octo/widgets",
    "ssh://git@github.com/octo/widgets.git", "ssh://git@github.com:22/octo/widgets", "git://github.com/octo/widgets.git",
    "ssh://git@ssh.github.com:443/octo/widgets.git", "https://www.github.com/octo/widgets", "git@github.com:/octo/widgets.git",
])
def test_github_remote_forms(url):
    assert ga.repository_from_url(url) == "octo/widgets"


@pytest.mark.parametrize("url", [
    "https://gitlab.com/octo/widgets.git", "git@gitlab.com:octo/widgets.git", "https://github.com/octo",
    "https://github.com/octo/widgets/tree/main", "/srv/git/widgets.git", "file:///srv/github.com/octo/widgets",
    "https://github.com.evil.example/octo/widgets", "https://evil.example/github.com/octo/widgets", "",
    "ftp://github.com/octo/widgets",
])
def test_other_remotes_are_refused(url):
    with pytest.raises(ga.GitHubError, match="--github-repository"):
        ga.repository_from_url(url)


# --- agent-run's flags -----------------------------------------------------------------------------

def parse(argv):
    parser = argparse.ArgumentParser()
    ga.add_arguments(parser)
    return parser.parse_args(argv)


def test_flags_give_a_plan_line_and_refuse_mixing_sources(tmp_path, app_key, github, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    key = write_key(tmp_path / "app.pem", app_key[0])
    args = parse(["--github-app-id", str(APP_ID), "--github-app-key", str(key), "--github-app-installation", "77",
                  "--github-repository", REPOSITORY, "--github-api-url", github.api_url])
    options = ga.options_from_args(args, None)
    line = options.describe(REPOSITORY)
    assert line.startswith(f"mint a GitHub App installation token for {REPOSITORY} (contents:write, issues:write")
    assert "revoke it at teardown" in line
    credential = ga.obtain(options, REPOSITORY)
    assert credential.minted is not None and credential.repository == REPOSITORY
    assert credential.revoke() is None
    with pytest.raises(ga.GitHubError, match="either a GitHub App"):
        ga.options_from_args(args, KeySource("github", command=("vault",)))
    assert ga.options_from_args(parse([]), None) == ga.GitHubOptions()
    with pytest.raises(ValueError, match="OWNER/NAME"):
        ga.options_from_args(parse(["--github-repository", "nope"]), None)


# --- the pieces agent-run puts in its plan ----------------------------------------------------------

def _pieces(repository, allow=("github.com", "api.github.com", "codeload.github.com", "registry.npmjs.org", "pypi.org")):
    from egress.gateway import render_gateway_config
    from renderer.model import load
    base = render_gateway_config(["anthropic"], agent_subnets=["10.213.7.0/24"])
    return ga.run_pieces(repository=repository, with_token=repository is not None, tripwire=load("autonomous").tripwire,
                         run_id="20250101-120000-abc123", gateway_config_text=base, gateway_address="10.213.7.3",
                         gateway_host="agent-gateway", allow=list(allow))


def test_run_pieces_name_the_token_only_as_a_secret_file():
    from egress.gateway_server import parse_config
    token = "ghs_" + "t" * 36
    credential = ga.GitHubCredential(token, REPOSITORY, "app")
    pieces = _pieces(credential.repository)
    config = parse_config(pieces.gateway_config)
    assert config.github.policy.repository == REPOSITORY and config.github.secret == "github"
    assert [(r.name, r.kind, r.port) for r in config.github.routes] == [("github", "github", 80), ("npm", "registry", 8086)]
    assert credential.secrets() == {"github": token} and token not in repr(credential)
    assert pieces.agent_env["GH_REPO"] == f"github.localhost/{REPOSITORY}"
    git_config = parse_git_config_parameters(pieces.agent_env["GIT_CONFIG_PARAMETERS"])
    assert git_config[0] == ("url.http://github.localhost/.insteadOf", "https://github.com/")
    resolves = [value for key, value in git_config if key == "http.curloptResolve"]
    assert resolves == ["github.localhost:80:10.213.7.3", "api.github.localhost:80:10.213.7.3"]
    assert pieces.agent_env["NPM_CONFIG_REGISTRY"] == "http://agent-gateway:8086/"
    assert pieces.agent_add_hosts == ["github.localhost:10.213.7.3", "api.github.localhost:10.213.7.3"]
    assert pieces.proxy_allow == ["codeload.github.com", "pypi.org"]
    assert pieces.gateway_create_args == ["--sysctl", "net.ipv4.ip_unprivileged_port_start=80"]


def test_run_pieces_without_a_credential_still_wall_github():
    from egress.gateway_server import parse_config
    pieces = _pieces(None)
    config = parse_config(pieces.gateway_config)
    assert config.github.secret is None and config.github.policy.repository is None
    assert "GH_REPO" not in pieces.agent_env and "github.com" not in pieces.proxy_allow


def test_a_domain_entry_covering_a_walled_host_is_refused():
    with pytest.raises(ValueError, match="'.github.com' would let the proxy reach github.com"):
        _pieces(None, allow=(".github.com",))


def test_the_fake_runs_on_its_own_and_writes_its_effects(tmp_path, app_key):
    """What a namespace or container test starts: the fake as a process, effects in a file."""
    (tmp_path / "app.pub").write_bytes(app_key[1])
    key = write_key(tmp_path / "app.pem", app_key[0])
    fake = subprocess.Popen([sys.executable, str(Path(__file__).parent / "fake_github.py"), "--root", str(tmp_path / "gh"),
                             "--app-id", str(APP_ID), "--public-key", str(tmp_path / "app.pub"), "--installation", "5",
                             "--repository", REPOSITORY, "--effects", str(tmp_path / "effects.jsonl")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    try:
        urls = json.loads(fake.stdout.readline())
        config = ga.load_app_config(tmp_path / "absent.toml", app_id=str(APP_ID), key_file=key, api_url=urls["api_url"])
        minted = ga.mint_token(config, REPOSITORY)
        assert call(f"{urls['git_url']}/{REPOSITORY}.git/info/refs?service=git-upload-pack", token=minted.token,
                    basic=True)[0] == 200
        assert call(f"{urls['api_url']}/repos/{REPOSITORY}", "DELETE", minted.token)[0] == 403
    finally:
        fake.stdin.close()
        fake.wait(timeout=20)
    effects = [json.loads(line) for line in (tmp_path / "effects.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in effects] == ["token-issued"] and effects[0]["installation"] == 5
