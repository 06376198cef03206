"""The Docker Engine driver (docker-py): builds, networks, volumes, containers, logs, events.

docker-py negotiates the engine's API version itself (Debian's Engine 20.10 speaks 1.41);
no version is pinned. Engine errors become `EngineUnavailable` or `BuildFailed` with hints.
"""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import docker
import docker.errors
import docker.types
import requests.exceptions
from docker.transport import UnixHTTPAdapter
from docker.transport.unixconn import UnixHTTPConnectionPool

from dockyard.build.context import PackedContext
from dockyard.runtime.driver import (
    LABEL_ACCOUNT,
    LABEL_MANAGED,
    LABEL_PROJECT,
    LABEL_SERVER,
    WATCHED_EVENTS,
    BuildFence,
    ContainerInfo,
    ContainerSpec,
    EngineEvent,
    ImageDetails,
    ImageInfo,
    LogLine,
    PullMessage,
    StreamStop,
    parse_engine_time,
)
from dockyard.runtime.errors import (
    BuildFailed,
    BuildTimedOut,
    EngineError,
    EngineUnavailable,
    PullFailed,
    PushFailed,
    RegistryLoginFailed,
)
from dockyard.runtime.listing_cache import STREAM_GRACE, ListingCache

LogSink = Callable[[str], None]
POOL_SIZE = 128  # engine connections kept open for reuse (a deployment: a thread per service)
# Events that change a container listing besides `WATCHED_EVENTS` (`ListingCache`).
LISTING_EVENTS = ("create", "destroy", "rename", "restart", "oom", "update")
_STEP = re.compile(r"^Step \d+/\d+ : ")
_RUNNING = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})$")  # a step's container
# How the engine words a registry's refusal of credentials (it answers 500 for every failure).
_LOGIN_DENIED = re.compile(r"status: 40[13]\b|\bunauthori[sz]ed\b|\bforbidden\b|"
                           r"incorrect username", re.IGNORECASE)
_UNREACHABLE = re.compile(r"dial tcp|no such host|connection refused|i/o timeout|"
                          r"TLS handshake|certificate", re.IGNORECASE)
LOGIN_TIMEOUT = 30  # seconds a registry login check may take


ONE_POOL = "http+docker://localhost"  # the key of the one pool (`_OnePoolAdapter`)


class _OnePoolAdapter(UnixHTTPAdapter):
    """docker-py's Unix-socket adapter keeps one connection pool per request URL: every
    container's path (`/containers/<id>/start`, `.../json`) made a pool of its own, filled with
    `POOL_SIZE` placeholders, and a new connection to dockerd, dropped when the pool fell out of
    its 25 most recent. An `up` and a `down` of 100 services made 609 of them. Every call to
    the engine goes through one socket, so it shares one pool here."""

    def get_connection(self, url: bytes | str, proxies: Any = None) -> UnixHTTPConnectionPool:
        return super().get_connection(ONE_POOL, proxies)


def _one_pool_per_socket(api: Any) -> None:
    """On a Unix socket: one pool for every call (`_OnePoolAdapter`), and no environment
    lookups per request. Requests otherwise reads the proxy variables of the whole environment
    and `~/.netrc` on every call, neither of which applies to a local socket (and a proxy must
    never see the engine's API)."""
    adapter = getattr(api, "_custom_adapter", None)
    if type(adapter) is not UnixHTTPAdapter:
        return  # TCP, TLS or SSH: requests' own pools are per host already
    shared = _OnePoolAdapter(f"http+unix://{adapter.socket_path}", adapter.timeout,
                             max_pool_size=adapter.max_pool_size)
    api.mount("http+docker://", shared)
    api._custom_adapter = shared
    adapter.close()
    api.trust_env = False


class DockerEngine:
    default_update_parallelism = 0  # a changed service's replicas are replaced all at once

    def __init__(self, base_url: str | None = None) -> None:
        url = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        if url.startswith("unix://") and not os.path.exists(url[len("unix://"):]):
            # Checked here: docker-py leaks its socket when it fails to negotiate the version.
            raise EngineUnavailable(
                f"cannot reach the Docker Engine: no socket at {url[len('unix://'):]}",
                hint="is dockerd running? start it (scripts/setup does) or set DOCKER_HOST",
            )
        client: docker.DockerClient | None = None
        try:
            # A deployment talks to the engine from one thread per service: a pool of 10 (the
            # default) would open and drop a connection per call past the tenth.
            client = (docker.DockerClient(base_url=base_url, max_pool_size=POOL_SIZE)
                      if base_url else docker.from_env(max_pool_size=POOL_SIZE))
            _one_pool_per_socket(client.api)
            client.ping()
            # docker-py sends the server user's own ~/.docker credentials with builds and
            # pulls when none are given: never here. Each pull and push carries only the
            # credentials of the account it is for (`registry_auth`), and builds none.
            api: Any = client.api
            api._set_auth_headers = _no_server_credentials
            self.client = client
            self._listings = ListingCache()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            if client is not None:
                client.close()
            raise EngineUnavailable(
                f"cannot reach the Docker Engine: {exc}",
                hint="is dockerd running? start it (scripts/setup does) or set DOCKER_HOST",
            ) from None

    def close(self) -> None:
        self.client.close()

    def build(self, context: PackedContext, *, tag: str, dockerfile: str = "Dockerfile",
              build_args: Mapping[str, str] | None = None, target: str | None = None,
              labels: Mapping[str, str] | None = None, on_log: LogSink | None = None,
              fence: BuildFence | None = None) -> str:
        """Build `context` into `tag`; stream each output line to `on_log`; return the id.

        The classic builder (docker-py's API) runs each step in a container: `fence` puts it
        on a network (`--network`) and under `container_limits`. Past `fence.timeout` a
        watchdog kills the step container (`_Watchdog`), so the step fails at once and the
        daemon ends the build (rm/forcerm remove the container): the stream needs no private
        handle to be stopped.
        """
        fence = fence or BuildFence()
        lines: deque[str] = deque(maxlen=20)  # the end, for the failure: a build may print GBs
        step: str | None = None
        image_id: str | None = None
        failure: str | None = None
        watchdog = _Watchdog(self, fence.timeout, fence.network)
        limits: Any = {k: v for k, v in (("memory", fence.memory), ("memswap", fence.memory),
                                         ("cpushares", fence.cpu_shares)) if v}
        try:
            stream = self.client.api.build(
                fileobj=io.BytesIO(context.data), custom_context=True, tag=tag,
                dockerfile=dockerfile, buildargs=dict(build_args or {}), target=target,
                labels=dict(labels or {}), rm=True, forcerm=True, decode=True,
                network_mode=fence.network, container_limits=limits or None)
            for chunk in stream:
                item: dict[str, Any] = chunk if isinstance(chunk, dict) else json.loads(chunk)
                if "stream" in item:
                    for line in str(item["stream"]).splitlines():
                        if _STEP.match(line):
                            step = line
                        running = _RUNNING.match(line)
                        if running:
                            watchdog.running(running.group(1))
                        lines.append(line)
                        if on_log:
                            on_log(line)
                if "aux" in item and isinstance(item["aux"], dict) and "ID" in item["aux"]:
                    image_id = str(item["aux"]["ID"])
                if "error" in item:
                    # Keep reading to the end of the stream: it releases the connection.
                    failure = str(item["error"]).strip()
                    lines.append(failure)
                    if on_log:
                        on_log(failure)
        except (docker.errors.APIError, docker.errors.BuildError) as exc:
            if not watchdog.expired:
                raise BuildFailed(f"the build of {tag} failed: {exc}", step,
                                  list(lines)) from None
        except requests.exceptions.RequestException as exc:
            if not watchdog.expired:
                raise EngineUnavailable(f"the Docker Engine stopped answering: {exc}",
                                        hint="is dockerd running?") from None
        finally:
            watchdog.stop()
        if watchdog.expired:
            raise BuildTimedOut(
                f"the build of {tag} took longer than the server's build timeout "
                f"({fence.timeout:g} s) and was stopped at {step or 'its start'}",
                step, list(lines))
        if failure is not None:
            raise BuildFailed(f"the build of {tag} failed at {step or 'its start'}: {failure}",
                              step, list(lines))
        if image_id is None:
            image_id = str(self.client.images.get(tag).id)
        return image_id

    def _kill_build_steps(self, named: set[str], network: str | None, since: float) -> None:
        """Kill the running step containers of one build (the builder then removes them).

        Candidates are the ids the build's output named and, on a build network, every
        container on it; one is killed only if it is a step container of this build: on its
        network (`default` without one), created since the build began, and not named under
        the network's name as Dockyard names a project's containers. The build's output is the
        tenant's (a step may print " ---> Running in <any id>"), so no id from it is trusted
        alone, and a forged one cannot hide the real one (every named id is kept).
        """
        try:
            candidates = set(named)
            if network:
                candidates |= {str(c["Id"]) for c in self.client.api.containers(
                    filters={"network": network, "status": "running"})}
        except (docker.errors.APIError, requests.exceptions.RequestException):
            candidates = set(named)  # the engine is away: the next round tries again
        for container_id in sorted(candidates):
            try:
                if _is_build_step(self.client.api.inspect_container(container_id), network,
                                  since):
                    self.client.api.kill(container_id)
            except (docker.errors.APIError, requests.exceptions.RequestException):
                continue  # gone already, not one id (a forged prefix), or the engine is away

    # -- images ------------------------------------------------------------------------------
    def image_id(self, reference: str) -> str | None:
        """The id of a local image, or None. Never pulls (`pull` does)."""
        found = self._inspect_image(reference)
        return None if found is None else str(found["Id"])

    def _inspect_image(self, reference: str) -> dict[str, Any] | None:
        try:
            data = self.client.api.inspect_image(reference)  # type: ignore[no-untyped-call]
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            if exc.status_code == 404:
                return None
            raise _engine_error(exc) from None
        return dict(data)

    def tag_image(self, image_id: str, reference: str) -> None:
        repository, _, tag = reference.rpartition(":")
        if not repository or "/" in tag:
            repository, tag = reference, "latest"
        with _errors():
            self.client.api.tag(image_id, repository, tag, force=True)

    def labelled_images(self, labels: Mapping[str, str]) -> list[ImageInfo]:
        """Every local image carrying all of `labels` (dangling ones included)."""
        with _errors():
            found = self.client.api.images(filters={"label": _label_filter(labels)})
        return [ImageInfo(id=str(i["Id"]), labels=dict(i.get("Labels") or {}),
                          tags=tuple(str(t) for t in (i.get("RepoTags") or [])
                                     if t != "<none>:<none>"),
                          created=int(i.get("Created") or 0)) for i in found]

    def image_details(self, reference: str) -> ImageDetails | None:
        data = self._inspect_image(reference)
        if data is None:
            return None
        return ImageDetails(id=str(data["Id"]),
                            tags=tuple(str(t) for t in data.get("RepoTags") or ()),
                            digests=tuple(str(d) for d in data.get("RepoDigests") or ()))

    # -- registries --------------------------------------------------------------------------
    def pull(self, reference: str, *, auth: Mapping[str, str] | None = None,
             on_progress: Callable[[PullMessage], None] | None = None,
             stop: StreamStop | None = None) -> str:
        """`POST /images/create` with this request's credentials only (docker-py's `pull`
        would fall back to the server user's own): each progress message goes to
        `on_progress`; the engine's last error is the failure."""
        repository, tag = _split_reference(reference)
        api: Any = self.client.api
        failure = self._registry_stream(
            "pull", reference, api._url("/images/create"),
            {"fromImage": repository, "tag": tag}, auth, on_progress, stop)
        if failure is not None:
            raise PullFailed(f"the pull of {reference} failed: {failure}", failure)
        found = self.image_id(reference)
        if found is None:
            raise PullFailed(f"the pull of {reference} ended without an image", "")
        return found

    def registry_digest(self, reference: str, *, auth: Mapping[str, str] | None = None,
                        timeout: float = 30.0) -> str:
        """`GET /distribution/NAME/json`: the engine asks the registry for the manifest with
        `auth`, so the answer is the account's own access, whatever the local cache holds."""
        api: Any = self.client.api
        headers = {"X-Registry-Auth": _auth_header(auth)} if auth else {}
        try:
            response = api._get(api._url("/distribution/{0}/json", reference),
                                headers=headers, timeout=timeout)
            api._raise_for_status(response)
            data = response.json()
        except docker.errors.APIError as exc:
            text = _explanation(exc)
            if "manifest unknown" in text and "manifest for" not in text:
                text = f"manifest for {reference} not found: {text}"  # as a pull words it
            raise PullFailed(f"the registry check of {reference} failed: {text}",
                             text) from None
        except requests.exceptions.RequestException as exc:
            text = f"no answer within {timeout:g} s ({type(exc).__name__})"
            raise PullFailed(f"the registry check of {reference} failed: {text}",
                             f"i/o timeout: {text}") from None
        digest = str((data.get("Descriptor") or {}).get("digest") or "")
        if not digest:
            raise PullFailed(f"the registry gave no digest for {reference}", "no digest")
        return digest

    def push(self, reference: str, *, auth: Mapping[str, str] | None = None,
             on_progress: Callable[[PullMessage], None] | None = None,
             stop: StreamStop | None = None) -> str:
        repository, tag = _split_reference(reference)
        api: Any = self.client.api
        digest: list[str] = []

        def progress(item: PullMessage) -> None:
            aux = item.get("aux")
            if isinstance(aux, Mapping) and aux.get("Digest"):
                digest.append(str(aux["Digest"]))
            if on_progress is not None:
                on_progress(item)

        failure = self._registry_stream(
            "push", reference, api._url("/images/{0}/push", repository), {"tag": tag}, auth,
            progress, stop)
        if failure is not None:
            raise PushFailed(f"the push of {reference} failed: {failure}", failure)
        if not digest:
            raise PushFailed(f"the registry gave no digest for {reference}", "no digest")
        return digest[-1]

    def _registry_stream(self, verb: str, reference: str, url: str, params: Mapping[str, str],
                         auth: Mapping[str, str] | None,
                         on_progress: Callable[[PullMessage], None] | None,
                         stop: StreamStop | None) -> str | None:
        """Run one pull or push to its end; the engine's error text, or None."""
        api: Any = self.client.api
        headers = {"X-Registry-Auth": _auth_header(auth or {})}
        failure: str | None = None
        try:
            response = api._post(url, params=dict(params), headers=headers, stream=True,
                                 timeout=None)
            if stop is not None:
                stop.attach(response.close)
            api._raise_for_status(response)
            for item in api._stream_helper(response, decode=True):
                if not isinstance(item, Mapping):
                    continue
                if "error" in item:
                    detail = item.get("errorDetail")
                    failure = str((detail or {}).get("message") if isinstance(detail, Mapping)
                                  and detail.get("message") else item["error"]).strip()
                elif on_progress is not None:
                    on_progress(item)
        except docker.errors.APIError as exc:
            failure = _explanation(exc)
        except (requests.exceptions.RequestException, OSError, ValueError,
                AttributeError) as exc:
            if stop is not None and stop.stopped.is_set():
                failure = "stopped"
            else:
                raise EngineUnavailable(f"the Docker Engine stopped answering during the "
                                        f"{verb} of {reference}: {type(exc).__name__}",
                                        hint="is dockerd running?") from None
        if failure is None and stop is not None and stop.stopped.is_set():
            failure = "stopped"
        return failure

    # -- networks and volumes ----------------------------------------------------------------
    def ensure_network(self, name: str, labels: Mapping[str, str], *,
                       internal: bool = False) -> None:
        with _errors():
            for network in self.client.api.networks(names=[name]):
                if network["Name"] == name:
                    _check_owner("network", name, network.get("Labels") or {}, labels)
                    return
            self.client.api.create_network(name, driver="bridge", labels=dict(labels),
                                           check_duplicate=True, internal=internal)

    def labelled_networks(self, labels: Mapping[str, str]) -> list[str]:
        with _errors():
            found = self.client.api.networks(filters={"label": _label_filter(labels)})
        return sorted(str(n["Name"]) for n in found)

    def remove_network(self, name: str, owner: Mapping[str, str] | None = None) -> None:
        """Remove the network `name`; with `owner`, only when it carries those labels."""
        with _errors():
            for network in self.client.api.networks(names=[name]):
                if network["Name"] == name:
                    if owner is not None:
                        _check_owner("network", name, network.get("Labels") or {}, owner)
                    try:
                        self.client.api.remove_network(network["Id"])
                    except docker.errors.NotFound:
                        pass

    def network_bridges(self, labels: Mapping[str, str]) -> dict[str, str]:
        """Each bridge network carrying `labels`, by name: its Linux bridge, as Docker names it
        (`br-` and the first 12 digits of the network id, unless the network set its own)."""
        with _errors():
            found = self.client.api.networks(filters={"label": _label_filter(labels)})
        return {str(n["Name"]): str((n.get("Options") or {}).get(_BRIDGE_NAME)
                                    or f"br-{str(n['Id'])[:12]}")
                for n in found if n.get("Driver") == "bridge"}

    def ensure_volume(self, name: str, labels: Mapping[str, str]) -> None:
        with _errors():
            try:
                found = self.client.api.inspect_volume(name)
            except docker.errors.NotFound:
                self.client.api.create_volume(name, labels=dict(labels))
            else:
                _check_owner("volume", name, found.get("Labels") or {}, labels)

    def remove_volume(self, name: str) -> None:
        with _errors():
            try:
                self.client.api.remove_volume(name, force=True)
            except docker.errors.NotFound:
                pass

    def volumes(self, labels: Mapping[str, str]) -> list[str]:
        with _errors():
            found = self.client.api.volumes(filters={"label": _label_filter(labels)})
        return sorted(str(v["Name"]) for v in (found.get("Volumes") or []))

    # -- containers --------------------------------------------------------------------------
    def run(self, spec: ContainerSpec) -> str:
        """Create and start one container; returns its id."""
        api = self.client.api
        restart: dict[str, Any] | None = None
        if spec.restart != "no":
            restart = {"Name": spec.restart}
            if spec.restart == "on-failure" and spec.restart_max_attempts:
                restart["MaximumRetryCount"] = spec.restart_max_attempts
        port_bindings: dict[int | str, list[tuple[str, str] | str]] = {}
        for port in spec.ports:
            key = f"{port.target}/{port.protocol}"
            binding: tuple[str, str] | str = ((port.host_ip, port.published) if port.host_ip
                                              else port.published)
            port_bindings.setdefault(key, []).append(binding)
        mounts = [docker.types.Mount(target=m.target, source=m.source,
                                     type=_MOUNT_TYPES.get(m.type, "volume"),
                                     read_only=m.read_only) for m in spec.mounts]
        network_mode = spec.network_mode or spec.network
        with _errors():
            host_config = api.create_host_config(
                restart_policy=restart, nano_cpus=spec.nano_cpus, mem_limit=spec.memory,
                mem_reservation=spec.memory_reservation, cpu_shares=spec.cpu_shares,
                pids_limit=spec.pids_limit, mounts=mounts or None,
                port_bindings=port_bindings or None, init=spec.init, read_only=spec.read_only,
                tmpfs=dict(spec.tmpfs) or None, extra_hosts=list(spec.extra_hosts) or None,
                cap_add=list(spec.cap_add) or None, cap_drop=list(spec.cap_drop) or None,
                network_mode=network_mode, ipc_mode=spec.ipc_mode,
                log_config=_log_config(spec))
            # docker-py takes a mapping of network to endpoint here; its stubs say otherwise.
            # The first network is given at creation, the others are connected before start.
            networking = None if spec.network_mode else api.create_networking_config({
                spec.network: api.create_endpoint_config(  # type: ignore[arg-type]
                    aliases=list(spec.aliases))})
            created = api.create_container(
                image=spec.image, name=spec.name, labels=dict(spec.labels),
                environment=dict(spec.environment),
                command=list(spec.command) if spec.command is not None else None,
                entrypoint=list(spec.entrypoint) if spec.entrypoint is not None else None,
                healthcheck=dict(spec.healthcheck) if spec.healthcheck else None,
                stop_timeout=spec.stop_timeout, stop_signal=spec.stop_signal,
                ports=[(p.target, p.protocol) for p in spec.ports] or None,
                user=spec.user, working_dir=spec.working_dir, hostname=spec.hostname,
                domainname=spec.domainname, tty=spec.tty, stdin_open=spec.stdin_open,
                host_config=host_config, networking_config=networking)
            container_id = str(created["Id"])
            try:
                for network, aliases in () if spec.network_mode else spec.networks:
                    api.connect_container_to_network(container_id, network,
                                                     aliases=list(aliases))
                api.start(container_id)
            except docker.errors.APIError:
                api.remove_container(container_id, force=True)
                raise
            finally:
                self._listings.changed()
        return container_id

    def global_replicas(self, constraints: Sequence[str]) -> int:
        """One engine is one node: a global service runs one replica."""
        return 1

    def containers(self, labels: Mapping[str, str], *, detail: bool = True,
                   fresh: bool = False) -> list[ContainerInfo]:
        """Every container (running or not) carrying all of `labels`.

        Without `detail`, one engine call: restart count and health output are unknown (0,
        ""), health and exit code come from the status text. Enough for `ps` and a plan. Such
        a listing is kept while followed events say nothing changed (`ListingCache`); `fresh`
        asks the engine all the same (and keeps its answer).
        """
        if not detail:
            kept = None if fresh else self._listings.lookup(labels)
            if kept is not None:
                return kept
            generation = self._listings.generation()
        with _errors():
            found = self.client.api.containers(all=True, filters={"label": _label_filter(labels)})
        if not detail:
            listing = sorted((_summary(c) for c in found), key=lambda i: i.name)
            self._listings.store(labels, generation, listing)
            return listing
        infos = [self.inspect(str(c["Id"])) for c in found]
        return sorted((i for i in infos if i is not None), key=lambda i: i.name)

    def inspect(self, container_id: str) -> ContainerInfo | None:
        try:
            data = self.client.api.inspect_container(container_id)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            raise _engine_error(exc) from None
        except requests.exceptions.RequestException as exc:
            raise EngineUnavailable(f"the Docker Engine stopped answering: {exc}",
                                    hint="is dockerd running?") from None
        return _info(data)

    def stop(self, container_id: str, timeout: int | None = None) -> None:
        with _errors():
            try:
                if timeout is None:
                    self.client.api.stop(container_id)
                else:
                    self.client.api.stop(container_id, timeout=timeout)
            except docker.errors.NotFound:
                pass
            finally:
                self._listings.changed()

    def restart(self, container_id: str) -> None:
        # stop + start rather than the API's restart, whose default timeout (10 s in
        # docker-py) would override the container's own stop_grace_period.
        with _errors():
            try:
                self.client.api.stop(container_id)
                self.client.api.start(container_id)
            finally:
                self._listings.changed()

    def remove(self, container_id: str) -> None:
        with _errors():
            try:
                # v=True removes the container's anonymous volumes (a mount with no source, an
                # image's VOLUME): nobody can name them again, so they would leak; named
                # volumes are never removed by it.
                self.client.api.remove_container(container_id, force=True, v=True)
            except docker.errors.NotFound:
                pass
            finally:
                self._listings.changed()

    def logs(self, container_id: str, *, tail: int | None = None,
             since: datetime | None = None, until: datetime | None = None,
             follow: bool = False, stop: StreamStop | None = None) -> Iterator[LogLine]:
        """The container's output, stdout and stderr interleaved, one line at a time.

        `since`/`until` go to the engine as float seconds: docker-py would truncate a datetime
        to whole seconds, dropping up to a second of lines at the `until` edge. `stop` closes
        the stream from another thread (docker-py's CancellableStream.close is made for it).
        """
        kwargs: dict[str, Any] = {"stdout": True, "stderr": True, "timestamps": True,
                                  "follow": follow, "stream": True,
                                  "tail": "all" if tail is None else tail}
        if since is not None:
            kwargs["since"] = max(since.timestamp(), 1e-6)
        if until is not None:
            kwargs["until"] = max(until.timestamp(), 1e-6)
        try:
            stream = self.client.api.logs(container_id, **kwargs)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            raise _engine_error(exc) from None
        if stop is not None:
            stop.attach(stream.close)
        yield from _log_lines(container_id, stream)

    def events(self, labels: Mapping[str, str]) -> Iterator[EngineEvent]:
        """Container events of containers with `labels`, as they happen (blocks): only those
        in `WATCHED_EVENTS` (the engine matches `health_status` with any status).

        While the stream is followed, its events keep listings of those containers
        (`ListingCache`), so it also asks for the few other events that change a listing. A
        thread of its own reads them and drops kept listings at once: a caller busy handling
        one event (an inspect, a proxy reload) never leaves a listing standing meanwhile."""
        filters = {"type": "container", "label": _label_filter(labels),
                   "event": [*WATCHED_EVENTS, *LISTING_EVENTS]}
        with _errors():
            stream = self.client.api.events(filters=filters, decode=True)
        handoff: queue.SimpleQueue[EngineEvent | BaseException | None] = queue.SimpleQueue()

        def read() -> None:
            try:
                with self._listings.following(labels, grace=STREAM_GRACE):
                    for item in stream:
                        attributes: dict[str, str] = dict(
                            (item.get("Actor") or {}).get("Attributes") or {})
                        self._listings.changed(attributes)
                        event = _event(item, attributes)
                        if event is not None:
                            handoff.put(event)
            except Exception as exc:  # handed to the caller, who decides (the watcher retries)
                handoff.put(exc)
            finally:
                handoff.put(None)

        threading.Thread(target=read, name="engine-events", daemon=True).start()
        try:
            while (found := handoff.get()) is not None:
                if isinstance(found, BaseException):
                    with _errors():  # as any engine call's error
                        raise found
                yield found
        finally:
            stream.close()

    def check_login(self, server_address: str, username: str, password: str) -> None:
        """The engine's `POST /auth`, called directly: docker-py's `login()` would cache the
        credentials in this client, for every later pull of every account."""
        api: Any = self.client.api  # docker-py's private helpers are untyped
        body = {"username": username, "password": password, "serveraddress": server_address}
        try:
            response = api._post(api._url("/auth"), data=json.dumps(body), timeout=LOGIN_TIMEOUT,
                                 headers={"Content-Type": "application/json"})
            api._raise_for_status(response)
        except docker.errors.APIError as exc:
            reason = exc.explanation if isinstance(exc.explanation, str) else str(exc)
            status = exc.response.status_code if exc.response is not None else 0
            denied = status in (401, 403) or bool(
                _LOGIN_DENIED.search(reason) and not _UNREACHABLE.search(reason))
            if len(password) >= 4:  # the engine does not quote it; a registry might
                reason = reason.replace(password, "***")
            raise RegistryLoginFailed(reason, denied=denied) from None
        except requests.exceptions.Timeout:
            raise RegistryLoginFailed(f"the registry did not answer within {LOGIN_TIMEOUT} s",
                                      denied=False) from None
        except requests.exceptions.RequestException as exc:
            raise EngineUnavailable(f"the Docker Engine stopped answering: {exc}",
                                    hint="is dockerd running?") from None


def _check_owner(kind: str, name: str, found: Mapping[str, str],
                 wanted: Mapping[str, str]) -> None:
    """Refuse to adopt a network or volume that is not exactly ours.

    Ours means: made by Dockyard, by this server, for this account and project (every
    ownership label in `wanted` is on it with the same value). An unlabelled object, or one of
    another server, account or project, is never used or removed: sharing it would mix
    containers or hand one tenant another's data.
    """
    owner = {k: v for k, v in wanted.items() if k in _OWNERSHIP_LABELS}
    if not owner:
        return
    if found.get(LABEL_MANAGED) != "true":
        raise EngineError(
            f"the {kind} {name} already exists on the engine and was not made by Dockyard",
            hint=f"remove or rename that {kind}, or use another project name (-p)")
    theirs, ours = found.get(LABEL_SERVER), owner.get(LABEL_SERVER)
    if theirs and ours and theirs != ours:
        raise EngineError(
            f"the {kind} {name} belongs to another Dockyard server on this engine (server "
            f"{theirs}): the same account and project name are deployed there",
            hint="use another project name (-p), or deploy this project through that server")
    if any(found.get(k) != v for k, v in owner.items()):
        raise EngineError(
            f"the {kind} {name} belongs to another account or project on this server",
            hint="use another project name (-p)")


_OWNERSHIP_LABELS = (LABEL_MANAGED, LABEL_SERVER, LABEL_ACCOUNT, LABEL_PROJECT)


_BRIDGE_NAME = "com.docker.network.bridge.name"


def _log_config(spec: ContainerSpec) -> docker.types.LogConfig:
    """The container's log driver, rotated: `max-size` bytes per file, `max-file` files."""
    return docker.types.LogConfig(type=spec.log_driver, config={
        "max-size": str(spec.log_max_size), "max-file": str(spec.log_max_files)})

_MOUNT_TYPES: dict[str, Literal["bind", "volume", "tmpfs"]] = {
    "bind": "bind", "volume": "volume", "tmpfs": "tmpfs"}


class _errors:
    """Engine errors, as the project's own errors (a context manager)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 _tb: object) -> None:
        if isinstance(exc, docker.errors.APIError):
            raise _engine_error(exc) from None
        if isinstance(exc, requests.exceptions.RequestException):
            raise EngineUnavailable(f"the Docker Engine stopped answering: {exc}",
                                    hint="is dockerd running?") from None


def _no_server_credentials(headers: dict[str, Any]) -> None:
    """Stands in for docker-py's `_set_auth_headers`: a build carries no credentials."""


def _auth_header(auth: Mapping[str, str]) -> str:
    """The engine's X-Registry-Auth value (base64url JSON); `{}` means anonymous."""
    return base64.urlsafe_b64encode(json.dumps(dict(auth)).encode()).decode()


def _split_reference(reference: str) -> tuple[str, str]:
    """`repo:tag` or `repo@sha256:...` as the engine's (fromImage, tag) pair."""
    if "@" in reference:
        repository, _, digest = reference.partition("@")
        return repository, digest
    head, _, last = reference.rpartition("/")
    name, colon, tag = last.partition(":")
    return (f"{head}/{name}" if head else name), (tag if colon else "latest")


def _explanation(exc: docker.errors.APIError) -> str:
    return str(exc.explanation if isinstance(exc.explanation, str) else exc).strip()


def _engine_error(exc: docker.errors.APIError) -> EngineError:
    explanation = exc.explanation if isinstance(exc.explanation, str) else str(exc)
    return EngineError(f"the Docker Engine refused: {explanation}")


def _label_filter(labels: Mapping[str, str]) -> list[str]:
    items = [f"{k}={v}" for k, v in labels.items()]
    return items or [LABEL_MANAGED]


_parse_time = parse_engine_time


def _log_lines(container_id: str, stream: Iterable[bytes]) -> Iterator[LogLine]:
    """A log stream's chunks as lines; the stream is closed at the end (or when abandoned)."""
    pending = b""
    try:
        for chunk in stream:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                yield _log_line(container_id, raw)
        if pending:
            yield _log_line(container_id, pending)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def _log_line(container_id: str, raw: bytes) -> LogLine:
    text = raw.decode("utf-8", errors="replace").rstrip("\r")
    stamp, sep, rest = text.partition(" ")
    at = _parse_time(stamp) if sep else None
    return LogLine(container_id, rest if at is not None else text, at)


def _exit_code(status_text: str) -> int:
    """The exit code in the engine's status text (`Exited (3) 2 minutes ago`), else 0."""
    found = re.match(r"Exited \((-?\d+)\)", status_text)
    return int(found.group(1)) if found else 0


def _event(item: Mapping[str, Any], attributes: dict[str, str]) -> EngineEvent | None:
    """A watched event (`WATCHED_EVENTS`) as the driver reports it; None for the others."""
    action = str(item.get("Action") or item.get("status") or "")
    if action.partition(":")[0] not in WATCHED_EVENTS:
        return None
    code = attributes.get("exitCode")
    return EngineEvent(action=action, container_id=str((item.get("Actor") or {}).get("ID") or ""),
                       labels=attributes,
                       exit_code=int(code) if code and code.isdigit() else None)


def _summary(item: Mapping[str, Any]) -> ContainerInfo:
    text = str(item.get("Status") or "")
    health = next((h for h in ("unhealthy", "healthy", "health: starting") if h in text), None)
    networks = (item.get("NetworkSettings") or {}).get("Networks") or {}
    address = next((str(n["IPAddress"]) for n in networks.values() if n.get("IPAddress")), None)
    names = item.get("Names") or [""]
    return ContainerInfo(
        id=str(item["Id"]), name=str(names[0]).lstrip("/"), labels=dict(item.get("Labels") or {}),
        status=str(item.get("State") or ""), exit_code=_exit_code(text),
        health=None if health is None else health.replace("health: ", ""), restart_count=0,
        ip_address=address, started_at=None)


def _info(data: Mapping[str, Any]) -> ContainerInfo:
    state = data.get("State") or {}
    config = data.get("Config") or {}
    health = state.get("Health")
    networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
    address = next((str(n["IPAddress"]) for n in networks.values() if n.get("IPAddress")), None)
    ports: list[str] = []
    for key, bindings in ((data.get("NetworkSettings") or {}).get("Ports") or {}).items():
        for binding in bindings or []:
            ports.append(f"{binding.get('HostIp') or '0.0.0.0'}:{binding.get('HostPort')}"
                         f"->{key}")
    health_log = health.get("Log") if isinstance(health, dict) else None
    last_check = str(health_log[-1].get("Output") or "") if health_log else ""
    return ContainerInfo(
        id=str(data["Id"]), name=str(data.get("Name", "")).lstrip("/"),
        labels=dict(config.get("Labels") or {}), status=str(state.get("Status", "")),
        exit_code=int(state.get("ExitCode") or 0),
        health=str(health["Status"]) if isinstance(health, dict) else None,
        restart_count=int(data.get("RestartCount") or 0), ip_address=address,
        started_at=_parse_time(state.get("StartedAt")), host_ports=tuple(sorted(set(ports))),
        health_output=" ".join(last_check.split())[:300])


def _is_build_step(found: Mapping[str, Any], network: str | None, since: float) -> bool:
    """Whether an inspected container is a running step container of the build that began at
    `since` (epoch seconds) on `network` (see `DockerEngine._kill_build_steps`)."""
    mode = str((found.get("HostConfig") or {}).get("NetworkMode") or "")
    name = str(found.get("Name") or "").lstrip("/")
    state = found.get("State") or {}
    return (mode == (network or "default") and bool(state.get("Running"))
            and _epoch(str(found.get("Created") or "")) >= since - 1
            and not name.startswith(f"{network or 'dy'}-"))


def _epoch(text: str) -> float:
    """Docker's RFC 3339 time (nanoseconds, Z) as epoch seconds; 0 when unreadable."""
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", text)
    if not match:
        return 0.0
    whole = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return whole.timestamp() + float(f"0.{match.group(2) or 0}")


class _Watchdog:
    """Stops a build past its timeout: kills its step containers then, and again each second
    (a step started after), until the build's stream ends (a killed step fails the classic
    build, so there is rarely a second round)."""

    def __init__(self, engine: DockerEngine, timeout: float | None,
                 network: str | None) -> None:
        self.engine = engine
        self.network = network
        self.expired = False
        self.since = time.time()
        self._named: deque[str] = deque(maxlen=64)  # the last ids named: a flood is cheap
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        if timeout:
            self._thread = threading.Thread(target=self._watch, args=(timeout,),
                                            name="build-watchdog", daemon=True)
            self._thread.start()

    def running(self, container_id: str) -> None:
        """The build's output named a step container (perhaps falsely: see the engine)."""
        with self._lock:
            if container_id not in self._named:
                self._named.append(container_id)

    def _watch(self, timeout: float) -> None:
        if self._done.wait(timeout):
            return
        self.expired = True
        while True:
            with self._lock:
                named = set(self._named)
            self.engine._kill_build_steps(named, self.network, self.since)
            if self._done.wait(1.0):
                return

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(5)
