"""agent-run's task in a Kubernetes sandbox: what the agent pod runs, as uid 1000, from the
read-only agent-run-task ConfigMap (rendered by render-profiles --kubernetes; do not edit).

  the claim's env (AGENT_RUN_CLI, AGENT_RUN_ARGS, AGENT_RUN_REPOSITORY, AGENT_RUN_COMMIT, ...)
    -> clone the repository through the credential gateway's GitHub route into /workspace
    -> agent-entrypoint CLI ARGS (the image's own checks, then the CLI in bypass mode)
    -> what the agent left, as a git bundle in /tmp/agent-run-out (its commits, and the work it
       left uncommitted as refs/agent-run/uncommitted), with the run report beside it
    -> wait until `agent-run --engine kubernetes` has fetched them (it creates .../fetched)
    -> exit with the CLI's code: the pod finishes, the claim's Finished condition follows

The proxy and the gateway are reached by address from the Services' environment variables (the
pod has no DNS at all). Standard library only: it runs on the image's python3.
"""
import json
import os
import signal
import subprocess
import sys
import time

OUT = "/tmp/agent-run-out"
CLIS = ("claude", "codex", "gemini")
CODEX_PORT = 8082
GITHUB_PORT = 80
NOTHING_NEW = 3
GIT_QUIET = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_TERMINAL_PROMPT": "0"}
IDENTITY = {"GIT_AUTHOR_NAME": "agent-run", "GIT_AUTHOR_EMAIL": "agent-run@localhost",
            "GIT_COMMITTER_NAME": "agent-run", "GIT_COMMITTER_EMAIL": "agent-run@localhost"}


def say(text):
    print(f"agent-run-task: {text}", file=sys.stderr, flush=True)


def refuse(code, text):
    say(text)
    sys.exit(code)


def checked_environment(env):
    for name in ("HTTPS_PROXY", "NO_PROXY", "ANTHROPIC_BASE_URL", "AGENT_GATEWAY_SERVICE_HOST"):
        if "$(" in env.get(name, "$(") or not env.get(name):
            refuse(64, f"{name} is not set: the agent-proxy and agent-gateway Services must exist in this "
                       f"namespace before the pod starts (kubectl apply -k, then claim)")
    cli = env.get("AGENT_RUN_CLI", "")
    if cli not in CLIS:
        refuse(64, f"AGENT_RUN_CLI {cli!r}: expected one of {', '.join(CLIS)} (set by agent-run on the claim)")
    try:
        args = json.loads(env.get("AGENT_RUN_ARGS", "[]"))
    except ValueError:
        args = None
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        refuse(64, "AGENT_RUN_ARGS: expected a JSON list of strings")
    return cli, args


def git(args, cwd="/workspace", check=True, extra=None):
    env = {**os.environ, **GIT_QUIET, **(extra or {})}
    done = subprocess.run(["git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", *args], cwd=cwd,
                          env=env, capture_output=True, text=True)
    if check and done.returncode != 0:
        refuse(70, f"git {' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return done


def clone(env):
    """The repository through the gateway's GitHub route (read-only there), at the run's commit."""
    repository, commit = env.get("AGENT_RUN_REPOSITORY", ""), env.get("AGENT_RUN_COMMIT", "")
    if not repository:
        say("no repository given: /workspace starts empty")
        return
    gateway = env["AGENT_GATEWAY_SERVICE_HOST"]
    through_gateway = ["url.http://github.localhost/.insteadOf=https://github.com/",
                       f"http.curloptResolve=github.localhost:{GITHUB_PORT}:{gateway}"]
    config = [arg for pair in through_gateway for arg in ("-c", pair)]
    git(["clone", "-q", "--no-checkout", *config, f"https://github.com/{repository}.git", "/workspace"], cwd="/tmp")
    branch = env.get("AGENT_RUN_BRANCH") or "agent-run"
    git(["checkout", "-q", "-B", branch, commit or "HEAD"])
    git(["update-ref", "refs/agent-run/start", "HEAD"])
    say(f"cloned {repository} at {git(['rev-parse', 'HEAD']).stdout.strip()[:12]} on branch {branch}")


def run_cli(cli, args, env):
    if cli == "codex":  # Codex reads no base URL from the environment: the gateway as a provider
        provider = "model_providers.agent_gateway"
        base = f"http://{env['AGENT_GATEWAY_SERVICE_HOST']}:{CODEX_PORT}/v1"
        overrides = ['model_provider="agent_gateway"', f'{provider}.name="agent-gateway"',
                     f'{provider}.base_url="{base}"', f'{provider}.env_key="OPENAI_API_KEY"',
                     f'{provider}.wire_api="responses"']
        args = [a for o in overrides for a in ("-c", o)] + args
    return subprocess.run(["agent-entrypoint", cli, *args], stdin=subprocess.DEVNULL).returncode


def collect():
    """The agent's work as a bundle (what agent-run's collector does for a podman run)."""
    os.makedirs(OUT, mode=0o700, exist_ok=True)
    if git(["rev-parse", "--git-dir"], check=False).returncode != 0:
        return 70
    head = git(["rev-parse", "-q", "--verify", "HEAD^{commit}"], check=False).stdout.strip()
    for line in git(["for-each-ref", "--format=%(refname)", "refs/agent-run/"]).stdout.split():
        if line not in ("refs/agent-run/start",):
            git(["update-ref", "-d", line])
    if git(["status", "--porcelain", "--untracked-files=all", "--ignore-submodules=all"], check=False).stdout:
        index = {"GIT_INDEX_FILE": "/tmp/agent-run-collect.index"}
        git(["read-tree", head] if head else ["read-tree", "--empty"], extra=index)
        git(["add", "--all", "--ignore-errors", "--", "."], check=False, extra=index)
        tree = git(["write-tree"], extra=index).stdout.strip()
        work = git(["commit-tree", tree, *(["-p", head] if head else []), "-m",
                    "agent-run: the work the agent left uncommitted"], extra=IDENTITY).stdout.strip()
        git(["update-ref", "refs/agent-run/uncommitted", work])
    if head:
        git(["update-ref", "refs/agent-run/HEAD", head])
    refs = ["--branches", "--tags"] + [r for r in ("refs/agent-run/HEAD", "refs/agent-run/uncommitted")
                                       if git(["rev-parse", "-q", "--verify", r], check=False).returncode == 0]
    start = git(["rev-parse", "-q", "--verify", "refs/agent-run/start"], check=False).stdout.strip()
    if start:
        if not git(["rev-list", "-n", "1", *refs, "--not", start]).stdout.strip():
            return NOTHING_NEW
        refs += ["--not", start]
    git(["bundle", "create", "-q", f"{OUT}/result.bundle", *refs])
    return 0


def wait_for_fetch(seconds):
    """Hold the pod until agent-run has copied the bundle and the report out (it then creates
    OUT/fetched), or the time is up: the pod's end is the claim's Finished condition."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.path.exists(f"{OUT}/fetched"):
            return
        time.sleep(0.5)
    say(f"nobody fetched the results within {seconds} s; they go with the pod")


def main():
    env = dict(os.environ)
    cli, args = checked_environment(env)
    clone(env)
    code = run_cli(cli, args, env)
    try:
        os.kill(-1, signal.SIGKILL)  # whatever the agent left running (kill(-1) spares the caller)
    except ProcessLookupError:
        pass
    collected = collect() if os.path.isdir("/workspace") else 70
    report = env.get("AGENT_REPORT", "")
    summary = {"exit_code": code, "collected": collected, "bundle": collected == 0,
               "report": bool(report) and os.path.isfile(report)}
    print(f"agent-run-task: done {json.dumps(summary, sort_keys=True)}", flush=True)
    wait_for_fetch(int(env.get("AGENT_RUN_COLLECT_TIMEOUT", "300")))
    sys.exit(code)


if __name__ == "__main__":
    main()
