"""Compose networks, shared namespaces, cap_add and model providers on the real engine (the
real CLI and a local server, ingress on), tested from inside the containers:

- two networks isolate the services on each; a service on both reaches both, by service name,
  by `<service>.<project>.internal` and by alias; an `internal` network has no route out; a
  public service on a network of its own is still reached by the ingress proxy; `down`
  removes every network;
- `network_mode: service:x` shares x's network namespace (localhost is x's), and is replaced
  with x;
- `cap_add` is in the container's CapAdd;
- a model provider's variables reach a dependent, which calls the endpoint (a local HTTP stub
  on the host) and gets its answer, with the key; the key shows in no ps, config or log output.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.deployments import (
    COMPLETED,
    Dockyard,
    by_service,
    containers,
    docker,
    docker_exec,
    labelled,
)
from tests.support.ingress import PROXY_MARKS

pytestmark = PROXY_MARKS

IMAGE = "dockyard/busybox:1"


def answer(text: str, port: int = 80) -> list[str]:
    """A server that answers every connection on `port` with `text`."""
    return ["sh", "-c", f"exec nc -ll -p {port} -e echo {text}"]


def write(directory: Path, project: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "compose.yaml").write_text(json.dumps(project))
    return directory


def one(project: str, service: str) -> dict[str, Any]:
    found = [c for c in by_service(containers(project)).get(service, [])
             if c["State"]["Running"]]
    assert len(found) == 1, f"{service}: {found}"
    return found[0]


def reach(container: dict[str, Any], host: str, port: int = 80) -> str:
    """What `host:port` answers from inside `container` ("" when it cannot be reached)."""
    return docker_exec(container, f"nc -w 3 {host} {port} </dev/null").stdout.strip()


def test_two_networks_isolate_their_services(dockyard: Dockyard, tmp_path: Path) -> None:
    project = dockyard.name("nets")
    directory = write(tmp_path / "nets", {"services": {
        "a": {"image": IMAGE, "command": answer("from-a"), "networks": ["front"],
              "stop_grace_period": "1s"},
        "b": {"image": IMAGE, "command": answer("from-b"), "networks": ["back"],
              "stop_grace_period": "1s"},
        "both": {"image": IMAGE, "command": answer("from-both"), "stop_grace_period": "1s",
                 "networks": {"front": {}, "back": {"aliases": ["hub"]}},
                 "cap_add": ["NET_ADMIN"]},
        "web": {"image": IMAGE, "networks": ["front"], "ports": ["8080"],
                "stop_grace_period": "1s",
                "command": ["sh", "-c", "mkdir -p /www && echo web > /www/index.html && "
                            "exec httpd -f -p 8080 -h /www"]}},
        "networks": {"front": {}, "back": {"internal": True}}})
    result = dockyard.up(directory, project)
    assert result.code == 0, str(result)
    rows = dockyard.ps(project)
    # web is COMPLETED only once the ingress proxy's own checks reached it on `front`
    assert {r["state"] for r in rows.values()} == {COMPLETED}, rows
    a, b, both = one(project, "a"), one(project, "b"), one(project, "both")

    assert reach(both, "a") == "from-a"
    assert reach(both, f"b.{project}.internal") == "from-b"
    assert reach(a, "both") == "from-both" and reach(b, "hub") == "from-both"
    assert reach(a, "hub") == ""  # an alias on `back` only
    assert reach(a, "b") == "" and reach(b, "a") == ""  # not even resolved
    b_address = next(n["IPAddress"] for n in b["NetworkSettings"]["Networks"].values())
    a_address = next(n["IPAddress"] for n in a["NetworkSettings"]["Networks"].values())
    assert reach(a, b_address) == "" and reach(b, a_address) == ""  # nor by address
    assert reach(both, b_address) == "from-b"

    networks = labelled("network", project)
    assert len(networks) == 3, networks
    internal = {n: docker("network", "inspect", n, "-f", "{{.Internal}}").stdout.strip()
                for n in networks}
    assert sorted(internal.values()) == ["false", "false", "true"], internal
    # No route out of `back` (Docker's internal network: nothing is forwarded from it); where
    # this machine reaches the internet, `front` does.
    outside = "nc -w 3 1.1.1.1 53 </dev/null && echo out"
    assert docker_exec(b, outside).stdout.strip() == ""
    if docker_exec(both, "true").returncode == 0 and docker_exec(a, outside).stdout.strip():
        assert docker_exec(both, outside).stdout.strip() == "out"
    assert "NET_ADMIN" in " ".join(both["HostConfig"]["CapAdd"] or [])

    down = dockyard.cli("compose", "down", "-p", project)
    assert down.code == 0, str(down)
    assert labelled("network", project) == []


def test_a_sidecar_shares_the_network_namespace_of_its_service(
        dockyard: Dockyard, tmp_path: Path) -> None:
    project = dockyard.name("side")
    compose: dict[str, Any] = {"services": {
        "app": {"image": IMAGE, "command": answer("from-app", 8081),
                "environment": {"VERSION": "1"}, "stop_grace_period": "1s"},
        "sidecar": {"image": IMAGE, "command": ["sleep", "1d"], "stop_grace_period": "1s",
                    "network_mode": "service:app"}}}
    directory = write(tmp_path / "side", compose)
    assert (result := dockyard.up(directory, project)).code == 0, str(result)
    app, sidecar = one(project, "app"), one(project, "sidecar")
    assert sidecar["HostConfig"]["NetworkMode"] == f"container:{app['Id']}"
    assert reach(sidecar, "127.0.0.1", 8081) == "from-app"  # app's own localhost

    compose["services"]["app"]["environment"] = {"VERSION": "2"}
    write(directory, compose)
    assert (again := dockyard.up(directory, project)).code == 0, str(again)
    new_app, new_sidecar = one(project, "app"), one(project, "sidecar")
    assert new_app["Id"] != app["Id"] and new_sidecar["Id"] != sidecar["Id"]
    assert new_sidecar["HostConfig"]["NetworkMode"] == f"container:{new_app['Id']}"
    assert reach(new_sidecar, "127.0.0.1", 8081) == "from-app"
    assert {r["state"] for r in dockyard.ps(project).values()} == {COMPLETED}


class _Stub(http.server.BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint's smallest part: GET .../models."""

    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        _Stub.seen.append((self.path, self.headers.get("Authorization", "")))
        body = json.dumps({"data": [{"id": "ai/smollm2"}], "stub": "hello from the stub"})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_model_provider_s_variables_reach_a_dependent_and_the_stub_answers(
        dockyard: Dockyard, tmp_path: Path, stub: int) -> None:
    gateway = docker("network", "inspect", "bridge", "-f",
                     "{{(index .IPAM.Config 0).Gateway}}").stdout.strip()
    key = "sk-stub-key-that-stays-on-the-server"
    dockyard.env.update(DOCKYARD_MODEL_ENDPOINT=f"http://{gateway}:{stub}/v1/",
                        DOCKYARD_MODEL_KEY=key)
    project = dockyard.name("model")
    directory = write(tmp_path / "model", {"services": {
        "ai_runner": {"provider": {"type": "model", "options": {"model": "ai/smollm2"}}},
        "chat": {"image": IMAGE, "depends_on": ["ai_runner"], "restart": "no",
                 # busybox's wget: `-T` crashes it, `--header` is enough
                 # ($$: the container's variables, not the client's)
                 "command": ["sh", "-c", 'wget -qO- --header "Authorization: Bearer '
                             '$$AI_RUNNER_API_KEY" "$${AI_RUNNER_URL}models?m=$$AI_RUNNER_MODEL"'
                             ' | grep -q "hello from the stub" && echo the stub answered']}}})
    result = dockyard.up(directory, project)
    assert result.code == 0, str(result)
    rows = dockyard.ps(project)
    assert rows["chat"]["state"] == COMPLETED and rows["ai_runner"]["state"] == COMPLETED
    assert "ai/smollm2" in rows["ai_runner"]["reason"]
    assert ("/v1/models?m=ai/smollm2", f"Bearer {key}") in _Stub.seen
    assert by_service(containers(project)).keys() == {"chat"}
    logs = dockyard.cli("logs", "-p", project)
    assert "the stub answered" in logs.out, str(logs)
    for output in (str(result), json.dumps(rows), str(logs),
                   str(dockyard.cli("config", "ls", "-p", project)),
                   str(dockyard.cli("compose", "ps", "--long", "-p", project))):
        assert key not in output
