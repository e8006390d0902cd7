"""agent-checkpoint: list, preview and restore the workspace checkpoints the entrypoint records."""

from __future__ import annotations

import argparse
import sys

from guard import __version__
from entrypoint.checkpoint.plumbing import CheckpointError, remove_file
from entrypoint.checkpoint.restore import find, list_checkpoints, plan, preview_lines, restore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="agent-checkpoint",
        description="List, preview and restore the workspace checkpoints the entrypoint records.")
    parser.add_argument("--checkpoint", nargs="?", const="", metavar="NAME",
                        help="restore this checkpoint (default: the newest)")
    parser.add_argument("--preview", action="store_true", help="show what restoring would change; change nothing")
    parser.add_argument("--force", action="store_true",
                        help="restore even over uncommitted work (a checkpoint of it is taken first)")
    parser.add_argument("-C", dest="workspace", default=".", help="the repository (default: the current folder)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    name = args.checkpoint or None
    try:
        if args.preview:
            checkpoint = find(args.workspace, name)
            _repo, current, head_changes, work, index = plan(args.workspace, checkpoint)
            remove_file(current.index_file)
            print(f"restoring {checkpoint.name} would:")
            print("\n".join(preview_lines(head_changes, work, index)))
            return 0
        if args.checkpoint is not None:
            checkpoint = find(args.workspace, name)
            lines, safety = restore(args.workspace, checkpoint, args.force)
            if safety:
                print(f"saved the state before restoring as {safety}")
            print(f"restored {checkpoint.name}:")
            print("\n".join(lines))
            return 0
        checkpoints = list_checkpoints(args.workspace)
        if not checkpoints:
            print("agent-checkpoint: no checkpoints in this repository yet; agent-entrypoint records one "
                  "under refs/agent/checkpoints/ each time it starts a CLI here")
        for checkpoint in checkpoints:
            print(f"{checkpoint.name}\t{checkpoint.date}\t{checkpoint.tool}\t{checkpoint.commit[:12]}")
        return 0
    except CheckpointError as error:
        print(f"agent-checkpoint: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
