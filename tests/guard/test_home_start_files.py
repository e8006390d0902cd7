"""Issue 13: the shell's start-up files and ~/.gitconfig are read-only for the agent (files.read_only
in profiles/common.yaml): a function or PATH in ~/.bashrc (which Claude Code sources before every
Bash call) would drop the shims, and ~/.gitconfig can hold a push that forces or an alias."""

import pytest

from guard.classify import Place, classify

HOME = "/home/agent"


def decide(command, runtime):
    return classify(command, runtime, place=Place("/work", HOME, {}))


@pytest.mark.parametrize("command", [
    "echo 'export PATH=/usr/bin:$PATH' >> ~/.bashrc",
    "printf 'git() { /usr/bin/git \"$@\"; }\\n' >> $HOME/.bash_profile",
    "cat evil > /home/agent/.profile",
    "tee -a ~/.zshrc < snippet",
    "cp x ~/.zshenv",
    "sed -i s/a/b/ ~/.bash_login",
    "echo '[alias] p = push -f' >> ~/.gitconfig",
])
def test_writing_a_start_up_file_or_the_git_configuration_is_refused(runtime, command):
    decision = decide(command, runtime)
    assert (decision.decision, decision.rule) == ("deny", "files-read-only"), decision


@pytest.mark.parametrize("command", ["cat ~/.bashrc", "grep PATH ~/.profile", "git config --get user.name",
                                     "echo x > /work/dotfiles/.bashrc.example"])
def test_reading_them_stays_allowed(runtime, command):
    assert decide(command, runtime).decision != "deny"
