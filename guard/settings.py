"""Configuration a program takes from its command line and environment, which can make a clean
command do something else: git's `-c`, `--config-env`, `GIT_CONFIG_COUNT`/`_KEY_n`/`_VALUE_n` and
`GIT_CONFIG_PARAMETERS`, and what `git config` (or `git remote add --mirror`) writes; cargo's
`--config` and `CARGO_ALIAS_*`.

Pure functions over shell words and an environment lookup (a function from a variable's name to
its value, None when it is unset or not known here). The classifier (guard/classify.py) turns
what they find into the commands it means: aliases expanded, and settings that stand for
arguments (tools: config_arguments) classified as those arguments.

Standard library only: on the hook's path (docs/design.md, "Where speed matters").
"""

from __future__ import annotations

import re

from guard.policy import fnmatchcase
from guard.shellparse import ShellSyntaxError, Word, parse

# git's boolean true: a key given without a value (`-c remote.origin.mirror`) is true too
GIT_TRUE = frozenset(("", "true", "yes", "on", "1"))
# `git config` options that read, remove or rename rather than set
_GIT_CONFIG_READS = frozenset(("--get", "--get-all", "--get-regexp", "--get-urlmatch", "--list", "-l", "--unset",
                               "--unset-all", "--rename-section", "--remove-section", "-e", "--edit", "--get-color",
                               "--get-colorbool"))
_GIT_CONFIG_READ_COMMANDS = frozenset(("get", "list", "unset", "rename-section", "remove-section", "edit"))
_GIT_CONFIG_WITH_VALUE = frozenset(("-f", "--file", "--blob", "--type", "--default", "--comment", "--value"))
MAX_GIT_CONFIG_COUNT = 64
_TOML_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'')


def config_key(key: str) -> str:
    """A git configuration key as git compares it: section and name without case, the subsection
    (between them) as written."""
    parts = key.split(".")
    if len(parts) < 2:
        return key.lower()
    return ".".join([parts[0].lower(), *parts[1:-1], parts[-1].lower()])


def _setting(text: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    return config_key(key), value if eq else ""


def git_global_options(words: list, options) -> int:
    """The index of git's subcommand word: after the program and its global options."""
    i, n = 1, len(words)
    while i < n:
        value = words[i].static
        if value is None or not value.startswith("-") or value == "--":
            break
        i += 2 if options.kind(value) == "value" else 1
    return min(i, n)


def git_settings(words: list, options, lookup) -> list[tuple[str, str | None]]:
    """(key, value) of the configuration this git invocation is given beside its files, from its
    global options and its environment; value None when it is not known here."""
    settings: list = []
    end = git_global_options(words, options)
    i = 1
    while i < end:
        value = words[i].static or ""
        argument = None
        if value in ("-c", "--config-env") and i + 1 < end:
            argument, i = words[i + 1], i + 2
        elif value.startswith("--config-env="):
            argument, i = Word.literal(value[len("--config-env="):]), i + 1
        else:
            i += 1
            continue
        if argument.static is None:
            continue
        if value.startswith("--config-env"):
            key, _, variable = argument.static.partition("=")
            settings.append((config_key(key), lookup(variable)))
        else:
            settings.append(_setting(argument.static))
    parameters = lookup("GIT_CONFIG_PARAMETERS")
    if parameters:
        try:
            quoted = [w.static for c in parse(parameters) for w in c.words]
        except ShellSyntaxError:
            quoted = []
        settings += [_setting(text) for text in quoted if text]
    for index in range(MAX_GIT_CONFIG_COUNT):
        key = lookup(f"GIT_CONFIG_KEY_{index}")
        if key is None:
            break
        settings.append((config_key(key), lookup(f"GIT_CONFIG_VALUE_{index}")))
    return settings


def git_config_writes(words: list, index: int) -> list[tuple[str, str]]:
    """What this git command writes into a configuration file for later commands: the key and
    value of `git config [set] KEY VALUE`, and `remote.NAME.mirror` of `git remote add --mirror`."""
    if index >= len(words):
        return []
    subcommand = words[index].static
    rest = words[index + 1:]
    if any(w.static is None for w in rest):
        return []
    args = [w.static for w in rest]
    if subcommand == "config":
        positionals, skip = [], False
        for arg in args:
            if skip:
                skip = False
            elif arg in _GIT_CONFIG_READS:
                return []
            elif arg in _GIT_CONFIG_WITH_VALUE:
                skip = True
            elif not arg.startswith("-"):
                positionals.append(arg)
        if positionals[:1] == ["set"]:
            positionals = positionals[1:]
        elif positionals[:1] and positionals[0] in _GIT_CONFIG_READ_COMMANDS:
            return []
        return [(config_key(positionals[0]), positionals[1])] if len(positionals) >= 2 else []
    if subcommand == "remote" and args[:1] == ["add"]:
        mirror = any(a in ("--mirror", "--mirror=push") for a in args)
        names = [a for a in args[1:] if not a.startswith("-")]
        return [(f"remote.{names[0]}.mirror", "true")] if mirror and names else []
    return []


def cargo_subcommand_index(words: list, options) -> int:
    i, n = 1, len(words)
    while i < n:
        value = words[i].static
        if value is None:
            break
        if value.startswith("-") and value != "--":
            i += 2 if options.kind(value) == "value" else 1
        elif any(fnmatchcase(value, g) for g in options.skip_args):
            i += 1
        else:
            break
    return i


def cargo_alias(words: list, options, lookup) -> tuple[int, list[str] | None]:
    """(index of cargo's subcommand word, the words its alias stands for, or None): from
    `--config alias.NAME=...` and `CARGO_ALIAS_NAME`."""
    index = cargo_subcommand_index(words, options)
    if index >= len(words) or words[index].static is None:
        return index, None
    name = words[index].static
    body = None
    for i in range(1, index):
        value = words[i].static or ""
        text = words[i + 1].static if value == "--config" and i + 1 < index else (
            value[len("--config="):] if value.startswith("--config=") else None)
        if text:
            key, eq, raw = text.partition("=")
            if eq and key.strip() == f"alias.{name}":
                body = _toml_words(raw.strip())
    from_env = lookup("CARGO_ALIAS_" + name.upper().replace("-", "_"))
    if from_env:
        body = from_env.split()
    return index, body


def _toml_words(raw: str) -> list[str]:
    """A TOML alias value: a string (split on blanks), an array of strings, or (leniently) bare."""
    if raw.startswith("["):
        return [a if a else b for a, b in _TOML_STRING.findall(raw)]
    match = _TOML_STRING.fullmatch(raw)
    return (match.group(1) or match.group(2) or "").split() if match else raw.split()


def git_command_strings(words: list, index: int, settings: list, options, lookup) -> list[tuple[str, str]]:
    """(where, text) of every string this git command would run as a shell command (tools:
    command_strings): a setting it is given or that was written (`core.sshCommand`), a variable
    (`GIT_SSH_COMMAND`), an option of its subcommand (`rebase --exec`)."""
    found = []
    wanted = {config_key(name) for name in options.command_string_names("settings")}
    found += [(key, value) for key, value in settings if value and key in wanted]
    for name in options.command_string_names("variables"):
        value = lookup(name)
        if value:
            found.append((name, value))
    subcommand = words[index].static if index < len(words) else None
    names = [entry.split()[1] for entry in options.command_string_names("options") if entry.split()[0] == subcommand]
    rest = words[index + 1:]
    for position, word in enumerate(rest):
        value = word.static
        if not names or value is None or value == "--":
            if value == "--":
                break
            continue
        following = rest[position + 1].static if position + 1 < len(rest) else None
        for name in names:
            if value == name and following:
                found.append((f"{subcommand} {name}", following))
            elif name.startswith("--") and value.startswith(name + "="):
                found.append((f"{subcommand} {name}", value[len(name) + 1:]))
            elif not name.startswith("--") and value.startswith(name) and len(value) > 2:
                found.append((f"{subcommand} {name}", value[2:]))
    return found
