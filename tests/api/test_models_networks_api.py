"""Model providers, Compose networks, shared namespaces and cap_add through the HTTP API
in-process: what admission refuses (before anything is recorded), what the containers get, and
that the model key never reaches an answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dockyard.naming import NamingMode
from dockyard.runtime.specs import scope
from dockyard.server.settings import Limits
from tests.support.server import IMAGE, log_answer, running_server

BUSYBOX = {"image": IMAGE, "command": ["sleep", "1d"]}
MODEL = {"llm": {"provider": {"type": "model", "options": {"model": "ai/smollm2"}}},
         "app": {**BUSYBOX, "depends_on": ["llm"]}}
KEY = "sk-model-key-never-shown"


def _codes(response: Any) -> list[tuple[str, str]]:
    return [(d["code"], d["path"]) for d in response.json().get("diagnostics", [])]


def test_a_model_without_an_endpoint_is_refused_before_anything_is_recorded(
        tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        response = server.deploy("chat", MODEL)
        assert response.status_code == 422, response.text
        assert ("model-endpoint-missing", "services.app") in _codes(response)
        assert "app, llm use an AI model" in response.text
        assert "--model-endpoint" in response.text
        assert server.store.deployments(server.accounts["alice"], "chat") == []
        assert server.containers("chat") == {}


def test_dependents_get_the_endpoint_the_model_and_the_key_which_no_answer_shows(
        tmp_path: Path) -> None:
    with running_server(tmp_path, model_endpoint="http://models.example/v1/",
                        model_key=KEY) as server:
        deployment, status = server.up("chat", MODEL)
        assert status == "succeeded"
        env = server.spec_of("chat", "app").environment
        assert env["LLM_URL"] == "http://models.example/v1/"
        assert env["LLM_MODEL"] == "ai/smollm2" and env["LLM_API_KEY"] == KEY
        assert set(server.containers("chat")) == {"app"}  # the provider runs nothing
        rows = {r["service"]: r
                for r in server.call("GET", "/v1/projects/chat/services").json()}
        assert rows["llm"]["state"] == "SERVICE_DEPLOYMENT_COMPLETED"
        assert "ai/smollm2" in rows["llm"]["reason"] and rows["llm"]["replicas"] == 0
        assert rows["llm"]["fqdn"] == ""
        server.call("GET", f"/v1/deployments/{deployment}")
        server.call("GET", "/v1/projects/chat/configs")
        # the fake containers print their whole environment: the key line is there, masked
        lines = [str(data["line"]) for kind, data in log_answer(server.client_of(), "chat")
                 if kind == "log"]
        assert any(line.startswith("env LLM_API_KEY=") for line in lines), lines
        server.bodies.extend(lines)
        # A second `up` keeps both: the key and the variables are part of what is compared.
        _, again = server.up("chat", MODEL)
        assert again == "succeeded" and set(server.containers("chat")) == {"app"}
        assert all(KEY not in body for body in server.bodies)


def test_networks_are_made_per_project_and_removed_by_down(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        services = {"a": {**BUSYBOX, "networks": ["front"]},
                    "b": {**BUSYBOX, "networks": ["back"]},
                    "c": {**BUSYBOX, "networks": ["front", "back"],
                          "cap_add": ["NET_ADMIN"]},
                    "side": {**BUSYBOX, "network_mode": "service:c"}}
        response = server.call("POST", "/v1/projects/nets/deployments", json={"project": {
            "name": "nets", "services": services,
            "networks": {"front": {}, "back": {"internal": True}}}, "builds": {}})
        assert response.status_code == 202, response.text
        assert server.events(str(response.json()["deployment"]))[1] == "succeeded"
        base = scope(server.control.placement(server.accounts["alice"], "nets"))
        assert {base, f"{base}_front", f"{base}_back"} <= server.driver.networks
        assert server.driver.network_labels[f"{base}_back"].get("internal") == "true"
        side = server.spec_of("nets", "side")
        (c_id,) = server.containers("nets")["c"]
        assert side.network_mode == f"container:{c_id}"
        assert server.spec_of("nets", "c").cap_add == ("NET_ADMIN",)
        assert server.down("nets") == "succeeded"
        assert not {n for n in server.driver.networks if n.startswith(base)}


def test_namespaces_outside_the_project_and_extra_capabilities_are_refused(
        tmp_path: Path) -> None:
    with running_server(tmp_path, mode=NamingMode.PLAYGROUND, zone="prod1a.localhost",
                        limits=Limits(), allow_images=("dockyard/busybox:*",)) as server:
        response = server.deploy("odd", {
            "a": {**BUSYBOX, "network_mode": "host"},
            "b": {**BUSYBOX, "cap_add": ["SYS_ADMIN"]},
            "c": {**BUSYBOX, "cap_add": ["NET_BIND_SERVICE"]}}, who="bob")
        assert response.status_code == 422, response.text
        codes = _codes(response)
        assert ("network-mode-refused", "services.a.network_mode") in codes
        assert ("capability-refused", "services.b.cap_add") in codes
        assert not any(path.startswith("services.c") for _, path in codes)
        assert server.store.deployments(server.accounts["bob"], "odd") == []


def test_restarting_a_service_restarts_the_services_in_its_namespaces_after_it(
        tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        services = {"app": BUSYBOX, "side": {**BUSYBOX, "network_mode": "service:app"},
                    "other": BUSYBOX}
        assert server.up("pods", services)[1] == "succeeded"
        deployment = server.client_of().restart("pods", ["app"])
        assert server.events(deployment)[1] == "succeeded"
        containers = server.containers("pods")
        (app,), (side,) = containers["app"], containers["side"]
        assert server.driver.restarts == [app, side]
