"""engine/ops/structure.py: emit, each, switch, concat and first, the sources built from rules."""

from __future__ import annotations

import pytest

from mapper.engine.errors import CoercionError, NoCase, SpecError
from support.rules import code, reads, rule, run


def test_emit_omits_missing_fields_but_keeps_declared_defaults() -> None:
    text = "{emit: {a: a, b: b, c: {from: c, default: null}, d: null, e: 0}}"
    assert run(text, {"a": 1}) == {"a": 1, "c": None, "d": None, "e": 0}
    value, _ = code(text)
    assert not value.nullable and value.fresh
    assert reads("{emit: {x: a.b, y: {from: c, apply: m}}}", maps={"m": "{from: z}"}) == {"a", "c"}


def test_emit_writes_known_values_without_a_test() -> None:
    _, written = code("{emit: {kind: {value: message}, id: {id: msg}, maybe: m}}")
    lines = written.splitlines()

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip())

    depth = {name: indent(line) for line in lines for name in ("kind", "id", "maybe")
             if f"['{name}'] =" in line}
    top = indent(lines[0])  # the object's own ``o = {}``
    assert depth["kind"] == depth["id"] == top  # a literal and an id are never None
    assert depth["maybe"] > top  # a path may be absent: written under a test


def test_emit_takes_an_object() -> None:
    with pytest.raises(SpecError):
        rule("{emit: [a]}")


def test_each_maps_and_skips_missing_values() -> None:
    assert run("{each: xs, from: v}", {"xs": [{"v": 1}, {}, {"v": 3}]}) == [1, 3]
    assert run("{each: xs}", {}) is None
    assert run("{each: xs, from: v, flatten: true}", {"xs": [{"v": [1, 2]}, {"v": 3}]}) == [1, 2, 3]


def test_each_list_level_keys_act_on_the_list() -> None:
    assert run("{each: xs, from: v, omit_empty: true}", {"xs": [{}]}) is None
    assert run("{each: xs, then: 'length(@)'}", {"xs": [1, 2, 3]}) == 3
    assert run("{each: xs, when: go, from: v}", {"go": False, "xs": [{"v": 1}]}) is None


def test_each_error_carries_the_index_and_path() -> None:
    with pytest.raises(CoercionError) as caught:
        run("{each: items, from: n, as: integer}", {"items": [{"n": 1}, {"n": "two"}]})
    assert caught.value.json_path == "items[1].n"
    with pytest.raises(CoercionError) as caught:
        run("{each: items}", {"items": "nope"})
    assert caught.value.json_path == "items" and "expected an array" in caught.value.message


def test_each_reads_its_array_and_list_level_guards_only() -> None:
    # the element rule (from, emit, switch...) reads the elements, not the root
    assert reads("{each: items, from: type, when: go}") == {"items", "go"}
    assert reads("{each: items, emit: {a: b}, switch: t, cases: {x: y}}") == {"items"}


def test_switch_cases_and_otherwise() -> None:
    text = "{switch: type, cases: {a: {value: 1}, 'null': {value: 0}, 'true': {value: 2}}, otherwise: {value: 9}}"
    assert run(text, {"type": "a"}) == 1
    assert run(text, {}) == 0  # a missing key is the case 'null'
    assert run(text, {"type": True}) == 2
    assert run(text, {"type": "zzz"}) == 9
    assert reads("{switch: type, cases: {a: x}, otherwise: {from: y}}") == {"type", "x", "y"}


def test_switch_without_otherwise_refuses_unknown_keys() -> None:
    with pytest.raises(NoCase) as caught:
        run("{switch: type, cases: {a: {value: 1}}}", {"type": "b"})
    assert "'b'" in caught.value.message and "a" in caught.value.message


def test_concat_flattens_one_level_and_skips_missing() -> None:
    text = "{concat: {one: {value: 1}, none: missing, many: xs}}"
    assert run(text, {"xs": [2, 3]}) == [1, 2, 3]
    value, written = code(text)
    assert not value.nullable  # always a list
    assert ".append((1))" in written  # a literal needs no test
    assert reads(text) == {"missing", "xs"}
    with pytest.raises(SpecError):
        rule("{concat: [a]}")


def test_first_takes_the_first_value() -> None:
    assert run("{first: [a, b, {value: c}]}", {"b": 2}) == 2
    assert run("{first: [a, b]}", {}) is None
    assert reads("{first: [a, {from: b.c}]}") == {"a", "b"}
    with pytest.raises(SpecError):
        rule("{first: []}")
