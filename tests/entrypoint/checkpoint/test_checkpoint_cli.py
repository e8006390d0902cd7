"""agent-checkpoint (entrypoint/checkpoint/cli.py): list, preview, restore the newest by default."""

from checkpoint_repo import write
from entrypoint.checkpoint import cli
from entrypoint.checkpoint.create import create


def test_the_command_lists_previews_and_restores_the_newest_by_default(repo, capsys):
    first = create(str(repo), "claude")
    write(repo, "untracked.txt", "changed after the first\n")
    second = create(str(repo), "codex")
    assert cli.main(["-C", str(repo)]) == 0
    listed = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == [second, first]
    write(repo, "untracked.txt", "changed again\n")
    assert cli.main(["-C", str(repo), "--preview"]) == 0
    assert capsys.readouterr().out == f"restoring {second} would:\nworking tree:\n  change untracked.txt\n"
    assert cli.main(["-C", str(repo), "--checkpoint"]) == 1
    assert "uncommitted work" in capsys.readouterr().err
    assert cli.main(["-C", str(repo), "--checkpoint", first, "--force"]) == 0
    assert (repo / "untracked.txt").read_text() == "new\n"


def test_unknown_checkpoint_and_empty_list(repo, capsys):
    assert cli.main(["-C", str(repo), "--checkpoint", "nope"]) == 1
    assert "no checkpoints" in capsys.readouterr().err
    create(str(repo), "claude")
    assert cli.main(["-C", str(repo), "--checkpoint", "nope"]) == 1
    assert "no checkpoint named 'nope'" in capsys.readouterr().err


def test_an_empty_list_says_so_and_where_checkpoints_come_from(repo, capsys):
    assert cli.main(["-C", str(repo)]) == 0
    out = capsys.readouterr().out
    assert "no checkpoints in this repository yet" in out and "agent-entrypoint" in out


def test_outside_a_repository_it_says_so_and_how_to_point_it_at_one(tmp_path, capsys):
    assert cli.main(["-C", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "is not in a git repository" in err and "-C DIR" in err and "fatal:" not in err
