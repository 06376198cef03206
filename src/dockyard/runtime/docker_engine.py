"""The Docker Engine driver (docker-py): builds for now; containers come with `compose up`.

docker-py negotiates the engine's API version itself (Debian's Engine 20.10 speaks 1.41);
no version is pinned. Engine errors become `EngineUnavailable` or `BuildFailed` with hints.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import docker
import docker.errors
import requests.exceptions

from dockyard.build.context import PackedContext
from dockyard.runtime.errors import BuildFailed, EngineUnavailable

LogSink = Callable[[str], None]
_STEP = re.compile(r"^Step \d+/\d+ : ")


class DockerEngine:
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
            client = (docker.DockerClient(base_url=base_url) if base_url
                      else docker.from_env())
            client.ping()
            self.client = client
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
              labels: Mapping[str, str] | None = None, on_log: LogSink | None = None) -> str:
        """Build `context` into `tag`; stream each output line to `on_log`; return the id."""
        lines: list[str] = []
        step: str | None = None
        image_id: str | None = None
        failure: str | None = None
        try:
            stream = self.client.api.build(
                fileobj=io.BytesIO(context.data), custom_context=True, tag=tag,
                dockerfile=dockerfile, buildargs=dict(build_args or {}), target=target,
                labels=dict(labels or {}), rm=True, forcerm=True, decode=True)
            for chunk in stream:
                item: dict[str, Any] = chunk if isinstance(chunk, dict) else json.loads(chunk)
                if "stream" in item:
                    for line in str(item["stream"]).splitlines():
                        if _STEP.match(line):
                            step = line
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
            raise BuildFailed(f"the build of {tag} failed: {exc}", step, lines[-20:]) from None
        except requests.exceptions.RequestException as exc:
            raise EngineUnavailable(f"the Docker Engine stopped answering: {exc}",
                                    hint="is dockerd running?") from None
        if failure is not None:
            raise BuildFailed(f"the build of {tag} failed at {step or 'its start'}: {failure}",
                              step, lines[-20:])
        if image_id is None:
            image_id = str(self.client.images.get(tag).id)
        return image_id
