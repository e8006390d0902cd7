"""The interactive matrix (docs/interactive-matrix.md): the three real CLIs in their normal
interactive-profile mode, headless and in their own terminal UI, with the profile installed as a
user installs it, next to each CLI's own defaults. One run of the whole matrix serves every test."""

import dataclasses

import pytest

from . import interactive_matrix as m

REGENERATE = "run `python3 tests/conformance/interactive_matrix.py --write docs/interactive-matrix.md`"


@pytest.fixture(scope="module")
def result() -> m.Matrix:
    return m.run_matrix()


def _cells(result, config, groups=None):
    for (cli, conf, mode), session in sorted(result.sessions.items()):
        if conf != config:
            continue
        for row in result.rows:
            if groups is None or row.group in groups:
                yield cli, mode, row, session.cells[row.id]


def test_every_row_shows_its_effect_when_plain_bash_runs_it():
    assert [row_id for row_id, seen in m.run_control(m.rows()).items() if not seen] == []


def test_the_effect_checks_see_nothing_when_nothing_runs():
    inert = [dataclasses.replace(row, command="true") for row in m.rows()]
    assert [row_id for row_id, seen in m.run_control(inert).items() if seen] == []


def test_every_session_ran_to_its_end(result):
    assert [f"{key}: {session.note}" for key, session in result.sessions.items() if session.note] == []


def test_reading_runs_without_a_prompt(result):
    wrong = [f"{cli} {mode} {row.id} {row.command!r}: {cell.outcome} {cell.text[:200]!r}"
             for cli, mode, row, cell in _cells(result, "profile", ("allow",)) if cell.outcome != "ran"]
    assert wrong == []


def test_every_deny_is_a_deny_in_every_cli_never_a_prompt(result):
    wrong = [f"{cli} {mode} {row.id} {row.command!r}: {cell.outcome} {cell.text[:200]!r}"
             for cli, mode, row, cell in _cells(result, "profile", ("deny", "protect")) if cell.outcome != "denied"]
    assert wrong == []


def test_writing_options_and_changes_ask_in_the_terminal_and_never_run_headless(result):
    wrong = []
    for cli, mode, row, cell in _cells(result, "profile", ("writer", "ask")):
        if cell.outcome not in m.expected_outcomes(row, mode):
            wrong.append(f"{cli} {mode} {row.id} {row.command!r}: {cell.outcome} {cell.text[:200]!r}")
    assert wrong == []


def test_the_terminal_prompts_are_the_clis_own(result):
    """An ask in the terminal is the CLI's approval prompt, read off the screen, with an option
    selected; the matrix records which (every CLI puts its yes first)."""
    prompts = [(cli, row.id, cell.selected) for cli, mode, row, cell in _cells(result, "profile", ("ask",))
               if mode == "terminal" and cell.outcome == "asks"]
    assert prompts and all(selected for _, _, selected in prompts)


def test_the_profile_is_at_least_as_strict_as_each_clis_default_on_every_row_that_can_change_something(result):
    """0: the effect happened with nobody asked; 1: only if a person agrees; 2: it cannot happen.
    Reading rows (their only effect is output) are the profile's one deliberate loosening: the
    summary of the published matrix names them."""
    looser = []
    for cli, mode, row, cell in _cells(result, "profile"):
        vendor = result.cell(cli, "vendor", mode, row.id)
        if row.group != "allow" and m.rank(cell, mode) < m.rank(vendor, mode):
            looser.append(f"{cli} {mode} {row.id} {row.command!r}: {cell.outcome} < vendor {vendor.outcome}")
    assert looser == []


def test_bypass_switches_are_refused_or_reported(result):
    assert m.bypass_problems(result.bypass) == []
    by_case = {(r.cli, r.case, r.config): r for r in result.bypass}
    assert not by_case[("gemini", "bypass flag", "profile")].started  # Gemini refuses --yolo outright
    assert by_case[("claude", "bypass flag", "profile")].mode == "default"  # Claude downgrades, silently
    chain = by_case[("claude", "user settings overwritten, then the bypass flag", "profile")]
    assert chain.mode == "bypassPermissions", "without the admin layer the chain of issue 15 still works"


def test_the_before_record_holds_the_findings_it_was_made_for():
    before = m.load_before()["cells"]
    for cli in m.CLIS:
        assert before[cli]["w01"]["headless"]["outcome"] == "ran", cli  # git log --output=FILE ran unasked
    assert before["claude"]["d02"]["terminal"] == {"outcome": "asks", "selected": "Yes"}  # rm -rf asked, Yes first
    assert before["codex"]["d06"]["terminal"]["outcome"] == "asks"  # push --force with the flag at the end
    assert before["codex"]["d01"]["headless"]["outcome"] == "ran"  # cat .env


def test_published_matrix_is_current(result):
    assert m.DOC.exists(), f"{m.DOC} is missing: {REGENERATE}"
    assert m.render_markdown(result) == m.DOC.read_text(), f"{m.DOC} is out of date: {REGENERATE}"
