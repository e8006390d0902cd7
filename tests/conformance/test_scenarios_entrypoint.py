"""Issue 5 item 4, end to end: the real pinned CLIs started THROUGH agent-entrypoint as uid 1000
with AGENT_SANDBOX=1, the rendered image root at its real paths, in a container-like namespace,
against the fake model servers. Per CLI: autonomous, ci, fail closed, interactive, the guards.

The plain form of each tripwire entry is covered here; the variant matrix per layer is elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from .drivers import CLIS, connection_files, stream_events
from .fakes import Scenario, fake_for
from .interactive_matrix import GUARD, guard_script
from .sandbox import REPO_ROOT, make_config_tree
from .scenarios import DENIED_PLAIN_FORMS, FINAL_TEXT, SAFE_STEPS, tripwire_scenario
from .session import (ENTRYPOINT, container_sandbox, default_mode_args, image_tree, run_as_root, run_session,
                      session_env)

EXIT_USAGE = 64
EXIT_CONFIG = 78
EXIT_DENIED = 3  # entrypoint/report.py DENIAL_EXIT
TIMEOUT = 150


def rule_reasons(tree, profile: str) -> dict[str, str]:
    runtime = json.loads((tree / f"etc/agent-sandbox/profiles/{profile}.json").read_text())
    return {rule["id"]: rule["reason"] for rule in runtime["rules"]}


def assert_tripwire_session_held(session, before_main: list[str]) -> None:
    """The safe steps ran and left their traces; no denied step ran (canaries, remote)."""
    sandbox = session.sandbox
    assert not session.result.timed_out, session.result.stderr[-3000:]
    assert (sandbox.workspace / "ok-marker").exists(), session.result.stderr[-3000:]
    assert "On branch main" in session.result_for("git status")
    assert sandbox.remote_log("feature") == before_main, "the safe push to a new branch did not happen"
    amended = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(sandbox.workspace), "log", "-1", "--format=%s"],
                             capture_output=True, text=True).stdout.strip()
    assert amended == "rewritten-history", "the local history rewrite (a safe step) did not happen"
    # Had any force push run, main would be the rewritten commit; had the delete run, no feature.
    assert sandbox.remote_log("main") == before_main
    assert sandbox.canary_calls() == [], "a denied gh/npm/cargo command ran"
    assert len(session.server.tool_results) == len(session.server.scenario.steps)


# -- autonomous ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cli", CLIS)
def test_autonomous_safe_commands_run_and_every_tripwire_entry_is_refused_with_its_reason(cli, tmp_path):
    tree = image_tree(tmp_path)
    reasons = rule_reasons(tree, "autonomous")
    with container_sandbox(tree) as sandbox:
        before_main = sandbox.remote_log("main")
        session = run_session(cli, sandbox, tripwire_scenario(), timeout=TIMEOUT)
        assert session.result.returncode == 0, session.result.stderr[-3000:]
        assert FINAL_TEXT in session.result.stdout
        assert_tripwire_session_held(session, before_main)
        for command, rule in DENIED_PLAIN_FORMS:
            text = session.result_for(command)
            assert reasons[rule] in text, f"{cli}: the model was not told why {command!r} was refused: {text!r}"
        errors = {t.is_error for t in session.server.tool_results[len(SAFE_STEPS):]}
        assert errors == ({None} if cli == "codex" else {True})  # Codex's protocol has no error flag


# -- ci -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("cli", CLIS)
def test_ci_run_report_names_the_rule_of_every_denial_and_the_exit_code_is_non_zero(cli, tmp_path):
    tree = image_tree(tmp_path)
    with container_sandbox(tree) as sandbox:
        before_main = sandbox.remote_log("main")
        session = run_session(cli, sandbox, tripwire_scenario(), env={"AGENT_PROFILE": "ci"}, timeout=TIMEOUT)
        assert_tripwire_session_held(session, before_main)
        report = session.report()
        assert report["profile"] == "ci" and report["tool"] == cli
        assert report["cli_exit_code"] == 0, session.result.stderr[-3000:]
        found = sorted((d["command"], d["rule"]) for d in report["denials"])
        assert len(found) == len(DENIED_PLAIN_FORMS), f"{cli}: run report denials {found}"
        for command, rule in DENIED_PLAIN_FORMS:
            matching = [d for d in report["denials"] if d["command"] and command in d["command"]]
            assert [d["rule"] for d in matching] == [rule], f"{cli}: {command!r} in the report as {matching}"
            assert matching[0]["tripwire"] is True
        assert report["exit_code"] == EXIT_DENIED and report["denied"] is True
        assert session.result.returncode == EXIT_DENIED, session.result.stderr[-3000:]


# -- fail closed --------------------------------------------------------------------------------
# Per CLI, the baked file that holds its policy (and whose corruption the CLI itself would
# ignore silently or with a warning: docs/cli-facts.md).
POLICY_FILE = {
    "claude": "/etc/claude-code/managed-settings.json",
    "codex": "/etc/codex/requirements.toml",
    "gemini": "/etc/gemini-cli/policies/agent-sandbox.toml",
}


def tamper(sandbox, image_path: str, how: str) -> None:
    path = sandbox.layers / image_path.lstrip("/")
    original = path.read_bytes()
    json_file = image_path.endswith(".json")
    if how == "removed":
        path.unlink()
        return
    if how == "changed":  # still valid, quietly weaker
        if json_file:
            data = json.loads(original)
            data.pop("permissions", None)
            new = json.dumps(data).encode()
        else:
            new = original.replace(b'decision = "deny"', b'decision = "allow"').replace(
                b'"forbidden"', b'"prompt"') + b"\n# edited after the build\n"
        assert new != original
    else:  # malformed
        new = original[: len(original) // 2] + (b"{{{ not json" if json_file else b"\n[[[ not toml\n")
    path.write_bytes(new)
    if how == "malformed-rehashed":  # the manifest updated to match: only the parser can notice
        manifest_path = sandbox.layers / "etc/agent-sandbox/manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["files"][image_path]["sha256"] = hashlib.sha256(new).hexdigest()
        manifest_path.write_text(json.dumps(manifest, indent=2))


@pytest.mark.parametrize("how", ["changed", "removed", "malformed", "malformed-rehashed"])
@pytest.mark.parametrize("cli", CLIS)
def test_a_tampered_baked_file_stops_the_entrypoint_before_the_cli_starts(cli, how, tmp_path):
    tree = image_tree(tmp_path)
    with container_sandbox(tree) as sandbox:
        before_main = sandbox.remote_log("main")
        tamper(sandbox, POLICY_FILE[cli], how)
        session = run_session(cli, sandbox, tripwire_scenario(), timeout=60)
        assert session.result.returncode == EXIT_CONFIG, session.result.stderr[-3000:]
        refusals = [line for line in session.result.stderr.splitlines() if "refused: baked configuration" in line]
        assert any(POLICY_FILE[cli] in line for line in refusals), session.result.stderr[-3000:]
        assert session.server.requests == [], "the CLI started and talked to the model"
        assert sandbox.remote_log("main") == before_main and sandbox.canary_calls() == []
        assert not (sandbox.workspace / "ok-marker").exists()


# -- interactive --------------------------------------------------------------------------------
def interactive_tree(folder, cli: str):
    """The agent's home with `render-profiles --install interactive` merged over the connection."""
    tree = folder / "interactive-root"
    make_config_tree(tree, connection_files(cli))  # Gemini's auth pin; --install merges into it
    home = tree / "home" / "agent"
    home.mkdir(parents=True, exist_ok=True)
    # the hooks the install writes run this agent-guard, which the agent (uid 1000) can run
    make_config_tree(tree, {GUARD.lstrip("/"): guard_script()})
    (tree / GUARD.lstrip("/")).chmod(0o755)
    subprocess.run([sys.executable, "-m", "renderer.cli", "--root", str(REPO_ROOT), "--install", "interactive",
                    "--home", str(home), "--guard", GUARD], check=True, capture_output=True, text=True)
    return tree


INTERACTIVE_STEPS = ("git status", "git push --force origin main", "gh secret list")


@pytest.mark.parametrize("cli", CLIS)
def test_interactive_default_mode_runs_allowed_commands_and_refuses_denied_ones(cli, tmp_path):
    tree = interactive_tree(tmp_path, cli)
    with container_sandbox(tree, through_entrypoint=False) as sandbox:
        before_main = sandbox.remote_log("main")
        rewrite = sandbox.run_argv(["git", "commit", "--amend", "--allow-empty", "-q", "-m", "rewritten"],
                                   env=sandbox.default_env())
        assert rewrite.returncode == 0, rewrite.stderr  # so that a force push would show on the remote
        extra = ["--output-format", "stream-json", "--verbose"] if cli == "claude" else []
        with fake_for(cli, Scenario(INTERACTIVE_STEPS, FINAL_TEXT)) as server:
            args = default_mode_args(cli, server) + extra  # no bypass flag, no entrypoint to add one
            result = sandbox.run(cli, args, env=session_env(cli, sandbox, server, {"AGENT_SANDBOX": None}),
                                 timeout=TIMEOUT)
        assert result.returncode == 0, result.stderr[-3000:]
        texts = [t.text for t in server.tool_results]
        assert len(texts) == len(INTERACTIVE_STEPS), result.stderr[-3000:]
        assert "On branch main" in texts[0], texts[0]
        assert sandbox.remote_log("main") == before_main, "the force push ran"
        assert sandbox.canary_calls() == [], "gh secret ran"
        # A deny rule, not the "ask" every push gets in this profile (headless, an ask is refused too):
        # Claude words the two differently, Codex and Gemini quote the rule; the agent-guard hook,
        # which the profile installs in all three, names it too.
        for text, rule in ((texts[1], "git-push-force"), (texts[2], "gh-secret")):
            by_hook = f"agent-guard: denied by rule {rule}:" in text
            if cli == "claude":
                assert "has been denied" in text or by_hook, text
            else:
                assert f"agent-sandbox {rule}:" in text or by_hook, text
        if cli == "claude":
            init = next(e for e in stream_events(result.stdout) if e.get("subtype") == "init")
            assert init["permissionMode"] == "default"


# -- the guards ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cli", CLIS)
def test_nothing_starts_as_root_or_without_agent_sandbox_1(cli, tmp_path):
    tree = image_tree(tmp_path)
    with container_sandbox(tree) as sandbox:
        control = run_session(cli, sandbox, Scenario([], FINAL_TEXT), timeout=TIMEOUT)
        assert control.result.returncode == 0 and control.server.model_requests, \
            f"control run with AGENT_SANDBOX=1 as uid 1000 did not start: {control.result.stderr[-3000:]}"
        with fake_for(cli, Scenario([], FINAL_TEXT)) as server:
            args = default_mode_args(cli, server)
            outcomes = {}
            for label, value in (("unset", None), ("0", "0"), ("true", "true"), ("empty", "")):
                env = session_env(cli, sandbox, server, {"AGENT_SANDBOX": value})
                outcomes[label] = sandbox.run(cli, args, env=env, timeout=60)
            root_env = session_env(cli, sandbox, server)
            outcomes["root"] = run_as_root(sandbox, [ENTRYPOINT, cli, *args], root_env, timeout=60)
            assert server.requests == [], f"a guarded start reached the model: {server.requests}"
        for label, result in outcomes.items():
            assert result.returncode == EXIT_USAGE, f"{label}: exit {result.returncode}: {result.stderr[-2000:]}"
            expected = "running as root" if label == "root" else "AGENT_SANDBOX must be exactly 1"
            assert expected in result.stderr, f"{label}: {result.stderr[-2000:]}"
