"""image/layout.py holds the image paths and names as literals (the guard imports it on every
tool call); here every one of them is held to image/contract.json and to what the renderer
really writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from image import layout

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = json.loads((ROOT / "image" / "contract.json").read_text())


def test_agent_paths_are_the_contracts() -> None:
    user, baked = CONTRACT["user"], CONTRACT["baked"]
    assert (layout.AGENT_USER, layout.AGENT_UID, layout.AGENT_GID, layout.HOME) == (
        user["name"], user["uid"], user["gid"], user["home"])
    assert CONTRACT["config"]["User"] == f"{layout.AGENT_UID}:{layout.AGENT_GID}"
    assert layout.WORKSPACE == CONTRACT["config"]["WorkingDir"]
    assert layout.SHIMS_DIR == baked["shims_dir"]
    assert layout.SHIMS_PROFILE_D == baked["shims_profile_d"]
    assert layout.RUNTIME_PROFILES_DIR == baked["runtime_profiles_dir"]
    assert layout.MANIFEST == baked["manifest"]["path"]
    assert layout.SEED_DIR == baked["seed_dir"]
    assert CONTRACT["env"]["PATH"].split(":")[0] == layout.SHIMS_DIR
    assert CONTRACT["env"]["HOME"] == layout.HOME
    for name in baked["profiles"]:
        assert layout.runtime_profile(name) in baked["required_files"]


def test_service_paths_are_the_contracts() -> None:
    gateway, proxy = CONTRACT["images"]["gateway"], CONTRACT["images"]["proxy"]
    user = gateway["user"]
    assert (layout.GATEWAY_USER, layout.GATEWAY_UID, layout.GATEWAY_GID) == (user["name"], user["uid"], user["gid"])
    assert gateway["config"]["User"] == f"{layout.GATEWAY_UID}:{layout.GATEWAY_GID}"
    assert {
        "config": layout.GATEWAY_CONFIG, "secrets_dir": layout.GATEWAY_SECRETS_DIR,
        "state_dir": layout.GATEWAY_STATE_DIR, "ready": layout.GATEWAY_READY,
        "log_dir": layout.GATEWAY_LOG_DIR, "access_log": layout.GATEWAY_ACCESS_LOG,
    } == gateway["paths"]
    assert {"config": layout.PROXY_CONFIG, "include_dir": layout.PROXY_INCLUDE_DIR,
            "log_dir": layout.PROXY_LOG_DIR} == proxy["paths"]


def test_image_names_are_the_contracts() -> None:
    assert set(layout.IMAGES) == set(CONTRACT["images"]) == {"agent", "proxy", "gateway"}
    for role, image in layout.IMAGES.items():
        entry = CONTRACT["images"][role]
        assert image.role == role
        assert (image.name, image.tag, image.flake_package) == (entry["name"], entry["tag"], entry["flake_package"])
        config = CONTRACT["config"] if role == "agent" else entry["config"]
        assert list(image.entrypoint) == config["Entrypoint"]
        assert list(image.cmd) == config.get("Cmd", [])
    assert layout.AGENT_IMAGE.ref == "agent-image:latest"
    assert layout.PROXY_IMAGE.ref == "egress-proxy:latest"
    assert layout.GATEWAY_IMAGE.ref == "agent-gateway:latest"
    assert layout.GATEWAY_IMAGE.tagged("test") == "agent-gateway:test"
    assert layout.GATEWAY_IMAGE.nix_build == "nix build .#gateway-image && ./result | podman load"


def test_the_stand_in_build_command_is_one_the_builder_takes() -> None:
    sys.path.insert(0, str(ROOT / "image" / "debian"))
    try:
        import build
    finally:
        sys.path.remove(str(ROOT / "image" / "debian"))
    for image in layout.IMAGES.values():
        command = image.stand_in_build.split()
        assert command[:2] == ["python3", "image/debian/build.py"]
        options = build.command_line().parse_args(command[2:])
        assert (options.image, options.tag, options.load) == ([image.role], image.tag, True)


def test_the_renderer_writes_where_the_layout_says(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = subprocess.run([sys.executable, "-m", "renderer.cli", "--root", str(ROOT), "--image-root", str(root),
                             *CONTRACT["baked"]["render_args"]], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((root / layout.MANIFEST.lstrip("/")).read_text())
    files = set(manifest["files"])
    assert any(path.startswith(layout.SHIMS_DIR + "/") for path in files)
    assert any(path.startswith(layout.SEED_DIR + "/") for path in files)
    assert layout.SHIMS_PROFILE_D in files
    for name in CONTRACT["baked"]["profiles"]:
        assert layout.runtime_profile(name) in files
    assert any(path.startswith(layout.HOME + "/") for path in files)
    proxy_root = tmp_path / "proxy"
    result = subprocess.run([sys.executable, "-m", "renderer.cli", "--root", str(ROOT), "--image-root", str(proxy_root),
                             *CONTRACT["images"]["proxy"]["render_args"]], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (proxy_root / layout.PROXY_CONFIG.lstrip("/")).is_file()
    assert (proxy_root / layout.PROXY_INCLUDE_DIR.lstrip("/")).is_dir()


@pytest.mark.parametrize("module", ["image.layout"])
def test_importing_it_loads_nothing_but_itself(module: str) -> None:
    """The hook imports it on every tool call: no third-party module, no heavy stdlib one."""
    probe = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); before = set(sys.modules); import {module}; "
             "print('\\n'.join(sorted(set(sys.modules) - before)))")
    result = subprocess.run([sys.executable, "-I", "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["image", "image.layout"]


def test_the_docs_name_each_image_as_the_contract_does() -> None:
    doc = (ROOT / "docs" / "image.md").read_text()
    for role, image in layout.IMAGES.items():
        row = f"| {role} | `{image.ref}` | `.#{image.flake_package}` |"
        assert row in doc, f"docs/image.md: no row {row!r} in the image names table"
