"""File tiers on the launcher's side: which paths of a repository are blocked (never copied in)
and which are read-only (every change to them is flagged at review and refused at apply).

Pure functions over workspace-relative paths with "/" separators.
"""
from __future__ import annotations

import fnmatch

# Read-only whatever the profile says: files the CLIs read as instructions or settings, CI
# definitions, and git's own in-tree files (attributes and modules change what git runs).
BUILT_IN_READ_ONLY = (
    "**/CLAUDE.md", "**/CLAUDE.local.md", "**/AGENTS.md", "**/AGENTS.override.md", "**/GEMINI.md",
    ".claude/**", ".codex/**", ".gemini/**", ".mcp.json", ".github/workflows/**",
    "**/.git*",
)


def glob_matches(pattern: str, relative: str) -> bool:
    """gitignore-style: a pattern without "/" matches the name at any depth; "**" spans folders."""
    if "/" not in pattern:
        return fnmatch.fnmatchcase(relative.rsplit("/", 1)[-1], pattern)
    return _match_segments(pattern.strip("/").split("/"), relative.split("/"))


def _match_segments(pattern: list[str], parts: list[str]) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match_segments(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _match_segments(pattern[1:], parts[1:])


def first_match(patterns, relative: str) -> str | None:
    return next((p for p in patterns if glob_matches(p, relative)), None)


def read_only_patterns(profile_read_only) -> tuple[str, ...]:
    """The profile's files.read_only plus the built-in list, in that order, without repeats.
    Patterns about the .git folder itself are dropped: nothing under .git travels in a commit."""
    patterns = [p for p in profile_read_only if not p.startswith(".git/")]
    return tuple(dict.fromkeys([*patterns, *BUILT_IN_READ_ONLY]))


def live_read_only(profile_read_only) -> tuple[str, ...]:
    """--mount: the profile's files.read_only (its .git/config and .git/hooks too: there the
    user's own .git is mounted) and the built-in list."""
    return tuple(dict.fromkeys([*profile_read_only, *BUILT_IN_READ_ONLY]))


def blocked_paths(paths, blocked_patterns) -> list[str]:
    return sorted(p for p in paths if first_match(blocked_patterns, p))
