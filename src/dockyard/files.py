"""Writing a file that may hold a secret (a key, a token, a config value): one way, everywhere.

A temporary file in the same directory gets its mode before any byte is written, is flushed to
disk, then renamed over the target. Readers see the old content or the new, never part of
either, and the content never exists with wider rights than asked, not even for a moment.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_private(path: Path | str, data: bytes | str, mode: int = 0o600, *,
                  exclusive: bool = False) -> None:
    """Write `data` (str as UTF-8) to `path` atomically, with `mode` (owner only by default).

    The directory must exist: creating it, and with which mode, is the caller's decision. With
    `exclusive`, a `path` that already exists is left alone and `FileExistsError` raised (the
    first writer wins, as with O_EXCL), yet nobody ever reads a half-written file.
    """
    target = Path(path)
    content = data.encode() if isinstance(data, str) else data
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)  # mkstemp made it 0600: nothing written yet
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        if exclusive:
            os.link(temp, target)  # FileExistsError when it exists, whoever made it
        else:
            os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if exclusive:
        with contextlib.suppress(OSError):
            os.unlink(temp)
