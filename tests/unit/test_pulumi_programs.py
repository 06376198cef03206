"""The programs of examples/pulumi under the Pulumi SDK's mocks (`pulumi.runtime.set_mocks`):
which resources they register, with which inputs; a program written for `pulumi_defang_aws`
registers the same inputs after changing only its import; secrets never travel in plain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest
from tests.support.pulumi_mocks import (
    DYNAMIC_PROJECT,
    Recorder,
    is_secret,
    plain_strings,
    run_program,
)

import pulumi_dockyard as dockyard
from dockyard.compose import LoadOptions, load_project, project_to_dict
from dockyard.wire import to_wire
from pulumi_dockyard import operations
from pulumi_dockyard.prepare import prepare

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROGRAMS = EXAMPLES / "pulumi"
DOCKYARD_IMPORT = "import pulumi_dockyard as defang_aws"
DEFANG_IMPORT = "import pulumi_defang_aws as defang_aws"
SECRET = "pa55-w0rd-never-plain"


def dynamic(mocks: Recorder) -> dict[str, dict[str, Any]]:
    return dict(mocks.of_type(DYNAMIC_PROJECT))


def test_every_example_program_registers_a_project() -> None:
    found = sorted(p.parent.name for p in PROGRAMS.glob("*/__main__.py"))
    assert found == ["defang-aws", "secrets", "shop"]
    key = "dockyard-secrets:greeting-password"
    for name, project in (("defang-aws", "defang-aws"), ("shop", "dockyard-shop"),
                          ("secrets", "dockyard-secrets")):
        mocks = Recorder()
        run_program(PROGRAMS / name / "__main__.py", mocks, {key: SECRET}, (key,), project)
        assert [t for t, _, _ in mocks.registered] == ["dockyard:index:Project",
                                                       DYNAMIC_PROJECT]
        assert f"name: {project}\n" in (PROGRAMS / name / "Pulumi.yaml").read_text()


def test_a_defang_program_gives_identical_inputs_after_changing_only_its_import(
        tmp_path: Path) -> None:
    pytest.importorskip("pulumi_defang_aws")
    ours = (PROGRAMS / "defang-aws" / "__main__.py").read_text()
    assert ours.count(DOCKYARD_IMPORT) == 1
    original = tmp_path / "__main__.py"
    original.write_text(ours.replace(DOCKYARD_IMPORT, DEFANG_IMPORT))
    changed = [line for line in original.read_text().splitlines()
               if line not in ours.splitlines()]
    assert changed == [DEFANG_IMPORT]

    theirs, mine = Recorder(), Recorder()
    run_program(original, theirs)
    run_program(PROGRAMS / "defang-aws" / "__main__.py", mine)
    [(name, defang_inputs)] = theirs.of_type("defang-aws:index:Project")
    [(our_name, our_inputs)] = mine.of_type("dockyard:index:Project")
    assert our_name == name == "aws-demo"
    assert our_inputs == defang_inputs
    assert defang_inputs["services"]["app"]["ports"][0]["appProtocol"] == "http"
    # ... and what the provider will deploy is that service, under the resource's name.
    inputs = dynamic(mine)["aws-demo"]
    assert inputs["project_name"] == "aws-demo"
    assert inputs["services"] == {"app": {"image": "nginx", "ports": [
        {"target": 80, "mode": "ingress", "app_protocol": "http"}]}}


def test_the_shop_program_deploys_the_services_of_the_main_example() -> None:
    mocks = Recorder()
    run_program(PROGRAMS / "shop" / "__main__.py", mocks)
    inputs = dynamic(mocks)["shop"]
    assert inputs["project_name"] == "shop"
    assert inputs["program_dir"] == str(PROGRAMS / "shop")
    assert is_secret(inputs["configs"]) and inputs["configs"]["value"] == {}
    assert sorted(inputs["services"]) == ["api", "db", "metrics", "migrate", "web"]

    from_program = prepare(operations.document(inputs, "shop/x")).data
    loaded = load_project(LoadOptions(working_dir=str(EXAMPLES / "shop"), environ={}))
    from_compose, _ = to_wire(project_to_dict(loaded.project))
    assert from_program["services"] == from_compose["services"]
    assert from_program["volumes"] == from_compose["volumes"]


def test_a_secret_becomes_a_config_and_is_never_sent_in_plain() -> None:
    mocks = Recorder()
    key = "dockyard-secrets:greeting-password"
    run_program(PROGRAMS / "secrets" / "__main__.py", mocks, {key: SECRET}, (key,),
                project="dockyard-secrets")
    inputs = dynamic(mocks)["greeting"]
    assert inputs["services"]["app"]["environment"] == {"GREETING": "hello",
                                                        "PASSWORD": "${PASSWORD}"}
    assert is_secret(inputs["configs"]) and inputs["configs"]["value"] == {"PASSWORD": SECRET}
    for _, _, registered in mocks.registered:
        assert SECRET not in " ".join(plain_strings(registered))
    # What the provider records as outputs marks the configs secret too.
    outs = dockyard.provider._outs(dockyard.provider.plain(inputs), {"deployment": "d"})
    assert is_secret(outs["configs"]) and SECRET not in " ".join(plain_strings(outs))


def test_a_secret_outside_the_environment_is_refused_by_its_path() -> None:
    def program() -> None:
        dockyard.Project("p", services={"a": {"image": "x", "command": [
            pulumi.Output.secret("oops")]}})

    with pytest.raises(Exception, match=r"services\.a\.command\.0: a secret can only be"):
        run_program(program, Recorder())


def test_two_different_secrets_for_one_variable_are_refused() -> None:
    def program() -> None:
        dockyard.Project("p", services={
            "a": {"image": "x", "environment": {"K": pulumi.Output.secret("one")}},
            "b": {"image": "x", "environment": {"K": pulumi.Output.secret("two")}}})

    with pytest.raises(Exception, match=r"services\.b\.environment\.K: the secret differs"):
        run_program(program, Recorder())


def test_outputs_in_the_services_are_resolved_and_a_secret_inside_one_is_a_config() -> None:
    def program() -> None:
        password = pulumi.Output.secret("p")
        dockyard.Project("p", services={"a": {
            "image": pulumi.Output.from_input("x"),
            "environment": {"URL": pulumi.Output.concat("db://u:", password, "@db")}}})

    mocks = Recorder()
    run_program(program, mocks)
    inputs = dynamic(mocks)["p"]
    assert inputs["services"] == {"a": {"image": "x", "environment": {"URL": "${URL}"}}}
    assert inputs["configs"]["value"] == {"URL": "db://u:p@db"}


def test_a_map_made_secret_as_a_whole_names_where_its_secret_cannot_go() -> None:
    def program() -> None:
        password = pulumi.Output.secret("p")
        dockyard.Project("p", services=pulumi.Output.from_input({"a": {
            "image": "x", "environment": {"PASSWORD": password}}}))

    with pytest.raises(Exception, match=r"services\.a\.image: a secret can only be"):
        run_program(program, Recorder())


def test_a_field_dockyard_does_not_run_fails_the_program_by_name() -> None:
    def program() -> None:
        dockyard.Project("p", services={"db": {"postgres": {"allow_downtime": True}}})

    with pytest.raises(Exception, match=r"services\.db\.postgres: a managed Postgres"):
        run_program(program, Recorder())


@pytest.mark.parametrize("argument", ["aws", "gcp", "etag", "no_such_argument"])
def test_an_argument_dockyard_does_not_take_is_refused_by_name(argument: str) -> None:
    with pytest.raises(dockyard.UnsupportedField, match=f"`{argument}`"):
        extra: dict[str, Any] = {argument: {"x": 1}}
        dockyard.Project("p", services={"a": {"image": "x"}}, **extra)


def test_outputs_are_the_provider_outputs() -> None:
    status = {"app": {"state": "SERVICE_DEPLOYMENT_COMPLETED", "fqdn": "app.p.localhost",
                      "endpoint": "https://app--80.p.localhost"}}

    def outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        if typ != DYNAMIC_PROJECT:
            return {}
        return {"deployment": "d1", "status": status,
                "endpoints": {"app": "https://app--80.p.localhost"}}

    seen: dict[str, Any] = {}

    def program() -> None:
        project = dockyard.Project("p", services={"app": {"image": "x"}})
        service = dockyard.Service("app", image="x", project_name="p",
                               healthcheck={"test": ["CMD", "true"]})
        def keep(key: str, value: pulumi.Output[Any]) -> None:
            value.apply(lambda v: seen.__setitem__(key, v))

        for key, value in (("endpoints", project.endpoints), ("services", project.services),
                           ("deployment", project.deployment), ("endpoint", service.endpoint),
                           ("state", service.state), ("fqdn", service.fqdn)):
            keep(key, value)

    mocks = Recorder(outputs)
    run_program(program, mocks)
    assert seen == {"endpoints": {"app": "https://app--80.p.localhost"}, "services": status,
                    "deployment": "d1", "endpoint": "https://app--80.p.localhost",
                    "state": "SERVICE_DEPLOYMENT_COMPLETED", "fqdn": "app.p.localhost"}
    service_inputs = [i for n, i in mocks.of_type(DYNAMIC_PROJECT) if n == "app"][0]
    assert service_inputs["only"] == ["app"] and service_inputs["project_name"] == "p"
    assert service_inputs["services"] == {"app": {"image": "x", "healthcheck": {
        "test": ["CMD", "true"]}}}


def test_a_standalone_service_runs_an_image_only() -> None:
    with pytest.raises(dockyard.UnsupportedField, match="build"):
        dockyard.Service("s", image="x", build={"context": "."})
    with pytest.raises(dockyard.UnsupportedField, match="`secrets`"):
        dockyard.Service("s", image="x", secrets={"a": "b"})
