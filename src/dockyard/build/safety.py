"""Checking an uploaded build context before anything unpacks it (the server side).

A context comes from a client the server does not trust. It is refused, whole, when a member
would land outside the context (absolute path, `..`), when a link leads out of it, when it holds
a device, pipe or socket, or when it is larger than the configured limit (counted as the bytes
uploaded and as the bytes it unpacks to, so a compression bomb is caught too).
"""

from __future__ import annotations

import io
import posixpath
import tarfile

from dockyard.errors import DockyardError

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_MEMBERS = 200_000


class UnsafeArchive(DockyardError):
    """The uploaded build context was refused."""


def _inside(path: str) -> bool:
    normalized = posixpath.normpath(path)
    return not (normalized.startswith(("/", "../")) or normalized == "..")


def check_archive(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES,
                  max_members: int = DEFAULT_MAX_MEMBERS) -> None:
    """Raise `UnsafeArchive` naming the first problem; return None when the tar is safe."""
    limit_hint = "make the context smaller (.dockerignore) or raise the server's limit"
    if len(data) > max_bytes:
        raise UnsafeArchive(f"the build context is {len(data)} bytes, over the limit of "
                            f"{max_bytes}", hint=limit_hint)
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UnsafeArchive(f"the build context is not a readable tar archive: {exc}") from None
    total = 0
    count = 0
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
                if member.issym():
                    target = member.linkname
                    resolved = posixpath.join(posixpath.dirname(name), target)
                    if target.startswith("/") or not _inside(resolved):
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
