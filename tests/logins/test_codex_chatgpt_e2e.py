"""The proof for Codex's ChatGPT login: the real Codex (0.169.0) in the stand-in image, run by
`agent-run --login codex/chatgpt` as a user would (the user's ~/.codex/auth.json, written by the
fake's "sign-in"), against the fake ChatGPT backend and sign-in server (tests/logins/fake_chatgpt.py)
on an internal network, with tokens that live just over the gateway's refresh margin.

What the host sees: the run works across refreshes of the real token; while Codex runs, nothing of
any token the vendor issued (access, id or refresh) is in the agent container's configuration, in
any of its processes' environments, command lines or memory, or in any file it can see; the placeholder Codex holds, sent to the vendor directly, is refused; the gateway
answered the account calls itself; the refreshed login went back into the user's auth.json; and
`agent-run login-check codex` reports the login.
"""
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

import jwt
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE.parent / "e2e"))
sys.path.insert(0, str(HERE))

import container_scan  # noqa: E402
from e2e_world import IMAGES, RUN_ID, make_world, next_address, outside_network, podman  # noqa: E402

from egress import login_codex as gateway  # noqa: E402
from egress.logins import REFRESH_MARGIN_S  # noqa: E402

LIFETIME = REFRESH_MARGIN_S + 5       # each token is due for a refresh 5 s after it is issued
STARTED = re.compile(r"agent-run: run (\S+) ")


class ChatGPT:
    """The fake in its container: its records are files in `out`."""

    def __init__(self, url: str, out: Path, container: str):
        self.url, self.out, self.container = url, out, container

    def _lines(self, name: str) -> list[dict]:
        path = self.out / name
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def requests(self) -> list[dict]:
        return self._lines("requests.jsonl")

    def events(self) -> list[dict]:
        return self._lines("events.jsonl")

    def issued_tokens(self) -> set[str]:
        return {value for issued in self._lines("issued.jsonl") for value in issued.values()}

    def turns(self) -> list[dict]:
        return [r for r in self.requests() if r["method"] == "POST" and r["path"] == "/backend-api/codex/responses"]

    def call(self, path: str, headers: dict) -> int:
        """A request to the vendor from its own network namespace: what an agent that bypassed the
        gateway would send (the agent itself cannot reach it at all)."""
        script = ("import sys, urllib.request, urllib.error, json\n"
                  "h = json.loads(sys.argv[2])\n"
                  "try:\n    print(urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers=h), timeout=10).status)\n"
                  "except urllib.error.HTTPError as e:\n    print(e.code)\n")
        done = podman("exec", self.container, "/usr/bin/python3", "-c", script, f"http://127.0.0.1:8080{path}",
                      json.dumps(headers))
        return int(done.stdout.strip())


def start_chatgpt(outside: dict, out: Path) -> ChatGPT:
    address = next_address(outside)
    os.chmod(out, 0o777)
    name = f"e2e-chatgpt-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    podman("run", "-d", "--name", name, "--network", f"{outside['name']}:ip={address}", "-v", f"{out}:{out}",
           "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
           "--rootfs", "/:O",  # in the image's place: the host's own python3 and this checkout
           "/usr/bin/python3", str(HERE / "fake_chatgpt.py"), "across-refresh", "8080", str(out), str(LIFETIME))
    deadline = time.monotonic() + 30
    while not (out / "ready").exists():
        assert time.monotonic() < deadline, podman("logs", name, check=False).stderr
        time.sleep(0.1)
    return ChatGPT(f"http://{address}:8080", out, name)


def look_inside(name: str, vendor: ChatGPT) -> dict:
    """From the host, while Codex runs: every token the vendor has issued so far, looked for in the
    container's configuration, its processes' environments, command lines and memory, and its files
    (tests/logins/container_scan.py); the placeholder access token is the positive control."""
    tokens = sorted(vendor.issued_tokens())
    placeholder = gateway.placeholder_tokens("plus")["access_token"]
    found = container_scan.scan(name, [*tokens, placeholder])
    pid = container_scan.container_pid(name)
    auth = Path(f"/proc/{pid}/root/home/agent/.codex/auth.json").read_text()
    return {"tokens": len(tokens), "found": found, "auth": auth}


class Lines:
    """A stream of a process, read as it comes (agent-run names its run on standard error first)."""

    def __init__(self, stream):
        self.text = ""
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.text += line


def login_check(outside: dict, home: Path, vendor: ChatGPT) -> subprocess.CompletedProcess:
    """`agent-run login-check codex` as the user runs it, on a machine that reaches the vendor: this
    host's own files (an overlay of /) in a container on the outside network, the user's home bound."""
    return podman("run", "--rm", "--network", f"{outside['name']}:ip={next_address(outside)}",
                  "-v", f"{home}:{home}", "-e", f"HOME={home}", "-e", f"PYTHONPATH={ROOT}", "-e", "NO_COLOR=1",
                  "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", "--rootfs", "/:O", shutil.which("agent-run"), "login-check", "codex", "--gateway-upstream", vendor.url,
                  "--gateway-token-url", f"{vendor.url}/oauth/token", check=False)


@pytest.fixture(scope="module")
def run():
    missing = [ref for ref in IMAGES.values() if podman("image", "exists", ref, check=False).returncode != 0]
    assert not missing, f"the login suite needs the images CI builds: {missing}; run .ci/install-podman-image.sh"
    root = Path(tempfile.mkdtemp(prefix="agent-run-chatgpt-"))
    os.chmod(root, 0o755)
    try:
        with outside_network() as outside:
            (root / "vendor").mkdir()
            vendor = start_chatgpt(outside, root / "vendor")
            try:
                world = make_world(root, "codex", False, "none", 9)
                home = root / "home"
                (home / ".codex").mkdir(parents=True)
                auth = home / ".codex" / "auth.json"
                shutil.copy(vendor.out / "auth.json", auth)
                os.chmod(auth, 0o600)
                first_login = json.loads(auth.read_text())
                # The run's first turn must meet a token due for a refresh, however fast the start is.
                due = jwt.decode(first_login["tokens"]["access_token"], options={"verify_signature": False})["exp"]
                time.sleep(max(0.0, due - REFRESH_MARGIN_S - time.time()) + 1)
                stand_ins = ["--image", IMAGES["agent"], "--proxy-image", IMAGES["proxy"], "--gateway-image",
                             IMAGES["gateway"], "--outside-network", outside["name"],
                             "--gateway-upstream", f"openai={vendor.url}",
                             "--gateway-token-url", f"openai={vendor.url}/oauth/token"]
                env = {k: v for k, v in os.environ.items() if k not in ("SUDO_USER", "CODEX_HOME")}
                env["HOME"] = str(home)
                process = subprocess.Popen(
                    [shutil.which("agent-run"), "--login", "codex/chatgpt", *stand_ins, "--timeout", "240",
                     "codex", "exec", "-m", "gpt-fake", "Do the job."],
                    cwd=world.repo, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True)
                stdout, stderr = Lines(process.stdout), Lines(process.stderr)
                inside = None
                deadline = time.monotonic() + 240
                while process.poll() is None and time.monotonic() < deadline:
                    started = STARTED.search(stderr.text)
                    # Codex is in its first command (8 s) once the first turn was answered.
                    if inside is None and started and vendor.turns():
                        inside = look_inside(f"agent-sandbox-{started.group(1)}-agent", vendor)
                    time.sleep(0.5)
                if process.poll() is None:
                    process.kill()
                process.wait(timeout=60)
                stdout.thread.join(timeout=10)
                stderr.thread.join(timeout=10)
                found = RUN_ID.search(stderr.text)
                after_run = json.loads(auth.read_text())
                check = login_check(outside, home, vendor)
                yield {"process": process, "stdout": stdout.text, "stderr": stderr.text, "inside": inside, "vendor": vendor,
                       "world": world, "after_run": after_run, "first_login": first_login,
                       "run_dir": Path(found.group(1)) if found else None, "check": check}
            finally:
                podman("rm", "-f", "-t", "0", vendor.container, check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_run_works_across_refreshes(run):
    assert run["process"].returncode == 0, run["stderr"][-4000:]
    runs = subprocess.run([shutil.which("agent-run"), "runs"], cwd=run["world"].repo, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert "heads/agent/login" in runs.stdout, runs.stdout + runs.stderr    # the commit made after the sleep
    vendor = run["vendor"]
    assert len(vendor.turns()) == 3
    assert not [e for e in vendor.events() if e["event"] in ("rejected", "refresh_refused")
                and e.get("why") != "not a token this server signed"], vendor.events()
    log = [json.loads(line) for line in (run["run_dir"] / "gateway-log" / "access.log").read_text().splitlines()]
    refreshes = [e for e in log if e.get("event") == "refresh"]
    # The first turn and the one after Codex's 8 s command each met a token due for a refresh.
    assert len(refreshes) >= 2 and {e["outcome"] for e in refreshes} == {"refreshed"}, refreshes
    assert len([e for e in vendor.events() if e["event"] == "refresh"]) >= len(refreshes)


def test_no_token_the_vendor_issued_is_anywhere_in_the_container(run):
    inside = run["inside"]
    assert inside is not None, "the test never saw the agent container while Codex ran"
    found = inside["found"]
    assert inside["tokens"] >= 6            # the login and at least one refresh: access, id and refresh token each
    assert found.processes >= 2 and found.files and found.memory_bytes
    assert not [place for index, place in found.where if index < inside["tokens"]]
    assert [place for index, place in found.where if index == inside["tokens"]], "the placeholder was not found"
    placeholder = json.loads(inside["auth"])
    assert placeholder["tokens"]["refresh_token"] == gateway.PLACEHOLDER
    assert placeholder["tokens"]["account_id"] == gateway.PLACEHOLDER_ACCOUNT


def test_the_placeholder_sent_to_the_vendor_directly_is_refused(run):
    placeholder = json.loads(run["inside"]["auth"])["tokens"]
    headers = {"authorization": f"Bearer {placeholder['access_token']}", "chatgpt-account-id": placeholder["account_id"]}
    assert run["vendor"].call("/backend-api/codex/models?client_version=0.169.0", headers) == 401
    rejected = [e for e in run["vendor"].events() if e["event"] == "rejected"]
    assert rejected and rejected[-1]["why"] == "not a token this server signed"


def test_the_account_calls_never_reached_the_vendor(run):
    paths = {(r["method"], r["path"].split("?")[0]) for r in run["vendor"].requests()}
    assert paths <= {("GET", "/backend-api/codex/models"), ("POST", "/backend-api/codex/responses"),
                     ("POST", "/oauth/token"), ("GET", "/backend-api/codex/models")}, paths
    log = [json.loads(line) for line in (run["run_dir"] / "gateway-log" / "access.log").read_text().splitlines()]
    assert ("/backend-api/wham/accounts/check", "answer") in {(e.get("path"), e.get("decision")) for e in log}
    for request in run["vendor"].requests():
        if request["headers"].get("originator") == "codex_exec":      # Codex's, through the gateway
            assert request["headers"]["chatgpt-account-id"] == run["first_login"]["tokens"]["account_id"]


def test_the_refreshed_login_went_back_to_the_users_auth_json_and_login_check_reports_it(run):
    saved = run["after_run"]
    assert saved["tokens"]["refresh_token"] != run["first_login"]["tokens"]["refresh_token"]
    assert saved["tokens"]["refresh_token"] in run["vendor"].issued_tokens()
    check = run["check"]
    assert check.returncode == 0, check.stdout + check.stderr
    assert "codex/chatgpt" in check.stdout and "usable:  yes" in check.stdout and "expires:" in check.stdout
