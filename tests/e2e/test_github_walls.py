"""GitHub and the registries behind the gateway, proven through `agent-run` with the three real
CLIs (github_walls.py): everyday work passes, no residual-deny effect gets through by any route,
the run's token is nowhere in the container, a GitHub App's token is minted narrow and revoked; and
the walls section of the conformance matrix (docs/conformance-walls.md) is what this run writes.
One run of each CLI, and one control, serve every test here."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

import github_walls as gw
from tests.e2e import walls_rows as wr

REGENERATE = "run `python3 tests/e2e/github_walls.py --write docs/conformance-walls.md`"


@pytest.fixture(scope="module")
def walls(outside, start_vendor, new_root) -> gw.Walls:
    root = new_root("walls")
    control, seconds = gw.run_control(outside, root / "control")
    result = gw.Walls(control, {}, gw.matrix.cli_versions(), {"control": seconds})
    for cli in gw.CLIS:
        result.sessions[cli] = gw.run_cli(cli, outside, start_vendor, root / cli)
    return result


def test_every_row_has_its_effect_when_the_token_is_inside_and_no_gateway_stands(walls):
    """The rows are real attacks and real work: the control sees each one's effect at the fake."""
    assert [row.id for row in wr.ROWS if walls.control[row.id].outcome not in ("done", "through")] == []
    assert walls.control["search"].outcome == "found"   # with the token inside, the search finds it


@pytest.mark.parametrize("cli", gw.CLIS)
def test_no_residual_deny_effect_gets_through(walls, cli):
    cells = walls.sessions[cli].cells
    through = [f"{row.id} ({row.route}): {cells[row.id].detail}" for row in wr.ROWS
               if row.expect == "deny" and cells[row.id].outcome == "through"]
    assert through == []


@pytest.mark.parametrize("cli", gw.CLIS)
def test_everyday_github_work_is_never_refused(walls, cli):
    cells = walls.sessions[cli].cells
    refused = [f"{row.id}: {cells[row.id].outcome} {cells[row.id].detail} {cells[row.id].text[-300:]!r}"
               for row in wr.ROWS if row.expect == "safe" and cells[row.id].outcome != "done"]
    assert refused == []
    assert walls.sessions[cli].returncode == 0, walls.sessions[cli].stderr_tail


@pytest.mark.parametrize("cli", gw.CLIS)
def test_every_blind_route_meets_the_wall_and_every_refusal_is_named(walls, cli):
    """A route no tripwire can see is refused by the gateway (or the proxy), naming the rule; no
    cell is left unexplained."""
    cells = walls.sessions[cli].cells
    blind = [row for row in wr.ROWS if row.tripwire_blind]
    caught = {row.id: cells[row.id].outcome for row in blind if cells[row.id].outcome not in ("wall", "proxy")}
    assert caught == {}, "a tripwire saw a route meant to be blind to it: make the route blinder (walls_rows.py)"
    assert all(cells[row.id].detail for row in blind)
    assert [row.id for row in wr.ROWS if cells[row.id].outcome == "none"] == []


@pytest.mark.parametrize("cli", gw.CLIS)
def test_the_runs_token_is_nowhere_in_the_container(walls, cli):
    session = walls.sessions[cli]
    assert session.search and session.search["scanned"] > 100
    assert session.planted in session.search["found"]          # the search is not blind
    assert session.search["found"] == [session.planted]        # and found nothing else
    assert not session.secret_seen                             # not in what reached the model or the run folder
    assert not [m for m in session.search["mounts"] if "secret" in m]


def test_the_published_walls_are_current(walls):
    assert gw.problems(walls) == []
    assert gw.DOC.exists(), f"{gw.DOC} is missing: {REGENERATE}"
    assert gw.render_markdown(walls) == gw.DOC.read_text(), f"{gw.DOC} is out of date: {REGENERATE}"


# --- a GitHub App --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app_run(outside, start_vendor, new_root) -> gw.AppRun:
    return gw.run_app("claude", outside, start_vendor, new_root("walls-app"))


def test_an_app_token_is_minted_narrow_used_through_the_gateway_and_revoked(app_run):
    session, effects = app_run.session, app_run.effects
    assert session.returncode == 0, session.stderr_tail
    issued = [e for e in effects if e["kind"] == "token-issued"]
    assert [(e["repositories"], e["permissions"]) for e in issued] == [
        ([wr.REPOSITORY], {"contents": "write", "pull_requests": "write", "issues": "write", "metadata": "read"})]
    kinds = [e["kind"] for e in effects if e["kind"] != "fetch"]
    assert kinds[-1] == "token-revoked" and kinds.count("token-revoked") == 1
    assert session.cells["e3"].outcome == "done" and session.cells["e4"].outcome == "done"
    assert session.cells["f2"].outcome == "wall" and session.cells["f2"].detail == "github-push-namespace"
    [branch] = [e["ref"] for e in effects if e["kind"] == "ref-created"]
    assert branch.startswith("refs/heads/agent/") and branch.endswith("/fix")
    assert not session.secret_seen and session.planted in session.search["found"]
    refused = app_run.audit["github"]["refused"]
    assert [(r["route"], r["rule"]) for r in refused] == [("github-git", "github-push-namespace")]
    assert {r["route"] for r in app_run.audit["github"]["forwarded"]} >= {"github-git", "github-api"}
