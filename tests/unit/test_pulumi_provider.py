"""The dynamic provider as Pulumi handles it: pickled with `dill` by the program, unpickled and
run by another process (`python -m pulumi.dynamic`). A provider that captured a client, a lock
or a connection would fail there, at a user's `pulumi up`: these tests fail first."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import proto, rpc
from tests.support.pulumi_host import provider_host, struct, with_provider
from tests.support.pulumi_mocks import DYNAMIC_PROJECT, Recorder, run_program

from dockyard.client.api import Client
from pulumi_dockyard import ProjectProvider
from pulumi_dockyard.provider import _outs, plain

PROGRAMS = Path(__file__).resolve().parents[2] / "examples" / "pulumi"

# Run by a fresh interpreter, as Pulumi's dynamic provider host does: unpickle the provider
# from stdin and use it (`check` needs no server).
LOAD = """
import base64, sys, dill
provider = dill.loads(base64.b64decode(sys.stdin.read()))
result = provider.check({}, {"project_name": "p", "program_dir": "/x",
                             "services": {"db": {"postgres": {}}}})
print(type(provider).__module__, type(provider).__name__, result.failures[0].property,
      result.failures[0].reason)
"""


def load_elsewhere(serialized: str) -> str:
    done = subprocess.run([sys.executable, "-c", LOAD], input=serialized, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_provider_pickled_by_pulumi_runs_in_another_process() -> None:
    out = load_elsewhere(serialize_provider(ProjectProvider()))
    assert out.startswith("pulumi_dockyard.provider ProjectProvider services ")
    assert "services.db.postgres: a managed Postgres" in out


def test_the_provider_a_program_registers_runs_in_another_process() -> None:
    mocks = Recorder()
    run_program(PROGRAMS / "shop" / "__main__.py", mocks)
    [(_, inputs)] = mocks.of_type(DYNAMIC_PROJECT)
    serialized = rpc.unwrap_rpc_secret(inputs["__provider"])
    assert len(base64.b64decode(serialized)) < 256  # a reference to the class, no state
    assert "services.db.postgres" in load_elsewhere(serialized)


def test_a_provider_holding_a_client_would_be_caught() -> None:
    class Holding(ProjectProvider):
        def __init__(self) -> None:
            super().__init__()
            self.client = Client("https://dockyard.example.com", "token")

    with pytest.raises(TypeError, match="SSLContext"):
        serialize_provider(Holding())


def test_plain_takes_secret_markers_off_and_leaves_the_provider_out() -> None:
    wrapped = {"configs": rpc.wrap_rpc_secret({"A": "1"}), "__provider": "x",
               "services": {"a": {"environment": {"K": rpc.wrap_rpc_secret("v")}}}}
    assert plain(wrapped) == {"configs": {"A": "1"},
                              "services": {"a": {"environment": {"K": "v"}}}}


def test_check_names_the_field_and_passes_a_valid_project() -> None:
    props: dict[str, Any] = {"project_name": "p", "program_dir": "/x",
                             "services": {"a": {"image": "x", "redis": {}}}}
    failures = ProjectProvider().check({}, props).failures
    assert [(f.property, f.reason.split(":")[0]) for f in failures] == \
        [("services", "services.a.redis")]
    props["services"]["a"].pop("redis")
    assert ProjectProvider().check({}, props).failures == []


def test_a_diff_with_unknown_inputs_leaves_it_to_pulumi() -> None:
    olds = {"project_name": "p", "services": {"a": {"image": "x"}}}
    news = {"project_name": "p", "services": {"a": {"image": rpc.UNKNOWN}}}
    assert ProjectProvider().diff("p/1", olds, news).changes is None


def test_a_diff_of_another_project_name_is_a_replacement_without_asking_a_server() -> None:
    olds = {"project_name": "p", "services": {"a": {"image": "x"}}}
    found = ProjectProvider().diff("p/1", olds, {**olds, "project_name": "q"})
    assert (found.changes, found.replaces) == (True, ["project_name"])


@pytest.fixture
def host() -> Iterator[Any]:
    with provider_host() as stub:
        yield stub


def test_pulumis_own_provider_host_runs_check_and_diff(host: Any) -> None:
    """On the wire format the engine sends, through another process."""
    props = with_provider({"project_name": "p", "program_dir": "/x",
                           "services": {"a": {"image": "x", "llm": {}}}})
    checked = host.Check(proto.CheckRequest(urn="u", olds=struct({}), news=struct(props)),
                         timeout=60)
    assert [(f.property, f.reason.split(":")[0]) for f in checked.failures] == \
        [("services", "services.a.llm")]
    olds = {**props, "services": {"a": {"image": "x"}}}
    diff = host.Diff(proto.DiffRequest(id="p/1", urn="u", olds=struct(olds),
                                       news=struct({**olds, "project_name": "q"})),
                     timeout=60)
    assert list(diff.replaces) == ["project_name"]
    assert diff.changes == proto.DiffResponse.DIFF_SOME


def test_the_configs_output_reaches_the_engine_marked_secret() -> None:
    outs = _outs({"project_name": "p", "configs": {"K": "v"}}, {"deployment": "d"})
    sent = struct(outs)
    configs = dict(sent["configs"])
    assert configs[rpc._special_sig_key] == rpc._special_secret_sig
    assert sent["deployment"] == "d"
