"""Manifest verification in place on a baked tree (root-prefixed), for the cases the end-to-end
tests do not reach: entries that would be skipped by omission, and the verified contents."""

import pytest

from entrypoint import integrity
from entrypoint_world import build_image, read_manifest, write_manifest


@pytest.fixture
def image(tmp_path):
    root = tmp_path / "image"
    root.mkdir()
    build_image(root)
    return root


def test_a_clean_tree_verifies_and_returns_the_runtime_profile(image):
    verified = integrity.verify("ci", str(image))
    assert verified.runtime_profile()["profile"] == "ci"
    assert "/etc/agent-sandbox/profiles/autonomous.json" not in verified.files


def test_an_entry_without_profiles_belongs_to_every_profile(image):
    manifest = read_manifest(image)
    path = next(p for p, e in manifest["files"].items() if e["profiles"] == ["ci"]
                and not p.startswith("/etc/agent-sandbox/profiles/"))
    del manifest["files"][path]["profiles"]
    manifest["files"][path]["sha256"] = "0" * 64
    write_manifest(image, manifest)
    with pytest.raises(integrity.IntegrityError) as refused:
        integrity.verify("autonomous", str(image))
    assert refused.value.problems == [f"{path}: sha256 does not match the manifest (changed after the build); "
                                      "rebuild the image"]


def test_a_malformed_entry_is_refused_not_skipped(image):
    manifest = read_manifest(image)
    manifest["files"]["/etc/extra.json"] = "not an object"
    write_manifest(image, manifest)
    with pytest.raises(integrity.IntegrityError, match="entry '/etc/extra.json' is not an object"):
        integrity.verify("autonomous", str(image))


def test_a_manifest_of_another_format_is_refused(image):
    manifest = read_manifest(image)
    manifest["format"] = 2
    write_manifest(image, manifest)
    with pytest.raises(integrity.IntegrityError, match="expected format 1"):
        integrity.verify("autonomous", str(image))


def test_a_symlinked_baked_file_is_refused(image):
    path = next(p for p, e in read_manifest(image)["files"].items() if e["format"] == "json")
    target = image / path.lstrip("/")
    real = target.with_name(target.name + ".real")
    target.rename(real)
    target.symlink_to(real.name)
    with pytest.raises(integrity.IntegrityError, match="cannot open"):
        integrity.verify("autonomous", str(image))


def test_seeds_are_copied_once_and_never_over_existing_files(image, tmp_path):
    verified = integrity.verify("autonomous", str(image))
    home = tmp_path / "home"
    home.mkdir()
    written = integrity.seed_home(verified, str(home))
    seeds = {p for p in verified.contents if p.startswith(integrity.SEED_PREFIX)}
    assert sorted(written) == sorted(str(home / p[len(integrity.SEED_PREFIX):]) for p in seeds)
    first = sorted(seeds)[0]
    copy = home / first[len(integrity.SEED_PREFIX):]
    assert copy.read_bytes() == verified.contents[first]
    copy.write_text("changed by the CLI")
    (home / "dangling").symlink_to("nowhere")
    assert integrity.seed_home(verified, str(home)) == []
    assert copy.read_text() == "changed by the CLI"


def test_a_runtime_profile_of_the_wrong_shape_is_refused(image):
    from entrypoint_world import _sha

    manifest = read_manifest(image)
    path = "/etc/agent-sandbox/profiles/autonomous.json"
    data = b'{"format": 1, "environment": {"quiet": ["DISABLE_TELEMETRY"]}}\n'
    target = image / path.lstrip("/")
    target.chmod(0o644)
    target.write_bytes(data)
    target.chmod(0o444)
    manifest["files"][path]["sha256"] = _sha(data)
    write_manifest(image, manifest)
    verified = integrity.verify("autonomous", str(image))
    with pytest.raises(integrity.IntegrityError, match="not a format 1 runtime profile"):
        verified.runtime_profile()
