"""engine/paths.py: plain paths as direct lookups, JMESPath for the rest, and what a path reads."""

from __future__ import annotations

import jmespath
import pytest

from mapper.engine.context import Context
from mapper.engine.errors import ExpressionError
from mapper.engine.paths import WHOLE, compile_path, fields_read, input_path, is_plain

DOCUMENT = {
    "model": "m",
    "choices": [{"message": {"content": "hi", "tool_calls": [{"id": "a"}, {"id": "b"}]}}],
    "a": {"b": {"c": {"d": 4}}},
    "text": "string",
    "zero": 0,
    "flag": False,
}

PLAIN = [
    "model", "a.b", "a.b.c", "a.b.c.d", "choices[0].message.content",
    "choices[0].message.tool_calls[1].id", "choices[-1].message", "choices[5].message",
    "missing", "missing.deeper", "text.length", "zero", "flag", "a.b.c.d.e", "text[0]",
]


@pytest.mark.parametrize("expression", PLAIN)
def test_plain_paths_agree_with_jmespath(expression: str) -> None:
    assert is_plain(expression)
    assert compile_path(expression)(DOCUMENT, Context()) == jmespath.search(expression, DOCUMENT)


@pytest.mark.parametrize("expression", [
    "type || 'message'", "choices[*].message.content", "length(choices)", "a.b.c.d == `4`",
    "choices[0].message.tool_calls[?id=='b'].id | [0]", "!missing",
])
def test_expressions_go_through_jmespath(expression: str) -> None:
    assert not is_plain(expression)
    assert compile_path(expression)(DOCUMENT, Context()) == jmespath.search(expression, DOCUMENT)


def test_plain_paths_tolerate_non_object_scopes() -> None:
    for scope in (None, "text", 3, [1, 2], True):
        assert compile_path("a.b")(scope, Context()) is None
        assert compile_path("a")(scope, Context()) is None


def test_at_is_the_scope_itself() -> None:
    assert compile_path("@")(DOCUMENT, Context()) is DOCUMENT


def test_context_variables() -> None:
    ctx = Context(request={"tools": [{"name": "f"}]}, status=429)
    assert compile_path("$request.tools[0].name")({}, ctx) == "f"
    assert compile_path("$status")({}, ctx) == 429
    assert compile_path("$request.tools[?name=='f'] | length(@)")({}, ctx) == 1


def test_unknown_variable_is_a_located_error() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_path("$requset.tools")
    assert "unknown variable $requset" in str(caught.value)


def test_bad_expression_shows_a_caret() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_path("choices[0.message")
    text = str(caught.value)
    assert "M104" in text and "choices[0.message" in text and "^" in text


@pytest.mark.parametrize("expression, expected", [
    ("model", {"model"}),
    ("choices[0].message", {"choices"}),
    ("@", {WHOLE}),
    ("$request.tools", set()),
    ("type || 'message'", {"type"}),
    ("tools[?type=='function'].name", {"tools"}),
    ("contains(include || `[]`, 'x') || top_logprobs", {"include", "top_logprobs"}),
    ("a.b | c", {"a"}),
    ("type(@) == 'string'", {WHOLE}),
])
def test_fields_read(expression: str, expected: set[str]) -> None:
    assert fields_read(expression) == expected


def test_input_path() -> None:
    assert input_path("choices[0].message") == ("choices", 0, "message")
    assert input_path("a || b") == ("a || b",)
    assert input_path("$request.x") == ()
    assert input_path("@") == ()


def test_a_runtime_type_error_is_a_conversion_error_not_a_crash() -> None:
    from mapper.engine.errors import CoercionError

    with pytest.raises(CoercionError) as caught:
        compile_path("length(n) > `1`")({"n": 5}, Context())
    assert "length(n)" in caught.value.message
