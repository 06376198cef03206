"""The one registry of the API's errors (`dockyard.error_kinds`): every error class a request
can meet on the server is registered by its kind, and comes back to the client as the same
class with the same status, exit code, message and hint."""

from __future__ import annotations

import importlib
import json
import pkgutil

import httpx
import pytest

import dockyard
from dockyard import api_errors
from dockyard.build.safety import UnsafeArchive
from dockyard.client.api import ClientError, ServerUnreachable, _error
from dockyard.diagnostics import Location, error, warning
from dockyard.error_kinds import KINDS, rebuild
from dockyard.errors import DockyardError, ProjectInvalid
from dockyard.exit_codes import ExitCode
from dockyard.runtime.errors import EngineUnavailable
from dockyard.server.app import error_body

# Errors no request meets, so no answer carries them (each is named, with why, in
# dockyard.error_kinds): the server's start-up, the operator's local commands, and what only a
# deployment's background job meets (its pulls, the ingress proxy, the firewall).
NOT_SENT = {"ServerStartError", "KeyRefused", "AccountNotFound", "PullStopped",
            "IngressError", "EgressError", "IptablesMissing", "ProjectFilesMissing"}

# The statuses the server answered with before each class carried its own (app.py's table).
STATUS = {"ProjectInvalid": 422, "UnsafeArchive": 422, "ContextTooLarge": 413,
          "ContextError": 422, "DeploymentInProgress": 409, "DependentsRunning": 409,
          "NotFound": 404,
          "Unauthorized": 401, "EngineUnavailable": 503, "ConfigNotFound": 404,
          "ConfigInvalid": 422, "ConfigKeyError": 500, "TooManyFollows": 429,
          "RegistryCredentialInvalid": 422, "RegistryLoginRefused": 400,
          "RegistryUnreachable": 502, "RegistryLoginBusy": 429, "RegistryNotAllowed": 403,
          "RequestInvalid": 422, "RequestTooLarge": 413}


def _every_error_class() -> set[type[DockyardError]]:
    """Every DockyardError subclass of Dockyard's own modules (all imported first)."""
    for module in pkgutil.walk_packages(dockyard.__path__, "dockyard."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: set[type[DockyardError]] = {DockyardError}
    todo: list[type[DockyardError]] = [DockyardError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found and sub.__module__.startswith("dockyard."):
                found.add(sub)
                todo.append(sub)
    return found


def _sent_by_the_server() -> set[type[DockyardError]]:
    return {cls for cls in _every_error_class()
            if not cls.__module__.startswith(("dockyard.cli", "dockyard.client"))
            and cls.__name__ not in NOT_SENT}


def test_every_error_the_server_can_send_is_registered_under_its_class_name() -> None:
    sent = _sent_by_the_server()
    assert {ProjectInvalid, api_errors.NotFound, EngineUnavailable, UnsafeArchive} <= sent
    missing = sorted(cls.__qualname__ for cls in sent if KINDS.get(cls.kind) is not cls)
    assert not missing, f"not in dockyard.error_kinds.KINDS: {missing}"
    assert all(cls.kind == cls.__name__ for cls in _every_error_class())
    assert len({cls.kind for cls in _every_error_class()}) == len(_every_error_class())


def test_the_registry_holds_no_client_or_cli_error() -> None:
    assert set(KINDS.values()) <= _sent_by_the_server()


def test_statuses_are_the_ones_the_server_answered_with() -> None:
    for kind, cls in KINDS.items():
        assert cls.status == STATUS.get(kind, 400), kind


def _instance(cls: type[DockyardError]) -> DockyardError:
    if cls is ProjectInvalid:
        return ProjectInvalid([
            error("image-missing", "no image", Location("compose.yaml", 3, "services.web"),
                  "build it"),
            warning("unknown-key", "ignored", Location(path="x-foo"))])
    made = cls.__new__(cls)  # whatever the constructor takes: message and hint are what travel
    DockyardError.__init__(made, f"a {cls.kind} happened", hint=f"fix the {cls.kind}")
    return made


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_error_round_trips_through_an_answer(kind: str) -> None:
    sent = _instance(KINDS[kind])
    body = json.loads(json.dumps(error_body(sent)))  # what the server's handler writes
    assert body["kind"] == kind
    got = _error(httpx.Response(sent.status, json=body))
    assert type(got) is type(sent)
    assert (got.kind, got.status, got.exit_code, got.message, got.hint) == \
        (sent.kind, sent.status, sent.exit_code, sent.message, sent.hint)
    if isinstance(sent, ProjectInvalid):
        assert isinstance(got, ProjectInvalid) and got.diagnostics == sent.diagnostics


def test_the_cli_exit_codes_of_server_errors_are_unchanged() -> None:
    """What `dockyard` exits with for each answer, as before the registry."""
    def code(status: int, body: object) -> ExitCode:
        return _error(httpx.Response(status, json=body)).exit_code

    assert code(404, {"error": "no", "kind": "NotFound"}) is ExitCode.FAILURE
    assert code(409, {"error": "busy", "kind": "DeploymentInProgress"}) is ExitCode.FAILURE
    assert code(503, {"error": "down", "kind": "EngineUnavailable"}) is ExitCode.ENGINE_UNAVAILABLE
    assert code(422, error_body(ProjectInvalid([]))) is ExitCode.INVALID_PROJECT
    assert code(401, {"error": "who", "kind": "Unauthorized"}) is ExitCode.FAILURE
    assert code(429, {"error": "many", "kind": "TooManyFollows"}) is ExitCode.FAILURE
    assert code(502, {"error": "far", "kind": "RegistryUnreachable"}) is ExitCode.FAILURE
    assert ServerUnreachable("gone").exit_code is ExitCode.SERVER_UNAVAILABLE


def test_an_answer_without_a_known_kind_is_read_by_its_status() -> None:
    def got(status: int, body: object) -> DockyardError:
        return _error(httpx.Response(status, json=body))

    assert type(got(404, {"detail": "Not Found"})) is api_errors.NotFound
    assert got(404, {"detail": "Not Found"}).message == "Not Found"
    assert type(got(409, {"error": "x", "kind": "Newer"})) is api_errors.DeploymentInProgress
    assert got(503, {}).exit_code is ExitCode.ENGINE_UNAVAILABLE
    other = got(500, {"error": "boom", "hint": "later", "kind": "SomethingNew"})
    assert type(other) is ClientError and (other.message, other.hint) == ("boom", "later")
    assert got(502, []).message == "the server answered 502"
    assert rebuild({"kind": "SomethingNew"}) is None


def test_a_refused_request_names_each_problem_and_no_value() -> None:
    body = {"error": "the request is invalid", "hint": None, "kind": "RequestInvalid",
            "detail": [{"loc": ["body", "value"], "msg": "Field required", "type": "missing"},
                       {"loc": ["query", "limit"], "msg": "too big", "type": "less_than"}]}
    got = _error(httpx.Response(422, json=body))
    assert isinstance(got, api_errors.RequestInvalid)
    assert got.message == "the server refused the request: Field required; too big"
    assert str(got) == got.message
