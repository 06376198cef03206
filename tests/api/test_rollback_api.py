"""Rollback over the API (fake engine): it runs again exactly what a recorded deployment ran
(images by digest, configs at the versions it ran), refuses what it cannot reproduce before
anything changes, and a failed deployment that asks for it rolls back by itself. Deployments
record who ran them, from what, their plan and their config versions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.deployments import eventually
from tests.support.server import IMAGE, Server, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as running:
        yield running


def services(command: str = "sleep 1000", **web: Any) -> dict[str, Any]:
    return {"web": {"image": IMAGE, "command": ["sh", "-c", command],
                    "environment": {"TOKEN": None}, **web},
            "db": {"image": IMAGE, "command": ["sleep", "1000"]}}


def started(server: Server, path: str, **body: Any) -> dict[str, Any]:
    response = server.call("POST", path, json=body)
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


def detail(server: Server, deployment: str) -> dict[str, Any]:
    response = server.call("GET", f"/v1/deployments/{deployment}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def rolled_back(server: Server, deployment: str) -> dict[str, Any] | None:
    """The deployment's record once its automatic rollback started."""
    record: dict[str, Any] = detail(server, deployment)["record"]
    return record if record["rolled_back_by"] else None


def test_a_rollback_runs_the_config_version_and_image_the_deployment_ran(server: Server
                                                                          ) -> None:
    server.set_config("shop", "TOKEN", "first-secret")
    good, status = server.up("shop", services())
    assert status == "succeeded"
    assert detail(server, good)["configs"] == {"TOKEN": 1}
    db = server.containers("shop")["db"]

    server.set_config("shop", "TOKEN", "second-secret")
    bad, status = server.up("shop", services("sleep 2000"))
    assert status == "succeeded"  # a bad version that passed its checks
    assert server.spec_of("shop", "web").environment["TOKEN"] == "second-secret"

    plan = server.call("POST", "/v1/projects/shop/rollback/plan", json={}).json()
    assert plan["rollback_of"] == good
    actions = {s["service"]: s["action"] for s in plan["services"]}
    assert actions == {"web": "replace", "db": "keep"}
    assert server.spec_of("shop", "web").environment["TOKEN"] == "second-secret"  # no change

    answer = started(server, "/v1/projects/shop/rollback")
    assert answer["rollback_of"] == good
    assert server.events(answer["deployment"])[1] == "succeeded"
    web = server.spec_of("shop", "web")
    assert web.environment["TOKEN"] == "first-secret"
    assert web.command == ("sh", "-c", "sleep 1000")
    assert server.containers("shop")["db"] == db  # unchanged: kept
    record = detail(server, answer["deployment"])
    assert record["action"] == "rollback" and record["record"]["rollback_of"] == good
    assert record["configs"] == {"TOKEN": 1}
    stored = server.call("GET", "/v1/projects/shop/configs").json()
    assert [c["name"] for c in stored] == ["TOKEN"]  # the stored config is not changed
    assert "first-secret" not in "".join(server.bodies)
    assert "second-secret" not in "".join(server.bodies)
    assert bad != good


def test_a_rollback_to_a_config_version_no_longer_kept_is_refused(server: Server) -> None:
    server.set_config("shop", "TOKEN", "v1")
    good, _ = server.up("shop", services())
    for number in range(2, 14):  # 12 more values: version 1 falls out of the kept history
        server.set_config("shop", "TOKEN", f"v{number}")
    server.up("shop", services("sleep 2000"))
    before = server.containers("shop")
    response = server.call("POST", "/v1/projects/shop/rollback", json={"deployment": good})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["kind"] == "ProjectInvalid"
    assert "'TOKEN' version 1" in body["diagnostics"][0]["message"]
    assert server.containers("shop") == before  # nothing changed
    assert [d["action"] for d in server.call("GET", "/v1/deployments").json()] == ["up", "up"]


def test_a_rollback_needs_an_earlier_completed_deployment(server: Server) -> None:
    server.set_config("shop", "TOKEN", "v1")
    only, _ = server.up("shop", services())
    response = server.call("POST", "/v1/projects/shop/rollback", json={})
    assert response.status_code == 404
    assert only in response.json()["error"]
    wrong = server.call("POST", "/v1/projects/other/rollback", json={"deployment": only})
    assert wrong.status_code == 404  # a deployment of another project
    bob = server.call("POST", "/v1/projects/shop/rollback", who="bob", json={"deployment": only})
    assert bob.status_code == 404  # nor of another account


def test_a_failed_deployment_rolls_back_when_asked(server: Server) -> None:
    server.set_config("shop", "TOKEN", "v1")
    good, _ = server.up("shop", services())
    answer = started(server, "/v1/projects/shop/deployments",
                     project={"name": "shop", "services": services("crash")},
                     rollback_on_failure=True)
    failed = answer["deployment"]
    assert server.events(failed)[1] == "failed"
    record = eventually(lambda: rolled_back(server, failed), "the rollback to start")
    assert record["rolled_back_to"] == good and record["options"]["rollback_on_failure"]
    assert server.events(record["rolled_back_by"])[1] == "succeeded"
    assert server.spec_of("shop", "web").command == ("sh", "-c", "sleep 1000")


def test_failure_action_rollback_rolls_back_without_the_flag(server: Server) -> None:
    server.set_config("shop", "TOKEN", "v1")
    good, _ = server.up("shop", services())
    update = {"deploy": {"update_config": {"failure_action": "rollback"}}}
    failed, status = server.up("shop", services("crash", **update))
    assert status == "failed"
    record = eventually(lambda: rolled_back(server, failed), "the rollback to start")
    assert record["rolled_back_to"] == good
    assert server.events(record["rolled_back_by"])[1] == "succeeded"


def test_a_deployment_records_its_origin_plan_and_outcome(server: Server) -> None:
    server.set_config("shop", "TOKEN", "v1")
    origin = {"client_version": "9.9.9", "user": "carol", "git_commit": "a" * 40,
              "git_dirty": True, "git_branch": "feature/x" + "y" * 300}
    answer = started(server, "/v1/projects/shop/deployments",
                     project={"name": "shop", "services": services()}, origin=origin,
                     force=True)
    assert server.events(answer["deployment"])[1] == "succeeded"
    found = detail(server, answer["deployment"])
    record = found["record"]
    assert record["account"] == "alice" and record["user"] == "carol"
    assert record["client_version"] == "9.9.9" and record["server_version"]
    assert record["git_commit"] == "a" * 40 and record["git_dirty"] is True
    assert len(record["git_branch"]) == 200  # bounded: a client cannot grow the store
    assert record["options"] == {"force": True}
    assert {p["service"]: p["action"] for p in found["plan"]} == {"web": "create",
                                                                   "db": "create"}
    assert found["outcome"] == {"web": "SERVICE_DEPLOYMENT_COMPLETED",
                                "db": "SERVICE_DEPLOYMENT_COMPLETED"}
    assert sorted(found["compose"]["services"]) == ["db", "web"]
    assert found["finished_at"]
    listed = server.call("GET", "/v1/deployments", params={"status": "failed"}).json()
    assert listed == []
    bad = server.call("GET", "/v1/deployments", params={"status": "nonsense"})
    assert bad.status_code == 422


def test_a_partial_deployment_is_rolled_back_to_as_partial(server: Server) -> None:
    server.set_config("shop", "TOKEN", "v1")
    server.up("shop", services())
    partial = started(server, "/v1/projects/shop/deployments", services=["web"],
                      project={"name": "shop", "services": services("sleep 1500")})
    assert server.events(partial["deployment"])[1] == "succeeded"
    server.up("shop", services("sleep 2000"))
    db = server.containers("shop")["db"]
    answer = started(server, "/v1/projects/shop/rollback", deployment=partial["deployment"])
    assert server.events(answer["deployment"])[1] == "succeeded"
    assert server.spec_of("shop", "web").command == ("sh", "-c", "sleep 1500")
    assert server.containers("shop")["db"] == db  # not part of that deployment: untouched
    assert detail(server, answer["deployment"])["record"]["options"]["services"] == ["web"]
