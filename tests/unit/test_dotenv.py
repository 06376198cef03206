"""`parse_dotenv`: Compose's dotenv dialect, table-driven, with the line numbers of its errors."""

from __future__ import annotations

import pytest

from dockyard.compose.dotenv import DotenvError, parse_dotenv, parse_raw_env

LOOKUP: dict[str, str] = {"HOME": "/home/me", "EMPTY": "", "USER": "me"}


def parse(text: str, lookup: dict[str, str] | None = None) -> dict[str, str]:
    return parse_dotenv(text, (LOOKUP if lookup is None else lookup).get)


FORMS: list[tuple[str, str, dict[str, str]]] = [
    # (id, text, result)
    ("plain", "A=1", {"A": "1"}),
    ("several", "A=1\nB=2\n", {"A": "1", "B": "2"}),
    ("export", "export A=1", {"A": "1"}),
    ("export-tab", "export\tA=1", {"A": "1"}),
    ("export-spaces", "export   A=1", {"A": "1"}),
    ("colon", "A: 1", {"A": "1"}),
    ("colon-no-space", "A:1", {"A": "1"}),
    ("spaces-around", "  A =  1  ", {"A": "1"}),
    ("empty-value", "A=", {"A": ""}),
    ("empty-single", "A=''", {"A": ""}),
    ("empty-double", 'A=""', {"A": ""}),
    ("equals-in-value", "A=a=b", {"A": "a=b"}),
    ("dots-and-dashes-in-key", "my.key-1=v", {"my.key-1": "v"}),
    ("underscore-key", "_A_1=v", {"_A_1": "v"}),
    ("later-wins", "A=1\nA=2", {"A": "2"}),
    # comments
    ("comment-line", "# a comment\nA=1", {"A": "1"}),
    ("indented-comment", "   # a comment\nA=1", {"A": "1"}),
    ("blank-lines", "\n\nA=1\n\n\nB=2\n\n", {"A": "1", "B": "2"}),
    ("inline-comment", "A=1 # one", {"A": "1"}),
    ("hash-without-space", "A=1#one", {"A": "1#one"}),
    ("hash-url", "A=http://x/#frag", {"A": "http://x/#frag"}),
    ("inline-comment-then-line", "A=1 #c\nB=2", {"A": "1", "B": "2"}),
    ("single-quoted-comment", "A='x # y' # c", {"A": "x # y"}),
    ("double-quoted-comment", 'A="x # y" # c', {"A": "x # y"}),
    # quotes
    ("single-spaces", "A='x y'", {"A": "x y"}),
    ("double-spaces", 'A="x y"', {"A": "x y"}),
    ("single-is-literal", "A='$HOME ${USER} \\n'", {"A": "$HOME ${USER} \\n"}),
    ("single-dollars-kept", "A='$$'", {"A": "$$"}),
    ("double-interpolates", 'A="$HOME-${USER}"', {"A": "/home/me-me"}),
    ("double-escapes", 'A="a\\nb\\tc\\rd"', {"A": "a\nb\tc\rd"}),
    ("double-escaped-quote", 'A="say \\"hi\\""', {"A": 'say "hi"'}),
    ("double-escaped-backslash", 'A="a\\\\b"', {"A": "a\\b"}),
    ("double-escaped-dollar", 'A="\\$HOME"', {"A": "$HOME"}),
    ("double-unknown-escape", 'A="\\q"', {"A": "\\q"}),
    ("double-dollar-dollar", 'A="$$"', {"A": "$"}),
    ("single-in-double", "A=\"it's\"", {"A": "it's"}),
    ("double-in-single", "A='say \"hi\"'", {"A": 'say "hi"'}),
    ("quotes-inside-unquoted", "A=a'b\"c", {"A": "a'b\"c"}),
    # multi-line quoted values
    ("double-multiline", 'A="line1\nline2"\nB=2', {"A": "line1\nline2", "B": "2"}),
    ("single-multiline", "A='l1\nl2\nl3'\nB=x", {"A": "l1\nl2\nl3", "B": "x"}),
    ("multiline-keeps-comment-chars", "A='x\n# not a comment'\n", {"A": "x\n# not a comment"}),
    ("multiline-with-equals", 'A="k=v\nB=2"', {"A": "k=v\nB=2"}),
    # interpolation of earlier keys, then the lookup
    ("earlier-keys", "A=1\nB=${A}2\nC=$A$B", {"A": "1", "B": "12", "C": "112"}),
    ("lookup", "A=$HOME/x", {"A": "/home/me/x"}),
    ("file-beats-lookup", "HOME=/over\nA=$HOME", {"HOME": "/over", "A": "/over"}),
    ("later-keys-not-seen", "A=$HOME\nHOME=/over", {"A": "/home/me", "HOME": "/over"}),
    ("unset-is-empty", "A=${NOPE}", {"A": ""}),
    ("default", "A=${NOPE:-d}", {"A": "d"}),
    ("default-of-empty", "A=${EMPTY:-d}\nB=${EMPTY-d}", {"A": "d", "B": ""}),
    ("alternative", "A=${HOME:+set}", {"A": "set"}),
    ("self-reference", "A=1\nA=${A}2", {"A": "12"}),
    ("unquoted-dollar-dollar", "A=$$", {"A": "$"}),
    ("unquoted-escapes-are-literal", "A=a\\nb", {"A": "a\\nb"}),
    ("backslash-newline-in-double", 'A="a\\\nb"', {"A": "a\\\nb"}),
    ("junk-after-quote-ignored", "A='x'junk", {"A": "x"}),
    ("space-before-quote", "A= 'x y'", {"A": "x y"}),
    # bare keys take their value from the lookup, or are skipped
    ("bare-from-lookup", "HOME", {"HOME": "/home/me"}),
    ("bare-empty-in-lookup", "EMPTY", {"EMPTY": ""}),
    ("bare-unknown-skipped", "NOPE\nA=1", {"A": "1"}),
    ("bare-with-comment", "USER # who", {"USER": "me"}),
    ("bare-export", "export USER", {"USER": "me"}),
    # encodings and line endings
    ("bom", "\ufeffA=1", {"A": "1"}),
    ("crlf", "A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
    ("no-final-newline", "A=1\nB=2", {"A": "1", "B": "2"}),
    ("empty-file", "", {}),
    ("only-comments", "# x\n# y\n", {}),
]


@pytest.mark.parametrize(("text", "expected"), [f[1:] for f in FORMS], ids=[f[0] for f in FORMS])
def test_forms(text: str, expected: dict[str, str]) -> None:
    assert parse(text) == expected


def test_keys_keep_file_order() -> None:
    assert list(parse("B=1\nA=2\nC=3")) == ["B", "A", "C"]


def test_lookup_is_only_called_for_what_is_needed() -> None:
    asked: list[str] = []

    def lookup(name: str) -> str | None:
        asked.append(name)
        return None

    assert parse_dotenv("A=1\nB=$A\nC=$X\nD", lookup) == {"A": "1", "B": "1", "C": ""}
    assert "A" not in asked
    assert "X" in asked and "D" in asked


ERRORS: list[tuple[str, str, int, str]] = [
    # (id, text, line, text the message must contain)
    ("key-starts-with-digit", "A=1\n9B=2", 2, "9B"),
    ("no-key", "A=1\n=2", 2, "=2"),
    ("no-separator", "A=1\n\nB 2", 3, "B"),
    ("bad-char-in-key", "A=1\nB$=2", 2, "B"),
    ("unterminated-double", 'A=1\nB="x\ny\n', 2, "B"),
    ("unterminated-single", "A=1\nB='x", 2, "B"),
    ("bad-interpolation", "A=1\nB=${", 2, "${"),
    ("bad-interpolation-double", 'A="x"\nB="${A:x}"', 2, "${A:x}"),
    ("required-variable", "A=1\n# c\nB=${NOPE:?please set NOPE}", 3, "please set NOPE"),
    ("after-multiline-double", 'A="a\nb\nc"\nB=${', 4, "${"),
    ("after-multiline-single", "A='a\nb'\n\nB 2", 4, "B"),
    ("after-comments", "# 1\n# 2\n\nA B", 4, "A"),
]


@pytest.mark.parametrize(("text", "line", "shown"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_errors_have_line_numbers(text: str, line: int, shown: str) -> None:
    with pytest.raises(DotenvError) as info:
        parse(text)
    assert info.value.line == line
    assert shown in info.value.message
    assert str(info.value) == info.value.message


def test_error_line_after_backslash_newline_in_double_quotes() -> None:
    with pytest.raises(DotenvError) as info:
        parse('A="a\\\nb"\nB=${')
    assert info.value.line == 3


def test_only_a_space_starts_an_inline_comment() -> None:
    assert parse("A=1\t# one") == {"A": "1\t# one"}


def test_single_quoted_value_is_not_interpolated_even_when_malformed() -> None:
    assert parse("A='${'") == {"A": "${"}


def test_a_raw_env_file_keeps_each_value_as_written() -> None:
    text = "# c\nA=$NOT ${X}\nB=\"q\"\nC='s' # t\n\nE\nF= spaced \n  G=a=b\nI=\nU\n"
    env = {"E": "from-env"}
    assert parse_raw_env(text, env.get) == {
        "A": "$NOT ${X}", "B": '"q"', "C": "'s' # t", "E": "from-env", "F": " spaced ",
        "G": "a=b", "I": ""}
    with pytest.raises(DotenvError) as caught:
        parse_raw_env("OK=1\nF = x\n", env.get)
    assert caught.value.line == 2
