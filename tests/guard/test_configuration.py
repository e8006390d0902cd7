"""Issue 13: configuration that turns a clean command into a force push or a delete. git takes it
from `-c`, `--config-env`, GIT_CONFIG_COUNT/KEY_n/VALUE_n and GIT_CONFIG_PARAMETERS (on the
command line, set earlier in it, or in the hook's own environment), and from what `git config`
writes; `remote.R.push` with `+` or `:` and `remote.R.mirror` are pushes that force or delete
(tools.git.config_arguments). cargo takes aliases from `--config alias.X=...` and CARGO_ALIAS_X."""

import pytest

from guard.classify import Place, classify
from guard.settings import config_key, git_settings
from guard.shellparse import parse


def decide(command, runtime, environ=None):
    return classify(command, runtime, place=Place("/work", "/home/agent", environ or {}))


@pytest.mark.parametrize("command,rule", [
    ("git -c remote.origin.push=+HEAD:main push", "git-push-force"),
    ("git -c 'remote.origin.push=+refs/heads/*:refs/heads/*' push origin", "git-push-force"),
    ("git -c remote.origin.push=:refs/heads/main push origin", "git-push-delete"),
    ("git -c remote.origin.mirror=true push origin", "git-push-delete"),
    ("git -c remote.origin.mirror push origin", "git-push-delete"),  # a key alone is true
    ("git -c Remote.origin.Mirror=yes push origin", "git-push-delete"),  # section and name: any case
    ("R=+HEAD:main git --config-env=remote.origin.push=R push", "git-push-force"),
    ("export R=+HEAD:main; git --config-env remote.origin.push=R push", "git-push-force"),
    ("GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.push GIT_CONFIG_VALUE_0=+HEAD:main git push",
     "git-push-force"),
    ("env GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.mirror GIT_CONFIG_VALUE_0=true git push origin",
     "git-push-delete"),
    ("GIT_CONFIG_PARAMETERS=\"'remote.origin.push=+HEAD:main'\" git push origin", "git-push-force"),
    ("git config remote.origin.push +HEAD:main && git push", "git-push-force"),
    ("git config --add remote.origin.push '+refs/heads/*:refs/heads/*'", "git-push-force"),
    ("git config set remote.origin.push :refs/heads/main", "git-push-delete"),
    ("git config --global remote.origin.mirror true", "git-push-delete"),
    ("git remote add --mirror=push backup https://example.com/x.git", "git-push-delete"),
    ("git -c alias.p='push --force' p", "git-push-force"),
    ("git config alias.p 'push --force'; git p origin", "git-push-force"),
    ("git config --global alias.ship 'push -f'", "git-push-force"),  # the alias is the force push
    ("git config alias.wipe '!git push origin :main'", "git-push-delete"),
])
def test_git_configuration_that_forces_or_deletes(runtime, command, rule):
    decision = decide(command, runtime)
    assert decision.decision == "deny" and rule in decision.matched, decision


@pytest.mark.parametrize("environ,rule", [
    ({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "remote.origin.push", "GIT_CONFIG_VALUE_0": "+HEAD:main"},
     "git-push-force"),
    ({"GIT_CONFIG_PARAMETERS": "'remote.origin.mirror=true'"}, "git-push-delete"),
    ({"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "user.name", "GIT_CONFIG_VALUE_0": "x",
      "GIT_CONFIG_KEY_1": "remote.origin.push", "GIT_CONFIG_VALUE_1": ":main"}, "git-push-delete"),
])
def test_git_configuration_in_the_hooks_own_environment(runtime, environ, rule):
    decision = decide("git push origin", runtime, environ)
    assert decision.decision == "deny" and rule in decision.matched, decision
    assert decide("git push origin", runtime).decision == "allow"


@pytest.mark.parametrize("command", [
    "git -c user.name=agent commit -m x",
    "git -c core.pager=cat log -3",
    "git -c remote.origin.push=refs/heads/agent/x push",  # neither + nor :
    "git -c remote.origin.mirror=false push origin",
    "git config user.email agent@example.com",
    "git config --get remote.origin.push",
    "git config remote.origin.push",  # reads it
    "git config --unset remote.origin.mirror",
    "git config alias.st status",
    "git remote add upstream https://example.com/x.git",
    "git remote add --mirror=fetch backup https://example.com/x.git",
    "git config push.default current && git push",
    "CARGO_ALIAS_B=build cargo b",
    "cargo --config 'alias.t=\"test --workspace\"' t",
])
def test_everyday_configuration_stays_allowed(runtime, command):
    assert decide(command, runtime).decision == "allow"


@pytest.mark.parametrize("command", [
    "CARGO_ALIAS_SHIP=publish cargo ship",
    "env CARGO_ALIAS_SHIP='publish --allow-dirty' cargo ship",
    "export CARGO_ALIAS_REL=publish; cargo rel",
    "cargo --config 'alias.ship=\"publish\"' ship",
    "cargo --config alias.ship='[\"publish\", \"--no-verify\"]' ship",
    "cargo --config=alias.y=yank y --version 1.0.0",
])
def test_cargo_aliases(runtime, command):
    decision = decide(command, runtime)
    assert decision.decision == "deny" and "cargo-publish" in decision.matched, decision


def test_cargo_alias_in_the_hooks_own_environment(runtime):
    assert decide("cargo ship", runtime, {"CARGO_ALIAS_SHIP": "publish"}).decision == "deny"
    assert decide("cargo ship", runtime).decision == "allow"


def test_git_keys_compare_as_git_compares_them():
    assert config_key("Remote.Origin.PUSH") == "remote.Origin.push"  # the subsection keeps its case
    assert config_key("core.fsmonitor") == "core.fsmonitor"


def test_git_settings_from_every_source():
    from guard.policy import ToolOptions

    words = parse("git -c a.b=1 --config-env=c.d=V -c e.f push")[0].words
    env = {"V": "2", "GIT_CONFIG_PARAMETERS": "'g.h=3'", "GIT_CONFIG_KEY_0": "i.j", "GIT_CONFIG_VALUE_0": "4"}
    options = ToolOptions(options_with_value=("-c", "--config-env"))
    assert git_settings(words, options, env.get) == [("a.b", "1"), ("c.d", "2"), ("e.f", ""), ("g.h", "3"),
                                                      ("i.j", "4")]


@pytest.mark.parametrize("command,rule", [
    ("git rebase -x 'git push -f' main", "git-push-force"),
    ("git rebase --exec='git push origin :main' main", "git-push-delete"),
    ("GIT_SSH_COMMAND='git push -f; ssh' git fetch", "git-push-force"),
    ("git -c core.sshCommand='gh secret list; ssh' fetch", "gh-secret"),
    ("git -c core.fsmonitor='git push --force' status", "git-push-force"),
    ("GIT_EDITOR='git push -f' git commit", "git-push-force"),
    ("git push --receive-pack='git push -f' origin", "git-push-force"),
    ("git fetch --upload-pack='gh repo delete x --yes' origin", "gh-repo-destructive"),
    ("git config core.sshCommand 'git push -f'", "git-push-force"),  # written for a later call
])
def test_strings_git_runs_as_commands_are_judged_as_commands(runtime, command, rule):
    decision = decide(command, runtime)
    assert decision.decision == "deny" and rule in decision.matched, decision


def test_a_command_string_in_the_hooks_own_environment(runtime):
    environ = {"GIT_SSH_COMMAND": "git push origin --force; ssh"}
    assert decide("git fetch origin", runtime, environ).rule == "git-push-force"
    # one that names git again is judged once, not until the nesting limit
    assert decide("git commit", runtime, {"GIT_EDITOR": "git commit"}).decision == "allow"
    # a key file ssh reads for git is how git authenticates: the file tiers do not apply
    assert decide("git fetch", runtime, {"GIT_SSH_COMMAND": "ssh -i /home/agent/.ssh/id_ed25519"}).decision == "allow"


@pytest.mark.parametrize("command", [
    "git rebase -x 'npm test' main", "GIT_EDITOR=true git rebase --continue", "git -c core.pager=cat log",
    "GIT_SSH_COMMAND='ssh -o StrictHostKeyChecking=no' git fetch", "git cherry-pick -x abc123",
    "git -c core.editor='code --wait' commit", "GIT_SSH_COMMAND='ssh -o \"broken' git fetch",  # sh runs nothing
])
def test_everyday_command_strings_stay_allowed(runtime, command):
    assert decide(command, runtime).decision == "allow"
