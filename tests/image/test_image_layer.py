"""The flake's customisation-layer script, run for real.

The flake is evaluated against the stub nixpkgs to get the exact `fakeRootCommands` text and
image config it hands to dockerTools.streamLayeredImage. That script then runs the way
dockerTools runs it (under fakeroot, in a folder holding the contents' symlinks, then
`tar --numeric-owner`), over an image root laid out as `render-profiles --image-root` writes
it. The layer, plus a stand-in store layer, becomes a docker-archive that image-verify must
pass, once over a synthetic image root and once over the real `render-profiles --image-root`. Store paths the stub invented are swapped for local stand-ins (jq, passwd, group, the
image root); everything else in the script runs as written.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

import image_synth as synth
from image import layout
from image.verify import load_contract, verify_path
from stub_flake import ROOT, StubFlake

CONTRACT = load_contract()
STORE_PATH = re.compile(r"/nix/store/[0-9a-z]{32}-[^/\s'\"]+")
STORE_TOOLS = "/nix/store/" + "1" * 32 + "-tools"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    flake = StubFlake(tmp_path_factory.mktemp("layer-flake"))
    return flake.eval(
        "packages.x86_64-linux.agent-image",
        "i: { script = i.imageArgs.fakeRootCommands; config = i.imageArgs.config;"
        " passwd = { path = i.passwd.outPath; text = i.passwd.stubText; };"
        " group = { path = i.group.outPath; text = i.group.stubText; };"
        " imageRoot = i.imageRoot.outPath; }",
    )


def store_permissions(folder: Path) -> Path:
    """As the Nix store leaves a build output: files 0444 or 0555, folders 0555."""
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o555)
        else:
            path.chmod(0o555 if path.stat().st_mode & 0o111 else 0o444)
    return folder


def rendered_image_root(folder: Path) -> Path:
    """The real thing: `render-profiles --image-root`, as nix/image-root.nix runs it."""
    executable = shutil.which("render-profiles")
    assert executable, "render-profiles is not installed (pip install -e .)"
    result = subprocess.run([executable, "--image-root", str(folder), *CONTRACT["baked"]["render_args"]],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return store_permissions(folder)


def synthetic_image_root(folder: Path) -> Path:
    """What `render-profiles --image-root DIR --profile autonomous --profile ci` writes,
    with the store's permissions (files 0444/0555, folders 0555)."""
    files = synth.baked_files(CONTRACT)
    manifest = CONTRACT["baked"]["manifest"]["path"]
    for path, (data, mode) in files.items():
        target = folder / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(int(mode, 8))
    (folder / manifest.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    (folder / manifest.lstrip("/")).write_bytes(synth.manifest_bytes(CONTRACT, files))
    (folder / ".agent-image-root").write_text("")
    return store_permissions(folder)


def contents_tree(folder: Path, without: tuple[str, ...] = (), programs=tuple(CONTRACT["required_programs"])) -> None:
    """The symlinkJoin of the image contents: bin/* pointing into the store."""
    (folder / "bin").mkdir(parents=True)
    (folder / "usr" / "bin").mkdir(parents=True)
    for program in programs:
        if program not in without:
            (folder / "bin" / program).symlink_to(f"{STORE_TOOLS}/bin/{program}")
    (folder / "usr" / "bin" / "env").symlink_to(f"{STORE_TOOLS}/bin/env")


def store_layer(script: str, programs=tuple(CONTRACT["required_programs"])) -> bytes:
    """Root-owned read-only store paths: the tools, and every store path the script links to."""
    nodes = [synth.Node(f"{STORE_TOOLS}/bin/{program}", data=synth.script(program), mode=0o555)
             for program in programs]
    for store_path in sorted(set(STORE_PATH.findall(script))):
        if store_path.endswith("-nss-cacert-3.115"):
            nodes.append(synth.Node(store_path + "/etc/ssl/certs/ca-bundle.crt", data=b"-----BEGIN CERTIFICATE-----\n", mode=0o444))
        elif "-bash-interactive-" in store_path:
            nodes.append(synth.Node(store_path + "/bin/bash", data=synth.script("bash"), mode=0o555))
        else:
            nodes.append(synth.Node(store_path + "/.stub", data=b"", mode=0o444))
    return synth.tar_layer(nodes)


def localise(script: str, built: dict, image_root: Path, scratch: Path) -> str:
    """Swap the stub's invented store paths for local stand-ins the script can read."""
    for name in ("passwd", "group"):
        local = scratch / name
        local.write_text(built[name]["text"])
        script = script.replace(built[name]["path"], str(local))
    jq = shutil.which("jq")
    assert jq, "jq is missing: run .ci/install-image.sh"
    script = re.sub(r"/nix/store/[0-9a-z]{32}-jq-[^/]+/bin/jq", jq, script)
    return script.replace(built["imageRoot"], str(image_root))


def customisation_layer(script: str, scratch: Path, without: tuple[str, ...] = (),
                        programs=tuple(CONTRACT["required_programs"])) -> bytes:
    fakeroot = shutil.which("fakeroot")
    assert fakeroot, "fakeroot is missing: run .ci/install-image.sh"
    old_out = scratch / "old_out"
    contents_tree(old_out, without, programs)
    layer = scratch / "layer.tar"
    # the same steps as dockerTools' customisation layer
    # separate statements, not an && list: inside one, bash ignores `set -e`
    runner = (
        'cd "$OLD_OUT"\n'
        'eval "$fakeRootCommands"\n'
        'tar --sort=name --exclude=./proc --exclude=./sys --exclude=./dev '
        '--numeric-owner --mtime=@1 --hard-dereference -cf "$LAYER" .\n'
    )
    result = subprocess.run(
        [fakeroot, "bash", "-e", "-c", runner],
        env={"PATH": "/usr/bin:/bin", "OLD_OUT": str(old_out), "LAYER": str(layer), "fakeRootCommands": script},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return layer.read_bytes()


def build_archive(built: dict, tmp_path: Path, edit=lambda script: script, without: tuple[str, ...] = (),
                  make_root=synthetic_image_root) -> Path:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    image_root = make_root(tmp_path / "image-root")
    script = edit(localise(built["script"], built, image_root, scratch))
    layers = [store_layer(built["script"]), customisation_layer(script, scratch, without)]
    return synth.write_raw_docker_archive(layers, {"architecture": "amd64", "os": "linux", "config": built["config"]},
                                          tmp_path / "agent-image.tar")


def failure_paths(archive: Path) -> set[str]:
    return {failure.path for _, failures in verify_path(archive, CONTRACT) for failure in failures}


def layer_entries(archive: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive) as outer:
        name = [m for m in outer.getnames() if m.endswith("layer.tar")]
        entries = {}
        for member in name:
            with tarfile.open(fileobj=io.BytesIO(outer.extractfile(member).read())) as layer:
                for info in layer.getmembers():
                    entries["/" + info.name.removeprefix("./")] = info
        return entries


@pytest.mark.parametrize("make_root", [synthetic_image_root, rendered_image_root], ids=["synthetic-root", "rendered-root"])
def test_flake_layer_script_yields_an_image_that_keeps_the_contract(built: dict, tmp_path: Path, make_root) -> None:
    archive = build_archive(built, tmp_path, make_root=make_root)
    assert failure_paths(archive) == set()
    entries = layer_entries(archive)
    manifest = json.loads((tmp_path / "image-root" / CONTRACT["baked"]["manifest"]["path"].lstrip("/")).read_text())
    for path, record in manifest["files"].items():
        info = entries[path]
        if info.issym():
            continue
        assert (oct(info.mode & 0o7777), info.uid) == (oct(int(record["mode"], 8)), record["owner"]), path
    assert "/.agent-image-root" not in entries
    assert entries["/tmp"].mode & 0o7777 == 0o1777
    assert (entries["/home/agent"].uid, entries["/home/agent"].gid) == (CONTRACT["user"]["uid"], CONTRACT["user"]["gid"])


def test_a_weakened_layer_script_is_caught(built: dict, tmp_path: Path) -> None:
    uid, gid = CONTRACT["user"]["uid"], CONTRACT["user"]["gid"]
    owner = f"chown {uid}:{gid}"
    assert owner in built["script"]
    archive = build_archive(built, tmp_path, edit=lambda script: script.replace(owner, "chown 0:0"))
    assert failure_paths(archive) == set(CONTRACT["agent_writable_dirs"])


def test_a_layer_script_that_leaves_setuid_is_caught(built: dict, tmp_path: Path) -> None:
    archive = build_archive(
        built, tmp_path,
        edit=lambda script: script.replace("find . -xdev -type f -perm /6000 -exec chmod ug-s {} +",
                                           "install -m 4755 /dev/null usr/bin/newgrp"),
    )
    assert failure_paths(archive) == {"/usr/bin/newgrp"}


def test_layer_script_supplies_sh_when_the_contents_lack_it(built: dict, tmp_path: Path) -> None:
    archive = build_archive(built, tmp_path, without=("sh",))
    assert failure_paths(archive) == set()
    assert "-bash-interactive-" in layer_entries(archive)["/bin/sh"].linkname


def test_without_sh_and_without_the_fallback_the_image_fails(built: dict, tmp_path: Path) -> None:
    archive = build_archive(built, tmp_path, without=("sh",),
                            edit=lambda script: re.sub(r"\n\s*ln -s \S+/bin/bash bin/sh", "\n  true", script))
    assert failure_paths(archive) == {"PATH/sh"}


@pytest.mark.parametrize("role,package", [("gateway", "gateway-image"), ("proxy", "egress-proxy-image")])
def test_service_image_layer_scripts_keep_their_contract_parts(role: str, package: str, tmp_path: Path) -> None:
    """The same for the gateway and the proxy: their fakeRootCommands run under fakeroot over the
    contents they name, and image-verify judges the result against their own contract part."""
    part = CONTRACT["images"][role]
    flake = StubFlake(tmp_path / "flake")
    built = flake.eval(f"packages.x86_64-linux.{package}",
                       "i: { script = i.imageArgs.fakeRootCommands; config = i.imageArgs.config;"
                       " passwd = { path = i.passwd.outPath; text = i.passwd.stubText; };"
                       " group = { path = i.group.outPath; text = i.group.stubText; }; }")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    script = built["script"]
    for name in ("passwd", "group"):
        (scratch / name).write_text(built[name]["text"])
        script = script.replace(built[name]["path"], str(scratch / name))
    if role == "proxy":  # the proxy's tree comes from render-profiles, as nix/egress-proxy-image.nix runs it
        proxy_root = re.search(r"cp -r (/nix/store/\S+)/etc/squid/\. etc/squid/", script).group(1)
        rendered = tmp_path / "proxy-root"
        result = subprocess.run([shutil.which("render-profiles"), "--image-root", str(rendered), *part["render_args"]],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        script = script.replace(proxy_root, str(rendered))
    programs = tuple(part["required_programs"])
    layers = [store_layer(built["script"], programs), customisation_layer(script, scratch, (), programs)]
    archive = synth.write_raw_docker_archive(
        layers, {"architecture": "amd64", "os": "linux", "config": built["config"]}, tmp_path / f"{role}.tar")
    assert {failure.path for _, failures in verify_path(archive, CONTRACT) for failure in failures} == set()
    weakened = script.replace(f"chown {layout.GATEWAY_UID}:{layout.GATEWAY_UID}", "chown 0:0") if role == "gateway" \
        else script.replace("find etc/squid -type f -exec chmod 0444 {} +", "chmod -R a+w etc/squid")
    assert weakened != script
    (tmp_path / "weak").mkdir()
    (tmp_path / "weak" / "scratch").mkdir()
    layers = [store_layer(built["script"], programs), customisation_layer(weakened, tmp_path / "weak" / "scratch", (), programs)]
    archive = synth.write_raw_docker_archive(
        layers, {"architecture": "amd64", "os": "linux", "config": built["config"]}, tmp_path / f"{role}-weak.tar")
    failures = {failure.path for _, failures in verify_path(archive, CONTRACT) for failure in failures}
    expected = {spec["path"] for spec in part["dirs"] if spec.get("owner")} if role == "gateway" else set(part["files"])
    assert failures == expected
