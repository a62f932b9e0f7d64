"""JMESPath paths written out as Python statements, and the fields a path reads.

Most expressions in a mapping are plain paths (``model``, ``choices[0].message.content``). Through
jmespath each costs about 1.5 µs; as inline ``dict.get`` steps it costs about 0.05 µs. So
``write_path`` writes a plain path as lookups into the generated function, and a real expression
(``||``, filters, functions) as the statements ``engine.expressions`` writes for its AST. There is
one path engine, the generated code: ``compile_path`` wraps the same statements into a function
of their own for standalone use (tests, and anything that needs a getter).

A path may start with ``$name`` to read from the run-time context instead of the scope:
``$request.tools`` is ``tools`` of the client's original request (see ``engine.context``).

Semantics follow JMESPath everywhere: a missing key, an index out of range, or a step into a value
of the wrong type gives ``None``.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import jmespath
from jmespath import exceptions as jmespath_errors

from .context import CONTEXT_VARIABLES
from .errors import CoercionError, ExpressionError
from .expressions import RUNTIME, may_raise, write_expression
from .source import Code, Names, SourceWriter, define_function
from .types import Json

Getter = Callable[[Json, Any], Json]

_PLAIN = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[-?\d+\])*$")
_SEGMENT = re.compile(r"([A-Za-z_]\w*)|\[(-?\d+)\]")
_VARIABLE = re.compile(r"^\$([A-Za-z_]\w*)")

PATH_RUNTIME: dict[str, Any] = {**RUNTIME, "CoercionError": CoercionError,
                                "JMESPathError": jmespath_errors.JMESPathError}
"""What the statements ``write_path`` writes refer to; a namespace running them must hold it."""


def write_path(w: SourceWriter, expression: str, scope: str) -> Code:
    """Write statements reading ``expression`` from the variable ``scope``; raises ``ExpressionError``.

    Plain paths become inline lookups (through the scope's bound ``.get`` when ``w.getters`` knows
    it is a dict); ``$name`` reads the context; other expressions are written by
    ``engine.expressions``, and a type error they raise at run time (``length(5)``) becomes a
    ``CoercionError``: the input's fault, not the mapping's.
    """
    variable, rest = split_variable(expression)
    if variable is not None:
        if variable not in CONTEXT_VARIABLES:
            known = ", ".join(f"${name}" for name in CONTEXT_VARIABLES)
            raise ExpressionError(f"unknown variable ${variable} (known: {known})",
                                  expression=expression, column=0)
        base = w.var("x")
        w(f"{base} = ctx.{variable}")
        return write_path(w, rest, base) if rest else Code(base, fresh=True)
    if expression == "@":
        return Code(scope)
    if not _PLAIN.match(expression):
        node = _parse(expression).parsed
        target = w.var("p")
        if not may_raise(node):
            w(f"{target} = {write_expression(w, node, scope)}")
            return Code(target, fresh=True)
        # a function given the wrong type by the payload, e.g. length(5): the input's fault
        w.may_raise()
        with w.trying(("JMESPathError as error",
                       f"raise CoercionError({expression + ': '!r} + str(error)) from None")):
            w(f"{target} = {write_expression(w, node, scope)}")
        return Code(target, fresh=True)
    if scope == "scope":
        return _write_shared(w, path_segments(expression))
    target = w.var("p")
    _write_plain(w, path_segments(expression), scope, target)
    return Code(target, fresh=True)


def _write_plain(w: SourceWriter, segments: list[str | int], scope: str, target: str) -> None:
    getter = w.getters.get(scope)
    if getter is not None and isinstance(segments[0], str):
        w(f"{target} = {getter}({segments[0]!r})")  # the scope is known to be a dict
        segments = segments[1:]
    elif isinstance(segments[0], str):
        _write_get(w, scope, segments[0], target)
        segments = segments[1:]
    else:
        w(f"{target} = {scope}")
        _write_step(w, target, segments[0])
        segments = segments[1:]
    # an absent step ends the walk without raising: missing fields are the common case, and a
    # raised AttributeError costs more than the whole lookup
    with w.nested() as open_if:
        for segment in segments:
            open_if(f"{target} is not None")
            _write_step(w, target, segment)


def _write_shared(w: SourceWriter, segments: list[str | int]) -> Code:
    """A plain path read from a function's own ``scope``, sharing steps already read in it.

    Rules of one function often read paths with a common start: a stream chunk's rules all read
    ``choices[0].delta``. A generated function never rebinds its ``scope``, so each step's value
    is kept in a variable of its own and a later path starts from the longest prefix read before
    (``SourceWriter.recall``). The value's own variable stays the caller's: only the prefixes are kept.
    """
    start, base = 0, "scope"
    for end in range(len(segments), 0, -1):
        known = w.recall(("scope", *segments[:end]))
        if known is not None:
            start, base = end, known
            break
    if start == len(segments):
        return Code(base)
    steps = segments[start:]
    targets = [w.var("p") for _ in steps]
    # the first step from the scope itself is unconditional, so only later ones start as None
    unconditional = base == "scope" and isinstance(steps[0], str)
    pending = targets[1:] if unconditional else targets
    if pending:
        w(" = ".join(pending) + " = None")
    getter = w.getters.get(base)
    with w.nested() as open_if:
        previous = base
        for step, target in zip(steps, targets):
            if isinstance(step, int):
                open_if(_holds_index(previous, step))
                w(f"{target} = {previous}[{step}]")
            elif previous == base == "scope" and getter is not None:
                w(f"{target} = {getter}({step!r})")  # the scope is known to be a dict
            elif previous == "scope":
                _write_get(w, previous, step, target)
            else:
                open_if(f"{previous} is not None")
                with w.trying(("AttributeError", "pass")):  # the target stays None
                    w(f"{target} = {previous}.get({step!r})")
            previous = target
    # the prefixes are kept; the value itself is the caller's to rebind (a modifier's v = f(v))
    for end, target in enumerate(targets[:-1], start + 1):
        w.remember(("scope", *segments[:end]), target)
    return Code(targets[-1], fresh=True)


def _holds_index(variable: str, index: int) -> str:
    """The test that ``variable`` is a list long enough for ``variable[index]`` (JMESPath: else null)."""
    size = index + 1 if index >= 0 else -index
    return f"{variable}.__class__ is list and len({variable}) >= {size}"


def _write_step(w: SourceWriter, target: str, segment: str | int) -> None:
    if isinstance(segment, int):
        w(f"{target} = {target}[{segment}] if {_holds_index(target, segment)} else None")
    else:
        _write_get(w, target, segment, target)


def _write_get(w: SourceWriter, source: str, key: str, target: str) -> None:
    # dict.get on a non-dict raises AttributeError: JMESPath's "a step into the wrong type is null"
    with w.trying(("AttributeError", f"{target} = None")):
        w(f"{target} = {source}.get({key!r})")


def compile_path(expression: str) -> Getter:
    """``expression`` as a function ``(scope, ctx) -> value``. Raises ``ExpressionError``.

    The function holds the statements ``write_path`` writes into a rule, so testing it tests them.
    """
    namespace = dict(PATH_RUNTIME)
    w = SourceWriter(Names(), namespace)
    value = write_path(w, expression, "scope")
    w(f"return {value.expr}")
    function, _ = define_function(namespace, "path", w.lines, filename=f"<path {expression}>")
    return function


def is_plain(expression: str) -> bool:
    """True when ``expression`` compiles to direct lookups rather than a jmespath search."""
    return expression == "@" or bool(_PLAIN.match(expression))


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
