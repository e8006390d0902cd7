"""render-profiles --check: green on the committed tree, red on any hand edit or stale render."""

import json

from render_helpers import run_render


def test_committed_tree_is_current():
    result = run_render("--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all invariants hold" in result.stdout


def test_hand_edit_of_a_rendered_file_is_drift(project):
    target = project / "rendered" / "autonomous" / "etc" / "claude-code" / "managed-settings.json"
    doc = json.loads(target.read_text())
    doc["permissions"]["deny"].remove("Bash(gh secret *)")
    target.write_text(json.dumps(doc, indent=2) + "\n")
    result = run_render("--root", project, "--check")
    assert result.returncode == 1
    assert "+++ b/rendered/autonomous/etc/claude-code/managed-settings.json" in result.stdout
    assert '+      "Bash(gh secret *)",' in result.stdout
    assert "out of date" in result.stderr


def test_profile_edited_without_re_rendering_is_drift(project):
    common = project / "profiles" / "common.yaml"
    common.write_text(common.read_text().replace("command: [npm, [publish, unpublish]]", "command: [npm, [publish, unpublish, deprecate]]"))
    result = run_render("--root", project, "--check")
    assert result.returncode == 1
    assert "Bash(npm deprecate *)" in result.stdout
    assert run_render("--root", project).returncode == 0
    assert run_render("--root", project, "--check").returncode == 0


def test_stray_and_missing_files_are_drift(project):
    (project / "rendered" / "ci" / "stray.json").write_text("{}\n")
    result = run_render("--root", project, "--check")
    assert result.returncode == 1 and "rendered/ci/stray.json" in result.stdout
    (project / "rendered" / "ci" / "stray.json").unlink()
    (project / "rendered" / "ci" / "etc" / "codex" / "requirements.toml").unlink()
    result = run_render("--root", project, "--check")
    assert result.returncode == 1 and "b/rendered/ci/etc/codex/requirements.toml" in result.stdout


def test_write_replaces_the_whole_tree(project):
    (project / "rendered" / "ci" / "stray.json").write_text("{}\n")
    assert run_render("--root", project).returncode == 0
    assert not (project / "rendered" / "ci" / "stray.json").exists()
    assert run_render("--root", project, "--check").returncode == 0


def test_layers_that_disagree_with_the_classifier_on_the_corpus(project):
    gaps = project / "profiles" / "corpus" / "regex_known_gaps.yaml"
    gaps.write_text(gaps.read_text().replace(
        '  "git push origin {+,}main"', '  "git push --force": wrongly listed as a gap\n  "git push origin {+,}main"', 1))
    result = run_render("--root", project, "--check")
    assert result.returncode == 1
    assert "stale regex_known_gaps.yaml 'missed' entry, the regex now agrees: 'git push --force'" in result.stderr
    gaps.write_text(gaps.read_text().replace('  "git push --force": wrongly listed as a gap\n', ""))
    assert run_render("--root", project, "--check").returncode == 0


def test_missing_corpus_fails_closed(project):
    (project / "profiles" / "corpus" / "deny.yaml").unlink()
    result = run_render("--root", project, "--check")
    assert result.returncode == 1 and "no corpus at" in result.stderr
