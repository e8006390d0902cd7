"""One list of CLI versions: package.json names them, `npm install` writes package-lock.json,
and node_modules, the conformance matrix's published proof and the images follow the lockfile.
A bump that stops half-way fails here, naming the step that is missing."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from image.clis import BUMP_STEPS, bump_problems, lockfile_pins

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = json.loads((ROOT / "image" / "contract.json").read_text())
CLIS = CONTRACT["clis"]
TITLES = {"claude-code": "Claude Code", "codex": "Codex CLI", "gemini-cli": "Gemini CLI"}


def proved_versions(doc: Path = ROOT / "docs" / "conformance.md") -> dict[str, str]:
    """The versions docs/conformance.md says the matrix ran, by CLI key."""
    text = doc.read_text()
    found = {}
    for name, cli in CLIS.items():
        match = re.search(rf"{re.escape(TITLES[name])} (\S+) \(`{re.escape(cli['npm'])}`\)", text)
        if match:
            found[name] = match.group(1)
    return found


def test_package_json_lockfile_node_modules_and_the_proof_agree() -> None:
    assert proved_versions(), "docs/conformance.md names no CLI versions; regenerate it: " + BUMP_STEPS[3]
    assert bump_problems(CLIS, node_modules=ROOT / "node_modules", proved=proved_versions()) == []


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """package.json, package-lock.json and the CLIs' package.json files of node_modules, copied."""
    for name in ("package.json", "package-lock.json"):
        shutil.copy(ROOT / name, tmp_path / name)
    for cli in CLIS.values():
        target = tmp_path / "node_modules" / cli["npm"] / "package.json"
        target.parent.mkdir(parents=True)
        shutil.copy(ROOT / "node_modules" / cli["npm"] / "package.json", target)
    return tmp_path


def problems_in(folder: Path, proved: dict[str, str] | None = None) -> list[str]:
    pins = lockfile_pins(CLIS, folder / "package-lock.json")
    return bump_problems(CLIS, folder / "package.json", folder / "package-lock.json", folder / "node_modules",
                         proved if proved is not None else pins)


def edit_json(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def test_a_copy_of_this_checkout_is_in_step(checkout: Path) -> None:
    assert problems_in(checkout) == []


def test_package_json_bumped_without_npm_install(checkout: Path) -> None:
    edit_json(checkout / "package.json", lambda d: d["dependencies"].update({"@openai/codex": "0.170.0"}))
    [problem] = problems_in(checkout)
    assert "@openai/codex" in problem and "'0.170.0'" in problem and BUMP_STEPS[1] in problem


def test_a_version_range_is_refused(checkout: Path) -> None:
    edit_json(checkout / "package.json", lambda d: d["dependencies"].update({"@google/gemini-cli": "^0.61.0"}))
    [problem] = problems_in(checkout)
    assert "not an exact version" in problem and BUMP_STEPS[0] in problem


def bump_lock(folder: Path, npm: str, version: str) -> None:
    def change(lock: dict) -> None:
        lock["packages"][""]["dependencies"][npm] = version
        lock["packages"][f"node_modules/{npm}"]["version"] = version
    edit_json(folder / "package-lock.json", change)
    edit_json(folder / "package.json", lambda d: d["dependencies"].update({npm: version}))


def test_npm_install_ran_but_node_modules_is_stale(checkout: Path) -> None:
    bump_lock(checkout, "@anthropic-ai/claude-code", "2.1.331")
    [problem] = problems_in(checkout, proved={"claude-code": "2.1.331", **{
        k: v for k, v in lockfile_pins(CLIS, checkout / "package-lock.json").items() if k != "claude-code"}})
    assert "holds '" in problem and "'2.1.331'" in problem and BUMP_STEPS[2] in problem


def test_installed_but_the_matrix_not_rerun(checkout: Path) -> None:
    bump_lock(checkout, "@anthropic-ai/claude-code", "2.1.331")
    edit_json(checkout / "node_modules/@anthropic-ai/claude-code/package.json", lambda d: d.update(version="2.1.331"))
    proved = proved_versions()
    [problem] = problems_in(checkout, proved=proved)
    assert f"proved @anthropic-ai/claude-code {proved['claude-code']!r}" in problem and BUMP_STEPS[3] in problem


def test_the_doc_parser_sees_a_changed_version(tmp_path: Path) -> None:
    doc = tmp_path / "conformance.md"
    doc.write_text((ROOT / "docs" / "conformance.md").read_text().replace(
        "Codex CLI " + lockfile_pins(CLIS)["codex"] + " (`@openai/codex`)", "Codex CLI 0.1.0 (`@openai/codex`)"))
    assert proved_versions(doc)["codex"] == "0.1.0"


def test_the_steps_are_documented() -> None:
    doc = (ROOT / "docs" / "image.md").read_text()
    for step in BUMP_STEPS:
        command = re.search(r"\d\. (?:edit )?(.*?)(?: \(|:|$)", step).group(1)
        assert command in doc, f"docs/image.md does not give the bump step {step!r}"
