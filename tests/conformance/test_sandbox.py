"""The sandbox itself: identity, layout, ownership, isolation from the host, canaries, remote, timeouts."""

import json
import os
import tempfile
import time
from pathlib import Path

import pytest

from .sandbox import Sandbox, direct_launcher, entrypoint_launcher, make_config_tree

POLICY = "etc/gemini-cli/policies/x.toml"


@pytest.fixture
def tree(tmp_path):
    root = make_config_tree(tmp_path / "root", {
        POLICY: "# policy\n",
        "etc/claude-code/managed-settings.json": "{}\n",
        "home/agent/.codex/config.toml": "# user config\n",
    })
    # Loose modes on purpose: the sandbox must not carry them into /etc.
    os.chmod(root / POLICY, 0o666)
    os.chmod(root / "etc/gemini-cli", 0o777)
    return root


def sh(sandbox, script, **kwargs):
    return sandbox.run_argv(["/bin/sh", "-c", script], **kwargs)


def test_runs_as_agent_in_the_workspace_with_only_the_given_environment(tree):
    with Sandbox(tree) as sandbox:
        result = sh(sandbox, 'id -u; id -g; id -G; echo "$HOME"; pwd; id -un; env | sort',
                    env=sandbox.default_env({"ONLY_THIS": "1"}))
    assert result.returncode == 0, result.stderr
    uid, gid, groups, home, cwd, name, *env = result.stdout.splitlines()
    assert (uid, gid, groups, home, name) == ("1000", "1000", "1000", "/home/agent", "agent")
    assert cwd == str(sandbox.workspace)
    assert "ONLY_THIS=1" in env
    assert not [line for line in env if line.startswith(("SUDO", "VIRTUAL_ENV", "PYTEST"))]


def test_config_tree_lands_in_place_root_owned_and_not_group_or_other_writable(tree):
    with Sandbox(tree) as sandbox:
        result = sh(sandbox, "stat -c '%n %u %g %a' / /etc /etc/gemini-cli /etc/gemini-cli/policies "
                             f"/{POLICY} /etc/claude-code/managed-settings.json /home/agent "
                             "/home/agent/.codex /home/agent/.codex/config.toml")
    assert result.returncode == 0, result.stderr
    stats = {name: (int(uid), int(gid), int(mode, 8)) for name, uid, gid, mode in
             (line.split() for line in result.stdout.splitlines())}
    for path in ["/", "/etc", "/etc/gemini-cli", "/etc/gemini-cli/policies", f"/{POLICY}",
                 "/etc/claude-code/managed-settings.json"]:
        uid, gid, mode = stats[path]
        assert (uid, gid) == (0, 0), path
        assert mode & 0o022 == 0, f"{path} is group/other-writable: {oct(mode)}"
    for path in ["/home/agent", "/home/agent/.codex", "/home/agent/.codex/config.toml"]:
        assert stats[path][:2] == (1000, 1000), path


def test_the_host_etc_and_home_are_untouched(tree):
    with Sandbox(tree) as sandbox:
        result = sh(sandbox, "cat /etc/claude-code/managed-settings.json; touch /home/agent/written; "
                             "ls /home; grep ^agent: /etc/passwd")
        assert result.returncode == 0, result.stderr
        assert (sandbox.home / "written").exists()
    assert result.stdout.split() == ["{}", "agent", "agent:x:1000:1000:agent:/home/agent:/bin/bash"]
    assert not Path("/etc/claude-code/managed-settings.json").exists()
    assert not Path("/etc/gemini-cli/policies/x.toml").exists()
    assert not Path("/home/agent/written").exists()
    assert "agent:x:1000" not in Path("/etc/passwd").read_text()


def test_agent_cannot_write_the_admin_layer(tree):
    with Sandbox(tree) as sandbox:
        result = sh(sandbox, f"echo x >> /{POLICY} || echo refused; "
                             "mkdir /etc/codex 2>/dev/null || echo refused")
    assert result.stdout.split() == ["refused", "refused"]


def test_canaries_record_argv_and_shadow_the_real_programs(tree):
    with Sandbox(tree) as sandbox:
        result = sh(sandbox, "for p in gh npm cargo; do command -v $p; done; gh secret set 'A B' --body x; "
                             "npm publish; bash -lc 'cargo publish --dry-run'")
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["/usr/local/bin/gh", "/usr/local/bin/npm", "/usr/local/bin/cargo"]
        assert sandbox.canary_calls() == [["gh", "secret", "set", "A B", "--body", "x"], ["npm", "publish"],
                                          ["cargo", "publish", "--dry-run"]]


def test_force_push_rewrites_the_bare_remote_observably(tree):
    with Sandbox(tree) as sandbox:
        before = sandbox.remote_log()
        push = sh(sandbox, "git commit -q --amend -m rewritten && git push -q --force origin main")
        assert push.returncode == 0, push.stderr
        after = sandbox.remote_log()
    assert len(before) == len(after) == 1
    assert before != after


def test_a_plain_push_without_force_is_refused_after_a_rewrite(tree):
    with Sandbox(tree) as sandbox:
        push = sh(sandbox, "git commit -q --amend -m rewritten && git push -q origin main")
        assert push.returncode != 0
        assert "rejected" in push.stderr
        assert len(sandbox.remote_log()) == 1


def test_timeout_kills_the_whole_namespace_including_detached_children(tree):
    with Sandbox(tree) as sandbox:
        beat = sandbox.workspace / "beat"
        result = sh(sandbox, "setsid sh -c 'while :; do echo x >> beat; sleep 0.05; done' & sleep 60", timeout=1)
        assert result.timed_out and result.returncode == -9
        assert result.duration < 10
        size = beat.stat().st_size
        assert size > 0
        time.sleep(0.5)
        assert beat.stat().st_size == size, "a process of the run survived its timeout"


def test_leftover_processes_die_when_the_command_exits(tree):
    with Sandbox(tree) as sandbox:
        beat = sandbox.workspace / "beat"
        result = sh(sandbox, "setsid sh -c 'while :; do echo x >> beat; sleep 0.05; done' & sleep 0.5")
        assert result.returncode == 0 and not result.timed_out
        size = beat.stat().st_size
        time.sleep(0.5)
        assert beat.stat().st_size == size, "a background process outlived the run"


def test_stdin_is_dev_null_unless_given(tree):
    with Sandbox(tree) as sandbox:
        closed = sh(sandbox, "cat")
        fed = sh(sandbox, "cat", stdin="hello\n")
    assert (closed.returncode, closed.stdout) == (0, "")
    assert fed.stdout == "hello\n"


def test_launcher_is_pluggable(tree):
    with Sandbox(tree, launcher=lambda tool, args: ["/bin/echo", "launched", tool, *args]) as sandbox:
        result = sandbox.run("codex", ["exec", "--json"])
    assert result.stdout.strip() == "launched codex exec --json"
    assert entrypoint_launcher()("gemini", ["-p", "x"]) == ["agent-entrypoint", "gemini", "-p", "x"]
    assert entrypoint_launcher(["/usr/bin/python3", "-m", "entrypoint"])("codex", []) == \
        ["/usr/bin/python3", "-m", "entrypoint", "codex"]
    assert direct_launcher("claude", ["-p"])[0].endswith("node_modules/.bin/claude")


def test_manifest_owner_and_mode_are_applied(tmp_path):
    manifest = {"format": 1, "files": {
        "/home/agent/.claude/settings.json": {"sha256": "x", "mode": "0444", "owner": 0, "format": "json"}}}
    root = make_config_tree(tmp_path / "root", {
        "home/agent/.claude/settings.json": "{}\n",
        "etc/agent-sandbox/manifest.json": json.dumps(manifest),
    })
    with Sandbox(root) as sandbox:
        result = sh(sandbox, "stat -c '%u %a' /home/agent/.claude /home/agent/.claude/settings.json; "
                             "echo x >> /home/agent/.claude/settings.json || echo refused")
    assert result.stdout.split() == ["1000", "755", "0", "444", "refused"]


def test_bad_config_tree_is_refused_with_the_path(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "stray-file").write_text("x")
    before = set(Path(tempfile.gettempdir()).glob("agent-conformance-*"))
    with pytest.raises(ValueError, match="stray-file"):
        Sandbox(tmp_path / "root")
    assert set(Path(tempfile.gettempdir()).glob("agent-conformance-*")) == before, "a refused tree left its folder"
    with pytest.raises(FileNotFoundError, match="missing"):
        Sandbox(tmp_path / "missing")
    with pytest.raises(ValueError, match="relative"):
        make_config_tree(tmp_path, {"/etc/passwd": "x"})


def test_the_pinned_clis_are_on_path_for_the_agent(tree):
    with Sandbox(tree) as sandbox:
        result = sh(sandbox, "for t in claude codex; do command -v $t; $t --version; done")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "/usr/local/bin/claude" and "(Claude Code)" in lines[1]
    assert lines[2] == "/usr/local/bin/codex" and lines[3].startswith("codex-cli ")
