"""An alias bomb is refused quickly instead of expanding into billions of values."""

from __future__ import annotations

import pytest

from dockyard.compose.yamlfile import YamlFileError, parse_yaml


def test_billion_laughs_is_refused() -> None:
    lines = ['x-a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghi"
    for prev, name in zip(names, names[1:], strict=False):
        lines.append(f"x-{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines += ["services:", "  web:", "    image: x", "    x-bomb: *i"]
    with pytest.raises(YamlFileError) as caught:
        parse_yaml("\n".join(lines), "compose.yaml")
    assert caught.value.diagnostic.code == "yaml-syntax"
    assert "aliases" in caught.value.diagnostic.message


def test_reasonable_aliases_are_fine() -> None:
    data, _ = parse_yaml("x: &a {k: v}\ny: [*a, *a, *a]\n", "compose.yaml")
    assert data["y"] == [{"k": "v"}] * 3
