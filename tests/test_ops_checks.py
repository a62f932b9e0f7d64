"""engine/ops/checks.py: the guards when/unless and the checks required and default."""

from __future__ import annotations

import pytest

from mapper.engine.context import Context, deterministic_context
from mapper.engine.errors import CoercionError
from support.rules import code, reads, rule, run


def test_when_uses_jmespath_truth() -> None:
    text = "{when: x, value: kept}"
    assert run(text, {"x": 0}) == "kept"  # 0 is true in JMESPath
    for falsy in (None, False, "", [], {}):
        assert run(text, {"x": falsy}) is None
    value, _ = code(text)
    assert value.nullable  # a guarded rule may give no value, whatever its source


def test_when_and_unless_take_lists_of_conditions() -> None:
    ctx = deterministic_context(request={"functions": [1]})
    text = "{when: [a, $request.functions], unless: [b, c], value: ran}"
    assert run(text, {"a": 1}, ctx) == "ran"
    assert run(text, {"a": 1, "c": 1}, ctx) is None
    assert run(text, {}, ctx) is None
    assert run(text, {"a": 1}, deterministic_context()) is None
    assert run("{unless: b, value: ran}", {"b": 0}) is None  # 0 is true in JMESPath


def test_guards_read_every_condition() -> None:
    assert reads("{when: [a, $request.x], unless: 'b || c', value: 1}") == {"a", "b", "c"}


def test_required_fails_at_the_input_path() -> None:
    with pytest.raises(CoercionError) as caught:
        run("{from: name, required: true}", {})
    assert caught.value.json_path == "name" and "required" in caught.value.message
    value, _ = code("{from: name, required: true}")
    assert not value.nullable
    _, written = code("{from: name, required: false}")
    assert "required" not in written


def test_default_replaces_no_value_with_a_fresh_literal() -> None:
    assert run("{from: name, default: anon}", {}) == "anon"
    assert run("{from: name, default: anon}", {"name": "n"}) == "n"
    default = rule("{from: x, default: []}")
    assert default({}, Context()) is not default({}, Context())
    value, _ = code("{from: x, default: 1}")
    assert not value.nullable
    value, _ = code("{from: x, default: null}")
    assert value.nullable  # written as null, but still possibly None


def test_a_guarded_default_may_still_give_no_value() -> None:
    assert run("{when: go, from: x, default: 1}", {"go": False}) is None
    value, _ = code("{when: go, from: x, default: 1}")
    assert value.nullable
