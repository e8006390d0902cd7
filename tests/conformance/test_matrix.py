"""The published conformance matrix (docs/conformance.md): the real CLIs, every layer, judged by
effects. One run of the whole matrix (9 sessions plus a control) serves every test here."""

import dataclasses
import json
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from . import matrix as m

REGENERATE = "run `python3 tests/conformance/matrix.py --write docs/conformance.md`"


@pytest.fixture(scope="module")
def result() -> m.Matrix:
    return m.run_matrix()


def _cells(result, expect, layers=m.LAYERS):
    for (cli, layer), session in sorted(result.sessions.items()):
        if layer not in layers:
            continue
        for row in result.rows:
            if row.expect == expect:
                yield cli, layer, row, session.cells[row.id]


def test_the_effect_checks_see_nothing_when_nothing_runs():
    """The detectors are not blind yes-men: with every command replaced by `true`, no row's
    effect is seen (and the control in the matrix run sees every row's effect)."""
    inert = [dataclasses.replace(row, command="true") for row in m.rows()]
    with tempfile.TemporaryDirectory(prefix="agent-matrix-") as temp:
        full = m.build_image_root(Path(temp) / "full", (m.PROFILE,))
        tree = m.derive_layer_tree(full, Path(temp) / "native", "native")
        seen = m.run_control(tree, inert)
    assert [row_id for row_id, ran in seen.items() if ran] == []


def test_every_row_shows_its_effect_when_plain_bash_runs_it(result):
    assert [row_id for row_id, ran in result.control.items() if not ran] == []


def test_no_residual_deny_command_runs_with_every_layer_on(result):
    ran = [f"{cli} {row.id} {row.command!r}" for cli, _, row, cell in _cells(result, "deny", ("shims",))
           if cell.outcome == "ran"]
    assert ran == []


def test_no_safe_command_is_blocked_in_any_layer(result):
    blocked = [f"{cli} {layer} {row.id} {row.command!r}: {cell.outcome}: {cell.text[:200]!r}"
               for cli, layer, row, cell in _cells(result, "safe") if cell.outcome != "ran"]
    assert blocked == []


def test_every_residual_deny_command_that_did_not_run_was_refused_by_a_layer(result):
    unexplained = [f"{cli} {layer} {row.id} {row.command!r}: {cell.text[:300]!r}"
                   for cli, layer, row, cell in _cells(result, "deny") if cell.outcome == "none"]
    assert unexplained == []


def test_hook_and_shim_refusals_name_the_rows_rule(result):
    wrong = []
    for cli, layer, row, cell in _cells(result, "deny"):
        if cell.outcome not in ("hook", "shim"):
            continue
        named = re.findall(r"(?:denied by rule|agent-guard: refused) ([a-z0-9-]+)", cell.text)
        if named[:1] != [row.rule]:
            wrong.append(f"{cli} {layer} {row.id}: expected {row.rule}, refusal named {named}")
    assert wrong == []


def test_documented_gaps_still_run_with_every_layer_on(result):
    """A gap that got closed belongs with the residual-deny rows: move it in matrix.rows()."""
    caught = [f"{cli} {row.id} {row.command!r}: {cell.outcome}" for cli, _, row, cell in _cells(result, "gap", ("shims",))
              if cell.outcome != "ran"]
    assert caught == []


def test_published_matrix_is_current(result):
    assert m.DOC.exists(), f"{m.DOC} is missing: {REGENERATE}"
    assert m.render_markdown(result) == m.DOC.read_text(), f"{m.DOC} is out of date: {REGENERATE}"


def test_layer_trees_differ_only_in_the_hook_registrations_and_the_shims(tmp_path):
    full = m.build_image_root(tmp_path / "full", (m.PROFILE,))
    files = lambda root: {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}  # noqa: E731
    everything = files(full)
    hook_files = set(m.HOOK_FILES)
    shim_files = {rel for rel in everything if rel.startswith(m.SHIM_PATHS)}
    assert shim_files and hook_files <= set(everything)
    manifest = "etc/agent-sandbox/manifest.json"
    expected = {"native": (hook_files, shim_files), "hook": (set(), shim_files),
                "shims": (set(), set()), m.SHIMS_ALONE: (hook_files, set())}
    for layer, (changed, removed) in expected.items():
        derived = files(m.derive_layer_tree(full, tmp_path / layer, layer))
        assert set(everything) - set(derived) == removed, layer
        differing = {rel for rel in derived if derived[rel] != everything[rel]} - {manifest}
        assert differing == changed, layer
        for rel in changed:
            assert b"agent-guard hook" in everything[rel] and b"agent-guard hook" not in derived[rel]


def test_the_real_cli_runs_guard_judges_graphql_as_the_image_does(tmp_path):
    """The image root the real-CLI runs use carries the gateway's GraphQL policy and graphql-core,
    as the image does: a read query is allowed, a mutation the gateway does not allow is refused
    (without them the guard fails closed and refuses every `gh api graphql`)."""
    from .image_root import PYTHON_DIR
    root = m.build_image_root(tmp_path / "root", (m.PROFILE,))

    def decide(command: str) -> str:
        code = (f"import sys; sys.path.insert(0, {str(root / PYTHON_DIR)!r}); from guard.cli import main; "
                f"sys.argv = ['agent-guard', 'classify', '--profile-file', "
                f"{str(root / 'etc/agent-sandbox/profiles' / (m.PROFILE + '.json'))!r}, '--', {command!r}]; main()")
        done = subprocess.run(["/usr/bin/python3", "-I", "-c", code], capture_output=True, text=True, timeout=60)
        return json.loads(done.stdout)["decision"]
    read = "gh api graphql -f query='query($n:String!){ repository(owner:\"o\",name:$n){ id } }' -f n=x"
    mutation = "gh api graphql -f query='mutation { deleteRef(input:{refId:\"x\"}) { clientMutationId } }'"
    assert (decide(read), decide(mutation)) == ("allow", "deny")
