"""agent-run: the commands it builds and what it refuses (no engine needed)."""
from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from egress.gateway import KeySource, PLACEHOLDER_KEY
from egress.gateway import proxy_allowlist
from launcher.cli import main, prepare
from launcher.plan import (AGENT_UID, Mount, Options, RunError, check_mount, glob_matches,
                           protected_paths, refusal)

ALLOW = ("api.anthropic.com", "statsig.anthropic.com", "api.openai.com", "github.com", "pypi.org")
READ_ONLY = ("CLAUDE.md", "**/AGENTS.md", ".claude/**", ".git/hooks/**", ".git/config")
BLOCKED = (".env", "**/*.pem")


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "ws"
    for rel in ("CLAUDE.md", "sub/AGENTS.md", ".claude/settings.json", ".git/config", ".git/hooks/pre-commit",
                ".env", "certs/server.pem", "src/main.py", "node_modules/x/CLAUDE.md"):
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text("x")
    for path in [ws, *ws.rglob("*")]:
        os.chown(path, AGENT_UID, AGENT_UID)
    return ws


def options(workspace: Path, tmp_path: Path, **changes) -> Options:
    base = dict(cli="claude", cli_args=["-p", "hi"], workspace=workspace, profile="ci", engine="podman",
                key_sources=[KeySource("anthropic", file=tmp_path / "key")], run_id="test-run",
                run_dir=tmp_path / "run", home=tmp_path / "home", allow=ALLOW, read_only_globs=READ_ONLY,
                blocked_globs=BLOCKED)
    base.update(changes)
    (tmp_path / "home").mkdir(exist_ok=True)
    return Options(**base)


def mounts_of(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--mount"]


def test_agent_container_is_hardened(workspace, tmp_path):
    plan, _ = prepare(options(workspace, tmp_path))
    agent = plan.agent_create
    for flag in (["--cap-drop", "ALL"], ["--security-opt", "no-new-privileges"], ["--pids-limit", "1024"],
                 ["--memory", "4g"], ["--cpus", "2"], ["--user", f"{AGENT_UID}:{AGENT_UID}"]):
        assert shlex.join(flag) in shlex.join(agent), flag
    assert "--read-only" in agent and "--cap-add" not in agent and "--privileged" not in agent
    assert "-v" not in agent and "--volume" not in agent
    assert agent[-3:] == ["claude", "-p", "hi"]


def test_the_workspace_is_the_only_writable_bind_mount(workspace, tmp_path):
    (tmp_path / "data").mkdir()
    plan, _ = prepare(options(workspace, tmp_path, mounts=[Mount(tmp_path / "data", "/data")]))
    binds = [m for m in mounts_of(plan.agent_create) if m.startswith("type=bind")]
    writable = [m for m in binds if not m.endswith(",readonly")]
    assert writable == [f"type=bind,src={workspace},dst=/workspace"]
    targets = {m.split("dst=")[1].removesuffix(",readonly") for m in binds}
    assert {"/workspace/CLAUDE.md", "/workspace/sub/AGENTS.md", "/workspace/.claude", "/workspace/.git/config",
            "/workspace/.git/hooks", "/workspace/.env", "/workspace/certs/server.pem", "/data"} <= targets
    assert "/workspace/node_modules/x/CLAUDE.md" not in targets
    assert "/workspace/src/main.py" not in targets
    masked = [m for m in binds if "dst=/workspace/.env" in m]
    assert masked == [f"type=bind,src={tmp_path / 'run' / 'empty'},dst=/workspace/.env,readonly"]


def test_networks_proxy_and_gateway(workspace, tmp_path):
    plan, _ = prepare(options(workspace, tmp_path))
    internal = plan.setup[0]
    assert internal[:5] == ["podman", "network", "create", "--internal", "--disable-dns"]
    agent_networks = [plan.agent_create[i + 1] for i, a in enumerate(plan.agent_create) if a == "--network"]
    assert agent_networks == [f"{plan.names['internal']}:ip={plan.addresses['agent']}"]
    for create in plan.setup[2:4]:
        networks = [create[i + 1] for i, a in enumerate(create) if a == "--network"]
        assert len(networks) == 2 and networks[1] == plan.names["outside"]
    env = dict(plan.agent_create[i + 1].split("=", 1) for i, a in enumerate(plan.agent_create) if a == "--env")
    assert env["HTTPS_PROXY"] == "http://agent-proxy:3128"
    assert env["ANTHROPIC_BASE_URL"] == "http://agent-gateway:8081"
    assert env["ANTHROPIC_API_KEY"] == PLACEHOLDER_KEY
    assert "agent-gateway" in env["NO_PROXY"]
    assert env["AGENT_PROFILE"] == "ci"


def test_no_model_api_host_is_on_the_proxy_allowlist(workspace, tmp_path):
    plan, _ = prepare(options(workspace, tmp_path))
    squid = next(text for path, (text, _) in plan.files.items() if path.name == "squid.conf")
    assert "acl allowlisted dstdomain -n api.anthropic.com" not in squid
    assert "acl allowlisted dstdomain -n statsig.anthropic.com" in squid
    assert "acl allowlisted dstdomain -n api.openai.com" not in squid  # other vendors: nowhere
    assert proxy_allowlist(ALLOW) == ["statsig.anthropic.com", "github.com", "pypi.org"]


def test_no_secret_reaches_a_command_line(workspace, tmp_path):
    key_file, token_file = tmp_path / "key", tmp_path / "token"
    key_file.write_text("sk-ant-REAL-0123456789")
    token_file.write_text("ghp_REALTOKEN0123456789")
    plan, _ = prepare(options(workspace, tmp_path, github_token=KeySource("github", file=token_file)))
    everything = " ".join(" ".join(a) for a in [*plan.setup, plan.agent_create, plan.token_copy, plan.start_agent])
    assert "REAL" not in everything
    assert plan.token_copy == ["podman", "cp", str(tmp_path / "run" / "github-token"),
                               f"{plan.names['agent']}:/var/lib/agent-run/secrets/github-token"]
    env = [plan.agent_create[i + 1] for i, a in enumerate(plan.agent_create) if a == "--env"]
    assert "AGENT_RUN_GITHUB_TOKEN_FILE=/var/lib/agent-run/secrets/github-token" in env


def test_docker_variant(workspace, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("ghp_x0123456789")
    plan, _ = prepare(options(workspace, tmp_path, engine="docker", github_token=KeySource("github", file=token_file)))
    assert "--disable-dns" not in plan.setup[0]
    assert ["docker", "network", "connect", plan.names["outside"], plan.names["proxy"]] in plan.setup
    assert "type=volume,dst=/home/agent" in mounts_of(plan.agent_create)
    assert plan.token_copy[:3] == ["docker", "cp", "-a"]
    assert ["--network", plan.names["internal"], "--ip", plan.addresses["agent"]] == \
        plan.agent_create[plan.agent_create.index("--network"):plan.agent_create.index("--network") + 4]


def test_missing_key_for_the_cli_is_refused(workspace, tmp_path):
    with pytest.raises(RunError, match="--key-file openai=PATH"):
        prepare(options(workspace, tmp_path, cli="codex"))


def test_workspace_owner_must_be_the_agent(tmp_path):
    ws = tmp_path / "rootowned"
    ws.mkdir()
    with pytest.raises(RunError, match=f"owned by uid 0.*chown -R {AGENT_UID}:{AGENT_UID}"):
        prepare(options(ws, tmp_path))


@pytest.mark.parametrize("where", ["home", "parent-of-home", "ssh", "root"])
def test_host_home_and_secret_paths_are_refused_as_workspace(tmp_path, where):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    target = {"home": home, "parent-of-home": tmp_path, "ssh": home / ".ssh", "root": Path("/")}[where]
    if where != "root":
        os.chown(target, AGENT_UID, AGENT_UID)
    with pytest.raises(RunError, match="refusing to mount the workspace"):
        prepare(options(target, tmp_path, home=home))


def test_a_project_inside_home_is_fine(tmp_path):
    home = tmp_path / "home"
    project = home / "src" / "project"
    project.mkdir(parents=True)
    os.chown(project, AGENT_UID, AGENT_UID)
    plan, _ = prepare(options(project, tmp_path, home=home))
    assert f"type=bind,src={project},dst=/workspace" in mounts_of(plan.agent_create)


@pytest.mark.parametrize("source", ["/var/run/docker.sock", "/run", "/etc", "/proc/self"])
def test_sockets_and_system_paths_are_refused_as_mounts(tmp_path, source):
    with pytest.raises(RunError, match="refusing to mount"):
        check_mount(Mount(Path(source), "/mnt/x"), tmp_path)


def test_a_real_socket_is_refused(tmp_path):
    import socket
    path = tmp_path / "engine.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        assert "socket" in refusal(path, tmp_path / "home")
    finally:
        server.close()


def test_writable_extra_mounts_and_mounts_into_the_workspace_are_refused(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(RunError, match="only the workspace is writable"):
        check_mount(Mount(tmp_path / "data", "/data", read_only=False), tmp_path / "home")
    with pytest.raises(RunError, match="outside /workspace"):
        check_mount(Mount(tmp_path / "data", "/workspace/data"), tmp_path / "home")


def test_run_dir_inside_the_workspace_is_refused(workspace, tmp_path):
    with pytest.raises(RunError, match="inside the workspace"):
        prepare(options(workspace, tmp_path, run_dir=workspace / "logs"))


@pytest.mark.parametrize("pattern,path,expected", [
    ("CLAUDE.md", "CLAUDE.md", True), ("CLAUDE.md", "a/b/CLAUDE.md", True), ("**/AGENTS.md", "AGENTS.md", True),
    ("**/AGENTS.md", "x/y/AGENTS.md", True), (".claude/**", ".claude/a/b", True), (".claude/**", "x/.claude/a", False),
    (".git/config", ".git/config", True), (".git/config", "sub/.git/config", False), (".env.*", "a/.env.local", True),
    ("**/*.pem", "a/b.pem", True), ("**/*.pem", "a/b.pem.txt", False),
])
def test_gitignore_style_globs(pattern, path, expected):
    assert glob_matches(pattern, path) is expected


def test_protected_paths_skip_dependency_folders(workspace):
    assert protected_paths(workspace, ("CLAUDE.md",)) == ["CLAUDE.md"]


def test_print_shows_the_commands_and_runs_nothing(workspace, tmp_path, capsys, monkeypatch):
    key = tmp_path / "key"
    key.write_text("sk-ant-REAL-0123456789")
    monkeypatch.setenv("PATH", "/nonexistent")  # nothing can be executed
    code = main(["--print", "--engine", "podman", "--profile", "autonomous", "--workspace", str(workspace),
                 "--key-file", f"anthropic={key}", "--run-dir", str(tmp_path / "run"), "claude", "--", "-p", "hi"])
    out = capsys.readouterr().out
    assert code == 0
    assert "podman network create --internal --disable-dns" in out
    assert "podman start --attach" in out
    assert "REAL" not in out
    assert not (tmp_path / "run").exists()


def test_cli_errors_are_clear_and_exit_2(workspace, tmp_path, capsys):
    assert main(["--print", "--engine", "podman", "--workspace", str(workspace), "--key-file", "mistral=/x",
                 "claude"]) == 2
    assert "VENDOR one of" in capsys.readouterr().err
    assert main(["--print", "--engine", "podman", "--profile", "nonexistent", "--workspace", str(workspace),
                 "claude"]) == 2
    assert "nonexistent" in capsys.readouterr().err


def test_a_terminal_gets_an_interactive_container(workspace, tmp_path):
    plan, _ = prepare(options(workspace, tmp_path, interactive=True))
    assert "--interactive" in plan.agent_create and "--tty" in plan.agent_create
    assert plan.start_agent == ["podman", "start", "--attach", "--interactive", plan.names["agent"]]
    plan, _ = prepare(options(workspace, tmp_path))
    assert "--tty" not in plan.agent_create and "--interactive" not in plan.start_agent


def test_a_symlinked_protected_folder_is_never_mounted_from_the_host(tmp_path):
    # A bind mount follows links on the host: `.claude -> ~/.ssh` must not bring ~/.ssh in.
    secrets = tmp_path / "home" / ".ssh"
    secrets.mkdir(parents=True)
    (secrets / "id_ed25519").write_text("PRIVATE")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".claude").symlink_to(secrets)
    (ws / "CLAUDE.md").symlink_to(secrets / "id_ed25519")
    os.chown(ws, AGENT_UID, AGENT_UID)
    plan, _ = prepare(options(ws, tmp_path))
    assert not any(str(secrets) in m or ".claude" in m or "CLAUDE.md" in m for m in mounts_of(plan.agent_create))
