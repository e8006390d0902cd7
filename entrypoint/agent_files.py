"""Files the agent can write that switch a layer off in the next session, judged before the CLI starts.

The baked files are held to the manifest (integrity.py). These are the others: the agent writes
them in one session, and the CLI reads them at its next start, where they could take the guard's
shims off PATH, run start-up code in every shell, or remove the Gemini hook
(docs/entrypoint.md, "Files the agent can write"). Each is parsed the way its CLI parses it (JSON,
JSON with comments, TOML, dotenv, bash), never searched as text, and anything that cannot be
judged refuses the start: a file that does not parse, a symbolic link, a shell construct whose
effect is not known before it runs.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import shutil
import stat
import subprocess

MAX_BYTES = 1 << 20

# Variables that change which program a shell runs, what it runs first, or how the guard itself
# starts: set by a file the agent can write, any of them can take a layer away.
LAYER_VARIABLES = frozenset({
    "PATH",  # the shims are first on it
    "BASH_ENV", "ENV",  # files every non-interactive bash (sh) runs first
    "SHELL", "CLAUDE_CODE_SHELL", "CLAUDE_CODE_SHELL_PREFIX",  # the shell a CLI runs commands with
    "CLAUDE_ENV_FILE",  # sourced by Claude Code before every command
    "SHELLOPTS", "BASHOPTS", "PROMPT_COMMAND", "PS4",
    "HOME", "CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME",  # where the CLIs and shells read their files
    "GEMINI_CLI_SYSTEM_SETTINGS_PATH", "GEMINI_CLI_SYSTEM_DEFAULTS_PATH",  # move the system settings (and the hook)
    "AGENT_PROFILE", "AGENT_SANDBOX",  # which rules the guard applies
    "GIT_EXEC_PATH", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM",
})
LAYER_PREFIXES = (
    "BASH_FUNC_",  # functions bash imports from the environment (`git` as a function runs no shim)
    "LD_",  # the dynamic loader (LD_PRELOAD)
    "PYTHON",  # the guard's own interpreter (PYTHONPATH could replace the guard)
    "GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_",  # configuration for every git command
    "CARGO_ALIAS_",  # a cargo alias for a denied subcommand
)
STARTUP_FILES = (".bashrc", ".bash_profile", ".bash_login", ".profile", ".bash_logout",
                 ".zshenv", ".zprofile", ".zshrc", ".zlogin", ".zlogout")
# Builtins whose later NAME=value words assign variables.
DECLARING = frozenset({"export", "declare", "typeset", "local", "readonly"})
# Names a start-up function or alias must not take: a guarded program would run without its shim,
# and a shell or a wrapper would no longer be what the guard reads in the command text.
SHELL_WORDS = frozenset({"command", "builtin", "exec", "eval", "source", ".", "type", "hash", "enable", "alias",
                         "unalias", "set", "shopt", "trap", "export", "declare", "typeset", "readonly", "unset"})
_FUNCTION = re.compile(r"(?:^|[\s;&|(){}])(?:function\s+([^\s;&|()<>]+)|([^\s;&|()<>\"'`$=#]+)\s*\(\s*\))")
# git configuration whose value is a program git runs (shell text): judged like a command.
_GIT_PROGRAM_KEYS = re.compile(r"(core\.(editor|pager|sshcommand|fsmonitor|askpass)|sequence\.editor|diff\.external"
                               r"|diff\..+\.(command|textconv)|merge\..+\.driver|filter\..+\.(clean|smudge|process)"
                               r"|credential(\..+)?\.helper|gpg(\..+)?\.program|pager\..+|uploadpack\.packobjectshook"
                               r"|interactive\.difffilter)")
SYSTEM_PATH = "/usr/bin:/bin:/usr/local/bin"  # the image's programs, never the shims or the agent's folders
_DOTENV_KEY = re.compile(r"^\s*(?:export\s+)?([A-Za-z0-9_.-]+)(?:\s*=|:\s)", re.MULTILINE)


def layer_variable(name: str) -> bool:
    return name in LAYER_VARIABLES or name.startswith(LAYER_PREFIXES)


class Unjudged(Exception):
    """A file that cannot be judged: the message says why."""


# ------------------------------------------------------------------ reading

def read(path: str) -> bytes | None:
    """The file's bytes, None when it does not exist; Unjudged for a link, a non-file, a huge file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise Unjudged("is a symbolic link, which the entrypoint does not follow; replace the link with the file")
        raise Unjudged(f"cannot be read ({error.strerror})")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Unjudged("is not a regular file")
        if st.st_size > MAX_BYTES:
            raise Unjudged(f"is larger than {MAX_BYTES} bytes")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 16):
            size += len(chunk)
            if size > MAX_BYTES:
                raise Unjudged(f"is larger than {MAX_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def text_of(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Unjudged(f"is not UTF-8 ({error})")


def strip_json_comments(text: str) -> str:
    """Gemini CLI's reading of its settings: `//` and `/* */` comments outside strings become
    spaces (the strip-json-comments package it bundles, ported step for step), then JSON.parse."""
    out, offset, in_string, in_comment, i, n = [], 0, False, None, 0, len(text)

    def blank(start, end=None):
        return re.sub(r"\S", " ", text[start:end])

    while i < n:
        pair = text[i:i + 2]
        if not in_comment and text[i] == '"':
            backslashes = 0
            while i - 1 - backslashes >= 0 and text[i - 1 - backslashes] == "\\":
                backslashes += 1
            if backslashes % 2 == 0:
                in_string = not in_string
        if in_string:
            i += 1
            continue
        if not in_comment and pair == "//":
            out.append(text[offset:i])
            offset, in_comment = i, "single"
            i += 2
            continue
        if in_comment == "single" and pair == "\r\n":
            i += 1
            in_comment = None
            out.append(blank(offset, i))
            offset = i
        elif in_comment == "single" and text[i] == "\n":
            in_comment = None
            out.append(blank(offset, i))
            offset = i
        elif not in_comment and pair == "/*":
            out.append(text[offset:i])
            offset, in_comment = i, "multi"
            i += 2
            continue
        elif in_comment == "multi" and pair == "*/":
            i += 1
            in_comment = None
            out.append(blank(offset, i + 1))
            offset = i + 1
        i += 1
    out.append(blank(offset) if in_comment else text[offset:])
    return "".join(out)


def json_object(data: bytes, comments: bool) -> dict:
    text = text_of(data)
    try:
        value = json.loads(strip_json_comments(text) if comments else text)
    except ValueError as error:
        raise Unjudged(f"does not parse as JSON ({error})")
    if not isinstance(value, dict):
        raise Unjudged("is not a JSON object")
    return value


def toml_table(data: bytes) -> dict:
    import tomllib

    try:
        return tomllib.loads(text_of(data))
    except tomllib.TOMLDecodeError as error:
        raise Unjudged(f"does not parse as TOML ({error})")


def git_config_entries(data: bytes) -> list[tuple[str, str | None]]:
    """(key, value) pairs as git itself reads the file (`git config --file - --list`, includes
    not followed: they are judged as files of their own); a key without `=` has value None."""
    git = shutil.which("git", path=SYSTEM_PATH)
    if git is None:
        raise Unjudged(f"cannot be read: no git in {SYSTEM_PATH}")
    try:
        result = subprocess.run([git, "config", "--file", "-", "--list", "-z", "--no-includes"], input=data,
                                capture_output=True, timeout=10, env={"PATH": SYSTEM_PATH, "GIT_CONFIG_NOSYSTEM": "1"})
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Unjudged(f"could not be read by git ({error})")
    if result.returncode != 0:
        raise Unjudged(f"does not parse as git configuration ({result.stderr.decode('utf-8', 'replace').strip()})")
    entries = []
    for item in result.stdout.decode("utf-8", "replace").split("\0"):
        if item:
            key, newline, value = item.partition("\n")
            entries.append((key, value if newline else None))
    return entries


def dotenv_keys(data: bytes) -> list[str]:
    """Every name a dotenv file may set: a line `NAME=`, `export NAME=` or `NAME: ` (dotenv's own
    line syntax; a line inside a quoted multi-line value counts too, which only refuses more)."""
    return _DOTENV_KEY.findall(text_of(data).replace("\r\n", "\n").replace("\r", "\n"))


# ------------------------------------------------------------------ judging

def _variables(where: str, names, why: str) -> list[str]:
    return [f"{where} sets {name}, which {why}; remove it (the image sets what the CLIs need)"
            for name in names if layer_variable(name)]


def mcp_problems(path: str, servers, key: str) -> list[str]:
    """MCP servers the CLI starts with its environment plus theirs: an `env` that sets a layer
    variable would take the shims away from everything the server runs."""
    if servers is None:
        return []
    if not isinstance(servers, dict):
        return [f"{path}: {key} is not an object, so it cannot be checked; remove it"]
    problems = []
    for name, server in servers.items():
        env = server.get("env") if isinstance(server, dict) else None
        if env is not None and not isinstance(env, dict):
            problems.append(f"{path}: {key}.{name}.env is not an object, so it cannot be checked; remove it")
        elif env:
            problems += _variables(f"{path}: {key}.{name}.env", env, "the MCP server and everything it runs get")
    return problems


def claude_settings_problems(path: str, settings: dict) -> list[str]:
    problems = mcp_problems(path, settings.get("mcpServers"), "mcpServers")
    env = settings.get("env")
    if env is not None and not isinstance(env, dict):
        problems.append(f"{path}: env is not an object, so it cannot be checked; remove it")
    elif env:
        problems += _variables(f"{path}: env", env, "Claude Code passes to every command and hook")
    if settings.get("disableAllHooks") not in (None, False):
        problems.append(f"{path}: disableAllHooks would switch the agent-guard hook off; remove it")
    return problems


def gemini_settings_problems(path: str, settings: dict) -> list[str]:
    return [f"{path}: configures {key}, which would override the baked agent-guard hook; remove the key"
            for key in ("hooksConfig", "hooks") if key in settings] + mcp_problems(
                path, settings.get("mcpServers"), "mcpServers")


def codex_config_problems(path: str, config: dict) -> list[str]:
    problems = mcp_problems(path, config.get("mcp_servers"), "mcp_servers")
    tables = [("", config)] + [(f"profiles.{name}.", table) for name, table in (config.get("profiles") or {}).items()
                               if isinstance(table, dict)]
    for prefix, table in tables:
        policy = table.get("shell_environment_policy")
        if not isinstance(policy, dict):
            continue
        variables = policy.get("set")
        if variables is not None and not isinstance(variables, dict):
            problems.append(f"{path}: {prefix}shell_environment_policy.set is not a table, so it cannot be checked")
        elif variables:
            problems += _variables(f"{path}: {prefix}shell_environment_policy.set", variables,
                                   "Codex gives every command it runs")
    return problems


def _denied(command: str, runtime: dict):
    """The deny decision for `command` under the profile, or None."""
    from guard.classify import classify  # the guard is imported only when a file needs it (start-up time)

    decision = classify(command, runtime)
    return decision if decision.decision == "deny" else None


def git_config_problems(path: str, entries, runtime: dict) -> list[str]:
    """What turns a clean git command into a force push, a ref delete or a denied program: a push
    refspec with `+` or a leading `:`, a mirror remote, an alias or a program setting that the
    profile denies when written out."""
    problems = []
    for key, value in entries:
        section, _, name = key.partition(".")
        text = value if value is not None else "true"
        if section == "remote" and name.endswith(".push") and (text.strip().startswith("+") or
                                                                text.strip().startswith(":") and text.strip() != ":"):
            problems.append(f"{path}: {key} = {text} makes every `git push` to that remote force or delete; "
                            "remove it (push a new branch by name instead)")
        elif section == "remote" and name.endswith(".mirror") and text.strip().lower() not in ("false", "no", "off", "0", ""):
            problems.append(f"{path}: {key} makes every `git push` to that remote force and delete; remove it")
        elif section == "alias":
            shown = text[1:] if text.startswith("!") else f"git {text}"
            decision = _denied(shown, runtime)
            if decision:
                problems.append(f"{path}: {key} runs `{shown}`, which the profile denies ({decision.rule}); remove it")
        elif _GIT_PROGRAM_KEYS.fullmatch(key) and value is not None:
            decision = _denied(text[1:] if text.startswith("!") else text, runtime)
            if decision:
                problems.append(f"{path}: {key} runs `{text}`, which the profile denies ({decision.rule}); remove it")
    return problems


def cargo_config_problems(path: str, config: dict, runtime: dict) -> list[str]:
    """A cargo alias for a denied subcommand (`ship = "publish"`), the file twin of CARGO_ALIAS_*."""
    aliases = config.get("alias")
    if aliases is None:
        return []
    if not isinstance(aliases, dict):
        return [f"{path}: alias is not a table, so it cannot be checked; remove it"]
    problems = []
    for name, value in aliases.items():
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            shown = "cargo " + shlex.join(value)
        elif isinstance(value, str):
            shown = f"cargo {value}"
        else:
            problems.append(f"{path}: alias.{name} is neither a string nor a list of strings; remove it")
            continue
        decision = _denied(shown, runtime)
        if decision:
            problems.append(f"{path}: alias.{name} runs `{shown}`, which the profile denies ({decision.rule}); remove it")
    return problems


def _agent_writable(path: str) -> bool:
    """Whether the agent (this process's uid, or anyone) could change the file (or create it): it,
    what it links to, or a folder above either is the agent's or group- or other-writable."""
    def chain(start: str):
        current = os.path.normpath(start)
        while True:
            yield current
            parent = os.path.dirname(current)
            if parent == current:
                return
            current = parent

    for candidate in {*chain(os.path.dirname(os.path.abspath(path))), *chain(os.path.realpath(path))}:
        try:
            st = os.stat(candidate)
        except FileNotFoundError:
            continue  # whoever can write the folder above can create it
        except OSError:
            return True
        if st.st_uid == os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return True
    return False


def _assigned_names(cmd) -> list[tuple[str, object]]:
    """(name, word) for every variable a simple command assigns: prefixes, and the NAME=value
    words of export/declare/typeset/local/readonly."""
    from guard.shellparse import PLAIN

    found = [(w.parts[0][1].split("=", 1)[0].split("[", 1)[0].rstrip("+"), w) for w in cmd.assignments]
    if cmd.words and cmd.words[0].static in DECLARING:
        for word in cmd.words[1:]:
            kind, text = word.parts[0]
            if kind == PLAIN and "=" in text:
                found.append((text.split("=", 1)[0].split("[", 1)[0].rstrip("+"), word))
    return found


def _appends_to_path(word) -> bool:
    """PATH+=... or PATH=$PATH:... (the shims stay first)."""
    from guard.shellparse import DYNAMIC

    kind, text = word.parts[0]
    name, _, value = text.partition("=")
    if name.endswith("+"):
        return True
    rest = ([(kind, value)] if value else []) + list(word.parts[1:])
    rest = [part for part in rest if part[1]]
    if not rest or rest[0] != (DYNAMIC, "$PATH"):
        return False
    following = rest[1][1] if len(rest) > 1 else ""
    return following == "" or following.startswith(":")


def startup_problems(path: str, text: str, runtime: dict) -> list[str]:
    """A shell start-up file: the names it gives functions and aliases, the variables it sets, the
    files it sources, and the commands it runs (held to the profile like any command)."""
    from guard import wrappers
    from guard.policy import compile_policy
    from guard.shellparse import ShellSyntaxError, parse

    try:
        commands = parse(text)
    except (ShellSyntaxError, RecursionError) as error:
        return [f"{path}: does not parse as a shell script ({error}), so it cannot be checked; remove it"]
    policy = compile_policy(runtime)
    shadowed = set(policy.guarded) | set(policy.by_program) | set(wrappers.WRAPPERS) | set(wrappers.SHELLS) | SHELL_WORDS
    problems = []
    for match in _FUNCTION.finditer(text):
        name = match.group(1) or match.group(2)
        if name in shadowed:
            problems.append(f"{path}: defines a function {name!r}, which every shell that reads the file would run "
                            f"instead of {name}; remove it")
    for cmd in commands:
        for name, word in _assigned_names(cmd):
            if not name or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                problems.append(f"{path}: assigns a variable whose name is not known before it runs; remove it")
            elif name == "PATH" and _appends_to_path(word):
                continue
            elif layer_variable(name):
                problems.append(f"{path}: sets {name}, which could take the guard's shims off PATH or run code "
                                "before every command; remove it (appending to PATH is fine)")
        if not cmd.words:
            continue
        head = cmd.words[0].static
        args = [w.static for w in cmd.words[1:]]
        if head is None:
            continue  # a command word not known before it runs: the classifier below judges it
        if head == "alias":
            for arg in args:
                name = (arg or "").split("=", 1)[0]
                if arg is None or name in shadowed:
                    problems.append(f"{path}: defines an alias {name!r} that the guard cannot see through; remove it")
        elif head in ("eval", "trap", "enable") or (head == "hash" and "-p" in args) or (
                head in DECLARING and any(a is not None and a.startswith("-") and "n" in a for a in args)) or (
                head in ("read", "mapfile", "readarray", "printf") and any(a is not None and layer_variable(a) for a in args)):
            problems.append(f"{path}: runs {head!r} in a way the entrypoint cannot judge; remove it")
        elif head in ("source", "."):
            target = args[0] if args else None
            if target is None or not target.startswith("/") or _agent_writable(target):
                problems.append(f"{path}: sources {target or 'a file not known before it runs'}, which the agent "
                                "can write or which cannot be judged; remove the line")
    decision = _denied(text, policy)
    if decision:
        problems.append(f"{path}: runs a command the profile denies at every shell start ({decision.rule}: "
                        f"{decision.reason}); remove it")
    return problems


# ------------------------------------------------------------------ which files, per CLI

def _upward(folder: str):
    """folder and every folder above it."""
    folder = os.path.abspath(folder)
    while True:
        yield folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return
        folder = parent


def _judge(path: str, judge) -> list[str]:
    try:
        data = read(path)
        return [] if data is None else judge(data)
    except Unjudged as why:
        return [f"{path} {why}, so it cannot be checked; remove it or fix it"]
    except (ValueError, RecursionError, MemoryError) as error:  # a reader's own failure: still no start
        return [f"{path} could not be checked ({type(error).__name__}: {error}); remove it or fix it"]


def _git_files(environ: dict, home: str, workspace: str, runtime: dict) -> list[str]:
    """The user's git configuration (~/.gitconfig, the XDG one) and the workspace repository's,
    with the files they include, judged as git reads them."""
    xdg = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    pending = [os.path.join(home, ".gitconfig"), os.path.join(xdg, "git", "config"),
               os.path.join(workspace, ".git", "config")]
    found, seen = [], set()
    while pending:
        path = pending.pop(0)
        if path in seen:
            continue
        seen.add(path)
        entries = []

        def judge(data, p=path):
            entries.extend(git_config_entries(data))
            return git_config_problems(p, entries, runtime)

        found += _judge(path, judge)
        for key, value in entries:
            if (key == "include.path" or key.startswith("includeif.") and key.endswith(".path")) and value:
                target = os.path.join(home, value[2:]) if value.startswith("~/") else value
                pending.append(os.path.normpath(os.path.join(os.path.dirname(path), target)))
    return found


def problems(tool: str, environ: dict, home: str, workspace: str, runtime: dict) -> list[str]:
    """Everything in the files `tool` will read that would switch a layer off, one line each."""
    found = []
    for name in STARTUP_FILES:
        path = os.path.join(home, name)
        found += _judge(path, lambda data, p=path: startup_problems(p, text_of(data), runtime))
    folders = list(dict.fromkeys([*_upward(workspace), *_upward(os.getcwd())]))
    found += _git_files(environ, home, workspace, runtime)
    cargo_home = environ.get("CARGO_HOME") or os.path.join(home, ".cargo")
    cargo_files = [os.path.join(f, ".cargo", n) for f in folders for n in ("config.toml", "config")]
    cargo_files += [os.path.join(cargo_home, n) for n in ("config.toml", "config")]
    for path in dict.fromkeys(cargo_files):
        found += _judge(path, lambda data, p=path: cargo_config_problems(p, toml_table(data), runtime))
    if tool == "claude":
        config = environ.get("CLAUDE_CONFIG_DIR") or os.path.join(home, ".claude")
        paths = [os.path.join(config, "settings.json"), os.path.join(config, "settings.local.json")]
        paths += [os.path.join(f, ".claude", n) for f in folders for n in ("settings.json", "settings.local.json")]
        for path in dict.fromkeys(paths):
            found += _judge(path, lambda data, p=path: claude_settings_problems(p, json_object(data, comments=False)))
        for path in dict.fromkeys(os.path.join(f, ".mcp.json") for f in folders):
            found += _judge(path, lambda data, p=path: mcp_problems(
                p, json_object(data, comments=False).get("mcpServers"), "mcpServers"))
    elif tool == "codex":
        for path in dict.fromkeys(os.path.join(f, ".codex", "config.toml") for f in folders):
            found += _judge(path, lambda data, p=path: codex_config_problems(p, toml_table(data)))
    elif tool == "gemini":
        gemini_home = environ.get("GEMINI_CLI_HOME") or home
        for path in dict.fromkeys([os.path.join(gemini_home, ".gemini", "settings.json"),
                                   os.path.join(workspace, ".gemini", "settings.json"),
                                   os.path.join(os.getcwd(), ".gemini", "settings.json")]):
            found += _judge(path, lambda data, p=path: gemini_settings_problems(p, json_object(data, comments=True)))
        # Gemini loads the first of these it finds into its own environment (the hook's and every
        # command's), each variable only when it is not set already: those set are not judged
        env_files = [os.path.join(f, sub) for f in folders for sub in (".gemini/.env", ".env")]
        env_files += [os.path.join(gemini_home, ".gemini", ".env"), os.path.join(gemini_home, ".env")]
        for path in dict.fromkeys(env_files):
            found += _judge(path, lambda data, p=path: _variables(
                p, [name for name in dotenv_keys(data) if name not in environ], "Gemini CLI loads into its environment"))
        found += [f"{name} is set; the baked /etc/gemini-cli settings must be the ones gemini reads"
                  for name in ("GEMINI_CLI_SYSTEM_SETTINGS_PATH", "GEMINI_CLI_SYSTEM_DEFAULTS_PATH") if environ.get(name)]
    return found
