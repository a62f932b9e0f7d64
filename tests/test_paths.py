"""engine/paths.py: plain paths as inline lookups, JMESPath for the rest, and what a path reads.

``compile_path`` wraps the very statements ``write_path`` writes into a rule, so agreeing with
``jmespath.search`` here (on fixed and on generated documents) is the rules' path engine agreeing.
"""

from __future__ import annotations

from typing import Any

import jmespath
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jmespath import exceptions as jmespath_errors

from mapper.engine.context import Context
from mapper.engine.errors import CoercionError, ExpressionError
from mapper.engine.paths import WHOLE, compile_path, fields_read, input_path, is_plain
from mapper.engine.ops import truthy
from support.rules import code, rule

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


KEYS = st.sampled_from(["a", "b", "c", "model", "choices"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["", "x", "string"]))
DOCUMENTS = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)
GENERATED = ["a", "a.b", "a.b.c", "a[0]", "a[-1].b", "a[0][1]", "a.b[2].c", "choices[0].model",
             "a || b", "a[?b].c", "length(a)", "a[*].b | [0]"]


def _outcome(search: Any) -> tuple[str, Any]:
    try:
        return "value", search()
    except (jmespath_errors.JMESPathError, CoercionError):
        return "error", None
    except TypeError:
        return "crash", None  # jmespath itself crashes on some pairs; the compiled path must not


@settings(max_examples=300, deadline=None, database=None)
@given(document=DOCUMENTS, expression=st.sampled_from(GENERATED))
def test_compiled_paths_agree_with_jmespath_on_generated_documents(document: Any, expression: str) -> None:
    expected = _outcome(lambda: jmespath.search(expression, document))
    got = _outcome(lambda: compile_path(expression)(document, Context()))
    if expected[0] == "crash":
        assert got[0] == "value"
        return
    assert got == expected and type(got[1]) is type(expected[1])


def test_context_paths_read_the_context_whatever_the_scope() -> None:
    ctx = Context(request={"a": [{"b": 1}]})
    for scope in (None, {"a": 2}, [1]):
        assert compile_path("$request.a[0].b")(scope, ctx) == 1
        assert compile_path("$request")(scope, ctx) == {"a": [{"b": 1}]}


SHARED = ["a.b.c", "a.b", "a[0].b", "a[0].c", "a.b[2].c", "a.b.c.a", "choices[0].model", "choices[0]", "a"]
GUARDS = ["x", "y", "z", "a.b", None]
# documents whose guards (x, y, z) hold in every combination
GUARDED = st.one_of(DOCUMENTS, st.fixed_dictionaries({"x": st.booleans(), "y": st.booleans(), "z": st.booleans()},
                                                     optional={"a": DOCUMENTS, "choices": DOCUMENTS}))


@settings(max_examples=400, deadline=None, database=None)
@given(document=GUARDED, picks=st.lists(st.tuples(st.sampled_from(SHARED), st.sampled_from(GUARDS)),
                                        min_size=2, max_size=6))
def test_paths_sharing_a_prefix_in_one_function_agree_with_jmespath(document: Any, picks: list) -> None:
    # One function reads several paths, some only under a guard that reads another path: the steps
    # they share are read once (SourceWriter.recall), and a step first read inside a guard's
    # block must not be reused after the block, where it may never have been bound.
    fields = {f"f{n}": expression if guard is None else {"when": guard, "from": expression}
              for n, (expression, guard) in enumerate(picks)}
    got = rule(yaml.safe_dump({"emit": fields}))(document, Context())
    for name, (expression, guard) in zip(fields, picks):
        if guard is not None and not truthy(jmespath.search(guard, document)):
            assert name not in got  # the guard failed: no value
        else:
            assert got.get(name) == jmespath.search(expression, document), name


def test_a_shared_step_is_read_once() -> None:
    _, written = code('{emit: {x: "choices[0].delta.content", y: "choices[0].delta.refusal", z: "choices[0].index"}}')
    assert written.count("get('choices')") == 1 and written.count("get('delta')") == 1
