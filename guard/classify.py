"""The command classifier: shell text or argv -> allow / ask / deny, by the profile's rules.

Deterministic and standard-library only: the Claude hook and the exec-time shims call it on
every command. Rule semantics are the ones in docs/design.md ("Command rule semantics");
docs/guard.md lists what this module adds on top (wrappers, dynamic command words, option
abbreviations).
"""

from __future__ import annotations

import re
from functools import lru_cache

from guard.shellparse import (
    ShellSyntaxError,
    SimpleCommand,
    Word,
    brace_expand,
    parse,
)

DECISIONS = ("allow", "ask", "deny")
_STRICTNESS = {"allow": 0, "ask": 1, "deny": 2}
_RULE_ID = re.compile(r"[a-z0-9-]+\Z")
_OPTION_NAME = re.compile(r"-[A-Za-z0-9]\Z|--[A-Za-z0-9][A-Za-z0-9._-]*\Z")
# Two samples stand in for an unknown (dynamic) part: a matcher counts only if it holds for both.
_DYNAMIC_SAMPLES = ("", "\x00")
PARSE_ERROR_RULE = "parse-error"
MAX_NESTING = 16
MAX_DYNAMIC_WRAPPERS = 4  # `$SUDO $TIMEOUT gh ...`: unknown words tried as wrappers before a command


class _Record:
    """Fields from __slots__, keyword or positional; equality and repr by fields."""

    __slots__ = ()
    _defaults: dict = {}

    def __init__(self, *args, **kwargs):
        names = self.__slots__
        values = dict(self._defaults)
        values.update(zip(names, args))
        values.update(kwargs)
        for name in names:
            object.__setattr__(self, name, values[name])

    def __eq__(self, other):
        return type(other) is type(self) and all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __hash__(self):
        return hash(tuple(getattr(self, n) for n in self.__slots__))

    def __repr__(self):
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"


@lru_cache(maxsize=256)
def _glob_regex(glob: str):
    """fnmatch's glob language (*, ?, [...]), case-sensitive, without importing fnmatch."""
    out, i, n = [], 0, len(glob)
    while i < n:
        c = glob[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = glob.find("]", i + 1 if i < n and glob[i] in "!]" else i)
            if j < 0:
                out.append("\\[")
            else:
                body = glob[i:j].replace("\\", "\\\\")
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = j + 1
        else:
            out.append(re.escape(c))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def fnmatchcase(value: str, glob: str) -> bool:
    return _glob_regex(glob).match(value) is not None


class PolicyError(ValueError):
    """The runtime profile cannot be used; the message names the key and the fix."""


class Decision(_Record):
    """decision: allow | ask | deny; rule: the rule id or None; argv: the simple command that
    decided, after unwrapping; matched: every rule id that matched, strictest first."""

    __slots__ = ("decision", "rule", "reason", "parse_error", "argv", "matched")
    _defaults = {"parse_error": False, "argv": (), "matched": ()}

    def __setattr__(self, name, value):
        raise AttributeError("Decision is immutable")

    def as_json(self, command) -> dict:
        return {"command": command, "decision": self.decision, "rule": self.rule, "reason": self.reason}


# ------------------------------------------------------------------ compiled policy

class _Matcher(_Record):
    # kind: flag | option | arg; longs without the leading "--"; shorts: letters; values lower-cased
    __slots__ = ("kind", "longs", "shorts", "values", "glob")
    _defaults = {"longs": (), "shorts": "", "values": frozenset(), "glob": ""}


class _Rule(_Record):
    # words: frozensets, the command words after the program; any_of: _Matchers
    __slots__ = ("id", "decision", "reason", "programs", "words", "any_of", "tripwire")


class _ToolOptions(_Record):
    __slots__ = ("with_value", "flags", "skip_args")
    _defaults = {"with_value": frozenset(), "flags": frozenset(), "skip_args": ()}

    def kind(self, arg: str) -> str:
        """'value' (takes the next argument), 'one' (stands alone) or 'unknown' (may take one)."""
        if arg in self.with_value:
            return "value"
        if arg in self.flags:
            return "one"
        if arg.startswith("--"):
            if "=" in arg:
                return "one"
        elif len(arg) > 2 and arg[:2] in self.with_value:
            return "one"  # -Cdir
        return "unknown"


class Policy(_Record):
    __slots__ = ("profile", "posture", "default_decision", "rules", "by_program", "deny_by_program", "tools",
                 "guarded")
    __hash__ = None

    def options(self, program: str) -> _ToolOptions:
        return self.tools.get(program, _NO_OPTIONS)


_NO_OPTIONS = _ToolOptions()


def _fail(where: str, problem: str, fix: str):
    raise PolicyError(f"runtime profile: {where}: {problem}; {fix}")


def _string_list(value, where: str, what: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        _fail(where, f"expected {what} (a non-empty string or list of non-empty strings), got {value!r}",
              "write it as a YAML list of strings")
    return value


def _compile_matcher(raw, where: str) -> _Matcher:
    if not isinstance(raw, dict):
        _fail(where, f"a matcher must be a mapping, got {raw!r}", 'use {flag: [...]}, {option: [...], value: V} or {arg: GLOB}')
    keys = set(raw)
    if keys == {"flag"} or keys == {"option", "value"}:
        kind = "flag" if "flag" in raw else "option"
        names = _string_list(raw[kind], f"{where}.{kind}", "option names")
        for name in names:
            if not _OPTION_NAME.match(name):
                _fail(f"{where}.{kind}", f"{name!r} is not an option name",
                      'write a long option as "--name" and a short one as "-x"')
        longs = tuple(n[2:] for n in names if n.startswith("--"))
        shorts = "".join(n[1] for n in names if not n.startswith("--"))
        values = frozenset(v.lower() for v in _string_list(raw["value"], f"{where}.value", "option values")) \
            if kind == "option" else frozenset()
        return _Matcher(kind, longs, shorts, values)
    if keys == {"arg"}:
        glob = raw["arg"]
        if not isinstance(glob, str) or not glob:
            _fail(f"{where}.arg", f"expected a glob string, got {glob!r}", 'write e.g. arg: "+*"')
        return _Matcher("arg", glob=glob)
    _fail(where, f"unknown matcher keys {sorted(keys)}", "a matcher has exactly one of: flag; option with value; arg")


def _compile_rule(raw, index: int, seen: set) -> _Rule:
    where = f"rules[{index}]"
    if not isinstance(raw, dict):
        _fail(where, f"a rule must be a mapping, got {type(raw).__name__}", "see docs/design.md, Command rule semantics")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
        _fail(f"{where}.id", f"{rule_id!r} is not a rule id", "use lower-case letters, digits and '-'")
    where = f"rules[{index}] ({rule_id})"
    if rule_id in seen:
        _fail(where, "duplicate rule id", "give every rule its own id")
    seen.add(rule_id)
    decision = raw.get("decision", "deny")
    if decision not in DECISIONS:
        _fail(f"{where}.decision", f"{decision!r} is not a decision", "use allow, ask or deny")
    reason = raw.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        _fail(f"{where}.reason", "missing or empty", "say in one sentence why the rule exists")
    command = raw.get("command")
    if not isinstance(command, list) or not command:
        _fail(f"{where}.command", f"expected a non-empty list of words, got {command!r}", "e.g. command: [git, push]")
    words = [frozenset(_string_list(w, f"{where}.command[{k}]", "a word or alternatives"))
             for k, w in enumerate(command)]
    programs = frozenset(p.rsplit("/", 1)[-1] for p in words[0])
    any_of = raw.get("any_of", [])
    if not isinstance(any_of, list):
        _fail(f"{where}.any_of", f"expected a list of matchers, got {any_of!r}", "or leave any_of out")
    matchers = tuple(_compile_matcher(m, f"{where}.any_of[{k}]") for k, m in enumerate(any_of))
    unknown = set(raw) - {"id", "decision", "reason", "command", "any_of", "tripwire"}
    if unknown:
        _fail(where, f"unknown keys {sorted(unknown)}", "remove them")
    return _Rule(rule_id, decision, reason.strip(), programs, tuple(words[1:]), matchers, bool(raw.get("tripwire")))


# rustup's proxies take `+toolchain` before the subcommand (`cargo +nightly publish`)
BUILTIN_SKIP_ARGS = {"cargo": ("+*",)}


def _compile_tools(raw) -> dict:
    tools = _compile_tool_tables(raw)
    for program, globs in BUILTIN_SKIP_ARGS.items():
        table = tools.get(program, _NO_OPTIONS)
        tools[program] = _ToolOptions(table.with_value, table.flags, tuple(dict.fromkeys(table.skip_args + globs)))
    return tools


def _compile_tool_tables(raw) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        _fail("tools", f"expected a mapping of program -> options, got {type(raw).__name__}", "see docs/design.md")
    tools = {}
    for program, table in raw.items():
        if not isinstance(table, dict):
            _fail(f"tools.{program}", "expected a mapping", "give options_with_value and flags lists")
        unknown = set(table) - {"options_with_value", "flags", "skip_args"}
        if unknown:
            _fail(f"tools.{program}", f"unknown keys {sorted(unknown)}", "allowed: options_with_value, flags, skip_args")
        lists = {}
        for key in ("options_with_value", "flags", "skip_args"):
            value = table.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                _fail(f"tools.{program}.{key}", f"expected a list of strings, got {value!r}", "write a YAML list")
            lists[key] = value
        for name in lists["options_with_value"] + lists["flags"]:
            if not name.startswith("-"):
                _fail(f"tools.{program}", f"{name!r} is not an option", "options start with '-'")
        tools[program] = _ToolOptions(frozenset(lists["options_with_value"]), frozenset(lists["flags"]),
                                      tuple(lists["skip_args"]))
    return tools


def compile_policy(runtime: dict) -> Policy:
    """Validate and compile a runtime profile dict; raises PolicyError naming the bad key."""
    if not isinstance(runtime, dict):
        raise PolicyError("runtime profile: expected a JSON object at the top level")
    posture = runtime.get("posture", "bypass")
    if posture not in ("bypass", "interactive"):
        _fail("posture", f"{posture!r} is not a posture", "use bypass or interactive")
    default = runtime.get("default_decision", "allow" if posture == "bypass" else "ask")
    if default not in DECISIONS:
        _fail("default_decision", f"{default!r} is not a decision", "use allow, ask or deny")
    raw_rules = runtime.get("rules", [])
    if not isinstance(raw_rules, list):
        _fail("rules", "expected a list", "see docs/design.md, Runtime profile JSON")
    seen: set = set()
    rules = tuple(_compile_rule(r, k, seen) for k, r in enumerate(raw_rules))
    by_program: dict = {}
    deny_by_program: dict = {}
    for rule in rules:
        for program in rule.programs:
            by_program.setdefault(program, []).append(rule)
            if rule.decision == "deny":
                deny_by_program.setdefault(program, []).append(rule)
    guarded = runtime.get("guarded_programs") or []
    if not isinstance(guarded, list) or not all(isinstance(g, str) and g for g in guarded):
        _fail("guarded_programs", f"expected a list of program names, got {guarded!r}", "e.g. [git, gh, npm, cargo]")
    all_guarded = tuple(sorted(set(guarded) | set(deny_by_program)))
    return Policy(str(runtime.get("profile", "")), posture, default, rules, by_program, deny_by_program,
                  _compile_tools(runtime.get("tools")), all_guarded)


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


# ------------------------------------------------------------------ argv matching

def _samples(word: Word) -> tuple:
    return (word.static,) if word.static is not None else tuple(word.sample(f) for f in _DYNAMIC_SAMPLES)


def _command_word_ends(spec: tuple, argv: list, start: int, options: _ToolOptions, wildcard: bool = True) -> set:
    """Indices just after the last command word, for every way `argv[start:]` can match `spec`.
    With `wildcard`, an unknown (dynamic) word may be any command word."""
    ends: set = set()
    seen: set = set()
    stack = [(0, start)]
    n = len(argv)
    while stack:
        k, j = stack.pop()
        if (k, j) in seen:
            continue
        seen.add((k, j))
        if k == len(spec):
            ends.add(j)
            continue
        if j >= n:
            continue
        value = argv[j].static
        if value is None:  # unknown: it may be the command word, or an option
            if wildcard:
                stack.append((k + 1, j + 1))
            stack.append((k, j + 1))
            continue
        if value == "--":
            if j + 1 < n and (argv[j + 1].static is None or argv[j + 1].static in spec[k]):
                stack.append((k + 1, j + 2))
            continue
        if value.startswith("-") and len(value) > 1:
            kind = options.kind(value)
            if kind == "value":
                stack.append((k, j + 2))
            elif kind == "one":
                stack.append((k, j + 1))
            else:
                stack.append((k, j + 1))
                stack.append((k, j + 2))
            continue
        if value in spec[k]:
            stack.append((k + 1, j + 1))
        if any(fnmatchcase(value, g) for g in options.skip_args):
            stack.append((k, j + 1))
    return ends


def _long_matches(arg: str, names: tuple) -> bool:
    name = arg[2:].split("=", 1)[0]
    if not name:
        return False
    # git and npm accept unambiguous abbreviations (`--force-w`, `--del`); an ambiguous one fails anyway
    return any(name == long or (len(name) >= 2 and long.startswith(name)) for long in names)


def _flag_holds(sample: str, m: _Matcher) -> bool:
    if sample.startswith("--"):
        return bool(m.longs) and _long_matches(sample, m.longs)
    if sample.startswith("-") and len(sample) > 1 and m.shorts:
        cluster = sample[1:]
        return cluster.isalnum() and any(c in cluster for c in m.shorts)
    return False


def _option_value(rest: list, idx: int, m: _Matcher):
    """The value the option at rest[idx] carries if it is one of m's options, else None."""
    arg = rest[idx].static
    if arg is None:
        return None
    following = rest[idx + 1] if idx + 1 < len(rest) else None
    if arg.startswith("--"):
        if not m.longs or not _long_matches(arg, m.longs):
            return None
        if "=" in arg:
            return Word.literal(arg.split("=", 1)[1])
        return following
    if arg.startswith("-") and len(arg) > 1 and m.shorts:
        for pos in range(1, len(arg)):
            if arg[pos] in m.shorts:
                attached = arg[pos + 1:]
                if attached:
                    return Word.literal(attached[1:] if attached.startswith("=") else attached)
                return following
            if not arg[pos].isalnum():
                return None
    return None


def _any_of_holds(matchers: tuple, rest: list) -> bool:
    end_of_options = False
    for idx, word in enumerate(rest):
        if word.static == "--" and not end_of_options:
            end_of_options = True
            continue
        samples = _samples(word)
        for m in matchers:
            if m.kind == "arg":
                if all((end_of_options or not s.startswith("-")) and fnmatchcase(s, m.glob) for s in samples):
                    return True
            elif end_of_options:
                continue
            elif m.kind == "flag":
                if all(_flag_holds(s, m) for s in samples):
                    return True
            else:
                value = _option_value(rest, idx, m)
                if value is not None and value.static is not None and value.static.lower() in m.values:
                    return True
    return False


def _rule_matches(rule: _Rule, argv: list, options: _ToolOptions, wildcard: bool = True) -> bool:
    ends = _command_word_ends(rule.words, argv, 1, options, wildcard)
    if not ends:
        return False
    if not rule.any_of:
        return True
    # The arguments after the earliest end include those after any later one, so one check
    # covers them all, except where a `--` between the two turns later flags into positionals.
    first = min(ends)
    checks = {first} | {e for e in ends if any(w.static == "--" for w in argv[first:e])}
    return any(_any_of_holds(rule.any_of, argv[e:]) for e in sorted(checks))


# ------------------------------------------------------------------ unwrapping

class _Hit(_Record):
    __slots__ = ("decision", "rule", "reason", "argv", "parse_error")
    _defaults = {"parse_error": False}


def _display(argv) -> tuple:
    return tuple(w.display() for w in argv)


def _basename(value: str) -> str:
    return value.rsplit("/", 1)[-1]


# wrapper -> (options taking a value, long options taking a value (attached with =), positionals
# before the command, accepts NAME=VALUE words)
_WRAPPERS = {
    "env": ({"-u", "-C", "-S", "-P", "-a"}, {"--unset", "--chdir", "--split-string", "--argv0"}, 0, True),
    "sudo": ({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-T", "-U", "-R"},
             {"--user", "--group", "--close-from", "--chdir", "--host", "--prompt", "--role", "--type",
              "--command-timeout", "--other-user", "--chroot"}, 0, True),
    "doas": ({"-u", "-C"}, set(), 0, False),
    "nohup": (set(), set(), 0, False),
    "nice": ({"-n"}, {"--adjustment"}, 0, False),
    "timeout": ({"-s", "-k"}, {"--signal", "--kill-after"}, 1, False),
    "stdbuf": ({"-i", "-o", "-e"}, {"--input", "--output", "--error"}, 0, False),
    "time": ({"-f", "-o"}, {"--format", "--output"}, 0, False),
    "exec": ({"-a"}, set(), 0, False),
    "builtin": (set(), set(), 0, False),
    "ionice": ({"-c", "-n", "-p", "-P", "-u"}, {"--class", "--classdata", "--pid", "--pgid", "--uid"}, 0, False),
    "chrt": (set(), set(), 1, False),
    "taskset": (set(), {"--cpu-list"}, 1, False),
    "setsid": (set(), set(), 0, False),
    "unbuffer": (set(), set(), 0, False),
    "chroot": (set(), {"--userspec", "--groups"}, 1, False),
    "unshare": ({"-S", "-G", "-R", "-w"}, {"--setuid", "--setgid", "--root", "--wd"}, 0, False),
    "nsenter": ({"-t", "-S", "-G", "-r", "-w"}, {"--target", "--setuid", "--setgid", "--root", "--wd"}, 0, False),
    "busybox": (set(), set(), 0, False),
    "xargs": ({"-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s"},
              {"--arg-file", "--delimiter", "--eof", "--replace", "--max-lines", "--max-args", "--max-procs",
               "--max-chars", "--process-slot-var"}, 0, False),
    "npx": ({"-p"}, {"--package", "--cache", "--userconfig"}, 0, False),
}
_SHELLS = frozenset(("sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh", "rbash"))
_SHELL_STRING_OPTION = {"su": ("-c", "--command"), "runuser": ("-c", "--command"), "script": ("-c", "--command"),
                        "flock": ("-c", "--command"), "npx": ("-c", "--call")}


class _Classifier:
    def __init__(self, policy: Policy, trace: list | None = None):
        self.policy = policy
        self.trace = trace  # when a list: every argv a guarded program would be executed with

    # a command string -> hits
    def source(self, text: str, depth: int) -> list:
        if depth > MAX_NESTING:
            raise ShellSyntaxError("commands nested too deeply")
        hits = []
        for cmd in parse(text, depth):
            hits.extend(self.simple(cmd, depth))
        return hits

    def simple(self, cmd: SimpleCommand, depth: int) -> list:
        if not cmd.words:
            return []
        words: list = []
        for word in cmd.words:
            if word.static is not None and word.has_unquoted("{"):
                words.extend(Word.literal(v) for v in brace_expand(word) if v != "")
            else:
                words.append(word)
        stdin = cmd.stdin
        if stdin is None and cmd.pipe_from is not None:
            stdin = _static_output(cmd.pipe_from)
        return self.argv(words, stdin, depth)

    def argv(self, words: list, stdin: str | None, depth: int) -> list:
        if depth > MAX_NESTING:
            raise ShellSyntaxError("commands nested too deeply")
        hits: list = []
        while words:
            head = words[0]
            value = head.static
            if value is None or (head.has_unquoted("*?[") and value not in ("[", "[[")):
                hits.extend(self.dynamic(words, stdin, depth))
                break
            program = _basename(value)
            if self.trace is not None and program in self.policy.guarded:
                self.trace.append(_display(words))
            options = self.policy.options(program)
            for rule in self.policy.by_program.get(program, ()):
                if _rule_matches(rule, words, options):
                    hits.append(_Hit(rule.decision, rule.id, rule.reason, _display(words)))
            words, more = self.unwrap(program, words, stdin, depth)
            hits.extend(more)
        return hits

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
            for program in self.policy.guarded:
                candidate = [Word.literal(program)] + words[start + 1:]
                options = self.policy.options(program)
                for rule in self.policy.deny_by_program.get(program, ()):
                    # the program is a guess already: its subcommand must be spelled out
                    if _rule_matches(rule, candidate, options, wildcard=False):
                        hits.append(_Hit("deny", rule.id,
                                         f"{rule.reason} (the command word {shown} is not known before it runs "
                                         f"and could be {program})", _display(candidate)))
        return hits

    def reparse(self, text: str, depth: int) -> list:
        return self.source(text, depth + 1)

    def unwrap(self, program: str, words: list, stdin, depth: int):
        """(the command this one runs, hits from strings it runs); ([], hits) when it runs none."""
        if program in _SHELLS:
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
            return self.git_alias(words), []
        hits = []
        option_string = _SHELL_STRING_OPTION.get(program)
        if option_string:
            for k, word in enumerate(words[1:-1], start=1):
                value = word.static or ""
                if value in option_string or (value[:1] == "-" and value[1:2] != "-" and value.endswith("c")
                                              and value[1:].isalpha()):
                    hits.extend(self.reparse(words[k + 1].as_source(), depth))
                elif word.static and word.static.startswith(option_string[1] + "="):
                    hits.extend(self.reparse(word.static.split("=", 1)[1], depth))
        spec = _WRAPPERS.get(program)
        if spec is None:
            return [], hits
        rest = self.strip_wrapper(program, words, spec, depth, hits)
        if program == "xargs" and not rest:
            return [], hits
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

    def git_alias(self, words: list) -> list:
        """`git -c alias.x='push -f' x` runs `git push -f`; return that argv (or [] when none)."""
        aliases, i, n = {}, 1, len(words)
        options = self.policy.options("git")
        while i < n and words[i].static and words[i].static.startswith("-"):
            value = words[i].static
            if value == "-c" and i + 1 < n and words[i + 1].static:
                setting = words[i + 1].static
                if setting.lower().startswith("alias.") and "=" in setting:
                    name, body = setting[6:].split("=", 1)
                    aliases[name.lower()] = body
            i += 2 if options.kind(value) == "value" or value == "-c" else 1
        if not aliases or i >= n or words[i].static is None:
            return []
        body = aliases.get(words[i].static.lower())
        if body is None or body.startswith("!"):
            if body:
                return [Word.literal("sh"), Word.literal("-c"), Word.literal(body[1:] + ' "$@"')]
            return []
        expanded = [w for c in parse(body) for w in c.words]
        return [words[0]] + words[1:i] + expanded + words[i + 1:]


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

def classify(command: str | list, runtime, trace: list | None = None) -> Decision:
    """Decide one command (shell text as a CLI passes it, or an argv) under a runtime profile.
    With `trace`, also append every argv a guarded program would be executed with."""
    policy = _policy_for(runtime)
    classifier = _Classifier(policy, trace)
    try:
        if isinstance(command, str):
            commands = parse(command)
            per_command = []
            for cmd in commands:
                if cmd.words:
                    per_command.append(classifier.simple(cmd, 0))
            if not per_command:
                return Decision("allow", None, "no command to run")
            return _combine(per_command, policy)
        if not isinstance(command, (list, tuple)) or not all(isinstance(a, str) for a in command):
            raise TypeError("classify: command must be a string or a list of strings")
        if not command:
            return Decision("allow", None, "no command to run")
        return _combine([classifier.argv([Word.literal(a) for a in command], None, 0)], policy)
    except (ShellSyntaxError, RecursionError) as exc:
        decision = "deny" if policy.posture == "bypass" else "ask"
        return Decision(decision, PARSE_ERROR_RULE, f"could not be parsed: {exc}", parse_error=True)


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
            if top is None or _STRICTNESS[hit.decision] > _STRICTNESS[top.decision]:
                top = hit
        if top is None:
            current = Decision(policy.default_decision, None, "no rule matches")
        else:
            current = Decision(top.decision, top.rule, top.reason, argv=top.argv)
        if best is None or _STRICTNESS[current.decision] > _STRICTNESS[best.decision]:
            best = current
    ranked = sorted(matched, key=lambda r: -_STRICTNESS[_decision_of(per_command, r)])
    return Decision(best.decision, best.rule, best.reason, argv=best.argv, matched=tuple(ranked))


def _decision_of(per_command: list, rule_id: str) -> str:
    return next(h.decision for hits in per_command for h in hits if h.rule == rule_id)


def executed_argvs(command: str, runtime) -> list[tuple[str, ...]]:
    """The argvs of guarded programs this command would exec, as far as the text shows (for explain)."""
    policy = _policy_for(runtime)
    trace: list = []
    classifier = _Classifier(policy, trace)
    try:
        for cmd in parse(command):
            if cmd.words:
                classifier.simple(cmd, 0)
    except (ShellSyntaxError, RecursionError):
        pass
    return list(dict.fromkeys(trace))
