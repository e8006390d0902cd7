"""Issue 13: a program runs the same subcommand under other spellings, and the tripwire knows them
from the tools table: git's dashed builtins (`git-push`, `/usr/lib/git-core/git-push`), `git
send-pack` beside `git push`, and npm's abbreviations by npm's own rule (any unique prefix of a
command or alias, then its alias table: `npm pub`, `npm unpub`)."""

import pytest

from guard.classify import classify
from guard.policy import PolicyError, ToolOptions, compile_policy


@pytest.mark.parametrize("command,rule", [
    ("/usr/lib/git-core/git-push origin +HEAD:main", "git-push-force"),
    ("git-push --force origin main", "git-push-force"),
    ('"$(git --exec-path)"/git-push -f', "git-push-force"),
    ("$GIT_EXEC_PATH/git-push origin --force", "git-push-force"),
    ("env /usr/lib/git-core/git-push -f", "git-push-force"),
    ("git send-pack --force origin main", "git-push-force"),
    ("git send-pack origin +HEAD:main", "git-push-force"),
    ("/usr/lib/git-core/git-send-pack origin +HEAD:main", "git-push-force"),
    ("git -C repo send-pack --mirror origin", "git-push-delete"),
    ("git send-pack origin :refs/heads/main", "git-push-delete"),
    ("/usr/lib/git-core/git-push origin :main", "git-push-delete"),
])
def test_git_by_its_dashed_builtins_and_send_pack(runtime, command, rule):
    decision = classify(command, runtime)
    assert decision.decision == "deny" and rule in decision.matched, decision


@pytest.mark.parametrize("command", [
    "git-push origin HEAD:agent/x", "/usr/lib/git-core/git-status", "git --exec-path",
    "git send-pack origin HEAD:refs/heads/agent/x", "git-upload-pack .", "my-tool --force",
])
def test_everyday_spellings_stay_allowed(runtime, command):
    assert classify(command, runtime).decision == "allow"


def test_dashed_subcommands_only_for_a_program_whose_table_says_so():
    rule = {"id": "push-force", "decision": "deny", "reason": "r", "command": ["git", "push"],
            "any_of": [{"flag": ["-f"]}]}
    plain = {"rules": [rule], "tools": {"git": {}}}
    dashed = {"rules": [rule], "tools": {"git": {"dashed_subcommands": True}}}
    assert classify("git-push -f", plain).decision == "allow"
    assert classify("git-push -f", dashed).decision == "deny"
    with pytest.raises(PolicyError, match=r"tools.git.dashed_subcommands: expected true or false"):
        compile_policy({"rules": [], "tools": {"git": {"dashed_subcommands": "yes"}}})


@pytest.mark.parametrize("command", [
    "npm pub", "npm publ --tag next", "npm publis", "npm unpub my-pkg@1.0.0", "npm unp my-pkg", "npm unpu x",
    "npm --loglevel silent pub", "npx -c 'npm pub'", "npm pu",
])
def test_npm_runs_a_command_by_any_unique_prefix(runtime, command):
    decision = classify(command, runtime)
    assert decision.decision == "deny" and "npm-publish" in decision.matched, decision


@pytest.mark.parametrize("command", [
    "npm p", "npm un my-pkg", "npm i", "npm in", "npm t", "npm run build", "npm ru test", "npm pa",
    "npm pack --dry-run", "npm install publish-tools", "npm run publish:docs",
])
def test_npm_prefixes_of_other_commands_stay_allowed(runtime, command):
    assert classify(command, runtime).decision == "allow"


NPM = ToolOptions(subcommands=("install", "install-test", "publish", "uninstall", "unpublish", "pack", "ping"),
                  subcommand_aliases={"un": "uninstall", "i": "install", "it": "install-test",
                                      "install-clean": "install"})


@pytest.mark.parametrize("word,subcommand", [
    ("publish", "publish"), ("pu", "publish"), ("pub", "publish"), ("p", None), ("un", "uninstall"),
    ("unp", "unpublish"), ("uni", "uninstall"), ("i", "install"), ("ins", None),  # install, install-test,
    ("installTest", "install-test"),  # camelCase is kebab-case to npm     # install-clean: ambiguous
    ("install-c", "install"),  # a unique prefix of an alias, then the alias
    ("nothing", None),
])
def test_npms_rule_unique_prefixes_then_aliases(word, subcommand):
    assert NPM.subcommand(word) == subcommand


def test_every_spelling_of_a_subcommand():
    assert NPM.spellings("publish") == ["pu", "pub", "publ", "publi", "publis"]
    assert "unp" in NPM.spellings("unpublish") and "un" not in NPM.spellings("unpublish")


def test_an_alias_of_a_subcommand_the_table_does_not_have_is_refused():
    with pytest.raises(PolicyError, match=r"tools.npm.subcommand_aliases: aliases of \['nothing'\]"):
        compile_policy({"rules": [], "tools": {"npm": {"subcommands": ["ci"], "subcommand_aliases": {"x": "nothing"}}}})


@pytest.mark.parametrize("command,rule", [
    ("npm exec -- npm publish", "npm-publish"), ("npm x -c 'npm publish'", "npm-publish"),
    ("npm exec --package=foo -- npm pub", "npm-publish"), ("npm --prefix app exec -- gh secret list", "gh-secret"),
])
def test_npm_exec_runs_its_command_as_npx_does(runtime, command, rule):
    decision = classify(command, runtime)
    assert decision.decision == "deny" and rule in decision.matched, decision


@pytest.mark.parametrize("command", ["npm exec -- tsc --noEmit", "npm x eslint .", "npm exec -c 'vitest run'"])
def test_npm_exec_of_everyday_tools_stays_allowed(runtime, command):
    assert classify(command, runtime).decision == "allow"
