"""docs/conformance-heldout.md is what heldout.py renders from the committed runs (no CLI runs here)."""

from tests.conformance import heldout


def test_the_page_is_the_rendering_of_the_fixtures():
    expected = heldout.render({name: heldout.load(held) for name, held in heldout.SETS.items()})
    assert heldout.DOC.read_text() == expected, "re-run: python3 tests/conformance/heldout.py --write docs/conformance-heldout.md"


def test_every_run_names_its_tree_and_covers_its_rows_in_every_cli():
    for held in heldout.SETS.values():
        ids = {row.id for row in held.rows()}
        for result in filter(None, heldout.load(held)):
            assert result["set"] == held.name and result["tree"]
            assert set(result["control"]) == ids
            for cli, cells in result["cells"].items():
                assert set(cells) == ids, (held.name, cli)
