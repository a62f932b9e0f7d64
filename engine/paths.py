"""JMESPath expressions compiled once into fast getters, and the fields an expression reads.

Most expressions in a mapping are plain paths (``model``, ``choices[0].message.content``). Through
jmespath each costs about 1.5 µs; as a chain of ``dict.get`` calls it costs about 0.05 µs. So a plain
path compiles to a specialised closure, and real expressions (``||``, filters, functions) are parsed
by jmespath once and compiled to closures by ``engine.expressions``.

A path may start with ``$name`` to read from the run-time context instead of the scope:
``$request.tools`` is ``tools`` of the client's original request (see ``engine.context``).

Semantics follow JMESPath everywhere: a missing key, an index out of range, or a step into a value
of the wrong type gives ``None``.
"""

from __future__ import annotations

import operator
import re
from typing import Any, Callable

import jmespath
from jmespath import exceptions as jmespath_errors

from .context import CONTEXT_VARIABLES
from .errors import CoercionError, ExpressionError
from .expressions import compile_ast
from .types import Json

Getter = Callable[[Json, Any], Json]

_PLAIN = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[-?\d+\])*$")
_SEGMENT = re.compile(r"([A-Za-z_]\w*)|\[(-?\d+)\]")
_VARIABLE = re.compile(r"^\$([A-Za-z_]\w*)")
_MISSING_STEP = (AttributeError, KeyError, IndexError, TypeError)


def compile_path(expression: str) -> Getter:
    """Compile ``expression`` into ``(scope, ctx) -> value``. Raises ``ExpressionError``."""
    variable = _VARIABLE.match(expression)
    if variable:
        return _compile_variable(expression, variable)
    if expression == "@":
        return lambda scope, ctx: scope
    if _PLAIN.match(expression):
        return _compile_plain(path_segments(expression))
    evaluate = compile_ast(_parse(expression).parsed)

    def search_checked(scope: Json, ctx: Any) -> Json:
        try:
            return evaluate(scope)
        except jmespath_errors.JMESPathError as error:
            # a function given the wrong type by the payload, e.g. length(5): the input's fault
            raise CoercionError(f"{expression}: {error}") from None

    return search_checked


def is_plain(expression: str) -> bool:
    """True when ``expression`` compiles to direct lookups rather than a jmespath search."""
    return expression == "@" or bool(_PLAIN.match(expression))


def _compile_variable(expression: str, match: re.Match[str]) -> Getter:
    name = match.group(1)
    if name not in CONTEXT_VARIABLES:
        known = ", ".join(f"${n}" for n in CONTEXT_VARIABLES)
        raise ExpressionError(f"unknown variable ${name} (known: {known})",
                              expression=expression, column=0)
    read_variable = operator.attrgetter(name)
    rest = expression[match.end():].lstrip(".")
    if not rest:
        return lambda scope, ctx: read_variable(ctx)
    inner = compile_path(rest)
    return lambda scope, ctx: inner(read_variable(ctx), ctx)


def path_segments(expression: str) -> list[str | int]:
    """``choices[0].message`` gives ``["choices", 0, "message"]`` (plain paths only)."""
    return [name if name else int(index) for name, index in _SEGMENT.findall(expression)]


def split_variable(expression: str) -> tuple[str | None, str]:
    """``$request.tools[0]`` gives ``("request", "tools[0]")``; a path without ``$`` gives ``(None, it)``."""
    match = _VARIABLE.match(expression)
    if not match:
        return None, expression
    return match.group(1), expression[match.end():].lstrip(".")


def input_path(expression: Any) -> tuple[str | int, ...]:
    """The input path an expression reads, to locate run errors; plain paths only.

    ``choices[0].message`` gives ``("choices", 0, "message")``; a real expression is kept whole
    as one segment, and context paths (``$request...``) and ``@`` add nothing.
    """
    if not isinstance(expression, str) or expression.startswith("$") or expression == "@":
        return ()
    if _PLAIN.match(expression):
        return tuple(path_segments(expression))
    return (expression,)


def _compile_plain(segments: list[str | int]) -> Getter:
    # Unrolled closures for the common shapes; dict.get on a non-dict raises AttributeError,
    # which is exactly JMESPath's "step into the wrong type gives null".
    if all(isinstance(s, str) for s in segments):
        if len(segments) == 1:
            (a,) = segments

            def get1(scope: Json, ctx: Any) -> Json:
                try:
                    return scope.get(a)
                except AttributeError:
                    return None

            return get1
        if len(segments) == 2:
            a, b = segments

            def get2(scope: Json, ctx: Any) -> Json:
                try:
                    return scope.get(a).get(b)
                except AttributeError:
                    return None

            return get2
        if len(segments) == 3:
            a, b, c = segments

            def get3(scope: Json, ctx: Any) -> Json:
                try:
                    return scope.get(a).get(b).get(c)
                except AttributeError:
                    return None

            return get3
    steps = tuple(segments)

    def get_n(scope: Json, ctx: Any) -> Json:
        value = scope
        try:
            for step in steps:
                if step.__class__ is int:
                    # JMESPath indexes lists only; a string or dict is not indexable here
                    if value.__class__ is not list:
                        return None
                    value = value[step]
                else:
                    value = value.get(step)
        except _MISSING_STEP:
            return None
        return value

    return get_n


def parse_expression(expression: str) -> dict[str, Any]:
    """The jmespath AST of an expression (``SpecError`` when it does not parse)."""
    return _parse(expression).parsed


def _parse(expression: str) -> Any:
    try:
        return jmespath.compile(expression)
    except jmespath_errors.ParseError as error:
        raise ExpressionError(f"bad JMESPath expression: {error.msg}", expression=expression,
                              column=error.lex_position or 0) from None
    except jmespath_errors.JMESPathError as error:
        raise ExpressionError(f"bad JMESPath expression: {error}", expression=expression,
                              column=0) from None


# -- what an expression reads -----------------------------------------------------------------

WHOLE = "@"
"""Marker in a read set: the expression reads the whole scope (``@``), not named fields."""

# In these nodes only the first child is evaluated against the current scope; the others run
# against its result (or against the elements of a projection).
_FIRST_CHILD_ONLY = {"subexpression", "index_expression", "projection", "filter_projection",
                     "pipe", "value_projection", "slice_expression"}


def fields_read(expression: str) -> set[str]:
    """Top-level field names of the scope that ``expression`` reads; ``{WHOLE}`` for ``@``.

    ``$name`` paths read the context, not the scope, so they read no scope fields.
    """
    if _VARIABLE.match(expression):
        return set()
    if expression == "@":
        return {WHOLE}
    if _PLAIN.match(expression):
        first = path_segments(expression)[0]
        return {first} if isinstance(first, str) else {WHOLE}
    return _fields_in(_parse(expression).parsed)


def _fields_in(node: dict[str, Any]) -> set[str]:
    kind = node["type"]
    if kind == "field":
        return {node["value"]}
    if kind in ("current", "identity"):
        return {WHOLE}
    if kind in ("literal", "expref", "index", "slice"):
        return set()
    children = node.get("children", [])
    if kind in _FIRST_CHILD_ONLY:
        children = children[:1]
    found: set[str] = set()
    for child in children:
        found |= _fields_in(child)
    return found
