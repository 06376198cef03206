"""`merge_values`: Compose's rules for merging a later file onto an earlier one.

Expected results follow Docker Compose v2 (`docker compose -f a.yaml -f b.yaml config`).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dockyard.compose.merge import extract_tags, merge_file
from dockyard.compose.merge import merge_values as merge_plain
from dockyard.compose.normalize import key_value_list
from dockyard.compose.yamlfile import Override, Reset


def merge_values(base: Any, other: Any, path: tuple[str | int, ...] = ()) -> Any:
    """Merge as the loader does: a whole file's tags are moved out, then it is merged."""
    if path == () and isinstance(base, dict) and isinstance(other, dict):
        return merge_file(base, extract_tags(other))
    return merge_plain(base, other, path)


def strip_tags(value: Any) -> Any:
    """What a tagged value becomes when nothing earlier sets it."""
    return extract_tags({"v": value}).data.get("v")


def svc(**keys: Any) -> dict[str, Any]:
    """A project with one service `web` holding `keys`."""
    return {"services": {"web": dict(keys)}}


def merged_web(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    result = merge_values(svc(**base), svc(**other))
    web: dict[str, Any] = result["services"]["web"]
    return web


# --- general rules ---------------------------------------------------------------------------

def test_scalars_are_replaced() -> None:
    web = merged_web({"image": "a", "restart": "always", "user": "1"},
                     {"image": "b", "user": "2"})
    assert web == {"image": "b", "restart": "always", "user": "2"}


def test_a_scalar_may_replace_another_type() -> None:
    assert merged_web({"user": 1}, {"user": "root"}) == {"user": "root"}


def test_null_keeps_the_earlier_value() -> None:
    assert merged_web({"image": "a"}, {"image": None}) == {"image": "a"}


def test_mappings_merge_recursively() -> None:
    base = {"deploy": {"replicas": 1, "resources": {"limits": {"cpus": "1", "memory": "1g"}}}}
    other = {"deploy": {"resources": {"limits": {"memory": "2g"}, "reservations": {"cpus": "0.5"}}}}
    assert merged_web(base, other) == {"deploy": {
        "replicas": 1,
        "resources": {"limits": {"cpus": "1", "memory": "2g"}, "reservations": {"cpus": "0.5"}},
    }}


def test_new_services_and_top_level_keys_are_added() -> None:
    base = {"services": {"web": {"image": "a"}}, "volumes": {"data": {}}}
    other = {"services": {"db": {"image": "pg"}}, "networks": {"back": {}}}
    assert merge_values(base, other) == {
        "services": {"web": {"image": "a"}, "db": {"image": "pg"}},
        "volumes": {"data": {}},
        "networks": {"back": {}},
    }


@pytest.mark.parametrize("key", ["ports", "volumes", "expose", "cap_add", "secrets", "profiles"])
def test_sequences_are_appended(key: str) -> None:
    assert merged_web({key: ["a", "b"]}, {key: ["c"]}) == {key: ["a", "b", "c"]}


@pytest.mark.parametrize("key", ["dns", "dns_search", "tmpfs", "env_file"])
def test_string_or_list_keys_are_appended(key: str) -> None:
    assert merged_web({key: "a"}, {key: ["b"]}) == {key: ["a", "b"]}
    assert merged_web({key: ["a"]}, {key: "b"}) == {key: ["a", "b"]}


# --- environment, labels and other KEY=VALUE fields -------------------------------------------

ENV_CASES: list[tuple[Any, Any, dict[str, str | None]]] = [
    (["A=1", "B=2"], {"A": "3", "C": "c"}, {"A": "3", "B": "2", "C": "c"}),
    ({"A": "1", "B": "2"}, ["A=3", "C=c"], {"A": "3", "B": "2", "C": "c"}),
    ({"A": "1"}, {"A": "2"}, {"A": "2"}),
    (["A=1"], ["A=2", "A=3"], {"A": "3"}),
    ({"N": 1, "T": True, "F": 1.5}, {"T": False}, {"N": "1", "T": "false", "F": "1.5"}),
    (["A=1"], {"B": None}, {"A": "1", "B": None}),  # a bare key: a config reference
    (["A=x=y"], [], {"A": "x=y"}),
]


@pytest.mark.parametrize(("base", "other", "expected"), ENV_CASES)
def test_environment_list_and_map_merge_later_wins(base: Any, other: Any,
                                                   expected: dict[str, str | None]) -> None:
    web = merged_web({"environment": base}, {"environment": other})
    assert isinstance(web["environment"], list)
    assert key_value_list(web["environment"]) == expected


@pytest.mark.parametrize("key", ["labels", "sysctls", "annotations", "extra_hosts"])
def test_key_value_fields_merge_as_sequences(key: str) -> None:
    web = merged_web({key: {"a": "1", "b": "2"}}, {key: ["a=3"]})
    assert key_value_list(web[key]) == {"a": "3", "b": "2"}


def test_build_args_merge_as_sequences() -> None:
    web = merged_web({"build": {"context": ".", "args": {"A": "1", "B": "2"}}},
                     {"build": {"args": ["A=3"]}})
    assert web["build"]["context"] == "."
    assert key_value_list(web["build"]["args"]) == {"A": "3", "B": "2"}


def test_reset_of_one_environment_entry_removes_it() -> None:
    web = merged_web({"environment": {"FOO": "bar", "KEEP": "1"}},
                     {"environment": {"FOO": Reset(None)}})
    assert key_value_list(web["environment"]) == {"KEEP": "1"}


def test_reset_of_one_label_removes_it() -> None:
    web = merged_web({"labels": {"l": "1", "k": "2"}}, {"labels": {"l": Reset(None)}})
    assert key_value_list(web["labels"]) == {"k": "2"}


# --- replaced whole --------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["command", "entrypoint"])
@pytest.mark.parametrize(("base", "other"), [
    (["x", "y"], ["z"]),
    ("x y", ["z"]),
    (["x", "y"], "z"),
    ("x y", "z"),
])
def test_command_and_entrypoint_are_replaced(key: str, base: Any, other: Any) -> None:
    assert merged_web({key: base}, {key: other}) == {key: other}


def test_healthcheck_test_is_replaced_and_the_rest_merged() -> None:
    web = merged_web(
        {"healthcheck": {"test": ["CMD", "a", "b"], "interval": "1s", "retries": 3}},
        {"healthcheck": {"test": ["CMD", "c"], "interval": "2s"}},
    )
    assert web == {"healthcheck": {"test": ["CMD", "c"], "interval": "2s", "retries": 3}}
    web = merged_web({"healthcheck": {"test": ["CMD", "a"]}}, {"healthcheck": {"test": "b"}})
    assert web == {"healthcheck": {"test": "b"}}


# --- short and long forms merged by identity ---------------------------------------------------

BUILD_CASES: list[tuple[Any, Any, dict[str, Any]]] = [
    (".", {"dockerfile": "D"}, {"context": ".", "dockerfile": "D"}),
    ({"context": ".", "dockerfile": "D"}, "./other", {"context": "./other", "dockerfile": "D"}),
    (".", "./other", {"context": "./other"}),
    ({"context": ".", "target": "dev"}, {"target": "prod"}, {"context": ".", "target": "prod"}),
]


@pytest.mark.parametrize(("base", "other", "expected"), BUILD_CASES)
def test_build_string_and_mapping(base: Any, other: Any, expected: dict[str, Any]) -> None:
    assert merged_web({"build": base}, {"build": other}) == {"build": expected}


STARTED = {"condition": "service_started", "required": True}

DEPENDS_CASES: list[tuple[Any, Any, dict[str, Any]]] = [
    (["db"], ["cache"], {"db": STARTED, "cache": STARTED}),
    (["db"], {"db": {"condition": "service_healthy"}},
     {"db": {"condition": "service_healthy", "required": True}}),
    ({"db": {"condition": "service_healthy"}}, ["db"], {"db": STARTED}),
    ({"db": {"condition": "service_healthy", "restart": True}},
     {"db": {"required": False}},
     {"db": {"condition": "service_healthy", "restart": True, "required": False}}),
    (["db"], {"cache": {"condition": "service_started"}},
     {"db": STARTED, "cache": {"condition": "service_started"}}),
]


@pytest.mark.parametrize(("base", "other", "expected"), DEPENDS_CASES)
def test_depends_on_list_and_map(base: Any, other: Any, expected: dict[str, Any]) -> None:
    assert merged_web({"depends_on": base}, {"depends_on": other}) == {"depends_on": expected}


NETWORK_CASES: list[tuple[Any, Any, dict[str, Any]]] = [
    (["front"], ["back"], {"front": None, "back": None}),
    (["front"], {"back": {"aliases": ["b"]}}, {"front": None, "back": {"aliases": ["b"]}}),
    ({"back": {"aliases": ["b"]}}, ["back"], {"back": {"aliases": ["b"]}}),
    ({"back": {"aliases": ["a"], "priority": 1}}, {"back": {"aliases": ["b"]}},
     {"back": {"aliases": ["a", "b"], "priority": 1}}),
    ({"front": None}, {"front": {"ipv4_address": "10.0.0.2"}},
     {"front": {"ipv4_address": "10.0.0.2"}}),
]


@pytest.mark.parametrize(("base", "other", "expected"), NETWORK_CASES)
def test_service_networks_list_and_map(base: Any, other: Any, expected: dict[str, Any]) -> None:
    assert merged_web({"networks": base}, {"networks": other}) == {"networks": expected}


LOGGING_CASES: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    # the same driver, or no driver on either side: merged
    ({"driver": "json-file", "options": {"max-size": "1m"}},
     {"driver": "json-file", "options": {"max-file": "3"}},
     {"driver": "json-file", "options": {"max-size": "1m", "max-file": "3"}}),
    ({"driver": "json-file", "options": {"max-size": "1m"}},
     {"options": {"max-file": "3"}},
     {"driver": "json-file", "options": {"max-size": "1m", "max-file": "3"}}),
    ({"options": {"max-size": "1m"}},
     {"driver": "syslog"},
     {"driver": "syslog", "options": {"max-size": "1m"}}),
    # another driver: replaced, options included
    ({"driver": "json-file", "options": {"max-size": "1m"}},
     {"driver": "syslog", "options": {"tag": "x"}},
     {"driver": "syslog", "options": {"tag": "x"}}),
    ({"driver": "json-file", "options": {"max-size": "1m"}},
     {"driver": "syslog"},
     {"driver": "syslog"}),
]


@pytest.mark.parametrize(("base", "other", "expected"), LOGGING_CASES)
def test_logging_driver_rule(base: dict[str, Any], other: dict[str, Any],
                             expected: dict[str, Any]) -> None:
    assert merged_web({"logging": base}, {"logging": other}) == {"logging": expected}


ULIMIT_CASES: list[tuple[Any, Any, Any]] = [
    ({"soft": 1, "hard": 2}, {"soft": 3, "hard": 4}, {"soft": 3, "hard": 4}),
    (100, {"soft": 1, "hard": 2}, {"soft": 1, "hard": 2}),
    ({"soft": 1, "hard": 2}, 100, 100),
    (100, 200, 200),
]


@pytest.mark.parametrize(("base", "other", "expected"), ULIMIT_CASES)
def test_ulimits(base: Any, other: Any, expected: Any) -> None:
    web = merged_web({"ulimits": {"nofile": base, "nproc": 5}}, {"ulimits": {"nofile": other}})
    assert web == {"ulimits": {"nofile": expected, "nproc": 5}}


# --- !reset and !override ----------------------------------------------------------------------

def test_reset_removes_a_key() -> None:
    web = merged_web({"image": "a", "ports": ["80"], "command": ["x"], "build": "."},
                     {"ports": Reset([]), "command": Reset(None), "build": Reset(None)})
    assert web == {"image": "a"}


def test_reset_removes_a_nested_key() -> None:
    web = merged_web({"deploy": {"replicas": 2, "resources": {"limits": {"cpus": "1"}}}},
                     {"deploy": {"resources": Reset(None)}})
    assert web == {"deploy": {"replicas": 2}}


def test_reset_removes_a_whole_service() -> None:
    base = {"services": {"web": {"image": "a"}, "db": {"image": "pg"}}}
    assert merge_values(base, {"services": {"db": Reset(None)}}) == {
        "services": {"web": {"image": "a"}},
    }


def test_reset_of_a_key_not_set_before_is_dropped() -> None:
    assert merged_web({"image": "a"}, {"ports": Reset([])}) == {"image": "a"}


def test_reset_of_special_keys() -> None:
    web = merged_web(
        {"image": "a", "environment": ["A=1"], "depends_on": ["db"], "networks": ["n"],
         "labels": {"l": "1"}, "healthcheck": {"test": ["CMD", "x"], "retries": 1}},
        {"environment": Reset(None), "depends_on": Reset(None), "networks": Reset([]),
         "labels": Reset({}), "healthcheck": {"test": Reset(None)}},
    )
    assert web == {"image": "a", "healthcheck": {"retries": 1}}


def test_reset_of_one_dependency_and_network() -> None:
    web = merged_web({"depends_on": ["db", "cache"], "networks": ["front", "back"]},
                     {"depends_on": {"db": Reset(None)}, "networks": {"back": Reset(None)}})
    assert web == {"depends_on": {"cache": STARTED}, "networks": {"front": None}}


OVERRIDE_CASES: list[tuple[str, Any, Any]] = [
    ("ports", ["80", "81"], ["90"]),
    ("volumes", ["a:/a"], ["b:/b"]),
    ("labels", {"a": "1"}, {"b": "2"}),
    ("environment", ["A=1"], {"B": "2"}),
    ("depends_on", ["db"], ["cache"]),
    ("deploy", {"replicas": 1, "resources": {"limits": {"cpus": "1"}}}, {"replicas": 2}),
    ("logging", {"driver": "x", "options": {"a": "1"}}, {"driver": "x"}),
    ("build", {"context": ".", "dockerfile": "D"}, {"context": "./b"}),
]


@pytest.mark.parametrize(("key", "base", "other"), OVERRIDE_CASES)
def test_override_replaces_instead_of_merging(key: str, base: Any, other: Any) -> None:
    assert merged_web({key: base}, {key: Override(other)}) == {key: other}


def test_override_strips_tags_inside_its_value() -> None:
    web = merged_web({"deploy": {"replicas": 1}},
                     {"deploy": Override({"labels": Override({"a": "1"}),
                                          "mode": Reset(None), "replicas": 3})})
    assert web == {"deploy": {"labels": {"a": "1"}, "replicas": 3}}


def test_tags_in_a_new_value_are_stripped() -> None:
    web = merged_web({"image": "a"}, {"deploy": {"replicas": Override(2), "mode": Reset(None)},
                                      "ports": [Override("80"), Reset("81")]})
    assert web == {"image": "a", "deploy": {"replicas": 2}, "ports": ["80"]}


STRIP_CASES: list[tuple[Any, Any]] = [
    (Reset([1]), None),
    (Override({"a": Reset(1), "b": 2}), {"b": 2}),
    ({"a": [Override(1), Reset(2), 3]}, {"a": [1, 3]}),
    ("plain", "plain"),
]


@pytest.mark.parametrize(("value", "expected"), STRIP_CASES)
def test_strip_tags(value: Any, expected: Any) -> None:
    assert strip_tags(value) == expected


# --- extensions --------------------------------------------------------------------------------

def test_extensions_merge_like_mappings() -> None:
    base = {"x-a": {"k": 1, "j": 2}, "services": {"web": {"x-b": {"k": 1, "l": [1]}}}}
    other = {"x-a": {"k": 3}, "services": {"web": {"x-b": {"j": 1, "l": [2]}}}}
    assert merge_values(base, other) == {
        "x-a": {"k": 3, "j": 2},
        "services": {"web": {"x-b": {"k": 1, "j": 1, "l": [1, 2]}}},
    }


def test_extension_scalars_are_replaced() -> None:
    assert merge_values({"x-a": 1, "x-s": "a"}, {"x-a": 2}) == {"x-a": 2, "x-s": "a"}


# --- purity ------------------------------------------------------------------------------------

def test_inputs_are_not_modified() -> None:
    base = {
        "x-a": {"k": [1]},
        "services": {"web": {
            "image": "a", "ports": ["80"], "environment": {"A": "1"}, "build": ".",
            "depends_on": ["db"], "networks": ["front"], "labels": ["a=1"],
            "deploy": {"resources": {"limits": {"cpus": "1"}}},
            "logging": {"driver": "x", "options": {"a": "1"}},
            "ulimits": {"nofile": {"soft": 1, "hard": 2}},
            "healthcheck": {"test": ["CMD", "x"], "interval": "1s"},
        }},
    }
    other = {
        "x-a": {"j": [2]},
        "services": {"web": {
            "image": "b", "ports": ["81"], "environment": ["B=2"], "build": {"target": "t"},
            "depends_on": {"db": {"condition": "service_healthy"}},
            "networks": {"back": {"aliases": ["x"]}}, "labels": {"b": "2"},
            "deploy": {"resources": {"limits": {"memory": "1g"}}, "labels": Override({})},
            "logging": {"options": {"b": "2"}},
            "ulimits": {"nofile": {"soft": 3, "hard": 4}},
            "healthcheck": {"test": "y", "retries": Reset(None)},
            "command": Reset(None),
        }, "db": {"image": "pg"}},
    }
    base_before = copy.deepcopy(base)
    other_before = copy.deepcopy(other)
    result = merge_values(base, other)
    assert base == base_before
    assert other == other_before
    # and the result does not share mutable containers it changed with the inputs
    result["services"]["web"]["ports"].append("99")
    result["services"]["web"]["deploy"]["resources"]["limits"]["cpus"] = "9"
    assert base == base_before
    assert other == other_before


def test_merging_nothing_is_the_identity() -> None:
    base = {"services": {"web": {"image": "a", "ports": ["80"]}}}
    assert merge_values(base, {}) == base
    assert merge_values({}, base) == base
