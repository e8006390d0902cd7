"""--mount's hostile steps, run by the CLI (`python3 tools/live_tricks.py`): what mount points stop
(renaming .git, or a folder above an instruction file; writing one) and what they cannot (a new
read-only-tier file, a nested repository). Python rather than shell, so that no CLI's own rules
refuse the command before the walls are tried."""
import os

for name, action in (
        ("rename .git", lambda: os.rename(".git", ".git-moved")),
        ("rename docs", lambda: os.rename("docs", "docs-moved")),
        ("write CLAUDE.md", lambda: open("CLAUDE.md", "w").write("evil\n")),
        ("new .mcp.json", lambda: open(".mcp.json", "w").write("{}")),
        ("nested repository", lambda: (os.makedirs("sub/.git"), open("sub/.git/config", "w").write("[core]\n")))):
    try:
        action()
        print(f"{name}: done")
    except OSError as error:
        print(f"{name}: {error}")
