"""The shell parser on its own (guard/shellparse.py): every simple command bash could run, each word
with what is known of it before it runs, and a refusal of what bash itself would refuse."""

import pytest

from guard.shellparse import ShellSyntaxError, Word, brace_expand, parse


def commands(text):
    """(assignments, words) of each simple command, unknown parts shown as $…"""
    return [([w.display() for w in c.assignments], [w.display() for w in c.words]) for c in parse(text)]


def test_assignments_quotes_and_words():
    assert commands('a=1 b=$x git -C "my dir" push') == [(["a=1", "b=$…"], ["git", "-C", "my dir", "push"])]
    assert commands("g'i't  \"pu\"sh\t-f") == [([], ["git", "push", "-f"])]


@pytest.mark.parametrize("text", ["a; b", "a && b", "a || b", "a | b", "a |& b", "a & b", "a\nb", "(a); b",
                                  "{ a; }; b", "if a; then b; fi", "while a; do b; done", "! a; b"])
def test_every_list_and_compound_yields_its_simple_commands(text):
    assert sorted(words[0] for _, words in commands(text)) == ["a", "b"]


def test_substitutions_and_functions_are_commands_of_their_own():
    found = commands("echo $(git push -f) `gh auth token` <(npm publish); f() { cargo publish; }")
    assert {words[0] for _, words in found} == {"echo", "git", "gh", "npm", "cargo"}
    nested = {c.words[0].static: c.nested for c in parse("echo $(git push -f)")}
    assert nested == {"git": True, "echo": False}


def test_a_substituted_word_is_unknown_but_keeps_its_known_parts():
    word = parse('echo "+$(git branch --show-current)"')[-1].words[1]
    assert word.static is None and word.display() == "+$…"
    assert word.sample("main") == "+main" and word.has_unquoted("+") is False


def test_heredocs_quoted_are_text_and_unquoted_run_their_substitutions():
    quoted = parse("cat <<'EOF'\n$(rm -rf /)\nEOF")
    assert [c.words[0].static for c in quoted] == ["cat"] and quoted[0].stdin == "$(rm -rf /)\n"
    unquoted = parse("cat <<EOF\n$(gh secret list)\nEOF")
    assert [c.words[0].static for c in unquoted] == ["gh", "cat"]
    assert parse("bash <<< 'npm publish'")[0].stdin == "npm publish\n"


def test_a_pipe_remembers_what_feeds_it():
    reader = parse("echo npm publish | sh")[-1]
    assert [w.static for w in reader.words] == ["sh"] and [w.static for w in reader.pipe_from.words] == ["echo", "npm", "publish"]


def test_ansi_c_quotes_are_decoded():
    assert commands(r"$'\x67h' $'secret\tx'") == [([], ["gh", "secret\tx"])]


@pytest.mark.parametrize("text,expanded", [
    ("{+,}main", ["+main", "main"]), ("a{1..3}", ["a1", "a2", "a3"]), ("x{a,b}{c,d}", ["xac", "xad", "xbc", "xbd"]),
    ("'{a,b}'", ["{a,b}"]), ("plain", ["plain"]),
])
def test_brace_expansion(text, expanded):
    assert brace_expand(parse(f"echo {text}")[0].words[1], 10_000) == expanded


def test_literal_words_and_assignments():
    assert Word.literal("$x").static == "$x" and not Word.literal("a=b").is_assignment()
    assert parse("a=b c")[0].assignments[0].is_assignment()
    assert Word.literal("it's").as_source() == "it's"


@pytest.mark.parametrize("text", [
    "echo 'unterminated", 'echo "unterminated', "echo $(ls", "echo `ls", "(ls", "ls )", "if true; then ls",
    "for x in a; do ls", "case x in a) ls", "ls &&", "| ls", "fi", "echo ${x", "cat <(ls",
])
def test_what_bash_refuses_raises(text):
    with pytest.raises(ShellSyntaxError):
        parse(text)


def test_nesting_has_a_limit():
    with pytest.raises(ShellSyntaxError, match="nested too deeply"):
        parse("echo " + "$(" * 40 + "x" + ")" * 40)
