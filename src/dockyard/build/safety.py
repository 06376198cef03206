"""Checking an uploaded build context before anything unpacks it (the server side).

A context comes from a client the server does not trust. It is refused, whole, when a member
would land outside the context (absolute path, `..`), when a link leads out of it, when a path
passes through a link the archive itself made (`a -> .` then `a/../x`), when it holds a device,
pipe or socket, or when it is larger than the configured limit. The limit counts the bytes
uploaded and every byte decompressed, headers included, read through a counting stream (so a
compression bomb or a huge pax or long-name header is stopped before it is in memory).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import posixpath
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from dockyard.errors import DockyardError

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_MEMBERS = 200_000
MAX_HEADER_BYTES = 1024 * 1024  # a pax or GNU long-name header: names, not data


class UnsafeArchive(DockyardError):
    """The uploaded build context was refused."""

    status = 422


def _inside(path: str) -> bool:
    normalized = posixpath.normpath(path)
    return not (normalized.startswith(("/", "../")) or normalized == "..")


LIMIT_HINT = "make the context smaller (.dockerignore) or raise the server's limit"


class _Bounded(io.RawIOBase):
    """The decompressed stream, refusing to hand out more than `limit` bytes in all, or a
    single read larger than a member header can be (tarfile reads a header in one piece)."""

    def __init__(self, inner: IO[bytes], limit: int) -> None:
        self.inner, self.limit, self.total = inner, limit, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > max(MAX_HEADER_BYTES, tarfile.RECORDSIZE * 64):
            raise UnsafeArchive("the build context has an entry header larger than "
                                f"{MAX_HEADER_BYTES} bytes", hint=LIMIT_HINT)
        chunk = self.inner.read(size)
        self.total += len(chunk)
        if self.total > self.limit:
            raise UnsafeArchive(f"the build context unpacks to more than {self.limit} bytes",
                                hint=LIMIT_HINT)
        return chunk


def _decompressed(raw: IO[bytes]) -> IO[bytes]:
    magic = raw.read(6)
    raw.seek(0)
    stream: IO[bytes] = raw
    if magic[:2] == b"\x1f\x8b":
        stream = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]
    elif magic[:3] == b"BZh":
        stream = bz2.BZ2File(raw)
    elif magic[:6] == b"\xfd7zXZ\x00":
        stream = lzma.LZMAFile(raw)
    return stream


_EXTENDED_HEADERS = (b"x", b"g", b"L", b"K")  # pax, pax global, GNU long name and long link


def _header_size(field: bytes) -> int:
    if field[:1] in (b"\x80", b"\xff"):  # base-256 (GNU): a huge size
        return int.from_bytes(field[1:], "big") if field[:1] == b"\x80" else -1
    text = field.split(b"\0", 1)[0].strip()
    return int(text or b"0", 8)


def _check_headers(stream: IO[bytes], limit: int) -> None:
    """A first pass over the raw tar blocks: refuse an extended header (pax, GNU long names)
    larger than MAX_HEADER_BYTES before tarfile would read it into memory whole, and stop at
    `limit` decompressed bytes. Member data is read in small chunks and dropped."""
    total = 0
    while True:
        block = stream.read(tarfile.BLOCKSIZE)
        total += len(block)
        if len(block) < tarfile.BLOCKSIZE or block == bytes(tarfile.BLOCKSIZE):
            return
        try:
            size = _header_size(block[124:136])
        except ValueError:
            return  # not a header tarfile accepts: the second pass says so
        if size < 0 or (block[156:157] in _EXTENDED_HEADERS and size > MAX_HEADER_BYTES):
            raise UnsafeArchive("the build context has an entry header larger than "
                                f"{MAX_HEADER_BYTES} bytes", hint=LIMIT_HINT)
        remaining = -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
        while remaining > 0:
            chunk = stream.read(min(remaining, 1 << 16))
            if not chunk:
                return
            remaining -= len(chunk)
            total += len(chunk)
            if total > limit:
                raise UnsafeArchive(f"the build context unpacks to more than {limit} bytes",
                                    hint=LIMIT_HINT)


def _through_link(path: str, links: set[str]) -> str | None:
    """The first link made earlier in the archive that `path` passes through, if any."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    for end in range(1, len(parts)):
        prefix = posixpath.normpath("/".join(parts[:end]))
        if prefix in links:
            return prefix
    return None


def check_archive(data: bytes | Path, max_bytes: int = DEFAULT_MAX_BYTES,
                  max_members: int = DEFAULT_MAX_MEMBERS) -> None:
    """Raise `UnsafeArchive` naming the first problem; return None when the tar is safe.

    `data` is the archive's bytes, or the file holding it: a file is read as a stream (the
    server keeps an upload on disk, never whole in memory)."""
    with contextlib.ExitStack() as files:
        def opened() -> IO[bytes]:
            if isinstance(data, bytes):
                return io.BytesIO(data)
            return files.enter_context(open(data, "rb"))

        size = len(data) if isinstance(data, bytes) else data.stat().st_size
        _check_archive(opened, size, max_bytes, max_members)


def _check_archive(opened: Callable[[], IO[bytes]], size: int, max_bytes: int,
                   max_members: int) -> None:
    limit_hint = LIMIT_HINT
    if size > max_bytes:
        raise UnsafeArchive(f"the build context is {size} bytes, over the limit of "
                            f"{max_bytes}", hint=limit_hint)
    # Headers count against the limit too (slack for the tar blocks around small files).
    bound = max_bytes + max_bytes // 8 + 1024 * 1024
    try:
        _check_headers(_decompressed(opened()), bound)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise UnsafeArchive(f"the build context is a damaged archive: {exc}") from None
    stream = _Bounded(_decompressed(opened()), bound)
    try:
        tar = tarfile.open(fileobj=stream, mode="r|")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UnsafeArchive(f"the build context is not a readable tar archive: {exc}") from None
    total = 0
    count = 0
    links: set[str] = set()
    with tar:
        try:
            for member in tar:
                count += 1
                if count > max_members:
                    raise UnsafeArchive(f"the build context has more than {max_members} "
                                        "entries", hint=limit_hint)
                name = member.name
                if not name or name.startswith("/") or not _inside(name):
                    raise UnsafeArchive(f"the build context holds {name!r}, a path outside "
                                        "the context")
                if member.isdev() or member.isfifo() or not (
                        member.isfile() or member.isdir() or member.issym() or member.islnk()):
                    raise UnsafeArchive(f"the build context holds {name!r}, which is not a "
                                        "file, directory or link")
                via = _through_link(name, links) or (
                    _through_link(member.linkname, links) if member.islnk() else None)
                if via is not None and (member.issym() or member.islnk()):
                    raise UnsafeArchive(f"the link {name!r} in the build context leads out "
                                        f"of it through the link {via!r} it made itself")
                if via is not None:
                    raise UnsafeArchive(f"the build context holds {name!r}, a path outside "
                                        f"the context through the link {via!r} it made")
                if member.issym():
                    links.add(posixpath.normpath(name))
                    target = member.linkname
                    resolved = posixpath.join(posixpath.dirname(name), target)
                    if target.startswith("/") or not _inside(resolved) or \
                            _through_link(resolved + "/x", links):
                        raise UnsafeArchive(f"the link {name!r} in the build context leads "
                                            f"out of it (to {target!r})")
                if member.islnk() and not _inside(member.linkname):
                    raise UnsafeArchive(f"the hard link {name!r} in the build context leads "
                                        f"out of it (to {member.linkname!r})")
                total += member.size
                if total > max_bytes:
                    raise UnsafeArchive(f"the build context unpacks to more than {max_bytes} "
                                        "bytes", hint=limit_hint)
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            raise UnsafeArchive(f"the build context is a damaged tar archive: {exc}") from None
