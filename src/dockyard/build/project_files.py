"""Project files: the bind mounts and configs a project deploys with it (the client side).

A bind mount whose source is inside the project directory (`./conf/nginx.conf:/etc/x:ro`,
`./static:/www`), and a Compose config read from a `file:` or given as `content:`, are packed
as build contexts are (`build.context`): a reproducible tar with a digest, a directory's
`.dockerignore` honoured, uploaded once per digest. Each mount is its own pack, so a changed
file changes the digest of exactly the mounts that hold it, and so replaces exactly the
services that mount it (the plan's `project files` part).

A pack holds a directory's entries relative to it (mounted as `.`), or one file under its own
name (mounted as that member). A config is always read-only, with the `mode` its reference
asks (0444 by default), at its `target` (default `/<config name>`, as Compose mounts it).
A missing source of the short syntax is an empty directory, as Docker makes one for it
(`create_host_path`); of the long syntax, an error. A bind mount of a path outside the
project directory is not packed: it is sent as it is and the server refuses it unless its
operator allows the path.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from dockyard.build.context import (
    BuildContextError,
    PackedContext,
    directory_entries,
    pack_entries,
)
from dockyard.compose.models import FileReference, Project, Service
from dockyard.wire import ServiceFiles

DEFAULT_CONFIG_MODE = 0o444


@dataclass(frozen=True, slots=True)
class ProjectFiles:
    """Every service's packed files and the packs to upload (one per distinct digest)."""

    services: dict[str, ServiceFiles]
    packs: tuple[PackedContext, ...]


def inside(directory: str, path: str) -> bool:
    """Whether `path` (absolute, symbolic links resolved) is `directory` or below it."""
    root = os.path.realpath(directory)
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def pack_path(path: str) -> tuple[PackedContext, str]:
    """Pack a directory (its `.dockerignore` honoured) or one file; the pack and the member
    to mount (`.` for a directory)."""
    real = os.path.realpath(path)
    if os.path.isdir(real):
        return pack_entries(real, directory_entries(real)), "."
    if not os.path.isfile(real):
        raise BuildContextError(f"the project file {path} does not exist",
                                hint="create it, or fix the mount's source in the Compose file")
    name = os.path.basename(real)
    return pack_entries(os.path.dirname(real), [name]), name


def pack_content(name: str, content: bytes, mode: int) -> PackedContext:
    """A pack of one file `name` holding `content`, with `mode` (a config's)."""
    import hashlib  # here, as in `pack_entries`: only a deployment with files packs any
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.size = len(content)
        info.mode = mode & 0o777
        tar.addfile(info, io.BytesIO(content))
    data = buffer.getvalue()
    return PackedContext(data, "sha256:" + hashlib.sha256(data).hexdigest(), 1, len(content))


def _creates_host_path(extra: object) -> bool:
    """Whether a missing source is made as an empty directory, as Docker makes it for the
    short syntax (`bind.create_host_path`, which Compose sets for it)."""
    bind = extra.get("bind") if isinstance(extra, Mapping) else None
    return isinstance(bind, Mapping) and bind.get("create_host_path") in (True, "true")


def _relative(project: Project, path: str) -> str:
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(project.working_dir))
    return "." if rel == "." else "./" + rel.replace(os.sep, "/")


def _config_target(ref: FileReference) -> str:
    target = ref.target or ref.source
    return target if target.startswith("/") else "/" + target


def _config_files(project: Project, service: Service
                  ) -> Iterator[tuple[FileReference, PackedContext, str, str]]:
    """(reference, pack, member, source label) of each config the service mounts."""
    for ref in service.configs:
        resource = project.configs.get(ref.source)
        if resource is None or resource.external:
            continue
        settings = resource.settings
        mode = ref.mode if ref.mode is not None else DEFAULT_CONFIG_MODE
        member = ref.source
        if isinstance(settings.get("content"), str):
            packed = pack_content(member, str(settings["content"]).encode(), mode)
            yield ref, packed, member, f"configs.{ref.source}.content"
        elif isinstance(settings.get("file"), str):
            path = str(settings["file"])
            if not inside(project.working_dir, path):
                raise BuildContextError(
                    f"config {ref.source!r} reads {path}, outside the project directory "
                    f"{project.working_dir}",
                    hint="copy the file into the project directory and name it `./...`")
            with open(os.path.realpath(path), "rb") as handle:
                content = handle.read()
            yield ref, pack_content(member, content, mode), member, _relative(
                project, path)


def pack_project_files(project: Project) -> ProjectFiles:
    """Pack what each service mounts from the project directory, and its file configs."""
    services: dict[str, ServiceFiles] = {}
    packs: dict[str, PackedContext] = {}
    for name, service in project.services.items():
        entries: list[dict[str, object]] = []
        volumes: set[int] = set()
        configs: set[str] = set()
        for index, mount in enumerate(service.volumes):
            if not mount.is_bind or not mount.source or \
                    not inside(project.working_dir, mount.source):
                continue
            if not os.path.lexists(mount.source) and _creates_host_path(mount.extra):
                packed, member = pack_entries(project.working_dir, []), "."  # an empty dir
            else:
                packed, member = pack_path(mount.source)
            packs.setdefault(packed.digest, packed)
            volumes.add(index)
            entries.append({"digest": packed.digest, "path": member, "target": mount.target,
                            "read_only": mount.read_only,
                            "source": _relative(project, mount.source)})
        for ref, packed, member, label in _config_files(project, service):
            packs.setdefault(packed.digest, packed)
            configs.add(ref.source)
            entries.append({"digest": packed.digest, "path": member,
                            "target": _config_target(ref), "read_only": True,
                            "source": label})
        if entries:
            services[name] = ServiceFiles(tuple(entries), frozenset(volumes),
                                          frozenset(configs))
    return ProjectFiles(services, tuple(packs.values()))

