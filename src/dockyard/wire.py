"""The project as it travels from a client to a server: normalized, and naming no file.

The client loads the Compose files, resolves everything that reads a file (`env_file`,
`label_file`, `extends`, `include`, `.env`), packs each build context, and sends the
*normalized* project. The server validates that document with its own rules (`check_wire`)
before loading it, and refuses any key that would make it open a path: a tenant must never be
able to make the server read its own files. `to_wire` is the client's half; a document it makes
always passes `check_wire`.

Decisions:
- A top-level secret or config read from a file or an environment variable is not sent: only
  external secrets (stored configs) are mounted by deployments (the `secret-not-external`
  warning says so), and the server must not read the client's paths or its own environment.
  Services' references to them are dropped with them.
- Project files (a bind mount of a path inside the project directory, a config read from a
  `file:` or given as `content:`) are packed and uploaded by the client like build contexts
  (`dockyard.build.project_files`); the service carries them under `x-dockyard-files` as
  (digest, member path, target, read-only) entries, never as host paths. A bind mount of any
  other host path is sent as it is, absolute: the server refuses it at admission unless its
  operator allows the path (`--allow-host-paths`).
- A build is sent as its uploaded context (`context: "."`) with a relative Dockerfile inside
  it; `additional_contexts`, `ssh` and build `secrets` name more of the client's files and are
  refused until they are uploaded too.
"""

from __future__ import annotations

import copy
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.diagnostics import Diagnostic, Location, error

_SERVICE_PATH_KEYS = ("env_file", "label_file", "extends")
_BUILD_PATH_KEYS = ("additional_contexts", "ssh", "secrets")
_SOURCE_KEYS = ("file", "environment")
_CONFIG_SOURCE_KEYS = ("file", "environment", "content")
FILES_KEY = "x-dockyard-files"  # a service's project files, as the wire carries them
_FILE_KEYS = frozenset({"digest", "path", "target", "read_only", "source"})
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class ServiceFiles:
    """What the client packed for one service: the wire entries (`FILES_KEY`), and the bind
    mounts (by index) and config references (by name) they stand for."""

    entries: tuple[Mapping[str, Any], ...]
    volumes: frozenset[int] = frozenset()
    configs: frozenset[str] = frozenset()
_HINT = ("send the normalized project that `dockyard compose up` (or `compose config "
         "--json`) makes: the client resolves files, the server never opens one")


def _problem(message: str, path: str, hint: str = _HINT) -> Diagnostic:
    return error("server-path", message, Location(path=path), hint)


def check_wire(data: Mapping[str, Any]) -> list[Diagnostic]:
    """Every key of a submitted project that names a path the server would open."""
    return list(_wire_problems(data))


def _wire_problems(data: Mapping[str, Any]) -> Iterator[Diagnostic]:
    if "include" in data:
        yield _problem("`include` names files; it is resolved by the client", "include")
    for kind in ("secrets", "configs"):
        for name, spec in _mapping(data.get(kind)).items():
            for key in _SOURCE_KEYS if kind == "secrets" else _CONFIG_SOURCE_KEYS:
                if isinstance(spec, Mapping) and key in spec:
                    yield _problem(f"{kind[:-1]} {name!r} is read from `{key}`, which the "
                                   "server does not open", f"{kind}.{name}.{key}")
    for name, service in _mapping(data.get("services")).items():
        if not isinstance(service, Mapping):
            continue
        for key in _SERVICE_PATH_KEYS:
            if key in service:
                yield _problem(f"service {name!r}: `{key}` names files; it is resolved by "
                               "the client", f"services.{name}.{key}")
        build = service.get("build")
        if isinstance(build, Mapping):
            yield from _build_problems(name, build)
        elif build is not None:
            yield _problem(f"service {name!r}: `build` must be the long form with "
                           "`context: .`", f"services.{name}.build")
        yield from _files_problems(name, service.get(FILES_KEY))
        for index, volume in enumerate(service.get("volumes") or ()):
            mount_type = volume.get("type") if isinstance(volume, Mapping) else None
            source = volume.get("source") if isinstance(volume, Mapping) else None
            if mount_type == "bind" and isinstance(source, str) and source.startswith("/") \
                    and "\0" not in source:
                continue  # a host path: admission refuses it unless the operator allows it
            if mount_type not in ("volume", "tmpfs"):
                yield _problem(f"service {name!r}: volume {index} is not a named volume or "
                               "tmpfs in long form", f"services.{name}.volumes[{index}]",
                               "use a named volume; host paths never reach a server")


def _files_problems(name: str, entries: Any) -> Iterator[Diagnostic]:
    """The project files of a service: each an uploaded digest, a path inside it, and an
    absolute target."""
    if entries is None:
        return
    where = f"services.{name}.{FILES_KEY}"
    if not isinstance(entries, list):
        yield _problem(f"service {name!r}: `{FILES_KEY}` must be a list", where)
        return
    for index, entry in enumerate(entries):
        at = f"{where}[{index}]"
        if not isinstance(entry, Mapping) or set(entry) - _FILE_KEYS:
            yield _problem(f"service {name!r}: project file {index} is not an entry of "
                           f"{sorted(_FILE_KEYS)}", at)
            continue
        digest, path, target = entry.get("digest"), entry.get("path"), entry.get("target")
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            yield _problem(f"service {name!r}: project file {index} has no uploaded digest "
                           "(sha256:<64 hex>)", f"{at}.digest")
        if not isinstance(path, str) or _escapes(path):
            yield _problem(f"service {name!r}: project file {index} names {path!r}, not a "
                           "path inside its upload", f"{at}.path")
        if not isinstance(target, str) or not target.startswith("/") or "\0" in target:
            yield _problem(f"service {name!r}: project file {index} has no absolute target",
                           f"{at}.target")
        if not isinstance(entry.get("read_only", False), bool) or \
                not isinstance(entry.get("source", ""), str):
            yield _problem(f"service {name!r}: project file {index}: `read_only` must be a "
                           "boolean and `source` a string", at)


def _build_problems(name: str, build: Mapping[str, Any]) -> Iterator[Diagnostic]:
    where = f"services.{name}.build"
    if build.get("context", ".") != ".":
        yield _problem(f"service {name!r}: the build context must be the uploaded one "
                       "(`context: .`)", f"{where}.context")
    dockerfile = build.get("dockerfile")
    if dockerfile is not None and (not isinstance(dockerfile, str) or _escapes(dockerfile)):
        yield _problem(f"service {name!r}: the Dockerfile {dockerfile!r} is not a relative "
                       "path inside the build context", f"{where}.dockerfile",
                       "name the Dockerfile relative to the context, without `..`")
    for key in _BUILD_PATH_KEYS:
        if key in build:
            yield _problem(f"service {name!r}: `build.{key}` names more of the client's "
                           "files; only the build context is uploaded", f"{where}.{key}",
                           f"remove `build.{key}`, or copy what it names into the context")


def _escapes(path: str) -> bool:
    normal = posixpath.normpath(path.replace("\\", "/"))
    return path.startswith(("/", "\\")) or normal == ".." or normal.startswith("../") \
        or "\0" in path


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def to_wire(normalized: Mapping[str, Any], files: Mapping[str, ServiceFiles] | None = None
            ) -> tuple[dict[str, Any], list[Diagnostic]]:
    """The client's half: the normalized project (`project_to_dict`) as it is sent.

    Returns the document and the errors that stop it from being sent (a build that needs
    more files than its context). Build contexts become `.` (they are uploaded by digest);
    `files` (`build.project_files.pack_project_files`) replace the bind mounts and config
    references they were packed from.
    """
    data = copy.deepcopy(dict(normalized))
    dropped: dict[str, set[str]] = {"secrets": set(), "configs": set()}
    for kind, names in dropped.items():
        resources = data.get(kind)
        if not isinstance(resources, dict):
            continue
        keys = _SOURCE_KEYS if kind == "secrets" else _CONFIG_SOURCE_KEYS
        for name in [n for n, spec in resources.items()
                     if isinstance(spec, Mapping) and not spec.get("external")
                     and any(k in spec for k in keys)]:
            names.add(name)
            del resources[name]
        if not resources:
            del data[kind]
    for service_name, service in _mapping(data.get("services")).items():
        if not isinstance(service, dict):
            continue
        for key in _SERVICE_PATH_KEYS:
            service.pop(key, None)
        packed = (files or {}).get(service_name)
        if packed is not None:
            volumes = [v for i, v in enumerate(service.get("volumes") or ())
                       if i not in packed.volumes]
            if volumes:
                service["volumes"] = volumes
            else:
                service.pop("volumes", None)
            if packed.entries:
                service[FILES_KEY] = [dict(e) for e in packed.entries]
        for kind, names in dropped.items():
            refs = service.get(kind)
            if isinstance(refs, list) and names:
                kept = [r for r in refs if _ref_source(r) not in names]
                if kept:
                    service[kind] = kept
                else:
                    del service[kind]
        if isinstance(service.get("build"), dict):
            service["build"]["context"] = "."
    data.pop("include", None)
    return data, check_wire(data)


def _ref_source(ref: Any) -> str:
    return str(ref.get("source")) if isinstance(ref, Mapping) else str(ref)
