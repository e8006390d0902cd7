"""The exec-time shims, run for real under /bin/sh with a stand-in for each real program."""

import json
import os
import shutil
import subprocess

import pytest
import yaml

from guard.policy import compile_policy
from render_helpers import CORPUS, runtime_of
from renderer.agreement import shim_disagreements
from renderer.shims import fast_path_table, fast_path_words, render_shim

RUNTIME = runtime_of("autonomous")
POLICY = compile_policy(RUNTIME)


@pytest.fixture
def sandbox(tmp_path):
    """shims/ first on PATH, real/ behind it; agent-guard wrapped so each Python start is logged."""
    shims, real, profiles = tmp_path / "shims", tmp_path / "real", tmp_path / "profiles"
    for d in (shims, real, profiles):
        d.mkdir()
    (profiles / "autonomous.json").write_text(json.dumps(RUNTIME))
    log = tmp_path / "python-starts.log"
    guard = shutil.which("agent-guard")
    assert guard, "agent-guard is not installed (pip install -e .)"
    wrapper = tmp_path / "guard-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {guard} "$@"\n')
    wrapper.chmod(0o755)
    for program in RUNTIME["guarded_programs"]:
        stand_in = real / program
        stand_in.write_text(f'#!/bin/sh\necho "real {program}: $*"\n')
        stand_in.chmod(0o755)
        shim = shims / program
        shim.write_text(render_shim(program, POLICY, shim_dir=str(shims), profile_dir=str(profiles),
                                    guard_command=str(wrapper)))
        shim.chmod(0o555)
    env = {"PATH": f"{shims}:{real}:/usr/bin:/bin", "HOME": str(tmp_path)}

    def run(*argv, shell=False):
        cmd = ["/bin/sh", "-c", argv[0]] if shell else list(argv)
        result = subprocess.run(cmd, capture_output=True, text=True, env=env)
        starts = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return result, starts

    return run


@pytest.mark.parametrize("argv", [
    ["git", "status"], ["git", "diff", "--stat"], ["git", "log", "--oneline", "-5"],
    ["git", "-C", "repo", "status"], ["git", "--no-pager", "log"], ["git", "-c", "a=b", "show"],
    ["gh", "pr", "list"], ["npm", "test"], ["npm", "--prefix", "x", "run"], ["cargo", "build", "--release"],
])
def test_fast_path_runs_the_real_program_without_python(sandbox, argv):
    result, starts = sandbox(*argv)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"real {argv[0]}: {' '.join(argv[1:])}\n"
    assert starts == []


@pytest.mark.parametrize("argv", [
    ["git", "push", "origin", "main"], ["git", "-C", "repo", "push"], ["git", "--unknown", "status"],
    ["gh", "repo", "view"], ["npm", "--foo", "run"], ["cargo", "+nightly", "build"], ["git"],
])
def test_checked_path_allows_and_execs(sandbox, argv):
    result, starts = sandbox(*argv)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"real {argv[0]}: {' '.join(argv[1:])}\n"
    assert len(starts) == 1 and starts[0].startswith("shim --real ")


@pytest.mark.parametrize("argv,rule", [
    (["git", "push", "origin", "main", "--force"], "git-push-force"),
    (["git", "-C", "repo", "push", "-f"], "git-push-force"),
    (["git", "push", "origin", "+main"], "git-push-force"),
    (["git", "push", "origin", ":old"], "git-push-delete"),
    (["gh", "secret", "list"], "gh-secret"),
    (["gh", "api", "-X", "DELETE", "repos/o/r"], "gh-api-delete"),
    (["npm", "publish"], "npm-publish"),
    (["cargo", "+nightly", "publish"], "cargo-publish"),
])
def test_checked_path_refuses_with_126_and_one_line(sandbox, argv, rule):
    result, starts = sandbox(*argv)
    assert result.returncode == 126
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"agent-guard: refused {rule}: ")
    assert len(starts) == 1


@pytest.mark.parametrize("script", [
    "x=git; $x push -f",
    "bash -c 'git push --force'",
    "eval \"$(printf 'gh secret list')\"",
    "f() { git push \"$@\"; }; f --force",
    "printf 'git push -f\\n' | sh",
])
def test_what_text_matchers_miss_is_refused_at_exec(sandbox, script):
    result, _ = sandbox(script, shell=True)
    assert result.returncode == 126, (result.stdout, result.stderr)
    assert "agent-guard: refused " in result.stderr


def test_shim_skips_its_own_directory_and_fails_closed_without_a_real_program(tmp_path):
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "git").write_text(render_shim("git", POLICY, shim_dir=str(shims)))
    (shims / "git").chmod(0o555)
    result = subprocess.run([str(shims / "git"), "status"], capture_output=True, text=True,
                            env={"PATH": f"{shims}:{tmp_path}/empty"})
    assert result.returncode == 127
    assert "no git on PATH" in result.stderr


def test_a_link_back_to_the_shim_is_not_taken_for_the_real_program(tmp_path):
    shims, links, real = tmp_path / "shims", tmp_path / "links", tmp_path / "real"
    for d in (shims, links, real):
        d.mkdir()
    (shims / "git").write_text(render_shim("git", POLICY, shim_dir=str(shims)))
    (shims / "git").chmod(0o555)
    (links / "git").symlink_to(shims / "git")
    (real / "git").write_text("#!/bin/sh\necho real git\n")
    (real / "git").chmod(0o755)
    result = subprocess.run([str(links / "git"), "status"], capture_output=True, text=True, timeout=10,
                            env={"PATH": f"{shims}:{links}:{real}:/usr/bin:/bin"})
    assert result.returncode == 0 and result.stdout == "real git\n"


def test_missing_profile_refuses_on_the_checked_path(tmp_path):
    shims, real = tmp_path / "shims", tmp_path / "real"
    shims.mkdir()
    real.mkdir()
    (real / "git").write_text("#!/bin/sh\necho real\n")
    (real / "git").chmod(0o755)
    (shims / "git").write_text(render_shim("git", POLICY, shim_dir=str(shims), profile_dir=str(tmp_path / "none"),
                                           guard_command=shutil.which("agent-guard")))
    (shims / "git").chmod(0o555)
    env = {"PATH": f"{shims}:{real}:/usr/bin:/bin", "AGENT_PROFILE": "autonomous"}
    result = subprocess.run([str(shims / "git"), "push"], capture_output=True, text=True, env=env)
    assert result.returncode == 126 and "not found" in result.stderr
    env["AGENT_PROFILE"] = "../../etc/x"
    result = subprocess.run([str(shims / "git"), "push"], capture_output=True, text=True, env=env)
    assert result.returncode == 126 and "not valid" in result.stderr


def test_fast_path_table_excludes_words_rules_name():
    table = fast_path_table(POLICY)
    assert set(table) >= {"git", "gh", "npm", "cargo"}
    assert "push" not in table["git"] and "status" in table["git"]
    assert not {"repo", "secret", "variable", "release", "auth", "api"} & set(table["gh"])
    assert "publish" not in table["npm"] and "publish" not in table["cargo"]
    assert RUNTIME.get("fast_path", table) == table


def test_a_rule_on_the_bare_program_disables_the_fast_path():
    policy = compile_policy({"rules": [{"id": "no-git", "reason": "r", "command": ["git"], "decision": "deny"}]})
    assert fast_path_words(policy, "git") == []
    assert "exec \"$real\" \"$@\" ;;" not in render_shim("git", policy)
    policy = compile_policy({"rules": [{"id": "no-status", "reason": "r", "command": ["git", ["status", "log"]]}]})
    assert "status" not in fast_path_words(policy, "git") and "diff" in fast_path_words(policy, "git")


def test_render_shim_rejects_unsafe_names():
    with pytest.raises(ValueError):
        render_shim("git;rm", POLICY)
    with pytest.raises(ValueError):
        render_shim("git", POLICY, shim_dir="relative/dir")


def test_shim_is_valid_posix_sh():
    dash = shutil.which("dash") or "/bin/sh"
    for program in RUNTIME["guarded_programs"]:
        result = subprocess.run([dash, "-n"], input=render_shim(program, POLICY), capture_output=True, text=True)
        assert result.returncode == 0, (program, result.stderr)
    assert os.path.exists("/bin/sh")


def test_shims_fast_path_never_skips_a_denied_command():
    deny = yaml.safe_load((CORPUS / "deny.yaml").read_text())
    assert shim_disagreements(POLICY, RUNTIME["fast_path"], [c for commands in deny.values() for c in commands]) == []
    broken = {**RUNTIME["fast_path"], "git": RUNTIME["fast_path"]["git"] + ["push"]}
    assert shim_disagreements(POLICY, broken, ["git push --force"])
