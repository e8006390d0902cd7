"""The proof of Claude Code's logins: the real pinned Claude Code through `agent-run` (the stand-in
images, podman), with each login kind, against the Anthropic OAuth fake, which checks the real
token, issues refreshed ones and expires them within seconds. The run works across a refresh;
from the host, the running container's environment, command lines, memory and files hold neither
the real access tokens nor the refresh tokens (the placeholder, the positive control, is found);
the placeholder replayed to the fake directly is refused; the rotated login is written back to
the user's file."""
from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))
from e2e_world import IMAGES, git, give_to_user, leftovers, make_world, next_address, outside_network, podman  # noqa: E402
from tests.logins.container_scan import scan  # noqa: E402

GATEWAY_IMAGE = os.environ.get("AGENT_GATEWAY_IMAGE", IMAGES["gateway"])
PLACEHOLDER = "sk-ant-oat01-agent-sandbox-placeholder"
LIFETIME = 5     # seconds an access token really lives at the fake (the scenario's turn takes 8)


@pytest.fixture(scope="module", autouse=True)
def images():
    missing = [ref for ref in (IMAGES["agent"], IMAGES["proxy"], GATEWAY_IMAGE)
               if podman("image", "exists", ref, check=False).returncode != 0]
    assert not missing, f"the login proofs need the images CI builds: {missing} missing; run .ci/install-podman-image.sh"


@pytest.fixture(scope="module")
def outside():
    with outside_network() as network:
        yield network


@pytest.fixture
def root(tmp_path_factory):
    import shutil
    import tempfile
    folder = Path(tempfile.mkdtemp(prefix="agent-run-logins-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


class Fake:
    def __init__(self, outside: dict, root: Path, state: dict, scenario: str):
        self.out = root / "fake"
        self.out.mkdir(mode=0o777)
        os.chmod(self.out, 0o777)
        (self.out / "state.json").write_text(json.dumps(state))
        address = next_address(outside)
        self.name = f"logins-fake-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.url = f"http://{address}:8080"
        self.outside = outside
        podman("run", "-d", "--name", self.name, "--network", f"{outside['name']}:ip={address}",
               "-v", f"{self.out}:{self.out}", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
               "--rootfs", "/:O", "/usr/bin/python3", str(HERE / "fake_anthropic_oauth.py"),
               str(self.out / "state.json"), scenario, "8080", str(self.out))
        deadline = time.monotonic() + 30
        while not (self.out / "ready").exists():
            assert time.monotonic() < deadline, podman("logs", self.name, check=False).stderr
            time.sleep(0.1)

    def events(self) -> list[dict]:
        path = self.out / "events.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def issued(self) -> dict:
        return json.loads((self.out / "issued.json").read_text())

    def replay(self, token: str) -> int:
        """A request with `token` straight to the fake (bypassing the gateway), from its network."""
        code = ("import json,urllib.request as u,urllib.error as e\n"
                f"r=u.Request({self.url + '/v1/messages?beta=true'!r},data=b'{{}}',method='POST',headers="
                f"{{'authorization':'Bearer {token}','anthropic-beta':'oauth-2025-04-20'}})\n"
                "try: print(u.urlopen(r,timeout=10).status)\nexcept e.HTTPError as x: print(x.code)")
        done = podman("run", "--rm", "--network", self.outside["name"], "--ulimit", "nofile=4096:4096",
                      "--ulimit", "nproc=4096:4096", "--rootfs", "/:O", "/usr/bin/python3", "-c", code)
        return int(done.stdout.strip())

    def stop(self) -> None:
        podman("rm", "-f", "-t", "0", self.name, check=False)


def user_home(root: Path) -> Path:
    home = root / "user-home"
    (home / ".claude").mkdir(parents=True)
    return home


def run_agent_run(world, home: Path, fake: Fake, kind: str, env: dict, while_running) -> tuple[int, str]:
    """agent-run claude --login KIND as the README has it (plus the hidden stand-in options), with
    the user's HOME; while_running(container name) is called during each of the scenario's two
    turns: once the fake accepted the first model request, and again once it accepted the second
    (after the refresh, for a login)."""
    argv = [*agent_run(), "--login", kind, "--image", IMAGES["agent"], "--proxy-image", IMAGES["proxy"],
            "--gateway-image", GATEWAY_IMAGE, "--outside-network", fake.outside["name"],
            "--gateway-upstream", f"anthropic={fake.url}",
            *(["--gateway-token-url", f"anthropic={fake.url}/v1/oauth/token"] if kind == "claude/login" else []),
            "--timeout", "240", "claude", "-p", "Do the job."]
    log = world.root / f"agent-run-{kind.replace('/', '-')}.log"
    clean = {k: v for k, v in os.environ.items() if k not in ("SUDO_USER", "CLAUDE_CODE_OAUTH_TOKEN")}
    with open(log, "w") as stderr:
        process = subprocess.Popen(argv, cwd=world.repo, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=stderr, env={**clean, "HOME": str(home), **env})
    try:
        deadline = time.monotonic() + 200
        for accepted in (1, 2):
            while sum(e["what"] == "api" and e["token_state"] == "ok" for e in fake.events()) < accepted:
                assert process.poll() is None, f"agent-run ended early ({process.returncode}):\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
            run_id = re.search(r"run (\S+) \(", log.read_text()).group(1)
            while_running(f"agent-sandbox-{run_id}-agent")
        code = process.wait(timeout=300)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)
    return code, log.read_text()


def agent_run() -> list[str]:
    import shutil
    command = shutil.which("agent-run")
    assert command, "agent-run is not on PATH; install the project (pip install -e .)"
    return [command]


def assert_nothing_inside(container: str, fake: Fake, tokens: dict) -> dict:
    """From the host, while the agent runs: no real token anywhere in the container."""
    issued = fake.issued()
    secret = sorted({*issued["access"], *issued["refresh"], *issued["oauth"], *tokens.values()})
    found = scan(container, [PLACEHOLDER, *secret])
    leaked = [(secret[index - 1][-8:], place) for index, place in found.where if index > 0]
    assert leaked == [], f"real tokens found in the container: {leaked}"
    places = {place for index, place in found.where if index == 0}
    assert any(p.endswith("/environ") for p in places), f"the placeholder is not in any environment: {places}"
    assert any(p.startswith("memory of") for p in places), "the memory scan did not find the placeholder"
    assert found.processes >= 2 and found.files > 20 and found.memory_bytes > 10 << 20, found
    return {"processes": found.processes, "files": found.files, "memory_mb": found.memory_bytes >> 20}


def finish(world, code: int, log: str, fake: Fake) -> dict:
    assert code == 0, log[-4000:]
    run_dir = Path(re.search(r"audit (/\S+)/audit\.json", log).group(1))
    run_id = run_dir.name
    assert leftovers(run_id) == []
    branch = git(world.repo, "for-each-ref", "--format=%(refname) %(subject)", f"refs/agent/{run_id}/").stdout
    assert "Work across a token refresh" in branch, branch
    events = fake.events()
    assert fake.replay(PLACEHOLDER) == 401
    assert fake.events()[-1]["token_state"] == "unknown"
    gateway_log = (run_dir / "gateway-log" / "access.log").read_text()
    issued = fake.issued()
    assert not any(t in gateway_log for t in (*issued["access"], *issued["refresh"], *issued["oauth"]))
    assert not any(t in log for t in (*issued["access"], *issued["refresh"], *issued["oauth"]))
    audit = json.loads((run_dir / "audit.json").read_text())
    # Claude Code's own calls with the token (flags, bootstrap, telemetry, a refresh) would go to
    # Anthropic directly, not to the base URL; with the image's managed settings
    # (CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC) and an environment token it makes none.
    network = audit["network"]
    tried = {r["host"] for r in (*network["reached"], *network["refused"], *network["allowed_but_failed"])}
    assert not tried & {"api.anthropic.com", "platform.claude.com", "console.anthropic.com"}, network
    return {"audit": audit, "gateway_log": gateway_log, "events": events}


def test_claude_login_works_across_refreshes_and_no_token_is_inside(outside, root):
    world = make_world(root, "claude", False, "", 9)
    home = user_home(root)
    tokens = {"access": "sk-ant-oat01-REAL-" + secrets.token_hex(16), "refresh": "sk-ant-ort01-REAL-" + secrets.token_hex(16)}
    credentials = home / ".claude" / ".credentials.json"
    credentials.write_text(json.dumps({"claudeAiOauth": {
        "accessToken": tokens["access"], "refreshToken": tokens["refresh"],
        "expiresAt": int((time.time() - 120) * 1000),     # expired: the gateway refreshes before the first use
        "scopes": ["user:inference", "user:profile", "user:sessions:claude_code"], "subscriptionType": "max"}}))
    give_to_user(home)
    os.chmod(credentials, 0o600)
    state = {"access_tokens": {tokens["access"]: time.time() - 120}, "refresh_tokens": [tokens["refresh"]],
             "lifetime": LIFETIME, "claimed_lifetime": 3600}
    fake = Fake(outside, root, state, "across-refresh")
    scanned = []
    try:
        code, log = run_agent_run(world, home, fake, "claude/login", {},
                                  lambda name: scanned.append(assert_nothing_inside(name, fake, tokens)))
        result = finish(world, code, log, fake)
        events = result["events"]
    finally:
        fake.stop()
    api = [e["token_state"] for e in events if e["what"] == "api"]
    refreshes = [e for e in events if e["what"] == "refresh"]
    # Refreshed before the first request (the file's token had expired), then again when the fake
    # refused a token the gateway still believed fresh (it sent the request once more).
    assert len(refreshes) >= 2 and all(e["ok"] for e in refreshes), refreshes
    assert api.count("ok") >= 2 and "expired" in api and api[-1] == "ok", api
    assert "unknown" not in api, "the placeholder reached the vendor"
    audit = result["audit"]["model_api"]
    assert {r["outcome"] for r in audit["login_refreshes"]} == {"refreshed"}
    why = [json.loads(line).get("why") for line in result["gateway_log"].splitlines() if '"event":"refresh"' in line]
    assert why[0] == "expiry" and "rejected" in why
    # The vendor rotated the refresh token: the user's file holds the last one, still the user's.
    saved = json.loads(credentials.read_text())["claudeAiOauth"]
    issued = fake.issued()
    assert (saved["accessToken"], saved["refreshToken"]) == (issued["access"][-1], issued["refresh"][-1])
    assert saved["subscriptionType"] == "max" and credentials.stat().st_uid == 4242
    assert "written back to" in log
    assert len(scanned) == 2 and len(refreshes) >= 2
    print(f"scanned: {scanned}")


def test_claude_oauth_token_runs_and_no_token_is_inside(outside, root):
    world = make_world(root, "claude", False, "", 9)
    home = user_home(root)
    give_to_user(home)
    tokens = {"oauth": "sk-ant-oat01-LONG-" + secrets.token_hex(16)}
    fake = Fake(outside, root, {"oauth_tokens": [tokens["oauth"]]}, "across-refresh")
    scanned = []
    try:
        code, log = run_agent_run(world, home, fake, "claude/oauth-token", {"CLAUDE_CODE_OAUTH_TOKEN": tokens["oauth"]},
                                  lambda name: scanned.append(assert_nothing_inside(name, fake, tokens)))
        result = finish(world, code, log, fake)
        events = result["events"]
    finally:
        fake.stop()
    assert {e["token_state"] for e in events if e["what"] == "api"} == {"ok"}
    assert [e for e in events if e["what"] == "refresh"] == []
    assert result["audit"]["model_api"]["login_refreshes"] == []
    print(f"scanned: {scanned}")
