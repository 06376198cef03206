"""Project files on the server: unpacked from their uploads and bind-mounted into containers.

A service's project files (`x-dockyard-files` on the wire: bind mounts inside the project
directory, file and content configs) arrive as uploads in the context store, checked like
build contexts (`build.safety`: no member outside the archive, no device, the size limits)
and kept per account. Before a service's containers start, each of its files is unpacked
into a directory of its own, per account and project (the placement's scope), service and
deployment: `<data>/project-files/<scope>/<service>-<deployment>/<index>/`.

- A read-only mount (`:ro`, every config) is mounted read-only: the container cannot change
  what the project deployed.
- A writable mount gets that same per-deployment copy, writable, shared by the replicas the
  deployment started. Writes stay on the server and are never synced back. The copy lives as
  long as a container uses it: a no-op `up` keeps the containers and so the data; a service
  replaced (its files or settings changed) starts from a fresh copy of what was uploaded.
- A host path outside the project is mounted only when it is under a directory the
  operator allowed (`--allow-host-paths`, byoc only); admission refuses the others.

A directory goes when no container of its service and deployment is left (after each
deployment, and at `down`).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.compose.models import Project, Service
from dockyard.errors import DockyardError
from dockyard.naming import sanitize_label
from dockyard.runtime.driver import ContainerInfo, MountSpec
from dockyard.runtime.specs import Placement, scope
from dockyard.server.contexts import ContextStore
from dockyard.wire import FILES_KEY


@dataclass(frozen=True, slots=True)
class ProjectFile:
    """One file or directory a service mounts from its uploaded project files."""

    digest: str
    path: str  # the member of the upload to mount ("." for all of it)
    target: str
    read_only: bool
    source: str  # where it came from in the project, for messages (`./conf/nginx.conf`)


def project_files(service: Service) -> list[ProjectFile]:
    """The service's project files (the wire was checked: `wire.check_wire`)."""
    entries: Any = service.extensions.get(FILES_KEY) or []
    return [ProjectFile(str(e["digest"]), str(e["path"]), str(e["target"]),
                        bool(e.get("read_only", False)), str(e.get("source", "")))
            for e in entries if isinstance(e, Mapping)]


def project_digests(project: Project) -> list[str]:
    """Every upload the project's services mount (what garbage collection must keep)."""
    return sorted({f.digest for s in project.services.values() for f in project_files(s)})


def host_path_allowed(path: str, allowed: Sequence[str]) -> bool:
    """Whether the host path is one of the operator's allowed directories or below one."""
    normal = posixpath.normpath(path)
    return any(normal == root or normal.startswith(root.rstrip("/") + "/") for root in allowed)


def host_mounts(service: Service, allowed: Sequence[str]) -> list[MountSpec]:
    """The service's host bind mounts the operator allows (admission refused the others)."""
    return [MountSpec(type="bind", source=m.source, target=m.target, read_only=m.read_only)
            for m in service.volumes
            if m.is_bind and m.source and host_path_allowed(m.source, allowed)]


class ProjectFileCopies:
    """The unpacked project files of every project of the server, under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def service_dir(self, placement: Placement, service: str, deployment: str) -> Path:
        return self.root / scope(placement) / _dir_name(service, deployment)

    def mounts(self, placement: Placement, service: Service, deployment: str,
               contexts: ContextStore, owner: str) -> tuple[MountSpec, ...]:
        """Unpack the service's files for `deployment` (once: a later batch of replicas of
        the same deployment shares the copy); the mounts that put them in its containers."""
        files = project_files(service)
        if not files:
            return ()
        directory = self.service_dir(placement, service.name, deployment)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        mounts: list[MountSpec] = []
        for index, item in enumerate(files):
            copy = directory / str(index)
            if not copy.is_dir():
                _unpack(contexts, item, owner, directory, copy)
                if not item.read_only:
                    _own(copy, service.user)
            source = copy if item.path == "." else copy / item.path
            mounts.append(MountSpec(type="bind", source=str(source), target=item.target,
                                    read_only=item.read_only))
        return tuple(mounts)

    def prune(self, placement: Placement, containers: Iterable[ContainerInfo]) -> None:
        """Remove the copies no container of the project uses any more."""
        used = {_dir_name(c.service, c.deployment) for c in containers}
        directory = self.root / scope(placement)
        if not directory.is_dir():
            return
        for child in directory.iterdir():
            if child.name not in used:
                shutil.rmtree(child, ignore_errors=True)
        with contextlib.suppress(OSError):
            directory.rmdir()  # only when empty

    def remove_services(self, placement: Placement, services: Iterable[str]) -> None:
        names = {sanitize_label(s) for s in services}
        directory = self.root / scope(placement)
        if directory.is_dir():
            for child in directory.iterdir():
                if child.name.rpartition("-")[0] in names:
                    shutil.rmtree(child, ignore_errors=True)

    def remove_project(self, placement: Placement) -> None:
        shutil.rmtree(self.root / scope(placement), ignore_errors=True)


class ProjectFilesMissing(DockyardError):
    """An upload a service mounts is gone (admission checked it was there)."""


def _unpack(contexts: ContextStore, item: ProjectFile, owner: str, directory: Path,
            copy: Path) -> None:
    """Unpack the upload beside `copy`, then move it into place (a crash leaves no half)."""
    handle = contexts.open(item.digest, owner)
    if handle is None:
        raise ProjectFilesMissing(f"the project files {item.source or item.digest} are not "
                                  "on the server (never uploaded, or collected)",
                                  hint="run `dockyard compose up` again, which uploads them")
    staging = Path(tempfile.mkdtemp(dir=directory, prefix=".unpack-"))
    try:
        with handle, tarfile.open(fileobj=handle, mode="r:") as tar:
            # Checked at upload (build.safety); the `data` filter refuses anything unsafe again.
            tar.extractall(staging, filter="data")
            for member in tar.getmembers():  # the modes packed (a config's 0400), which the
                if member.isfile():  # filter widens; never setuid nor writable by others
                    os.chmod(staging / member.name, member.mode & 0o755)
        os.chmod(staging, 0o755)
        try:
            os.rename(staging, copy)
        except OSError:  # another batch of the same deployment unpacked it first
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _own(copy: Path, user: str | None) -> None:
    """Give a writable copy to the service's numeric `user` (`uid[:gid]`), as a host directory
    owned by that user would be; a name, or none, leaves it the server's (root's, usually)."""
    uid_text, _, gid_text = (user or "").partition(":")
    if not uid_text.isdigit() or (gid_text and not gid_text.isdigit()):
        return
    uid, gid = int(uid_text), int(gid_text) if gid_text else -1
    with contextlib.suppress(OSError):
        for path in (copy, *copy.rglob("*")):
            os.lchown(path, uid, gid)


def _dir_name(service: str, deployment: str) -> str:
    return f"{sanitize_label(service)}-{deployment}"
