"""The command line each CLI gets: its bypass exactly once, the user's choices respected."""

import pytest

from entrypoint.tools import UsageError, build_argv, claude_argv, codex_argv, gemini_argv

CODEX_BYPASS = ["-c", 'approval_policy="never"', "-c", 'sandbox_mode="danger-full-access"']


def test_claude_gets_the_skip_flag_once():
    assert claude_argv(["-p", "fix it"], ci=False) == ["--dangerously-skip-permissions", "-p", "fix it"]
    assert claude_argv(["--dangerously-skip-permissions", "-p", "x"], ci=False).count("--dangerously-skip-permissions") == 1


def test_claude_respects_a_permission_mode_the_user_chose():
    assert claude_argv(["--permission-mode", "plan", "-p", "x"], ci=False) == ["--permission-mode", "plan", "-p", "x"]
    assert claude_argv(["--permission-mode=bypassPermissions"], ci=False) == ["--permission-mode=bypassPermissions"]


def test_claude_ci_print_runs_stream_json_verbose_replacing_the_users_format():
    argv = claude_argv(["-p", "x", "--output-format", "json"], ci=True)
    assert argv == ["--dangerously-skip-permissions", "--output-format", "stream-json", "--verbose", "-p", "x"]
    assert claude_argv(["-p", "x", "--verbose"], ci=True).count("--verbose") == 1
    # Interactive runs have no machine output to switch to.
    assert claude_argv(["fix"], ci=True) == ["--dangerously-skip-permissions", "fix"]


def test_codex_runs_exec_with_never_and_full_access():
    assert codex_argv(["fix the test"], ci=False) == ["exec", *CODEX_BYPASS, "fix the test"]


def test_codex_keeps_an_exec_the_user_passed_and_global_options_before_it():
    assert codex_argv(["exec", "fix"], ci=False) == ["exec", *CODEX_BYPASS, "fix"]
    assert codex_argv(["-m", "o3", "exec", "fix"], ci=False) == ["-m", "o3", "exec", *CODEX_BYPASS, "fix"]
    assert codex_argv(["e", "fix"], ci=False) == ["e", *CODEX_BYPASS, "fix"]


def test_codex_never_adds_a_second_bypass():
    assert codex_argv(["exec", "--yolo", "fix"], ci=False) == ["exec", "--yolo", "fix"]
    assert codex_argv(["--dangerously-bypass-approvals-and-sandbox", "exec", "x"], ci=False) == \
        ["--dangerously-bypass-approvals-and-sandbox", "exec", "x"]
    argv = codex_argv(["exec", "-s", "read-only", "x"], ci=False)
    assert 'sandbox_mode="danger-full-access"' not in argv and 'approval_policy="never"' in argv
    argv = codex_argv(["exec", "-c", "approval_policy=on-request", "x"], ci=False)
    assert 'approval_policy="never"' not in argv


def test_codex_ci_adds_json_and_the_ci_profile_once():
    assert codex_argv(["exec", "x"], ci=True) == ["exec", *CODEX_BYPASS, "--json", "--profile", "ci", "x"]
    argv = codex_argv(["exec", "--json", "--profile", "mine", "x"], ci=True)
    assert argv.count("--json") == 1 and "ci" not in argv


def test_gemini_gets_approval_mode_yolo_and_normalises_yolo_flags():
    assert gemini_argv(["-p", "x"], ci=False) == ["--approval-mode", "yolo", "-p", "x"]
    assert gemini_argv(["-y", "-p", "x"], ci=False) == ["--approval-mode", "yolo", "-p", "x"]
    assert gemini_argv(["--yolo", "--approval-mode", "yolo", "-p", "x"], ci=False) == ["--approval-mode", "yolo", "-p", "x"]
    assert gemini_argv(["--approval-mode=plan", "-p", "x"], ci=False) == ["--approval-mode=plan", "-p", "x"]


def test_gemini_refuses_yolo_with_another_approval_mode():
    with pytest.raises(UsageError, match="contradict"):
        gemini_argv(["--yolo", "--approval-mode", "plan"], ci=False)


def test_gemini_ci_uses_stream_json():
    assert gemini_argv(["-p", "x", "-o", "text"], ci=True) == ["-o", "stream-json", "--approval-mode", "yolo", "-p", "x"]


def test_arguments_after_double_dash_are_the_users_text():
    assert claude_argv(["-p", "--", "--dangerously-skip-permissions"], ci=False)[0] == "--dangerously-skip-permissions"
    assert gemini_argv(["-p", "--", "-y"], ci=False) == ["--approval-mode", "yolo", "-p", "--", "-y"]


def test_unknown_tool():
    with pytest.raises(UsageError, match="claude, codex, gemini"):
        build_argv("aider", [], ci=False)


@pytest.mark.parametrize("tool,args", [
    ("claude", ["mcp", "list"]), ("claude", ["doctor"]), ("claude", ["--version"]),
    ("codex", ["login", "status"]), ("codex", ["-c", "x=1", "mcp", "list"]), ("codex", ["--help"]),
    ("gemini", ["extensions", "list"]), ("gemini", ["-v"]),
])
def test_management_subcommands_pass_through_untouched(tool, args):
    assert build_argv(tool, args, ci=False) == args
    assert build_argv(tool, args, ci=True) == args


def test_a_prompt_that_only_looks_like_a_subcommand_later_still_gets_the_bypass():
    assert build_argv("codex", ["fix", "login", "bug"], ci=False)[0] == "exec"
    assert build_argv("claude", ["-p", "doctor the tests"], ci=False)[0] == "--dangerously-skip-permissions"
