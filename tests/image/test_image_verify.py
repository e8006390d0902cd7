"""image-verify against synthetic images: one good image and one per failure kind, in every
archive form the verifier reads (docker-archive .tar and .tar.gz, OCI layout folder and tar)."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Callable

import pytest

import image_synth as synth
from image.clis import PACKAGE_LOCK, lockfile_pins
from image.verify import load_contract, verify_path

CONTRACT = load_contract()
USER = CONTRACT["user"]
MANIFEST = CONTRACT["baked"]["manifest"]["path"]
CLAUDE_MANAGED = "/etc/claude-code/managed-settings.json"
SHIMS_DIR = CONTRACT["baked"]["shims_dir"]
SHIM = SHIMS_DIR + "/git"
SHIMS = [f"{SHIMS_DIR}/{program}" for program in synth.GUARDED]
RUNTIME_CI = CONTRACT["baked"]["runtime_profiles_dir"] + "/ci.json"


def failures_of(path: Path) -> set[tuple[str, str]]:
    results = verify_path(path, CONTRACT)
    return {(name, failure.path) for name, failures in results for failure in failures}


def failure_paths(path: Path) -> set[str]:
    return {failure_path for _, failure_path in failures_of(path)}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    executable = shutil.which("image-verify")
    assert executable, "the image-verify console script is not installed (pip install -e .)"
    return subprocess.run([executable, *args], capture_output=True, text=True, timeout=60)


# ------------------------------------------------------------------ mutations: one per failure kind


def set_config(key: str, value) -> Callable[[synth.Spec], None]:
    def mutate(spec: synth.Spec) -> None:
        spec.config["config"][key] = value
    return mutate


def set_env(name: str, value: str | None) -> Callable[[synth.Spec], None]:
    def mutate(spec: synth.Spec) -> None:
        env = spec.env()
        if value is None:
            env.pop(name)
        else:
            env[name] = value
        spec.set_env(env)
    return mutate


def set_label(name: str, value: str | None) -> Callable[[synth.Spec], None]:
    def mutate(spec: synth.Spec) -> None:
        labels = spec.config["config"]["Labels"]
        if value is None:
            labels.pop(name)
        else:
            labels[name] = value
    return mutate


def add_node(node: synth.Node, layer: int = -1) -> Callable[[synth.Spec], None]:
    def mutate(spec: synth.Spec) -> None:
        spec.layers[layer].append(node)
    return mutate


def add_top_layer(*nodes: synth.Node) -> Callable[[synth.Spec], None]:
    def mutate(spec: synth.Spec) -> None:
        spec.layers.append(list(nodes))
    return mutate


def change(path: str, **fields) -> Callable[[synth.Spec], None]:
    def mutate(spec: synth.Spec) -> None:
        node = spec.find(path)
        for key, value in fields.items():
            setattr(node, key, value)
    return mutate


def drop(path: str) -> Callable[[synth.Spec], None]:
    def mutate(spec: synth.Spec) -> None:
        spec.drop(path)
    return mutate


def rewrite_manifest(**overrides) -> Callable[[synth.Spec], None]:
    def mutate(spec: synth.Spec) -> None:
        files = synth.baked_files(CONTRACT)
        document = json.loads(synth.manifest_bytes(CONTRACT, files))
        for key, value in overrides.items():
            if key == "drop":
                for path in [value] if isinstance(value, str) else value:
                    del document["files"][path]
            elif key == "record":
                path, fields = value
                document["files"][path].update(fields)
            else:
                document[key] = value
        spec.find(MANIFEST).data = json.dumps(document).encode()
    return mutate


def rebake(path: str, data: bytes) -> Callable[[synth.Spec], None]:
    """Change a baked file and re-render the manifest to match: a renderer bug, not tampering."""
    def mutate(spec: synth.Spec) -> None:
        files = synth.baked_files(CONTRACT)
        files[path] = (data, files[path][1])
        spec.find(path).data = data
        spec.find(MANIFEST).data = synth.manifest_bytes(CONTRACT, files)
    return mutate


def passwd(text: str) -> Callable[[synth.Spec], None]:
    return change("/etc/passwd", data=text.encode())


ROOT_LINE = f"root:x:0:0:root:/root:{CONTRACT['root']['shell']}\n"
AGENT_LINE = f"{USER['name']}:x:{USER['uid']}:{USER['gid']}:{USER['name']}:{USER['home']}:{USER['shell']}\n"

CASES: dict[str, tuple[Callable[[synth.Spec], None], set[str]]] = {
    "user-empty-runs-as-root": (set_config("User", ""), {"config.User"}),
    "user-root": (set_config("User", "0:0"), {"config.User"}),
    "user-by-name": (set_config("User", "agent"), {"config.User"}),
    "entrypoint-shell": (set_config("Entrypoint", ["/bin/bash"]), {"config.Entrypoint"}),
    "entrypoint-missing": (set_config("Entrypoint", None), {"config.Entrypoint"}),
    "workdir": (set_config("WorkingDir", "/"), {"config.WorkingDir"}),
    "env-sandbox-missing": (set_env("AGENT_SANDBOX", None), {"config.Env.AGENT_SANDBOX"}),
    "env-sandbox-0": (set_env("AGENT_SANDBOX", "0"), {"config.Env.AGENT_SANDBOX"}),
    "env-path-without-shims": (set_env("PATH", "/usr/local/bin:/usr/bin:/bin"), {"config.Env.PATH"}),
    "env-quiet-switch-missing": (set_env("DISABLE_TELEMETRY", None), {"config.Env.DISABLE_TELEMETRY"}),
    "env-token": (set_env("GH_TOKEN", "ghp_example"), {"config.Env.GH_TOKEN"}),
    "env-api-key-lowercase": (set_env("my_api_key", "abc"), {"config.Env.my_api_key"}),
    "env-secret": (set_env("CLIENT_SECRET", "s"), {"config.Env.CLIENT_SECRET"}),
    "env-password": (set_env("DB_PASSWORD", "p"), {"config.Env.DB_PASSWORD"}),
    "env-credential-nonempty": (set_env("ANTHROPIC_API_KEY", "sk-ant-x"), {"config.Env.ANTHROPIC_API_KEY"}),
    "label-missing": (set_label("org.opencontainers.image.revision", None), {"config.Labels.org.opencontainers.image.revision"}),
    "label-empty": (set_label("io.agent-sandbox.cli.codex", ""), {"config.Labels.io.agent-sandbox.cli.codex"}),
    "cli-label-not-the-lockfiles-pin": (set_label("io.agent-sandbox.cli.claude-code", "2.1.90"),
                                        {"config.Labels.io.agent-sandbox.cli.claude-code"}),
    "label-wrong-profiles": (set_label("io.agent-sandbox.profiles", "autonomous"), {"config.Labels.io.agent-sandbox.profiles"}),
    "setuid-file": (add_node(synth.Node("/usr/bin/passwd", data=b"x", mode=0o4755)), {"/usr/bin/passwd"}),
    "setgid-file": (add_node(synth.Node("/usr/bin/wall", data=b"x", mode=0o2755)), {"/usr/bin/wall"}),
    "setuid-in-store": (add_node(synth.Node(synth.STORE + "/bin/newuidmap", data=b"x", mode=0o4555), 1), {synth.STORE + "/bin/newuidmap"}),
    "sudo": (add_node(synth.Node("/usr/local/bin/sudo", data=b"x", mode=0o755)), {"/usr/local/bin/sudo"}),
    "su-symlink": (add_node(synth.Node("/usr/sbin/su", "symlink", mode=0o777, target="/usr/bin/bash")), {"/usr/sbin/su"}),
    "doas": (add_node(synth.Node("/usr/bin/doas", data=b"x", mode=0o755)), {"/usr/bin/doas"}),
    "whiteout-missing": (drop("/usr/bin/.wh.sudo"), {"/usr/bin/sudo"}),
    "opaque-marker-missing": (drop("/opt/old/.wh..wh..opq"), {"/opt/old/su", "/opt/old/wall"}),
    "passwd-whited-out": (add_top_layer(synth.Node("/etc/.wh.passwd")), {"/etc/passwd"}),
    "passwd-agent-wrong-uid": (passwd(ROOT_LINE + AGENT_LINE.replace(":1000:1000:", ":1001:1000:")), {"/etc/passwd"}),
    "passwd-agent-wrong-home": (passwd(ROOT_LINE + AGENT_LINE.replace(USER["home"], "/root")), {"/etc/passwd"}),
    "passwd-root-login-shell": (passwd("root:x:0:0:root:/root:/bin/bash\n" + AGENT_LINE), {"/etc/passwd"}),
    "passwd-second-uid-0": (passwd(ROOT_LINE + AGENT_LINE + "toor:x:0:0::/:/sbin/nologin\n"), {"/etc/passwd"}),
    "group-missing-agent": (change("/etc/group", data=b"root:x:0:\n"), {"/etc/group"}),
    "home-root-owned": (change(USER["home"], uid=0, gid=0), {USER["home"]}),
    "cli-dir-missing": (drop("/home/agent/.claude"), {"/home/agent/.claude"}),
    "workspace-read-only": (change("/workspace", mode=0o555), {"/workspace"}),
    "tmp-not-sticky": (change("/tmp", mode=0o777), {"/tmp"}),
    "tmp-missing": (drop("/tmp"), {"/tmp"}),
    "system-dir-group-writable": (change("/etc/gemini-cli", mode=0o775), {"/etc/gemini-cli"}),
    "system-dir-agent-owned": (change("/etc/codex", uid=1000, gid=1000), {"/etc/codex"}),
    "baked-file-missing": (drop("/etc/codex/requirements.toml"), {"/etc/codex/requirements.toml"}),
    "baked-file-edited": (change(CLAUDE_MANAGED, data=b'{"permissions": {}}'), {CLAUDE_MANAGED}),
    "baked-file-mode": (change(CLAUDE_MANAGED, mode=0o644), {CLAUDE_MANAGED}),
    "baked-file-agent-owned": (change(CLAUDE_MANAGED, uid=1000, gid=1000), {CLAUDE_MANAGED}),
    "baked-file-world-writable": (change(CLAUDE_MANAGED, mode=0o666), {CLAUDE_MANAGED}),
    "baked-shim-store-target-edited": (change(synth.STORE + "-shims" + SHIM, data=b"#!/bin/sh\nexec git \"$@\"\n"), {SHIM}),
    "baked-dir-opaque-whiteout": (add_top_layer(synth.Node("/etc/claude-code/.wh..wh..opq")), {CLAUDE_MANAGED}),
    "manifest-missing": (drop(MANIFEST), {MANIFEST}),
    "manifest-not-json": (change(MANIFEST, data=b"{not json"), {MANIFEST}),
    "manifest-no-files": (change(MANIFEST, data=b'{"format": 1}'), {MANIFEST}),
    "manifest-agent-writable": (change(MANIFEST, mode=0o666), {MANIFEST}),
    "manifest-wrong-format": (rewrite_manifest(format=2), {MANIFEST}),
    "manifest-wrong-profiles": (rewrite_manifest(profiles=["interactive"]), {MANIFEST}),
    "manifest-lacks-required": (rewrite_manifest(drop="/etc/codex/requirements.toml"), {"/etc/codex/requirements.toml"}),
    "manifest-lacks-a-guarded-shim": (rewrite_manifest(drop=SHIM), {SHIM}),
    "manifest-lacks-all-shims": (rewrite_manifest(drop=SHIMS), {CONTRACT["baked"]["required_prefixes"][0], *SHIMS}),
    "default-profile-not-baked": (set_env("AGENT_PROFILE", "interactive"), {"config.Env.AGENT_PROFILE"}),
    "runtime-profile-not-json": (rebake(RUNTIME_CI, b"not json"), {RUNTIME_CI}),
    "runtime-profile-without-guarded-list": (rebake(RUNTIME_CI, b'{"format": 1}'), {RUNTIME_CI}),
    "runtime-profile-guards-unshimmed-program": (
        rebake(RUNTIME_CI, json.dumps({"guarded_programs": ["git", "npm"]}).encode()), {SHIMS_DIR + "/npm"}),
    "manifest-claims-agent-owner": (rewrite_manifest(record=(CLAUDE_MANAGED, {"owner": 1000})), {CLAUDE_MANAGED}),
    "manifest-claims-writable-mode": (rewrite_manifest(record=(CLAUDE_MANAGED, {"mode": "0666"})), {CLAUDE_MANAGED}),
    "program-missing": (drop("/usr/bin/jq"), {"PATH/jq"}),
    "program-not-executable": (change("/usr/bin/gh", mode=0o644), {"PATH/gh"}),
    "cli-dangling-symlink": (drop(synth.STORE + "/bin/codex"), {"PATH/codex"}),
    "ca-bundle-dangling": (drop(synth.STORE + "/etc/ssl/certs/ca-bundle.crt"), {CONTRACT["env"]["SSL_CERT_FILE"]}),
}


@pytest.mark.parametrize("form", synth.FORMATS)
def test_good_image_passes(tmp_path: Path, form: str) -> None:
    image = synth.write_image(synth.good_spec(CONTRACT), form, tmp_path)
    assert failures_of(image) == set()
    result = run_cli(str(image))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


@pytest.mark.parametrize("form", synth.FORMATS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_failure_kind_is_reported_alone(tmp_path: Path, form: str, case: str) -> None:
    mutate, expected = CASES[case]
    spec = synth.good_spec(CONTRACT)
    mutate(spec)
    image = synth.write_image(spec, form, tmp_path)
    assert failure_paths(image) == expected


@pytest.mark.parametrize("form", synth.FORMATS)
def test_cli_prints_path_and_fix_and_exits_1(tmp_path: Path, form: str) -> None:
    spec = synth.good_spec(CONTRACT)
    set_config("User", "0:0")(spec)
    add_node(synth.Node("/usr/bin/passwd", data=b"x", mode=0o4755))(spec)
    image = synth.write_image(spec, form, tmp_path)
    result = run_cli(str(image))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL config.User:" in result.stdout
    assert "FAIL /usr/bin/passwd: mode 4755 has the setuid/setgid bit" in result.stdout
    assert result.stdout.count("fix: ") == 2
    assert "2 failure(s)" in result.stdout


def test_whiteouts_hide_only_their_target(tmp_path: Path) -> None:
    spec = synth.good_spec(CONTRACT)
    spec.layers[0].append(synth.Node("/usr/bin/sudoers-lint", data=b"x", mode=0o4755))
    image = synth.write_image(spec, "docker-tar", tmp_path)
    assert failure_paths(image) == {"/usr/bin/sudoers-lint"}


def test_layer_replacing_a_folder_with_a_file_drops_its_children(tmp_path: Path) -> None:
    spec = synth.good_spec(CONTRACT)
    spec.drop("/opt/old/.wh..wh..opq")
    spec.layers.append([synth.Node("/opt/old", data=b"now a file", mode=0o644)])
    image = synth.write_image(spec, "docker-tar", tmp_path)
    assert failure_paths(image) == set()


def test_multi_platform_index_reports_the_bad_platform(tmp_path: Path) -> None:
    good = synth.good_spec(CONTRACT)
    bad = synth.good_spec(CONTRACT)
    bad.platform = ("linux", "arm64")
    set_env("AGENT_SANDBOX", "0")(bad)
    image = synth.write_oci_dir([good, bad], tmp_path / "oci", nested_index=True)
    assert failures_of(image) == {("latest:linux/arm64", "config.Env.AGENT_SANDBOX")}
    result = run_cli(str(image))
    assert result.returncode == 1
    assert "[latest:linux/arm64] FAIL config.Env.AGENT_SANDBOX" in result.stdout
    assert "latest:linux/amd64: OK" in result.stdout


def test_gzip_compressed_docker_layers_are_read(tmp_path: Path) -> None:
    spec = synth.good_spec(CONTRACT)
    archive = synth.write_docker_archive(spec, tmp_path / "plain.tar")
    rewritten = tmp_path / "gz-layers.tar"
    with tarfile.open(archive) as source, tarfile.open(rewritten, "w") as target:
        for info in source.getmembers():
            data = source.extractfile(info).read() if info.isfile() else b""
            if info.name.endswith("layer.tar"):
                data = gzip.compress(data)
            info.size = len(data)
            target.addfile(info, io.BytesIO(data))
    assert failure_paths(rewritten) == set()


@pytest.mark.parametrize("suffix,compress", [("tar.xz", lzma.compress), ("tar.bz2", bz2.compress)])
def test_xz_and_bzip2_archives_are_read(tmp_path: Path, suffix: str, compress) -> None:
    plain = synth.write_docker_archive(synth.good_spec(CONTRACT), tmp_path / "image.tar")
    packed = tmp_path / f"image.{suffix}"
    packed.write_bytes(compress(plain.read_bytes()))
    assert failure_paths(packed) == set()


# ------------------------------------------------------------------ unreadable input: exit 2


def not_a_tar(folder: Path) -> Path:
    path = folder / "image.tar"
    path.write_bytes(b"this is not an archive" * 100)
    return path


def empty_folder(folder: Path) -> Path:
    path = folder / "empty"
    path.mkdir()
    return path


def docker_manifest(content: bytes) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / "image.tar"
        with tarfile.open(path, "w") as tar:
            synth.add_bytes(tar, "manifest.json", content)
        return path
    return build


def missing_layer(folder: Path) -> Path:
    path = synth.write_docker_archive(synth.good_spec(CONTRACT), folder / "full.tar")
    broken = folder / "image.tar"
    dropped = False  # the first layer, wherever the archive puts it
    with tarfile.open(path) as source, tarfile.open(broken, "w") as target:
        for info in source.getmembers():
            if info.name.endswith("layer.tar") and not dropped:
                dropped = True
                continue
            target.addfile(info, source.extractfile(info) if info.isfile() else None)
    return broken


def garbage_layer(folder: Path) -> Path:
    path = folder / "image.tar"
    with tarfile.open(path, "w") as tar:
        synth.add_bytes(tar, "layer/layer.tar", b"\x28\xb5\x2f\xfd" + b"zstd is not read" * 64)
        synth.add_bytes(tar, "config.json", json.dumps({"config": {}}).encode())
        synth.add_bytes(tar, "manifest.json", json.dumps([{"Config": "config.json", "Layers": ["layer/layer.tar"]}]).encode())
    return path


def oci_bad_digest(folder: Path) -> Path:
    path = folder / "oci"
    path.mkdir()
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"manifests": [{"digest": "sha256:../../etc/passwd"}]}))
    return path


def oci_missing_blob(folder: Path) -> Path:
    path = synth.write_oci_dir([synth.good_spec(CONTRACT)], folder / "oci")
    for blob in sorted((path / "blobs" / "sha256").iterdir()):
        if blob.stat().st_size > 1000:
            blob.unlink()
            break
    return path


def truncated_gzip(folder: Path) -> Path:
    path = synth.write_docker_archive(synth.good_spec(CONTRACT), folder / "image.tar.gz", compress=True)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


UNREADABLE: dict[str, Callable[[Path], Path]] = {
    "truncated-gzip": truncated_gzip,
    "nonexistent": lambda folder: folder / "nope.tar",
    "not-a-tar": not_a_tar,
    "empty-folder": empty_folder,
    "manifest-not-json": docker_manifest(b"[{"),
    "manifest-not-list": docker_manifest(b'{"Config": "x"}'),
    "manifest-config-missing": docker_manifest(b'[{"Config": "absent.json", "Layers": []}]'),
    "layer-missing": missing_layer,
    "layer-not-tar": garbage_layer,
    "oci-bad-digest": oci_bad_digest,
    "oci-missing-blob": oci_missing_blob,
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_input_exits_2_naming_the_file(tmp_path: Path, case: str) -> None:
    image = UNREADABLE[case](tmp_path)
    result = run_cli(str(image))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("image-verify: ")
    assert str(image.name) in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_contract_exits_2(tmp_path: Path) -> None:
    image = synth.write_image(synth.good_spec(CONTRACT), "docker-tar", tmp_path)
    contract = tmp_path / "contract.json"
    contract.write_text(json.dumps({"format": 1}))
    result = run_cli(str(image), "--contract", str(contract))
    assert result.returncode == 2
    assert "contract.json" in result.stderr and "is a required property" in result.stderr
    assert "Traceback" not in result.stderr


def test_contract_with_a_wrong_nested_key_exits_2(tmp_path: Path) -> None:
    image = synth.write_image(synth.good_spec(CONTRACT), "docker-tar", tmp_path)
    contract = json.loads(json.dumps(CONTRACT))
    del contract["baked"]["manifest"]["path"]
    contract["config"]["User"] = "root"
    path = tmp_path / "contract.json"
    path.write_text(json.dumps(contract))
    result = run_cli(str(image), "--contract", str(path))
    assert result.returncode == 2
    assert "baked.manifest: 'path' is a required property" in result.stderr
    assert "config.User: 'root' does not match" in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------ the CLI labels: package-lock.json's pins


def test_a_cli_label_that_is_not_the_lockfiles_pin_names_both(tmp_path: Path) -> None:
    spec = synth.good_spec(CONTRACT)
    set_label("io.agent-sandbox.cli.gemini-cli", "0.22.0")(spec)  # a nixpkgs-era version
    image = synth.write_image(spec, "docker-tar", tmp_path)
    result = run_cli(str(image))
    assert result.returncode == 1, result.stdout + result.stderr
    pin = lockfile_pins(CONTRACT["clis"])["gemini-cli"]
    line = next(line for line in result.stdout.splitlines() if "io.agent-sandbox.cli.gemini-cli" in line)
    assert "'0.22.0'" in line and f"@google/gemini-cli at '{pin}'" in line and "package-lock.json" in line


def test_the_labels_are_held_to_the_lockfile_given(tmp_path: Path) -> None:
    """A good image fails against a lockfile that pins another version: the check reads the file."""
    lock = json.loads(PACKAGE_LOCK.read_text())
    lock["packages"]["node_modules/@openai/codex"]["version"] = "0.170.0"
    bumped = tmp_path / "package-lock.json"
    bumped.write_text(json.dumps(lock))
    image = synth.write_image(synth.good_spec(CONTRACT), "docker-tar", tmp_path)
    assert run_cli(str(image)).returncode == 0
    result = run_cli("--lockfile", str(bumped), str(image))
    assert result.returncode == 1
    assert f"but {bumped} pins @openai/codex at '0.170.0'" in result.stdout


def test_an_unreadable_lockfile_exits_2_naming_it(tmp_path: Path) -> None:
    image = synth.write_image(synth.good_spec(CONTRACT), "docker-tar", tmp_path)
    missing = tmp_path / "nowhere" / "package-lock.json"
    result = run_cli("--lockfile", str(missing), str(image))
    assert result.returncode == 2
    assert str(missing) in result.stderr and "--lockfile" in result.stderr
    incomplete = tmp_path / "lock.json"
    incomplete.write_text(json.dumps({"lockfileVersion": 3, "packages": {}}))
    result = run_cli("--lockfile", str(incomplete), str(image))
    assert result.returncode == 2
    assert 'packages["node_modules/@anthropic-ai/claude-code"].version is missing' in result.stderr


def test_help_and_version() -> None:
    result = run_cli("--help")
    assert result.returncode == 0 and "--run ENGINE" in result.stdout and "--lockfile" in result.stdout
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("image-verify ")


def test_the_archive_reader_needs_only_the_standard_library() -> None:
    """image/archive.py reads images; the contract checks (and jsonschema) live in image/verify.py."""
    root = Path(__file__).resolve().parents[2]
    probe = (f"import sys; sys.path.insert(0, {str(root)!r}); before = set(sys.modules); import image.archive; "
             "print(' '.join(sorted(m for m in set(sys.modules) - before "
             "if m.split('.')[0] not in sys.stdlib_module_names)))")
    result = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["image", "image.archive"]
