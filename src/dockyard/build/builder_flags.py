"""An instruction's leading `--flags`, split exactly as Docker's classic builder splits them.

The image check of a shared server (`build/dockerfile.py`) must see the same flags the engine
will act on: a flag it reads differently is a flag it does not check. This is a port of
`extractBuilderFlags` (moby/buildkit `frontend/dockerfile/parser`, vendored by Docker 20.10),
which differs from the shell-like word splitting used everywhere else in a Dockerfile:

- a backslash always escapes the next character, whatever the `# escape=` directive says;
- quotes (`'` or `"`) are removed wherever they are, also inside a flag's *name*
  (`--"from"=x` is `--from=x`), and a backslash escapes inside them too (`--fr\\om=x`);
- words end at any character for which Go's `unicode.IsSpace(rune(b))` is true, where `b` is
  one *byte* of the line: 0x09-0x0D, 0x20, 0x85 and 0xA0. So the second byte of a UTF-8 `à`
  (C3 A0) ends a word for the engine. Callers refuse non-ASCII and control characters in the
  instructions that carry flags first, so the characters seen here are the engine's bytes.

The flags are the words at the start of the arguments that begin with `--`; the first other
word (or a lone `--`) ends them, and the rest of the line is returned untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

GO_BYTE_SPACES = frozenset("\t\n\v\f\r \x85\xa0")  # unicode.IsSpace(rune(b)) for one byte b


@dataclass(frozen=True, slots=True)
class FlagWord:
    """One flag as the engine reads it (`word`), and as it is written (`raw`)."""

    word: str  # quotes removed, escapes applied: what the engine's flag parser gets
    raw: str  # the characters of the line it came from

    @property
    def name(self) -> str:
        """The flag's name as the engine looks it up (`--name=value`, `--name`)."""
        return self.word[2:].partition("=")[0]

    @property
    def value(self) -> str | None:
        """Its value; None when the word has no `=`."""
        _, sep, value = self.word[2:].partition("=")
        return value if sep else None

    @property
    def plain_name(self) -> bool:
        """Whether the name is written as the engine reads it (no quote, no escape in it)."""
        head = f"--{self.name}"
        return self.raw == head or self.raw.startswith(head + "=")


def extract_builder_flags(line: str) -> tuple[list[FlagWord], str]:
    """The leading flags of an instruction's arguments `line`, and the rest of the line."""
    words: list[FlagWord] = []
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    word: list[str] = []
    start = 0
    quote = ""
    blank_ok = False
    pos = 0
    while pos <= len(line):
        ch = line[pos] if pos < len(line) else ""
        if phase == in_spaces:
            if pos == len(line):
                break
            if ch in GO_BYTE_SPACES:
                pos += 1
                continue
            if ch != "-" or pos + 1 == len(line) or line[pos + 1] != "-":
                return words, line[pos:]
            phase, start = in_word, pos
        if pos == len(line):  # in a word or a quote at the end of the line
            text = "".join(word)
            if text != "--" and (blank_ok or text):
                words.append(FlagWord(text, line[start:pos]))
            break
        if phase == in_word:
            if ch in GO_BYTE_SPACES:
                phase = in_spaces
                text = "".join(word)
                if text == "--":
                    return words, line[pos:]
                if blank_ok or text:
                    words.append(FlagWord(text, line[start:pos]))
                word, blank_ok = [], False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote, blank_ok, phase = ch, True, in_quote
                pos += 1
                continue
            if ch == "\\":
                if pos + 1 == len(line):
                    pos += 1
                    continue  # a backslash at the very end is dropped
                pos += 1
                ch = line[pos]
            word.append(ch)
            pos += 1
            continue
        # in a quote
        if ch == quote:
            phase = in_word
            pos += 1
            continue
        if ch == "\\":
            if pos + 1 == len(line):
                phase = in_word
                pos += 1
                continue
            pos += 1
            ch = line[pos]
        word.append(ch)
        pos += 1
    return words, ""
