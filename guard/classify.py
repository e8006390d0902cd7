"""The command classifier: shell text or argv -> allow / ask / deny, by the profile's rules.

Deterministic and standard-library only: the hooks and the exec-time shims call it on every
command. It walks the shell the way bash would run it: every simple command, nested strings,
wrappers (guard/wrappers.py), dynamic command words; the rules themselves and how one argv
matches one rule are the rule language's (guard/policy.py). docs/guard.md lists what it adds on
top of the rule semantics.
"""

from __future__ import annotations

import os
import re
import time

from guard.policy import STRICTNESS, Policy, Record, compile_policy, fnmatchcase
from guard.settings import (GIT_TRUE, cargo_alias, git_command_strings, git_config_writes, git_global_options,
                            git_settings)
from guard.shellparse import (DYNAMIC, QUOTED, SPLIT, ShellSyntaxError, SimpleCommand, TooComplex, Word,
                              brace_expand, parse)
from guard.wrappers import DECLARATIONS, SHELL_STRING_OPTION, SHELLS, WRAPPERS

PARSE_ERROR_RULE = "parse-error"
TOO_COMPLEX_RULE = "too-complex"
TOO_COMPLEX_REASON = "command too complex to check"
MAX_NESTING = 16
MAX_DYNAMIC_WRAPPERS = 4  # `$SUDO $TIMEOUT gh ...`: unknown words tried as wrappers before a command
# What one classification may cost, far below every CLI's hook timeout (10 s in all three,
# docs/hooks.md): units of work (a character parsed or made by brace expansion, a word held to
# a rule) and seconds. Past either the command is refused, never waved through. The work bound
# also bounds memory; benchmarks/guard_bench.py measures both at the limit.
WORK_LIMIT = 1_000_000
TIME_LIMIT = 2.0
SIMPLE_COMMAND_COST = 20


class Budget:
    """Work and time left for one classification; spending past either raises TooComplex."""

    __slots__ = ("left", "deadline")

    def __init__(self, work: int | None = None, seconds: float | None = None):
        self.left = WORK_LIMIT if work is None else work
        self.deadline = time.monotonic() + (TIME_LIMIT if seconds is None else seconds)

    def spend(self, units: int) -> None:
        self.left -= units
        if self.left < 0:
            raise TooComplex(f"more than {WORK_LIMIT:,} units of work")
        if time.monotonic() > self.deadline:
            raise TooComplex(f"took more than {TIME_LIMIT:g} s")


class Decision(Record):
    """decision: allow | ask | deny; rule: the rule id or None; argv: the simple command that
    decided, after unwrapping; matched: every rule id that matched, strictest first."""

    __slots__ = ("decision", "rule", "reason", "parse_error", "argv", "matched")
    _defaults = {"parse_error": False, "argv": (), "matched": ()}

    def __setattr__(self, name, value):
        raise AttributeError("Decision is immutable")

    def as_json(self, command) -> dict:
        return {"command": command, "decision": self.decision, "rule": self.rule, "reason": self.reason}


_POLICY_CACHE: dict = {}


def _policy_for(runtime) -> Policy:
    if isinstance(runtime, Policy):
        return runtime
    cached = _POLICY_CACHE.get(id(runtime))
    if cached is not None and cached[0] is runtime:
        return cached[1]
    policy = compile_policy(runtime)
    if len(_POLICY_CACHE) > 32:
        _POLICY_CACHE.clear()
    _POLICY_CACHE[id(runtime)] = (runtime, policy)
    return policy


class _Hit(Record):
    __slots__ = ("decision", "rule", "reason", "argv", "parse_error")
    _defaults = {"parse_error": False}


def _display(argv) -> tuple:
    return tuple(w.display() for w in argv)


def _basename(value: str) -> str:
    return value.rsplit("/", 1)[-1]


# Programs whose arguments are files they write (or delete, or change): an argument in a file tier
# is a write to it. Reading programs are judged only against the blocked tier.
WRITERS = frozenset(("tee", "cp", "mv", "install", "ln", "rsync", "scp", "dd", "truncate", "touch", "chmod", "chown",
                     "chgrp", "rm", "rmdir", "unlink", "shred", "mkdir", "mkfifo", "patch", "sed", "perl", "awk",
                     "gawk"))
# Programs that look at a file's name or metadata, not its content: naming a blocked file is no read.
NAMES_ONLY = frozenset(("test", "[", "[[", "ls", "stat", "realpath", "readlink", "dirname", "basename", "echo",
                        "printf", "which", "type", "du", "find", "fd", "fdfind", "tree"))
HARMLESS_TARGETS = frozenset(("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"))
FILES_BLOCKED, FILES_READ_ONLY, WRITES_A_FILE = "files-blocked", "files-read-only", "writes-a-file"


class Place(Record):
    """Where the command runs: the folder relative paths start from, the home folder, and the
    environment the CLIs' folder variables come from."""

    __slots__ = ("cwd", "home", "environ")


def here() -> Place:
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = "/"
    return Place(cwd, os.environ.get("HOME", ""), os.environ)


class _Classifier:
    def __init__(self, policy: Policy, trace: list | None = None, place: Place | None = None,
                 budget: Budget | None = None):
        self.policy = policy
        self.trace = trace  # when a list: every argv a guarded program would be executed with
        self.place = place or here()
        self.budget = budget or Budget()
        # holding a word to the file tiers costs about one unit per glob
        self.tier_cost = len(policy.files.blocked) + len(policy.files.read_only)
        self.home_prefixes = None  # FileTiers.home_prefixes, once a path is judged
        # shell variables assigned earlier in the command line: name -> value (None: not known here)
        self.variables: dict = {}
        # what `git config` commands earlier in the command line wrote: [(key, value)]
        self.git_config: list = []
        self.judging: set = set()  # command strings being judged (command_string)

    # files
    def path_of(self, word) -> str | None:
        """The absolute path a word names, when it is known here (`~`, `$HOME` resolved)."""
        if word.static is not None:
            value = word.static
            if value == "~" or value.startswith("~/"):
                value = self.place.home + value[1:]
        elif word.parts[0] == (DYNAMIC, "$HOME") and all(kind != DYNAMIC for kind, _ in word.parts[1:]):
            value = self.place.home + "".join(text for _, text in word.parts[1:])
        else:
            return None
        if not value:
            return None
        return os.path.normpath(os.path.join(self.place.cwd, value))

    def file_hits(self, words, writes: bool) -> list:
        """Hits for files named by `words`: a blocked file read or written, a read-only one written."""
        hits = []
        for word in words:
            path = self.path_of(word)
            if path is None:
                continue
            if self.home_prefixes is None:
                self.home_prefixes = self.policy.files.home_prefixes(self.place.home, self.place.environ)
            found = self.policy.files.tier(path, self.place.home, self.place.environ, self.home_prefixes)
            if found is None:
                continue
            tier, glob = found
            if tier == "blocked":
                hits.append(_Hit("deny", FILES_BLOCKED, f"{path} is not to be read or written by the agent ({glob})",
                                 (word.display(),)))
            elif writes:
                hits.append(_Hit("deny", FILES_READ_ONLY, f"{path} is read-only for the agent ({glob})",
                                 (word.display(),)))
        return hits

    def redirection_hits(self, cmd) -> list:
        hits = self.file_hits(cmd.outputs, True) + self.file_hits(cmd.inputs, False)
        written = [w for w in cmd.outputs if w.static not in HARMLESS_TARGETS and not (
            w.static or "").startswith("/dev/fd/")]
        if written:
            hits.append(_Hit("ask", WRITES_A_FILE, f"writes to {written[0].display()}", (written[0].display(),)))
        return hits

    def argument_hits(self, program: str, words: list) -> list:
        """The files a command names: values of `--name=VALUE` and `NAME=VALUE` count, and so do
        the values of the tool's writing options, which are written."""
        named, written = [], []
        unsafe = {n for n in self.policy.options(program).writes_or_runs}
        for index, word in enumerate(words[1:], start=1):
            value = word.static
            if value is not None and "=" in value and not value.startswith("/"):
                name, _, rest = value.partition("=")
                target = Word.literal(rest)
                (written if name in unsafe or program in WRITERS else named).append(target)
                continue
            if value is not None and value.startswith("-"):
                if value in unsafe and index + 1 < len(words):
                    written.append(words[index + 1])
                continue
            (written if program in WRITERS else named).append(word)
        return (self.file_hits(named, False) if program not in NAMES_ONLY else []) + self.file_hits(written, True)

    # a command string -> hits
    def source(self, text: str, depth: int) -> list:
        if depth > MAX_NESTING:
            raise ShellSyntaxError("commands nested too deeply")
        self.budget.spend(len(text))
        hits = []
        for cmd in parse(text, depth):
            hits.extend(self.simple(cmd, depth))
        return hits

    def simple(self, cmd: SimpleCommand, depth: int) -> list:
        self.budget.spend(SIMPLE_COMMAND_COST)
        redirections = self.redirection_hits(cmd) if cmd.outputs or cmd.inputs else []
        assigned = dict(_assignment(w, self.value_of) for w in cmd.assignments)
        if not cmd.words:
            self.variables.update(assigned)
            return redirections
        words: list = []
        for word in cmd.words:
            if word.static is not None and word.has_unquoted("{"):
                expanded = brace_expand(word, self.budget.left)
                self.budget.spend(sum(len(v) + 1 for v in expanded))
                words.extend(Word.literal(v) for v in expanded if v != "")
            else:
                words.append(word)
        stdin = cmd.stdin
        if stdin is None and cmd.pipe_from is not None:
            stdin = _static_output(cmd.pipe_from)
        hits = redirections + self.argv(words, stdin, depth, assigned)
        substituted = self.substituted(words)
        if substituted is not None:
            hits += self.argv(substituted, stdin, depth, assigned)
        return hits

    # what the shell knows that the words do not show
    def value_of(self, name: str) -> str | None:
        """A variable's value as far as the command line shows it: assigned earlier in it, else
        this process's environment (the hook's is the CLI's, the shim's is the program's)."""
        if name in self.variables:
            return self.variables[name]
        return self.place.environ.get(name) if self.place.environ else None

    def substituted(self, words: list) -> list | None:
        """The words as they are when every `${X:-default}` takes its default and every variable
        assigned earlier in the command line its value (split where bash splits it), or None when
        neither applies. Both readings are classified: either may be the one that runs."""
        if not self.variables and all(word.alternative is None for word in words):
            return None
        changed = False
        fields: list = [[]]
        defaulted: set = set()  # indices of fields made from a default
        for word in words:
            parts = word.alternative or word.parts
            first = len(fields) - 1
            for kind, text in parts:
                value = self.variables.get(text[1:]) if kind == DYNAMIC and text[1:2] not in "({[`" else None
                if value is not None:
                    changed = True
                    for index, piece in enumerate(value.split()):
                        if index:
                            fields.append([])
                        fields[-1].append((QUOTED, piece))
                    if value[-1:].isspace():
                        fields.append([])
                elif kind == SPLIT:
                    fields.append([])
                else:
                    fields[-1].append((kind, text))
            if word.alternative is not None:
                changed = True
                defaulted.update(range(first, len(fields)))
            fields.append([])
        if not changed:
            return None
        return [Word(parts, may_differ=index in defaulted) for index, parts in enumerate(fields) if parts]

    def argv(self, words: list, stdin: str | None, depth: int, env: dict | None = None) -> list:
        """Hits for one command and what it runs. `env`: the variables set for it alone
        (`NAME=value cmd`, `env NAME=value cmd`)."""
        if depth > MAX_NESTING:
            raise ShellSyntaxError("commands nested too deeply")
        hits: list = []
        env = env or {}
        while words:
            head = words[0]
            value = head.static
            if value is None:
                value = _known_basename(head)
            if value is None or (head.has_unquoted("*?[") and value not in ("[", "[[")):
                hits.extend(self.dynamic(words, stdin, depth))
                break
            program = _basename(value)
            if program not in self.policy.by_program and "-" in program:
                words, program = self.dashed(words, value, program)
            if self.trace is not None and program in self.policy.guarded:
                self.trace.append(_display(words))
            options = self.policy.options(program)
            rules = self.policy.by_program.get(program, ())
            self.budget.spend(len(words) * (2 + len(rules) + self.tier_cost))
            for rule in rules:
                if rule.matches(words, options):
                    hits.append(_Hit(rule.decision, rule.id, rule.reason, _display(words)))
            if self.policy.files.blocked or self.policy.files.read_only:
                hits.extend(self.argument_hits(program, words))
            if program == "env":
                env = {**env, **_leading_assignments(words[1:], self.value_of)}
            elif program in DECLARATIONS:
                self.variables.update(_assignment(w, self.value_of) for w in words[1:] if w.is_assignment())
            words, more = self.unwrap(program, words, stdin, depth, env)
            hits.extend(more)
        return hits

    def dashed(self, words: list, value: str, program: str) -> tuple[list, str]:
        """`git-push ...` (also `/usr/lib/git-core/git-push`) is `git push ...` for a program whose
        tools table says so (dashed_subcommands)."""
        head, sub = program.split("-", 1)
        if not self.policy.options(head).dashed_subcommands:
            return words, program
        return [Word.literal(value[:len(value) - len(sub) - 1]), Word.literal(sub)] + words[1:], head

    def dynamic(self, words: list, stdin, depth: int) -> list:
        """The command word is unknown here: deny if it could be a guarded program that is denied.
        It could also be a wrapper such as $SUDO, so the words after it are judged the same way."""
        hits = []
        for start in range(min(len(words), MAX_DYNAMIC_WRAPPERS)):
            head = words[start]
            if head.static is not None and not (head.has_unquoted("*?[") and head.static not in ("[", "[[")):
                hits.extend(h for h in self.argv(words[start:], stdin, depth + 1) if h.decision == "deny")
                break
            shown = head.display()
            self.budget.spend(len(words) * (1 + sum(len(self.policy.deny_by_program.get(p, ())) for p in self.policy.guarded)))
            for program in self.policy.guarded:
                candidate = [Word.literal(program)] + words[start + 1:]
                options = self.policy.options(program)
                for rule in self.policy.deny_by_program.get(program, ()):
                    # the program is a guess already: its subcommand must be spelled out
                    if rule.matches(candidate, options, wildcard=False):
                        hits.append(_Hit("deny", rule.id,
                                         f"{rule.reason} (the command word {shown} is not known before it runs "
                                         f"and could be {program})", _display(candidate)))
        return hits

    def reparse(self, text: str, depth: int) -> list:
        return self.source(text, depth + 1)

    def unwrap(self, program: str, words: list, stdin, depth: int, env: dict | None = None):
        """(the command this one runs, hits from strings it runs); ([], hits) when it runs none."""
        if program in SHELLS:
            return [], self.shell(words, stdin, depth)
        if program == "eval":
            return [], self.reparse(" ".join(w.as_source() for w in words[1:]), depth)
        if program == "trap":
            args = [w for w in words[1:] if w.static not in ("--", "-p", "-l")]
            return [], (self.reparse(args[0].as_source(), depth) if args else [])
        if program == "watch":
            return [], self.watch(words, depth)
        if program == "find":
            return [], self.find_exec(words, depth)
        if program == "command":
            rest = words[1:]
            while rest and rest[0].static and rest[0].static.startswith("-") and rest[0].static != "--":
                if "v" in rest[0].static or "V" in rest[0].static:
                    return [], []
                rest = rest[1:]
            if rest and rest[0].static == "--":
                rest = rest[1:]
            return rest, []
        if program == "git":
            return self.git(words, depth, env or {})
        if program == "cargo":
            return self.cargo(words, env or {}), []
        if program == "npm":
            return self.npm_exec(words, depth)
        if program == "alias":  # `alias gp='git push -f'` makes `gp` run it (Claude's shell expands aliases)
            return [], [_Hit("deny", hit.rule, f"{hit.reason} (the alias {w.static.split('=', 1)[0]} would run it)",
                             hit.argv)
                        for w in words[1:] if w.static and "=" in w.static
                        for hit in self.reparse(w.static.split("=", 1)[1], depth) if hit.decision == "deny"]
        hits = []
        option_string = SHELL_STRING_OPTION.get(program)
        if option_string:
            for k, word in enumerate(words[1:-1], start=1):
                value = word.static or ""
                if value in option_string or (value[:1] == "-" and value[1:2] != "-" and value.endswith("c")
                                              and value[1:].isalpha()):
                    hits.extend(self.reparse(words[k + 1].as_source(), depth))
                elif word.static and word.static.startswith(option_string[1] + "="):
                    hits.extend(self.reparse(word.static.split("=", 1)[1], depth))
        spec = WRAPPERS.get(program)
        if spec is None:
            return [], hits
        rest = self.strip_wrapper(program, words, spec, depth, hits)
        if program == "xargs":
            return (_xargs_command(words[1:len(words) - len(rest)], rest, stdin) if rest else []), hits
        return rest, hits

    def strip_wrapper(self, program: str, words: list, spec, depth: int, hits: list) -> list:
        with_value, long_with_value, positionals, assignments = spec
        i, n = 1, len(words)
        while i < n:
            value = words[i].static
            if value is None:
                break
            if value == "--":
                i += 1
                break
            if program == "env" and (value in ("-S", "--split-string") or value.startswith("--split-string=")
                                     or (value.startswith("-S") and len(value) > 2)):
                if value in ("-S", "--split-string"):
                    text = words[i + 1].as_source() if i + 1 < n else ""
                    i += 2
                else:
                    text = value.split("=", 1)[1] if value.startswith("--") else value[2:]
                    i += 1
                split = [w for c in parse(text, depth + 1) for w in c.assignments + c.words]
                return split + words[i:]
            if value in with_value or value in long_with_value:
                i += 2
            elif value.startswith("--") and value.split("=", 1)[0] in long_with_value:
                i += 1
            elif value.startswith("-") and len(value) > 1:
                i += 1
            elif assignments and words[i].is_assignment():
                i += 1
            else:
                break
        while positionals and i < n:
            i += 1
            positionals -= 1
        return words[i:]

    def shell(self, words: list, stdin, depth: int) -> list:
        i, n, has_c = 1, len(words), False
        while i < n:
            value = words[i].static
            if value is None:
                break
            if value in ("--", "-"):
                i += 1
                break
            if value in ("--rcfile", "--init-file"):
                i += 2
                continue
            if value.startswith("--"):
                i += 1
                continue
            if value[:1] in "-+" and len(value) > 1:
                takes = value[1:].count("o") + value[1:].count("O")
                has_c = has_c or (value[0] == "-" and "c" in value[1:])
                i += 1 + takes
                continue
            break
        if has_c:
            return self.reparse(words[i].as_source(), depth) if i < n else []
        if i < n:
            return []  # a script file: its text is not known here (the shims see what it runs)
        return self.reparse(stdin, depth) if stdin else []

    def watch(self, words: list, depth: int) -> list:
        i, n = 1, len(words)
        while i < n and words[i].static and words[i].static.startswith("-"):
            value = words[i].static
            i += 2 if value in ("-n", "-d", "--interval", "-q", "--equexit") else 1
        if i >= n:
            return []
        return self.reparse(" ".join(w.as_source() for w in words[i:]), depth)

    def find_exec(self, words: list, depth: int) -> list:
        hits, i, n = [], 1, len(words)
        while i < n:
            if words[i].static in ("-exec", "-execdir", "-ok", "-okdir"):
                j = i + 1
                while j < n and words[j].static not in (";", "+"):
                    j += 1
                hits.extend(self.argv(words[i + 1:j], None, depth + 1))
                i = j
            i += 1
        return hits

    def lookup(self, env: dict):
        return lambda name: env[name] if name in env else self.value_of(name)

    def git(self, words: list, depth: int, env: dict) -> tuple[list, list]:
        """What git's configuration makes of this command: the configuration it is given (`-c`,
        `--config-env`, GIT_CONFIG_*) and what `git config` wrote earlier in the command line,
        as the arguments it stands for (tools: config_arguments) and as aliases. Returns (the
        aliased command or [], hits); a `git config` that writes such a setting is itself judged
        as the command the setting would change."""
        options = self.policy.options("git")
        index = git_global_options(words, options)
        given = git_settings(words, options, self.lookup(env))
        written = git_config_writes(words, index)
        hits = self.configured(words[0], given + written, depth)
        for key, value in written:  # an alias written for later runs what it stands for then
            if key.startswith("alias.") and value:
                text = value[1:] if value.startswith("!") else f"{words[0].as_source()} {value}"
                hits += [_Hit("deny", hit.rule, f"{hit.reason} (the alias {key[len('alias.'):]} that this "
                                                f"writes would run it)", hit.argv)
                         for hit in self.reparse(text, depth) if hit.decision == "deny"]
        self.git_config += written
        for where, text in git_command_strings(words, index, given + self.git_config, options, self.lookup(env)):
            hits += self.command_string(where, text, depth)
        aliases = {key[len("alias."):]: value for key, value in given + self.git_config
                   if key.startswith("alias.") and value is not None}
        if index >= len(words) or words[index].static is None:
            return [], hits
        body = aliases.get(words[index].static.lower())
        if body is None:
            return [], hits
        if body.startswith("!"):
            return [Word.literal("sh"), Word.literal("-c"), Word.literal(body[1:] + ' "$@"')], hits
        expanded = [w for c in parse(body) for w in c.words]
        return [words[0]] + words[1:index] + expanded + words[index + 1:], hits

    def command_string(self, where: str, text: str, depth: int) -> list:
        """Deny hits of a string a program runs as a shell command (`core.sshCommand`,
        `GIT_EDITOR`, `rebase --exec`): its rules' denials. One that does not parse, sh does not run either."""
        if text in self.judging:  # GIT_EDITOR='git commit' runs git, which reads GIT_EDITOR...
            return []
        self.judging.add(text)
        try:
            found = self.reparse(text, depth)
        except ShellSyntaxError:
            return []
        finally:
            self.judging.discard(text)
        # the rules only: a key file ssh reads for git (GIT_SSH_COMMAND='ssh -i ~/.ssh/id_ed25519') is
        # how git authenticates, not the agent reading it
        return [_Hit("deny", hit.rule, f"{hit.reason} (run by git from {where})", hit.argv)
                for hit in found if hit.decision == "deny" and hit.rule not in (FILES_BLOCKED, FILES_READ_ONLY)]

    def configured(self, program_word: Word, settings: list, depth: int) -> list:
        """Deny hits for the arguments `settings` stand for (tools: config_arguments): a push
        refspec in `remote.R.push` is a refspec on the push's command line."""
        table = self.policy.options(_basename(program_word.static or "")).config_arguments
        hits = []
        for glob, template in table:
            for key, value in settings:
                if not fnmatchcase(key, glob.lower()):
                    continue
                if "{value}" in template:
                    if value is None:
                        continue
                    arguments = [Word.literal(value) if w == "{value}" else Word.literal(w) for w in template.split()]
                elif value is None or value.lower() in GIT_TRUE:
                    arguments = [Word.literal(w) for w in template.split()]
                else:
                    continue
                configured = [program_word, *arguments]
                program = _basename(program_word.static or "")
                for rule in self.policy.deny_by_program.get(program, ()):
                    if rule.matches(configured, self.policy.options(program)):
                        hits.append(_Hit("deny", rule.id, f"{rule.reason} (set by the configuration {key}={value})",
                                         _display(configured)))
        return hits

    def npm_exec(self, words: list, depth: int) -> tuple[list, list]:
        """`npm exec [--] CMD ...` (also `npm x`, `npm exe`) runs CMD, like npx; `-c`/`--call`
        STRING runs a shell string. (the command, hits of the strings it runs)"""
        options = self.policy.options("npm")
        i, n = 1, len(words)
        while i < n and (words[i].static or "").startswith("-") and words[i].static != "--":
            i += 2 if options.kind(words[i].static) == "value" else 1
        if i >= n or words[i].static is None or options.subcommand(words[i].static) != "exec":
            return [], []
        hits, i = [], i + 1
        while i < n and (words[i].static or "").startswith("-") and words[i].static != "--":
            value = words[i].static
            if value in ("-c", "--call") and i + 1 < n:
                hits += self.reparse(words[i + 1].as_source(), depth)
                i += 2
            elif value.startswith("--call="):
                hits += self.reparse(value.split("=", 1)[1], depth)
                i += 1
            else:
                i += 2 if value in ("-p", "--package", "-w", "--workspace") else 1
        if i < n and words[i].static == "--":
            i += 1
        return words[i:], hits

    def cargo(self, words: list, env: dict) -> list:
        """`CARGO_ALIAS_SHIP=publish cargo ship`, `cargo --config alias.ship=... ship`: the
        command an alias stands for, or []."""
        index, body = cargo_alias(words, self.policy.options("cargo"), self.lookup(env))
        if not body:
            return []
        return [words[0]] + words[1:index] + [Word.literal(w) for w in body] + words[index + 1:]


def _assignment(word: Word, value_of) -> tuple[str, str | None]:
    """(name, value) of a NAME=value word, a default in it taken; the value None when it is not
    known here (a command substitution, a variable never assigned)."""
    parts = word.alternative or word.parts
    kind, text = parts[0]
    head, _, first = text.partition("=")
    name = head.rstrip("+").split("[", 1)[0]
    value = []
    for part_kind, part_text in ([(kind, first)] if first else []) + list(parts[1:]):
        if part_kind == DYNAMIC:
            known = value_of(part_text[1:]) if part_text[:1] == "$" and part_text[1:2] not in "({[`" else None
            if known is None:
                return name, None
            value.append(known)
        else:
            value.append(" " if part_kind == SPLIT else part_text)
    return name, "".join(value)


def _leading_assignments(words: list, value_of) -> dict:
    """`env [OPTIONS] NAME=value... COMMAND`: the variables env sets for the command."""
    out = {}
    for word in words:
        if word.is_assignment():
            out.update((_assignment(word, value_of),))
        elif not (word.static or "").startswith("-"):
            break
    return out


def _known_basename(word: Word) -> str | None:
    """The program a command word names when only the folder is unknown (`"$(git --exec-path)"/git-push`)."""
    kind, text = word.parts[-1]
    if kind != DYNAMIC and "/" in text and text.rsplit("/", 1)[1]:
        return text
    return None


def _xargs_command(options: list, command: list, stdin: str | None) -> list:
    """The command xargs runs, with what it reads when that is known (`echo +main | xargs git push
    origin`): the items appended, or with -I/--replace each line put in place of the string."""
    if not stdin:
        return command
    replace = None
    for index, word in enumerate(options):
        value = word.static or ""
        if value in ("-I", "--replace") and index + 1 < len(options):
            replace = options[index + 1].static
        elif value.startswith("--replace="):
            replace = value.split("=", 1)[1]
        elif value.startswith("-I") and len(value) > 2:
            replace = value[2:]
        elif value == "-i" or value.startswith("-i"):
            replace = value[2:] or "{}"
    if replace is None:
        return command + [Word.literal(item) for item in stdin.split()]
    line = next((line.strip() for line in stdin.splitlines() if line.strip()), "")
    return [Word.literal(w.static.replace(replace, line)) if w.static is not None else w for w in command]


def _static_output(cmd: SimpleCommand) -> str | None:
    """What `echo ...`, `printf ...` or `cat` (of a heredoc) writes, when it is known."""
    if not cmd.words or cmd.words[0].static is None:
        return None
    name = _basename(cmd.words[0].static)
    args = [w.as_source() for w in cmd.words[1:]]
    if name == "echo":
        while args and args[0] in ("-n", "-e", "-E", "-ne", "-en"):
            args = args[1:]
        return " ".join(args) + "\n"
    if name == "printf" and args:
        text = args[0].replace("\\n", "\n").replace("\\t", "\t")
        for arg in args[1:]:
            text = re.sub(r"%[sbd]", lambda _m, a=arg: a, text, count=1)
        return text
    if name == "cat" and len(cmd.words) == 1:
        return cmd.stdin
    return None


# ------------------------------------------------------------------ entry point

def classify(command: str | list, runtime, trace: list | None = None, place: Place | None = None) -> Decision:
    """Decide one command (shell text as a CLI passes it, or an argv) under a runtime profile.
    With `trace`, also append every argv a guarded program would be executed with. `place`: where
    it runs, for the paths it names (default: this process's folder, home and environment)."""
    policy = _policy_for(runtime)
    classifier = _Classifier(policy, trace, place)
    try:
        if isinstance(command, str):
            classifier.budget.spend(len(command))
            commands = parse(command)
            per_command = []
            for cmd in commands:
                if cmd.words or cmd.outputs or cmd.inputs:
                    per_command.append(classifier.simple(cmd, 0))
                else:
                    classifier.simple(cmd, 0)  # assignments only: remembered for the commands after it
            if not per_command:
                return Decision("allow", None, "no command to run")
            return _combine(per_command, policy)
        if not isinstance(command, (list, tuple)) or not all(isinstance(a, str) for a in command):
            raise TypeError("classify: command must be a string or a list of strings")
        if not command:
            return Decision("allow", None, "no command to run")
        classifier.budget.spend(sum(len(a) + 1 for a in command))
        return _combine([classifier.argv([Word.literal(a) for a in command], None, 0)], policy)
    except (ShellSyntaxError, RecursionError) as exc:
        decision = "deny" if policy.posture == "bypass" else "ask"
        return Decision(decision, PARSE_ERROR_RULE, f"could not be parsed: {exc}", parse_error=True)
    except TooComplex as exc:
        # in every posture: asking a person about a command nobody has checked is no check
        return Decision("deny", TOO_COMPLEX_RULE, f"{TOO_COMPLEX_REASON} ({exc})")


def _combine(per_command: list, policy: Policy) -> Decision:
    """Each simple command gets its strictest rule (or the default); the command gets the strictest."""
    best = None
    matched = []
    for hits in per_command:
        for hit in hits:
            if hit.rule not in matched:
                matched.append(hit.rule)
        top = None
        for hit in hits:
            if top is None or STRICTNESS[hit.decision] > STRICTNESS[top.decision]:
                top = hit
        if top is None:
            current = Decision(policy.default_decision, None, "no rule matches")
        else:
            current = Decision(top.decision, top.rule, top.reason, argv=top.argv)
        if best is None or STRICTNESS[current.decision] > STRICTNESS[best.decision]:
            best = current
    ranked = sorted(matched, key=lambda r: -STRICTNESS[_decision_of(per_command, r)])
    return Decision(best.decision, best.rule, best.reason, argv=best.argv, matched=tuple(ranked))


def _decision_of(per_command: list, rule_id: str) -> str:
    return next(h.decision for hits in per_command for h in hits if h.rule == rule_id)


def executed_argvs(command: str, runtime) -> list[tuple[str, ...]]:
    """The argvs of guarded programs this command would exec, as far as the text shows (for explain)."""
    policy = _policy_for(runtime)
    trace: list = []
    classifier = _Classifier(policy, trace)
    try:
        classifier.budget.spend(len(command))
        for cmd in parse(command):
            if cmd.words:
                classifier.simple(cmd, 0)
    except (ShellSyntaxError, RecursionError, TooComplex):
        pass
    return list(dict.fromkeys(trace))
