"""The wire format and admission, over the HTTP API in-process (issue: a shared server safe
against its tenants).

- A submitted project that names a server path (`env_file`, `label_file`, `extends`,
  `include`, file- or environment-based secrets and configs, a build context other than the
  uploaded one) is refused with 422 `server-path`, and nothing of what it names reaches any
  answer.
- Values no engine takes sensibly are refused with 422 `invalid-value`, naming the key.
- External volumes and networks are refused on a playground server.
- Concurrent admissions respect the project limit: of four projects sent at once against a
  limit of one, exactly one is accepted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.naming import NamingMode
from dockyard.server.settings import Limits
from tests.support.server import IMAGE, Server, running_server

BUSYBOX = {"image": IMAGE, "command": ["sleep", "1d"]}


@pytest.fixture
def playground(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path, mode=NamingMode.PLAYGROUND, zone="prod1a.localhost",
                        limits=Limits(), allow_images=("dockyard/busybox:*",)) as running:
        yield running


def _post(server: Server, project: dict[str, Any], who: str = "bob") -> Any:
    name = project.get("name", "p")
    return server.client.post(f"/v1/projects/{name}/deployments", headers=server.auth(who),
                              json={"project": project, "builds": {}})


def _codes(response: Any) -> list[tuple[str, str]]:
    return [(d["code"], d["path"]) for d in response.json().get("diagnostics", [])]


@pytest.mark.parametrize(("project", "path"), [
    ({"services": {"web": {**BUSYBOX, "env_file": ["/etc/os-release"]}}},
     "services.web.env_file"),
    ({"services": {"web": {**BUSYBOX, "env_file": [{"path": "<data>/config.key"}]}}},
     "services.web.env_file"),
    ({"services": {"web": {**BUSYBOX, "env_file": "/proc/self/environ"}}},
     "services.web.env_file"),
    ({"services": {"web": {**BUSYBOX, "label_file": "/etc/hostname"}}},
     "services.web.label_file"),
    ({"services": {"web": {**BUSYBOX, "extends": {"file": "/etc/passwd", "service": "x"}}}},
     "services.web.extends"),
    ({"include": ["/etc/compose.yaml"], "services": {"web": BUSYBOX}}, "include"),
    ({"services": {"web": {**BUSYBOX, "secrets": ["s"]}},
      "secrets": {"s": {"file": "/etc/shadow"}}}, "secrets.s.file"),
    ({"services": {"web": {**BUSYBOX, "secrets": ["s"]}},
      "secrets": {"s": {"environment": "HOME"}}}, "secrets.s.environment"),
    ({"services": {"web": {**BUSYBOX, "configs": ["c"]}},
      "configs": {"c": {"file": "/etc/passwd"}}}, "configs.c.file"),
    ({"services": {"web": {"build": {"context": "/etc"}}}}, "services.web.build.context"),
    ({"services": {"web": {"build": {"context": ".", "dockerfile": "../../etc/passwd"}}}},
     "services.web.build.dockerfile"),
    ({"services": {"web": {"build": {"context": ".", "additional_contexts": {"x": "/etc"}}}}},
     "services.web.build.additional_contexts"),
    ({"services": {"web": {**BUSYBOX, "volumes": ["/etc:/host"]}}}, "services.web.volumes[0]"),
])
def test_a_project_naming_a_server_path_is_refused_unread(
        playground: Server, project: dict[str, Any], path: str) -> None:
    data_key = str(playground.settings.data / "config.key")
    text = repr(project).replace("<data>/config.key", data_key)
    project = eval(text)  # noqa: S307 - the test's own literal, with the real data path
    project["name"] = "leak"
    response = _post(playground, project)
    assert response.status_code == 422, response.text
    assert ("server-path", path) in _codes(response), response.text
    key = (playground.settings.data / "config.key").read_bytes().strip().decode()
    for secret in (key, "PRETTY_NAME", "root:"):
        assert secret not in response.text
    assert playground.store.deployments(playground.accounts["bob"], "leak") == []


@pytest.mark.parametrize(("service", "path"), [
    ({"deploy": {"resources": {"limits": {"cpus": "-1"}}}}, "deploy.resources.limits.cpus"),
    ({"deploy": {"resources": {"limits": {"memory": "1b"}}}}, "deploy.resources.limits.memory"),
    ({"deploy": {"resources": {"limits": {"pids": -5}}}}, "deploy.resources.limits.pids"),
    ({"deploy": {"replicas": -1}}, "deploy.replicas"),
    ({"environment": {"A\u0000B": "x"}}, "environment.A\u0000B"),
    ({"environment": {"A": "x\u0000y"}}, "environment.A"),
    ({"working_dir": "relative/dir"}, "working_dir"),
    ({"volumes": [{"type": "volume", "source": "data", "target": "relative"}]}, "volumes[0]"),
    ({"extra_hosts": ["nocolon"]}, "extra_hosts[0]"),
    ({"hostname": "h" * 500}, "hostname"),
    ({"ports": [str(8000 + i) for i in range(500)]}, "ports"),
])
def test_values_no_engine_takes_are_refused_with_the_key(
        playground: Server, service: dict[str, Any], path: str) -> None:
    project = {"name": "odd", "services": {"web": {**BUSYBOX, **service}},
               "volumes": {"data": {}}}
    response = _post(playground, project)
    assert response.status_code == 422, response.text
    codes = _codes(response)
    assert any(code in ("invalid-value", "schema") and where.startswith(f"services.web.{path}")
               for code, where in codes), codes


def test_absurd_query_numbers_are_not_a_server_error(playground: Server) -> None:
    response = playground.client.get("/v1/deployments", params={"limit": 10**20},
                                     headers=playground.auth("bob"))
    assert response.status_code in (200, 422), response.text


@pytest.mark.parametrize("kind", ["volumes", "networks"])
def test_external_volumes_and_networks_are_refused_on_a_shared_server(
        playground: Server, kind: str) -> None:
    mount = {"type": "volume", "source": "vault", "target": "/data"}
    reference = {"volumes": [mount]} if kind == "volumes" else {"networks": ["vault"]}
    project = {"name": "squat", "services": {"web": {**BUSYBOX, **reference}},
               kind: {"vault": {"external": True, "name": "dy-alice-vault_data"}}}
    response = _post(playground, project)
    assert response.status_code == 422, response.text
    assert ("external-refused", f"{kind}.vault.external") in _codes(response)
    assert playground.driver.volume_set == {} and not playground.driver.networks


def test_concurrent_projects_respect_a_limit_of_one(playground: Server) -> None:
    barrier = threading.Barrier(4)
    answers: list[int] = []
    lock = threading.Lock()

    def send(index: int) -> None:
        barrier.wait()
        response = _post(playground, {"name": f"race{index}", "services": {"web": BUSYBOX}})
        with lock:
            answers.append(response.status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [202, 422, 422, 422], answers


def test_a_config_value_with_a_nul_byte_is_refused(playground: Server) -> None:
    response = playground.client.put("/v1/projects/p/configs/TOKEN", json={"value": "a\u0000b"},
                                     headers=playground.auth("bob"))
    assert response.status_code == 422, response.text
    assert "NUL" in response.json()["error"]
    assert "a\u0000b" not in response.text
