"""External secrets as files: written by the server to memory, bind-mounted read-only into
containers.

The files live under a memory-backed directory (`server.tmpfs`: a tmpfs, never the persistent
disk). Each service of each deployment gets its own directory there (0700, owned by the
server's user), made just before its containers start; each file holds one config value with
the mode the Compose file asks (0400 by default), owned by the service's numeric `user` (or
the secret's `uid`/`gid`) when given. A directory goes when no container of its service and
deployment may read it any more (removed, or a one-off job that finished): after each
deployment, at `down`, and at start. After a reboot emptied the tmpfs, the server writes the
files of the containers that are still there again (`secret_restore`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from dockyard.compose.models import Project, Service
from dockyard.files import write_private
from dockyard.naming import sanitize_label
from dockyard.runtime.driver import ContainerInfo, MountSpec
from dockyard.runtime.specs import Placement, scope
from dockyard.secrets.resolve import SecretFile, secret_files


class SecretFiles:
    """The secret files of every project of the server, under `root` (on tmpfs).

    `retired` is where an older Dockyard wrote them, on disk (`<data>/secrets`): nothing is
    written there any more, and what is there goes as soon as no container uses it.
    """

    def __init__(self, root: Path, retired: Path | None = None) -> None:
        self.root = root
        self.retired = retired if retired is not None and retired != root else None

    @property
    def roots(self) -> list[Path]:
        return [self.root] + ([self.retired] if self.retired is not None else [])

    def project_dir(self, placement: Placement) -> Path:
        return self.root / scope(placement)

    def service_dir(self, placement: Placement, service: str, deployment: str) -> Path:
        return self.project_dir(placement) / _dir_name(service, deployment)

    def write(self, placement: Placement, project: Project, service: Service,
              deployment: str, configs: Mapping[str, str]) -> tuple[MountSpec, ...]:
        """Write the service's secret files; the mounts that put them in its containers."""
        files = secret_files(project, service)
        if not files:
            return ()
        directory = self.service_dir(placement, service.name, deployment)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        mounts: list[MountSpec] = []
        for index, item in enumerate(files):
            path = directory / f"{index}-{item.config}"
            _write_one(path, item, service, configs.get(item.config, ""))
            mounts.append(MountSpec(type="bind", source=str(path), target=item.target,
                                    read_only=True))
        return tuple(mounts)

    def missing(self, placement: Placement, project: Project, service: Service,
                deployment: str) -> bool:
        """Whether any of the service's secret files is not there (the tmpfs was emptied)."""
        directory = self.service_dir(placement, service.name, deployment)
        return any(not (directory / f"{index}-{item.config}").is_file()
                   for index, item in enumerate(secret_files(project, service)))

    def prune(self, placement: Placement, containers: Iterable[ContainerInfo]) -> None:
        """Remove the project's directories no container uses any more (replaced, scaled in,
        removed, or a one-off job that has finished): a value lives in memory only as long as
        a container may read it."""
        used = {_dir_name(c.service, c.deployment) for c in containers if needs_files(c)}
        for root in self.roots:
            _remove_unused(root / scope(placement), used)

    def sweep(self, used: Mapping[str, set[str]]) -> list[Path]:
        """At start: remove every directory no container uses (`used`: project scope -> the
        directory names its containers use). Returns the retired ones still in use."""
        for root in self.roots:
            if root.is_dir():
                for directory in list(root.iterdir()):
                    _remove_unused(directory, used.get(directory.name, set()))
        if self.retired is None or not self.retired.is_dir():
            return []
        left = sorted(p for d in self.retired.iterdir() if d.is_dir() for p in d.iterdir())
        if not left:
            shutil.rmtree(self.retired, ignore_errors=True)
        return left

    def remove_services(self, placement: Placement, services: Iterable[str]) -> None:
        """Remove the directories of `services` (every deployment of them)."""
        names = {sanitize_label(s) for s in services}
        for root in self.roots:
            directory = root / scope(placement)
            if directory.is_dir():
                for child in directory.iterdir():
                    if child.name.rpartition("-")[0] in names:
                        shutil.rmtree(child, ignore_errors=True)

    def remove_project(self, placement: Placement) -> None:
        for root in self.roots:
            shutil.rmtree(root / scope(placement), ignore_errors=True)


def needs_files(container: ContainerInfo) -> bool:
    """Whether a container may still read its secret files: anything but a finished one-off
    job (it never starts again; a later `up` runs a new container)."""
    return not (container.is_job and container.status in ("exited", "dead"))


def _dir_name(service: str, deployment: str) -> str:
    return f"{sanitize_label(service)}-{deployment}"


def _remove_unused(directory: Path, used: set[str]) -> None:
    """Remove the children of `directory` not in `used`, and `directory` once empty."""
    if not directory.is_dir():
        return
    for child in directory.iterdir():
        if child.name not in used:
            shutil.rmtree(child, ignore_errors=True)
    with contextlib.suppress(OSError):
        directory.rmdir()  # only when empty


def _write_one(path: Path, item: SecretFile, service: Service, value: str) -> None:
    write_private(path, value)
    uid = _number(item.uid) if item.uid is not None else _number(
        (service.user or "").partition(":")[0])
    gid = _number(item.gid) if item.gid is not None else None
    if uid is not None or gid is not None:
        with contextlib.suppress(OSError):
            os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    os.chmod(path, item.mode)


def _number(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None
