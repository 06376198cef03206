"""The client returns typed answers (`dockyard.wire_models`) and the CLI prints them: its
`--json` output is, byte for byte, the server's own answer pretty-printed, as it was when the
CLI printed the server's dictionaries."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.cli.main import main
from dockyard.client import api
from dockyard.wire_models import ConfigBody, RegistryLoginBody, ServiceStatus
from tests.support.cli import REGISTRY_HOST as HOST
from tests.support.cli import REGISTRY_PASSWORD as PASSWORD
from tests.support.ledger import LEDGER, deploy_ledger
from tests.support.server import IMAGE, Server, running_server


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """Alice's deployed ledger project, and a registry login; the CLI reaches the server."""
    with running_server(tmp_path) as running:
        running.driver.registry_users[HOST] = ("alice", PASSWORD)

        def connect(*_args: object, **_kwargs: object) -> api.Client:
            return running.client_of("alice")

        monkeypatch.setattr(api, "connect", connect)
        deploy_ledger(running)
        login = running.call("PUT", f"/v1/registries/{HOST}",
                             json={"username": "alice", "password": PASSWORD})
        assert login.status_code == 200, login.text
        yield running


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         *args: str) -> str:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(list(args)) == 0
    return capsys.readouterr().out


def _answer(server: Server, path: str) -> Any:
    response = server.call("GET", path)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(("args", "path"), [
    (("compose", "ps", "-p", LEDGER, "--json"), f"/v1/projects/{LEDGER}/services"),
    (("compose", "ps", "-p", LEDGER, "--long", "--json"), f"/v1/projects/{LEDGER}/services"),
    (("deployments", "-p", LEDGER, "--json"), f"/v1/deployments?project={LEDGER}&limit=50"),
    (("config", "ls", "-p", LEDGER, "--json"), f"/v1/projects/{LEDGER}/configs"),
    (("registry", "ls", "--json"), "/v1/registries"),
])
def test_json_output_is_the_servers_answer(server: Server, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str],
                                           args: tuple[str, ...], path: str) -> None:
    answer = _answer(server, path)
    assert answer, "nothing to compare"
    assert _cli(monkeypatch, capsys, *args) == json.dumps(answer, indent=2) + "\n"


def test_whoami_json(server: Server, monkeypatch: pytest.MonkeyPatch,
                     capsys: pytest.CaptureFixture[str]) -> None:
    me = _answer(server, "/v1/whoami")
    printed = _cli(monkeypatch, capsys, "whoami", "--json")
    assert printed == json.dumps({"account": me["account"], "server": "http://testserver",
                                  "mode": me["mode"], "zone": me["zone"]}, indent=2) + "\n"


def test_the_client_reads_each_answer_into_its_type(server: Server) -> None:
    client = api.connect()
    with client:
        (row, *_) = client.services(LEDGER)
        assert row.to_json() == _answer(server, f"/v1/projects/{LEDGER}/services")[0]
        (item,) = client.deployments(LEDGER)
        detail = client.deployment(item.id)
        assert detail.to_json() == _answer(server, f"/v1/deployments/{item.id}")
        assert detail.events and detail.events[0].service
        assert client.whoami().to_json() == _answer(server, "/v1/whoami")
        assert [c.name for c in client.configs(LEDGER)] == \
            [c["name"] for c in _answer(server, f"/v1/projects/{LEDGER}/configs")]
        assert client.services("no-such-project") == []
        project = {"name": "other", "services": {"web": {"image": IMAGE}}}
        plan = client.plan("other", project, {})
        raw = server.call("POST", "/v1/projects/other/plan", json={"project": project})
        assert plan.to_json() == raw.json() and plan.services[0].action == "create"
        started = client.redeploy(item.id)
        assert (started.project, started.deployment != item.id) == (LEDGER, True)
        assert server.events(started.deployment)[1] == "succeeded"


def test_the_openapi_document_describes_the_answers(server: Server) -> None:
    document = _answer(server, "/v1/openapi.json")
    paths, schemas = document["paths"], document["components"]["schemas"]

    def answer(method: str, path: str, status: str = "200") -> Any:
        return paths[path][method]["responses"][status]["content"]["application/json"]["schema"]

    assert answer("get", "/v1/projects/{project}/services")["items"] == \
        {"$ref": "#/components/schemas/ServiceStatus"}
    assert answer("get", "/v1/deployments/{deployment}") == \
        {"$ref": "#/components/schemas/DeploymentDetail"}
    assert answer("post", "/v1/projects/{project}/plan") == \
        {"$ref": "#/components/schemas/PlanAnswer"}
    assert answer("get", "/v1/whoami", "4XX") == {"$ref": "#/components/schemas/ErrorBody"}
    assert list(schemas["ServiceStatus"]["properties"]) == [
        "service", "deployment", "state", "state_number", "reason", "since", "fqdn",
        "endpoint", "endpoints", "replicas", "running", "exposure", "image", "nodes",
        "pinned_node", "expires_at"]
    assert "password" in schemas["RegistryLoginBody"]["properties"]


def test_bodies_compare_by_value_and_never_show_a_secret() -> None:
    login = RegistryLoginBody(username="alice", password="pw-never-shown-41c2")
    assert "pw-never-shown" not in repr(login) and "alice" in repr(login)
    assert "value-never-shown" not in repr(ConfigBody(value="value-never-shown"))
    row = ServiceStatus(service="web", deployment="d1", state="BUILD_RUNNING")
    assert row == ServiceStatus.from_json(row.to_json())
    assert row != ServiceStatus(service="db", deployment="d1", state="BUILD_RUNNING")
