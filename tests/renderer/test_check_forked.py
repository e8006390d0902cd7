"""render-profiles --check renders and checks on two cores (a forked child takes every profile but
the last): its answer must be the one pass's answer, whether the child finishes, dies or never starts."""

import os

import pytest

from renderer import cli, forked, invariants


def one_pass(root):
    rendered = cli.render_all(root)
    return invariants.check(rendered, root)


def forked_check(root, capsys):
    code = cli.cmd_check(root)
    problems = [line.removeprefix("render-profiles: invariant broken: ")
                for line in capsys.readouterr().err.splitlines() if "invariant broken" in line]
    return code, problems


def dies_in_the_child(monkeypatch):
    check, parent = invariants.check, os.getpid()

    def check_unless_child(*args, **kwargs):
        if os.getpid() != parent:
            os._exit(3)
        return check(*args, **kwargs)

    monkeypatch.setattr(invariants, "check", check_unless_child)


def break_autonomous_gaps(project):
    gaps = project / "profiles" / "corpus" / "regex_known_gaps.yaml"
    gaps.write_text(gaps.read_text().replace(
        '  "git push origin {+,}main"', '  "git push --force": wrongly listed\n  "git push origin {+,}main"', 1))


@pytest.mark.parametrize("child", ["finishes", "dies", "never starts"])
def test_same_problems_as_one_pass(project, capsys, monkeypatch, child):
    break_autonomous_gaps(project)
    expected = one_pass(project)
    assert expected and all(p.startswith(("autonomous", "ci")) for p in expected)
    monkeypatch.setattr(forked, "spare_core", lambda: True)  # fork even when the machine is busy
    if child == "dies":
        dies_in_the_child(monkeypatch)
    elif child == "never starts":
        monkeypatch.setattr(forked.os, "fork", lambda: (_ for _ in ()).throw(OSError("no fork")))
    code, problems = forked_check(project, capsys)
    assert code == 1 and problems == expected


def test_clean_tree_through_a_dead_child_is_still_checked(project, capsys, monkeypatch):
    monkeypatch.setattr(forked, "spare_core", lambda: True)
    dies_in_the_child(monkeypatch)
    assert cli.cmd_check(project) == 0
    assert "all invariants hold" in capsys.readouterr().out


def test_a_render_error_in_an_earlier_profile_is_reported_first(project, monkeypatch):
    autonomous = project / "profiles" / "autonomous.yaml"
    autonomous.write_text(autonomous.read_text() + "\nposture: [not, a, posture]\n")
    with pytest.raises(Exception) as one:
        cli.render_all(project)
    with pytest.raises(type(one.value)) as two:
        cli.cmd_check(project)
    assert str(two.value) == str(one.value)


def test_no_child_on_a_busy_machine(project, capsys, monkeypatch):
    break_autonomous_gaps(project)
    expected = one_pass(project)
    monkeypatch.setattr(forked, "spare_core", lambda: False)
    monkeypatch.setattr(forked.os, "fork", lambda: pytest.fail("forked on a busy machine"))
    assert forked_check(project, capsys) == (1, expected)
