"""launcher.safefs: what the launcher does as root near folders an agent can write."""
from __future__ import annotations

import os
import threading

import pytest

from launcher import safefs


def test_a_regular_file_is_read(tmp_path):
    (tmp_path / "report.json").write_text("{}")
    assert safefs.read_regular(tmp_path, "report.json", 100) == b"{}"


def test_a_symlink_is_refused_and_not_followed(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:x")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.json").symlink_to(secret)
    with pytest.raises(safefs.UnsafeFile, match="a symbolic link"):
        safefs.read_regular(tmp_path / "out", "report.json", 100)


def test_a_symlinked_folder_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "report.json").write_text("{}")
    (tmp_path / "out").symlink_to(tmp_path / "real")
    with pytest.raises(safefs.UnsafeFile):
        safefs.read_regular(tmp_path / "out", "report.json", 100)


def test_a_fifo_never_blocks(tmp_path):
    os.mkfifo(tmp_path / "report.json")
    result = {}

    def read():
        try:
            safefs.read_regular(tmp_path, "report.json", 100)
        except safefs.UnsafeFile as error:
            result["error"] = str(error)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert "a FIFO" in result["error"]


def test_a_folder_or_a_large_file_is_refused(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(safefs.UnsafeFile, match="a folder"):
        safefs.read_regular(tmp_path, "dir", 100)
    (tmp_path / "big").write_bytes(b"x" * 101)
    with pytest.raises(safefs.UnsafeFile, match="more than the 100"):
        safefs.read_regular(tmp_path, "big", 100)
    with pytest.raises(ValueError):
        safefs.read_regular(tmp_path, "../big", 100)


def test_chown_tree_changes_links_not_their_targets(tmp_path):
    host = tmp_path / "host-folder"
    host.mkdir()
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "file").write_text("x")
    (tree / "to-host").symlink_to(host)
    (tree / "sub" / "to-host-file").symlink_to(host)
    safefs.chown_tree(tree, 1_700_001_000, 1_700_001_000)
    assert host.stat().st_uid == 0
    for path in (tree, tree / "sub", tree / "sub" / "file", tree / "to-host", tree / "sub" / "to-host-file"):
        assert os.lstat(path).st_uid == 1_700_001_000, path


def test_new_files_and_folders_never_go_through_a_link(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "planted").symlink_to(victim)
    with pytest.raises(FileExistsError):
        safefs.write_new(tmp_path / "planted", b"x")
    with pytest.raises(FileExistsError):
        safefs.make_dir(tmp_path / "planted")
    assert victim.read_text() == "keep" and victim.stat().st_uid == 0
    safefs.write_new(tmp_path / "new", b"data", 0o400, (1234, 1234))
    assert (tmp_path / "new").stat().st_uid == 1234 and oct((tmp_path / "new").stat().st_mode & 0o777) == "0o400"


def test_filesystem_type():
    assert safefs.filesystem_type("/dev/shm") == "tmpfs"
    assert safefs.filesystem_type("/proc/self") == "proc"


def test_a_private_folder_someone_else_made_first_is_refused(tmp_path):
    (tmp_path / "theirs").mkdir(mode=0o777)
    os.chmod(tmp_path / "theirs", 0o777)
    with pytest.raises(safefs.UnsafeFile, match="not a private folder"):
        safefs.private_folder(tmp_path / "theirs")
    (tmp_path / "link").symlink_to(tmp_path / "mine")
    with pytest.raises(safefs.UnsafeFile, match="a link"):
        safefs.private_folder(tmp_path / "link")
    safefs.private_folder(tmp_path / "mine-2")
    assert oct((tmp_path / "mine-2").stat().st_mode & 0o777) == "0o700"


def test_the_memory_parent_is_a_tmpfs():
    assert safefs.filesystem_type(safefs.memory_parent()) in safefs.MEMORY_FSTYPES
