"""engine/ops/sources.py: from, value, template, id, now, reject and drop, each compiled on its own.

Each op is checked for what it gives (run), what it tells the compiler about its value (``Code``),
what it reads for coverage, and the spec errors it raises.
"""

from __future__ import annotations

import pytest

from mapper.engine.context import Context, deterministic_context
from mapper.engine.errors import ExpressionError, RejectedField, SpecError
from support.rules import code, reads, rule, run


def test_from_reads_a_path_and_a_bare_string_is_the_same() -> None:
    scope = {"a": {"b": [1, 2]}}
    assert run("{from: 'a.b[1]'}", scope) == run("a.b[1]", scope) == 2
    assert run("{from: missing.deeper}", scope) is None
    value, _ = code("{from: a.b}")
    assert value.nullable and value.fresh  # a path may be absent; its variable is the rule's own
    assert reads("{from: 'a.b || c'}") == {"a", "c"} and reads("{from: $request.x}") == set()


def test_from_with_a_bad_expression_is_located() -> None:
    with pytest.raises(ExpressionError) as caught:
        rule("{from: 'a[0'}")
    assert caught.value.file == "test.yaml" and caught.value.rule == "test" and "^" in str(caught.value)


def test_value_literals_are_known_not_to_be_none() -> None:
    for text, expected in (("{value: 3}", 3), ("{value: text}", "text"), ("{value: false}", False)):
        value, written = code(text)
        assert value.literal and not value.nullable and written == ""  # no statement at all
        assert run(text, {}) == expected
    value, _ = code("{value: null}")
    assert value.is_none and run("{value: null}", {}) is None
    assert reads("{value: 1}") == set()


def test_value_containers_are_copied_per_use() -> None:
    compiled = rule("{value: {list: [1]}}")
    first, second = compiled({}, Context()), compiled({}, Context())
    first["list"].append(2)
    assert second == {"list": [1]}
    value, _ = code("{value: [1]}")
    assert value.fresh and not value.nullable and not value.literal  # a list: not appended blindly


def test_template_substitutes_and_renders_strings_only() -> None:
    scope = {"type": "web_search", "n": 3, "none": None}
    assert run("{template: 'tool {{ type }} x{{n}}{{ none }}!'}", scope) == "tool web_search x3!"
    assert run("{template: '{{ type | upper }}'}", scope) == "WEB_SEARCH"
    assert run("{template: '{% if n > 2 %}many{% endif %}'}", scope) == "many"
    assert run("{template: '{{ none }}|{{ missing }}'}", scope) == "|"
    value, _ = code("{template: 'x{{ a }}'}")
    assert not value.nullable  # a template always makes a string
    literal, _ = code("{template: 'no substitution'}")
    assert literal.literal and literal.expr == "'no substitution'"
    assert reads("{template: '{{ a.b }} and {{ c }}'}") == {"a", "c"}


def test_template_must_be_a_string_and_parse() -> None:
    with pytest.raises(SpecError):
        rule("{template: 3}")
    with pytest.raises(ExpressionError):
        rule("{template: '{% if %}'}")


def test_id_and_now_come_from_the_context() -> None:
    ctx = deterministic_context()
    assert run("{id: resp}", {}, ctx) == "resp_0001"
    assert run("{id: chatcmpl-}", {}, ctx) == "chatcmpl-0002"  # the prefix brings its separator
    assert run("{now: seconds}", {}, ctx) == 1_700_000_000
    for text in ("{id: msg}", "{now: seconds}"):
        value, _ = code(text)
        assert not value.nullable and value.fresh
    with pytest.raises(SpecError):
        rule("{id: ''}")


def test_reject_raises_with_a_rendered_message() -> None:
    with pytest.raises(RejectedField) as caught:
        run("{reject: 'no {{ type }} here'}", {"type": "mcp"})
    assert caught.value.message == "no mcp here"
    value, written = code("{reject: plain words}")
    assert value.is_none and "raise RejectedField('plain words')" in written


def test_drop_gives_no_value_and_needs_a_reason() -> None:
    assert run("{drop: not forwarded}", {"x": 1}) is None
    value, written = code("{drop: not forwarded}")
    assert value.is_none and written == ""
    with pytest.raises(SpecError) as caught:
        rule("{drop: ''}")
    assert "needs a reason" in caught.value.message
