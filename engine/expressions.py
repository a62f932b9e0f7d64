"""JMESPath expressions compiled to Python source, once, instead of interpreted on every call.

jmespath's ``ParsedResult.search`` walks the AST with a visitor on every call, about 1 µs per node,
which made JMESPath the largest cost of a conversion. Here the AST that ``jmespath.compile`` parses
is written out as Python statements: ``type || 'message'`` becomes a ``.get``, a truth test and an
assignment. ``engine.codegen`` writes these statements inline into the rule functions it generates;
``compile_ast`` wraps them into a function of their own for standalone use.

The semantics are jmespath-python's, checked against ``jmespath.search`` by a differential property
test (``tests/test_expressions.py``): ``null`` for a step into the wrong type, JMESPath truthiness
(``0`` is true, empty containers are false), ``==`` that does not equate ``1`` and ``true``, ordering
between numbers or between strings, projections that drop nulls. One difference on purpose:
ordering a number against a string gives ``null`` where jmespath raises a bare ``TypeError``. A node
kind or function not written here is evaluated by jmespath's own interpreter for that subtree.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath.visitor import TreeInterpreter

from .source import Names, SourceWriter, define_function
from .types import Json

Evaluate = Callable[[Json], Json]

_OPTIONS = jmespath.Options(dict_cls=dict)
_CONTAINERS = (list, dict, str)
_ORDERINGS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


# -- the runtime the generated code calls -----------------------------------------------------


def jp_truthy(value: Json) -> bool:
    """JMESPath truth: false, null and empty strings, arrays and objects are false; 0 is true."""
    if value is None or value is False:
        return False
    if value.__class__ in _CONTAINERS:
        return len(value) > 0
    return True


def jp_equal(left: Json, right: Json) -> bool:
    # JMESPath: true is not 1 and false is not 0, though Python says they are
    if (left.__class__ is bool) != (right.__class__ is bool):
        return False
    return left == right


def jp_orderable(left: Json, right: Json) -> bool:
    """jmespath orders numbers, and strings (its own extension); other pairs give null."""
    if left.__class__ in (int, float) and right.__class__ in (int, float):
        return True
    return left.__class__ is str and right.__class__ is str


def _type_name(value: Json) -> str:
    if value is None:
        return "null"
    if value.__class__ is bool:
        return "boolean"
    if value.__class__ in (int, float):
        return "number"
    if value.__class__ is str:
        return "string"
    if value.__class__ is list:
        return "array"
    if value.__class__ is dict:
        return "object"
    return "unknown"


def _type_error(name: str, value: Json, expected: str) -> jmespath_errors.JMESPathTypeError:
    return jmespath_errors.JMESPathTypeError(name, value, _type_name(value), [expected])


def _function_length(value: Json) -> Json:
    if value.__class__ not in _CONTAINERS:
        raise _type_error("length", value, "string, array, object")
    return len(value)


def _function_contains(subject: Json, search: Json) -> Json:
    if subject.__class__ is str:
        return search.__class__ is str and search in subject
    if subject.__class__ is list:
        return any(jp_equal(element, search) for element in subject)
    raise _type_error("contains", subject, "array, string")


def _function_join(glue: Json, items: Json) -> Json:
    if glue.__class__ is not str:
        raise _type_error("join", glue, "string")
    if items.__class__ is not list or any(item.__class__ is not str for item in items):
        raise _type_error("join", items, "array-string")
    return glue.join(items)


def _function_floor(value: Json) -> Json:
    if value.__class__ not in (int, float):
        raise _type_error("floor", value, "number")
    return math.floor(value)


def _function_not_null(*values: Json) -> Json:
    for value in values:
        if value is not None:
            return value
    return None


# name: (implementation, number of arguments or None for any, whether it can raise)
_FUNCTIONS: dict[str, tuple[Callable[..., Json], int | None, bool]] = {
    "type": (_type_name, 1, False),
    "length": (_function_length, 1, True),
    "contains": (_function_contains, 2, True),
    "join": (_function_join, 2, True),
    "floor": (_function_floor, 1, True),
    "not_null": (_function_not_null, None, False),
}

RUNTIME = {"jp_truthy": jp_truthy, "jp_equal": jp_equal, "jp_orderable": jp_orderable,
           "CONTAINERS": _CONTAINERS}


# -- writing an expression ----------------------------------------------------------------------


def truth_test(name: str) -> str:
    """JMESPath truthiness of the variable ``name``, as an inline Python expression.

    The same test as ``jp_truthy``, without the call; the namespace must hold ``CONTAINERS``.
    """
    return (f"({name} is not None and {name} is not False and "
            f"({name}.__class__ not in CONTAINERS or len({name}) > 0))")


def may_raise(node: dict[str, Any]) -> bool:
    """Whether evaluating ``node`` can raise a JMESPath type error (a function given a bad type)."""
    if node["type"] == "function_expression":
        known = _FUNCTIONS.get(node["value"])
        if known is None or known[2] or (known[1] is not None and known[1] != len(node["children"])):
            return True
    elif node["type"] not in _WRITERS:
        return True
    return any(may_raise(child) for child in node.get("children", ()) if isinstance(child, dict))


def write_expression(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    """Write statements evaluating ``node`` against the variable ``scope``; return the result's name.

    ``w.namespace`` must hold ``RUNTIME``. JMESPath type errors propagate as jmespath raises them.
    """
    writer = _WRITERS.get(node["type"])
    if writer is None:
        return _interpreted(w, node, scope)
    return writer(w, node, scope)


def compile_ast(node: dict[str, Any]) -> Evaluate:
    """A function ``value -> result`` for a parsed JMESPath AST node (jmespath errors propagate)."""
    namespace: dict[str, Any] = dict(RUNTIME)
    w = SourceWriter(Names(), namespace)
    result = write_expression(w, node, "scope")
    function, _ = define_function(namespace, "expression", w.lines + [f"    return {result}"],
                                  arguments="scope", filename="<jmespath>")
    return function


def _interpreted(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    visit = TreeInterpreter(_OPTIONS).visit
    evaluate = w.constant(lambda value: visit(node, value), "JMESPATH")
    target = w.var("j")
    w(f"{target} = {evaluate}({scope})")
    return target


def _field(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    target = w.var("j")
    with w.trying(("AttributeError", f"{target} = None")):
        w(f"{target} = {scope}.get({node['value']!r})")
    return target


def _subexpression(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    target = w.var("j")
    w(f"{target} = None")
    with w.nested() as open_if:
        current = scope
        children = node["children"]
        for number, child in enumerate(children):
            current = write_expression(w, child, current)
            if number < len(children) - 1:
                open_if(f"{current} is not None")
        w(f"{target} = {current}")
    return target


def _index_expression(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    left, right = node["children"]
    return write_expression(w, right, write_expression(w, left, scope))


def _index(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    position = node["value"]
    size = position + 1 if position >= 0 else -position
    target = w.var("j")
    w(f"{target} = {scope}[{position}] if {scope}.__class__ is list and len({scope}) >= {size} else None")
    return target


def _literal(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    value = node["value"]
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    return w.constant(value, "LIT")  # handed out as jmespath hands out its literals


def _current(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    return scope


def _or(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    left, right = node["children"]
    target = w.var("j")
    w(f"{target} = {write_expression(w, left, scope)}")
    with w.block(f"if not {truth_test(target)}:"):
        w(f"{target} = {write_expression(w, right, scope)}")
    return target


def _and(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    left, right = node["children"]
    target = w.var("j")
    w(f"{target} = {write_expression(w, left, scope)}")
    with w.block(f"if {truth_test(target)}:"):
        w(f"{target} = {write_expression(w, right, scope)}")
    return target


def _not(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    target = w.var("j")
    value = write_expression(w, node["children"][0], scope)
    w(f"{target} = not {truth_test(value)}")
    return target


def _comparator(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    operator = node["value"]
    if operator not in ("eq", "ne") and operator not in _ORDERINGS:
        return _interpreted(w, node, scope)
    left = write_expression(w, node["children"][0], scope)
    right = write_expression(w, node["children"][1], scope)
    target = w.var("j")
    if operator == "eq":
        w(f"{target} = jp_equal({left}, {right})")
    elif operator == "ne":
        w(f"{target} = not jp_equal({left}, {right})")
    else:
        w(f"{target} = ({left} {_ORDERINGS[operator]} {right}) if jp_orderable({left}, {right}) else None")
    return target


def _pipe(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    left, right = node["children"]
    return write_expression(w, right, write_expression(w, left, scope))


def _projection(w: SourceWriter, node: dict[str, Any], scope: str, condition: Any = None) -> str:
    left, right = node["children"][:2]
    base = write_expression(w, left, scope)
    target, element = w.var("j"), w.var("e")
    w(f"{target} = None")
    with w.block(f"if {base}.__class__ is list:"):
        w(f"{target} = []")
        with w.block(f"for {element} in {base}:"):
            with w.nested() as open_if:
                if condition is not None:
                    open_if(truth_test(write_expression(w, condition, element)))
                value = write_expression(w, right, element)
                open_if(f"{value} is not None")
                w(f"{target}.append({value})")
    return target


def _filter_projection(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    return _projection(w, node, scope, condition=node["children"][2])


def _flatten(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    base = write_expression(w, node["children"][0], scope)
    target, element = w.var("j"), w.var("e")
    w(f"{target} = None")
    with w.block(f"if {base}.__class__ is list:"):
        w(f"{target} = []")
        with w.block(f"for {element} in {base}:"):
            with w.block(f"if {element}.__class__ is list:"):
                w(f"{target}.extend({element})")
            with w.block("else:"):
                w(f"{target}.append({element})")
    return target


def _multi_select_list(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    target = w.var("j")
    w(f"{target} = None")
    with w.block(f"if {scope} is not None:"):
        values = [write_expression(w, child, scope) for child in node["children"]]
        w(f"{target} = [{', '.join(values)}]")
    return target


def _multi_select_dict(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    target = w.var("j")
    w(f"{target} = None")
    with w.block(f"if {scope} is not None:"):
        pairs = [f"{pair['value']!r}: {write_expression(w, pair['children'][0], scope)}"
                 for pair in node["children"]]
        w(f"{target} = {{{', '.join(pairs)}}}")
    return target


def _function(w: SourceWriter, node: dict[str, Any], scope: str) -> str:
    known = _FUNCTIONS.get(node["value"])
    if known is None or (known[1] is not None and known[1] != len(node["children"])):
        return _interpreted(w, node, scope)  # other functions, and arity errors, as jmespath has them
    implementation = w.constant(known[0], "JPF")
    arguments = [write_expression(w, child, scope) for child in node["children"]]
    target = w.var("j")
    w(f"{target} = {implementation}({', '.join(arguments)})")
    return target


_WRITERS: dict[str, Callable[[SourceWriter, dict[str, Any], str], str]] = {
    "field": _field,
    "subexpression": _subexpression,
    "index_expression": _index_expression,
    "index": _index,
    "literal": _literal,
    "current": _current,
    "identity": _current,
    "or_expression": _or,
    "and_expression": _and,
    "not_expression": _not,
    "comparator": _comparator,
    "pipe": _pipe,
    "projection": _projection,
    "filter_projection": _filter_projection,
    "flatten": _flatten,
    "multi_select_list": _multi_select_list,
    "multi_select_dict": _multi_select_dict,
    "function_expression": _function,
}
