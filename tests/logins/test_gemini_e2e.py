"""`agent-run --login gemini/google` and `--login gemini/vertex` end to end: the images CI builds, the
real Gemini CLI, Google's fake (tests/logins/fake_google.py) in a container on an --internal outside
network, and the user's own ~/.gemini/oauth_creds.json or service-account key. The fake's access
tokens become due for a refresh seconds after they are issued, and each refresh ends the tokens
before it, so the run crosses refreshes; while the
agent works, the test searches the agent container from the host (tests/logins/container_scan.py:
every process's environment, command line and memory, and its files) for any real token."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from egress.logins import REFRESH_MARGIN_S as REFRESH_MARGIN
from tests.e2e.e2e_world import IMAGES, USER_UID, git, give_to_user, make_world, next_address, outside_network, podman
from tests.logins.container_scan import scan
from tests.logins.fake_google import GoogleAccount

HERE = Path(__file__).resolve().parent
RUN_LINE = re.compile(r"agent-run: run (\S+) \(")
PLACEHOLDER = "ya29.agent-sandbox-placeholder"


@pytest.fixture(scope="module", autouse=True)
def images():
    missing = [ref for ref in IMAGES.values() if podman("image", "exists", ref, check=False).returncode != 0]
    assert not missing, f"the login proofs need the images CI builds: {missing} missing; run .ci/install-podman-image.sh"


@pytest.fixture(scope="module")
def outside():
    with outside_network() as network:
        yield network


@pytest.fixture
def root():
    folder = Path(tempfile.mkdtemp(prefix="agent-run-logins-gemini-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def start_google(outside: dict, root: Path, account: GoogleAccount) -> tuple[str, Path, str]:
    """Google's fake on the outside network: (its URL, its records folder, its container)."""
    address = next_address(outside)
    out = root / "google"
    out.mkdir(mode=0o777)
    os.chmod(out, 0o777)
    if account.service_account_email:
        account.token_audience = f"http://{address}:8080/token"     # the key's token_uri
    (out / "config.json").write_text(json.dumps({"scenario": "across-refresh", "account": account.__dict__}))
    name = f"logins-google-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    podman("run", "-d", "--name", name, "--network", f"{outside['name']}:ip={address}", "-v", f"{out}:{out}",
           "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", "--rootfs", "/:O",
           # The project's own Python (the fake verifies JWTs with PyJWT), from the host's root.
           sys.executable, str(HERE / "fake_google.py"), str(out / "config.json"), "8080", str(out))
    deadline = time.monotonic() + 30
    while not (out / "ready").exists():
        assert time.monotonic() < deadline, podman("logs", name, check=False).stderr
        time.sleep(0.1)
    return f"http://{address}:8080", out, name


def replay(outside: dict, url: str, token: str) -> int:
    """A Code Assist call with `token` straight to the fake (bypassing the gateway), from its network."""
    code = ("import urllib.request as u,urllib.error as e\n"
            f"r=u.Request({url + '/v1internal:loadCodeAssist'!r},data=b'{{}}',method='POST',"
            f"headers={{'authorization':'Bearer {token}','content-type':'application/json'}})\n"
            "try: print(u.urlopen(r,timeout=10).status)\nexcept e.HTTPError as x: print(x.code)")
    done = podman("run", "--rm", "--network", outside["name"], "--ulimit", "nofile=4096:4096",
                  "--ulimit", "nproc=4096:4096", "--rootfs", "/:O", "/usr/bin/python3", "-c", code)
    return int(done.stdout.strip())


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run_with_login(world, outside: dict, url: str, out: Path, kind: str, env: dict, secrets: list[str]) -> dict:
    """agent-run --login KIND gemini ..., as the README has it (plus the hidden stand-in options);
    mid-run, once the agent's first turn reached Google, the container is searched from the host
    for `secrets` and for the placeholder (the positive control)."""
    argv = [shutil.which("agent-run"), "--login", kind, "--timeout", "180",
            "--image", IMAGES["agent"], "--proxy-image", IMAGES["proxy"], "--gateway-image", IMAGES["gateway"],
            "--outside-network", outside["name"], "--gateway-upstream", f"gemini={url}",
            "--gateway-token-url", f"gemini={url}/token", "gemini", "-m", "gemini-2.5-flash", "-p", "Do the job."]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI", "GOOGLE", "SUDO_"))}
    process = subprocess.Popen(argv, cwd=world.repo, env={**clean, **env}, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr, run_ids = [], []

    def watch():
        for line in process.stderr:
            stderr.append(line)
            found = RUN_LINE.search(line)
            if found and not run_ids:
                run_ids.append(found.group(1))
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    inside = None
    deadline = time.monotonic() + 150
    while process.poll() is None and time.monotonic() < deadline:
        if run_ids and any(":streamGenerateContent" in r["path"] for r in jsonl(out / "requests.jsonl")):
            time.sleep(3)   # the agent's first step: an 8-second sleep
            issued = [t["token"] for t in jsonl(out / "tokens.jsonl")]
            inside = scan(f"agent-sandbox-{run_ids[0]}-agent", [PLACEHOLDER, *secrets, *issued])
            break
        time.sleep(0.5)
    process.wait(timeout=240)
    watcher.join(timeout=10)
    text = "".join(stderr)
    assert process.returncode == 0, text[-3000:]
    run_dir = Path(re.search(r"audit (/\S+)/audit\.json", text).group(1))
    result = {"stderr": text, "run_id": run_ids[0], "inside": inside, "requests": jsonl(out / "requests.jsonl"),
              "issued": jsonl(out / "tokens.jsonl"), "log": jsonl(run_dir / "gateway-log" / "access.log"),
              "audit": json.loads((run_dir / "audit.json").read_text()),
              "commits": git(world.repo, "log", "--format=%s", f"refs/agent/{run_ids[0]}/heads/agent/login").stdout}
    subprocess.run([shutil.which("agent-run"), "discard", run_ids[0]], cwd=world.repo, capture_output=True,
                   timeout=120)
    return result


def assert_the_common_proof(result: dict, secrets: list[str], grant: str) -> list[str]:
    """Refreshes crossed; every call with a live token Google issued, none with the placeholder; the
    container, searched mid-run from the host, held no token; the work came back; no token logged."""
    issued = result["issued"]
    tokens = [*secrets, *(t["token"] for t in issued)]
    assert len(issued) >= 2 and {t["grant"] for t in issued} == {grant}
    calls = [r for r in result["requests"] if r["path"] != "/token"]
    used = [r["headers"].get("authorization", "") for r in calls]
    assert all(u.startswith("Bearer ya29.fake-") for u in used) and len(set(used)) >= 2, used
    assert not any("UNAUTHENTICATED" in json.dumps(r) for r in result["requests"])
    assert not any(t in json.dumps(r["body"]) for r in calls for t in tokens)   # nor in what the model was sent
    inside = result["inside"]
    assert inside is not None, "the run ended before the container could be looked into"
    assert inside.processes > 0 and inside.files > 0 and inside.memory_bytes > 0
    assert [place for index, place in inside.where if index > 0] == [], inside.where
    places = [place for index, place in inside.where if index == 0]
    assert any(p.startswith("memory of") for p in places), places     # the positive control
    assert "Work across a token refresh" in result["commits"]
    refreshes = [e for e in result["log"] if e.get("event") == "refresh"]
    assert [e["outcome"] for e in refreshes] == ["refreshed"] * len(issued) and refreshes[0]["why"] == "expiry"
    assert len(result["audit"]["model_api"]["login_refreshes"]) >= 1, result["audit"]["model_api"]
    for record in (json.dumps(result["log"]), json.dumps(result["audit"]), result["stderr"]):
        assert not any(t in record for t in tokens)
    return [r["path"].split("?")[0] for r in calls]


def test_a_google_login_run_works_across_refreshes_and_the_container_never_holds_a_token(outside, root):
    # The user's access token is already within the gateway's refresh margin (refreshed before its
    # first use); the ones Google issues become due 6 s after they are issued, so the agent's
    # 8-second step puts another refresh in the middle of the run.
    account = GoogleAccount(access_expires_at=time.time() + REFRESH_MARGIN - 60, lifetime=REFRESH_MARGIN + 6,
                            revoke_on_refresh=True)
    url, out, fake = start_google(outside, root, account)
    try:
        world = make_world(root, "gemini", False, "none", 9)
        home = world.root / "user-home"
        (home / ".gemini").mkdir(parents=True)
        creds = home / ".gemini" / "oauth_creds.json"
        creds.write_text(json.dumps({"access_token": account.access_token, "refresh_token": account.refresh_token,
                                     "scope": "https://www.googleapis.com/auth/cloud-platform",
                                     "token_type": "Bearer", "expiry_date": int(account.access_expires_at * 1000)}))
        give_to_user(home)
        os.chmod(creds, 0o600)
        secrets = [account.access_token, account.refresh_token]
        result = run_with_login(world, outside, url, out, "gemini/google", {"HOME": str(home)}, secrets)
        paths = assert_the_common_proof(result, secrets, "refresh_token")
        assert paths[0] == "/v1internal:loadCodeAssist" and paths.count("/v1internal:streamGenerateContent") == 3
        # The placeholder is in the CLI's environment; replayed to Google directly, it is refused.
        assert any(p.endswith("/environ") for i, p in result["inside"].where if i == 0)
        assert replay(outside, url, PLACEHOLDER) == 401
        assert jsonl(out / "requests.jsonl")[-1]["headers"]["authorization"] == f"Bearer {PLACEHOLDER}"
        # The refreshed login went back to the user's file, still the user's.
        written = json.loads(creds.read_text())
        assert written["access_token"] == result["issued"][-1]["token"]
        assert written["refresh_token"] == account.refresh_token
        assert creds.stat().st_uid == USER_UID and creds.stat().st_mode & 0o777 == 0o600
    finally:
        podman("rm", "-f", "-t", "0", fake, check=False)


def test_a_vertex_run_mints_tokens_from_the_key_and_the_container_holds_neither_key_nor_token(outside, root):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    account = GoogleAccount(lifetime=REFRESH_MARGIN + 6, revoke_on_refresh=True,
                            service_account_email="runner@my-project-1.iam.gserviceaccount.com",
                            service_account_public_key=public)
    url, out, fake = start_google(outside, root, account)
    try:
        world = make_world(root, "gemini", False, "none", 9)
        home = world.root / "user-home"
        home.mkdir()
        key_file = home / "runner-key.json"
        key_file.write_text(json.dumps({"type": "service_account", "project_id": "my-project-1",
                                        "private_key_id": "k-1", "private_key": private,
                                        "client_email": account.service_account_email,
                                        "token_uri": account.token_audience}))
        give_to_user(home)
        os.chmod(key_file, 0o600)
        key_body = "".join(private.splitlines()[1:-1])
        secrets = [key_body[:64], key_body[-64:]]
        result = run_with_login(world, outside, url, out, "gemini/vertex", {
            "HOME": str(home), "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
            "GOOGLE_CLOUD_PROJECT": "my-project-1", "GOOGLE_CLOUD_LOCATION": "us-central1"}, secrets)
        paths = assert_the_common_proof(result, secrets, "jwt-bearer")
        model = "/v1beta1/projects/my-project-1/locations/us-central1/publishers/google/models/gemini-2.5-flash"
        assert paths == [f"{model}:streamGenerateContent"] * 3
        answered = [e["rule"] for e in result["log"] if e.get("decision") == "answer"]
        assert answered[:2] == ["gemini:metadata_probe", "gemini:metadata_token"]
    finally:
        podman("rm", "-f", "-t", "0", fake, check=False)
