"""Gemini's admin hook can be switched off from settings the agent writes; the entrypoint refuses that state."""

import json

from entrypoint import main


def write_settings(folder, document):
    (folder / ".gemini").mkdir(parents=True, exist_ok=True)
    (folder / ".gemini" / "settings.json").write_text(json.dumps(document))


def test_clean_home_and_workspace(tmp_path):
    write_settings(tmp_path / "home", {"ui": {"theme": "x"}})
    assert main.gemini_hook_problems({}, str(tmp_path / "home"), str(tmp_path / "ws")) == []


def test_workspace_settings_disabling_the_hook(tmp_path):
    write_settings(tmp_path / "ws", {"hooksConfig": {"disabled": ["agent-guard"]}})
    problems = main.gemini_hook_problems({}, str(tmp_path / "home"), str(tmp_path / "ws"))
    assert len(problems) == 1 and "ws/.gemini/settings.json configures hooks" in problems[0]


def test_user_settings_with_their_own_hooks(tmp_path):
    write_settings(tmp_path / "home", {"hooks": {"BeforeTool": []}})
    assert main.gemini_hook_problems({}, str(tmp_path / "home"), str(tmp_path / "ws"))


def test_system_settings_moved_by_a_variable(tmp_path):
    problems = main.gemini_hook_problems({"GEMINI_CLI_SYSTEM_SETTINGS_PATH": "/tmp/mine.json"}, str(tmp_path), str(tmp_path))
    assert problems == ["GEMINI_CLI_SYSTEM_SETTINGS_PATH is set; the baked /etc/gemini-cli settings must be the ones gemini reads"]
