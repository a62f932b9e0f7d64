"""engine/ops/modifiers.py: apply, fn, lookup, as, clamp, then and omit_empty, each on its own."""

from __future__ import annotations

import pytest

from mapper.engine.errors import (CoercionError, ConversionError, ReferenceError_, SpecError,
                                  UnknownFunction)
from mapper.engine.ops import Table
from support.rules import code, reads, rule, run

MAPS = {"double": "{emit: {v: v, again: v}}", "strict": "{from: n, as: integer}"}


def test_apply_uses_a_named_map_and_names_it_in_errors() -> None:
    assert run("{from: x, apply: double}", {"x": {"v": 1}}, maps=MAPS) == {"v": 1, "again": 1}
    with pytest.raises(CoercionError) as caught:
        run("{from: x, apply: strict}", {"x": {"n": "1"}}, maps=MAPS)
    assert caught.value.rule == "maps.strict" and caught.value.json_path == "x.n"


def test_apply_reads_the_map_only_when_it_runs_on_the_rule_s_scope() -> None:
    assert reads("{apply: strict}", maps=MAPS) == {"n"}
    assert reads("{from: x, apply: strict}", maps=MAPS) == {"x"}
    assert reads("{apply: loop}", maps={"loop": "{from: a, then: {apply: loop}}"}) == {"a"}


def test_apply_with_unknown_map_is_a_located_spec_error() -> None:
    with pytest.raises(ReferenceError_) as caught:
        rule("{apply: dobule}", maps=MAPS)
    assert "did you mean 'double'" in str(caught.value) and "test.yaml" in str(caught.value)


def test_fn_resolves_at_compile_time_with_args() -> None:
    items = [{"type": "message"}, {"type": "function_call"}]
    out = run("{from: items, fn: close_output_items, args: {last_status: {value: incomplete}}}",
              {"items": items})
    assert [item["status"] for item in out] == ["completed", "incomplete"]
    with pytest.raises(UnknownFunction) as caught:
        rule("{fn: merge_tool_call}")
    assert "M102" in str(caught.value) and "merge_tool_call" in str(caught.value)
    with pytest.raises(SpecError):
        rule("{fn: text_of, args: {nope: 1}}")


def test_fn_reads_its_args_and_the_whole_scope_without_a_source() -> None:
    assert reads("{fn: text_of}") == {"@"}
    assert reads("{from: a, fn: close_output_items, args: {last_status: b}}") == {"a", "b"}


def test_lookup_rows_columns_and_default() -> None:
    table = Table("t", {"a": ("A", {"k": 1}), "z": ("Z", None)}, ("name", "extra"), "z")
    assert run("{from: k, lookup: t.name}", {"k": "a"}, tables={"t": table}) == "A"
    assert run("{from: k, lookup: t.name}", {"k": "other"}, tables={"t": table}) == "Z"
    assert run("{from: k, lookup: t}", {"k": "a"}, tables={"t": table}) == ["A", {"k": 1}]
    first = run("{from: k, lookup: t.extra}", {"k": "a"}, tables={"t": table})
    first["k"] = 2  # a looked-up container is a copy
    assert table.rows["a"][1] == {"k": 1}
    no_default = Table("n", {"a": "A"}, (), None)
    with pytest.raises(ConversionError):
        run("{from: k, lookup: n}", {"k": "b"}, tables={"n": no_default})


def test_lookup_names_a_table_and_a_column_it_has() -> None:
    table = Table("t", {"a": ("A",)}, ("name",), None)
    with pytest.raises(ReferenceError_) as caught:
        rule("{from: k, lookup: t.nope}", tables={"t": table})
    assert "has no column 'nope' (columns: name)" in caught.value.message
    with pytest.raises(ReferenceError_):
        rule("{from: k, lookup: other}", tables={"t": table})


@pytest.mark.parametrize("type_name, value, expected", [
    ("integer", 3.0, 3), ("number", 2.5, 2.5), ("boolean", False, False), ("string", "s", "s"),
    ("text", 12, "12"), ("json_string", {"a": [1]}, '{"a":[1]}'), ("json", '{"a": 1}', {"a": 1}),
    ("array", [1], [1]), ("object", {}, {}), ("list", 1, [1]),
])
def test_as_coerces_inline_or_through_the_coercion(type_name: str, value: object, expected: object) -> None:
    assert run(f"{{from: v, as: {type_name}}}", {"v": value}) == expected


def test_as_refuses_at_the_input_path() -> None:
    with pytest.raises(CoercionError) as caught:
        run("{from: a.b, as: string}", {"a": {"b": 1}})
    assert caught.value.json_path == "a.b" and caught.value.message == "expected a string, got integer"
    with pytest.raises(SpecError):
        rule("{from: x, as: float}")


def test_clamp_bounds_a_number() -> None:
    assert run("{from: n, clamp: [1, 10]}", {"n": 50}) == 10
    assert run("{from: n, clamp: [1, 10]}", {"n": -5}) == 1
    with pytest.raises(CoercionError) as caught:
        run("{from: n, clamp: [1, 10]}", {"n": "a"})
    assert caught.value.json_path == "n"


def test_then_runs_a_rule_on_the_value() -> None:
    assert run("{from: a, then: b.c}", {"a": {"b": {"c": 7}}}) == 7
    assert reads("{then: x}") == {"x"} and reads("{from: a, then: x}") == {"a"}


def test_omit_empty_drops_empty_containers_only() -> None:
    for empty in ("", [], {}):
        assert run("{from: v, omit_empty: true}", {"v": empty}) is None
    for kept in (0, False, "x"):
        assert run("{from: v, omit_empty: true}", {"v": kept}) == kept
    _, written = code("{from: v, omit_empty: false}")
    assert "CONTAINERS" not in written


def test_modifiers_run_in_written_order_and_stop_at_none() -> None:
    # as: list then then: wraps before measuring; the other order measures a string
    assert run("{from: s, as: list, then: 'length(@)'}", {"s": "abc"}) == 1
    assert run("{from: s, then: 'length(@)', as: list}", {"s": "abc"}) == [3]
    assert run("{from: s, omit_empty: true, as: integer}", {"s": ""}) is None
    value, _ = code("{from: s, as: string}")
    assert value.nullable  # a modifier may leave the value None
