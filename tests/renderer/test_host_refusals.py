"""Every route to a bypass config on the host is refused: only an image root receives one."""

import os
from pathlib import Path

import pytest

from render_helpers import REPO, run_render, tree_bytes
from renderer.outputs import committed_name

LIVE_NAMES = {".claude", ".codex", ".gemini", ".claude.json", "CLAUDE.md", "AGENTS.md", "GEMINI.md", "settings.local.json"}


def refused(target, *extra, env=None):
    result = run_render("--image-root", target, *extra, env=env)
    assert result.returncode == 2, (target, result.stdout, result.stderr)
    assert "refusing" in result.stderr or "not a bypass profile" in result.stderr, result.stderr
    return result


@pytest.mark.parametrize("target", ["/", "/etc", "/etc/claude-code", "/etc/codex/new-folder", "/home", "/root"])
def test_system_locations(target):
    before = os.path.exists(target) and sorted(os.listdir(target))
    refused(target)
    assert (os.path.exists(target) and sorted(os.listdir(target))) == before


def test_home_folder_and_everything_under_the_cli_folders(tmp_path):
    home = tmp_path / "home" / "someone"
    home.mkdir(parents=True)
    env = {**os.environ, "HOME": str(home)}
    for target in (home, home / ".claude", home / ".claude" / "x", home / ".codex" / "build", home / ".gemini", tmp_path / "home"):
        refused(target, env=env)
    assert sorted(p.name for p in home.iterdir()) == []


@pytest.mark.parametrize("var", ["CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME"])
def test_folders_named_by_the_cli_environment(tmp_path, var):
    config = tmp_path / "cfg"
    env = {**os.environ, var: str(config)}
    refused(config / "sub", env=env)
    refused(config, env=env)
    refused(tmp_path, env=env)  # contains it
    assert not config.exists()


def test_existing_folder_not_created_as_image_root(tmp_path):
    existing = tmp_path / "something"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    result = refused(existing)
    assert "was not created as an image root" in result.stderr
    assert tree_bytes(existing) == {"keep.txt": b"mine"}


def test_an_existing_empty_folder_is_filled_as_the_refusal_suggests(tmp_path):
    suggested = refused(Path("/etc")).stderr
    assert "new or empty build folder" in suggested
    empty = tmp_path / "build" / "image-root"
    empty.mkdir(parents=True)
    result = run_render("--image-root", empty)
    assert result.returncode == 0, result.stderr
    assert (empty / "etc" / "claude-code" / "managed-settings.json").is_file()


def test_symlink_into_etc(tmp_path):
    link = tmp_path / "looks-harmless"
    link.symlink_to("/etc")
    refused(link)


@pytest.mark.parametrize("profile", ["interactive"])
def test_image_root_takes_only_bypass_profiles(tmp_path, profile):
    refused(tmp_path / "root", "--profile", profile)
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("profile", ["autonomous", "ci"])
def test_install_refuses_bypass_profiles(tmp_path, profile):
    result = run_render("--install", profile, "--home", tmp_path)
    assert result.returncode == 2 and "bypass configs are written only into an image root" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_committed_renders_sit_where_no_cli_reads():
    rendered = REPO / "rendered"
    assert rendered.is_dir(), "rendered/ is committed"
    for path in rendered.rglob("*"):
        assert not (LIVE_NAMES & set(path.relative_to(rendered).parts)), path
    assert committed_name("autonomous", "/home/agent/.claude/settings.json") == "autonomous/home/agent/dot_claude/settings.json"
    assert committed_name("interactive", "~/.codex/config.toml") == "interactive/user-home/dot_codex/config.toml"


def test_show_writes_nothing(tmp_path):
    result = run_render("--show", "autonomous", cwd=tmp_path)
    assert result.returncode == 0 and "bypassPermissions" in result.stdout
    assert list(tmp_path.iterdir()) == []
    summary = result.stdout.rstrip().splitlines()[-1]
    assert summary.startswith("render-profiles: autonomous (bypass): ") and "tripwire" in summary
    shown = summary.split("shown: ", 1)[1]
    files = sum(int(part.split()[1]) for part in shown.split(", "))
    assert files == result.stdout.count("\n==> ") + result.stdout.startswith("==> ")
