"""The real Gemini CLI with a Google login kind, through agent-gateway, to Google's fake; run by
test_gemini_cli.py inside a fresh network namespace (only loopback). The CLI gets exactly what
launcher/login_gemini.py gives the container (variables and the settings file); access tokens live
`LIFETIME` seconds at the fake, and the scripted turns take longer, so the run crosses a refresh.

Usage: gemini_cli_run.py WORKDIR KIND (gemini/google or gemini/vertex); prints a JSON summary on stdout.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE.parent / "egress")]

from gateway_process import GatewayProcess  # noqa: E402
from launcher import login_gemini, logins  # noqa: E402
from tests.conformance.fakes import Scenario  # noqa: E402
from tests.logins.fake_google import GoogleAccount, GoogleFake  # noqa: E402

LIFETIME = 6
GEMINI = ROOT / "node_modules" / "@google" / "gemini-cli" / "bundle" / "gemini.js"
STEPS = ("printenv > seen-env.txt && sleep 8", "cat /proc/[0-9]*/environ > seen-environ.txt 2>/dev/null; true")


def service_account() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode(),
            key.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo).decode())


def login(kind: str, workdir: Path):
    """(Google's account at the fake, the secret the launcher reads on the host, what the container may know)."""
    if kind == "gemini/google":
        # The user's login as `gemini` left it: an access token about to expire, a refresh token.
        account = GoogleAccount(access_expires_at=time.time() + LIFETIME, lifetime=LIFETIME)
        return account, {"kind": kind, "access_token": account.access_token, "refresh_token": account.refresh_token,
                         "expires_at": int(account.access_expires_at)}, {}
    private, public = service_account()
    account = GoogleAccount(lifetime=LIFETIME, service_account_email="runner@my-project-1.iam.gserviceaccount.com",
                            service_account_public_key=public)
    key = workdir / "key.json"
    key.write_text(json.dumps({"type": "service_account", "client_email": account.service_account_email,
                               "private_key": private, "private_key_id": "k-1", "token_uri": "(set below)"}))
    found = logins.choose("gemini", kind, logins.Context(workdir, {
        "GOOGLE_APPLICATION_CREDENTIALS": str(key), "GOOGLE_CLOUD_PROJECT": "my-project-1",
        "GOOGLE_CLOUD_LOCATION": "us-central1"}))
    return account, found.secret, found.details


def main() -> None:
    workdir, kind = Path(sys.argv[1]), sys.argv[2]
    home, work = workdir / "home", workdir / "work"
    work.mkdir(parents=True)
    account, secret, details = login(kind, workdir)
    fake = GoogleFake(Scenario(STEPS, "Worked across a refresh."), account).start()
    if "token_uri" in secret:
        secret["token_uri"] = account.token_audience = fake.token_url
    try:
        with GatewayProcess(workdir / "gateway", {"gemini": secret}, {"gemini": fake.base_url},
                            logins={"gemini": kind}, token_urls={"gemini": fake.token_url}) as gateway:
            host, port = gateway.url("gemini").removeprefix("http://").rsplit(":", 1)
            box = logins.container_for(kind, host, details)
            # The gateway's port here is not the production one (8083).
            env = {name: value.replace(f"{host}:8083", f"{host}:{port}") for name, value in box.env.items()}
            for target, text in box.files.items():
                path = home / Path(target).relative_to(login_gemini.layout.HOME)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            env.update({"PATH": os.environ["PATH"], "HOME": str(home), "GEMINI_CLI_TRUST_WORKSPACE": "true",
                        "GEMINI_CLI_NO_RELAUNCH": "true", "NO_COLOR": "1", "TERM": "dumb"})
            started = time.monotonic()
            done = subprocess.run(["node", str(GEMINI), "-m", "gemini-2.5-flash", "-p", "Do the job.",
                                   "--approval-mode", "yolo"], cwd=work, env=env, capture_output=True, text=True,
                                  timeout=180, stdin=subprocess.DEVNULL)
            took = time.monotonic() - started
        tokens = [t for t in (account.access_token, account.refresh_token, secret.get("private_key", "")[40:80],
                              *(i["token"] for i in fake.issued)) if t]
        files_with_token = [str(p) for p in workdir.rglob("*") if p.is_file() and not p.is_symlink()
                            and "gateway" not in p.parts and p.name != "key.json"
                            and any(t.encode() in p.read_bytes() for t in tokens)]
        summary = {
            "returncode": done.returncode, "stdout": done.stdout[-3000:], "stderr": done.stderr[-3000:],
            "seconds": round(took, 1), "env": env,
            "requests": [{"method": r.method, "path": r.path.split("?")[0],
                          "authorization": r.headers.get("authorization")} for r in fake.requests],
            "issued": fake.issued, "refused": fake.refused, "tokens": tokens,
            "tool_results": [t.text for t in fake.tool_results], "gateway_log": gateway.log(),
            "seen_env": (work / "seen-env.txt").read_text() if (work / "seen-env.txt").exists() else "",
            "seen_environ": (work / "seen-environ.txt").read_text(errors="replace")
            if (work / "seen-environ.txt").exists() else "",
            "files_with_token": files_with_token,
        }
    finally:
        fake.stop()
    json.dump(summary, sys.stdout)


if __name__ == "__main__":
    main()
