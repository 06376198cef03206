"""Interpolation edge cases: `Interpolator.substitute`, `interpolate_tree` and the template helpers.

Compose's semantics everywhere, plus Dockyard's one rule: inside `services.<svc>.environment`
values a plain unset `${NAME}` is kept (a deploy-time config reference) and the value is a
template in which a literal `$` is written `$$`.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.compose.interpolation import (
    InterpolationError,
    Interpolator,
    config_references,
    escape_template,
    interpolate_tree,
    keeps_unset,
)
from dockyard.compose.merge import extract_tags
from dockyard.compose.paths import KeyPath
from dockyard.compose.yamlfile import Override, Reset

VARIABLES: dict[str, str] = {
    "A": "a",
    "B": "b",
    "EMPTY": "",
    "DOLLAR": "x$y",
    "NUM": "42",
    "SPACE": "two words",
}

Problem = tuple[str, str, KeyPath, str | None]


class Sink:
    """Collects what `interpolate_tree` reports."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def __call__(self, code: str, message: str, path: KeyPath, hint: str | None) -> None:
        self.problems.append((code, message, path, hint))

    def codes(self) -> list[str]:
        return [p[0] for p in self.problems]

    def of(self, code: str) -> list[Problem]:
        return [p for p in self.problems if p[0] == code]


def substitute(text: str, keep: bool = False,
               variables: dict[str, str] | None = None) -> tuple[str, set[str]]:
    interp = Interpolator(VARIABLES if variables is None else variables)
    out = interp.substitute(text, keep_unset_plain=keep)
    return out, set(interp.unset)


# --- plain Compose semantics ------------------------------------------------------------------

SUBSTITUTIONS: list[tuple[str, str, set[str]]] = [
    # (template, result, names reported unset)
    ("no dollar at all", "no dollar at all", set()),
    ("$A", "a", set()),
    ("${A}", "a", set()),
    ("pre-$A-post", "pre-a-post", set()),
    ("pre${A}post", "preapost", set()),
    ("${A}${B}", "ab", set()),
    ("$A$B", "ab", set()),
    ("$A-b", "a-b", set()),  # `-` ends an unbraced name
    ("$A_B", "", {"A_B"}),  # `_` does not: the name is A_B
    ("${NUM}", "42", set()),
    ("${SPACE}", "two words", set()),
    ("${DOLLAR}", "x$y", set()),  # a value is not interpolated again
    ("$U", "", {"U"}),
    ("${U}", "", {"U"}),
    ("${U}${U}-$U", "-", {"U"}),
    # `:-` is used when unset or empty, `-` only when unset
    ("${A:-d}", "a", set()),
    ("${A-d}", "a", set()),
    ("${EMPTY:-d}", "d", set()),
    ("${EMPTY-d}", "", set()),
    ("${U:-d}", "d", set()),
    ("${U-d}", "d", set()),
    ("${U:-}", "", set()),
    ("${U-}", "", set()),
    ("${U:-a b c}", "a b c", set()),
    ("${U:-a:b-c}", "a:b-c", set()),
    # `:+` is used when set and non-empty, `+` when set
    ("${A:+alt}", "alt", set()),
    ("${A+alt}", "alt", set()),
    ("${EMPTY:+alt}", "", set()),
    ("${EMPTY+alt}", "alt", set()),
    ("${U:+alt}", "", set()),
    ("${U+alt}", "", set()),
    # `?` only fails when unset, `:?` also when empty
    ("${A:?msg}", "a", set()),
    ("${A?msg}", "a", set()),
    ("${EMPTY?msg}", "", set()),
    # nested expressions
    ("${U:-${V:-x}}", "x", set()),
    ("${U:-${A}}", "a", set()),
    ("${U:-$A}", "a", set()),
    ("${U:-${EMPTY:-${B}}}", "b", set()),
    ("${U:-pre${A}post}", "preapost", set()),
    ("${U:-$W}", "", {"W"}),
    ("${U:-${W}}", "", {"W"}),
    ("${A:+${W}}", "", {"W"}),  # the alternative is used, so its unset name is reported
    # unset names inside a default or alternative that is not used are not reported
    ("${A:-${W}}", "a", set()),
    ("${A:-$W}", "a", set()),
    ("${A-${W:-${X}}}", "a", set()),
    ("${U:+${W}}", "", set()),
    ("${U+$W}", "", set()),
    ("${A:?${W}}", "a", set()),
    # dollars
    ("$$", "$", set()),
    ("$$A", "$A", set()),
    ("$${A}", "${A}", set()),
    ("$$$A", "$a", set()),
    ("$$$$", "$$", set()),
    ("$", "$", set()),
    ("a$", "a$", set()),
    ("100$", "100$", set()),
    ("$1", "$1", set()),
    ("$ x", "$ x", set()),
    ("$-", "$-", set()),
    ("${A}}", "a}", set()),
    ("}", "}", set()),
    ("${U:-$$}", "$", set()),
    ("${U:-a$$b}", "a$b", set()),
]


@pytest.mark.parametrize(("template", "expected", "unset"), SUBSTITUTIONS)
def test_substitute(template: str, expected: str, unset: set[str]) -> None:
    assert substitute(template) == (expected, unset)


INVALID: list[str] = [
    "${",
    "x ${ y",
    "${}",
    "${A:x}",
    "${A:}",
    "${A",
    "${A:",
    "${A:-",
    "${A:-x",
    "${A:-${B}",
    "${:-x}",
    "${1}",
    "${1A}",
    "${A B}",
    "${A.B}",
    "${A!}",
]


@pytest.mark.parametrize("template", INVALID)
@pytest.mark.parametrize("keep", [False, True])
def test_invalid_interpolation(template: str, keep: bool) -> None:
    with pytest.raises(InterpolationError) as info:
        substitute(template, keep=keep)
    assert info.value.code == "invalid-interpolation"
    assert template in info.value.message
    assert info.value.hint


REQUIRED: list[tuple[str, str, str]] = [
    # (template, variable, text the message must show)
    ("${U:?need it}", "U", "need it"),
    ("${U?need it}", "U", "need it"),
    ("${EMPTY:?must not be empty}", "EMPTY", "must not be empty"),
    ("pre ${U:?set U please} post", "U", "set U please"),
    ("${U:?${A} is required}", "U", "a is required"),  # the message is interpolated
]


@pytest.mark.parametrize(("template", "name", "shown"), REQUIRED)
def test_required_variable(template: str, name: str, shown: str) -> None:
    with pytest.raises(InterpolationError) as info:
        substitute(template)
    assert info.value.code == "required-variable"
    assert name in info.value.message
    assert shown in info.value.message
    assert info.value.hint and name in info.value.hint


@pytest.mark.parametrize("template", ["${U?}", "${U:?}", "${EMPTY:?}"])
def test_required_variable_without_message(template: str) -> None:
    with pytest.raises(InterpolationError) as info:
        substitute(template)
    assert info.value.code == "required-variable"
    assert info.value.message


def test_required_variable_inside_default() -> None:
    with pytest.raises(InterpolationError) as info:
        substitute("${U:-${W:?inner}}")
    assert info.value.code == "required-variable"
    assert "inner" in info.value.message


def test_required_variable_inside_unused_default_still_fails() -> None:
    # Compose v2 evaluates the default before it looks at the variable, so this fails there too
    # (only the *warnings* of an unused default are Dockyard's to drop).
    with pytest.raises(InterpolationError) as info:
        substitute("${A:-${W:?inner}}")
    assert info.value.code == "required-variable"


# --- Dockyard's template mode (service environment values) ------------------------------------

TEMPLATES: list[tuple[str, str, set[str]]] = [
    ("${U}", "${U}", set()),  # a plain unset ${NAME} is kept: a config reference
    ("pre-${U}-post", "pre-${U}-post", set()),
    ("${U}${U}", "${U}${U}", set()),
    ("${U}:${V}", "${U}:${V}", set()),
    ("$U", "", {"U"}),  # unbraced: empty with a warning, as in Compose
    ("x$U-${U}", "x-${U}", {"U"}),
    ("${A}", "a", set()),
    ("$A", "a", set()),
    ("${A}-${U}", "a-${U}", set()),
    ("${DOLLAR}", "x$$y", set()),  # a literal $ of a value is written $$
    ("$DOLLAR", "x$$y", set()),
    ("$$", "$$", set()),
    ("a$$b", "a$$b", set()),
    ("$$${U}", "$$${U}", set()),
    ("$", "$$", set()),
    ("100$", "100$$", set()),
    ("$1", "$$1", set()),
    ("${U:-d}", "d", set()),  # only a *plain* ${NAME} is kept
    ("${U:-x$$y}", "x$$y", set()),
    ("${U:-$DOLLAR}", "x$$y", set()),
    ("${A:+alt}", "alt", set()),
    ("${U:+alt}", "", set()),
    ("${EMPTY}", "", set()),  # set but empty is a value, not a reference
]


@pytest.mark.parametrize(("template", "expected", "unset"), TEMPLATES)
def test_template_mode(template: str, expected: str, unset: set[str]) -> None:
    assert substitute(template, keep=True) == (expected, unset)


def test_template_mode_required_variable_still_fails() -> None:
    with pytest.raises(InterpolationError) as info:
        substitute("${U:?configure U}", keep=True)
    assert info.value.code == "required-variable"


def test_one_interpolator_switches_modes() -> None:
    interp = Interpolator(VARIABLES)
    assert interp.substitute("${DOLLAR}", keep_unset_plain=True) == "x$$y"
    assert interp.substitute("${DOLLAR}") == "x$y"
    assert interp.substitute("$") == "$"


# --- interpolate_tree --------------------------------------------------------------------------

def _tree(data: Any, variables: dict[str, str] | None = None) -> tuple[Any, Sink]:
    sink = Sink()
    out = interpolate_tree(data, VARIABLES if variables is None else variables, sink)
    return out, sink


def test_tree_environment_map_form() -> None:
    data = {"services": {"web": {"environment": {
        "REF": "${CFG}",
        "MIXED": "postgres://${DB_USER}:${DB_PASS}@db/${A}",
        "UNBRACED": "$X",
        "LITERAL": "a$$b",
        "VALUE": "${DOLLAR}",
        "DEFAULT": "${U:-fallback}",
        "NUMBER": 5,
        "NULL": None,
    }}}}
    out, sink = _tree(data)
    env = out["services"]["web"]["environment"]
    assert env == {
        "REF": "${CFG}",
        "MIXED": "postgres://${DB_USER}:${DB_PASS}@db/a",
        "UNBRACED": "",
        "LITERAL": "a$$b",
        "VALUE": "x$$y",
        "DEFAULT": "fallback",
        "NUMBER": 5,
        "NULL": None,
    }
    assert sink.codes() == ["unset-variable"]
    code, message, path, hint = sink.problems[0]
    assert path == ("services", "web", "environment", "UNBRACED")
    assert '"X"' in message
    assert hint and "X" in hint


def test_tree_environment_list_form() -> None:
    data = {"services": {"web": {"environment": [
        "REF=${CFG}", "UNBRACED=$Y", "LITERAL=a$$b", "VALUE=${DOLLAR}", "BARE",
    ]}}}
    out, sink = _tree(data)
    assert out["services"]["web"]["environment"] == [
        "REF=${CFG}", "UNBRACED=", "LITERAL=a$$b", "VALUE=x$$y", "BARE",
    ]
    assert [(p[0], p[2]) for p in sink.problems] == [
        ("unset-variable", ("services", "web", "environment", 1)),
    ]


def test_tree_outside_environment_is_plain_compose() -> None:
    data = {
        "services": {"web": {
            "image": "repo/${U}:$V",
            "labels": {"l": "a$$b", "m": "${CFG}"},
            "command": ["echo", "$$HOME", "${A}"],
            "build": {"args": {"ARG": "${CFG}"}},
            "x-environment": {"K": "${CFG}"},
        }},
        "x-top": {"environment": {"K": "${CFG}"}},
    }
    out, sink = _tree(data)
    web = out["services"]["web"]
    assert web["image"] == "repo/:"
    assert web["labels"] == {"l": "a$b", "m": ""}
    assert web["command"] == ["echo", "$HOME", "a"]
    assert web["build"]["args"] == {"ARG": ""}
    assert web["x-environment"] == {"K": ""}
    assert out["x-top"] == {"environment": {"K": ""}}
    assert set(sink.codes()) == {"unset-variable"}
    paths = {p[2] for p in sink.problems}
    assert paths == {
        ("services", "web", "image"),
        ("services", "web", "labels", "m"),
        ("services", "web", "build", "args", "ARG"),
        ("services", "web", "x-environment", "K"),
        ("x-top", "environment", "K"),
    }


def test_tree_unset_reported_once_per_path() -> None:
    data = {"services": {"web": {"image": "${U}${U}$U", "labels": ["${U}", "$U-${V}"]}}}
    _, sink = _tree(data)
    reported = sorted((p[2], p[1]) for p in sink.of("unset-variable"))
    assert [(path, '"U"' in msg, '"V"' in msg) for path, msg in reported] == [
        (("services", "web", "image"), True, False),
        (("services", "web", "labels", 0), True, False),
        (("services", "web", "labels", 1), True, False),
        (("services", "web", "labels", 1), False, True),
    ]


def test_tree_unused_default_is_not_warned() -> None:
    data = {"services": {"web": {"image": "${A:-${NOPE}}", "user": "${U:-${A}}"}}}
    out, sink = _tree(data)
    assert out["services"]["web"] == {"image": "a", "user": "a"}
    assert sink.problems == []


def test_tree_errors_are_reported_and_the_walk_goes_on() -> None:
    data = {"services": {"web": {
        "image": "${",
        "user": "${A:x}",
        "working_dir": "${U:?give a directory}",
        "hostname": "${A}",
    }}}
    out, sink = _tree(data)
    web = out["services"]["web"]
    assert web == {"image": "", "user": "", "working_dir": "", "hostname": "a"}
    assert sorted((p[0], p[2][-1]) for p in sink.problems) == [
        ("invalid-interpolation", "image"),
        ("invalid-interpolation", "user"),
        ("required-variable", "working_dir"),
    ]
    for _code, message, _path, hint in sink.problems:
        assert message and hint
    required = sink.of("required-variable")[0]
    assert "give a directory" in required[1]


def test_tree_required_variable_in_environment() -> None:
    _, sink = _tree({"services": {"web": {"environment": {"K": "${U:?set U}"}}}})
    assert [(p[0], p[2]) for p in sink.problems] == [
        ("required-variable", ("services", "web", "environment", "K")),
    ]


def test_tree_keys_and_non_strings_are_untouched() -> None:
    data = {"${K}": {"$A": 1, "b": True, "c": None, "d": 1.5}, "e": [1, None, False]}
    out, sink = _tree(data)
    assert out == data
    assert sink.problems == []


def test_tree_merge_tags_are_moved_out_before_interpolation() -> None:
    """The loader takes `!reset`/`!override` out of a file first; what remains is plain."""
    data = {"services": {"web": {
        "ports": Reset(["${A}"]),
        "labels": Override({"l": "${B}"}),
        "environment": Override({"K": "${CFG}", "L": "$U"}),
    }}}
    tagged = extract_tags(data)
    assert tagged.resets == (("services", "web", "ports"),)
    assert tagged.overrides == {("services", "web", "labels"),
                                ("services", "web", "environment")}
    out, _ = _tree(tagged.data)
    web = out["services"]["web"]
    assert "ports" not in web
    assert web["labels"] == {"l": "b"}
    assert web["environment"] == {"K": "${CFG}", "L": ""}

def test_tree_does_not_modify_its_input() -> None:
    data = {"services": {"web": {"image": "${A}", "environment": ["K=${B}"]}}}
    before = copy.deepcopy(data)
    _tree(data)
    assert data == before


KEEP_PATHS: list[tuple[KeyPath, bool]] = [
    (("services", "web", "environment", "K"), True),
    (("services", "web", "environment", 0), True),
    (("services", "other", "environment", "X"), True),
    (("services", "web", "environment"), False),
    (("services", "web", "image"), False),
    (("services", "web", "labels", "K"), False),
    (("services", "web", "build", "args", "K"), False),
    (("services", "web", "environment", "K", "deeper"), False),
    (("x-services", "web", "environment", "K"), False),
    (("secrets", "s", "environment"), False),
]


@pytest.mark.parametrize(("path", "keeps"), KEEP_PATHS)
def test_keeps_unset(path: KeyPath, keeps: bool) -> None:
    assert keeps_unset(path) is keeps


# --- config_references and escape_template -----------------------------------------------------

REFERENCES: list[tuple[str, list[str]]] = [
    ("", []),
    ("plain", []),
    ("${A}", ["A"]),
    ("x${A}y${B_2}z", ["A", "B_2"]),
    ("$A", []),  # only the braced form is a reference
    ("$$", []),
    ("$${A}", []),  # an escaped dollar
    ("$$$${A}", []),
    ("$$${A}", ["A"]),  # `$$` then `${A}`
    ("a$$b${C}", ["C"]),
    ("$", []),
    ("${A", []),
]


@pytest.mark.parametrize(("template", "names"), REFERENCES)
def test_config_references(template: str, names: list[str]) -> None:
    assert config_references(template) == names


def test_config_references_of_a_kept_template() -> None:
    template, _ = substitute("${DB_URL}?user=${A}&x=$$y&pw=${PW}", keep=True)
    assert config_references(template) == ["DB_URL", "PW"]


ESCAPES: list[tuple[str, str]] = [
    ("", ""),
    ("plain", "plain"),
    ("a$b", "a$$b"),
    ("$$", "$$$$"),
    ("${A}", "$${A}"),
    ("$", "$$"),
]


@pytest.mark.parametrize(("value", "template"), ESCAPES)
def test_escape_template(value: str, template: str) -> None:
    assert escape_template(value) == template


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("${}:-+?A_b1 x"), max_size=30))
def test_escaped_values_are_literal(value: str) -> None:
    template = escape_template(value)
    assert config_references(template) == []
    assert Interpolator({}).substitute(template) == value
    assert Interpolator({}).substitute(template, keep_unset_plain=True) == template


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("${}:-+?AUb_1 x"), max_size=30))
def test_substitute_fails_only_with_interpolation_error(text: str) -> None:
    for keep in (False, True):
        interp = Interpolator({"A": "a$", "E": ""})
        try:
            out = interp.substitute(text, keep_unset_plain=keep)
        except InterpolationError as exc:
            assert exc.code in ("invalid-interpolation", "required-variable")
            assert exc.message
            continue
        assert isinstance(out, str)
        if keep:
            # A template only refers to names that are really unset.
            assert all(name not in ("A", "E") for name in config_references(out))
