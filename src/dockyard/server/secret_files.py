"""External secrets as files: written by the server, bind-mounted read-only into containers.

Each service of each deployment gets its own directory under `<data>/secrets/` (0700, owned
by the server's user); each file holds one config value with the mode the Compose file asks
(0400 by default), owned by the service's numeric `user` (or the secret's `uid`/`gid`) when
given. The values never enter an image: the files live on the server and are mounted at run
time. `down` removes the project's directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from dockyard.compose.models import Project, Service
from dockyard.files import write_private
from dockyard.naming import sanitize_label
from dockyard.runtime.driver import MountSpec
from dockyard.runtime.specs import Placement, scope
from dockyard.secrets.resolve import secret_files


def project_secrets_dir(data: Path, placement: Placement) -> Path:
    return data / "secrets" / scope(placement)


def write_secret_files(data: Path, placement: Placement, project: Project, service: Service,
                       deployment: str, configs: Mapping[str, str]) -> tuple[MountSpec, ...]:
    """Write the service's secret files; the mounts that put them in its containers."""
    files = secret_files(project, service)
    if not files:
        return ()
    directory = project_secrets_dir(data, placement) / \
        f"{sanitize_label(service.name)}-{deployment}"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    mounts: list[MountSpec] = []
    for index, item in enumerate(files):
        path = directory / f"{index}-{item.config}"
        write_private(path, configs.get(item.config, ""))
        uid = _number(item.uid) if item.uid is not None else _number(
            (service.user or "").partition(":")[0])
        gid = _number(item.gid) if item.gid is not None else None
        if uid is not None or gid is not None:
            with contextlib.suppress(OSError):
                os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
        os.chmod(path, item.mode)
        mounts.append(MountSpec(type="bind", source=str(path), target=item.target,
                                read_only=True))
    return tuple(mounts)


def remove_project_secrets(data: Path, placement: Placement) -> None:
    shutil.rmtree(project_secrets_dir(data, placement), ignore_errors=True)


def _number(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None
