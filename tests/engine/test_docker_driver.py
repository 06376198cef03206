"""The Docker Engine driver builds packed contexts (marked `docker`; cleans up by label)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.build.context import pack_context
from dockyard.runtime.docker_engine import ONE_POOL, DockerEngine
from dockyard.runtime.errors import BuildFailed, EngineUnavailable
from tests.support.engine import EXAMPLE, LABEL, engine_ready

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1"),
]


@pytest.fixture
def engine() -> Iterator[tuple[DockerEngine, str]]:
    driver = DockerEngine()
    run_id = uuid.uuid4().hex[:12]
    yield driver, run_id
    for image in driver.client.images.list(filters={"label": f"{LABEL}={run_id}"}):
        driver.client.images.remove(str(image.id), force=True)
    driver.close()


def test_builds_the_example_api_with_args_and_streams_the_log(
        engine: tuple[DockerEngine, str]) -> None:
    driver, run_id = engine
    lines: list[str] = []
    image_id = driver.build(pack_context(str(EXAMPLE / "api")), tag=f"dockyard-test/api:{run_id}",
                            build_args={"RELEASE": "test"}, labels={LABEL: run_id},
                            on_log=lines.append)
    assert image_id.startswith("sha256:")
    assert any(line.startswith("Step 1/") for line in lines)
    output = driver.client.containers.run(image_id, ["cat", "/www/index.html"], remove=True)
    assert b'"release": "test"' in output


def test_failed_build_names_the_step(engine: tuple[DockerEngine, str], tmp_path: Path) -> None:
    driver, run_id = engine
    (tmp_path / "Dockerfile").write_text("FROM dockyard/busybox:1\nRUN echo boom && exit 3\n")
    with pytest.raises(BuildFailed) as caught:
        driver.build(pack_context(str(tmp_path)), tag=f"dockyard-test/fail:{run_id}",
                     labels={LABEL: run_id})
    assert caught.value.step is not None and "RUN echo boom" in caught.value.step
    assert any("boom" in line for line in caught.value.last_lines)


def test_engine_unavailable_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable) as caught:
        DockerEngine(base_url=f"unix://{tmp_path}/no.sock")
    assert caught.value.hint and "dockerd" in caught.value.hint


def test_calls_on_many_objects_share_one_pool_of_connections(
        engine: tuple[DockerEngine, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """docker-py alone keeps a pool (and opens a connection) per request URL, and reads the
    environment's proxy settings on every call; the driver keeps one pool per socket, and no
    proxy is asked on a local socket even when the environment names one."""
    driver, _ = engine
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    api: Any = driver.client.api  # docker-py's own attributes, untyped
    images = [str(image.id) for image in driver.client.images.list()][:30]
    for image in images:
        api.inspect_image(image)
    api.containers(all=True)
    adapter = api._custom_adapter
    assert len(adapter.pools) == 1
    assert adapter.pools.get(ONE_POOL).num_requests >= len(images) + 1
    assert api.trust_env is False
