"""A strict parser for the part of bash that decides which programs run.

It does not evaluate anything. It turns a command string into the flat list of simple
commands bash could execute (including the ones inside $(...), backticks, <(...),
subshells, functions, loops, heredoc bodies), each as a list of `Word`s that keep
track of which parts are quoted and which are expansions whose value is unknown here.

Syntax bash itself rejects (unterminated quotes, unbalanced parentheses, `fi` without
`if`, ...) raises `ShellSyntaxError`: the caller must not treat such input as harmless,
because bash runs the commands before the error.
"""

from __future__ import annotations

import re

PLAIN, QUOTED, DYNAMIC = 0, 1, 2
SPLIT = 3  # in a Word's alternative only: an unquoted blank in a default, where bash splits the word
_DEFAULTING = (":-", ":=", ":+", "-", "=", "+")  # ${X:-word}: the word is a value the expansion may take
_PARAMETER = re.compile(r"!?(?:[A-Za-z_][A-Za-z0-9_]*|\d+|[@*#?$!-])")
DYNAMIC_PLACEHOLDER = "$__agent_guard_dynamic__"

_META = frozenset(" \t\n;&|()<>")
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")
_SPECIAL_PARAMS = frozenset("@*#?$!-0123456789")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")
_ARRAY_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=\Z")
_FD_PREFIX = re.compile(r"(\d+|\{[A-Za-z_][A-Za-z0-9_]*\})(?=[<>])")
_OPERATORS = (  # longest first
    ";;&", "<<<", "<<-", "&>>",
    "&&", "||", ";;", ";&", "|&", "((", "<<", "<>", "<&", ">>", ">|", ">&", "&>",
    ";", "&", "|", "(", ")", "<", ">",
)
REDIRECTIONS = frozenset(("<", ">", ">>", ">|", "<>", "<&", ">&", "&>", "&>>", "<<", "<<-", "<<<"))
OUTPUT_REDIRECTIONS = frozenset((">", ">>", ">|", "<>", ">&", "&>", "&>>"))
_RESERVED = frozenset((
    "if", "then", "elif", "else", "fi", "case", "esac", "for", "select", "while", "until",
    "do", "done", "function", "{", "}", "!", "[[", "]]", "time", "coproc",
))
_CLOSERS = frozenset(("then", "elif", "else", "fi", "do", "done", "esac", "}"))
_ANSI_C = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r",
           "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}
MAX_DEPTH = 24


class ShellSyntaxError(ValueError):
    pass


class Word:
    """One shell word: parts of (kind, text); kind PLAIN (unquoted), QUOTED or DYNAMIC.
    `alternative`: when the word holds `${X:-default}` (or `:=`, `:+`, `-`, `=`, `+`), its parts
    with each such expansion replaced by the default's own parts (SPLIT where bash would split
    the default into more words), else None: the value the word takes when the defaults apply.
    `may_differ`: the word was made from such a default, so the shell may give it another value
    (the variable was set after all): a command word may then still be any word."""

    __slots__ = ("parts", "static", "reserved", "alternative", "may_differ")

    def __init__(self, parts, alternative=None, may_differ=False):
        self.parts = parts
        self.alternative = alternative
        self.may_differ = may_differ
        if any(kind == DYNAMIC for kind, _ in parts):
            self.static = None
        else:
            self.static = "".join(text for _, text in parts)
        self.reserved = parts[0][1] if len(parts) == 1 and parts[0][0] == PLAIN else None

    @classmethod
    def literal(cls, text: str) -> "Word":
        return cls([(QUOTED, text)])

    def sample(self, fill: str) -> str:
        return "".join(fill if kind == DYNAMIC else text for kind, text in self.parts)

    def as_source(self) -> str:
        """The value with unknown parts replaced by a variable reference, for re-parsing."""
        return self.sample(DYNAMIC_PLACEHOLDER)

    def has_unquoted(self, chars: str) -> bool:
        return any(kind == PLAIN and any(c in text for c in chars) for kind, text in self.parts)

    def is_assignment(self) -> bool:
        kind, text = self.parts[0]
        return kind == PLAIN and _ASSIGNMENT.match(text) is not None

    def display(self) -> str:
        return self.static if self.static is not None else self.sample("$…")

    def __repr__(self) -> str:
        return f"Word({self.display()!r})"


class SimpleCommand:
    """One simple command. A redirection of a compound command (`{ ...; } > FILE`) is kept as a
    simple command with no words and that redirection, so every file written is seen."""

    __slots__ = ("assignments", "words", "stdin", "pipe_from", "redirected", "nested", "outputs", "inputs")

    def __init__(self, nested: bool = False):
        self.nested = nested  # inside $(...), backquotes, a subshell or a compound command
        self.assignments: list[Word] = []
        self.words: list[Word] = []
        self.stdin: str | None = None  # static text from a heredoc or here-string
        self.pipe_from: SimpleCommand | None = None
        self.redirected = False
        self.outputs: list[Word] = []  # files written by >, >>, >|, <>, &>, &>>, >&FILE
        self.inputs: list[Word] = []  # files read by <, <>


def parse(source: str, depth: int = 0) -> list[SimpleCommand]:
    """Every simple command in `source`, in source order (nested ones included)."""
    if depth > MAX_DEPTH:
        raise ShellSyntaxError("commands nested too deeply")
    parser = _Parser(source, depth)
    parser.parse_program()
    return parser.commands


class _Parser:
    def __init__(self, src: str, depth: int, commands: list | None = None):
        self.s = src
        self.n = len(src)
        self.i = 0
        self.depth = depth
        self.commands: list[SimpleCommand] = [] if commands is None else commands
        self.peeked = None
        self.pending_heredocs: list = []
        self.nesting = 0
        self.default = None  # the default of the ${X:-...} read_dollar just read

    # ---------------------------------------------------------------- errors
    def error(self, what: str, at: int | None = None):
        pos = self.i if at is None else at
        snippet = self.s[max(0, pos - 12):pos + 12].replace("\n", "\\n")
        raise ShellSyntaxError(f"{what} at offset {pos} (near {snippet!r})")

    # ---------------------------------------------------------------- lexer
    def skip_blank(self):
        s, n = self.s, self.n
        while self.i < n:
            c = s[self.i]
            if c == " " or c == "\t" or c == "\r":
                self.i += 1
            elif c == "\\" and self.i + 1 < n and s[self.i + 1] == "\n":
                self.i += 2
            elif c == "#":
                while self.i < n and s[self.i] != "\n":
                    self.i += 1
            else:
                break

    def peek(self):
        if self.peeked is None:
            self.peeked = self.lex()
        return self.peeked

    def take(self):
        tok = self.peek()
        self.peeked = None
        return tok

    def lex(self):
        self.skip_blank()
        s, i = self.s, self.i
        if i >= self.n:
            return ("EOF", None)
        c = s[i]
        if c == "\n":
            self.i += 1
            self.read_heredocs()
            return ("NL", None)
        if (c == "<" or c == ">") and i + 1 < self.n and s[i + 1] == "(":
            return ("W", self.read_word())
        if c.isdigit() or c == "{":
            m = _FD_PREFIX.match(s, i)
            if m:
                self.i = m.end()
                return self.lex_operator()
        if c in ";&|()<>":
            return self.lex_operator()
        word = self.read_word()
        if word is None:
            self.error("unexpected character")
        return ("W", word)

    def lex_operator(self):
        s, i = self.s, self.i
        for op in _OPERATORS:
            if s.startswith(op, i):
                self.i = i + len(op)
                return ("OP", op)
        self.error("expected an operator")

    def read_word(self) -> Word | None:
        s, n = self.s, self.n
        parts: list = []
        defaults: dict = {}  # index in parts -> the parts of a ${X:-default}'s default
        buf: list[str] = []

        def flush():
            if buf:
                parts.append((PLAIN, "".join(buf)))
                buf.clear()

        start = self.i
        while self.i < n:
            c = s[self.i]
            if c in _META:
                if c == "(" and self.i > start:
                    if buf and buf[-1] in "@?*+!":
                        buf.append(self.read_balanced_glob())
                        continue
                    if parts == [] and _ARRAY_PREFIX.match("".join(buf)):
                        flush()
                        self.read_array()
                        parts.append((DYNAMIC, "(...)"))
                        continue
                if (c == "<" or c == ">") and self.i == start and self.i + 1 < n and s[self.i + 1] == "(":
                    self.i += 2
                    self.parse_substitution(")")
                    parts.append((DYNAMIC, c + "(...)"))
                    continue
                break
            if c == "\\":
                if self.i + 1 >= n:
                    buf.append("\\")
                    self.i += 1
                elif s[self.i + 1] == "\n":
                    self.i += 2
                else:
                    flush()
                    parts.append((QUOTED, s[self.i + 1]))
                    self.i += 2
            elif c == "'":
                end = s.find("'", self.i + 1)
                if end < 0:
                    self.error("unterminated single quote")
                flush()
                parts.append((QUOTED, s[self.i + 1:end]))
                self.i = end + 1
            elif c == '"':
                flush()
                self.i += 1
                self.read_double_quoted(parts, defaults)
            elif c == "$":
                nxt = s[self.i + 1] if self.i + 1 < n else ""
                if nxt == "'":
                    flush()
                    self.i += 2
                    parts.append((QUOTED, self.read_ansi_c()))
                elif nxt == '"':
                    flush()
                    self.i += 2
                    self.read_double_quoted(parts, defaults)
                else:
                    part = self.read_dollar()
                    if part is None:
                        buf.append("$")
                    else:
                        flush()
                        self.add_expansion(parts, defaults, part)
            elif c == "`":
                flush()
                parts.append(self.read_backtick())
            else:
                buf.append(c)
                self.i += 1
        flush()
        if not parts:
            return None
        return Word(parts, _with_defaults(parts, defaults) if defaults else None)

    def add_expansion(self, parts: list, defaults: dict, part) -> None:
        """Append an expansion read by read_dollar, noting the default it may take."""
        if self.default is not None:
            defaults[len(parts)] = self.default
            self.default = None
        parts.append(part)

    def read_double_quoted(self, parts, defaults=None):
        defaults = {} if defaults is None else defaults
        s, n = self.s, self.n
        buf: list[str] = []
        while True:
            if self.i >= n:
                self.error("unterminated double quote")
            c = s[self.i]
            if c == '"':
                self.i += 1
                break
            if c == "\\" and self.i + 1 < n:
                nxt = s[self.i + 1]
                if nxt == "\n":
                    self.i += 2
                    continue
                if nxt in '$`"\\':
                    buf.append(nxt)
                    self.i += 2
                    continue
                buf.append("\\")
                self.i += 1
            elif c == "$":
                part = self.read_dollar(quoted=True)
                if part is None:
                    buf.append("$")
                else:
                    if buf:
                        parts.append((QUOTED, "".join(buf)))
                        buf.clear()
                    self.add_expansion(parts, defaults, part)
            elif c == "`":
                if buf:
                    parts.append((QUOTED, "".join(buf)))
                    buf.clear()
                parts.append(self.read_backtick())
            else:
                buf.append(c)
                self.i += 1
        parts.append((QUOTED, "".join(buf)))

    def read_ansi_c(self) -> str:
        s, n = self.s, self.n
        out: list[str] = []
        while True:
            if self.i >= n:
                self.error("unterminated $'...' quote")
            c = s[self.i]
            if c == "'":
                self.i += 1
                return "".join(out)
            if c != "\\" or self.i + 1 >= n:
                out.append(c)
                self.i += 1
                continue
            e = s[self.i + 1]
            self.i += 2
            if e in _ANSI_C:
                out.append(_ANSI_C[e])
            elif e in "01234567":
                digits = e
                while len(digits) < 3 and self.i < n and s[self.i] in "01234567":
                    digits += s[self.i]
                    self.i += 1
                out.append(chr(int(digits, 8) & 0xFF))
            elif e in "xuU":
                limit = {"x": 2, "u": 4, "U": 8}[e]
                digits = ""
                while len(digits) < limit and self.i < n and s[self.i] in "0123456789abcdefABCDEF":
                    digits += s[self.i]
                    self.i += 1
                out.append(chr(int(digits, 16)) if digits else "\\" + e)
            elif e == "c" and self.i < n:
                out.append(chr(ord(s[self.i]) & 0x1F))
                self.i += 1
            else:
                out.append("\\" + e)

    def read_dollar(self, quoted: bool = False):
        """At a `$`: the expansion as a DYNAMIC part, or None for a literal `$`. A `${X:-word}`
        leaves the parts of `word` in self.default (the caller notes them: add_expansion)."""
        self.default = None
        s, n = self.s, self.n
        i = self.i + 1
        nxt = s[i] if i < n else ""
        if nxt == "(":
            if s.startswith("((", i):
                self.i = i + 2
                self.scan_arithmetic()
                return (DYNAMIC, "$((...))")
            self.i = i + 1
            self.parse_substitution(")")
            return (DYNAMIC, "$(...)")
        if nxt == "{":
            self.i = i + 1
            parameter = _PARAMETER.match(s, self.i)
            operator = next((op for op in _DEFAULTING if parameter and s.startswith(op, parameter.end())), None)
            if operator is not None:
                self.i = parameter.end() + len(operator)
                self.default = self.read_default(quoted)
                return (DYNAMIC, "${...}")
            self.scan_braced_parameter()
            braced = s[i + 1:self.i - 1]
            # a plain ${NAME} keeps its name, as $NAME does (the guard resolves ${HOME})
            return (DYNAMIC, "$" + braced if braced and braced[0] in _NAME_START and all(c in _NAME_CHARS for c in braced)
                    else "${...}")
        if nxt == "[":
            end = s.find("]", i)
            if end < 0:
                self.error("unterminated $[")
            self.i = end + 1
            return (DYNAMIC, "$[...]")
        if nxt in _NAME_START:
            j = i + 1
            while j < n and s[j] in _NAME_CHARS:
                j += 1
            self.i = j
            return (DYNAMIC, s[i - 1:j])
        if nxt and nxt in _SPECIAL_PARAMS:
            self.i = i + 1
            return (DYNAMIC, "$" + nxt)
        self.i = i
        return None

    def read_default(self, quoted: bool) -> list:
        """After `${X:-` (or another defaulting operator): the default word's parts up to the
        closing `}`, with SPLIT where an unquoted blank would split it. Inside double quotes the
        default is quoted text (single quotes in it are characters, as bash has them)."""
        s, n = self.s, self.n
        parts: list = []
        buf: list[str] = []
        plain = QUOTED if quoted else PLAIN

        def flush():
            if buf:
                parts.append((plain, "".join(buf)))
                buf.clear()

        while True:
            if self.i >= n:
                self.error("unterminated ${")
            c = s[self.i]
            if c == "}":
                self.i += 1
                flush()
                return parts
            if c == "\\" and self.i + 1 < n:
                flush()
                if s[self.i + 1] != "\n":
                    parts.append((QUOTED, s[self.i + 1]))
                self.i += 2
            elif c == "'" and not quoted:
                end = s.find("'", self.i + 1)
                if end < 0:
                    self.error("unterminated single quote")
                flush()
                parts.append((QUOTED, s[self.i + 1:end]))
                self.i = end + 1
            elif c == '"':
                flush()
                self.i += 1
                inner: list = []
                inner_defaults: dict = {}
                self.read_double_quoted(inner, inner_defaults)
                parts.extend(_with_defaults(inner, inner_defaults))
            elif c == "$":
                part = self.read_dollar(quoted)
                if part is None:  # a literal `$`, already read past
                    buf.append("$")
                else:
                    flush()
                    nested, self.default = self.default, None
                    parts.extend(nested if nested is not None else [part])
            elif c == "`":
                flush()
                parts.append(self.read_backtick())
            elif c in " \t\n" and not quoted:
                flush()
                parts.append((SPLIT, " "))
                self.i += 1
            else:
                buf.append(c)
                self.i += 1

    def read_backtick(self):
        s, n = self.s, self.n
        self.i += 1
        out: list[str] = []
        while True:
            if self.i >= n:
                self.error("unterminated backquote")
            c = s[self.i]
            if c == "`":
                self.i += 1
                break
            if c == "\\" and self.i + 1 < n and s[self.i + 1] in "$`\\":
                out.append(s[self.i + 1])
                self.i += 2
                continue
            out.append(c)
            self.i += 1
        inner = parse("".join(out), self.depth + 1)
        for cmd in inner:
            cmd.nested = True
        self.commands.extend(inner)
        return (DYNAMIC, "`...`")

    def parse_substitution(self, closer: str):
        """After `$(`, `<(` or `>(`: parse the commands up to the matching `)`."""
        if self.depth + 1 > MAX_DEPTH:
            self.error("commands nested too deeply")
        saved_peek, self.peeked = self.peeked, None
        saved_heredocs, self.pending_heredocs = self.pending_heredocs, []
        self.depth += 1
        self.nesting += 1
        self.parse_list(stop_ops=(closer,))
        self.nesting -= 1
        tok = self.take()
        if tok != ("OP", closer):
            self.error("unterminated $( ... )")
        self.depth -= 1
        self.peeked = saved_peek
        self.pending_heredocs = saved_heredocs + self.pending_heredocs

    def scan_arithmetic(self):
        """After `$((` or `((`: skip to the matching `))`, parsing substitutions inside."""
        s, n = self.s, self.n
        depth = 0
        while True:
            if self.i >= n:
                self.error("unterminated arithmetic expression")
            c = s[self.i]
            if c == "(":
                depth += 1
                self.i += 1
            elif c == ")":
                if depth == 0:
                    if s.startswith("))", self.i):
                        self.i += 2
                        return
                    self.error("unbalanced ) in arithmetic expression")
                depth -= 1
                self.i += 1
            elif c == "$":
                if self.read_dollar() is None:
                    self.i += 1
            elif c == "`":
                self.read_backtick()
            elif c in "'\"":
                self.read_word()
            elif c == "\\":
                self.i += 2
            else:
                self.i += 1

    def scan_braced_parameter(self):
        """After `${`: skip to the matching `}`, parsing substitutions inside."""
        s, n = self.s, self.n
        while True:
            if self.i >= n:
                self.error("unterminated ${")
            c = s[self.i]
            if c == "}":
                self.i += 1
                return
            if c == "\\":
                self.i += 2
            elif c == "'":
                end = s.find("'", self.i + 1)
                if end < 0:
                    self.error("unterminated single quote")
                self.i = end + 1
            elif c == '"':
                self.i += 1
                self.read_double_quoted([])
            elif c == "$":
                if self.read_dollar() is None:
                    self.i += 1
            elif c == "`":
                self.read_backtick()
            else:
                self.i += 1

    def read_balanced_glob(self) -> str:
        s, n = self.s, self.n
        start, depth = self.i, 0
        while self.i < n:
            c = s[self.i]
            if c == "\\":
                self.i += 2
                continue
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    self.i += 1
                    return s[start:self.i]
            self.i += 1
        self.error("unterminated extended glob")

    def read_array(self):
        s = self.s
        self.i += 1
        while True:
            self.skip_blank()
            if self.i >= self.n:
                self.error("unterminated array assignment")
            c = s[self.i]
            if c == ")":
                self.i += 1
                return
            if c == "\n":
                self.i += 1
                continue
            if self.read_word() is None:
                self.error("unexpected character in array assignment")

    def scan_conditional(self):
        """After `[[`: skip words and operators up to `]]`."""
        s, n = self.s, self.n
        while True:
            self.skip_blank()
            if self.i >= n:
                self.error("unterminated [[")
            if s.startswith("]]", self.i) and (self.i + 2 >= n or s[self.i + 2] in _META):
                self.i += 2
                return
            c = s[self.i]
            if c in "()<>&|!\n":
                self.i += 1
            elif self.read_word() is None:
                self.i += 1

    def read_heredocs(self):
        pending, self.pending_heredocs = self.pending_heredocs, []
        s = self.s
        for cmd, delimiter, strip_tabs, quoted in pending:
            lines = []
            while self.i < self.n:
                end = s.find("\n", self.i)
                line = s[self.i:] if end < 0 else s[self.i:end]
                self.i = self.n if end < 0 else end + 1
                check = line.lstrip("\t") if strip_tabs else line
                if check == delimiter:
                    break
                lines.append(check)
            body = "".join(line + "\n" for line in lines)
            if not quoted and ("$" in body or "`" in body):
                self.scan_heredoc_expansions(body)
            if cmd is not None:
                cmd.stdin = body

    def scan_heredoc_expansions(self, body: str):
        sub = _Parser(body, self.depth + 1, self.commands)
        sub.nesting = 1
        while sub.i < sub.n:
            c = body[sub.i]
            if c == "\\":
                sub.i += 2
            elif c == "$":
                if sub.read_dollar() is None:
                    sub.i += 1
            elif c == "`":
                sub.read_backtick()
            else:
                sub.i += 1

    # ---------------------------------------------------------------- grammar
    def parse_program(self):
        self.parse_list(stop_ops=())
        tok = self.take()
        if tok[0] != "EOF":
            self.error(f"unexpected {tok[1] if tok[0] == 'OP' else tok[1].display()!r}")

    def skip_newlines(self):
        while self.peek()[0] == "NL":
            self.take()

    def parse_list(self, stop_ops=(), stop_words=frozenset()):
        while True:
            self.skip_newlines()
            kind, value = self.peek()
            if kind == "EOF":
                return
            if kind == "OP" and value in stop_ops:
                return
            if kind == "W" and value.reserved in _CLOSERS:
                if value.reserved in stop_words:
                    return
                self.error(f"unexpected {value.reserved!r}")
            self.parse_and_or()
            kind, value = self.peek()
            if kind == "OP" and value in (";", "&"):
                self.take()
            elif kind != "NL":
                return

    def parse_and_or(self):
        self.parse_pipeline()
        while self.peek() in (("OP", "&&"), ("OP", "||")):
            self.take()
            self.skip_newlines()
            self.parse_pipeline()

    def parse_pipeline(self):
        tok = self.peek()
        while tok[0] == "W" and tok[1].reserved in ("time", "!"):
            self.take()
            if tok[1].reserved == "time" and self.peek()[0] == "W" and self.peek()[1].static == "-p":
                self.take()
            tok = self.peek()
            if tok[0] == "EOF" or (tok[0] == "OP" and tok[1] in (";", "&", ")", "&&", "||")) or tok[0] == "NL":
                return
        previous = self.parse_command()
        while self.peek() in (("OP", "|"), ("OP", "|&")):
            self.take()
            self.skip_newlines()
            current = self.parse_command()
            if isinstance(previous, SimpleCommand) and isinstance(current, SimpleCommand):
                current.pipe_from = previous
            previous = current

    def expect_word(self, word: str):
        kind, value = self.take()
        if kind != "W" or value.reserved != word:
            shown = "end of input" if kind == "EOF" else (value if kind == "OP" else value.display())
            self.error(f"expected {word!r}, found {shown!r}")

    def expect_op(self, op: str):
        kind, value = self.take()
        if (kind, value) != ("OP", op):
            self.error(f"expected {op!r}")

    def parse_command(self):
        kind, value = self.peek()
        if (kind == "W" and value.reserved not in _RESERVED) or (kind == "OP" and value in REDIRECTIONS):
            return self.parse_simple()
        self.nesting += 1
        try:
            return self.parse_compound(kind, value)
        finally:
            self.nesting -= 1

    def parse_compound(self, kind, value):
        if kind == "OP":
            if value == "(":
                self.take()
                self.parse_list(stop_ops=(")",))
                self.expect_op(")")
                self.parse_redirections(None)
                return None
            if value == "((":
                self.take()
                start = self.i
                try:
                    self.scan_arithmetic()
                except ShellSyntaxError:
                    # bash reads `((cd x); ls)` as nested subshells when it is not arithmetic
                    self.i = start - 1
                    self.parse_list(stop_ops=(")",))
                    self.expect_op(")")
                self.parse_redirections(None)
                return None
            if value in REDIRECTIONS:
                return self.parse_simple()
            self.error(f"unexpected {value!r}")
        if kind != "W":
            self.error("expected a command")
        reserved = value.reserved
        if reserved in _RESERVED:
            if reserved == "if":
                self.take()
                self.parse_list(stop_words={"then"})
                self.expect_word("then")
                self.parse_list(stop_words={"elif", "else", "fi"})
                while self.peek()[0] == "W" and self.peek()[1].reserved == "elif":
                    self.take()
                    self.parse_list(stop_words={"then"})
                    self.expect_word("then")
                    self.parse_list(stop_words={"elif", "else", "fi"})
                if self.peek()[0] == "W" and self.peek()[1].reserved == "else":
                    self.take()
                    self.parse_list(stop_words={"fi"})
                self.expect_word("fi")
            elif reserved in ("while", "until"):
                self.take()
                self.parse_list(stop_words={"do"})
                self.parse_do_group()
            elif reserved in ("for", "select"):
                self.parse_for()
            elif reserved == "case":
                self.parse_case()
            elif reserved == "{":
                self.take()
                self.parse_list(stop_words={"}"})
                self.expect_word("}")
            elif reserved == "function":
                self.take()
                if self.take()[0] != "W":
                    self.error("expected a function name")
                if self.peek() == ("OP", "("):
                    self.take()
                    self.expect_op(")")
                self.skip_newlines()
                self.parse_command()
            elif reserved == "[[":
                self.take()
                self.scan_conditional()
            elif reserved == "coproc":
                self.take()
                return self.parse_command()
            elif reserved in ("time", "!"):
                self.parse_pipeline()
            else:
                self.error(f"unexpected {reserved!r}")
            self.parse_redirections(None)
            return None
        return self.parse_simple()

    def parse_do_group(self):
        self.skip_newlines()
        kind, value = self.peek()
        if kind == "W" and value.reserved == "{":
            self.take()
            self.parse_list(stop_words={"}"})
            self.expect_word("}")
            return
        self.expect_word("do")
        self.parse_list(stop_words={"done"})
        self.expect_word("done")

    def parse_for(self):
        self.take()
        if self.peek() == ("OP", "(("):
            self.take()
            self.peeked = None
            self.scan_arithmetic()
        else:
            if self.take()[0] != "W":
                self.error("expected a loop variable")
            self.skip_newlines()
            kind, value = self.peek()
            if kind == "W" and value.reserved == "in":
                self.take()
                while self.peek()[0] == "W":
                    self.take()
        if self.peek() == ("OP", ";"):
            self.take()
        self.parse_do_group()

    def parse_case(self):
        self.take()
        if self.take()[0] != "W":
            self.error("expected a word after 'case'")
        self.skip_newlines()
        self.expect_word("in")
        while True:
            self.skip_newlines()
            kind, value = self.peek()
            if kind == "W" and value.reserved == "esac":
                self.take()
                return
            if (kind, value) == ("OP", "("):
                self.take()
            while True:
                if self.take()[0] != "W":
                    self.error("expected a case pattern")
                if self.peek() == ("OP", "|"):
                    self.take()
                    continue
                break
            self.expect_op(")")
            self.parse_list(stop_ops=(";;", ";&", ";;&"), stop_words={"esac"})
            kind, value = self.peek()
            if kind == "OP" and value in (";;", ";&", ";;&"):
                self.take()
            elif not (kind == "W" and value.reserved == "esac"):
                self.error("expected ';;' or 'esac'")

    def parse_redirections(self, cmd):
        while self.peek()[0] == "OP" and self.peek()[1] in REDIRECTIONS:
            self.parse_redirection(cmd)

    def parse_redirection(self, cmd):
        _, op = self.take()
        kind, target = self.take()
        if kind != "W":
            self.error(f"expected a word after {op!r}")
        if cmd is not None:
            cmd.redirected = True
        if op in OUTPUT_REDIRECTIONS or op in ("<", "<>"):
            if not (op in ("<&", ">&") and target.static is not None and (target.static.isdigit() or target.static == "-")):
                holder = cmd
                if holder is None:
                    holder = SimpleCommand(self.nesting > 0)
                    self.commands.append(holder)
                if op in OUTPUT_REDIRECTIONS:
                    holder.outputs.append(target)
                if op in ("<", "<>"):
                    holder.inputs.append(target)
        if op in ("<<", "<<-"):
            quoted = any(k != PLAIN for k, _ in target.parts)
            delimiter = "".join(text for _, text in target.parts)
            self.pending_heredocs.append((cmd, delimiter, op == "<<-", quoted))
        elif op == "<<<" and cmd is not None:
            cmd.stdin = target.as_source() + "\n"

    def parse_simple(self):
        cmd = SimpleCommand(self.nesting > 0)
        while True:
            kind, value = self.peek()
            if kind == "W":
                self.take()
                if not cmd.words and value.is_assignment():
                    cmd.assignments.append(value)
                    continue
                cmd.words.append(value)
                if len(cmd.words) == 1 and not cmd.assignments and self.peek() == ("OP", "("):
                    self.take()
                    self.expect_op(")")
                    self.skip_newlines()
                    self.parse_command()
                    return None
            elif kind == "OP" and value in REDIRECTIONS:
                self.parse_redirection(cmd)
            else:
                break
        if not cmd.words and not cmd.assignments and not cmd.redirected:
            kind, value = self.peek()
            shown = "end of input" if kind == "EOF" else ("newline" if kind == "NL" else value)
            self.error(f"unexpected {shown!r}")
        self.commands.append(cmd)
        return cmd


def _with_defaults(parts: list, defaults: dict) -> list:
    out = []
    for index, part in enumerate(parts):
        out.extend(defaults.get(index, (part,)))
    return out


class TooComplex(Exception):
    """Checking the command would take more work than the budget allows (the caller refuses it)."""


def brace_expand(word: Word, limit: int) -> list[str]:
    """Bash brace expansion of a static word (`{+,}main` -> `+main`, `main`). Words are made one
    at a time and counted, so a word that would expand past `limit` characters raises TooComplex
    after about `limit` characters of work, never the exponential whole (`{a,b}{a,b}...`)."""
    chars = [(c, kind != PLAIN) for kind, text in word.parts for c in text]
    out, size = [], 0
    for expanded in _expand_chars(chars):
        size += len(expanded) + 1
        if size > limit:
            raise TooComplex(f"brace expansion of {word.display()[:60]!r} makes more than {limit} characters")
        out.append(expanded)
    return out or [""]


def _expand_chars(chars):
    depth, start = 0, -1
    for idx, (c, quoted) in enumerate(chars):
        if quoted:
            continue
        if c == "{":
            if depth == 0:
                start = idx
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                alternatives = _brace_alternatives(chars[start + 1:idx])
                if alternatives is None:
                    continue
                prefix, suffix = chars[:start], chars[idx + 1:]
                for alt in alternatives:
                    yield from _expand_chars(prefix + alt + suffix)
                return
    yield "".join(c for c, _ in chars)


_SEQUENCE = re.compile(r"(-?\d+|[A-Za-z])\.\.(-?\d+|[A-Za-z])(?:\.\.(-?\d+))?")


def _brace_alternatives(inner):
    """The alternatives of one {...} group (an iterator: a sequence is made as it is read), or
    None when bash leaves the group as it is."""
    pieces, current, depth = [], [], 0
    for c, quoted in inner:
        if not quoted and c == "{":
            depth += 1
        elif not quoted and c == "}":
            depth -= 1
        if not quoted and c == "," and depth == 0:
            pieces.append(current)
            current = []
        else:
            current.append((c, quoted))
    pieces.append(current)
    if len(pieces) > 1:
        return pieces
    m = _SEQUENCE.fullmatch("".join(c for c, _ in inner))
    if not m:
        return None
    a, b, step = m.group(1), m.group(2), abs(int(m.group(3) or 1)) or 1
    if a.lstrip("-").isdigit() and b.lstrip("-").isdigit():
        lo, hi = int(a), int(b)
        width = max(len(a), len(b)) if (a.lstrip("-").startswith("0") and len(a.lstrip("-")) > 1) or (
            b.lstrip("-").startswith("0") and len(b.lstrip("-")) > 1) else 0
        values = (str(v).zfill(width) if v >= 0 else "-" + str(-v).zfill(width - 1)
                  for v in (range(lo, hi + 1, step) if lo <= hi else range(lo, hi - 1, -step)))
    elif not a.lstrip("-").isdigit() and not b.lstrip("-").isdigit():
        lo, hi = ord(a), ord(b)
        values = (chr(v) for v in (range(lo, hi + 1, step) if lo <= hi else range(lo, hi - 1, -step)))
    else:
        return None
    return ([(ch, True) for ch in v] for v in values)
