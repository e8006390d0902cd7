"""--image-root: the tree an image bakes, with a manifest the entrypoint can trust."""

import hashlib
import json
import stat
import tomllib

from render_helpers import REPO, run_render


def render_root(tmp_path, *profiles):
    root = tmp_path / "image-root"
    extra = [a for p in profiles for a in ("--profile", p)]
    result = run_render("--image-root", root, *extra)
    assert result.returncode == 0, result.stderr
    return root


def test_tree_and_manifest(tmp_path):
    root = render_root(tmp_path)
    manifest = json.loads((root / "etc/agent-sandbox/manifest.json").read_text())
    assert manifest["profiles"] == ["autonomous", "ci"]
    for path, entry in manifest["files"].items():
        on_disk = root / path.lstrip("/")
        assert hashlib.sha256(on_disk.read_bytes()).hexdigest() == entry["sha256"], path
        assert f"{stat.S_IMODE(on_disk.stat().st_mode):04o}" == entry["mode"], path
        assert entry["owner"] == 0
        if entry["format"] == "json":
            json.loads(on_disk.read_text())
        elif entry["format"] == "toml":
            tomllib.loads(on_disk.read_text())
    files = manifest["files"]
    for expected in (
        "/etc/claude-code/managed-settings.json", "/home/agent/.claude/settings.json",
        "/etc/codex/requirements.toml", "/etc/codex/rules/agent-sandbox.rules", "/home/agent/.codex/config.toml",
        "/etc/gemini-cli/settings.json", "/etc/gemini-cli/policies/agent-sandbox.toml",
        "/etc/agent-sandbox/profiles/autonomous.json", "/etc/agent-sandbox/profiles/ci.json",
        "/usr/lib/agent-sandbox/shims/git", "/usr/lib/agent-sandbox/shims/gh",
        "/usr/lib/agent-sandbox/shims/npm", "/usr/lib/agent-sandbox/shims/cargo",
    ):
        assert expected in files, expected
    assert files["/home/agent/.codex/ci.config.toml"]["profiles"] == ["ci"]
    assert files["/etc/claude-code/managed-settings.json"]["profiles"] == ["autonomous", "ci"]
    assert files["/usr/lib/agent-sandbox/shims/git"]["mode"] == "0555"
    # only what the manifest lists (and the manifest and the marker) is in the tree
    on_disk = {"/" + str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert on_disk == set(files) | {"/etc/agent-sandbox/manifest.json", "/.agent-image-root"}


def test_same_as_committed_render(tmp_path):
    root = render_root(tmp_path, "autonomous")
    committed = REPO / "rendered" / "autonomous"
    assert (root / "etc/claude-code/managed-settings.json").read_bytes() == (committed / "etc/claude-code/managed-settings.json").read_bytes()
    assert (root / "home/agent/.codex/config.toml").read_bytes() == (committed / "home/agent/dot_codex/config.toml").read_bytes()


def test_re_render_into_an_image_root_replaces_it(tmp_path):
    root = render_root(tmp_path, "autonomous")
    assert not (root / "home/agent/.codex/ci.config.toml").exists()
    (root / "etc" / "leftover").write_text("x")
    render_root(tmp_path, "autonomous", "ci")
    assert (root / "home/agent/.codex/ci.config.toml").exists()
    assert not (root / "etc" / "leftover").exists()
