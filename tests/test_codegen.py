"""engine/codegen.py: the rule compiler that walks a rule in evaluation order and dispatches to the ops."""

from __future__ import annotations

import re

import pytest
import yaml

from mapper.engine.codegen import RuleCompiler
from mapper.engine.context import Context, deterministic_context
from mapper.engine.errors import CoercionError, SpecError, SpecErrors
from mapper.engine.ops import Where
from support.rules import code, compiler, rule, run


def test_bare_string_is_a_path_and_literals_are_literals() -> None:
    assert run("a.b", {"a": {"b": 1}}) == 1
    assert run("3", {}) == 3
    assert run("null", {}) is None
    assert run("[1, 2]", {}) == [1, 2]
    empty = rule("[]")
    assert empty({}, Context()) is not empty({}, Context())


def test_a_rule_without_a_source_works_on_its_scope() -> None:
    assert run("{as: object}", {"a": 1}) == {"a": 1}
    value, written = code("{}")
    assert value.expr == "scope" and not value.fresh and written == ""  # nothing to wrap


def test_a_fresh_source_variable_is_rebound_in_place_not_copied() -> None:
    value, written = code("{from: a, as: string}")
    assert value.fresh and not re.search(r"\br\d+ = ", written)  # no copy into a rule variable
    assert f"raise expect('a string', {value.expr})" in written  # the path's own variable is checked
    value, written = code("{when: go, from: a, as: string}")
    assert re.search(rf"\b{value.expr} = None", written)  # guarded: a variable of the rule's own


def test_two_sources_are_a_spec_error() -> None:
    with pytest.raises(SpecError) as caught:
        rule("{from: x, value: 1}")
    assert "one source" in str(caught.value) and caught.value.file == "test.yaml"


def _section(*fields: tuple[str, str]) -> object:
    rules = compiler()
    return rules.compile_section([(name, yaml.safe_load(text), Where("m.yaml", n, f"request.fields.{name}"))
                                  for n, (name, text) in enumerate(fields, start=1)],
                                 Where("m.yaml", None, "request"))


def test_a_section_run_error_names_the_field_rule_that_raised_it() -> None:
    build = _section(("model", "{from: model, as: string}"), ("n", "{from: n, as: integer}"))
    assert build({"model": "m", "n": 2}, deterministic_context()) == {"model": "m", "n": 2}
    for body, rule_id, path in (({"model": 1, "n": 2}, "request.fields.model", "model"),
                                ({"model": "m", "n": "x"}, "request.fields.n", "n")):
        with pytest.raises(CoercionError) as caught:
            build(body, deterministic_context())
        assert (caught.value.rule, caught.value.json_path) == (rule_id, path)


def test_a_map_s_own_rule_id_wins_over_the_field_that_applied_it() -> None:
    rules = compiler({"strict": "{from: n, as: integer}"})
    build = rules.compile_section([("x", {"from": "x", "apply": "strict"}, Where(None, None, "request.fields.x"))],
                                  Where(None, None, "request"))
    with pytest.raises(CoercionError) as caught:
        build({"x": {"n": "1"}}, deterministic_context())
    assert caught.value.rule == "maps.strict" and caught.value.json_path == "x.n"


def test_a_section_reports_every_field_s_spec_error_at_once() -> None:
    with pytest.raises(SpecErrors) as caught:
        _section(("a", "{from: 'x[0'}"), ("b", "{apply: nothing}"), ("c", "ok"))
    assert [error.rule for error in caught.value.errors] == ["request.fields.a", "request.fields.b"]


def test_a_rule_nested_past_python_s_limit_is_a_located_spec_error() -> None:
    deep: object = "v"
    for _ in range(12):
        deep = {"each": "xs", "emit": {"x": deep}}
    with pytest.raises(SpecError) as caught:
        RuleCompiler(tables={}, map_names=()).compile(deep, Where("m.yaml", 7, "maps.deep"))
    assert "too deeply nested" in caught.value.message and caught.value.line == 7
    shallow: object = "v"
    for _ in range(6):
        shallow = {"each": "xs", "emit": {"x": shallow}}
    assert RuleCompiler(tables={}, map_names=()).compile(shallow, Where(None, None, "ok"))({}, Context()) is None


def test_compile_guard_is_true_when_the_rule_should_run() -> None:
    rules = compiler()
    guard = rules.compile_guard({"when": "a", "unless": "b"}, Where(None, None, "request.reject.x"))
    assert [guard(scope, Context()) for scope in ({"a": 1}, {"a": 1, "b": 1}, {})] == [True, False, False]
    assert rules.compile_guard({"message": "m"}, Where(None, None, "r")) is None


def test_compile_fields_builds_an_object() -> None:
    build = compiler().compile_fields({"a": "x", "b": {"value": 1}, "c": "missing"}, Where(None, None, "envelope"))
    assert build({"x": 0}, Context()) == {"a": 0, "b": 1}


def test_the_generated_source_is_kept_readable_python() -> None:
    rules = compiler({"strict": "{from: n, as: integer}"})
    source = "\n".join(rules.sources)
    assert source.startswith("def _strict") and "error.in_rule('maps.strict')" in source
    compile(source, "<generated>", "exec")


def test_a_field_that_cannot_fail_is_not_wrapped_in_a_try() -> None:
    rules = compiler()
    rules.compile_section([("model", "model", Where(None, None, "request.fields.model")),
                           ("n", {"from": "n", "as": "integer"}, Where(None, None, "request.fields.n"))],
                          Where(None, None, "request"))
    [source] = rules.sources
    assert "in_rule('request.fields.n')" in source
    assert "in_rule('request.fields.model')" not in source  # a plain read raises nothing


def test_every_op_that_writes_a_raise_says_it_may_raise() -> None:
    # each rule below can fail at run time; its field must name itself in the error
    failing = ["{reject: nope}", "{switch: k, cases: {a: 1}}", "{each: xs}", "{from: x, required: true}",
               "{from: x, as: string}", "{from: x, apply: m}", "{from: x, fn: text_of}",
               "{from: x, lookup: t}", "'length(x)'", "{when: 'length(x)', value: 1}"]
    from mapper.engine.ops import Table

    for text in failing:
        rules = compiler({"m": "{as: string}"}, {"t": Table("t", {"a": 1}, (), None)})
        rules.compile_section([("f", yaml.safe_load(text), Where(None, None, "request.fields.f"))],
                              Where(None, None, "request"))
        assert "in_rule('request.fields.f')" in rules.sources[-1], text
