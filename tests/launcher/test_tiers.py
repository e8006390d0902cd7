"""launcher.tiers: the gitignore-style globs of the file tiers."""
from __future__ import annotations

import pytest

from launcher.tiers import BUILT_IN_READ_ONLY, blocked_paths, first_match, glob_matches, read_only_patterns


@pytest.mark.parametrize("pattern,path,expected", [
    ("CLAUDE.md", "CLAUDE.md", True), ("CLAUDE.md", "a/b/CLAUDE.md", True), ("**/AGENTS.md", "AGENTS.md", True),
    ("**/AGENTS.md", "x/y/AGENTS.md", True), (".claude/**", ".claude/a/b", True), (".claude/**", "x/.claude/a", False),
    (".git/config", ".git/config", True), (".git/config", "sub/.git/config", False), (".env.*", "a/.env.local", True),
    ("**/*.pem", "a/b.pem", True), ("**/*.pem", "a/b.pem.txt", False),
    ("**/.git*", ".gitattributes", True), ("**/.git*", "sub/.gitmodules", True), ("**/.git*", ".github/x.yml", False),
])
def test_gitignore_style_globs(pattern, path, expected):
    assert glob_matches(pattern, path) is expected


def test_read_only_is_the_profile_plus_the_built_in_list():
    patterns = read_only_patterns(("CLAUDE.md", "docs/policy.md", ".git/hooks/**", ".git/config"))
    assert patterns[:2] == ("CLAUDE.md", "docs/policy.md")
    assert set(BUILT_IN_READ_ONLY) <= set(patterns) and ".git/config" not in patterns
    for path in ("GEMINI.md", "sub/AGENTS.md", ".codex/config.toml", ".gemini/settings.json", ".mcp.json",
                 ".github/workflows/ci.yml", ".gitattributes", "lib/.gitignore", "docs/policy.md"):
        assert first_match(patterns, path), path
    assert first_match(patterns, "src/main.py") is None


def test_blocked_paths():
    assert blocked_paths({".env", "a/.env", "src/x.py", "k.pem"}, (".env", "**/.env", "**/*.pem")) == \
        [".env", "a/.env", "k.pem"]
