"""`agent-run --login gemini/google` end to end: the images CI builds, the real Gemini CLI, Google's
fake (tests/logins/fake_google.py) in a container on an --internal outside network, and the user's
own ~/.gemini/oauth_creds.json. The fake's access tokens become due for a refresh seconds after
they are issued, and each refresh ends the tokens before it, so the run crosses refreshes; while the
agent works, the test reads the agent container's processes (environment, command lines) and its
files from the host for any real token."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import images, new_root, outside  # noqa: F401  (fixtures)
from tests.e2e.e2e_world import IMAGES, git, make_world, podman
from tests.logins.fake_google import GoogleAccount

HERE = Path(__file__).resolve().parent
REFRESH_MARGIN = 300        # egress/logins.py refreshes this long before the expiry
RUN_LINE = re.compile(r"agent-run: run (\S+) \(")
PLACEHOLDER = "ya29.agent-sandbox-placeholder"


@pytest.fixture
def google(outside, tmp_path_factory):  # noqa: F811
    """Google's fake on the outside network. The user's access token is already within the gateway's
    refresh margin (refreshed before its first use); the ones Google issues become due 6 s after
    they are issued, so the agent's 8-second step puts another refresh in the middle of the run."""
    address = f"{outside['prefix']}.{outside['next'][0]}"
    outside["next"][0] += 1
    out = tmp_path_factory.mktemp("google")
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


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def look_inside(container: str, tokens: list[str]) -> dict:
    """From the host: every process of the agent container (its environment and command line, read
    in the host's /proc) and the files it can write (through /proc/PID/root), searched for tokens."""
    top = podman("top", container, "hpid", check=False).stdout.split()[1:]
    found, processes = [], 0
    for pid in (p for p in top if p.isdigit()):
        for part in ("environ", "cmdline"):
            try:
                data = Path(f"/proc/{pid}/{part}").read_bytes()
            except OSError:
                continue
            processes += part == "environ"
            found += [f"/proc/{pid}/{part}" for t in tokens if t.encode() in data]
    root = Path(f"/proc/{top[1]}/root") if len(top) > 1 else None
    files = 0
    for folder in ("home/agent", "tmp", "workspace", "run", "var/tmp"):
        for path in (root / folder).rglob("*") if root else ():
            try:
                if path.is_file() and not path.is_symlink() and path.stat().st_size < 8 * 1024 * 1024:
                    data = path.read_bytes()
                    files += 1
                    found += [str(path) for t in tokens if t.encode() in data]
            except OSError:
                continue
    return {"processes": processes, "files": files, "found": found}


def test_a_google_login_run_works_across_refreshes_and_the_container_never_holds_a_token(
        new_root, outside, google, images):  # noqa: F811
    account, url, out = google
    world = make_world(new_root("gemini-google"), "gemini", False, "none", 9)
    home = world.root / "user-home"
    (home / ".gemini").mkdir(parents=True)
    creds = home / ".gemini" / "oauth_creds.json"
    creds.write_text(json.dumps({"access_token": account.access_token, "refresh_token": account.refresh_token,
                                 "scope": "https://www.googleapis.com/auth/cloud-platform", "token_type": "Bearer",
                                 "expiry_date": int(account.access_expires_at * 1000)}))
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
            inside = look_inside(f"agent-sandbox-{looks[0]}-agent", tokens)
            inside["control"] = look_inside(f"agent-sandbox-{looks[0]}-agent", [PLACEHOLDER])["found"]
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
    # What the CLI sent the model (its tools' output included) holds no token.
    assert not any(t in json.dumps(r["body"]) for r in calls for t in tokens)
    # Looked at from the host mid-run: processes, environment, files of the container: placeholders only.
    assert inside is not None, "the run ended before the container could be looked into"
    assert inside["processes"] > 0 and inside["files"] > 0 and inside["found"] == [], inside
    assert any(p.endswith("/environ") for p in inside["control"]), inside   # the look sees what is there
    # The agent's work came back; the refreshed login went back to the user's file.
    run_id = looks[0]
    assert "Work across a token refresh" in git(world.repo, "log", "--format=%s", f"refs/agent/{run_id}/heads/agent/login"
                                                ).stdout
    written = json.loads(creds.read_text())
    assert written["access_token"] == issued[-1]["token"] and written["refresh_token"] == account.refresh_token
    run_dir = Path(re.search(r"audit (/\S+)/audit\.json", text).group(1))
    log = jsonl(run_dir / "gateway-log" / "access.log")
    audit = json.loads((run_dir / "audit.json").read_text())
    subprocess.run([shutil.which("agent-run"), "discard", run_id], cwd=world.repo, capture_output=True, timeout=120)
    refreshes = [e for e in log if e.get("event") == "refresh"]
    assert [e["outcome"] for e in refreshes] == ["refreshed"] * len(issued)
    assert refreshes[0]["why"] == "expiry" and not any(t in json.dumps(log) for t in tokens)
    assert len(audit["model_api"]["login_refreshes"]) >= 1, audit["model_api"]
    assert not any(t in json.dumps(audit) for t in tokens)
