"""The YAML writer's output reads back to the same data, under YAML 1.1 (PyYAML) and ours."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard import yamlout
from dockyard.compose.yamlfile import parse_yaml

TRICKY = ["", "yes", "No", "on", "off", "null", "~", "true", "1:30", "22:22", "0x1F", "012",
          "1_000", "2001-12-14", "- x", "a: b", "#c", "x #y", "$$HOME", "${X}", "'q'", '"q"',
          "multi\nline", "tab\there", " lead", "trail ", "A\n", "über", "*alias", "&anchor", "!tag",
          "@at", "%pct", "`tick`", "[1]", "{a: 1}", ".inf", "-.5", "1e3", "?", "|", ">", "=",
          "\u2028", "y", "n", "NULL", "0o17", "+1", ".nan"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12),
                    st.sampled_from(TRICKY),
                    st.floats(allow_nan=False, allow_infinity=False))
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.text(max_size=8),
                                                      st.sampled_from(TRICKY)), inner,
                                            max_size=4)),
    max_leaves=20,
)


def _roundtrip_ours(text: str) -> Any:
    return parse_yaml(text, "out.yaml")[0]


@pytest.mark.parametrize("value", TRICKY)
def test_tricky_strings_stay_strings(value: str) -> None:
    data = {"k": value, "l": [value], value or "empty": 1}
    text = yamlout.dump(data)
    assert yaml.safe_load(text) == data
    assert _roundtrip_ours(text) == data


@settings(max_examples=300, deadline=None)
@given(json_like)
def test_roundtrip(data: Any) -> None:
    text = yamlout.dump(data)
    assert yaml.safe_load(text) == data
    if isinstance(data, dict):
        assert _roundtrip_ours(text) == data
