"""Reading every file under a live server's data directory, for leak searches.

The server keeps working while a test reads: the context collector removes directories, the
proxy rewrites its files, SQLite makes and drops its journals. A file or directory that goes
away between listing and reading is passed over (it holds nothing any more).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


def file_contents(root: Path) -> Iterator[tuple[Path, bytes]]:
    """(path, bytes) of every regular file under `root`, in a stable order."""
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(directory) / name
            try:
                if path.is_file():  # not a socket (the proxy's) or a fifo
                    yield path, path.read_bytes()
            except FileNotFoundError:
                continue
