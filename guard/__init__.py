"""agent-guard, the tripwire; its version is the project's (pyproject.toml, held to it by a test)."""

__version__ = "0.1.0"
