"""`Client`: every API call of the server as a method, errors as the project's own exceptions.

The library never prints: streaming calls (`events`, `logs`) yield parsed items and the caller
renders them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from dockyard.api_errors import DeploymentInProgress, NotFound
from dockyard.client.plain import PlainResponse, PlainSession, TransportFailure
from dockyard.errors import DockyardError
from dockyard.exit_codes import ExitCode
from dockyard.runtime.errors import EngineUnavailable
from dockyard.wire_models import (
    BuildBody,
    ConfigBody,
    ConfigItem,
    ConfigWritten,
    DashboardLink,
    DeployBody,
    DeploymentDetail,
    DeploymentStarted,
    DeploymentSummary,
    DeployOrigin,
    DownBody,
    Health,
    IngressInfo,
    PlanAnswer,
    ProjectSummary,
    PullPolicy,
    RedeployBody,
    RegistryItem,
    RegistryLoginBody,
    RegistryStored,
    RestartBody,
    RollbackBody,
    ServiceStatus,
    WhoAmI,
)

if TYPE_CHECKING:
    import httpx


class ClientError(DockyardError):
    """The server refused a request with an answer that names no error this client knows
    (`dockyard.error_kinds`), or could not be reached."""


class ServerUnreachable(ClientError):
    exit_code = ExitCode.SERVER_UNAVAILABLE


# The server's own errors, rebuilt by kind; the names callers used before are kept.
NotFoundError = NotFound
DeploymentConflict = DeploymentInProgress
EngineDown = EngineUnavailable


class Client:
    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"}
        self.http: PlainSession | httpx.Client
        if self.url.startswith("http://"):
            # Without httpx: no certificate store to load (about 90 ms), and its imports
            # (about 100 ms) spared (`client.plain`).
            self.http = PlainSession(self.url, headers=headers, timeout=timeout)
        else:
            from dockyard.client._http import httpx

            self.http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    @classmethod
    def over(cls, http: httpx.Client) -> Client:
        """A client that talks through `http` as it is: its base URL, headers (the token) and
        transport. Tests point it at an in-process app (Starlette's `TestClient` is an
        `httpx.Client`), so that they speak to the server as users do. `close` closes `http`."""
        client = cls.__new__(cls)
        client.url = str(http.base_url).rstrip("/")
        client.http = http
        return client

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any
                 ) -> PlainResponse | httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except _transport_errors() as exc:
            raise ServerUnreachable(f"cannot reach the Dockyard server at {self.url}: {exc}",
                                    hint="is the server running? (`dockyard server`)") from None
        if response.status_code >= 400:
            raise _error(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    def _stream(self, path: str, params: Mapping[str, Any] | None = None
                ) -> Iterator[tuple[str, Any]]:
        """Server-Sent Events as (event, data) pairs, until the server says `end`."""
        try:
            with self.http.stream("GET", path, params=params, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                kind = "message"
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        kind = line[len("event: "):]
                    elif line.startswith("data: "):
                        data = json.loads(line[len("data: "):])
                        yield kind, data
                        if kind == "end":
                            return
                        kind = "message"
        except _transport_errors() as exc:
            raise ServerUnreachable(f"lost the Dockyard server at {self.url}: {exc}",
                                    hint="is the server running? (`dockyard server`)") from None

    # -- the API ---------------------------------------------------------------------------------
    def health(self) -> Health:
        return Health.from_json(self._json("GET", "/v1/health"))

    def whoami(self) -> WhoAmI:
        return WhoAmI.from_json(self._json("GET", "/v1/whoami"))

    def dashboard_link(self) -> str:
        """A one-time login link to the server's web dashboard for this client's token: the
        URL to open in a browser (valid once, for a short while; `dockyard dashboard`)."""
        link = DashboardLink.from_json(self._json("POST", "/v1/dashboard/links"))
        return self.url + link.path

    def ingress(self) -> IngressInfo:
        """Whether the server runs its ingress, its ports, and its local CA certificate."""
        return IngressInfo.from_json(self._json("GET", "/v1/ingress"))

    def configs(self, project: str) -> list[ConfigItem]:
        """The project's config names and update times (values are never sent back)."""
        try:
            found = self._json("GET", f"/v1/projects/{project}/configs")
        except NotFound:
            return []
        return [ConfigItem.from_json(item) for item in found]

    def set_config(self, project: str, name: str, value: str, *,
                   if_not_set: bool = False) -> ConfigWritten:
        body = ConfigBody(value=value, if_not_set=if_not_set)
        return ConfigWritten.from_json(self._json(
            "PUT", f"/v1/projects/{project}/configs/{name}", json=body.to_json()))

    def remove_config(self, project: str, name: str) -> None:
        self._request("DELETE", f"/v1/projects/{project}/configs/{name}")

    def registries(self) -> list[RegistryItem]:
        """The account's registry logins: host, username, updated_at (never passwords)."""
        return [RegistryItem.from_json(item) for item in self._json("GET", "/v1/registries")]

    def registry_login(self, host: str, username: str, password: str) -> RegistryStored:
        """Have the server check the login and keep it; the host as stored, and the user."""
        body = RegistryLoginBody(username=username, password=password)
        return RegistryStored.from_json(self._json("PUT", _registry_path(host),
                                                   json=body.to_json(), timeout=90.0))

    def registry_logout(self, host: str) -> bool:
        """Forget the login for `host`; False when the account had none."""
        try:
            self._request("DELETE", _registry_path(host))
        except NotFound:
            return False
        return True

    def has_context(self, digest: str) -> bool:
        try:
            response = self.http.head(f"/v1/contexts/{digest}")
        except _transport_errors() as exc:
            raise ServerUnreachable(f"cannot reach the Dockyard server at {self.url}: {exc}"
                                    ) from None
        if response.status_code == 401:
            raise _error(response)
        return response.status_code == 200

    def upload_context(self, digest: str, data: bytes) -> None:
        self._request("PUT", f"/v1/contexts/{digest}", content=data,
                      headers={"Content-Type": "application/x-tar"}, timeout=None)

    def deploy(self, project: str, data: Mapping[str, Any],
               builds: Mapping[str, Mapping[str, Any]], *, force: bool = False,
               build: bool = False, pull: PullPolicy | None = None,
               origin: DeployOrigin | None = None, rollback_on_failure: bool = False,
               ttl: float | None = None, ttl_volumes: bool = False,
               services: Sequence[str] = ()) -> str:
        """Start a deployment; its id (the answer is a `DeploymentStarted`). `pull` (always,
        missing, never) replaces every service's `pull_policy`, as `compose up --pull` does.
        `origin` is recorded with it (`client.origin.local_origin` reads one);
        `rollback_on_failure` rolls it back to the deployment before it if it fails.
        `ttl` (seconds, `dockyard.ttl.parse_ttl` reads `2h`): the server takes the project
        down that long after now, its volumes too with `ttl_volumes`; without it, an earlier
        deadline is forgotten and the project kept. `services` (`up SERVICE...`) deploys
        only those and what they depend on, and leaves every other service as it runs."""
        body = _deploy_body(data, builds, force, build, pull)
        body["services"] = list(services)
        body.update(origin=None if origin is None else origin.to_json(),
                    rollback_on_failure=rollback_on_failure)
        if ttl is not None:
            body.update(ttl=ttl, ttl_volumes=ttl_volumes)
        answer = self._json("POST", f"/v1/projects/{project}/deployments", json=body)
        return DeploymentStarted.from_json(answer).deployment

    def plan(self, project: str, data: Mapping[str, Any],
             builds: Mapping[str, Mapping[str, Any]], *, force: bool = False,
             build: bool = False, pull: PullPolicy | None = None,
             services: Sequence[str] = ()) -> PlanAnswer:
        """What `deploy` with the same arguments would do (`up --dry-run`): nothing changes."""
        body = _deploy_body(data, builds, force, build, pull)
        body["services"] = list(services)
        return PlanAnswer.from_json(self._json("POST", f"/v1/projects/{project}/plan",
                                               json=body))

    def redeploy(self, deployment: str, *, pull: PullPolicy | None = None,
                 origin: DeployOrigin | None = None) -> DeploymentStarted:
        """Deploy again exactly the images `deployment` ran: the new deployment, its project."""
        body = {} if pull is None else RedeployBody(pull=pull).to_json()
        if origin is not None:
            body["origin"] = origin.to_json()
        return DeploymentStarted.from_json(
            self._json("POST", f"/v1/deployments/{deployment}/redeploy", json=body))

    def rollback(self, project: str, deployment: str | None = None, *,
                 pull: PullPolicy | None = None,
                 origin: DeployOrigin | None = None) -> DeploymentStarted:
        """Run again exactly what `deployment` ran (its images, config versions and project);
        by default the last deployment that completed before the current one. The answer
        names the rollback's own deployment and the one it runs again (`rollback_of`)."""
        body = RollbackBody(deployment=deployment, pull=pull, origin=origin).to_json()
        return DeploymentStarted.from_json(
            self._json("POST", f"/v1/projects/{project}/rollback", json=body))

    def rollback_plan(self, project: str, deployment: str | None = None, *,
                      pull: PullPolicy | None = None) -> PlanAnswer:
        """What `rollback` with the same arguments would change: nothing changes."""
        body = RollbackBody(deployment=deployment, pull=pull).to_json()
        return PlanAnswer.from_json(
            self._json("POST", f"/v1/projects/{project}/rollback/plan", json=body))

    def down(self, project: str, *, volumes: bool = False, services: Sequence[str] = (),
             force: bool = False) -> str:
        """Start taking the project down; the deployment's id. `services` (`down
        SERVICE...`) takes only those down, refused (`DependentsRunning`) while a running
        service that stays depends on one, unless `force`."""
        body = DownBody(volumes=volumes, services=list(services), force=force)
        answer = self._json("POST", f"/v1/projects/{project}/down", json=body.to_json())
        return DeploymentStarted.from_json(answer).deployment

    def restart(self, project: str, services: Sequence[str] = ()) -> str:
        """Start restarting `services` (none: every service) replica by replica, through the
        ingress rotation so that no request fails; the deployment's id (follow it with
        `events`)."""
        answer = self._json("POST", f"/v1/projects/{project}/restart",
                            json=RestartBody(services=list(services)).to_json())
        return DeploymentStarted.from_json(answer).deployment

    def services(self, project: str) -> list[ServiceStatus]:
        """The project's services (`ps`); none when the project does not exist."""
        try:
            found = self._json("GET", f"/v1/projects/{project}/services")
        except NotFound:
            return []
        return [ServiceStatus.from_json(row) for row in found]

    def projects(self) -> list[ProjectSummary]:
        """The account's projects (`compose ls`): each one's latest deployment, its services
        counted by state, and its `up --ttl` deadline."""
        return [ProjectSummary.from_json(item) for item in self._json("GET", "/v1/projects")]

    def deployments(self, project: str | None = None, limit: int = 50,
                    status: str | None = None) -> list[DeploymentSummary]:
        """The history, newest first; `status` (running, succeeded, failed, refused) filters."""
        params: dict[str, Any] = {"limit": limit}
        if project:
            params["project"] = project
        if status:
            params["status"] = status
        return [DeploymentSummary.from_json(item)
                for item in self._json("GET", "/v1/deployments", params=params)]

    def deployment(self, deployment: str) -> DeploymentDetail:
        return DeploymentDetail.from_json(self._json("GET", f"/v1/deployments/{deployment}"))

    def events(self, deployment: str, after: int = 0) -> Iterator[tuple[str, Any]]:
        """The deployment's state events as they happen; ends with ("end", {"status"})."""
        return self._stream(f"/v1/deployments/{deployment}/events", {"after": after})

    def logs(self, project: str, *, services: list[str] | None = None, follow: bool = False,
             since: str | None = None, until: str | None = None, kind: str = "all",
             deployment: str | None = None, tail: int | None = None,
             limit: int | None = None, filter: str | None = None,
             on_end: Callable[[dict[str, Any]], None] | None = None
             ) -> Iterator[dict[str, Any]]:
        """Log entries; `on_end` gets the end event: `{"truncated", "before", "limit"}` says
        whether older lines were left out and the `until` that pages further back. `filter`
        keeps only the lines that contain it, ignoring case; the server filters (after masking
        config values), so only those lines are sent."""
        params: dict[str, Any] = {"follow": follow, "type": kind}
        for key, value in (("service", services), ("since", since), ("until", until),
                           ("deployment", deployment), ("tail", tail), ("limit", limit),
                           ("filter", filter)):
            if value is not None and value != [] and value != "":
                params[key] = value
        for event, data in self._stream(f"/v1/projects/{project}/logs", params):
            if event == "log":
                yield dict(data)
            elif event == "end" and on_end is not None and isinstance(data, dict):
                on_end(data)


def _deploy_body(data: Mapping[str, Any], builds: Mapping[str, Mapping[str, Any]],
                 force: bool, build: bool, pull: PullPolicy | None) -> dict[str, Any]:
    body = DeployBody(project={}, force=force, build=build, pull=pull,
                      builds={name: BuildBody.from_json(b) for name, b in builds.items()})
    sent = body.to_json()
    # As it is: `to_json` would copy the whole document value by value (dataclasses.asdict),
    # which cost a large project's `up` more than sending it.
    sent["project"] = dict(data)
    if pull is None:
        del sent["pull"]  # as before: the server's default
    return sent


def _registry_path(host: str) -> str:
    """The route of a registry login: the host as the server keys it (a URL such as
    https://index.docker.io/v1/ has slashes no path segment can carry)."""
    from dockyard.registry.reference import normalize_host

    try:
        key = normalize_host(host)
    except ValueError as exc:
        raise ClientError(str(exc)) from None
    return f"/v1/registries/{quote(key, safe='')}"


def _transport_errors() -> tuple[type[Exception], ...]:
    """What a broken connection raises: `PlainSession`'s error, and httpx's once loaded (an
    HTTPS server, or a test's in-process `httpx.Client`)."""
    httpx = sys.modules.get("httpx")
    return (TransportFailure,) if httpx is None else (TransportFailure, httpx.TransportError)


def _error(response: PlainResponse | httpx.Response) -> DockyardError:
    """The error the server answered with, as its own class (`dockyard.error_kinds`); an
    answer that names no known kind (a proxy's, a route that does not exist) by its status."""
    from dockyard.error_kinds import rebuild

    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    known = rebuild(body)
    if known is not None:
        return known
    message = str(body.get("error") or body.get("detail") or
                  f"the server answered {response.status_code}")
    hint = body.get("hint")
    by_status: dict[int, type[DockyardError]] = {
        404: NotFound, 409: DeploymentInProgress, 503: EngineUnavailable}
    return by_status.get(response.status_code, ClientError)(message, hint)


def connect(server: str | None = None, *, environ: Mapping[str, str] | None = None,
            announce: Any = None) -> Client:
    """A client of `server`, `$DOCKYARD_SERVER`, or the local server (started if needed).

    `announce` is called with a message when a local server had to be started.
    """
    env = os.environ if environ is None else environ
    url = server or env.get("DOCKYARD_SERVER")
    if url:
        token = env.get("DOCKYARD_TOKEN") or ""
        if not token:
            from dockyard.client.local import stored_token

            token = stored_token(url, env) or ""
        return Client(url, token)
    from dockyard.client.local import ensure_local_server

    url, token = ensure_local_server(env, announce=announce)
    return Client(url, token)
