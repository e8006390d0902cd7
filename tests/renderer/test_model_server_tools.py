"""network.model_server_tools: off by default (the gateway refuses server-side tools, Codex's web
search is off), on when a profile says so; anything but a boolean is refused by name."""

from renderer.codex import config_bypass
from renderer.model import load

from render_helpers import run_render


def _set(project, value: str) -> None:
    common = project / "profiles" / "common.yaml"
    common.write_text(common.read_text().replace("  model_server_tools: false\n", f"  model_server_tools: {value}\n", 1))


def test_off_by_default_and_codex_search_off():
    model = load("autonomous")
    assert model.model_server_tools is False
    assert config_bypass(model)["web_search"] == "disabled"


def test_a_profile_can_allow_them(project):
    _set(project, "true")
    model = load("autonomous", project)
    assert model.model_server_tools is True
    assert "web_search" not in config_bypass(model)


def test_a_non_boolean_is_refused_naming_the_key(project):
    _set(project, '"yes"')
    result = run_render("--root", project, "--check")
    assert result.returncode == 2
    assert "model_server_tools" in result.stderr
