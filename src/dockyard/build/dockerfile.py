"""The images a Dockerfile reads, found without building it (the server side).

On a shared server a tenant's Dockerfile is tenant data: `FROM`, `COPY --from=` and
`RUN --mount=...,from=` can name any image on the engine, another tenant's included. The server
reads the Dockerfile out of the uploaded context (never from a path on its own disk), lists each
image reference with the line it is on, and checks them before the build is queued.

What is parsed, as Docker's parser does: parser directives (`# escape=`), line continuations,
comments inside continued instructions, case-insensitive instructions, `FROM [--platform=..]
IMAGE [AS NAME]`, `COPY --from=`, `RUN --mount=...from=...` and the same inside `ONBUILD`.
Variables are substituted the way the builder would: in `FROM`, the ARGs declared before the
first `FROM` (their defaults, overridden by build args); in a stage, the ARGs that stage
declares. A reference that cannot be resolved (an unknown expansion form, a variable with no
value) is an error: it could name anything, so it is refused rather than guessed.

Stage names and indexes of *finished* stages are not images and are not reported (the classic
builder knows a stage only once the next FROM begins: within `FROM x AS b9c4`, `--from=b9c4` is
an image id prefix); `scratch` is no image either. An `ONBUILD COPY --from=` value is always
reported as an image: it is resolved in a later build, where this file's stages do not exist.

Fail-closed where the engine reads a line differently from a shell-like parse (the check runs
on shared servers only): flags are split exactly as the engine splits them
(`builder_flags.extract_builder_flags`), and the Dockerfile is refused when a flag's name is
unknown or written with a quote or backslash, a `--from` value is not a plain reference, stage
name or index, a FROM/COPY/ADD/RUN/ONBUILD line holds anything but printable ASCII and tabs, or
an ADD source is a URL (the engine fetches it from the host's own network) or a variable.
"""

from __future__ import annotations

import io
import posixpath
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

from dockyard.build.builder_flags import FlagWord, extract_builder_flags
from dockyard.errors import DockyardError

MAX_DOCKERFILE_BYTES = 1024 * 1024  # real Dockerfiles are a few kilobytes
MAX_LINK_HOPS = 16


class DockerfileError(DockyardError):
    """The Dockerfile cannot be read or one of its image references cannot be resolved."""

    def __init__(self, message: str, line: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.line = line


@dataclass(frozen=True, slots=True)
class ImageUse:
    """One image the build would read: where (1-based line, instruction) and which."""

    line: int
    instruction: str  # FROM, COPY --from, RUN --mount, ONBUILD COPY --from ...
    reference: str  # after variable substitution


# -- reading the Dockerfile out of the uploaded context ---------------------------------------
def read_dockerfile(context: bytes | IO[bytes], path: str = "Dockerfile",
                    max_bytes: int = MAX_DOCKERFILE_BYTES) -> str:
    """The text of `path` inside the context tar (plain or compressed; its bytes or a file
    open for reading), links followed inside the archive only. Docker's fallback from
    `Dockerfile` to `dockerfile` is kept."""
    source = io.BytesIO(context) if isinstance(context, bytes) else context
    try:
        with tarfile.open(fileobj=source, mode="r:*") as tar:
            members: dict[str, tarfile.TarInfo] = {}
            for entry in tar.getmembers():
                name = _clean(entry.name)
                if name in members:  # extraction order would decide which one the build sees
                    raise DockerfileError(f"the build context holds {name!r} more than once",
                                          hint="send each path once (`dockyard compose up` "
                                          "does)")
                members[name] = entry
            relative = posixpath.normpath(path)
            if relative == ".." or relative.startswith("../"):
                raise DockerfileError(f"the Dockerfile {path!r} is outside the build context")
            wanted = _clean(path)  # an absolute path is inside the context, as for Docker
            member = _resolve(members, wanted)
            if member is None and path == "Dockerfile":
                member = _resolve(members, "dockerfile")
            if member is None or not member.isfile():
                raise DockerfileError(f"the build context has no Dockerfile {path!r}",
                                      hint="set `build.dockerfile` to a file inside the "
                                      "build context")
            if member.size > max_bytes:
                raise DockerfileError(f"the Dockerfile {path!r} is {member.size} bytes, more "
                                      f"than the {max_bytes} a Dockerfile may have here")
            handle = tar.extractfile(member)
            data = handle.read(max_bytes + 1) if handle is not None else b""
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DockerfileError(f"the build context cannot be read: {exc}") from None
    return data.decode("utf-8", errors="replace")


def _clean(name: str) -> str:
    cleaned = posixpath.normpath("/" + name.lstrip("/")).lstrip("/")
    return cleaned or "."


def _resolve(members: Mapping[str, tarfile.TarInfo], path: str) -> tarfile.TarInfo | None:
    """The member at `path`, following symbolic and hard links component by component, scoped
    to the archive's root (a link to `/x` or `../../x` means `x`), as Docker does."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    current = ""
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = posixpath.dirname(current)
            continue
        candidate = f"{current}/{part}" if current else part
        member = members.get(candidate)
        if member is not None and (member.issym() or member.islnk()):
            hops += 1
            if hops > MAX_LINK_HOPS:
                return None
            target = member.linkname
            if member.issym() and not target.startswith("/"):
                target = f"{current}/{target}" if current else target
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            current = ""
            continue
        current = candidate
    return members.get(current) if current else None


# -- the parse ------------------------------------------------------------------------------
# As Docker's, whose `\s` is ASCII: `# escape\u00a0=x` is a comment to the engine, not a directive.
_DIRECTIVE = re.compile(r"#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)"
                        r"[\t\n\f\r ]*", re.ASCII)
# Go's unicode.IsSpace, which the engine trims lines with (Python's strip() also trims \x1c-\x1f).
_GO_SPACES = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008" \
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_DIRECTIVES = ("escape", "syntax")  # the ones the builder knows; any other ends them
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BLANKS = " \t\v\f\r"  # what Docker's parser splits words at (ASCII only)
_COMMAND = re.compile(r"[ \t\v\f\r]+")


def _split_command(logical: str) -> tuple[str, str]:
    """The instruction's keyword (upper case) and its arguments, split as Docker splits them:
    at the first run of ASCII blanks (`FROM\tx` is a FROM)."""
    parts = _COMMAND.split(logical.strip(_BLANKS), maxsplit=1)
    return parts[0].upper(), (parts[1] if len(parts) > 1 else "").strip(_BLANKS)


def _instructions(text: str) -> tuple[str, list[tuple[int, str]]]:
    """The escape character, and (first line, logical line) of every instruction: directives
    read as Docker reads them, continuations joined, comments and blank lines dropped."""
    # As Go's line scanner: lines end at "\n" only, one "\r" before it is dropped.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    escape = "\\"
    start = 0
    seen: set[str] = set()
    for start, raw in enumerate(lines):  # noqa: B007 - `start` is used after the loop
        found = _DIRECTIVE.fullmatch(raw.lstrip(_GO_SPACES))  # the engine trims first
        if not found or found.group(1).lower() not in _DIRECTIVES:
            break  # an unknown directive is a comment, and no directive follows it
        key = found.group(1).lower()
        if key in seen:
            raise DockerfileError(f"only one {key} parser directive can be used", start + 1)
        seen.add(key)
        if key == "escape":
            if found.group(2) not in ("\\", "`"):
                raise DockerfileError(f"invalid escape directive {found.group(2)!r}", start + 1)
            escape = found.group(2)
    else:
        start = len(lines)
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    first = 0
    for number in range(start, len(lines)):
        line = lines[number]
        stripped = line.strip(_GO_SPACES)
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and (stripped.startswith("#") or not stripped):
            continue  # comments and empty lines inside a continued instruction are dropped
        if not pending:
            first = number + 1
        body = line.rstrip(" \t")
        if body.endswith(escape):
            pending.append(body[:-1])
            continue
        pending.append(line)
        out.append((first, "".join(pending).strip(_GO_SPACES)))
        pending = []
    if pending:
        out.append((first, "".join(pending).strip(_GO_SPACES)))
    return escape, out


def _expand(word: str, variables: Mapping[str, str | None], line: int,
            escape: str = "\\") -> str:
    """`word` with `$NAME`, `${NAME}`, `${NAME:-w}`, `${NAME-w}`, `${NAME:+w}`, `${NAME+w}`
    substituted and quotes removed. A variable that has no value, or another expansion form,
    is an error: the reference could then be anything."""
    out: list[str] = []
    i, quote = 0, ""
    while i < len(word):
        ch = word[i]
        if ch == escape and quote != "'" and i + 1 < len(word):
            out.append(word[i + 1])
            i += 2
            continue
        if ch in ("'", '"') and quote in ("", ch):
            quote = "" if quote else ch
            i += 1
            continue
        if ch != "$" or quote == "'":
            out.append(ch)
            i += 1
            continue
        if word.startswith("${", i):
            end = word.find("}", i)
            if end < 0:
                raise DockerfileError(f"{word!r}: an unclosed ${{", line)
            out.append(_braced(word[i + 2:end], variables, word, line, escape))
            i = end + 1
            continue
        name = _NAME.match(word, i + 1)
        if name is None:
            out.append(ch)
            i += 1
            continue
        out.append(_value(name.group(0), variables, word, line))
        i = name.end()
    return "".join(out)


def _braced(inner: str, variables: Mapping[str, str | None], word: str, line: int,
            escape: str) -> str:
    name = _NAME.match(inner)
    if name is None:
        raise DockerfileError(f"{word!r}: ${{{inner}}} is not a variable this server can "
                              "resolve", line)
    rest = inner[name.end():]
    key = name.group(0)
    if not rest:
        return _value(key, variables, word, line)
    value = variables.get(key)
    for op in (":-", ":+", "-", "+"):
        if rest.startswith(op):
            alternative = _expand(rest[len(op):], variables, line, escape)
            is_set = value is not None and (value != "" or ":" not in op)
            if op.endswith("-"):
                return value if is_set and value is not None else alternative
            return alternative if is_set else ""
    raise DockerfileError(f"{word!r}: the expansion ${{{inner}}} cannot be resolved before "
                          "the build", line, hint="use $NAME, ${NAME} or ${NAME:-default}")


def _value(name: str, variables: Mapping[str, str | None], word: str, line: int) -> str:
    value = variables.get(name)
    if value is None:
        raise DockerfileError(f"{word!r}: ${name} has no value (declare it with a default "
                              "in an ARG, or pass it as a build arg)", line)
    return value


def _words(args: str, escape: str = "\\") -> list[str]:
    """`args` split at whitespace outside quotes (quotes kept: `_expand` removes them)."""
    words: list[str] = []
    current: list[str] = []
    quote = ""
    i = 0
    while i < len(args):
        ch = args[i]
        if ch == escape and quote != "'" and i + 1 < len(args):
            current.append(args[i:i + 2])
            i += 2
            continue
        if ch in ("'", '"') and quote in ("", ch):
            quote = "" if quote else ch
        if ch in _BLANKS and not quote:
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(ch)
        i += 1
    if current:
        words.append("".join(current))
    return words


_KNOWN_FLAGS = {  # what each instruction takes (the engine's names: lower case, exact)
    "FROM": ("platform",),
    "COPY": ("from", "chown", "chmod", "link", "parents", "exclude"),
    "ADD": ("chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"),
    "RUN": ("mount", "network", "security"),
}
_GUARDED = ("FROM", "COPY", "ADD", "RUN", "ONBUILD")  # their lines: printable ASCII and tabs
_PRINTABLE = re.compile(r"[\t\x20-\x7e]*")
_TOKENS = re.compile(r"[\t\v\f\r ]+")  # how the engine splits FROM's arguments (no quotes)
_STAGE_NAME = re.compile(r"[a-z][a-z0-9-_.]*")  # the engine's rule for `AS NAME`
_PLAIN_SOURCE = re.compile(r"[A-Za-z0-9_.:/@+${}-]+")  # a `from` value as written
_PLAIN_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@+-]*")  # ... and once substituted
_GIT = re.compile(r"(?:^|[^A-Za-z0-9_.-])git@", re.IGNORECASE)
URL_HINT = ("add the file to the build context and COPY it, or download it in a `RUN wget` "
            "or `RUN curl` step: that runs in the build's container, on the project's network "
            "and under the server's egress policy")


def _guard(keyword: str, logical: str, line: int) -> None:
    """Refuse what the engine reads differently from this parser: a keyword that is not ASCII
    (Go lower-cases `ONBUİLD` to `onbuild`), and in the instructions that name images or
    sources any character but printable ASCII and tab (the engine splits flags at bytes such
    as 0xA0, the second byte of a UTF-8 `à`)."""
    if not keyword.isascii():
        raise DockerfileError(f"{keyword!r} is not an instruction (not ASCII)", line)
    if keyword in _GUARDED and not _PRINTABLE.fullmatch(logical):
        bad = next(ch for ch in logical if not _PRINTABLE.fullmatch(ch))
        raise DockerfileError(f"{keyword} holds the character {bad!r}: only printable ASCII "
                              "and tabs are accepted in FROM, COPY, ADD, RUN and ONBUILD on "
                              "this server", line,
                              hint="write the line in plain ASCII (a RUN step can read "
                              "other text from a file of the context)")


def _flags(keyword: str, args: str, line: int) -> tuple[list[FlagWord], str]:
    """The instruction's leading flags as the engine reads them (`builder_flags`), and the
    rest of its arguments. A name that is not one of the instruction's flags, or is written
    with a quote or backslash, is refused: the engine would read it as another flag."""
    words, rest = extract_builder_flags(args)
    known = _KNOWN_FLAGS.get(keyword, ())
    for flag in words:
        if not flag.plain_name:
            raise DockerfileError(f"{keyword} flag {flag.raw!r}: a flag's name is written "
                                  "without quotes or backslashes here", line,
                                  hint="write the flag as --name=value")
        if flag.name not in known:
            takes = ", ".join(f"--{name}" for name in known) or "no flags"
            raise DockerfileError(f"{keyword} has no flag --{flag.name}", line,
                                  hint=f"{keyword} takes {takes} (lower case)")
    return words, rest.strip(_GO_SPACES)


def _source(keyword: str, flag: str, value: str | None, line: int) -> str:
    """A `from` value, which must be a plain image reference, stage name or index."""
    if value is None or not _PLAIN_SOURCE.fullmatch(value):
        raise DockerfileError(f"{keyword} {flag}={value or ''!r} is not an image reference, "
                              "a stage name or a stage index", line,
                              hint=f"write {flag}=NAME[:TAG] or {flag}=STAGE, unquoted")
    return value


def _mount_sources(values: list[str], line: int) -> list[str]:
    """The `from=` of each `--mount` (a CSV list for the engine: quotes are refused, they
    would change where its fields end)."""
    out: list[str] = []
    for value in values:
        if any(ch in value for ch in "\"'\\"):
            raise DockerfileError("RUN --mount: quotes and backslashes are not accepted in its "
                                  "options here", line, hint="write --mount=type=...,from=...")
        for field in value.split(","):
            key, _, found = field.partition("=")
            if key.strip().lower() == "from":
                out.append(_source("RUN --mount", "from", found.strip(), line))
    return out


def _refuse_urls(rest: str, line: int) -> None:
    """`ADD` fetches a URL source with the engine itself, from the host's own network (its
    loopback included), and its errors carry what it fetched: refused on a shared server. A
    URL is looked for with quotes and both escape characters removed (`"http"://`,
    `http:\\//`; an ONBUILD trigger is parsed again with `\\` in the later build), and a
    variable in a source could hold one, so only the destination may use one."""
    cooked = re.sub("[\"'`\\\\]", "", rest)
    if "://" in cooked or _GIT.search(cooked):
        raise DockerfileError("ADD from a URL is not allowed on this server: the engine would "
                              "fetch it from the server's own network", line, hint=URL_HINT)
    sources = [rest] if rest.startswith("[") else _TOKENS.split(rest)[:-1]
    if any("$" in source for source in sources):
        raise DockerfileError("ADD: a variable in a source is not allowed on this server (it "
                              "could name a URL)", line,
                              hint="write the source path, or use COPY (it never fetches)")


def _arg(args: str, variables: dict[str, str | None], build_args: Mapping[str, str],
         known: Mapping[str, str | None], line: int, escape: str) -> None:
    """Declare the ARGs of one instruction (`ARG A=1 B`), build args first."""
    for item in _words(args, escape):
        key, sep, default = item.partition("=")
        if key in build_args:
            variables[key] = build_args[key]
        elif sep:
            try:
                variables[key] = _expand(default, {**known, **variables}, line, escape)
            except DockerfileError:
                variables[key] = None  # an error only where it is used
        else:
            variables[key] = known.get(key)


def image_uses(text: str, build_args: Mapping[str, str] | None = None) -> list[ImageUse]:
    """Every image the Dockerfile `text` reads, in order (stages and `scratch` left out);
    a DockerfileError for what a shared server refuses or cannot resolve before the build."""
    args = dict(build_args or {})
    global_args: dict[str, str | None] = {}
    stage_args: dict[str, str | None] = {}
    finished: list[str] = []  # lower-cased names of the stages before this one ("": unnamed)
    current: str | None = None  # this stage's name: not a stage yet, for the engine
    uses: list[ImageUse] = []

    def add(line: int, instruction: str, value: str, variables: Mapping[str, str | None],
            stage_ok: bool, index_ok: bool = False) -> None:
        """Report `value` unless it names a finished stage (by index: `--from` only)."""
        reference = _expand(value, variables, line, escape).strip()
        if not reference:
            raise DockerfileError(f"{instruction} names no image", line)
        if instruction != "FROM" and not _PLAIN_REFERENCE.fullmatch(reference):
            raise DockerfileError(f"{instruction} {reference!r} is not an image reference, a "
                                  "stage name or a stage index", line)
        if stage_ok and reference.lower() in finished:
            return
        if index_ok and reference.isdigit() and int(reference) < len(finished):
            return
        if instruction == "FROM" and reference.lower() == "scratch":
            return
        uses.append(ImageUse(line, instruction, reference))

    escape, instructions = _instructions(text)
    for line, logical in instructions:
        keyword, rest = _split_command(logical)
        _guard(keyword, logical, line)
        onbuild = keyword == "ONBUILD"
        if onbuild:
            if rest.startswith("--"):
                raise DockerfileError("ONBUILD takes no flags", line)
            keyword, rest = _split_command(rest)
            _guard(keyword, rest, line)
        prefix = "ONBUILD " if onbuild else ""
        if keyword == "ARG" and not onbuild:
            if current is None:
                _arg(rest, global_args, args, global_args, line, escape)
            else:
                _arg(rest, stage_args, args, {**global_args, **stage_args}, line, escape)
        elif keyword == "FROM" and not onbuild:
            _, rest = _flags(keyword, rest, line)
            parts = _TOKENS.split(rest) if rest else []
            if len(parts) not in (1, 3) or (len(parts) == 3 and parts[1].lower() != "as"):
                raise DockerfileError("FROM takes an image and optionally AS NAME", line,
                                      hint="write FROM IMAGE [AS NAME]")
            named = parts[2].lower() if len(parts) == 3 else ""
            if len(parts) == 3 and not _STAGE_NAME.fullmatch(named):
                raise DockerfileError(f"{parts[2]!r} is not a stage name", line,
                                      hint="start it with a letter; use letters, digits, "
                                      "'-', '_' and '.'")
            if current is not None:
                finished.append(current)  # the engine commits a stage when the next begins
            add(line, "FROM", parts[0], global_args, True)
            current = named
            stage_args = {}
        elif keyword in ("COPY", "ADD", "RUN"):
            flags, rest = _flags(keyword, rest, line)
            for flag in flags:
                if flag.name == "from":
                    value = _source(keyword, "--from", flag.value, line)
                    add(line, f"{prefix}{keyword} --from", value, stage_args, not onbuild,
                        not onbuild)
            mounts = [f.value or "" for f in flags if f.name == "mount"]
            for value in _mount_sources(mounts, line):
                add(line, f"{prefix}RUN --mount from", value, stage_args, not onbuild,
                    not onbuild)
            if keyword == "ADD":
                _refuse_urls(rest, line)
    return uses
