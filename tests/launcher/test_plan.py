"""agent-run's plan: the commands it builds and what it refuses (no engine needed)."""
from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from egress.gateway import PLACEHOLDER_KEY, KeySource
from image import layout
from launcher import safefs
from launcher.checks import check_mount, free_subnet, id_range_problem, refusal
from launcher.cli import main, prepare
from egress.gateway_github import parse_git_config_parameters
from launcher.github_app import GitHubOptions
from launcher.plan import (AGENT_UID, ID_BASE, ID_RANGE, ID_SLOTS, Mount, Options, RunError, build_plan,
                           derive_seccomp, format_plan)
from repos import USER, git, make_repo, write

ALLOW = ("api.anthropic.com", "statsig.anthropic.com", "api.openai.com", "auth.openai.com",
         "generativelanguage.googleapis.com", "github.com", "pypi.org")
READ_ONLY = ("CLAUDE.md", "**/AGENTS.md", ".claude/**", ".git/hooks/**", ".git/config")
BLOCKED = (".env", "**/*.pem")
MEMORY = safefs.memory_parent() / "agent-sandbox"


@pytest.fixture
def repo(tmp_path):
    repo = make_repo(tmp_path, {"CLAUDE.md": "x", "sub/AGENTS.md": "x", ".claude/settings.json": "{}",
                                "src/main.py": "x", "node_modules/x/CLAUDE.md": "x"})
    write(repo, {".env": "SECRET=1", "certs/server.pem": "PRIVATE"})
    return repo


def options(workspace: Path, tmp_path: Path, **changes) -> Options:
    base = dict(cli="claude", cli_args=["-p", "hi"], workspace=workspace, profile="ci",
                key_sources=[KeySource("anthropic", file=tmp_path / "key")], run_id="test-run",
                run_dir=tmp_path / "run", home=tmp_path / "home", allow=ALLOW, read_only_globs=READ_ONLY,
                blocked_globs=BLOCKED)
    base.update(changes)
    (tmp_path / "home").mkdir(exist_ok=True)
    return Options(**base)


def planned(opts: Options):
    host, source, steps, warnings = prepare(opts)
    plan = build_plan(opts, host)
    plan.warnings += warnings
    return plan, host, steps


def mounts_of(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--mount"]


def values_of(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_the_agent_runs_hardened_in_its_own_user_namespace(repo, tmp_path):
    plan, host, _ = planned(options(repo, tmp_path))
    agent = plan.agent_create
    joined = shlex.join(agent)
    for flag in (["--cap-drop", "ALL"], ["--security-opt", "no-new-privileges"], ["--pids-limit", "1024"],
                 ["--memory", "4g"], ["--cpus", "2"], ["--user", f"{AGENT_UID}:{AGENT_UID}"],
                 ["--security-opt", f"seccomp={tmp_path / 'run' / 'seccomp.json'}"],
                 ["--sysctl", "net.ipv6.conf.all.disable_ipv6=1"]):
        assert shlex.join(flag) in joined, flag
    assert "--read-only" in agent and "--cap-add" not in agent and "--privileged" not in agent
    assert "-v" not in agent and "--volume" not in agent and "--userns" not in agent
    (uid_map,), (gid_map,) = values_of(agent, "--uidmap"), values_of(agent, "--gidmap")
    inside, outside, size = map(int, uid_map.split(":"))
    assert (inside, size) == (0, ID_RANGE) and uid_map == gid_map
    assert ID_BASE <= outside < ID_BASE + ID_SLOTS * ID_RANGE and (outside - ID_BASE) % ID_RANGE == 0
    assert host.agent_owner == (outside + AGENT_UID, outside + AGENT_UID)
    assert agent[-3:] == ["claude", "-p", "hi"]


def test_copy_mode_mounts_the_copy_and_nothing_of_the_users_folder(repo, tmp_path):
    (tmp_path / "data").mkdir()
    plan, host, steps = planned(options(repo, tmp_path, mounts=[Mount(tmp_path / "data", "/data")]))
    binds = mounts_of(plan.agent_create)
    assert binds[0] == f"type=bind,src={tmp_path / 'run' / 'workspace'},dst=/workspace"
    assert not any(str(repo) in m for m in binds)
    assert f"type=bind,src={MEMORY}/test-run/report,dst=/var/lib/agent-run/report" in binds
    assert [m for m in binds if not m.endswith(",readonly")] == binds[:2]  # the copy and the report folder
    assert f"type=bind,src={tmp_path / 'data'},dst=/data,readonly" in binds
    assert "copy:" in steps[0] and "refs/agent/test-run/start" in steps[0]
    assert plan.warnings == ["blocked files left out of the copy: .env, certs/server.pem"]


def test_the_workdir_follows_a_subfolder(repo, tmp_path):
    plan, host, _ = planned(options(repo / "src", tmp_path))
    assert values_of(plan.agent_create, "--workdir") == ["/workspace/src"]


def test_the_collector_has_no_network_and_only_the_copy_and_its_output(repo, tmp_path):
    plan, host, _ = planned(options(repo, tmp_path))
    collect = plan.collect
    assert values_of(collect, "--network") == ["none"]
    assert "--read-only" in collect and shlex.join(["--cap-drop", "ALL"]) in shlex.join(collect)
    assert values_of(collect, "--uidmap") == values_of(plan.agent_create, "--uidmap")
    assert mounts_of(collect) == [f"type=bind,src={tmp_path / 'run' / 'workspace'},dst=/workspace",
                                  f"type=bind,src={tmp_path / 'run' / 'out'},dst=/var/lib/agent-run/out"]
    assert values_of(collect, "--entrypoint") == ["/bin/sh"] and "bundle create" in collect[-1]


def test_mount_mode_pins_protects_masks_and_warns(repo, tmp_path):
    os.chown(repo, 1234, 1234)
    plan, host, _ = planned(options(repo, tmp_path, mode="mount"))
    binds = mounts_of(plan.agent_create)
    assert binds[0] == f"type=bind,src={repo},dst=/workspace"
    targets = {m.split("dst=")[1]: m for m in binds}
    for rel in ("CLAUDE.md", "sub/AGENTS.md", ".claude", ".git/config", ".git/hooks"):
        assert targets[f"/workspace/{rel},readonly"].startswith(f"type=bind,src={repo / rel},"), rel
    assert targets["/workspace/.env,readonly"] == f"type=bind,src={tmp_path / 'run' / 'empty'},dst=/workspace/.env,readonly"
    for rel in (".git", "sub", "certs"):  # mount points cannot be renamed
        assert targets[f"/workspace/{rel}"] == f"type=bind,src={repo / rel},dst=/workspace/{rel}"
    order = [m.split("dst=")[1] for m in binds]
    assert order.index("/workspace/.git") < order.index("/workspace/.git/config,readonly")
    assert "/workspace/node_modules/x/CLAUDE.md,readonly" not in targets
    assert values_of(plan.agent_create, "--user") == ["1234:1234"] and "--uidmap" not in plan.agent_create
    assert any("--mount: the agent edits your folder itself" in w for w in plan.warnings)


def test_mount_mode_refuses_a_root_owned_folder(repo, tmp_path):
    with pytest.raises(RunError, match="belongs to root"):
        planned(options(repo, tmp_path, mode="mount"))


def test_the_proxy_tunnels_to_no_model_vendor_and_the_gateway_serves_only_the_runs(repo, tmp_path):
    plan, host, _ = planned(options(repo, tmp_path))
    squid = plan.files[tmp_path / "run" / "squid" / "squid.conf"][0]
    allowed = [line for line in squid.splitlines() if line.startswith("acl allowlisted")]
    assert allowed and "pypi.org" in " ".join(allowed)
    assert not any(h in " ".join(allowed) for h in
                   ("api.anthropic.com", "api.openai.com", "generativelanguage.googleapis.com", "github.com"))
    config = json.loads(plan.files[tmp_path / "run" / "gateway" / "config.json"][0])
    assert [route["name"] for route in config["routes"]] == ["anthropic"]
    assert config["agent_subnets"] == [plan.subnet]
    env = dict(e.split("=", 1) for e in values_of(plan.agent_create, "--env"))
    assert env["ANTHROPIC_API_KEY"] == PLACEHOLDER_KEY and env["ANTHROPIC_BASE_URL"] == "http://agent-gateway:8081"
    assert "OPENAI_API_KEY" not in env and "GEMINI_API_KEY" not in env
    assert env["AGENT_REPORT"] == "/var/lib/agent-run/report/report.json"


def test_codex_is_told_the_gateway_as_its_model_provider(repo, tmp_path):
    opts = options(repo, tmp_path, cli="codex", cli_args=["exec", "fix it"],
                   key_sources=[KeySource("openai", file=tmp_path / "key")])
    plan, _, _ = planned(opts)
    tail = plan.agent_create[plan.agent_create.index("codex"):]
    assert tail[-2:] == ["exec", "fix it"]
    overrides = values_of(tail, "-c")
    assert 'model_provider="agent_gateway"' in overrides
    assert 'model_providers.agent_gateway.base_url="http://agent-gateway:8082/v1"' in overrides
    assert 'model_providers.agent_gateway.env_key="OPENAI_API_KEY"' in overrides


def test_the_derived_seccomp_profile_refuses_the_keyring_calls():
    default = json.loads(Path("/usr/share/containers/seccomp.json").read_text())
    derived = derive_seccomp(default)
    allowed = {n for rule in derived["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for n in rule["names"]}
    assert {"keyctl", "add_key", "request_key"}.isdisjoint(allowed)
    assert "read" in allowed and derived["defaultAction"] == default["defaultAction"]
    assert derived["syscalls"][-1] == {"names": ["add_key", "keyctl", "request_key"], "action": "SCMP_ACT_ERRNO",
                                       "errnoRet": 1}


def test_no_secret_reaches_a_command_line(repo, tmp_path):
    key_file, token_file = tmp_path / "key", tmp_path / "token"
    key_file.write_text("sk-ant-REAL-0123456789")
    token_file.write_text("ghp_REALTOKEN0123456789")
    github = GitHubOptions(token_source=KeySource("github", file=token_file), repository="octo/widgets")
    plan, host, _ = planned(options(repo, tmp_path, github=github))
    everything = " ".join(" ".join(a) for a in [*plan.setup, plan.agent_create, plan.start_agent, plan.collect])
    assert "REAL" not in everything and all("REAL" not in text for text, _ in plan.files.values())
    assert not any("secrets" in m for m in mounts_of(plan.agent_create))   # the token never enters the agent
    gateway = plan.setup[3]
    assert f"type=bind,src={MEMORY}/test-run/gateway-secrets,dst=/run/agent-gateway/secrets,readonly" \
        in mounts_of(gateway)
    assert shlex.join(["--user", "65532:65532"]) in shlex.join(gateway) and "--read-only" in gateway


def test_networks_and_teardown(repo, tmp_path):
    plan, _, _ = planned(options(repo, tmp_path))
    assert plan.setup[0][:5] == ["podman", "network", "create", "--internal", "--disable-dns"]
    assert values_of(plan.agent_create, "--network") == [f"{plan.names['internal']}:ip={plan.addresses['agent']}"]
    removed = {a[-1] for a in plan.teardown}
    assert removed == {plan.names[r] for r in ("agent", "collector", "gateway", "proxy", "internal", "outside")}
    plan, _, _ = planned(options(repo, tmp_path, outside_network="test-outside"))
    assert not any("test-outside" in a for a in plan.teardown)
    assert len([a for a in plan.setup if a[1] == "network"]) == 1


def test_a_missing_key_for_the_cli_is_refused_in_plain_english(repo, tmp_path):
    with pytest.raises(RunError, match="claude needs an Anthropic key: pass --key-file anthropic=PATH"):
        planned(options(repo, tmp_path, key_sources=[]))
    with pytest.raises(RunError, match="codex needs an OpenAI key"):
        planned(options(repo, tmp_path, cli="codex"))


@pytest.mark.parametrize("where", ["home", "parent-of-home", "ssh", "root"])
def test_host_home_and_secret_paths_are_refused_as_workspace(tmp_path, where):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    target = {"home": home, "parent-of-home": tmp_path, "ssh": home / ".ssh", "root": Path("/")}[where]
    with pytest.raises(RunError, match="refusing to use"):
        planned(options(target, tmp_path, home=home))


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


def test_run_dir_inside_the_workspace_is_refused(repo, tmp_path):
    with pytest.raises(RunError, match="inside the workspace"):
        planned(options(repo, tmp_path, run_dir=repo / "logs"))


def test_print_shows_the_whole_plan_runs_nothing_and_takes_a_root_owned_repo(repo, tmp_path, capsys, monkeypatch):
    key = tmp_path / "key"
    key.write_text("sk-ant-REAL-0123456789")
    assert repo.stat().st_uid == 0
    before = sorted(str(p) for p in repo.rglob("*"))
    monkeypatch.setenv("PATH", "/nonexistent")  # no podman; git only as found at import, to read the repository
    code = main(["--print", "--profile", "autonomous", "--workspace", str(repo), "--key-file", f"anthropic={key}",
                 "--run-dir", str(tmp_path / "run"), "claude", "-p", "hi"])
    out = capsys.readouterr().out
    assert code == 0, out
    for expected in ("# copy: ", "podman network create --internal --disable-dns", "podman start --attach",
                     "podman run --rm --name agent-sandbox-", "git bundle verify", "refs/agent/",
                     "WARNING: blocked files left out of the copy: .env"):
        assert expected in out, expected
    assert "REAL" not in out
    assert not (tmp_path / "run").exists() and sorted(str(p) for p in repo.rglob("*")) == before


def test_cli_errors_are_clear_and_exit_2(repo, capsys):
    assert main(["--print", "--workspace", str(repo), "--key-file", "mistral=/x", "claude"]) == 2
    assert "VENDOR one of" in capsys.readouterr().err
    assert main(["--print", "--profile", "nonexistent", "--workspace", str(repo), "claude"]) == 2
    assert "nonexistent" in capsys.readouterr().err


def test_a_terminal_gets_an_interactive_container(repo, tmp_path):
    plan, _, _ = planned(options(repo, tmp_path, interactive=True))
    assert "--interactive" in plan.agent_create and "--tty" in plan.agent_create
    assert plan.start_agent == ["podman", "start", "--attach", "--interactive", plan.names["agent"]]
    plan, _, _ = planned(options(repo, tmp_path))
    assert "--tty" not in plan.agent_create and "--interactive" not in plan.start_agent


def test_a_symlinked_protected_folder_is_never_mounted_from_the_host(tmp_path):
    # --mount: a bind mount follows links on the host: `.claude -> ~/.ssh` must not bring ~/.ssh in.
    secrets = tmp_path / "home" / ".ssh"
    secrets.mkdir(parents=True)
    (secrets / "id_ed25519").write_text("PRIVATE")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".claude").symlink_to(secrets)
    (ws / "CLAUDE.md").symlink_to(secrets / "id_ed25519")
    os.chown(ws, 1234, 1234)
    plan, _, _ = planned(options(ws, tmp_path, mode="mount"))
    assert not any(str(secrets) in m or ".claude" in m or "CLAUDE.md" in m for m in mounts_of(plan.agent_create))


def test_image_names_come_from_the_contract(repo, tmp_path):
    opts = options(repo, tmp_path)
    plan, host, steps = planned(opts)
    assert layout.IMAGES["agent"].ref in plan.agent_create
    assert layout.IMAGES["proxy"].ref in plan.setup[2] and layout.IMAGES["gateway"].ref in plan.setup[3]
    assert "# copy:" in format_plan(plan, opts, host, steps)


def test_a_taken_subnet_is_skipped():
    assert free_subnet("10.213.7.0/24", {"10.213.7.0/24", "10.213.8.0/24"}) == "10.213.9.0/24"
    assert free_subnet("10.213.254.0/24", {"10.213.254.0/24"}) == "10.213.1.0/24"
    with pytest.raises(RunError, match="every 10.213.N.0/24 is taken"):
        free_subnet("10.213.1.0/24", {f"10.213.{n}.0/24" for n in range(1, 255)})


def test_the_runs_id_range_must_be_no_accounts(tmp_path):
    (tmp_path / "passwd").write_text("root:x:0:0::/root:/bin/sh\nodd:x:1700000500:1::/:/bin/sh\n")
    (tmp_path / "subuid").write_text("alice:1700065000:65536\n")
    assert "odd with uid 1700000500" in id_range_problem(ID_BASE, ID_RANGE, tmp_path / "passwd", ())
    assert "subuid gives alice" in id_range_problem(ID_BASE + ID_RANGE, ID_RANGE, tmp_path / "none",
                                                    (tmp_path / "subuid",))
    assert id_range_problem(ID_BASE + 4 * ID_RANGE, ID_RANGE, tmp_path / "passwd", (tmp_path / "subuid",)) is None


# --- GitHub and the registries: through the gateway only, the token never in the agent's container -

def test_a_run_with_a_github_token_walls_github_and_tells_the_agent_its_branches(repo, tmp_path):
    github = GitHubOptions(token_source=KeySource("github", command=("vault", "read")), repository="octo/widgets")
    plan, host, _ = planned(options(repo, tmp_path, github=github, profile="autonomous"))
    assert host.github_repository == "octo/widgets"
    config = json.loads(plan.files[tmp_path / "run" / "gateway" / "config.json"][0])
    assert config["github"]["secret"] == "github" and config["github"]["policy"]["repository"] == "octo/widgets"
    assert config["github"]["policy"]["ref_namespace"] == "refs/heads/agent/test-run"
    assert [(r["name"], r["port"]) for r in config["github"]["routes"]] == [("github", 80), ("npm", 8086)]
    gateway = plan.setup[3]
    assert shlex.join(["--sysctl", "net.ipv4.ip_unprivileged_port_start=80"]) in shlex.join(gateway)
    env = dict(e.split("=", 1) for e in values_of(plan.agent_create, "--env"))
    assert env["AGENT_GITHUB_BRANCHES"] == "agent/test-run" and env["GH_REPO"] == "github.localhost/octo/widgets"
    assert env["GH_HOST"] == "github.localhost" and "GH_TOKEN" not in env and "GITHUB_TOKEN" not in env
    git_config = parse_git_config_parameters(env["GIT_CONFIG_PARAMETERS"])
    rewrites = {value for key, value in git_config if key == "url.http://github.localhost/.insteadOf"}
    assert {"https://github.com/", "git@github.com:", "ssh://git@github.com/"} <= rewrites
    gateway_ip = plan.addresses["gateway"]
    assert ("http.curloptResolve", f"github.localhost:80:{gateway_ip}") in git_config
    # Codex's shell drops variables named like *KEY*, *TOKEN*, *SECRET*: git's settings must not be
    assert not [name for name in env if name.startswith("GIT_") and
                any(word in name for word in ("KEY", "TOKEN", "SECRET"))]
    assert {"github.localhost", "api.github.localhost", "agent-gateway"} <= set(env["NO_PROXY"].split(","))
    assert env["NPM_CONFIG_REGISTRY"] == "http://agent-gateway:8086/"
    hosts = values_of(plan.agent_create, "--add-host")
    assert f"github.localhost:{gateway_ip}" in hosts and f"api.github.localhost:{gateway_ip}" in hosts
    squid = plan.files[tmp_path / "run" / "squid" / "squid.conf"][0]
    assert not any("github.com" in line or "registry.npmjs.org" in line
                   for line in squid.splitlines() if line.startswith("acl allowlisted"))


def test_a_run_without_github_credential_reads_github_anonymously(repo, tmp_path):
    plan, host, _ = planned(options(repo, tmp_path))
    config = json.loads(plan.files[tmp_path / "run" / "gateway" / "config.json"][0])
    assert config["github"]["secret"] is None and config["github"]["policy"]["repository"] is None
    env = dict(e.split("=", 1) for e in values_of(plan.agent_create, "--env"))
    assert host.github_repository is None and "GH_REPO" not in env and "AGENT_GITHUB_BRANCHES" not in env
    assert env["GH_HOST"] == "github.localhost"


def test_the_repository_comes_from_origin_read_as_the_repositorys_owner(user_tmp, tmp_path):
    repo = make_repo(user_tmp, {"README.md": "x"}, owner=USER)
    git(repo, "remote", "add", "origin", "gh:octo/widgets")
    # The user's own insteadOf rule, in the repository's config: git run as its owner applies it.
    git(repo, "config", "url.git@github.com:.insteadOf", "gh:")
    github = GitHubOptions(token_source=KeySource("github", command=("vault",)))
    _, host, _ = planned(options(repo, tmp_path, github=github))
    assert host.github_repository == "octo/widgets"
    git(repo, "remote", "set-url", "origin", "https://gitlab.com/octo/widgets.git")
    with pytest.raises(ValueError, match="--github-repository OWNER/NAME"):
        planned(options(repo, tmp_path, github=github))
    git(repo, "remote", "remove", "origin")
    with pytest.raises(RunError, match="no git remote 'origin'.*--github-repository"):
        planned(options(repo, tmp_path, github=github))
    assert planned(options(repo, tmp_path))[1].github_repository is None  # no credential: no remote needed


def test_print_names_the_github_source_and_reads_no_app_key(repo, tmp_path, capsys, monkeypatch):
    key = tmp_path / "key"
    key.write_text("sk-ant-REAL-0123456789")
    app_key = tmp_path / "app.pem"
    app_key.write_text("not a key at all, and readable by everyone")
    app_key.chmod(0o644)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    code = main(["--print", "--profile", "autonomous", "--workspace", str(repo), "--key-file", f"anthropic={key}",
                 "--github-app-id", "4242", "--github-app-key", str(app_key), "--github-repository", "octo/widgets",
                 "--run-dir", str(tmp_path / "run"), "claude", "-p", "hi"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "# GitHub: mint a GitHub App installation token for octo/widgets (contents:write" in out
    assert "gateway-secrets/github (0400, uid 65532)" in out and "never in the agent's container" in out
    assert "pushes only to agent/" in out
    code = main(["--workspace", str(repo), "--key-file", f"anthropic={key}", "--github-app-id", "4242",
                 "--github-app-key", str(app_key), "--github-repository", "octo/widgets", "claude", "-p", "hi"])
    assert code == 2 and "chmod 600" in capsys.readouterr().err   # a real run reads and checks the key first


def test_a_classic_token_is_refused_before_anything_starts(repo, tmp_path, capsys):
    key, token = tmp_path / "key", tmp_path / "token"
    key.write_text("sk-ant-REAL-0123456789")
    token.write_text("ghp_" + "c" * 36)
    opts = options(repo, tmp_path, github=GitHubOptions(token_source=KeySource("github", file=token),
                                                        repository="octo/widgets"))
    from launcher.github_app import GitHubError, obtain
    with pytest.raises(GitHubError, match="classic personal access token.*--allow-long-lived-token"):
        obtain(opts.github, "octo/widgets")


def test_engines_that_hold_no_github_token_refuse_github_options(repo, tmp_path, capsys):
    key = tmp_path / "key"
    key.write_text("sk-ant-REAL-0123456789")
    code = main(["--print", "--engine", "kubernetes", "--workspace", str(repo), "--key-file", f"anthropic={key}",
                 "--github-token-file", str(key), "claude", "-p", "hi"])
    assert code == 2 and "--github-token-file: --engine kubernetes holds no GitHub token" in capsys.readouterr().err
