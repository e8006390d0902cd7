"""Checkpoints of a git workspace: HEAD, the index, the working tree and untracked (not ignored)
files, recorded without touching the working tree or the index.

A checkpoint is a commit under refs/agent/checkpoints/<UTC time>-<tool>, built like `git stash`:
its tree is the working tree, its parents are HEAD and a commit of the index. Trailers record where
HEAD pointed. `agent-checkpoint` lists, previews and restores them.

plumbing.py   running git, the repository, the commit shape
create.py     create(): the fast path when it may, else `git add` on a copy of the index
fastpath.py   one `git status`, one `git fast-import`, a stat cache in .git
restore.py    list, find, preview, restore
cli.py        agent-checkpoint
"""
