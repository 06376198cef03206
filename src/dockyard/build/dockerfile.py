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

Stage names and indexes of earlier stages are not images and are not reported; `scratch` is no
image either. An `ONBUILD COPY --from=` value is always reported as an image: it is resolved in
a later build, where this file's stages do not exist.
"""

from __future__ import annotations

import io
import posixpath
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

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
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")  # as Docker's
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
        found = _DIRECTIVE.match(raw)
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
        stripped = line.strip()
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
        out.append((first, "".join(pending).strip()))
        pending = []
    if pending:
        out.append((first, "".join(pending).strip()))
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


def _flags(args: str, escape: str) -> tuple[dict[str, list[str]], list[str]]:
    """Leading `--name=value` flags of an instruction, and the words after them."""
    flags: dict[str, list[str]] = {}
    words = _words(args, escape)
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags.setdefault(key.lower(), []).append(value)
    return flags, words


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


def _mount_sources(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        for field in value.split(","):
            key, _, found = field.strip().strip("'\"").partition("=")
            if key.strip().lower() == "from":
                out.append(found.strip())
    return out


def image_uses(text: str, build_args: Mapping[str, str] | None = None) -> list[ImageUse]:
    """Every image the Dockerfile `text` reads, in order (stages and `scratch` left out)."""
    args = dict(build_args or {})
    global_args: dict[str, str | None] = {}
    stage_args: dict[str, str | None] = {}
    stages: list[str] = []  # lower-cased names ("" for an unnamed stage)
    uses: list[ImageUse] = []

    def add(line: int, instruction: str, value: str, variables: Mapping[str, str | None],
            stage_ok: bool, index_ok: bool = False) -> None:
        """Report `value` unless it names an earlier stage (by index: `--from` only)."""
        reference = _expand(value, variables, line, escape).strip()
        if not reference:
            raise DockerfileError(f"{instruction} names no image", line)
        if stage_ok and reference.lower() in stages:
            return
        if index_ok and reference.isdigit() and int(reference) < len(stages):
            return
        if instruction == "FROM" and reference.lower() == "scratch":
            return
        uses.append(ImageUse(line, instruction, reference))

    escape, instructions = _instructions(text)
    for line, logical in instructions:
        keyword, rest = _split_command(logical)
        onbuild = keyword == "ONBUILD"
        if onbuild:
            keyword, rest = _split_command(rest)
        if keyword == "ARG" and not onbuild:
            if not stages:
                _arg(rest, global_args, args, global_args, line, escape)
            else:
                _arg(rest, stage_args, args, {**global_args, **stage_args}, line, escape)
        elif keyword == "FROM" and not onbuild:
            _, parts = _flags(rest, escape)
            if not parts:
                raise DockerfileError("FROM names no image", line)
            add(line, "FROM", parts[0], global_args, True)
            named = parts[2].lower() if len(parts) >= 3 and parts[1].lower() == "as" else ""
            stages.append(named)
            stage_args = {}
        elif keyword in ("COPY", "ADD", "RUN"):
            flags, _ = _flags(rest, escape)
            prefix = "ONBUILD " if onbuild else ""
            for value in flags.get("from", []) if keyword != "RUN" else []:
                add(line, f"{prefix}{keyword} --from", value, stage_args, not onbuild,
                    not onbuild)
            for value in _mount_sources(flags.get("mount", [])) if keyword == "RUN" else []:
                add(line, f"{prefix}RUN --mount from", value, stage_args, not onbuild,
                    not onbuild)
    return uses
