"""Where each environment variable of a service is written, and what filled it in (pure).

`dockyard config resolve` explains a service's environment: a value written in a Compose file
(maybe with `${VAR}` filled from the shell or `.env`), one read from an `env_file`, or a config
(`dockyard.secrets.env_resolve` adds those). The loader keeps only the result, so this runs the
loader's own file stage again (`loader._load_file`: interpolation, `extends`, `include`, paths)
with variables whose values carry invisible markers naming the variable, merges the files as the
loader does, and reads the markers back. The values themselves always come from the real load;
this only says where they came from.

An empty variable is not marked (a mark would make `${VAR:-default}` take it), so a value built
from one reads as written in the Compose file, as does a `${VAR:-default}` whose default was
used: both are, in effect, the file's own text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.compose.loader import _load_file
from dockyard.compose.merge import merge_file
from dockyard.compose.normalize import key_value_list
from dockyard.compose.options import LoadOptions
from dockyard.compose.session import Abort, Session, locate_project, read_env_file

SHELL = "environment"  # a variable of the environment the CLI runs in
PROJECT_NAME = "the project's name"  # COMPOSE_PROJECT_NAME, as the loader sets it

_START, _SEP, _END = "\x02", "\x1f", "\x03"
_MARK = re.compile(f"{_START}([^{_SEP}]*){_SEP}")
_MARKS = re.compile(f"[{_START}{_END}]|{_SEP}")


@dataclass(frozen=True, slots=True)
class Variable:
    """A variable interpolated into a value: its name and where its value was found (`SHELL`,
    an env file as written, or `PROJECT_NAME`)."""

    name: str
    source: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "from": self.source}


@dataclass(frozen=True, slots=True)
class EnvOrigin:
    """Where one environment variable of a service is set.

    `kind` is `compose` (a Compose file's `environment`, `file` and `line` say where) or
    `env_file` (`file` is the env file). `variables` were interpolated into a Compose value.
    """

    kind: str
    file: str | None = None
    line: int | None = None
    variables: tuple[Variable, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "file": self.file, "line": self.line,
                "variables": [v.to_json() for v in self.variables]}


def environment_origins(options: LoadOptions) -> dict[str, dict[str, EnvOrigin]]:
    """service → variable → where it is set, for every service the files define. Problems are
    not reported here (`load_project` reports them); what cannot be traced is left out."""
    session = Session(home=options.environ.get("HOME"))
    try:
        files, project_dir, variables, _name = locate_project(options, session)
    except Abort:
        return {}
    sources = _variable_sources(options, project_dir, variables)
    traced = _Marked(variables)
    merged: dict[str, Any] = {}
    for path in files:
        loaded = _load_file(path, traced, project_dir, session)
        if loaded is not None:
            merged = merge_file(merged, loaded)
    out: dict[str, dict[str, EnvOrigin]] = {}
    for name, service in (merged.get("services") or {}).items():
        if isinstance(service, dict):
            out[str(name)] = _service_origins(str(name), service, variables, sources, session,
                                              project_dir)
    return out


def _service_origins(name: str, service: Mapping[str, Any], variables: Mapping[str, str],
                     sources: Mapping[str, str], session: Session, project_dir: str
                     ) -> dict[str, EnvOrigin]:
    """As the loader's `_service_environment`: `env_file` entries in order, then `environment`."""
    origins: dict[str, EnvOrigin] = {}
    scratch = Session(home=session.home)  # its problems were reported by the real load
    entries = service.get("env_file") or []
    for entry in entries if isinstance(entries, list) else []:
        path = entry.get("path") if isinstance(entry, dict) else entry
        if not isinstance(path, str):
            continue
        path = _unmark(path)
        raw = isinstance(entry, dict) and entry.get("format") == "raw"
        for key in read_env_file(path, variables, scratch, False, raw=raw):
            origins[key] = EnvOrigin("env_file", _shown(path, project_dir))
    for key, value in key_value_list(service.get("environment")).items():
        file, line = _written_at(session, name, key)
        used = tuple(dict.fromkeys(_MARK.findall(value or "")))
        origins[key] = EnvOrigin(
            "compose", _shown(file, project_dir) if file else None, line,
            tuple(Variable(v, sources.get(v, SHELL)) for v in used))
    return origins


def _written_at(session: Session, service: str, key: str) -> tuple[str | None, int | None]:
    """The file and line that last set `key` in the service's `environment`, in its mapping or
    its `KEY=VALUE` list form; else the closest place the loader knows (`Session.locate`)."""
    for file, lines in reversed(session.sources):
        parsed = session.parsed.get(file)
        data = parsed[0] if parsed else None
        services = data.get("services") if isinstance(data, dict) else None
        spec = services.get(service) if isinstance(services, dict) else None
        environment = spec.get("environment") if isinstance(spec, dict) else None
        path: tuple[str | int, ...] | None = None
        if isinstance(environment, dict) and key in environment:
            path = ("services", service, "environment", key)
        elif isinstance(environment, list):
            for index, item in enumerate(environment):
                if str(item) == key or str(item).startswith(key + "="):
                    path = ("services", service, "environment", index)
        if path is not None:
            return file, lines.get(path)
    where = session.locate(("services", service, "environment", key))
    return where.file, where.line


def _variable_sources(options: LoadOptions, project_dir: str,
                      variables: Mapping[str, str]) -> dict[str, str]:
    """variable → where the loader found it: the environment, an env file, the project name."""
    working_dir = os.path.abspath(options.working_dir)
    env_files = list(options.env_files)
    if not env_files and options.environ.get("COMPOSE_ENV_FILES"):
        env_files = [f for f in options.environ["COMPOSE_ENV_FILES"].split(",") if f]
    paths = [os.path.join(working_dir, f) for f in env_files] or \
        [os.path.join(project_dir, ".env")]
    scratch = Session(home=options.environ.get("HOME"))
    sources: dict[str, str] = {}
    for path in paths:
        for key in read_env_file(path, variables, scratch, False):
            sources[key] = _shown(path, project_dir)
    sources.update(dict.fromkeys(options.environ, SHELL))
    if "COMPOSE_PROJECT_NAME" not in options.environ:
        sources["COMPOSE_PROJECT_NAME"] = PROJECT_NAME
    return sources


def _shown(path: str, project_dir: str) -> str:
    """A path as the user knows it: relative to the project directory when inside it."""
    relative = os.path.relpath(os.path.abspath(path), project_dir)
    return path if relative.startswith("..") else relative


def _unmark(text: str) -> str:
    """`text` with the markers removed (the real values stay)."""
    return _MARK.sub("", text).replace(_END, "")


class _Marked(Mapping[str, str]):
    """The load's variables, each non-empty value wrapped in markers that name it."""

    def __init__(self, variables: Mapping[str, str]) -> None:
        self._variables = variables

    def __getitem__(self, name: str) -> str:
        value = self._variables[name]
        return f"{_START}{name}{_SEP}{_MARKS.sub('', value)}{_END}" if value else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._variables)

    def __len__(self) -> int:
        return len(self._variables)
