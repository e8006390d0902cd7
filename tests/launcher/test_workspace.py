"""launcher.workspace: the copy the agent gets and the refs that come back, with the real git."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from launcher import workspace
from launcher.plan import RunError
from repos import USER, git, git_bytes, make_repo, snapshot, write

BLOCKED = (".env", "**/.env", "**/*.pem")
OWNER = (1_700_001_000, 1_700_001_000)


def without_git(snap: dict) -> dict:
    return {k: v for k, v in snap.items() if not k.startswith(".git")}


@pytest.fixture
def user_repo(user_tmp):
    """A user's repository (uid 4242's) with staged, unstaged, untracked, ignored and blocked changes."""
    repo = make_repo(user_tmp, {"src/app.py": "print(1)\n", ".gitignore": "build/\n", "README.md": "hi\n"},
                     owner=USER)
    write(repo, {"src/app.py": "print(2)\n", "staged.txt": "staged\n"})
    git(repo, "add", "staged.txt")
    write(repo, {"untracked.txt": "new\n", "build/out.bin": "ignored\n", ".env": "SECRET=1\n",
                 "certs/key.pem": "PRIVATE\n"})
    return repo


def tree_of(repo: Path, commit: str) -> set[str]:
    return set(git(repo, "ls-tree", "-r", "--name-only", commit).splitlines())


def test_a_non_git_folder_is_refused_with_the_fix(tmp_path):
    with pytest.raises(RunError, match=r"is not a git repository.*git -C .* init .*--mount"):
        workspace.find_source(tmp_path)


def test_the_starting_commit_is_what_the_user_sees_and_touches_nothing(user_repo, tmp_path):
    before = snapshot(user_repo)
    index = (user_repo / ".git" / "index").read_bytes()
    status = git(user_repo, "status", "--porcelain")
    source = workspace.find_source(user_repo / "src")
    assert (source.subdir, source.branch) == ("src", "main")
    copy = workspace.starting_commit(source, "run1", BLOCKED)
    assert tree_of(user_repo, copy.start) == {".gitignore", "README.md", "src/app.py", "staged.txt", "untracked.txt"}
    assert git(user_repo, "show", f"{copy.start}:src/app.py") == "print(2)"
    assert copy.left_out == [".env", "certs/key.pem"] and copy.history and copy.base == source.head
    assert git(user_repo, "rev-parse", f"{copy.start}^") == source.head
    assert git(user_repo, "rev-parse", "refs/agent/run1/start") == copy.start
    assert git(user_repo, "rev-parse", "refs/agent/run1/base") == source.head
    # the user's files, index, HEAD and status are as they were
    assert without_git(snapshot(user_repo)) == without_git(before)
    assert (user_repo / ".git" / "index").read_bytes() == index
    assert git(user_repo, "status", "--porcelain") == status
    # what agent-run (root) wrote into .git, git wrote as the repository's owner
    assert not [p for p in (user_repo / ".git").rglob("*") if p.lstat().st_uid != USER]


def test_a_blocked_file_in_history_means_no_history(user_repo, user_tmp):
    git(user_repo, "add", "-f", ".env")
    git(user_repo, "commit", "-q", "-m", "oops")
    git(user_repo, "rm", "-q", "--cached", ".env")
    git(user_repo, "commit", "-q", "-m", "untrack")
    source = workspace.find_source(user_repo)
    copy = workspace.starting_commit(source, "run2", BLOCKED)
    assert copy.blocked_in_history == [".env"] and not copy.history
    assert git(user_repo, "rev-list", "--count", copy.start) == "1"  # a root commit
    target = user_tmp / "copy"
    workspace.make_copy(source, copy, target, OWNER, ("claude (agent-run)", "agent-run@localhost"))
    assert git(target, "rev-list", "--count", "--all") == "1"
    assert b"SECRET" not in git_bytes(target, "cat-file", "--batch-all-objects", "--batch")


def test_the_copy_is_self_contained_owned_by_the_agent_and_links_nothing(user_repo, user_tmp, tmp_path):
    outside = tmp_path / "host-file"
    outside.write_text("host\n")
    os.symlink(outside, user_repo / "link-out")
    source = workspace.find_source(user_repo)
    copy = workspace.starting_commit(source, "run3", BLOCKED)
    target = user_tmp / "copy"
    workspace.make_copy(source, copy, target, OWNER, ("claude (agent-run)", "agent-run@localhost"))
    for folder, dirs, files in os.walk(target):  # before any git below writes as root
        for name in [folder, *[os.path.join(folder, n) for n in dirs + files]]:
            assert os.lstat(name).st_uid == OWNER[0], name
    assert not (target / ".git" / "objects" / "info" / "alternates").exists()
    assert not list((target / ".git" / "hooks").glob("*")) if (target / ".git" / "hooks").exists() else True
    assert git(target, "rev-parse", "HEAD") == copy.start
    assert git(target, "rev-parse", "HEAD^") == source.head  # HEAD's history came along
    assert git(target, "status", "--porcelain") == ""
    assert (target / "untracked.txt").read_text() == "new\n" and not (target / ".env").exists()
    assert git(target, "config", "user.name") == "claude (agent-run)"
    assert os.readlink(target / "link-out") == str(outside)
    assert outside.stat().st_uid == 0  # the link's target kept its owner


def test_a_github_run_gives_the_copy_an_origin_whose_pushes_land_in_the_runs_branches(user_repo, user_tmp):
    git(user_repo, "remote", "add", "origin", "git@github.com:octo/widgets.git")
    git(user_repo, "remote", "add", "fork", "https://github.com/someone/widgets.git")
    source = workspace.find_source(user_repo)
    copy = workspace.starting_commit(source, "run5", BLOCKED)
    target = user_tmp / "copy"
    workspace.make_copy(source, copy, target, OWNER, ("claude (agent-run)", "agent-run@localhost"),
                        remote=("https://github.com/octo/widgets.git", "refs/heads/*:refs/heads/agent/run5/*"))
    assert git(target, "remote") == "origin"                    # the user's own remotes are never copied
    assert git(target, "config", "remote.origin.url") == "https://github.com/octo/widgets.git"
    assert git(target, "config", "remote.origin.tagOpt") == "--no-tags"
    bare = user_tmp / "github.git"
    git(user_tmp, "init", "-q", "--bare", str(bare))
    for path in [bare, *bare.rglob("*")]:
        os.lchown(path, *OWNER)                                 # the push runs as the copy's owner
    git(target, "config", f"url.{bare}.insteadOf", "https://github.com/octo/widgets.git")
    git(target, "switch", "-q", "-c", "fix")
    git(target, "push", "-q", "origin", "fix")
    assert git(bare, "for-each-ref", "--format=%(refname)") == "refs/heads/agent/run5/fix"


def _bundle_from(copy_repo: Path, *refs: str, exclude: str) -> Path:
    bundle = copy_repo / ".git" / "result.bundle"  # written by the copy's owner, as the collector would
    git(copy_repo, "bundle", "create", "-q", str(bundle), *refs, "--not", exclude)
    return bundle


def test_results_come_back_as_refs_and_odd_names_are_refused(user_repo, user_tmp):
    source = workspace.find_source(user_repo)
    copy = workspace.starting_commit(source, "run4", BLOCKED)
    target = user_tmp / "copy"
    workspace.make_copy(source, copy, target, OWNER, ("claude (agent-run)", "agent-run@localhost"))
    git(target, "switch", "-q", "-c", "feature")
    write(target, {"feature.txt": "done\n"})
    git(target, "add", "feature.txt")
    git(target, "commit", "-q", "-m", "feature")
    git(target, "update-ref", "refs/agent-run/HEAD", "HEAD")
    git(target, "update-ref", "refs/remotes/origin/evil", "HEAD")
    bundle = _bundle_from(target, "--branches", "refs/agent-run/HEAD", "refs/remotes/origin/evil",
                          exclude=copy.start)
    before = without_git(snapshot(user_repo))
    refs, refused = workspace.fetch_results(source, "run4", bundle)
    # main still points at the start: a ref with nothing new does not travel
    assert sorted(refs) == ["refs/agent/run4/HEAD", "refs/agent/run4/heads/feature"]
    assert refused == ["refs/remotes/origin/evil"]
    assert git(user_repo, "show", "refs/agent/run4/heads/feature:feature.txt") == "done"
    assert without_git(snapshot(user_repo)) == before
    assert not (user_repo / ".git" / "FETCH_HEAD").exists()
    assert not [p for p in (user_repo / ".git").rglob("*") if p.lstat().st_uid != USER]
    assert set(workspace.run_refs(source, "run4")) == {*refs, "refs/agent/run4/start", "refs/agent/run4/base"}


def test_a_bundle_that_does_not_verify_is_refused(user_repo, tmp_path):
    other = make_repo(tmp_path, {"x": "1\n"}, name="other")
    write(other, {"x": "2\n"})
    git(other, "commit", "-q", "-am", "two")
    bundle = tmp_path / "foreign.bundle"
    git(other, "bundle", "create", "-q", str(bundle), "main", "--not", "HEAD^")
    with pytest.raises(RunError, match="does not verify"):
        workspace.fetch_results(workspace.find_source(user_repo), "run5", bundle)
    assert workspace.run_refs(workspace.find_source(user_repo), "run5") == {}


def test_an_empty_repository_gets_a_root_start(tmp_path):
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, {"a.txt": "a\n"})
    source = workspace.find_source(repo)
    assert source.head is None
    copy = workspace.starting_commit(source, "run6", BLOCKED)
    assert tree_of(repo, copy.start) == {"a.txt"} and copy.base is None and not copy.history
    target = tmp_path / "copy"
    workspace.make_copy(source, copy, target, OWNER, ("codex (agent-run)", "agent-run@localhost"))
    assert (target / "a.txt").read_text() == "a\n"
