"""The exit codes of `dockyard` are a public contract: scripts rely on the numbers."""

from __future__ import annotations

import inspect

import dockyard.errors
from dockyard.errors import DockyardError, ProjectInvalid, UsageError
from dockyard.exit_codes import ExitCode

STABLE = {
    "OK": 0,
    "FAILURE": 1,
    "USAGE": 2,
    "INVALID_PROJECT": 3,
    "ENGINE_UNAVAILABLE": 4,
    "DEPLOYMENT_FAILED": 5,
    "WAIT_TIMEOUT": 6,
    "SERVER_UNAVAILABLE": 7,
    "KEY_REFUSED": 8,
    "INTERNAL": 70,
    "INTERRUPTED": 130,
}


def test_exit_codes_are_exactly_the_stable_mapping() -> None:
    # __members__ includes aliases, so a duplicated number would show up here as a mismatch.
    assert {name: int(member) for name, member in ExitCode.__members__.items()} == STABLE


def test_exit_code_values_are_unique() -> None:
    for name, member in ExitCode.__members__.items():
        assert member.name == name, f"{name} is an alias of {member.name}"
    values = [int(member) for member in ExitCode]
    assert len(values) == len(set(values))


def test_exit_codes_fit_a_process_status() -> None:
    assert all(0 <= int(member) <= 255 for member in ExitCode)


def _all_subclasses(cls: type[DockyardError]) -> set[type[DockyardError]]:
    found: set[type[DockyardError]] = set()
    todo = [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def _error_classes() -> set[type[DockyardError]]:
    in_module = {
        obj for _, obj in inspect.getmembers(dockyard.errors, inspect.isclass)
        if issubclass(obj, DockyardError)
    }
    return in_module | _all_subclasses(DockyardError)


def test_every_error_class_maps_to_an_exit_code() -> None:
    classes = _error_classes()
    assert {DockyardError, UsageError, ProjectInvalid} <= classes
    for cls in classes:
        code = cls.exit_code
        assert isinstance(code, ExitCode), f"{cls.__qualname__}.exit_code is {code!r}"
        assert code in ExitCode.__members__.values()
        assert code is not ExitCode.OK, f"{cls.__qualname__} would exit 0"


def test_known_errors_map_to_their_codes() -> None:
    assert DockyardError.exit_code is ExitCode.FAILURE
    assert UsageError.exit_code is ExitCode.USAGE
    assert ProjectInvalid.exit_code is ExitCode.INVALID_PROJECT
    assert ProjectInvalid([]).exit_code is ExitCode.INVALID_PROJECT
