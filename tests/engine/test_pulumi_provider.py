"""The Pulumi provider against reality: `ProjectProvider`'s create, diff, update, read and
delete called directly (as Pulumi's engine calls them, which cannot be installed here) on the
inputs the example program `examples/pulumi/shop` registers, against a real local server and
the real Docker Engine.

The example comes up COMPLETED; a changed replica count is an in-place update and a changed
image a replacement (which Pulumi carries out as create-then-delete, and the delete of the
replaced resource leaves the project running); a failing service fails `create` with its
reason and leaves nothing; `delete` leaves nothing behind; the secret given as a config is in
no output, record, file or log of the server in plain text. The last test drives the same
provider through Pulumi's own provider host process over gRPC, as the engine does.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]  # grpcio ships no type hints
import pytest
from pulumi.runtime import proto, rpc

from dockyard.client.api import connect
from pulumi_dockyard import DeploymentFailed, ProjectProvider
from pulumi_dockyard.provider import plain
from tests.support.deployments import (
    COMPLETED,
    SERVER_ENV,
    Dockyard,
    containers,
    env_of,
    free_port,
    labelled,
)
from tests.support.engine import engine_ready
from tests.support.pulumi_host import provider_host, struct, unstruct, with_provider
from tests.support.pulumi_mocks import DYNAMIC_PROJECT, Recorder, plain_strings, run_program

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
]

PROGRAMS = Path(__file__).resolve().parents[2] / "examples" / "pulumi"
SECRET = "pulumi-secret-7f3a9c"


@pytest.fixture
def dockyard(dockyard_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dockyard]:
    """The local server of this test's DOCKYARD_HOME (the autouse fixture sets it), with the
    engine tests' settings: the provider's client finds it. Gone afterwards."""
    for key, value in SERVER_ENV.items():
        monkeypatch.setenv(key, value)
    dy = Dockyard(dockyard_home)
    try:
        # Started by the CLI, as a user's would be: the provider's client then finds it.
        assert dy.cli("whoami").code == 0
        yield dy
    finally:
        dy.close()


def shop_props(project: str) -> dict[str, Any]:
    """What `examples/pulumi/shop` hands its provider, under a unique name, with a free host
    port for `metrics` and a secret for `api` (as the program would give one)."""
    mocks = Recorder()
    run_program(PROGRAMS / "shop" / "__main__.py", mocks)
    [(_, inputs)] = mocks.of_type(DYNAMIC_PROJECT)
    props: dict[str, Any] = plain(inputs)
    props["project_name"] = project
    props["services"]["metrics"]["ports"][0]["published"] = free_port()
    props["services"]["api"]["environment"]["SHOP_SECRET"] = "${SHOP_SECRET}"
    props["configs"] = {"SHOP_SECRET": SECRET}
    return props


def outs_of(result: Any) -> dict[str, Any]:
    """The outputs of a create, update or read (Pulumi's result classes type them Optional)."""
    outs: dict[str, Any] | None = result.outs
    assert outs is not None
    return outs


def states(outs: dict[str, Any]) -> dict[str, str]:
    return {name: str(s["state"]) for name, s in outs["status"].items()}


def nothing_left(project: str) -> None:
    assert containers(project) == []
    assert labelled("network", project) == []
    assert labelled("volume", project) == []


def no_plain_secret(dockyard: Dockyard, deployment: str) -> None:
    found = [str(p) for p in dockyard.home.rglob("*") if p.is_file()
             and SECRET.encode() in p.read_bytes()]
    assert found == []  # the store, the server's log, its uploads ...
    assert SECRET not in str(dockyard.api(f"/v1/deployments/{deployment}"))


def test_the_example_comes_up_updates_in_place_is_replaced_and_is_deleted(
        dockyard: Dockyard) -> None:
    project = dockyard.name("pulumi-shop")
    props = shop_props(project)
    provider = ProjectProvider()

    created = provider.create(props)
    outs = outs_of(created)
    assert states(outs) == dict.fromkeys(["api", "db", "metrics", "migrate", "web"], COMPLETED)
    assert sorted(outs["endpoints"]) == ["api", "metrics", "web"]
    assert outs["endpoints"]["web"].startswith("https://web--8080.")
    assert rpc.is_rpc_secret(outs["configs"])
    assert SECRET not in " ".join(plain_strings(outs))
    no_plain_secret(dockyard, outs["deployment"])
    assert env_of(containers(project, service="api")[0])["SHOP_SECRET"] == SECRET  # it arrived
    assert dockyard.ps(project)["api"]["replicas"] == 2

    same = provider.diff(created.id, outs, props)
    assert (same.changes, same.replaces) == (False, [])

    scaled = copy.deepcopy(props)
    scaled["services"]["api"]["deploy"]["replicas"] = 3
    diff = provider.diff(created.id, outs, scaled)
    assert (diff.changes, diff.replaces) == (True, [])  # in place
    web = {c["Id"] for c in containers(project, service="web")}
    outs = outs_of(provider.update(created.id, outs, scaled))
    assert dockyard.ps(project)["api"]["replicas"] == 3
    assert {c["Id"] for c in containers(project, service="web")} == web  # kept
    assert states(outs)["api"] == COMPLETED

    reimaged = copy.deepcopy(scaled)
    reimaged["services"]["metrics"].pop("build")
    reimaged["services"]["metrics"]["image"] = "dockyard/busybox:1"
    reimaged["services"]["metrics"]["command"] = ["httpd", "-f", "-p", "9100", "-h", "/"]
    diff = provider.diff(created.id, outs, reimaged)
    assert (diff.changes, diff.replaces) == (True, ["services"])
    # Pulumi replaces by creating the new resource, then deleting the old one.
    replacement = provider.create(reimaged)
    new_outs = outs_of(replacement)
    assert replacement.id != created.id
    provider.delete(created.id, outs)
    running = dockyard.ps(project)
    assert {name: row["state"] for name, row in running.items()} == \
        dict.fromkeys(["api", "db", "metrics", "migrate", "web"], COMPLETED)
    assert running["metrics"]["deployment"] == new_outs["deployment"]

    read = provider.read(replacement.id, new_outs)
    assert read.id == replacement.id and states(outs_of(read)) == states(new_outs)

    provider.delete(replacement.id, new_outs)
    nothing_left(project)
    with connect() as client:
        assert client.configs(project) == []
    assert provider.read(replacement.id, new_outs).id is None


def test_a_failing_service_fails_create_with_its_reason_and_leaves_nothing(
        dockyard: Dockyard, tmp_path: Path) -> None:
    project = dockyard.name("pulumi-failing")
    props = {"project_name": project, "program_dir": str(tmp_path), "services": {
        "setup": {"image": "dockyard/busybox:1", "restart": "no",
                  "command": ["sh", "-c", "echo setup-failed; exit 4"]},
        "app": {"image": "dockyard/busybox:1", "stop_grace_period": "1s",
                "command": ["nc", "-ll", "-p", "8000", "-e", "echo", "ok"],
                "depends_on": {"setup": {"condition": "service_completed_successfully"}}}}}
    with pytest.raises(DeploymentFailed, match=r"setup: SERVICE_DEPLOYMENT_FAILED \(.+\)"):
        ProjectProvider().create(props)
    nothing_left(project)


def service_props(project: str, name: str, directory: Path) -> dict[str, Any]:
    """What a standalone `Service(name, image=..., project_name=project)` hands its provider."""
    return {"project_name": project, "program_dir": str(directory), "only": [name],
            "services": {name: {"image": "dockyard/busybox:1", "stop_grace_period": "1s",
                                "command": ["httpd", "-f", "-p", "8080", "-h", "/"]}}}


def test_standalone_services_of_one_project_come_and_go_one_by_one(
        dockyard: Dockyard, tmp_path: Path) -> None:
    project = dockyard.name("pulumi-services")
    provider = ProjectProvider()
    first = provider.create(service_props(project, "one", tmp_path))
    second = provider.create(service_props(project, "two", tmp_path))
    assert states(outs_of(first)) == {"one": COMPLETED}
    assert states(outs_of(second)) == {"two": COMPLETED}
    assert {name: row["state"] for name, row in dockyard.ps(project).items()} == \
        {"one": COMPLETED, "two": COMPLETED}

    provider.delete(first.id, outs_of(first))
    assert containers(project, service="one") == []
    assert dockyard.ps(project)["two"]["state"] == COMPLETED
    provider.delete(second.id, outs_of(second))
    nothing_left(project)


def test_through_pulumis_provider_host_a_failure_and_a_project_from_create_to_delete(
        dockyard: Dockyard, tmp_path: Path) -> None:
    """As the engine drives it: `python -m pulumi.dynamic` in its own process, over gRPC."""
    failing = dockyard.name("pulumi-host-failing")
    project = dockyard.name("pulumi-host")
    web = {"image": "dockyard/busybox:1", "stop_grace_period": "1s",
           "command": ["httpd", "-f", "-p", "8080", "-h", "/"],
           "ports": [{"target": 8080, "mode": "ingress"}],
           "environment": {"WEB_SECRET": "${WEB_SECRET}"}}
    with provider_host() as host:
        bad = with_provider({"project_name": failing, "program_dir": str(tmp_path),
                             "services": {"web": {**web, "command": ["sh", "-c", "exit 3"],
                                                  "restart": "no", "ports": []}},
                             "configs": {"WEB_SECRET": SECRET}})
        with pytest.raises(grpc.RpcError) as caught:
            host.Create(proto.CreateRequest(urn="u", properties=struct(bad)), timeout=300)
        assert "web: SERVICE_DEPLOYMENT_FAILED (" in caught.value.details()
        assert SECRET not in caught.value.details()
        nothing_left(failing)

        props = with_provider({"project_name": project, "program_dir": str(tmp_path),
                               "services": {"web": web},
                               "configs": rpc.wrap_rpc_secret({"WEB_SECRET": SECRET})})
        created = host.Create(proto.CreateRequest(urn="u", properties=struct(props)),
                              timeout=300)
        outs = unstruct(created.properties)
        assert outs["status"]["web"]["state"] == COMPLETED
        assert outs["endpoints"]["web"].startswith("https://web--8080.")
        assert rpc.is_rpc_secret(outs["configs"])
        assert SECRET not in " ".join(plain_strings(outs))
        host.Delete(proto.DeleteRequest(id=created.id, urn="u", properties=created.properties),
                    timeout=300)
    nothing_left(project)
