"""Defang's `services` map as Compose (`pulumi_dockyard.fields`) and as Dockyard loads it
(`pulumi_dockyard.prepare`): every field of Defang's schema is either Compose under another
name, or refused by name; Compose's own spellings pass to Dockyard's loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pulumi_dockyard.errors import ServicesInvalid, UnsupportedField
from pulumi_dockyard.fields import SERVICE, camel, to_compose, wire_names
from pulumi_dockyard.prepare import prepare


def compose(services: dict[str, Any], directory: str = "/prog", **kw: Any) -> dict[str, Any]:
    return to_compose("demo", services, directory, **kw)


def test_defang_fields_become_compose() -> None:
    doc = compose({"app": {
        "image": "nginx",
        "ports": [{"target": 80.0, "mode": "ingress", "app_protocol": "http"}],
        "health_check": {"test": ["CMD", "true"], "interval_seconds": 5.0,
                         "timeout_seconds": 2, "start_period_seconds": 1, "retries": 3},
        "domain_name": "app.example.com",
        "deploy": {"replicas": 2.0, "resources": {"reservations": {"cpus": 0.5,
                                                                   "memory": "64M"}}},
        "depends_on": {"db": {"condition": "service_healthy", "required": True}},
        "volumes": [{"source": "data", "target": "/data", "read_only": True}],
        "autoscaling": False,
    }, "db": {"image": "postgres"}})
    app = doc["services"]["app"]
    assert app["ports"] == [{"target": 80, "mode": "ingress", "app_protocol": "http"}]
    assert app["healthcheck"] == {"test": ["CMD", "true"], "interval": "5s", "timeout": "2s",
                                  "start_period": "1s", "retries": 3}
    assert app["domainname"] == "app.example.com"
    assert app["deploy"]["replicas"] == 2 and isinstance(app["deploy"]["replicas"], int)
    assert app["volumes"] == [{"source": "data", "target": "/data", "read_only": True,
                               "type": "volume", "volume": {}}]
    assert doc["volumes"] == {"data": {}}
    assert "autoscaling" not in app and "health_check" not in app


@pytest.mark.parametrize("field, value", [
    ("postgres", {}), ("redis", {"allow_downtime": True}), ("object_store", {"bucket": "b"}),
    ("llm", {}), ("policies", ["arn:aws:iam::aws:policy/X"]), ("aliases", {"a": "b"}),
    ("autoscaling", True)])
def test_a_field_dockyard_does_not_run_is_refused_by_its_path(field: str, value: Any) -> None:
    with pytest.raises(UnsupportedField) as caught:
        compose({"app": {"image": "nginx", field: value}})
    assert caught.value.path == f"services.app.{field}"
    assert f"services.app.{field}" in str(caught.value) and "hint" in str(caught.value)


def test_a_port_listener_is_refused() -> None:
    with pytest.raises(UnsupportedField, match=r"services\.app\.ports\[0\]\.listener"):
        compose({"app": {"image": "nginx", "ports": [{"target": 80, "listener": "x"}]}})


def test_build_contexts_are_relative_to_the_program_directory() -> None:
    doc = compose({"a": {"build": {"context": "../shop/web", "args": {"R": "1"}}},
                   "b": {"build": "./b"}}, "/work/prog")
    assert doc["services"]["a"]["build"] == {"context": "/work/shop/web", "args": {"R": "1"}}
    assert doc["services"]["b"]["build"] == {"context": "/work/prog/b"}


def test_strings_are_literal_but_environment_values_are_templates() -> None:
    doc = compose({"a": {"image": "x", "command": ["echo", "$HOME costs $5"],
                         "environment": {"PASSWORD": "${PASSWORD}", "PRICE": "$$5"}}})
    assert doc["services"]["a"]["command"] == ["echo", "$$HOME costs $$5"]
    assert doc["services"]["a"]["environment"] == {"PASSWORD": "${PASSWORD}", "PRICE": "$$5"}


def test_no_services_is_refused() -> None:
    with pytest.raises(UnsupportedField, match="at least one service"):
        compose({})


def test_wire_names_are_defangs_property_names() -> None:
    assert camel("start_period_seconds") == "startPeriodSeconds"
    services = {"my_app": {"health_check": {"interval_seconds": 5}, "depends_on": {
        "db_x": {"condition": "service_started"}}, "environment": {"MY_VAR": "1"},
        "ports": [{"app_protocol": "http"}], "env_file": "x"}}
    assert {k: wire_names(v, SERVICE) for k, v in services.items()} == {"my_app": {
        "healthCheck": {"intervalSeconds": 5}, "dependsOn": {"db_x": {"condition":
                                                                       "service_started"}},
        "environment": {"MY_VAR": "1"}, "ports": [{"appProtocol": "http"}],
        "env_file": "x"}}


def test_dockyards_loader_checks_the_rest_and_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ServicesInvalid, match=r"services\.app") as caught:
        prepare(compose({"app": {"image": "nginx", "no_such_key": 1}}, str(tmp_path)))
    assert "no_such_key" in str(caught.value)


def test_prepare_loads_normalizes_and_packs_builds(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "Dockerfile").write_text("FROM dockyard/busybox:1\n")
    prepared = prepare(compose({"web": {"build": {"context": "web"}, "ports": [
        {"target": 8080, "mode": "ingress"}]}}, str(tmp_path)))
    assert prepared.name == "demo"
    assert prepared.data["services"]["web"]["build"]["context"] == "."
    assert set(prepared.builds) == {"web"}
    assert prepared.builds["web"]["digest"] == prepared.packs[0].digest
