"""The Nix side, checked as far as this machine allows.

nixpkgs cannot be fetched here, so nothing below builds the image. What is checked: every
.nix file parses (Debian's nix-instantiate), flake.lock is a well-formed pin, the flake takes
its values from image/contract.json (not copies of them), and the flake's wiring evaluates
against tests/image/nix-stub, a stand-in for nixpkgs that only records how it is called.
The stub proves wiring, not that nixpkgs accepts these arguments.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from image.clis import lockfile_pins
from stub_flake import StubFlake, nix_tool, pyproject_dependencies

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = json.loads((ROOT / "image" / "contract.json").read_text())
PYPROJECT_DEPS = pyproject_dependencies()
LOCK = json.loads((ROOT / "package-lock.json").read_text())
PINS = lockfile_pins(CONTRACT["clis"])
LINUX = ["aarch64-linux", "x86_64-linux"]
ALL_SYSTEMS = sorted(LINUX + ["aarch64-darwin", "x86_64-darwin"])


def repo_nix_files() -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in {".git", "node_modules", "__pycache__", ".venv", "build"}]
        found += [Path(folder) / name for name in files if name.endswith(".nix")]
    return sorted(found)


def test_every_nix_file_parses() -> None:
    files = repo_nix_files()
    assert ROOT / "flake.nix" in files and ROOT / "nix" / "image.nix" in files
    for path in files:
        result = subprocess.run([nix_tool("nix-instantiate"), "--parse", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{path.relative_to(ROOT)}: {result.stderr}"


def test_parse_check_catches_a_syntax_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.nix"
    broken.write_text((ROOT / "flake.nix").read_text().replace("outputs =", "outputs = = ", 1))
    result = subprocess.run([nix_tool("nix-instantiate"), "--parse", str(broken)], capture_output=True, text=True)
    assert result.returncode != 0


def test_flake_lock_is_a_real_looking_pin() -> None:
    lock = json.loads((ROOT / "flake.lock").read_text())
    assert lock["version"] == 7 and lock["root"] == "root"
    assert lock["nodes"]["root"]["inputs"] == {"nixpkgs": "nixpkgs"}
    locked = lock["nodes"]["nixpkgs"]["locked"]
    assert locked["type"] == "github" and (locked["owner"], locked["repo"]) == ("NixOS", "nixpkgs")
    assert re.fullmatch(r"[0-9a-f]{40}", locked["rev"])
    assert locked["narHash"].startswith("sha256-")
    assert len(base64.b64decode(locked["narHash"][len("sha256-"):], validate=True)) == 32
    assert isinstance(locked["lastModified"], int) and locked["lastModified"] > 1_600_000_000
    flake = (ROOT / "flake.nix").read_text()
    url = re.search(r'inputs\.nixpkgs\.url\s*=\s*"([^"]+)"', flake).group(1)
    assert url == f"github:NixOS/nixpkgs/{locked['rev']}"
    assert lock["nodes"]["nixpkgs"]["original"]["rev"] == locked["rev"]


def test_flake_reads_the_contract_and_copies_none_of_its_values() -> None:
    flake = (ROOT / "flake.nix").read_text()
    assert "builtins.fromJSON (builtins.readFile ./image/contract.json)" in flake
    sources = {path.relative_to(ROOT).as_posix(): path.read_text() for path in [ROOT / "flake.nix", *sorted((ROOT / "nix").glob("*.nix"))]}
    literals = [
        f'"{CONTRACT["config"]["User"]}"',
        CONTRACT["config"]["Entrypoint"][0],
        CONTRACT["user"]["home"],
        str(CONTRACT["user"]["uid"]),
        CONTRACT["baked"]["manifest"]["path"],
        CONTRACT["env"]["PATH"],
        "DISABLE_TELEMETRY",
        "AGENT_SANDBOX=",
        '"claude-code" ]',
        *(f'"{image["name"]}"' for image in CONTRACT["images"].values()),
        *(f"{image['flake_package']} =" for image in CONTRACT["images"].values()),
    ]
    for name, text in sources.items():
        code = "\n".join(line for line in text.splitlines() if not line.strip().startswith("#"))
        for literal in literals:
            assert literal not in code, f"{name} hard-codes {literal!r}; read it from the contract"


# ------------------------------------------------------------------ evaluation against the stub


@pytest.fixture(scope="module")
def flake(tmp_path_factory) -> StubFlake:
    return StubFlake(tmp_path_factory.mktemp("stub-flake"))


def test_flake_check_evaluates_every_output(flake: StubFlake) -> None:
    result = subprocess.run(
        [*flake.command("flake", "check", "--no-build"), f"path:{flake.dir}"],
        capture_output=True, text=True, env=flake.env, timeout=300,
    )
    assert result.returncode == 0, result.stderr


def test_outputs_per_system(flake: StubFlake) -> None:
    names = "o: builtins.mapAttrs (system: attrs: builtins.attrNames attrs) o"
    packages = flake.eval("packages", names)
    assert sorted(packages) == ALL_SYSTEMS
    for system in ALL_SYSTEMS:
        expected = {"agent-sandbox", "render-profiles", "default"}
        if system in LINUX:
            expected |= {"agent-image", "agent-image-root", "egress-proxy-image", "gateway-image"}
        assert set(packages[system]) == expected, system
    checks = flake.eval("checks", names)
    for system in ALL_SYSTEMS:
        images = {"agent-image-verify", "egress-proxy-image-verify", "gateway-image-verify", "agent-image-conformance"}
        expected = {"pytest", "render-profiles-check"} | (images if system in LINUX else set())
        assert set(checks[system]) == expected, system
    apps = flake.eval("apps", "o: builtins.mapAttrs (s: a: builtins.mapAttrs (n: v: v.program) a) o")
    for system in ALL_SYSTEMS:
        assert apps[system]["render-profiles"].endswith("/bin/render-profiles")
        assert apps[system]["image-verify"].endswith("/bin/image-verify")
    assert sorted(flake.eval("formatter", "f: builtins.mapAttrs (s: p: p.pname) f").items()) == [
        (system, "nixfmt") for system in ALL_SYSTEMS]


def test_image_config_comes_from_the_contract(flake: StubFlake) -> None:
    for system in LINUX:
        image = flake.eval(
            f"packages.{system}.agent-image",
            "i: { inherit (i.imageArgs) config name tag fakeRootCommands; inherit (i) contentNames allowedUnfree; }",
        )
        config = image["config"]
        assert config["User"] == CONTRACT["config"]["User"]
        assert config["Entrypoint"] == CONTRACT["config"]["Entrypoint"]
        assert config["WorkingDir"] == CONTRACT["config"]["WorkingDir"]
        assert sorted(config["Env"]) == sorted(f"{k}={v}" for k, v in CONTRACT["env"].items())
        labels = config["Labels"]
        for name, value in CONTRACT["labels"]["fixed"].items():
            assert labels[name] == value
        assert {name: labels[f"io.agent-sandbox.cli.{name}"] for name in CONTRACT["clis"]} == PINS
        assert all(labels[name] for name in CONTRACT["labels"]["non_empty"])
        assert (image["name"], image["tag"]) == (CONTRACT["images"]["agent"]["name"], CONTRACT["images"]["agent"]["tag"])
        assert image["allowedUnfree"] == CONTRACT["nix"]["unfree_allowed"] == ["claude-code"]
        assert {"claude-code", "codex", "gemini-cli", "python3-env", "bash-interactive", "coreutils", "git", "gh",
                "nss-cacert", "curl", "jq", "ripgrep"} <= set(image["contentNames"])
        script = image["fakeRootCommands"]
        for path in CONTRACT["agent_writable_dirs"] + CONTRACT["root_only_dirs"]:
            assert f"'{path}'" in script
        assert "chmod 1777 \".\u002ftmp\"".replace("\u002f", "/") in script
        assert f"chmod {CONTRACT['baked']['manifest']['mode']} \".{CONTRACT['baked']['manifest']['path']}\"" in script


def test_image_python_and_renderer_wiring(flake: StubFlake) -> None:
    package = flake.eval("packages.x86_64-linux.agent-sandbox",
                         "p: { inherit (p) dependencyNames srcEntries; imports = p.stubArgs.pythonImportsCheck; }")
    assert package["dependencyNames"] == PYPROJECT_DEPS
    # the flake's import check is pyproject's package list, whatever it holds
    assert package["imports"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert sorted(package["srcEntries"]) == ["image", "profiles", "pyproject.toml", "renderer"]
    root = flake.eval("packages.x86_64-linux.agent-image-root", "r: r.stubScript")
    assert "render-profiles --image-root \"$out\" '--profile' 'autonomous' '--profile' 'ci'" in root
    python = flake.eval("packages.x86_64-linux.agent-image", "i: i.python.packageNames")
    assert python == ["agent-sandbox"]
    shell = flake.eval("devShells.aarch64-darwin.default", "s: s.packageNames")
    assert {"python3-env", "nodejs", "claude-code", "codex", "gemini-cli"} <= set(shell)


def test_a_changed_contract_changes_the_image(tmp_path: Path) -> None:
    contract = json.loads(json.dumps(CONTRACT))
    contract["config"]["User"] = "4242:4242"
    contract["env"]["EXTRA_SWITCH"] = "on"
    changed = StubFlake(tmp_path / "changed", contract)
    config = changed.eval("packages.x86_64-linux.agent-image", "i: i.imageArgs.config")
    assert config["User"] == "4242:4242"
    assert "EXTRA_SWITCH=on" in config["Env"]


def test_image_names_and_packages_come_from_the_contract(tmp_path: Path) -> None:
    contract = json.loads(json.dumps(CONTRACT))
    contract["images"]["agent"].update(name="renamed-agent", tag="v9", flake_package="renamed-agent-pkg")
    contract["images"]["proxy"].update(name="renamed-proxy", flake_package="renamed-proxy-pkg")
    changed = StubFlake(tmp_path, contract)
    names = changed.eval("packages.x86_64-linux", "p: builtins.attrNames p")
    assert {"renamed-agent-pkg", "renamed-proxy-pkg"} <= set(names)
    assert not {"agent-image", "egress-proxy-image"} & set(names)
    agent = changed.eval("packages.x86_64-linux.renamed-agent-pkg", "i: { inherit (i.imageArgs) name tag; }")
    assert agent == {"name": "renamed-agent", "tag": "v9"}
    proxy = changed.eval("packages.x86_64-linux.renamed-proxy-pkg", "i: { inherit (i.imageArgs) name tag config; }")
    assert (proxy["name"], proxy["tag"]) == ("renamed-proxy", "latest")
    assert proxy["config"]["Entrypoint"] == CONTRACT["images"]["proxy"]["config"]["Entrypoint"]
    assert proxy["config"]["Cmd"] == CONTRACT["images"]["proxy"]["config"]["Cmd"]


def test_unfree_allowance_comes_from_the_contract(tmp_path: Path) -> None:
    contract = json.loads(json.dumps(CONTRACT))
    contract["nix"]["unfree_allowed"] = []
    changed = StubFlake(tmp_path, contract)
    # with claude-code no longer allowed, the stub refuses it, as nixpkgs would
    result = subprocess.run(
        [*changed.command("eval", "--json", f"path:{changed.dir}#packages.x86_64-linux.agent-image.imageArgs.contents")],
        capture_output=True, text=True, env=changed.env, timeout=120,
    )
    assert result.returncode != 0 and "unfree package claude-code refused" in result.stderr


def test_checks_run_the_suite_and_the_render_check_in_the_source(flake: StubFlake) -> None:
    pytest_script = flake.eval("checks.x86_64-linux.pytest", "c: c.stubScript")
    assert "python -m pytest tests -q -p no:cacheprovider --ignore=tests/image_podman" in pytest_script
    assert "cd source" in pytest_script
    render_script = flake.eval("checks.aarch64-darwin.render-profiles-check", "c: c.stubScript")
    assert "render-profiles --check" in render_script
    verify_script = flake.eval("checks.aarch64-linux.agent-image-verify", "c: c.stubScript")
    assert re.search(r"/nix/store/\S+-stream-agent-image > image.tar\n", verify_script)
    assert re.search(r"/nix/store/\S+/bin/image-verify --image agent --lockfile "
                     r"/nix/store/\S+-agent-sandbox-clis-npm/package-lock.json image.tar\n", verify_script)
    for role, check in (("proxy", "egress-proxy-image-verify"), ("gateway", "gateway-image-verify")):
        script = flake.eval(f"checks.x86_64-linux.{check}", "c: c.stubScript")
        name = CONTRACT["images"][role]["name"]
        assert re.search(rf"/nix/store/\S+-stream-{name} > image.tar\n", script), script
        assert f"image-verify --image {role} --lockfile " in script


def test_service_images_come_from_their_contract_parts(flake: StubFlake) -> None:
    for role, package in (("proxy", "egress-proxy-image"), ("gateway", "gateway-image")):
        part = CONTRACT["images"][role]
        image = flake.eval(
            f"packages.x86_64-linux.{package}",
            "i: { inherit (i.imageArgs) config name tag fakeRootCommands; inherit (i) contentNames;"
            " passwd = i.passwd.stubText; group = i.group.stubText; }",
        )
        assert (image["name"], image["tag"]) == (part["name"], part["tag"])
        config = image["config"]
        assert config["Entrypoint"] == part["config"]["Entrypoint"] and config["Cmd"] == part["config"]["Cmd"]
        assert config.get("User") == part["config"].get("User")
        assert sorted(config["Env"]) == sorted(f"{k}={v}" for k, v in part["env"].items())
        assert config["Labels"]["io.agent-sandbox.image"] == role
        assert config["Labels"]["org.opencontainers.image.title"] == part["title"]
        assert image["passwd"].startswith(f"root:x:0:0:root:/root:{CONTRACT['root']['shell']}\n")
        for spec in part["dirs"]:
            if "owner" in spec:
                assert f'chown {spec["owner"]}:{spec["owner"]} ".{spec["path"]}"' in image["fakeRootCommands"]
                assert f'chmod {spec["mode"]} ".{spec["path"]}"' in image["fakeRootCommands"]
    gateway = flake.eval("packages.x86_64-linux.gateway-image",
                         "i: { contents = i.contentNames; python = i.python.packageNames; passwd = i.passwd.stubText; }")
    user = CONTRACT["images"]["gateway"]["user"]
    assert f"{user['name']}:x:{user['uid']}:{user['gid']}:" in gateway["passwd"]
    assert "python3-env" in gateway["contents"] and gateway["python"] == ["agent-sandbox"]



# ------------------------------------------------------------------ the CLIs: from package-lock.json


def registry_url(key: str, entry: dict) -> str:
    name = entry.get("name") or key.rsplit("node_modules/", 1)[1]
    return f"https://registry.npmjs.org/{name}/-/{name.rsplit('/', 1)[-1]}-{entry['version']}.tgz"


def test_the_cli_derivations_are_built_from_the_projects_lockfile(flake: StubFlake) -> None:
    for system, platform in (("x86_64-linux", "linux-x64"), ("aarch64-linux", "linux-arm64")):
        clis = flake.eval(
            f"packages.{system}.agent-image",
            "i: builtins.mapAttrs (n: c: { inherit (c) version npm; install = c.stubArgs.installPhase;"
            " lock = c.nodeModules.npmDeps.stubPackageLock; package = c.nodeModules.npmDeps.stubPackage;"
            " rebuild = c.nodeModules.stubArgs.npmRebuildFlags; }) i.clis",
        )
        assert sorted(clis) == sorted(CONTRACT["clis"])
        for name, cli in clis.items():
            assert cli["version"] == PINS[name] and cli["npm"] == CONTRACT["clis"][name]["npm"]
            assert cli["package"] == json.loads((ROOT / "package.json").read_text())
            assert cli["rebuild"] == ["--ignore-scripts"]
            lock = cli["lock"]
            assert set(lock["packages"]) == set(LOCK["packages"])  # every entry, the lockfile's
            for key, entry in LOCK["packages"].items():
                if not key:
                    continue
                fed = lock["packages"][key]
                assert fed["integrity"] == entry["integrity"] and fed["version"] == entry["version"], key
                assert fed["resolved"] == registry_url(key, entry), key
        assert f"@anthropic-ai/claude-code-{platform}/claude" in clis["claude-code"]["install"]
        assert f"@openai/codex-{platform}" in clis["codex"]["install"]
        assert f"@lydell/$pty" in clis["gemini-cli"]["install"] and "node-pty-" + platform in clis["gemini-cli"]["install"]
    # the alias Codex uses for its platform packages resolves to the real package's tarball
    aliased = clis["codex"]["lock"]["packages"]["node_modules/@openai/codex-linux-x64"]["resolved"]
    assert aliased == f"https://registry.npmjs.org/@openai/codex/-/codex-{PINS['codex']}-linux-x64.tgz"


def test_no_nixpkgs_cli_attribute_reaches_the_flake(flake: StubFlake) -> None:
    """The stub's claude-code, codex and gemini-cli throw when touched; every output still
    evaluates (flake check above), and the image's contents are the lockfile-built CLIs."""
    stub = (ROOT / "tests" / "image" / "nix-stub" / "default.nix").read_text()
    for attr in ("claude-code", "codex", "gemini-cli"):
        assert f"{attr} = throw" in stub
    assert "cli_packages" not in json.dumps(CONTRACT)
    contents = flake.eval("packages.x86_64-linux.agent-image",
                          "i: map (c: { name = c.pname or c.name; version = c.version or null; }) i.imageArgs.contents")
    versions = {item["name"]: item["version"] for item in contents}
    assert {name: versions[name] for name in CONTRACT["clis"]} == PINS
    shell = flake.eval("devShells.x86_64-linux.default", "s: s.packageNames")
    assert set(CONTRACT["clis"]) <= set(shell)


def test_a_version_bump_in_the_lockfile_reaches_the_image(tmp_path: Path) -> None:
    bumped = StubFlake(tmp_path / "bumped")
    lock = json.loads((bumped.dir / "package-lock.json").read_text())
    lock["packages"]["node_modules/@google/gemini-cli"]["version"] = "0.62.0"
    lock["packages"]["node_modules/@google/gemini-cli"]["integrity"] = "sha512-" + "A" * 86 + "=="
    (bumped.dir / "package-lock.json").write_text(json.dumps(lock))
    labels = bumped.eval("packages.x86_64-linux.agent-image", "i: i.imageArgs.config.Labels")
    assert labels["io.agent-sandbox.cli.gemini-cli"] == "0.62.0"
    assert labels["io.agent-sandbox.cli.claude-code"] == PINS["claude-code"]
    fed = bumped.eval("packages.x86_64-linux.agent-image",
                      "i: i.clis.gemini-cli.nodeModules.npmDeps.stubPackageLock.packages")
    assert fed["node_modules/@google/gemini-cli"]["resolved"].endswith("/gemini-cli-0.62.0.tgz")


def test_a_lockfile_without_a_cli_stops_the_evaluation(tmp_path: Path) -> None:
    broken = StubFlake(tmp_path / "broken")
    lock = json.loads((broken.dir / "package-lock.json").read_text())
    del lock["packages"]["node_modules/@openai/codex"]
    (broken.dir / "package-lock.json").write_text(json.dumps(lock))
    result = subprocess.run(
        [*broken.command("eval", "--json", f"path:{broken.dir}#packages.x86_64-linux.agent-image.imageArgs.config.Labels")],
        capture_output=True, text=True, env=broken.env, timeout=120)
    assert result.returncode != 0 and "node_modules/@openai/codex" in result.stderr


def test_the_flake_runs_the_matrix_inside_the_nix_image(flake: StubFlake) -> None:
    """Evaluated only: the VM test has not run here (no nixpkgs, no KVM). It loads the image
    the flake builds and runs the same in-image matrix CI runs on the stand-in."""
    check = flake.eval("checks.x86_64-linux.agent-image-conformance",
                       "c: { script = c.stubTestScript; packages = map (p: p.pname or p.name) "
                       "c.stubNodes.machine.environment.systemPackages; podman = c.stubNodes.machine.virtualisation.podman.enable; }")
    script = check["script"]
    assert re.search(r"/nix/store/\S+-stream-agent-image \| podman load", script)
    assert "python3 tests/conformance/image_matrix.py --image 'agent-image:latest'" in script
    assert re.search(r"ln -s /nix/store/\S+-agent-sandbox-clis-node-modules-\S+/node_modules /root/src/node_modules", script)
    assert check["podman"] is True and {"git", "iproute2"} <= set(check["packages"])
