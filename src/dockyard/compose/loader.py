"""Loading a Compose project: files -> interpolation -> extends/include -> merge -> `Project`.

This is the pipeline of Compose v2 (the reference), written as functions over plain data, with
every problem collected as a `Diagnostic` located at its file, line and key path. Validation of
Dockyard's own rules (`dockyard.compose.validate`) runs on the typed result; nothing is returned
unless the whole project is valid.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.compose.interpolation import (
    escape_template,
    interpolate_tree,
)
from dockyard.compose.merge import TaggedFile, extract_tags, merge_extended, merge_file
from dockyard.compose.models import Project
from dockyard.compose.normalize import (
    Normalizer,
    expand_home,
    key_value_list,
    make_project,
)
from dockyard.compose.options import LoadOptions
from dockyard.compose.paths import KeyPath
from dockyard.compose.schema import check_project
from dockyard.compose.session import (
    Abort,
    Report,
    Session,
    load_project_name,
    locate_project,
    read_env_file,
)
from dockyard.compose.validate import validate_project
from dockyard.diagnostics import Diagnostic, Location, Severity, dedupe
from dockyard.errors import ProjectInvalid

__all__ = ["LoadResult", "load_project", "load_project_name"]


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A valid project and the warnings found while loading it (each reported once)."""

    project: Project
    warnings: tuple[Diagnostic, ...]


def load_project(options: LoadOptions) -> LoadResult:
    """Load, normalize and validate a Compose project. Raises `ProjectInvalid` with every error."""
    session = Session(home=options.environ.get("HOME"))
    try:
        project = _load(options, session)
    except Abort:
        project = None
    diagnostics = dedupe(session.diagnostics)
    if project is None or any(d.is_error for d in diagnostics):
        raise ProjectInvalid(sorted(diagnostics, key=Diagnostic.sort_key))
    return LoadResult(project, tuple(d for d in diagnostics if not d.is_error))


def _load(options: LoadOptions, session: Session) -> Project | None:
    files, project_dir, variables, name = locate_project(options, session)

    merged: dict[str, Any] = {}
    for path in files:
        loaded = _load_file(path, variables, project_dir, session)
        if loaded is not None:
            merged = merge_file(merged, loaded)
    if session.unreadable:
        # Validating the rest would report problems that are only due to the missing file.
        raise Abort()

    profiles = options.profiles or tuple(
        p.strip() for p in variables.get("COMPOSE_PROFILES", "").split(",") if p.strip()
    )
    services = dict(merged.get("services") or {})
    enabled = {n: s for n, s in services.items() if _profile_enabled(s or {}, profiles)}
    disabled = tuple(sorted(set(services) - set(enabled)))
    merged["services"] = enabled

    report = session.located_reporter()
    environments = {
        n: _service_environment(n, s or {}, variables, session) for n, s in enabled.items()
    }
    normalizer = Normalizer(report, name, project_dir, variables, session.home)
    project = make_project(normalizer, merged, environments, tuple(files), disabled)
    for diagnostic in validate_project(project, merged, session.locate,
                                       frozenset(session.incomplete)):
        session.diagnostics.append(diagnostic)
    return project


def _load_file(path: str, variables: Mapping[str, str], base_dir: str, session: Session,
               chain: tuple[str, ...] = (), fill_context: bool = False
               ) -> TaggedFile | None:
    parsed = session.parse(path)
    if parsed is None:
        return None
    data, lines = parsed
    session.sources.append((path, lines))
    file_report = session.reporter(path, lines)
    if data is None:
        file_report("empty-file", "the Compose file is empty", (),
                    "define at least `services:` with one service")
        return None
    if not isinstance(data, dict):
        file_report("schema", "a Compose file must be a mapping at the top level", (),
                    "start the file with `services:`")
        return None
    # A fresh copy (later stages edit it in place) with the merge tags moved out of it.
    tagged = extract_tags(copy.deepcopy(data))
    data = tagged.data
    bad_paths: list[KeyPath] = []

    def report(code: str, message: str, key_path: KeyPath, hint: str | None) -> None:
        if code in ("schema", "unknown-key"):
            bad_paths.append(key_path)
            if len(key_path) > 1 and key_path[0] == "services":
                session.incomplete.add(str(key_path[1]))
        file_report(code, message, key_path, hint)

    if "version" in data:
        session.diagnostics.append(Diagnostic(
            Severity.WARNING, "version-obsolete",
            "the top-level `version` key is obsolete and ignored",
            Location(path, lines.get(("version",)), "version"), "remove it"))
    data = dict(interpolate_tree(data, variables, report))
    check_project(data, report)
    # Remove what has the wrong shape (already reported), so the later stages, which trust the
    # shape, still run and report every other problem of the project in the same run.
    _prune(data, bad_paths)
    file_dir = os.path.dirname(path)
    _rebase_paths(data, base_dir, file_dir, session.home, fill_context)
    services = data.get("services")
    if isinstance(services, dict):
        resolved: dict[str, Any] = {}
        for name in services:
            resolved[name] = _resolve_extends(name, services, path, variables, session,
                                              (*chain, f"{path}:{name}"), tagged)
        data["services"] = resolved
    for index, entry in enumerate(data.pop("include", None) or []):
        _apply_include(data, entry, index, file_dir, variables, session, report,
                       (*chain, path))
    return TaggedFile(data, tagged.resets, tagged.overrides)


_PRUNED: Any = object()


def _prune(data: dict[str, Any], paths: list[KeyPath]) -> None:
    for path in paths:
        if not path:
            continue
        parent: Any = data
        for part in path[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        last = path[-1]
        if isinstance(parent, dict) and last in parent:
            parent[last] = _PRUNED
        elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
            parent[last] = _PRUNED
    if paths:
        _drop_pruned(data)


def _drop_pruned(value: Any) -> Any:
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is _PRUNED]:
            del value[key]
        for item in value.values():
            _drop_pruned(item)
    elif isinstance(value, list):
        value[:] = [v for v in value if v is not _PRUNED]
        for item in value:
            _drop_pruned(item)
    return value


def _is_local_path(text: str) -> bool:
    return text.startswith((".", "/", "~"))


def _abs(base: str, path: str, home: str | None) -> str:
    if "://" in path or path.startswith("git@"):
        return path
    return os.path.normpath(os.path.join(base, expand_home(path, home)))


def _rebase_paths(data: dict[str, Any], base_dir: str, file_dir: str, home: str | None,
                  fill_context: bool = False) -> None:
    """Make a file's relative paths absolute, so merging files from other folders is safe.

    A build without `context` keeps none (an earlier file may set it) unless `fill_context`:
    an included project's default context is its own directory.
    """
    for service in (data.get("services") or {}).values():
        if not isinstance(service, dict):
            continue
        build = service.get("build")
        if isinstance(build, str):
            service["build"] = {"context": _abs(base_dir, build, home)}
        elif isinstance(build, dict):
            context = build.get("context")
            if isinstance(context, str):
                build["context"] = _abs(base_dir, context, home)
            elif fill_context:
                build["context"] = base_dir
            _rebase_contexts(build, base_dir, home)
        for key in ("env_file", "label_file"):
            value = service.get(key)
            if isinstance(value, str):
                service[key] = [_abs(base_dir, value, home)]
            elif isinstance(value, list):
                service[key] = [
                    _abs(base_dir, v, home) if isinstance(v, str) else
                    {**v, "path": _abs(base_dir, v["path"], home)}
                    if isinstance(v, dict) and isinstance(v.get("path"), str) else v
                    for v in value
                ]
        volumes = service.get("volumes")
        if isinstance(volumes, list):
            for i, volume in enumerate(volumes):
                if isinstance(volume, str):
                    source, sep, rest = volume.partition(":")
                    if sep and _is_local_path(source):
                        volumes[i] = f"{_abs(base_dir, source, home)}:{rest}"
                elif isinstance(volume, dict) and volume.get("type") == "bind" and isinstance(
                    volume.get("source"), str
                ):
                    volume["source"] = _abs(base_dir, volume["source"], home)
        develop = service.get("develop")
        for rule in (develop.get("watch") if isinstance(develop, dict) else None) or []:
            if isinstance(rule, dict) and isinstance(rule.get("path"), str):
                rule["path"] = _abs(base_dir, rule["path"], home)
        extends = service.get("extends")
        if isinstance(extends, dict) and isinstance(extends.get("file"), str):
            extends["file"] = _abs(file_dir, extends["file"], home)
    for kind in ("secrets", "configs"):
        for spec in (data.get(kind) or {}).values():
            if isinstance(spec, dict) and isinstance(spec.get("file"), str):
                spec["file"] = _abs(base_dir, spec["file"], home)


def _rebase_contexts(build: dict[str, Any], base_dir: str, home: str | None) -> None:
    """`build.additional_contexts` paths made absolute, as Compose does; an image
    (`docker-image://`), a URL, a git remote or another service (`service:NAME`) is kept."""
    def rebase(value: Any) -> Any:
        if not isinstance(value, str) or value.startswith("service:"):
            return value
        return _abs(base_dir, value, home)

    contexts = build.get("additional_contexts")
    if isinstance(contexts, dict):
        build["additional_contexts"] = {k: rebase(v) for k, v in contexts.items()}
    elif isinstance(contexts, list):
        build["additional_contexts"] = [
            f"{k}={rebase(v)}" if sep else item
            for item in contexts if isinstance(item, str)
            for k, sep, v in [item.partition("=")]
        ]


def _resolve_extends(name: str, services: Mapping[str, Any], path: str,
                     variables: Mapping[str, str], session: Session,
                     chain: tuple[str, ...], tags: TaggedFile) -> Any:
    service = services.get(name)
    if not isinstance(service, dict) or "extends" not in service:
        return service
    extends = service["extends"]
    ref = {"service": extends} if isinstance(extends, str) else dict(extends)
    base_name = ref.get("service")
    location = session.locate(("services", name, "extends"))
    if not isinstance(base_name, str):
        return service
    base_file = ref.get("file")
    if isinstance(base_file, str):
        key = f"{base_file}:{base_name}"
        if key in chain:
            session.add("extends-cycle", f"services.{name} extends itself through "
                        f"{' -> '.join(chain)} -> {key}", location,
                        "remove one `extends` of the cycle")
            return service
        loaded = _load_file(base_file, variables, os.path.dirname(base_file), session,
                            (*chain, key), fill_context=True)
        if loaded is None:
            return service
        base_services = loaded.data.get("services") or {}
        base = base_services.get(base_name)
    else:
        key = f"{path}:{base_name}"
        if key in chain:
            session.add("extends-cycle", f"services.{name} extends itself through "
                        f"{' -> '.join(c.rsplit(':', 1)[-1] for c in (*chain, key))}",
                        location, "remove one `extends` of the cycle")
            return service
        base = _resolve_extends(base_name, services, path, variables, session, (*chain, key),
                                tags)
    if not isinstance(base, dict):
        where = f" in {base_file}" if base_file else ""
        session.add("extends-unknown", f"services.{name} extends {base_name!r}, which is not "
                    f"a service{where}", location,
                    f"define the service {base_name!r} or fix the name in `extends`")
        session.incomplete.add(name)
        return service
    own = {k: v for k, v in service.items() if k != "extends"}
    base = {k: v for k, v in base.items() if k != "extends"}
    return merge_extended(base, own, ("services", name), tags.resets, tags.overrides)


def _apply_include(data: dict[str, Any], entry: Any, index: int, file_dir: str,
                   variables: Mapping[str, str], session: Session, report: Report,
                   chain: tuple[str, ...] = ()) -> None:
    spec = {"path": entry} if isinstance(entry, str) else dict(entry or {})
    paths = spec.get("path") or []
    paths = [paths] if isinstance(paths, str) else list(paths)
    if not paths:
        return
    files = [_abs(file_dir, p, session.home) for p in paths]
    project_dir = _abs(file_dir, spec["project_directory"], session.home) if spec.get(
        "project_directory") else os.path.dirname(files[0])
    env_files = spec.get("env_file")
    env_list = [env_files] if isinstance(env_files, str) else list(env_files or [])
    included_env: dict[str, str] = {}
    if env_list:
        for env_file in env_list:
            included_env.update(read_env_file(_abs(file_dir, env_file, session.home), variables,
                                               session, True))
    else:
        included_env = read_env_file(os.path.join(project_dir, ".env"), variables, session,
                                      False)
    inc_vars = {**included_env, **variables}
    included: dict[str, Any] = {}
    for file in files:
        if not os.path.isfile(file):
            report("file-not-found", f"the included file {file} does not exist",
                   ("include", index), "fix the path; it is relative to the including file")
            return
        if file in chain:
            files_in_chain = [f for f in chain if os.path.isfile(f)]  # not extends entries
            cycle = " -> ".join(os.path.relpath(f, file_dir) for f in (*files_in_chain, file))
            report("include-cycle", f"an include cycle: {cycle}",
                   ("include", index), "remove the include that leads back to a file "
                   "already being included")
            return
        loaded = _load_file(file, inc_vars, project_dir, session, chain, fill_context=True)
        if loaded is not None:
            included = merge_file(included, loaded)
    for section in ("services", "networks", "volumes", "secrets", "configs", "models"):
        for key, value in (included.get(section) or {}).items():
            existing = (data.get(section) or {})
            if key in existing and existing[key] != value:
                report("include-conflict", f"{section}.{key} is defined both here and in the "
                       f"included {files[0]}", (section, key),
                       "rename one of them: an included project cannot be overridden")
                continue
            data.setdefault(section, {})
            if data[section] is None:
                data[section] = {}
            data[section][key] = value


def _profile_enabled(service: Mapping[str, Any], active: tuple[str, ...]) -> bool:
    profiles = service.get("profiles") or []
    if not profiles:
        return True
    return "*" in active or any(p in active for p in profiles)


def _service_environment(name: str, service: Mapping[str, Any], variables: Mapping[str, str],
                         session: Session) -> dict[str, str | None]:
    """`env_file` entries in order, then `environment` on top. A bare KEY stays None: a config."""
    env: dict[str, str | None] = {}
    for index, entry in enumerate(service.get("env_file") or []):
        raw = False
        if isinstance(entry, dict):
            path = entry.get("path")
            required = entry.get("required", True)
            required = required if isinstance(required, bool) else str(required) == "true"
            raw = entry.get("format") == "raw"
        else:
            path, required = entry, True
        if not isinstance(path, str):
            continue
        origin = session.locate(("services", name, "env_file", index))
        values = read_env_file(path, variables, session, bool(required), origin, raw)
        env.update({k: escape_template(v) for k, v in values.items()})
    env.update(key_value_list(service.get("environment")))
    return env
