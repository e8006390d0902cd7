"""The Debian stand-in image's archive, as built by image/debian/build.py, against the contract."""

import hashlib
import io
import json
import subprocess
import tarfile
import uuid

import pytest

from image.clis import lockfile_pins
from podman_image import ARCHIVE, IMAGE, INSTALL_HINT, REPO, podman_env


@pytest.fixture(scope="module")
def archive():
    if not ARCHIVE.is_file():
        pytest.fail(f"{ARCHIVE} not found; {INSTALL_HINT}")
    return ARCHIVE


def image_verify(path):
    return subprocess.run(["image-verify", str(path)], capture_output=True, text=True, timeout=600)


def read_config(path):
    with tarfile.open(path) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
        return manifest, json.load(archive.extractfile(manifest[0]["Config"]))


def _layer(files):
    """An uncompressed layer tar: {path: (mode, data or None for a symlink to /usr/bin/env)}."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as layer:
        for path, (mode, data) in files.items():
            info = tarfile.TarInfo(path)
            info.uid = info.gid = 0
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/usr/bin/env"
                layer.addfile(info)
            else:
                info.mode, info.size = mode, len(data)
                layer.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def with_extra_layer(source, target, files, labels=None, repo_tag=None):
    """A copy of the docker-archive `source` with one more layer on top (and labels changed, and
    another name, when given: a copy must never replace the shared image's tag when loaded)."""
    layer = _layer(files)
    digest = hashlib.sha256(layer).hexdigest()
    manifest, config = read_config(source)
    config["rootfs"]["diff_ids"].append(f"sha256:{digest}")
    config["config"]["Labels"].update(labels or {})
    config_bytes = json.dumps(config).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest[0]["Layers"].append(f"{digest}/layer.tar")
    manifest[0]["Config"] = config_name
    if repo_tag:
        manifest[0]["RepoTags"] = [repo_tag]
    with tarfile.open(source) as old, tarfile.open(target, "w") as new:
        for member in old:
            if member.name.endswith("/layer.tar"):
                new.addfile(member, old.extractfile(member))
        for name, data in ((f"{digest}/layer.tar", layer), (config_name, config_bytes),
                           ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))


def test_the_built_image_keeps_the_contract(archive):
    result = image_verify(archive)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_setuid_file_or_an_su_on_top_fails_the_check(archive, tmp_path):
    broken = tmp_path / "broken.tar"
    with_extra_layer(archive, broken, {"usr/local/bin/helper": (0o4755, b"#!/bin/sh\nexec sh\n"),
                                       "usr/bin/su": (0o755, None)})
    result = image_verify(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    failures = [line for line in result.stdout.splitlines() if "FAIL" in line]
    assert any("/usr/local/bin/helper" in line and "setuid" in line for line in failures), failures
    assert any("/usr/bin/su" in line for line in failures), failures


def test_config_and_labels_come_from_the_contract_and_the_lockfile(archive):
    contract = json.loads((REPO / "image" / "contract.json").read_text())
    pins = lockfile_pins(contract["clis"])
    manifest, config = read_config(archive)
    assert manifest[0]["RepoTags"] == [IMAGE]
    assert config["config"]["User"] == contract["config"]["User"]
    assert config["config"]["Entrypoint"] == contract["config"]["Entrypoint"]
    assert config["config"]["Env"] == [f"{k}={v}" for k, v in contract["env"].items()]
    labels = config["config"]["Labels"]
    assert {name: labels[f"io.agent-sandbox.cli.{name}"] for name in contract["clis"]} == pins
    assert labels["io.agent-sandbox.image"] == "agent"
    assert labels["io.agent-sandbox.build"].startswith("debian-"), "the stand-in must say it is one"
    # Four layers: Debian base, Node + CLIs, the Python project (shared with the gateway), the baked configuration.
    assert len(config["rootfs"]["diff_ids"]) == 4


def test_podman_runs_exactly_this_archive(archive, podman_service):
    report = json.loads(archive.with_name(archive.name + ".json").read_text())
    with tarfile.open(archive) as tar:
        config_name = json.load(tar.extractfile("manifest.json"))[0]["Config"]
        config_digest = hashlib.sha256(tar.extractfile(config_name).read()).hexdigest()
    assert report["image_id"] == f"sha256:{config_digest}"
    assert podman_service.image_id() in (report["image_id"], config_digest)


def image_verify_run(path):
    return subprocess.run(["image-verify", "--run", "podman", str(path)], capture_output=True, text=True,
                          timeout=900, env=podman_env())


def test_each_cli_in_the_image_answers_the_lockfiles_pin_with_no_network(archive):
    result = image_verify_run(archive)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_cli_label_or_a_cli_of_another_version_is_refused(archive, tmp_path):
    pins = lockfile_pins(json.loads((REPO / "image" / "contract.json").read_text())["clis"])
    name = f"localhost/agent-image-verify-test:{uuid.uuid4().hex[:10]}"
    # The label says 2.1.90; and a `claude` early on PATH that answers like an older Claude Code.
    old_claude = b"#!/bin/sh\necho '2.1.90 (Claude Code)'\n"
    broken = tmp_path / "broken.tar"
    with_extra_layer(archive, broken, {"usr/local/bin/claude": (0o755, old_claude)},
                     labels={"io.agent-sandbox.cli.claude-code": "2.1.90"}, repo_tag=name)
    try:
        result = image_verify_run(broken)
        assert result.returncode == 1, result.stdout + result.stderr
        failures = [line for line in result.stdout.splitlines() if " FAIL " in line]
        assert len(failures) == 2, failures
        assert any("config.Labels.io.agent-sandbox.cli.claude-code: is '2.1.90'" in line
                   and f"at '{pins['claude-code']}'" in line for line in failures), failures
        assert any("run:claude --version: answered '2.1.90 (Claude Code)'" in line
                   and f"at '{pins['claude-code']}'" in line for line in failures), failures
    finally:
        subprocess.run(["podman", "rmi", "--force", name], capture_output=True, env=podman_env())
