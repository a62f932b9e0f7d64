"""engine/templates.py: substitution-only templates written inline agree with Jinja's rendering."""

from __future__ import annotations

from typing import Any

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.engine.context import Context
from mapper.engine.errors import ExpressionError
from mapper.engine.paths import PATH_RUNTIME
from mapper.engine.source import Names, SourceWriter, define_function
from mapper.engine.templates import TEMPLATE_RUNTIME, _jinja, template_variables, write_template


def compiled(source: str) -> tuple[Any, str]:
    """The template as a function, and the source written for it."""
    namespace = {**PATH_RUNTIME, **TEMPLATE_RUNTIME}
    w = SourceWriter(Names(), namespace)
    value = write_template(w, source, "scope")
    w(f"return {value.expr}")
    function, code = define_function(namespace, "render", w.lines)
    return function, code


SUBSTITUTIONS = ["plain text", "", "{{ a }}", "x{{a}}y{{ b.c }}z", "{{ a }}{{ a }}", "[{{ b.c }}]",
                 "data:{{ a }};base64,{{ b.c }}"]
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(-2, 2, allow_nan=False),
                   st.text(max_size=3), st.lists(st.integers(0, 2), max_size=2))
SCOPES = st.one_of(VALUES, st.fixed_dictionaries({}, optional={
    "a": VALUES, "b": st.one_of(VALUES, st.fixed_dictionaries({}, optional={"c": VALUES}))}))


@pytest.mark.parametrize("source", SUBSTITUTIONS)
def test_substitutions_are_written_inline(source: str) -> None:
    _, code = compiled(source)
    assert "TPL" not in code  # no Jinja render call


def test_jinja_syntax_goes_through_jinja() -> None:
    render, code = compiled("{% if a %}yes{% endif %}{{ b | upper }}")
    assert "TPL" in code
    assert render({"a": 1, "b": "x"}, Context()) == "yesX"


@settings(max_examples=300, deadline=None, database=None)
@given(scope=SCOPES, source=st.sampled_from(SUBSTITUTIONS))
def test_inline_substitutions_agree_with_jinja(scope: Any, source: str) -> None:
    render, _ = compiled(source)
    try:
        expected = _jinja(source)(scope, Context())
    except jinja2.UndefinedError:
        # Jinja raises on a step through a missing value (``b.c`` without ``b``); the inline form
        # reads it as a JMESPath path does, as nothing
        expected = None
    got = render(scope, Context())
    assert got == expected or expected is None


def test_bad_template_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError) as caught:
        compiled("{% if %}")
    assert "bad Jinja2 template" in caught.value.message


def test_template_variables() -> None:
    assert template_variables("{{ a.b }} {{ value }} {% for x in c %}{{ x }}{% endfor %}") == {"a", "c"}
