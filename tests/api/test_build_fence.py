"""Builds are contained like containers (issue 10), in-process with the fake engine: on a
playground server a build runs on the project's own network under the account's memory limit
and the build timeout, an account builds one image at a time (so it never holds every shared
slot), and a timed-out build fails its service with the reason. The engine counterpart is
`tests/engine/test_security_containment.py`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from dockyard.build.context import PackedContext
from dockyard.naming import NamingMode
from dockyard.runtime.driver import BuildFence
from dockyard.runtime.errors import BuildTimedOut
from dockyard.runtime.specs import network_name
from dockyard.server.settings import Limits
from tests.support.server import Server, digest_of, make_tar, running_server

DOCKERFILE = make_tar({"Dockerfile": b"FROM dockyard/busybox:1\n"})


def _upload(server: Server, who: str) -> str:
    digest = digest_of(DOCKERFILE)
    response = server.call("PUT", f"/v1/contexts/{digest}", who, content=DOCKERFILE)
    assert response.status_code in (200, 201), response.text
    return digest


def _wait(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def _playground(tmp_path: Path, **settings: Any) -> AbstractContextManager[Server]:
    return running_server(tmp_path, mode=NamingMode.PLAYGROUND, zone="prod1a.localhost",
                          allow_images=("dockyard/busybox:*",), **settings)


def test_a_playground_build_runs_on_the_project_network_with_the_account_limits(
        tmp_path: Path) -> None:
    with _playground(tmp_path, limits=Limits(memory=256 << 20),
                     build_timeout_seconds=600.0) as server:
        digest = _upload(server, "alice")
        _, status = server.up("shop", {"web": {"build": {"context": "."}}},
                              builds={"web": {"digest": digest}})
        assert status == "succeeded"
        (tag,) = server.driver.builds
        fence = server.driver.fences[tag]
        placement = server.control.placement(server.accounts["alice"], "shop")
        assert fence == BuildFence(network=network_name(placement), memory=256 << 20,
                                   cpu_shares=512, timeout=600.0)
        assert network_name(placement) in server.driver.networks


def test_a_byoc_build_keeps_the_default_network_but_has_the_timeout(tmp_path: Path) -> None:
    with running_server(tmp_path, build_timeout_seconds=0.0) as server:
        digest = _upload(server, "alice")
        _, status = server.up("shop", {"web": {"build": {"context": "."}}},
                              builds={"web": {"digest": digest}})
        assert status == "succeeded"
        assert list(server.driver.fences.values()) == [BuildFence()]


def test_one_account_builds_one_image_at_a_time_and_never_holds_every_slot(
        tmp_path: Path) -> None:
    with _playground(tmp_path, limits=Limits(), build_concurrency=2) as server:
        gate = server.driver.build_gate = threading.Event()
        alice_digest, bob_digest = _upload(server, "alice"), _upload(server, "bob")
        two = {"a": {"build": {"context": "."}}, "b": {"build": {"context": "."}}}
        alice = server.deploy("shop", two, "alice",
                              builds={"a": {"digest": alice_digest}, "b": {"digest": alice_digest}})
        assert alice.status_code == 202, alice.text
        _wait(lambda: len(server.driver.building) == 1)
        bob = server.deploy("shop", {"web": {"build": {"context": "."}}}, "bob",
                            builds={"web": {"digest": bob_digest}})
        assert bob.status_code == 202, bob.text
        _wait(lambda: len(server.driver.building) == 2)
        time.sleep(0.2)  # alice's second build had time to start, if it could
        owners = sorted(tag.split("-")[1] for tag in server.driver.building)
        assert owners == ["alice", "bob"]
        gate.set()
        assert server.events(str(alice.json()["deployment"]), "alice")[1] == "succeeded"
        assert server.events(str(bob.json()["deployment"]), "bob")[1] == "succeeded"
        assert len(server.driver.builds) == 3
        events, _ = server.events(str(alice.json()["deployment"]), "alice")
        reasons = [e.get("reason", "") for e in events]
        assert any("one build at a time per account" in r for r in reasons), reasons


def test_a_build_past_the_timeout_fails_its_service_with_the_reason(tmp_path: Path) -> None:
    with _playground(tmp_path, limits=Limits(), build_timeout_seconds=7.0) as server:
        def timed_out(context: PackedContext, tag: str, build_args: Mapping[str, str] | None,
                      labels: Mapping[str, str] | None,
                      on_log: Callable[[str], None] | None) -> str:
            raise BuildTimedOut(f"the build of {tag} took longer than the server's build "
                                "timeout (7 s) and was stopped at Step 2/2 : RUN sleep 60",
                                "Step 2/2 : RUN sleep 60", ["Step 2/2 : RUN sleep 60"])

        server.driver._build = timed_out  # type: ignore[method-assign]
        digest = _upload(server, "alice")
        deployment, status = server.up("shop", {"web": {"build": {"context": "."}}},
                                       builds={"web": {"digest": digest}})
        assert status == "failed"
        events, _ = server.events(deployment)
        failed = [e for e in events if e.get("state") == "BUILD_FAILED"]
        assert failed and "build timeout (7 s)" in failed[-1]["reason"], events
