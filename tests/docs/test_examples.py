"""The example GitHub Actions workflow (docs/examples/) is a valid workflow by GitHub's schema, and
every agent-run command in it is one the real agent-run parser accepts."""
from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import yaml

from launcher.cli import command_parser, run_parser

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "docs" / "examples" / "github-actions-agent-run.yml"
SUBCOMMANDS = ("runs", "review", "apply", "discard")


def agent_run_commands(script: str) -> list[list[str]]:
    """The argv after each `.../agent-run` in a step's script (continuation lines joined)."""
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line.split("|")[0], comments=True)
        for index, word in enumerate(words):
            if word.endswith("/bin/agent-run") or word == "agent-run":
                commands.append(words[index + 1:])
                break
    return commands


def test_the_workflow_is_valid_by_githubs_workflow_schema():
    done = subprocess.run(["check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_agent_run_command_in_it_parses_with_the_real_parser():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    commands = [argv for step in workflow["jobs"]["run"]["steps"] for argv in agent_run_commands(step.get("run", ""))]
    assert [argv[0] if argv[0] in SUBCOMMANDS else "run" for argv in commands] == ["run", "review", "apply"]
    for argv in commands:
        if argv[0] in SUBCOMMANDS:
            command_parser(argv[0]).parse_args(argv[1:])
        else:
            args = run_parser().parse_args(argv)
            assert args.profile == "ci"
