"""`agent-run --login gemini/google` end to end: the images CI builds, the real Gemini CLI, Google's
fake (tests/logins/fake_google.py) in a container on an --internal outside network, and the user's
own ~/.gemini/oauth_creds.json. The fake's access tokens become due for a refresh seconds after
they are issued, and each refresh ends the tokens before it, so the run crosses refreshes; while the
agent works, the test searches the agent container from the host (tests/logins/container_scan.py:
every process's environment, command line and memory, and its files) for any real token."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

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


@pytest.fixture
def google(outside, root):
    """Google's fake on the outside network. The user's access token is already within the gateway's
    refresh margin (refreshed before its first use); the ones Google issues become due 6 s after
    they are issued, so the agent's 8-second step puts another refresh in the middle of the run."""
    address = next_address(outside)
    out = root / "google"
    out.mkdir(mode=0o777)
    os.chmod(out, 0o777)
    account = GoogleAccount(access_expires_at=time.time() + REFRESH_MARGIN - 60, lifetime=REFRESH_MARGIN + 6,
                            revoke_on_refresh=True)
    (out / "config.json").write_text(json.dumps({"scenario": "across-refresh", "account": account.__dict__}))
    name = f"logins-google-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    podman("run", "-d", "--name", name, "--network", f"{outside['name']}:ip={address}", "-v", f"{out}:{out}",
           "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", "--rootfs", "/:O",
           "/usr/bin/python3", str(HERE / "fake_google.py"), str(out / "config.json"), "8080", str(out))
    try:
        deadline = time.monotonic() + 30
        while not (out / "ready").exists():
            assert time.monotonic() < deadline, podman("logs", name, check=False).stderr
            time.sleep(0.1)
        yield account, f"http://{address}:8080", out
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


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


def test_a_google_login_run_works_across_refreshes_and_the_container_never_holds_a_token(outside, root, google):
    account, url, out = google
    world = make_world(root, "gemini", False, "none", 9)
    home = world.root / "user-home"
    (home / ".gemini").mkdir(parents=True)
    creds = home / ".gemini" / "oauth_creds.json"
    creds.write_text(json.dumps({"access_token": account.access_token, "refresh_token": account.refresh_token,
                                 "scope": "https://www.googleapis.com/auth/cloud-platform", "token_type": "Bearer",
                                 "expiry_date": int(account.access_expires_at * 1000)}))
    give_to_user(home)
    os.chmod(creds, 0o600)
    argv = [shutil.which("agent-run"), "--login", "gemini/google", "--timeout", "180",
            "--image", IMAGES["agent"], "--proxy-image", IMAGES["proxy"], "--gateway-image", IMAGES["gateway"],
            "--outside-network", outside["name"], "--gateway-upstream", f"gemini={url}",
            "--gateway-token-url", f"gemini={url}/token", "gemini", "-m", "gemini-2.5-flash", "-p", "Do the job."]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI", "GOOGLE", "SUDO_"))}
    env["HOME"] = str(home)
    process = subprocess.Popen(argv, cwd=world.repo, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    stderr, looks = [], []

    def watch():
        for line in process.stderr:
            stderr.append(line)
            found = RUN_LINE.search(line)
            if found and not looks:
                looks.append(found.group(1))
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # While the agent sleeps in its first step, look into the container from the host.
    inside = None
    deadline = time.monotonic() + 150
    while process.poll() is None and time.monotonic() < deadline:
        model_turns = [r for r in jsonl(out / "requests.jsonl") if ":streamGenerateContent" in r["path"]]
        if looks and model_turns:
            time.sleep(3)
            tokens = [account.access_token, account.refresh_token, *(t["token"] for t in jsonl(out / "tokens.jsonl"))]
            inside = scan(f"agent-sandbox-{looks[0]}-agent", [PLACEHOLDER, *tokens])
            break
        time.sleep(0.5)
    process.wait(timeout=240)
    watcher.join(timeout=10)
    text = "".join(stderr)
    assert process.returncode == 0, text[-3000:]
    requests, issued = jsonl(out / "requests.jsonl"), jsonl(out / "tokens.jsonl")
    tokens = [account.access_token, account.refresh_token, *(t["token"] for t in issued)]
    # The run crossed refreshes, made with the user's refresh token and the CLI's client; no request
    # reached Google with a token that had ended (each refresh ended the ones before) or a placeholder.
    assert len(issued) >= 2 and all(t["grant"] == "refresh_token" for t in issued)
    calls = [r for r in requests if r["path"] != "/token"]
    used = [r["headers"].get("authorization", "") for r in calls]
    assert len({u for u in used if u.startswith("Bearer ya29.fake-")}) >= 2, used
    assert not any(PLACEHOLDER in u for u in used) and all(u.startswith("Bearer ya29.fake-") for u in used)
    assert not any("UNAUTHENTICATED" in json.dumps(r) for r in requests)
    paths = [r["path"].split("?")[0] for r in calls]
    assert paths[0] == "/v1internal:loadCodeAssist" and paths.count("/v1internal:streamGenerateContent") == 3, paths
    # The placeholder, replayed to Google directly, is refused.
    assert replay(outside, url, PLACEHOLDER) == 401
    assert jsonl(out / "requests.jsonl")[-1]["headers"]["authorization"] == f"Bearer {PLACEHOLDER}"
    # What the CLI sent the model (its tools' output included) holds no token.
    assert not any(t in json.dumps(r["body"]) for r in calls for t in tokens)
    # Looked at from the host mid-run: processes, environment, files of the container: placeholders only.
    assert inside is not None, "the run ended before the container could be looked into"
    assert inside.processes > 0 and inside.files > 0 and inside.memory_bytes > 0
    assert [place for index, place in inside.where if index > 0] == [], inside.where
    # The positive control: the scan finds the placeholder, in the environment and in memory.
    places = [place for index, place in inside.where if index == 0]
    assert any(p.endswith("/environ") for p in places) and any(p.startswith("memory of") for p in places), places
    # The agent's work came back; the refreshed login went back to the user's file.
    run_id = looks[0]
    assert "Work across a token refresh" in git(world.repo, "log", "--format=%s", f"refs/agent/{run_id}/heads/agent/login"
                                                ).stdout
    written = json.loads(creds.read_text())
    assert written["access_token"] == issued[-1]["token"] and written["refresh_token"] == account.refresh_token
    assert creds.stat().st_uid == USER_UID and creds.stat().st_mode & 0o777 == 0o600
    run_dir = Path(re.search(r"audit (/\S+)/audit\.json", text).group(1))
    log = jsonl(run_dir / "gateway-log" / "access.log")
    audit = json.loads((run_dir / "audit.json").read_text())
    subprocess.run([shutil.which("agent-run"), "discard", run_id], cwd=world.repo, capture_output=True, timeout=120)
    refreshes = [e for e in log if e.get("event") == "refresh"]
    assert [e["outcome"] for e in refreshes] == ["refreshed"] * len(issued)
    assert refreshes[0]["why"] == "expiry" and not any(t in json.dumps(log) for t in tokens)
    assert len(audit["model_api"]["login_refreshes"]) >= 1, audit["model_api"]
    assert not any(t in json.dumps(audit) for t in tokens)
