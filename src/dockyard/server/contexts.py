"""Uploaded build contexts, kept by content digest so an unchanged context is sent only once.

The content is stored once, but each account sees only the contexts it uploaded itself (a
marker per account): otherwise one account could learn whether another uploaded some content,
or build from it without having it.

What a tenant can grow here is bounded three ways:

- an upload streams to a temporary file beside the store (never whole in memory), counted as
  it arrives against the server's size limit and the account's quota (`ContextTooLarge`,
  HTTP 413, as soon as a chunk goes over);
- the quota counts every context the account keeps (a digest two accounts uploaded counts for
  both: each could have uploaded it alone);
- `collect` removes what no deployment uses: an account's marker once it is older than the TTL
  and not in `in_use`, and the content once no account keeps it. A marker's time is its last
  upload, check (`has`, the client's HEAD before a deployment) or use (`get`, a build).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Set
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from dockyard.api_errors import ContextError as ContextError
from dockyard.api_errors import ContextTooLarge as ContextTooLarge
from dockyard.build.context import PackedContext
from dockyard.build.safety import check_archive

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HEX = re.compile(r"[0-9a-f]{64}")
PART_SUFFIX = ".part"


MIN_CONTEXT_CHARGE = 64 * 1024


def check_digest(digest: str) -> str:
    if not _DIGEST.fullmatch(digest):
        raise ContextError(f"{digest!r} is not a build context digest (sha256:<64 hex>)")
    return digest


@dataclass(frozen=True, slots=True)
class Collected:
    """What one garbage collection removed."""

    markers: int = 0  # (account, context) pairs forgotten
    files: int = 0  # contents (and stale temporary files) deleted
    bytes: int = 0  # their size


class ContextStore:
    def __init__(self, directory: Path, max_bytes: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.clock = clock
        self._lock = threading.Lock()  # finishing an upload vs. collecting
        self._pending: dict[str, int] = {}  # owner -> bytes of its uploads in progress
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, digest: str) -> Path:
        return self.directory / (check_digest(digest).removeprefix("sha256:") + ".tar")

    def _marker(self, digest: str, owner: str) -> Path:
        return self.directory / "owners" / owner / check_digest(digest).removeprefix("sha256:")

    def _stamp(self, path: Path) -> None:
        now = self.clock()
        try:
            os.utime(path, (now, now))
        except FileNotFoundError:
            pass

    def has(self, digest: str, owner: str | None = None) -> bool:
        """Whether the context is here (and, given `owner`, was uploaded by that owner).

        A check by its owner counts as a use: a deployment follows it."""
        if not self._path(digest).is_file():
            return False
        if owner is None:
            return True
        marker = self._marker(digest, owner)
        with self._lock:  # not while a collection is removing it
            if not marker.is_file():
                return False
            self._stamp(marker)
            return True

    def usage(self, owner: str, *, besides: str | None = None) -> int:
        """Bytes of the contexts `owner` keeps (but `besides`, a digest), each counted as at
        least `MIN_CONTEXT_CHARGE`: thousands of tiny uploads cost the disk blocks and inodes,
        and every upload lists them, so they must not be free."""
        folder = self.directory / "owners" / owner
        skip = besides.removeprefix("sha256:") if besides else None
        total = 0
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return 0
        for name in names:
            if name == skip or not _HEX.fullmatch(name):
                continue
            try:
                size = (self.directory / (name + ".tar")).stat().st_size
            except FileNotFoundError:
                continue
            total += max(size, MIN_CONTEXT_CHARGE)
        return total

    def begin(self, digest: str, owner: str | None = None, quota: int = 0) -> Upload:
        """An upload of `digest` for `owner`, within `quota` bytes kept in all (0: none)."""
        return Upload(self, check_digest(digest), owner, quota)

    def put(self, digest: str, data: bytes, owner: str | None = None, quota: int = 0) -> None:
        """Keep `data` after checking it matches `digest` and is a safe archive."""
        with self.begin(digest, owner, quota) as upload:
            upload.write(data)
            upload.finish()

    def open(self, digest: str, owner: str | None = None) -> BinaryIO | None:
        """The stored context as a file to read from (None when it is not the owner's): for
        reading one member, such as the Dockerfile, without the whole archive in memory."""
        if not self.has(digest, owner):
            return None
        try:
            return self._path(digest).open("rb")
        except FileNotFoundError:
            return None

    def get(self, digest: str, owner: str | None = None) -> PackedContext | None:
        path = self._path(digest)
        if not self.has(digest, owner):
            return None
        data = path.read_bytes()
        return PackedContext(data=data, digest=digest, files=0, size=len(data))

    def collect(self, in_use: Set[tuple[str, str]], ttl: float) -> Collected:
        """Remove what no deployment uses and nobody touched for `ttl` seconds.

        `in_use` holds (owner, digest) pairs: the contexts of running deployments and of each
        project's latest successful one. Their markers are kept whatever their age; content is
        kept while any owner keeps a marker (and for the TTL after it was written, so an upload
        finishing now is never taken). Temporary files of uploads that stopped (a crash, a
        client gone) are removed after the TTL too.
        """
        now = self.clock()
        markers = files = freed = 0
        with self._lock:
            kept: set[str] = set()
            owners = self.directory / "owners"
            for folder in sorted(owners.iterdir()) if owners.is_dir() else []:
                for marker in sorted(folder.iterdir()):
                    used = (folder.name, "sha256:" + marker.name) in in_use
                    if not used and _older(marker, now, ttl):
                        marker.unlink(missing_ok=True)
                        markers += 1
                    else:
                        kept.add(marker.name)
                if not any(folder.iterdir()):
                    folder.rmdir()
            for path in sorted(self.directory.iterdir()):
                stale = path.name.endswith(PART_SUFFIX) and _older(path, now, ttl)
                orphan = path.suffix == ".tar" and path.stem not in kept and \
                    _older(path, now, ttl)
                if stale or orphan:
                    size = _size(path)
                    path.unlink(missing_ok=True)
                    files, freed = files + 1, freed + size
        return Collected(markers, files, freed)

    # -- uploads in progress: what the quota counts besides what is kept --------------------
    def _reserve(self, owner: str, size: int) -> int:
        with self._lock:
            self._pending[owner] = self._pending.get(owner, 0) + size
            return self._pending[owner]

    def _release(self, owner: str, size: int) -> None:
        with self._lock:
            left = self._pending.get(owner, 0) - size
            if left > 0:
                self._pending[owner] = left
            else:
                self._pending.pop(owner, None)


class Upload:
    """One upload, written to a temporary file in the store as it arrives and hashed on the
    way; `finish` checks it and moves it into place, anything else leaves nothing behind."""

    def __init__(self, store: ContextStore, digest: str, owner: str | None,
                 quota: int) -> None:
        self.store, self.digest, self.owner, self.quota = store, digest, owner, quota
        self.size = 0
        self._reserved = 0  # bytes counted in the store's uploads in progress
        self._hash = hashlib.sha256()
        self._kept = store.usage(owner, besides=digest) if owner is not None and quota else 0
        fd, tmp = tempfile.mkstemp(dir=store.directory, suffix=PART_SUFFIX)
        self._file = os.fdopen(fd, "wb")
        self._tmp = Path(tmp)
        self._done = False

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def expect(self, size: int) -> None:
        """Refuse now an upload that says (Content-Length) it will be over a limit."""
        if size > self.store.max_bytes:
            raise ContextTooLarge(
                f"the build context is {size} bytes, over the server's limit of "
                f"{self.store.max_bytes} bytes", hint="make the context smaller (.dockerignore)")
        if self.owner is not None and self.quota:
            with self.store._lock:
                pending = self.store._pending.get(self.owner, 0)
            self._check_quota(self._kept + pending + size)

    def write(self, chunk: bytes) -> None:
        """Add `chunk`; `ContextTooLarge` as soon as the upload is over a limit."""
        self.size += len(chunk)
        limit = self.store.max_bytes
        if self.size > limit:
            raise ContextTooLarge(
                f"the build context is over the server's limit of {limit} bytes",
                hint="make the context smaller (.dockerignore)")
        if self.owner is not None and self.quota:
            pending = self.store._reserve(self.owner, len(chunk))
            self._reserved += len(chunk)
            self._check_quota(self._kept + pending)
        self._hash.update(chunk)
        self._file.write(chunk)

    def _check_quota(self, total: int) -> None:
        if total > self.quota:
            raise ContextTooLarge(
                f"the account's build contexts would take {total} bytes on the server, over "
                f"its quota of {self.quota} bytes",
                hint="contexts no deployment uses are removed after a while: take down or "
                "redeploy what used older ones, make the context smaller (.dockerignore), or "
                "ask the server's operator for a larger quota (--max-context-storage)")

    def finish(self) -> None:
        """Check the upload (digest, archive safety, quota) and keep it."""
        self._file.close()
        actual = "sha256:" + self._hash.hexdigest()
        if actual != self.digest:
            raise ContextError(f"the upload's content is {actual}, not {self.digest}",
                               hint="the upload was damaged; run the command again")
        check_archive(self._tmp, max_bytes=self.store.max_bytes)
        store = self.store
        with store._lock:
            if self.owner is not None and self.quota:
                # Uploads that finished meanwhile count now (this one is still pending).
                others = store._pending.get(self.owner, 0) - self._reserved
                self._check_quota(store.usage(self.owner, besides=self.digest) + others +
                                  self.size)
            path = store._path(self.digest)
            os.replace(self._tmp, path)
            store._stamp(path)
            if self.owner is not None:
                marker = store._marker(self.digest, self.owner)
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
                store._stamp(marker)
        self._done = True
        self._release()

    def close(self) -> None:
        """Abort unless finished (what leaving a `with` block does)."""
        if not self._done:
            self.abort()

    def abort(self) -> None:
        """Drop the upload: its temporary file and its share of the quota."""
        self._file.close()
        self._tmp.unlink(missing_ok=True)
        self._done = True
        self._release()

    def _release(self) -> None:
        if self.owner is not None and self._reserved:
            self.store._release(self.owner, self._reserved)
            self._reserved = 0


def _older(path: Path, now: float, ttl: float) -> bool:
    try:
        return now - path.stat().st_mtime > ttl
    except FileNotFoundError:
        return False


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
