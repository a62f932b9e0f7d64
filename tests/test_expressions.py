"""engine/expressions.py agrees with jmespath.search: every mapping expression, generated documents.

The compiled statements replace jmespath's interpreter on the hot path, so they must give the same
result, or raise where jmespath raises, for every expression a built-in mapping uses and for a
catalogue of expressions covering each node kind, over documents hypothesis generates.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jmespath
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jmespath import exceptions as jmespath_errors

from mapper.engine.expressions import compile_ast
from mapper.engine.paths import is_plain

CATALOGUE = [
    "a", "a.b", "a[0]", "a[-1]", "a[0].b", "@", "a || b", "a && b", "!a", "a == b", "a != b",
    "a < b", "a <= b", "a > b", "a >= b", "a == `1`", "a == `true`", "a == 'x'", "a == `null`",
    "a[?b == 'x']", "a[?b].c", "a[*].b", "a[].b", "a[]", "a | b", "a | [0]", "[a, b]", "{x: a, y: b}",
    "type(a)", "length(a)", "contains(a, 'x')", "contains(a, `1`)", "join(', ', a)", "floor(a)",
    "not_null(a, b, 'z')", "keys(a)", "to_string(a)", "a || `[]`", "a[?type=='x' || type=='y'].b",
    "type(@) == 'string' && 'mode' || type", "a.b || a.c", "`[1, 2]`", "`{\"k\": 1}`",
    "a[?b > `1`]", "length(a[?b])", "a[0].b[1].c",
]

KEYS = st.sampled_from(["a", "b", "c", "type", "x"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(-3, 3, allow_nan=False),
                    st.sampled_from(["", "x", "y", "mode", "string"]))
DOCUMENTS = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)


def _mapping_expressions() -> list[str]:
    """Every non-plain JMESPath string in the built-in mappings, found by key."""
    found: set[str] = set()

    def walk(node: Any, key: str | None = None) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and key in ("from", "when", "unless", "switch", "each") \
                and not node.startswith("$") and not is_plain(node):
            found.add(node)

    for path in Path(__file__).parent.parent.glob("mappings/**/*.yaml"):
        walk(yaml.safe_load(path.read_text()))
    return sorted(found)


EXPRESSIONS = CATALOGUE + _mapping_expressions()


def outcome(function: Any) -> tuple[str, Any]:
    try:
        return "value", function()
    except jmespath_errors.JMESPathError as error:
        return "error", type(error).__name__
    except TypeError:
        # jmespath itself crashes (ordering a number against a string, contains('x', `1`));
        # the compiled form must not, and any value it gives is accepted
        return "crash", None


def agree(expression: str, document: Any) -> None:
    compiled = compile_ast(jmespath.compile(expression).parsed)
    expected = outcome(lambda: jmespath.search(expression, document))
    got = outcome(lambda: compiled(document))
    if expected[0] == "crash":
        assert got[0] == "value", (expression, document, got)
        return
    if expected[0] == "value" and got[0] == "value":
        assert got[1] == expected[1] and type(got[1]) is type(expected[1]), (expression, document)
    else:
        assert got[0] == expected[0], (expression, document, got, expected)


def test_the_mappings_expressions_are_in_the_test() -> None:
    assert len(_mapping_expressions()) > 20


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_fixed_documents(expression: str) -> None:
    documents = [None, {}, [], "s", 3, {"a": None}, {"a": "x", "b": "x"}, {"a": [1, 2], "b": 2},
                 {"a": [{"b": "x", "c": 1}, {"b": "y"}, 5], "type": "x"}, {"a": True, "b": 1},
                 {"a": 0, "b": False}, {"a": [[1], [2, 3]]}, {"a": 2.7}, {"a": ["p", "q"]},
                 {"a": {"b": {"c": 1}}, "type": "string"}]
    for document in documents:
        agree(expression, document)


@settings(max_examples=300, deadline=None, database=None)
@given(document=DOCUMENTS, expression=st.sampled_from(EXPRESSIONS))
def test_generated_documents(document: Any, expression: str) -> None:
    agree(expression, document)


def test_unknown_functions_fall_back_to_jmespath() -> None:
    compiled = compile_ast(jmespath.compile("sort_by(a, &b)[*].b").parsed)
    assert compiled({"a": [{"b": 2}, {"b": 1}]}) == [1, 2]
    assert re.search("keys", "keys(a)")
