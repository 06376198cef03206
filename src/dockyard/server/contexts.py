"""Uploaded build contexts, kept by content digest so an unchanged context is sent only once.

The content is stored once, but each account sees only the contexts it uploaded itself (a
marker per account): otherwise one account could learn whether another uploaded some content,
or build from it without having it."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from dockyard.build.context import PackedContext
from dockyard.build.safety import check_archive
from dockyard.errors import DockyardError

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class ContextError(DockyardError):
    """An upload that is not what it claims to be."""


def check_digest(digest: str) -> str:
    if not _DIGEST.fullmatch(digest):
        raise ContextError(f"{digest!r} is not a build context digest (sha256:<64 hex>)")
    return digest


class ContextStore:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, digest: str) -> Path:
        return self.directory / (check_digest(digest).removeprefix("sha256:") + ".tar")

    def _marker(self, digest: str, owner: str) -> Path:
        return self.directory / "owners" / owner / check_digest(digest).removeprefix("sha256:")

    def has(self, digest: str, owner: str | None = None) -> bool:
        """Whether the context is here (and, given `owner`, was uploaded by that owner)."""
        if not self._path(digest).is_file():
            return False
        return owner is None or self._marker(digest, owner).is_file()

    def put(self, digest: str, data: bytes, owner: str | None = None) -> None:
        """Keep `data` after checking it matches `digest` and is a safe archive."""
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != check_digest(digest):
            raise ContextError(f"the upload's content is {actual}, not {digest}",
                               hint="the upload was damaged; run the command again")
        check_archive(data, max_bytes=self.max_bytes)
        path = self._path(digest)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".part")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
        if owner is not None:
            marker = self._marker(digest, owner)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()

    def get(self, digest: str, owner: str | None = None) -> PackedContext | None:
        path = self._path(digest)
        if not self.has(digest, owner):
            return None
        data = path.read_bytes()
        return PackedContext(data=data, digest=digest, files=0, size=len(data))
