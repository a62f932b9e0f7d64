"""engine/ops/runtime.py: what the generated code calls: truth, keys, copies, tables, coercions."""

from __future__ import annotations

from typing import Any

import pytest

from mapper.engine.errors import CoercionError, ConversionError
from mapper.engine.ops.runtime import COERCIONS, Table, case_key, copy_json, fresh, json_type, truthy


def test_truthy_matches_jmespath() -> None:
    assert [truthy(v) for v in (0, 0.0, "a", [0], {"k": 0}, True)] == [True] * 6
    assert [truthy(v) for v in (None, False, "", [], {})] == [False] * 5


def test_case_keys_are_text() -> None:
    assert [case_key(v) for v in ("a", None, True, False, 3, 2.5)] == [
        "a", "null", "true", "false", "3", "2.5"]


def test_copies_share_nothing() -> None:
    original = {"a": [{"b": 1}], "c": "s"}
    copied = copy_json(original)
    copied["a"][0]["b"] = 2
    assert original == {"a": [{"b": 1}], "c": "s"}
    row = ("x", {"k": [1]})
    handed = fresh(row)
    handed[1]["k"].append(2)
    assert handed == ["x", {"k": [1, 2]}] and row[1] == {"k": [1]}


def test_table_rows_fall_back_to_the_default_row() -> None:
    table = Table("t", {"a": 1, "null": 0, "z": 9}, (), "z")
    assert [table.row(key) for key in ("a", None, "other")] == [1, 0, 9]
    with pytest.raises(ConversionError) as caught:
        Table("n", {"a": 1}, (), None).row("b")
    assert "no row 'b' in table 'n'" in caught.value.message


@pytest.mark.parametrize("type_name, value, expected", [
    ("integer", 3, 3), ("integer", 3.0, 3), ("number", 2.5, 2.5), ("boolean", False, False),
    ("string", "s", "s"), ("text", 12, "12"), ("text", {"a": 1}, '{"a":1}'), ("text", True, "true"),
    ("json_string", {"a": [1]}, '{"a":[1]}'), ("json_string", "raw", "raw"),
    ("json", '{"a": 1}', {"a": 1}), ("array", [1], [1]), ("object", {}, {}), ("list", 1, [1]),
])
def test_coercions_accept(type_name: str, value: Any, expected: Any) -> None:
    assert COERCIONS[type_name](value) == expected


@pytest.mark.parametrize("type_name, value", [
    ("integer", True), ("integer", 2.5), ("integer", "3"), ("number", "1"), ("number", False),
    ("boolean", 1), ("string", 1), ("json", "{nope"), ("array", {}), ("object", []),
])
def test_coercions_refuse(type_name: str, value: Any) -> None:
    with pytest.raises(CoercionError):
        COERCIONS[type_name](value)


def test_json_type_names() -> None:
    assert [json_type(v) for v in (None, True, 1, 1.5, "s", [], {})] == [
        "null", "boolean", "integer", "number", "string", "array", "object"]
