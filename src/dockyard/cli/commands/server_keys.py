"""The operator's `dockyard server rotate-key` and `dockyard server backup`: straight on the
server's data (no HTTP), as `server accounts`."""

from __future__ import annotations

from pathlib import Path

from dockyard.cli.render import note
from dockyard.server.backup import backup
from dockyard.server.keys import rotate_key
from dockyard.server.settings import settings_from


def run_rotate_key(data: str | None, key_file: str | None, store_url: str | None,
                   new_key_file: str) -> None:
    settings = settings_from({"data": data, "key_file": key_file, "store_url": store_url})
    done = rotate_key(settings, Path(new_key_file))
    made = "made" if done.created else "given"
    note(f"{done.values} value(s) re-encrypted with the key in {done.new_key_file} ({made}); "
         f"{done.old_key} opens none of them now")
    note(f"start the server with --key-file {done.new_key_file} (or DOCKYARD_KEY_FILE), then "
         "delete the old key and its copies; services that use configs are replaced at their "
         "next `compose up`")


def run_backup(data: str | None, key_file: str | None, store_url: str | None,
               path: str) -> None:
    settings = settings_from({"data": data, "key_file": key_file, "store_url": store_url})
    done = backup(settings, Path(path))
    note(f"store backed up to {done.path} ({done.size} bytes), values encrypted")
    note(f"the key is not in it: keep a copy of {done.key} apart from the backup "
         "(docs/operations.md)")
