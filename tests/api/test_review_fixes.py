"""What a second adversarial review of the shared server found, fixed, in-process.

- deployment event streams are counted per account like log follows (429 over the cap);
- a `down` refused because a deployment runs is finished as refused at once, and a down
  records an outline of the project, not another copy of it;
- configs are bounded: per project, and in the number of projects that hold them;
- a refused project's diagnostics never show the server's temporary file;
- an IP address, or a loopback name on a shared server, is not a custom domain.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.ingress.routes import is_hostname
from dockyard.naming import NamingMode
from dockyard.server.configs import MAX_CONFIGS_PER_PROJECT, MIN_CONFIG_PROJECTS
from dockyard.server.scrub import scrub_engine_text
from dockyard.server.settings import Limits
from dockyard.server.streams import FollowSlots
from tests.support.server import IMAGE, Server, running_server

WEB = {"image": IMAGE, "command": ["sleep", "1d"]}


@pytest.fixture
def playground(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path, mode=NamingMode.PLAYGROUND, zone="prod1a.localhost",
                        limits=Limits(), allow_images=("dockyard/busybox:*",)) as running:
        yield running


def _deploy(server: Server, name: str, services: dict[str, Any], who: str = "bob") -> Any:
    return server.client.post(f"/v1/projects/{name}/deployments", headers=server.auth(who),
                              json={"project": {"name": name, "services": services}})


def test_deployment_event_streams_are_counted_per_account(playground: Server) -> None:
    answer = _deploy(playground, "p", {"web": WEB})
    assert answer.status_code == 202, answer.text
    deployment = answer.json()["deployment"]
    watches = playground.client.app.state.watches  # type: ignore[attr-defined]
    assert isinstance(watches, FollowSlots) and watches.cap == Limits().follows
    held = [watches.take("bob") for _ in range(watches.cap)]
    refused = playground.client.get(f"/v1/deployments/{deployment}/events",
                                    headers=playground.auth("bob"))
    assert refused.status_code == 429, refused.text
    assert "deployment event streams" in refused.json()["error"]
    held.pop()()
    _, status = playground.events(deployment, who="bob")
    assert status in ("succeeded", "failed")
    assert watches.open("bob") == watches.cap - 1  # the stream gave its slot back


def test_a_down_refused_during_a_deployment_is_not_left_running(playground: Server) -> None:
    answer = _deploy(playground, "p", {"web": WEB, "x": {**WEB, "x-big": "a" * 100_000}})
    assert answer.status_code == 202, answer.text
    playground.events(answer.json()["deployment"], who="bob")
    bob = playground.accounts["bob"]
    playground.control.begin(bob, "p", "holding12345")  # a deployment runs
    try:
        for _ in range(3):
            refused = playground.client.post("/v1/projects/p/down", json={},
                                             headers=playground.auth("bob"))
            assert refused.status_code == 409, refused.text
    finally:
        playground.control.end(bob, "p")
    downs = [d for d in playground.store.deployments(bob, "p") if d.action == "down"]
    assert len(downs) == 3 and {d.status for d in downs} == {"refused"}
    stored = playground.store.deployed_project(bob, downs[0].id)
    assert stored == {"name": "p", "services": {"web": {}, "x": {}}}


def test_configs_are_bounded_per_project_and_in_projects(playground: Server) -> None:
    def put(project: str, name: str) -> Any:
        return playground.client.put(f"/v1/projects/{project}/configs/{name}",
                                     json={"value": "v"}, headers=playground.auth("bob"))

    for index in range(MAX_CONFIGS_PER_PROJECT):
        assert put("p0", f"C{index}").status_code == 200
    over = put("p0", "ONE_MORE")
    assert over.status_code == 422 and "100 configs" in over.json()["error"], over.text
    assert put("p0", "C0").status_code == 200  # replacing a value is always fine
    for index in range(1, MIN_CONFIG_PROJECTS):
        assert put(f"p{index}", "A").status_code == 200
    refused = put("junk", "A")
    assert refused.status_code == 422, refused.text
    assert "projects" in refused.json()["error"]


def test_diagnostics_never_show_the_servers_temporary_file(playground: Server) -> None:
    answer = _deploy(playground, "p", {"web": {**WEB, "no_such_key": 1}})
    assert answer.status_code == 422, answer.text
    assert "dockyard-project-" not in answer.text and "/tmp" not in answer.text
    (first, *_) = answer.json()["diagnostics"]
    assert first["file"] is None and first["path"] == "services.web.no_such_key", first


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "10.0.0.1", "1.2.3.4"])
def test_an_ip_address_is_not_a_domain(host: str) -> None:
    assert not is_hostname(host)
    assert is_hostname("shop.example.net") and is_hostname("1.example.net")


@pytest.mark.parametrize("host", ["127.0.0.1", "bank.localhost"])
def test_a_shared_server_refuses_addresses_and_loopback_names(playground: Server,
                                                              host: str) -> None:
    answer = _deploy(playground, "p", {"web": {**WEB, "ports": [{"target": 80}],
                                              "domainname": host}})
    assert answer.status_code == 422, answer.text
    codes = {d["code"] for d in answer.json()["diagnostics"]}
    assert codes == {"domain-invalid"}, json.dumps(answer.json())


def test_engine_urls_are_scrubbed() -> None:
    text = ("Error: Post http+docker://localhost/v1.41/build?labels=%7B%22dockyard.server"
            "%22%3A+%22abc%22%7D: read: connection reset")
    out = scrub_engine_text(text)
    assert "http+docker" not in out and "dockyard.server" not in out and "<engine>" in out


def test_tiny_contexts_are_charged_at_least_a_minimum_each(tmp_path: Path) -> None:
    import hashlib
    import io
    import tarfile

    from dockyard.server.contexts import MIN_CONTEXT_CHARGE, ContextStore

    store = ContextStore(tmp_path / "contexts", 1 << 20)
    for index in range(3):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            data = f"FROM x{index}\n".encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        body = buffer.getvalue()
        store.put("sha256:" + hashlib.sha256(body).hexdigest(), body, "7")
    assert store.usage("7") == 3 * MIN_CONTEXT_CHARGE
