"""A consistent copy of the server's store, taken while it runs (`dockyard server backup`).

SQLite's `VACUUM INTO` writes one snapshot of the database to a new file: the server goes on
serving and writing meanwhile (WAL mode), and the copy never holds half a transaction. A copy of
`dockyard.db` made with `cp` while the server writes may be torn. The backup holds the values
encrypted, never the key: copy the key file apart (docs/operations.md).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import UsageError
from dockyard.server.keys import key_source
from dockyard.server.settings import ServerSettings
from dockyard.store.store import Store


@dataclass(frozen=True, slots=True)
class Backup:
    path: Path
    size: int
    key: str  # where the key is ("the key file ...", "DOCKYARD_KEY"): not in the backup


def backup(settings: ServerSettings, destination: Path) -> Backup:
    """Write a snapshot of the store to `destination` (a new file, mode 0600)."""
    if not settings.store_url and not (settings.data / "dockyard.db").exists():
        raise UsageError(f"no Dockyard server data in {settings.data}",
                         hint="give the server's data directory with --data (or "
                         "DOCKYARD_DATA)")
    try:  # made empty and private first: VACUUM INTO fills an empty file with its mode
        os.close(os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise UsageError(f"{destination} already exists",
                         hint="give a new file name; a backup never overwrites one") from None
    except OSError as exc:
        raise UsageError(f"cannot write {destination}: {exc.strerror}") from None
    store = Store(settings.database_url)
    try:
        store.backup_to(str(destination))
    except BaseException:
        with contextlib.suppress(OSError):
            destination.unlink()
        raise
    finally:
        store.close()
    return Backup(destination, destination.stat().st_size, key_source(settings).where)
