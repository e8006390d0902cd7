"""The install's pieces on their own: the order of strictness, merging in and taking out, and a
write that fails half-way."""

import io
import json
import os

import pytest
import tomlkit

from render_helpers import REPO
from renderer import install
from renderer.install import documents, locations, merge, strictness
from renderer.model import load
from renderer.outputs import render_profile


def test_every_scalar_the_interactive_profile_merges_has_an_order_of_strictness():
    """A renderer that starts setting a new scalar in a user's file must first say here how strict
    its values are; otherwise the install could not tell whether the user's value is stricter."""
    missing = []
    for rendered, out in render_profile(load("interactive", REPO)).items():
        kind = locations.MERGED.get(rendered)
        if kind is None:
            assert locations.is_owned(rendered), f"{rendered}: neither merged nor the project's own"
            continue
        document = json.loads(out.content) if out.format == "json" else tomlkit.parse(out.content.decode()).unwrap()
        for path, value in merge.leaves(document).items():
            if isinstance(value, list) and not isinstance(strictness.order_for(kind, path), strictness.AllowList):
                continue
            order = strictness.order_for(kind, path)
            if order is None:
                missing.append(f"{rendered}: {'.'.join(path)}")
            elif isinstance(order, strictness.Ranked):
                assert order.rank(value) is not None, f"{rendered}: {'.'.join(path)} = {value!r} is not in its order"
    assert missing == []


@pytest.mark.parametrize("kind, path, users, ours, value, kept", [
    ("codex-config", ("approval_policy",), "untrusted", "on-request", "untrusted", True),
    ("codex-config", ("approval_policy",), "never", "on-request", "on-request", False),
    ("codex-config", ("approval_policy",), {"granular": {"rules": False}}, "on-request", {"granular": {"rules": False}}, True),
    ("codex-config", ("approval_policy",), "sometimes", "on-request", "on-request", False),  # cannot rank: ours
    ("codex-config", ("sandbox_mode",), "read-only", "workspace-write", "read-only", True),
    ("codex-config", ("shell_environment_policy", "inherit"), "none", "all", "none", True),
    ("claude-settings", ("permissions", "defaultMode"), "dontAsk", "default", "dontAsk", True),
    ("claude-settings", ("permissions", "defaultMode"), "manual", "default", "manual", True),  # an alias: equal
    ("claude-settings", ("permissions", "defaultMode"), "acceptEdits", "default", "default", False),
    ("claude-settings", ("env", "DISABLE_TELEMETRY"), "0", "1", "1", False),
    ("gemini-settings", ("security", "disableYoloMode"), False, True, True, False),
    ("codex-requirements", ("allowed_sandbox_modes",), ["read-only"], ["read-only", "workspace-write"], ["read-only"], True),
    ("codex-requirements", ("allowed_sandbox_modes",), ["read-only", "danger-full-access"], ["read-only", "workspace-write"],
     ["read-only"], False),
])
def test_strictness_decides(kind, path, users, ours, value, kept):
    decision = strictness.decide(kind, path, users, ours)
    assert (decision.value, decision.keep_users) == (value, kept)


def test_an_unknown_setting_has_no_order_and_says_where_to_add_one():
    with pytest.raises(KeyError, match="renderer/install/strictness.py"):
        strictness.decide("codex-config", ("model",), "o3", "o4")


@pytest.mark.parametrize("fmt, text", [
    ("toml", 'a = 1  # mine\n[t]\nlist = ["x"]\n'),
    ("json", '{\n\t"a": 1,\n\t"t": {"list": ["x"]}\n}'),
])
def test_apply_then_unapply_is_the_identity(fmt, text):
    ours = {"t": {"list": ["y", "x"], "flag": False}, "new": {"k": "v"}}
    document = documents.parse(text, fmt, "f")
    kind = "test"
    strictness.ORDERS[kind] = {"t.flag": strictness.OFF_IS_STRICTER, "new.k": strictness.ProfileValueStrictest()}
    try:
        changes, _ = merge.apply(document, ours, kind, fmt)
        merged = documents.plain(document)
        assert merged["t"] == {"list": ["x", "y"], "flag": False} and merged["new"] == {"k": "v"}
        merge.unapply(document, json.loads(json.dumps(changes)), fmt)
    finally:
        del strictness.ORDERS[kind]
    assert documents.plain(document) == documents.plain(documents.parse(text, fmt, "f"))
    if fmt == "toml":  # tomlkit gives back the very text; JSON is re-serialized (the install keeps the original)
        assert documents.dump(document, fmt).decode() == text


def test_a_write_that_fails_half_way_puts_back_what_it_wrote(tmp_path, monkeypatch):
    home = tmp_path
    (home / ".codex").mkdir()
    (home / ".codex/config.toml").write_text('model = "o3"\n')
    (home / ".claude").mkdir()
    (home / ".claude/settings.json").write_text('{"model": "opus"}\n')
    before = {p: p.read_bytes() for p in home.rglob("*") if p.is_file()}
    real = install.write_file_atomic
    calls = []

    def failing(path, content, mode=0o644):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(path, content, mode)

    monkeypatch.setattr(install, "write_file_atomic", failing)
    env = {k: v for k, v in os.environ.items() if k not in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME")}
    with pytest.raises(OSError, match="No space left"):
        install.run(REPO, "interactive", home, env, out=io.StringIO())
    after = {p: p.read_bytes() for p in home.rglob("*") if p.is_file() and ".agent-sandbox-backup-" not in p.name}
    assert after == before
    assert not (home / ".config/agent-sandbox/install-state.json").exists()
