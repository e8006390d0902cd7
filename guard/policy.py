"""The rule language, compiled: the one home of what a command rule is and how it matches an argv.

A rule names a program and subcommand words, and optionally matchers that must hold for some
later argument (docs/design.md, "Command rule semantics"). This module reads rules in their JSON
shape (a profile's YAML rule once the schema passed it, or the runtime profile the renderer
writes), refuses a malformed one naming the key and the fix, matches an argv against them, and
gives the literal prefix forms that the CLIs' own prefix rules can hold. The renderer (model and
every CLI's translation), the classifier, the shims' fast-path table and `agent-guard explain`
all use it, so a new matcher kind is one class here, the schemas and each CLI's translation.

Standard library only, and no dataclasses (their import costs the hook ~5 ms): the hook and the
shims load this on every tool call (docs/design.md, "Where speed matters").
"""

from __future__ import annotations

import itertools
import os
import re
from functools import lru_cache

DECISIONS = ("allow", "ask", "deny")
STRICTNESS = {"allow": 0, "ask": 1, "deny": 2}
POSTURES = ("bypass", "interactive")
RULE_KEYS = ("id", "decision", "reason", "command", "any_of", "none_of", "tripwire")
_RULE_ID = re.compile(r"[a-z0-9-]+\Z")
_OPTION_NAME = re.compile(r"-[A-Za-z0-9]\Z|--[A-Za-z0-9][A-Za-z0-9._-]*\Z")
# Two samples stand in for an unknown (dynamic) part: a matcher counts only if it holds for both.
_DYNAMIC_SAMPLES = ("", "\x00")
# rustup's proxies take `+toolchain` before the subcommand (`cargo +nightly publish`)
BUILTIN_SKIP_ARGS = {"cargo": ("+*",)}


class Record:
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


class PolicyError(ValueError):
    """A rule or profile that cannot be used; the message names the key and the fix."""


def _fail(where: str, problem: str, fix: str):
    raise PolicyError(f"{where}: {problem}; {fix}")


def _string_list(value, where: str, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
        _fail(where, f"expected {what} (a non-empty string or list of non-empty strings), got {value!r}",
              "write it as a YAML list of strings")
    return tuple(value)


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


def samples(word) -> tuple:
    """The values a shell word may take here: itself, or two stand-ins for its unknown parts."""
    return (word.static,) if word.static is not None else tuple(word.sample(f) for f in _DYNAMIC_SAMPLES)


# ------------------------------------------------------------------ matchers

def _option_names(raw, where: str) -> tuple[str, ...]:
    names = _string_list(raw, where, "option names")
    for name in names:
        if not _OPTION_NAME.match(name):
            _fail(where, f"{name!r} is not an option name", 'write a long option as "--name" and a short one as "-x"')
    return names


def _long_matches(arg: str, longs: tuple) -> bool:
    name = arg[2:].split("=", 1)[0]
    if not name:
        return False
    # git and npm accept unambiguous abbreviations (`--force-w`, `--del`); an ambiguous one fails anyway
    return any(name == long or (len(name) >= 2 and long.startswith(name)) for long in longs)


class Matcher(Record):
    """One kind of test on the arguments after a rule's command words.

    A kind is one subclass in MATCHER_KINDS: `kind` is its key in JSON, `parse` reads and checks
    it, `to_json` writes it back, `holds` decides one argument, `literal_tails` gives what a
    prefix rule can put after the command words to stand for it (none: prefix rules cannot)."""

    __slots__ = ()
    kind = ""
    keys: frozenset = frozenset()
    optional_keys: frozenset = frozenset()

    @classmethod
    def parse(cls, raw: dict, where: str) -> Matcher:
        raise NotImplementedError

    def to_json(self) -> dict:
        raise NotImplementedError

    def holds(self, rest: list, index: int, values: tuple, after_double_dash: bool) -> bool:
        """Whether it holds for rest[index], whose possible values are `values`."""
        raise NotImplementedError

    def literal_tails(self) -> list[tuple[str, ...]]:
        return []

    def identity(self) -> tuple:
        """What makes two matchers the same test, whatever the order of their names."""
        return tuple(sorted((key, tuple(sorted(value)) if isinstance(value, list) else value)
                            for key, value in self.to_json().items()))


class Flag(Matcher):
    """`--force` (also `--force=...` and an abbreviation), `-f` (also inside a cluster: `-uf`)."""

    __slots__ = ("names", "longs", "shorts")
    kind = "flag"
    keys = frozenset({"flag"})

    def __init__(self, names):
        names = tuple(names)
        super().__init__(names, tuple(n[2:] for n in names if n.startswith("--")),
                         "".join(n[1] for n in names if not n.startswith("--")))

    @classmethod
    def parse(cls, raw: dict, where: str) -> Flag:
        return cls(_option_names(raw["flag"], f"{where}.flag"))

    def to_json(self) -> dict:
        return {"flag": list(self.names)}

    def holds(self, rest: list, index: int, values: tuple, after_double_dash: bool) -> bool:
        return not after_double_dash and all(self._holds(value) for value in values)

    def _holds(self, value: str) -> bool:
        if value.startswith("--"):
            return bool(self.longs) and _long_matches(value, self.longs)
        if value.startswith("-") and len(value) > 1 and self.shorts:
            cluster = value[1:]
            return cluster.isalnum() and any(c in cluster for c in self.shorts)
        return False

    def literal_tails(self) -> list[tuple[str, ...]]:
        return [(name,) for name in self.names]

    def may_be_present(self, value: str) -> bool:
        """Looser than _holds, for options that must be absent: a short option also counts with a
        value attached (`-O'cmd'`), or anywhere in the letters a cluster starts with (`-nO`)."""
        if value.startswith("--"):
            return bool(self.longs) and _long_matches(value, self.longs)
        if value.startswith("-") and len(value) > 1 and self.shorts:
            letters = re.match(r"[A-Za-z0-9]*", value[1:]).group(0)
            return value[1] in self.shorts or any(c in letters for c in self.shorts)
        return False


class Option(Matcher):
    """An option carrying a value, any case: `-X DELETE`, `-XDELETE`, `--method=delete`."""

    __slots__ = ("names", "value", "longs", "shorts", "values")
    kind = "option"
    keys = frozenset({"option", "value"})

    def __init__(self, names, value):
        names = tuple(names)
        written = (value,) if isinstance(value, str) else tuple(value)
        super().__init__(names, value, tuple(n[2:] for n in names if n.startswith("--")),
                         "".join(n[1] for n in names if not n.startswith("--")),
                         frozenset(v.lower() for v in written))

    @classmethod
    def parse(cls, raw: dict, where: str) -> Option:
        names = _option_names(raw["option"], f"{where}.option")
        values = _string_list(raw["value"], f"{where}.value", "option values")
        return cls(names, raw["value"] if isinstance(raw["value"], str) else list(values))

    def to_json(self) -> dict:
        return {"option": list(self.names), "value": self.value}

    def holds(self, rest: list, index: int, values: tuple, after_double_dash: bool) -> bool:
        if after_double_dash:
            return False
        carried = self._carried(rest, index)
        return carried is not None and carried.lower() in self.values

    def _carried(self, rest: list, index: int) -> str | None:
        """The value the option at rest[index] carries if it is one of these options, else None
        (also when the value is not known before it runs)."""
        arg = rest[index].static
        if arg is None:
            return None
        following = rest[index + 1].static if index + 1 < len(rest) else None
        if arg.startswith("--"):
            if not self.longs or not _long_matches(arg, self.longs):
                return None
            return arg.split("=", 1)[1] if "=" in arg else following
        if arg.startswith("-") and len(arg) > 1 and self.shorts:
            for pos in range(1, len(arg)):
                if arg[pos] in self.shorts:
                    attached = arg[pos + 1:]
                    if attached:
                        return attached[1:] if attached.startswith("=") else attached
                    return following
                if not arg[pos].isalnum():
                    return None
        return None

    def values_as_written(self) -> tuple[str, ...]:
        return (self.value,) if isinstance(self.value, str) else tuple(self.value)

    def literal_tails(self) -> list[tuple[str, ...]]:
        tails = []
        for name in self.names:
            for value in self.values_as_written():
                tails.append((name, value))
                tails.append((f"{name}={value}",) if name.startswith("--") else (f"{name}{value}",))
        return tails


class Arg(Matcher):
    """A positional argument matching a glob (`+*` is a force refspec, `:*` a delete refspec)."""

    __slots__ = ("glob",)
    kind = "arg"
    keys = frozenset({"arg"})

    @classmethod
    def parse(cls, raw: dict, where: str) -> Arg:
        glob = raw["arg"]
        if not isinstance(glob, str) or not glob:
            _fail(f"{where}.arg", f"expected a glob string, got {glob!r}", 'write e.g. arg: "+*"')
        return cls(glob)

    def to_json(self) -> dict:
        return {"arg": self.glob}

    def holds(self, rest: list, index: int, values: tuple, after_double_dash: bool) -> bool:
        return all((after_double_dash or not v.startswith("-")) and fnmatchcase(v, self.glob) for v in values)


_SHORT_METHOD = re.compile(r"-[A-Za-z]*X(.*)", re.DOTALL)  # -X PATCH, -XPATCH, -X=PATCH, -iX PATCH
_URL_HOST = re.compile(r"[a-z][a-z0-9+.-]*://[^/]*")
ANY_METHOD = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
NOT_ALLOWLISTED = "not-allowlisted"


class Endpoint(Matcher):
    """A raw API call (`gh api PATH`) to a path matching the `endpoint` glob, made with one of
    `method` (any method when absent), and with `mutation: not-allowlisted`, sending a GraphQL
    document with a mutation the credential gateway does not allow by name (egress/github_policy.py
    parses it with graphql-core; the guard asks it rather than keeping a second list).

    In the path glob `*` is one segment and `**` any number of them; a leading `https://HOST` or
    `/` and a `?query` are not part of the path; an unknown part of the path (`repos/$REPO`)
    may be one segment or two. The method is the one `-X`/`--method` names, else POST when the
    call sends fields (`-f`, `-F`, `--field`, `--raw-field`) or a body (`--input`), else GET, as
    gh decides it. A method or a GraphQL document not known before the call runs (a variable, a
    file, stdin) counts as matching."""

    __slots__ = ("path", "methods", "mutation", "_segments")
    kind = "endpoint"
    keys = frozenset({"endpoint"})
    optional_keys = frozenset({"method", "mutation"})
    METHOD_OPTIONS = ("-X", "--method")
    FIELD_OPTIONS = ("-f", "-F", "--field", "--raw-field")
    BODY_OPTION = "--input"

    def __init__(self, path: str, methods=(), mutation: str = ""):
        super().__init__(path, tuple(m.upper() for m in methods), mutation, tuple(path.strip("/").split("/")))

    @classmethod
    def parse(cls, raw: dict, where: str) -> Endpoint:
        path = raw["endpoint"]
        if not isinstance(path, str) or not path.strip("/") or any(c.isspace() for c in path):
            _fail(f"{where}.endpoint", f"expected an API path glob, got {path!r}", 'write e.g. endpoint: "repos/*/*"')
        methods = _string_list(raw["method"], f"{where}.method", "HTTP methods") if "method" in raw else ()
        unknown = sorted({m.upper() for m in methods} - ANY_METHOD)
        if unknown:
            _fail(f"{where}.method", f"{unknown} are not HTTP methods", f"use some of {sorted(ANY_METHOD)}")
        mutation = raw.get("mutation", "")
        if "mutation" in raw and mutation != NOT_ALLOWLISTED:
            _fail(f"{where}.mutation", f"expected {NOT_ALLOWLISTED!r}, got {mutation!r}",
                  f"write mutation: {NOT_ALLOWLISTED} (the gateway's allowlist decides which pass)")
        return cls(path, methods, mutation)

    def to_json(self) -> dict:
        out: dict = {"endpoint": self.path}
        if self.methods:
            out["method"] = list(self.methods)
        if self.mutation:
            out["mutation"] = self.mutation
        return out

    def holds(self, rest: list, index: int, values: tuple, after_double_dash: bool) -> bool:
        word = rest[index]
        if not after_double_dash and word.sample("").startswith("-"):
            return False
        paths = (word.static,) if word.static is not None else (word.sample("\x00"), word.sample("\x00/\x00"))
        if not any(self.path_matches(path) for path in paths):
            return False
        if self.methods and not (self.method(rest) & set(self.methods)):
            return False
        return not self.mutation or self.refused_mutation(rest)

    def path_matches(self, value: str) -> bool:
        path = _URL_HOST.sub("", value, count=1).split("?", 1)[0].split("#", 1)[0].strip("/")
        return _segments_match(self._segments, tuple(path.split("/")))

    def method(self, rest: list) -> frozenset:
        """The methods the call may use: one, or every method when it is not known here."""
        sends = False
        for index, word in enumerate(rest):
            value = word.static
            if value is None:
                continue
            following = rest[index + 1].static if index + 1 < len(rest) else ""
            name, eq, attached = value.partition("=")
            short = _SHORT_METHOD.match(value) if not value.startswith("--") else None
            if name in self.METHOD_OPTIONS and name.startswith("--"):
                given = attached if eq else following
            elif short:
                given = short.group(1).lstrip("=") or following
            else:
                sends = sends or name in self.FIELD_OPTIONS or name == self.BODY_OPTION or value[:2] in ("-f", "-F")
                continue
            return frozenset((given.upper(),)) if given else ANY_METHOD
        return frozenset(("POST",)) if sends else frozenset(("GET",))

    def fields(self, rest: list):
        """(name, value, option) of each field the call sends; name or value None when not known."""
        for index, word in enumerate(rest):
            value = word.sample("\x00")
            if value.startswith("--") and value.partition("=")[0] in self.FIELD_OPTIONS:
                option, eq, text = value.partition("=")
                if not eq:
                    text = rest[index + 1].sample("\x00") if index + 1 < len(rest) else ""
            elif value[:2] in ("-f", "-F"):
                option, text = value[:2], value[2:]
                if not text:
                    text = rest[index + 1].sample("\x00") if index + 1 < len(rest) else ""
            else:
                continue
            name, _, field_value = text.partition("=")
            yield (None if "\x00" in name else name), (None if "\x00" in field_value else field_value), option

    def refused_mutation(self, rest: list) -> bool:
        """Whether the GraphQL document sent is refused by the gateway's rule, or not known here."""
        if any(word.sample("").partition("=")[0] == self.BODY_OPTION for word in rest):
            return True  # the whole body comes from a file or stdin
        query, operation = None, None
        for name, value, option in self.fields(rest):
            if name is None and value is None:
                return True
            if name == "query":
                if value is None or (option in ("-F", "--field") and value.startswith("@")):
                    return True  # in a variable, a file (-F query=@file) or stdin
                query = value
            elif name == "operationName":
                operation = value
        return query is not None and graphql_refused(query, operation)


_GATEWAY_POLICY: list = []


def graphql_refused(query: str, operation: str | None) -> bool:
    """Whether the credential gateway would refuse this GraphQL request (egress/github_policy.py:
    graphql-core's parser, mutations allowed by name). Imported only here: graphql-core costs the
    hook ~0.2 s, paid only by `gh api graphql` calls. If it cannot be loaded, the call is refused."""
    import json

    try:
        from egress.github_policy import check_graphql, render_policy
    except ImportError:
        return True
    if not _GATEWAY_POLICY:
        _GATEWAY_POLICY.append(render_policy((), repository=None, run_id="guard"))
    body = {"query": query, **({"operationName": operation} if operation is not None else {})}
    return not check_graphql(_GATEWAY_POLICY[0], json.dumps(body).encode()).allowed


@lru_cache(maxsize=512)
def _segments_match(glob: tuple, path: tuple) -> bool:
    if not glob:
        return not path
    if glob[0] == "**":
        return any(_segments_match(glob[1:], path[n:]) for n in range(len(path) + 1))
    return bool(path) and fnmatchcase(path[0], glob[0]) and _segments_match(glob[1:], path[1:])


MATCHER_KINDS = (Flag, Option, Arg, Endpoint)


def parse_matcher(raw, where: str) -> Matcher:
    if not isinstance(raw, dict):
        _fail(where, f"a matcher must be a mapping, got {raw!r}",
              "use {flag: [...]}, {option: [...], value: V}, {arg: GLOB} or {endpoint: PATH, method: [...]}")
    for kind in MATCHER_KINDS:
        if kind.keys <= set(raw) <= kind.keys | kind.optional_keys:
            return kind.parse(raw, where)
    _fail(where, f"unknown matcher keys {sorted(raw)}",
          "a matcher has exactly one of: flag; option with value; arg; endpoint (with method, field)")


def holds_for_some_argument(matchers: tuple, rest: list) -> bool:
    """Whether some matcher holds for some argument of `rest` (after `--`, only positional tests)."""
    after_double_dash = False
    for index, word in enumerate(rest):
        if word.static == "--" and not after_double_dash:
            after_double_dash = True
            continue
        values = samples(word)
        for matcher in matchers:
            if matcher.holds(rest, index, values, after_double_dash):
                return True
    return False


def holds_after_some_end(matchers: tuple, argv: list, ends: list) -> bool:
    """holds_for_some_argument(matchers, argv[e:]) for some e in ends, in one pass over argv
    rather than one per end (dynamic words and `--`s can make the ends as many as the words)."""
    start = min(ends)
    rest = argv[start:]
    n = len(rest)
    as_option = [False] * (n + 1)  # some matcher holds at i, read before a `--`
    as_positional = [False] * (n + 1)  # ... read after one
    next_dash = [n] * (n + 1)
    for index in range(n - 1, -1, -1):
        values = samples(rest[index])
        as_option[index] = any(m.holds(rest, index, values, False) for m in matchers)
        as_positional[index] = any(m.holds(rest, index, values, True) for m in matchers)
        next_dash[index] = index if rest[index].static == "--" else next_dash[index + 1]
    option_run = [False] * (n + 1)  # some as_option hit from i up to the next `--`
    positional_tail = [False] * (n + 2)  # some as_positional hit from i to the end
    for index in range(n - 1, -1, -1):
        option_run[index] = rest[index].static != "--" and (as_option[index] or option_run[index + 1])
        positional_tail[index] = as_positional[index] or positional_tail[index + 1]
    for end in ends:
        i = end - start
        dash = next_dash[i] if i < n else n
        if option_run[i] if i < n else False:
            return True
        if dash < n and positional_tail[dash + 1]:
            return True
    return False


# ------------------------------------------------------------------ tools' global options

class ToolOptions(Record):
    """A program's global options (skipped before its subcommand), in the profile's order, and
    the options that make it write a file or run a program: `global_writes_or_runs` before the
    subcommand (`git -c core.fsmonitor=CMD`), `writes_or_runs` after it (`git log --output=FILE`).
    An allow rule never matches a command that carries one of those (it falls to ask).

    How the program names its subcommands and configures them (COMMAND_KEYS):
    `dashed_subcommands`: `git-push` (also `/usr/lib/git-core/git-push`) is `git push`;
    `subcommands` with `subcommand_aliases`: the program also runs a subcommand named by an alias
    or by any unique prefix of a subcommand or alias (npm's rule: `npm pub` is `npm publish`);
    `config_arguments`: configuration keys (globs) whose setting acts as these arguments
    (`remote.*.push: "push {value}"`; without `{value}`, when the setting is true);
    `command_strings`: where the program takes a string it runs as a shell command, which is then
    judged as one: `settings` (configuration keys: `core.sshCommand`), `variables` (`GIT_EDITOR`)
    and `options` (`"rebase --exec"`: the subcommand and its option)."""

    __slots__ = ("options_with_value", "flags", "skip_args", "global_writes_or_runs", "writes_or_runs",
                 "_with_value", "_flags", "unsafe_global", "unsafe",
                 "dashed_subcommands", "subcommands", "subcommand_aliases", "config_arguments", "command_strings",
                 "_abbreviations")
    TABLE_KEYS = ("options_with_value", "flags", "skip_args", "global_writes_or_runs", "writes_or_runs")
    COMMAND_KEYS = ("dashed_subcommands", "subcommands", "subcommand_aliases", "config_arguments", "command_strings")
    COMMAND_STRING_KINDS = ("settings", "variables", "options")

    def __init__(self, options_with_value=(), flags=(), skip_args=(), global_writes_or_runs=(), writes_or_runs=(),
                 dashed_subcommands=False, subcommands=(), subcommand_aliases=(), config_arguments=(),
                 command_strings=()):
        super().__init__(tuple(options_with_value), tuple(flags), tuple(skip_args), tuple(global_writes_or_runs),
                         tuple(writes_or_runs), frozenset(options_with_value), frozenset(flags),
                         (Flag(global_writes_or_runs),) if global_writes_or_runs else (),
                         (Flag(writes_or_runs),) if writes_or_runs else (),
                         bool(dashed_subcommands), tuple(subcommands), tuple(dict(subcommand_aliases).items()),
                         tuple(dict(config_arguments).items()),
                         tuple((kind, tuple(names)) for kind, names in dict(command_strings).items()), None)

    def command_string_names(self, kind: str) -> tuple:
        return dict(self.command_strings).get(kind, ())

    def table(self) -> dict:
        """The keyword arguments this was made from."""
        return {"options_with_value": self.options_with_value, "flags": self.flags, "skip_args": self.skip_args,
                "global_writes_or_runs": self.global_writes_or_runs, "writes_or_runs": self.writes_or_runs,
                "dashed_subcommands": self.dashed_subcommands, "subcommands": self.subcommands,
                "subcommand_aliases": self.subcommand_aliases, "config_arguments": self.config_arguments,
                "command_strings": self.command_strings}

    def subcommand(self, word: str) -> str | None:
        """The subcommand the program runs for `word` by its own naming rule (npm's deref in
        lib/utils/cmd-list.js: camelCase to kebab-case, a subcommand, an alias, or a unique
        prefix of either, then aliases followed), or None."""
        if not self.subcommands:
            return None
        if any("A" <= c <= "Z" for c in word):
            word = re.sub(r"[A-Z]", lambda m: "-" + m.group(0).lower(), word)
        aliases = dict(self.subcommand_aliases)
        if word in self.subcommands:
            return word
        if word in aliases:
            return aliases[word]
        if self._abbreviations is None:
            object.__setattr__(self, "_abbreviations", _unique_prefixes(self.subcommands + tuple(aliases)))
        found = self._abbreviations.get(word)
        for _ in range(len(aliases) + 1):
            if found not in aliases:
                break
            found = aliases[found]
        return found

    def spellings(self, word: str) -> list[str]:
        """Every other word the program runs `word` for (`pub`, `publi`... for npm's publish)."""
        if not self.subcommands:
            return []
        aliases = dict(self.subcommand_aliases)
        names = self.subcommands + tuple(aliases)
        candidates = {name[:n] for name in names for n in range(1, len(name) + 1)}
        return sorted(c for c in candidates if c != word and self.subcommand(c) == word)

    def kind(self, arg: str) -> str:
        """'value' (takes the next argument), 'one' (stands alone) or 'unknown' (may take one)."""
        if arg in self._with_value:
            return "value"
        if arg in self._flags:
            return "one"
        if arg.startswith("--"):
            if "=" in arg:
                return "one"
        elif len(arg) > 2 and arg[:2] in self._with_value:
            return "one"  # -Cdir
        return "unknown"


def _unique_prefixes(names: tuple) -> dict:
    """npm's abbrev: each prefix of exactly one name maps to it; every name maps to itself."""
    owners: dict = {}
    for name in names:
        for n in range(1, len(name) + 1):
            owners.setdefault(name[:n], set()).add(name)
    found = {prefix: next(iter(owner)) for prefix, owner in owners.items() if len(owner) == 1}
    found.update({name: name for name in names})
    return found


NO_OPTIONS = ToolOptions()


def parse_tools(raw) -> dict[str, ToolOptions]:
    """`tools:` -> {program: ToolOptions}, with the built-in skip_args added."""
    tools = {}
    if raw is not None and not isinstance(raw, dict):
        _fail("tools", f"expected a mapping of program -> options, got {type(raw).__name__}", "see docs/design.md")
    for program, table in (raw or {}).items():
        if not isinstance(table, dict):
            _fail(f"tools.{program}", "expected a mapping", "give options_with_value and flags lists")
        unknown = set(table) - set(ToolOptions.TABLE_KEYS) - set(ToolOptions.COMMAND_KEYS)
        if unknown:
            allowed = ", ".join(ToolOptions.TABLE_KEYS + ToolOptions.COMMAND_KEYS)
            _fail(f"tools.{program}", f"unknown keys {sorted(unknown)}", f"allowed: {allowed}")
        lists = _command_keys(table, f"tools.{program}")
        for key in ToolOptions.TABLE_KEYS:
            value = table.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                _fail(f"tools.{program}.{key}", f"expected a list of strings, got {value!r}", "write a YAML list")
            lists[key] = value
        for name in lists["options_with_value"] + lists["flags"]:
            if not name.startswith("-"):
                _fail(f"tools.{program}", f"{name!r} is not an option", "options start with '-'")
        for key in ("global_writes_or_runs", "writes_or_runs"):
            if lists[key]:
                _option_names(lists[key], f"tools.{program}.{key}")
        tools[program] = ToolOptions(**lists)
    for program, globs in BUILTIN_SKIP_ARGS.items():
        table = tools.get(program, NO_OPTIONS).table()
        tools[program] = ToolOptions(**{**table, "skip_args": tuple(dict.fromkeys(table["skip_args"] + globs))})
    return tools


def _command_keys(table: dict, where: str) -> dict:
    """ToolOptions.COMMAND_KEYS of one program's table, checked."""
    out = {}
    if "dashed_subcommands" in table:
        if not isinstance(table["dashed_subcommands"], bool):
            _fail(f"{where}.dashed_subcommands", f"expected true or false, got {table['dashed_subcommands']!r}",
                  "write dashed_subcommands: true")
        out["dashed_subcommands"] = table["dashed_subcommands"]
    if "subcommands" in table:
        out["subcommands"] = _string_list(table["subcommands"], f"{where}.subcommands", "subcommand names")
    for key, what in (("subcommand_aliases", "alias: subcommand"), ("config_arguments", "key glob: arguments")):
        value = table.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(k, str) and k and isinstance(v, str) and v
                                                  for k, v in value.items()):
            _fail(f"{where}.{key}", f"expected a mapping of {what}, got {value!r}", f"write {key}: {{{what}}}")
        if value:
            out[key] = value
    if "command_strings" in table:
        value = table["command_strings"]
        kinds = ToolOptions.COMMAND_STRING_KINDS
        if not isinstance(value, dict) or set(value) - set(kinds):
            _fail(f"{where}.command_strings", f"expected a mapping with some of {list(kinds)}, got {value!r}",
                  "write command_strings: {settings: [...], variables: [...], options: [\"SUBCOMMAND --option\"]}")
        out["command_strings"] = {kind: _string_list(names, f"{where}.command_strings.{kind}", kind)
                                  for kind, names in value.items()}
        for option in out["command_strings"].get("options", ()):
            if len(option.split()) != 2 or not _OPTION_NAME.match(option.split()[1]):
                _fail(f"{where}.command_strings.options", f"{option!r} is not 'SUBCOMMAND --option'",
                      'write e.g. "rebase --exec"')
    unknown_targets = sorted(set(out.get("subcommand_aliases", {}).values()) - set(out.get("subcommands", ())))
    if unknown_targets:
        _fail(f"{where}.subcommand_aliases", f"aliases of {unknown_targets}, which are not in subcommands",
              "name only subcommands the program has")
    return out


# ------------------------------------------------------------------ rules

def _basename(value: str) -> str:
    return value.rsplit("/", 1)[-1]


class Rule(Record):
    """command: each word's alternatives, the program first; programs: their basenames; words:
    the later command words as sets; any_of: Matchers; source: the file it came from, if known."""

    __slots__ = ("id", "decision", "reason", "command", "any_of", "tripwire", "source", "none_of", "programs",
                 "words")

    def __init__(self, id, decision, reason, command, any_of=(), tripwire=False, source="", none_of=()):
        command = tuple(tuple(words) for words in command)
        super().__init__(id, decision, reason, command, tuple(any_of), bool(tripwire), source, tuple(none_of),
                         frozenset(_basename(p) for p in command[0]), tuple(frozenset(w) for w in command[1:]))

    def prefixes(self) -> list[tuple[str, ...]]:
        """Every concrete word sequence the command words stand for."""
        return list(itertools.product(*self.command))

    def literal_forms(self) -> list[tuple[str, ...]]:
        """The argv prefixes a prefix-matching CLI can hold for this rule: the command words,
        then (when the rule needs a matcher) each literal tail of its matchers."""
        if not self.any_of:
            return self.prefixes()
        tails = [tail for matcher in self.any_of for tail in matcher.literal_tails()]
        return [prefix + tail for prefix in self.prefixes() for tail in tails]

    def to_json(self) -> dict:
        out = {"id": self.id, "decision": self.decision, "reason": self.reason,
               "command": [list(words) for words in self.command]}
        if self.any_of:
            out["any_of"] = [m.to_json() for m in self.any_of]
        if self.none_of:
            out["none_of"] = [m.to_json() for m in self.none_of]
        if self.tripwire:
            out["tripwire"] = True
        return out

    def matches(self, argv: list, options: ToolOptions, wildcard: bool = True) -> bool:
        """Whether argv (shell words; argv[0] is one of the programs) matches. With `wildcard`,
        a word not known before it runs may stand for any command word."""
        ends = command_word_ends(self.words, argv, 1, options, wildcard)
        if not ends:
            return False
        if self._excluded(argv, ends, options):
            return False
        if not self.any_of:
            return True
        # The arguments after the earliest end include those after any later one, so one check
        # covers them all, except where a `--` between the two turns later flags into positionals.
        first = min(ends)
        dash = next((i for i in range(first, len(argv)) if argv[i].static == "--"), len(argv))
        later = [e for e in ends if e > dash]
        if not later:
            return holds_for_some_argument(self.any_of, argv[first:])
        return holds_after_some_end(self.any_of, argv, [first, *later])

    def _excluded(self, argv: list, ends: set, options: ToolOptions) -> bool:
        """Whether a none_of matcher, or (for an allow rule) one of the tool's writing or running
        options, is or may be present: judged on the widest reading of where the command words
        end, and an argument not known before it runs counts as present."""
        after = self.none_of + (options.unsafe if self.decision == "allow" else ())
        before = options.unsafe_global if self.decision == "allow" else ()
        if not after and not before:
            return False
        return bool((after and may_hold(after, argv[min(ends):]))
                    or (before and may_hold(before, argv[1:max(ends)])))


def may_hold(matchers: tuple, words: list) -> bool:
    """Like holds_for_some_argument, but a word not known before it runs may be anything."""
    after_double_dash = False
    for index, word in enumerate(words):
        if word.static is None:
            if not after_double_dash:
                return True
            continue
        if word.static == "--" and not after_double_dash:
            after_double_dash = True
            continue
        for matcher in matchers:
            if isinstance(matcher, Flag) and not after_double_dash:
                if matcher.may_be_present(word.static):
                    return True
            elif matcher.holds(words, index, (word.static,), after_double_dash):
                return True
    return False


def parse_rule(raw, where: str, *, decision: str | None = None, tripwire: bool | None = None,
               source: str = "") -> Rule:
    """A rule from its JSON shape. A profile's rule takes its decision and tripwire from where it
    is written (arguments); a runtime profile's rule carries them (keys)."""
    if not isinstance(raw, dict):
        _fail(where, f"a rule must be a mapping, got {type(raw).__name__}", "see docs/design.md, Command rule semantics")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
        _fail(f"{where}.id", f"{rule_id!r} is not a rule id", "use lower-case letters, digits and '-'")
    where = f"{where} ({rule_id})"
    decision = raw.get("decision", "deny") if decision is None else decision
    if decision not in DECISIONS:
        _fail(f"{where}.decision", f"{decision!r} is not a decision", "use allow, ask or deny")
    reason = raw.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        _fail(f"{where}.reason", "missing or empty", "say in one sentence why the rule exists")
    command = raw.get("command")
    if not isinstance(command, list) or not command:
        _fail(f"{where}.command", f"expected a non-empty list of words, got {command!r}", "e.g. command: [git, push]")
    words = [_string_list(w, f"{where}.command[{k}]", "a word or alternatives") for k, w in enumerate(command)]
    any_of = raw.get("any_of", [])
    if not isinstance(any_of, list):
        _fail(f"{where}.any_of", f"expected a list of matchers, got {any_of!r}", "or leave any_of out")
    matchers = tuple(parse_matcher(m, f"{where}.any_of[{k}]") for k, m in enumerate(any_of))
    none_of = raw.get("none_of", [])
    if not isinstance(none_of, list):
        _fail(f"{where}.none_of", f"expected a list of matchers, got {none_of!r}", "or leave none_of out")
    excluded = tuple(parse_matcher(m, f"{where}.none_of[{k}]") for k, m in enumerate(none_of))
    unknown = set(raw) - set(RULE_KEYS)
    if unknown:
        _fail(where, f"unknown keys {sorted(unknown)}", "remove them")
    return Rule(rule_id, decision, reason.strip(), words, matchers,
                raw.get("tripwire") if tripwire is None else tripwire, source, excluded)


def deny_programs(rules) -> list[str]:
    """The programs some deny rule names: each gets a shim, and the hook tries an unknown command
    word as each of them."""
    return sorted({program for rule in rules if rule.decision == "deny" for program in rule.programs})


# ------------------------------------------------------------------ the policy

# ------------------------------------------------------------------ file tiers

HOME_ALIASES = (  # a folder under ~ that a CLI reads from elsewhere when the variable is set
    (".claude/", "CLAUDE_CONFIG_DIR", ""),
    (".codex/", "CODEX_HOME", ""),
    (".gemini/", "GEMINI_CLI_HOME", ".gemini/"),
)


def _path_regex(glob: str):
    """A file-tier glob as (anchor, regex): `~/X` is under the home folder, `/X` absolute, any
    other glob may match below any folder (as `**/X`): the guard does not know the workspace
    root, and a wider match only refuses more. `**` crosses folders, `*` and `?` do not."""
    if glob.startswith("~/"):
        anchor, body = "home", glob[2:]
    elif glob.startswith("/"):
        anchor, body = "absolute", glob
    else:
        anchor, body = "anywhere", glob[3:] if glob.startswith("**/") else glob
    out, i = [], 0
    while i < len(body):
        if body.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif body.startswith("**", i):
            out.append(".*")
            i += 2
        elif body[i] == "*":
            out.append("[^/]*")
            i += 1
        elif body[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(body[i]))
            i += 1
    prefix = "(?:.*/)?" if anchor == "anywhere" else ""
    return anchor, re.compile(prefix + "".join(out) + r"\Z", re.DOTALL)


class FileTiers(Record):
    """The profile's files: blocked (neither read nor written) and read_only (not written), each a
    tuple of (glob, (anchor, regex)); `combined`: per tier and anchor one regex of them all, so a
    path that matches no glob (nearly every path) costs one match per anchor, not one per glob."""

    __slots__ = ("blocked", "read_only", "combined")

    def __init__(self, blocked, read_only):
        combined = {}
        for tier, globs in (("blocked", blocked), ("read_only", read_only)):
            for anchor in ("home", "absolute", "anywhere"):
                patterns = [regex.pattern for _, (a, regex) in globs if a == anchor]
                combined[tier, anchor] = re.compile("|".join(f"(?:{p})" for p in patterns), re.DOTALL) if patterns else None
        super().__init__(blocked, read_only, combined)

    def home_prefixes(self, home: str, environ) -> list[tuple[str, str]]:
        """(folder prefix, what it stands for under ~) for the home folder and the CLIs' folders
        their variables name: computed once per classification, used for every path."""
        prefixes = [(home.rstrip("/") + "/", "")] if home else []
        for under_home, variable, inside in HOME_ALIASES:
            folder = environ.get(variable) if environ else None
            if folder:
                prefixes.append((os.path.join(folder, inside).rstrip("/") + "/", under_home))
        return prefixes

    def tier(self, path: str, home: str, environ, prefixes: list | None = None) -> tuple[str, str] | None:
        """(tier, glob) for an absolute, normalised path; blocked first."""
        if prefixes is None:
            prefixes = self.home_prefixes(home, environ)
        relative_to_home = [under + path[len(prefix):] for prefix, under in prefixes if path.startswith(prefix)]
        for tier, globs in (("blocked", self.blocked), ("read_only", self.read_only)):
            home_any, absolute_any, anywhere_any = (self.combined[tier, a] for a in ("home", "absolute", "anywhere"))
            if not ((home_any and any(home_any.match(rel) for rel in relative_to_home))
                    or (absolute_any and absolute_any.match(path))
                    or (anywhere_any and anywhere_any.match(path.lstrip("/")))):
                continue
            for glob, (anchor, regex) in globs:
                if anchor == "home":
                    if any(regex.match(rel) for rel in relative_to_home):
                        return tier, glob
                elif regex.match(path if anchor == "absolute" else path.lstrip("/")):
                    return tier, glob
        return None


def parse_files(raw) -> FileTiers:
    raw = raw or {}
    if not isinstance(raw, dict):
        _fail("files", f"expected a mapping of tiers, got {type(raw).__name__}", "give blocked and read_only lists")
    tiers = []
    for tier in ("blocked", "read_only"):
        globs = raw.get(tier, [])
        if not isinstance(globs, list) or not all(isinstance(g, str) and g for g in globs):
            _fail(f"files.{tier}", f"expected a list of globs, got {globs!r}", "write a list of strings")
        tiers.append(tuple((glob, _path_regex(glob)) for glob in globs))
    return FileTiers(*tiers)


class Policy(Record):
    """A compiled runtime profile: the rules by program, the tools' options, what is guarded, the
    file tiers."""

    __slots__ = ("profile", "posture", "default_decision", "rules", "by_program", "deny_by_program", "tools",
                 "guarded", "files")
    __hash__ = None

    def options(self, program: str) -> ToolOptions:
        return self.tools.get(program, NO_OPTIONS)


def compile_policy(runtime: dict) -> Policy:
    """Validate and compile a runtime profile dict; raises PolicyError naming the bad key."""
    try:
        return _compile(runtime)
    except PolicyError as exc:
        raise PolicyError(f"runtime profile: {exc}") from None


def _compile(runtime: dict) -> Policy:
    if not isinstance(runtime, dict):
        raise PolicyError("expected a JSON object at the top level")
    posture = runtime.get("posture", "bypass")
    if posture not in POSTURES:
        _fail("posture", f"{posture!r} is not a posture", "use bypass or interactive")
    default = runtime.get("default_decision", "allow" if posture == "bypass" else "ask")
    if default not in DECISIONS:
        _fail("default_decision", f"{default!r} is not a decision", "use allow, ask or deny")
    raw_rules = runtime.get("rules", [])
    if not isinstance(raw_rules, list):
        _fail("rules", "expected a list", "see docs/design.md, Runtime profile JSON")
    rules = []
    seen: set = set()
    for index, raw in enumerate(raw_rules):
        rule = parse_rule(raw, f"rules[{index}]")
        if rule.id in seen:
            _fail(f"rules[{index}] ({rule.id})", "duplicate rule id", "give every rule its own id")
        seen.add(rule.id)
        rules.append(rule)
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
    return Policy(str(runtime.get("profile", "")), posture, default, tuple(rules), by_program, deny_by_program,
                  parse_tools(runtime.get("tools")), tuple(sorted(set(guarded) | set(deny_by_program))),
                  parse_files(runtime.get("files")))


# ------------------------------------------------------------------ command words

def command_word_ends(spec: tuple, argv: list, start: int, options: ToolOptions, wildcard: bool = True) -> set:
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
        if value is None or argv[j].may_differ:  # unknown: it may be the command word, or an option
            if wildcard:
                stack.append((k + 1, j + 1))
            stack.append((k, j + 1))
            if value is None:
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
        if value in spec[k] or (k == 0 and options.subcommands and options.subcommand(value) in spec[k]):
            stack.append((k + 1, j + 1))
        if any(fnmatchcase(value, g) for g in options.skip_args):
            stack.append((k, j + 1))
    return ends
