"""engine/ops.py and engine/codegen.py: every op and modifier, compiled from YAML as a mapping writes it."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from mapper.engine.context import Context, deterministic_context
from mapper.engine.errors import (CoercionError, ConversionError, NoCase, ReferenceError_, RejectedField,
                                  SpecError, UnknownFunction)
from mapper.engine.codegen import RuleCompiler
from mapper.engine.ops import COERCIONS, Table, Where, truthy


def rule(text: str, maps: dict[str, str] | None = None, tables: dict[str, Table] | None = None):
    compiler = RuleCompiler(tables=tables or {}, map_names=(maps or {}).keys())
    for name, spec in (maps or {}).items():
        compiler.define_map(name, compiler.compile(yaml.safe_load(spec), Where(None, None, name),
                                                   rule_id=f"maps.{name}"))
    return compiler.compile(yaml.safe_load(text), Where("test.yaml", 1, "test"))


def run(text: str, scope: Any, ctx: Context | None = None, **kwargs: Any) -> Any:
    return rule(text, **kwargs)(scope, ctx or deterministic_context())


def test_bare_string_is_a_path_and_literals_are_literals() -> None:
    assert run("a.b", {"a": {"b": 1}}) == 1
    assert run("3", {}) == 3
    assert run("null", {}) is None
    assert run("[1, 2]", {}) == [1, 2]


def test_literal_containers_are_fresh_each_time() -> None:
    compiled = rule("{value: {list: [1]}}")
    first, second = compiled({}, Context()), compiled({}, Context())
    first["list"].append(2)
    assert second == {"list": [1]}
    empty = rule("[]")
    assert empty({}, Context()) is not empty({}, Context())


def test_when_uses_jmespath_truth() -> None:
    text = "{when: x, value: kept}"
    assert run(text, {"x": 0}) == "kept"  # 0 is true in JMESPath
    for falsy in (None, False, "", [], {}):
        assert run(text, {"x": falsy}) is None


def test_emit_omits_missing_fields_but_keeps_declared_defaults() -> None:
    text = "{emit: {a: a, b: b, c: {from: c, default: null}, d: null, e: 0}}"
    assert run(text, {"a": 1}) == {"a": 1, "c": None, "d": None, "e": 0}


def test_template_fast_path_and_jinja_agree() -> None:
    scope = {"type": "web_search", "n": 3, "none": None}
    assert run("{template: 'tool {{ type }} x{{n}}{{ none }}!'}", scope) == "tool web_search x3!"
    assert run("{template: '{{ type | upper }}'}", scope) == "WEB_SEARCH"
    assert run("{template: '{% if n > 2 %}many{% endif %}'}", scope) == "many"
    assert run("{template: '{{ none }}|{{ missing }}'}", scope) == "|"


def test_each_maps_and_skips_missing_values() -> None:
    assert run("{each: xs, from: v}", {"xs": [{"v": 1}, {}, {"v": 3}]}) == [1, 3]
    assert run("{each: xs}", {}) is None
    assert run("{each: xs, from: v, flatten: true}", {"xs": [{"v": [1, 2]}, {"v": 3}]}) == [1, 2, 3]


def test_each_then_and_omit_empty_act_on_the_list() -> None:
    assert run("{each: xs, from: v, omit_empty: true}", {"xs": [{}]}) is None
    assert run("{each: xs, then: 'length(@)'}", {"xs": [1, 2, 3]}) == 3


def test_each_error_carries_the_index_and_path() -> None:
    with pytest.raises(CoercionError) as caught:
        run("{each: items, from: n, as: integer}", {"items": [{"n": 1}, {"n": "two"}]})
    assert caught.value.json_path == "items[1].n"


def test_each_refuses_a_non_array() -> None:
    with pytest.raises(CoercionError) as caught:
        run("{each: items}", {"items": "nope"})
    assert caught.value.json_path == "items" and "expected an array" in caught.value.message


def test_switch_cases_and_otherwise() -> None:
    text = "{switch: type, cases: {a: {value: 1}, 'null': {value: 0}}, otherwise: {value: 9}}"
    assert run(text, {"type": "a"}) == 1
    assert run(text, {}) == 0
    assert run(text, {"type": "zzz"}) == 9


def test_switch_without_otherwise_refuses_unknown_keys() -> None:
    with pytest.raises(NoCase) as caught:
        run("{switch: type, cases: {a: {value: 1}}}", {"type": "b"})
    assert "'b'" in caught.value.message and "a" in caught.value.message


def test_concat_flattens_one_level_and_skips_missing() -> None:
    text = "{concat: {one: {value: 1}, none: missing, many: xs}}"
    assert run(text, {"xs": [2, 3]}) == [1, 2, 3]


def test_first_takes_the_first_value() -> None:
    assert run("{first: [a, b, {value: c}]}", {"b": 2}) == 2
    assert run("{first: [a, b]}", {}) is None


def test_id_and_now_come_from_the_context() -> None:
    ctx = deterministic_context()
    assert run("{id: resp}", {}, ctx) == "resp_0001"
    assert run("{id: msg}", {}, ctx) == "msg_0002"
    assert run("{now: seconds}", {}, ctx) == 1_700_000_000


def test_reject_raises_with_a_rendered_message() -> None:
    with pytest.raises(RejectedField) as caught:
        run("{reject: 'no {{ type }} here'}", {"type": "mcp"})
    assert caught.value.message == "no mcp here"


def test_drop_gives_no_value_and_needs_a_reason() -> None:
    assert run("{drop: not forwarded}", {"x": 1}) is None
    with pytest.raises(SpecError):
        rule("{drop: ''}")


def test_modifiers_run_in_written_order() -> None:
    # as: list then then: wraps before measuring; the other order measures a string
    assert run("{from: s, as: list, then: 'length(@)'}", {"s": "abc"}) == 1
    assert run("{from: s, then: 'length(@)', as: list}", {"s": "abc"}) == [3]


def test_apply_uses_a_named_map_and_names_it_in_errors() -> None:
    maps = {"double": "{emit: {v: v, again: v}}", "strict": "{from: n, as: integer}"}
    assert run("{from: x, apply: double}", {"x": {"v": 1}}, maps=maps) == {"v": 1, "again": 1}
    with pytest.raises(CoercionError) as caught:
        run("{from: x, apply: strict}", {"x": {"n": "1"}}, maps=maps)
    assert caught.value.rule == "maps.strict" and caught.value.json_path == "x.n"


def test_apply_with_unknown_map_is_a_spec_error() -> None:
    with pytest.raises(ReferenceError_) as caught:
        rule("{apply: nothing_here}")
    assert "nothing_here" in str(caught.value) and "test.yaml" in str(caught.value)


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


def test_lookup_rows_columns_and_default() -> None:
    table = Table("t", {"a": ("A", {"k": 1}), "z": ("Z", None)}, ("name", "extra"), "z")
    assert run("{from: k, lookup: t.name}", {"k": "a"}, tables={"t": table}) == "A"
    assert run("{from: k, lookup: t.name}", {"k": "other"}, tables={"t": table}) == "Z"
    first = run("{from: k, lookup: t.extra}", {"k": "a"}, tables={"t": table})
    first["k"] = 2  # a looked-up container is a copy
    assert table.rows["a"][1] == {"k": 1}
    with pytest.raises(ReferenceError_):
        rule("{from: k, lookup: t.nope}", tables={"t": table})
    no_default = Table("n", {"a": "A"}, (), None)
    with pytest.raises(ConversionError):
        run("{from: k, lookup: n}", {"k": "b"}, tables={"n": no_default})


def test_required_and_default() -> None:
    with pytest.raises(CoercionError) as caught:
        run("{from: name, required: true}", {})
    assert caught.value.json_path == "name" and "required" in caught.value.message
    assert run("{from: name, default: anon}", {}) == "anon"
    default = rule("{from: x, default: []}")
    assert default({}, Context()) is not default({}, Context())


def test_clamp() -> None:
    assert run("{from: n, clamp: [1, 10]}", {"n": 50}) == 10
    with pytest.raises(CoercionError):
        run("{from: n, clamp: [1, 10]}", {"n": "a"})


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


def test_unknown_as_type_and_two_sources_are_spec_errors() -> None:
    with pytest.raises(SpecError):
        rule("{from: x, as: float}")
    with pytest.raises(SpecError) as caught:
        rule("{from: x, value: 1}")
    assert "one source" in str(caught.value)


def test_truthy_matches_jmespath() -> None:
    assert [truthy(v) for v in (0, 0.0, "a", [0], {"k": 0}, True)] == [True] * 6
    assert [truthy(v) for v in (None, False, "", [], {})] == [False] * 5


def test_id_prefix_with_its_own_separator() -> None:
    ctx = deterministic_context()
    assert run("{id: chatcmpl-}", {}, ctx) == "chatcmpl-0001"
    assert run("{id: resp}", {}, ctx) == "resp_0002"


def test_when_and_unless_take_lists_of_conditions() -> None:
    ctx = deterministic_context(request={"functions": [1]})
    text = "{when: [a, $request.functions], unless: [b, c], value: ran}"
    assert run(text, {"a": 1}, ctx) == "ran"
    assert run(text, {"a": 1, "c": 1}, ctx) is None
    assert run(text, {}, ctx) is None
    assert run(text, {"a": 1}, deterministic_context()) is None
    assert run("{unless: b, value: ran}", {"b": 0}) is None  # 0 is true in JMESPath
