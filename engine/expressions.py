"""JMESPath expressions compiled to Python closures, once, instead of interpreted per call.

jmespath's ``ParsedResult.search`` walks the AST with a visitor on every call, about 1 µs per node,
which made JMESPath the largest cost of a conversion. Here the AST from ``jmespath.compile`` is
turned into nested closures when the mapping compiles: a comparison or an ``||`` then costs about
what the same Python expression costs.

The semantics are jmespath-python's, checked against ``jmespath.search`` by a differential property
test (``tests/test_expressions.py``): ``null`` for a step into the wrong type, JMESPath truthiness
(``0`` is true, empty containers are false), ``==`` that does not equate ``1`` and ``true``, ordering
between numbers or between strings, projections that drop nulls. One difference on purpose: ordering
a number against a string gives ``null`` where jmespath raises a bare ``TypeError``. A node kind or function not handled here is evaluated
by jmespath's own interpreter for that subtree, so coverage grows without risk.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath.visitor import TreeInterpreter

from .types import Json

Evaluate = Callable[[Json], Json]

_OPTIONS = jmespath.Options(dict_cls=dict)
_CONTAINERS = (list, dict, str)


def compile_ast(node: dict[str, Any]) -> Evaluate:
    """A closure ``value -> result`` for a parsed JMESPath AST node."""
    compiler = _NODES.get(node["type"])
    if compiler is None:
        return _interpreted(node)
    return compiler(node)


def _interpreted(node: dict[str, Any]) -> Evaluate:
    interpreter = TreeInterpreter(_OPTIONS)
    visit = interpreter.visit
    return lambda value: visit(node, value)


def _truthy(value: Json) -> bool:
    if value is None or value is False:
        return False
    if value.__class__ in _CONTAINERS:
        return len(value) > 0
    return True


def _is_number(value: Json) -> bool:
    return value.__class__ in (int, float)


# -- nodes ------------------------------------------------------------------------------------


def _field(node: dict[str, Any]) -> Evaluate:
    key = node["value"]

    def field(value: Json) -> Json:
        try:
            return value.get(key)
        except AttributeError:
            return None

    return field


def _subexpression(node: dict[str, Any]) -> Evaluate:
    steps = tuple(compile_ast(child) for child in node["children"])

    def subexpression(value: Json) -> Json:
        for step in steps:
            value = step(value)
            if value is None:
                return None
        return value

    return subexpression


def _index_expression(node: dict[str, Any]) -> Evaluate:
    left, right = (compile_ast(child) for child in node["children"])
    return lambda value: right(left(value))


def _index(node: dict[str, Any]) -> Evaluate:
    position = node["value"]

    def index(value: Json) -> Json:
        if value.__class__ is not list:
            return None
        try:
            return value[position]
        except IndexError:
            return None

    return index


def _literal(node: dict[str, Any]) -> Evaluate:
    constant = node["value"]
    if isinstance(constant, (list, dict)):
        return _interpreted(node)  # the interpreter hands out the literal itself, as here would
    return lambda value: constant


def _current(node: dict[str, Any]) -> Evaluate:
    return lambda value: value


def _or(node: dict[str, Any]) -> Evaluate:
    left, right = (compile_ast(child) for child in node["children"])

    def or_expression(value: Json) -> Json:
        result = left(value)
        return result if _truthy(result) else right(value)

    return or_expression


def _and(node: dict[str, Any]) -> Evaluate:
    left, right = (compile_ast(child) for child in node["children"])

    def and_expression(value: Json) -> Json:
        result = left(value)
        return right(value) if _truthy(result) else result

    return and_expression


def _not(node: dict[str, Any]) -> Evaluate:
    (child,) = (compile_ast(c) for c in node["children"])
    return lambda value: not _truthy(child(value))


def _equal(left: Json, right: Json) -> bool:
    # JMESPath: true is not 1 and false is not 0, though Python says they are
    if (left.__class__ is bool) != (right.__class__ is bool):
        return False
    return left == right


def _comparator(node: dict[str, Any]) -> Evaluate:
    left, right = (compile_ast(child) for child in node["children"])
    operator = node["value"]
    if operator == "eq":
        return lambda value: _equal(left(value), right(value))
    if operator == "ne":
        return lambda value: not _equal(left(value), right(value))
    order = {"lt": lambda a, b: a < b, "lte": lambda a, b: a <= b,
             "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b}.get(operator)
    if order is None:
        return _interpreted(node)

    def ordered(value: Json) -> Json:
        a, b = left(value), right(value)
        # jmespath orders numbers, and strings too (its own extension); anything else is null.
        # A number against a string makes jmespath raise TypeError; here it is null as well.
        if _is_number(a) and _is_number(b) or a.__class__ is str and b.__class__ is str:
            return order(a, b)
        return None

    return ordered


def _pipe(node: dict[str, Any]) -> Evaluate:
    left, right = (compile_ast(child) for child in node["children"])
    return lambda value: right(left(value))


def _projection(node: dict[str, Any]) -> Evaluate:
    left, right = (compile_ast(child) for child in node["children"])

    def projection(value: Json) -> Json:
        base = left(value)
        if base.__class__ is not list:
            return None
        out = []
        for element in base:
            result = right(element)
            if result is not None:
                out.append(result)
        return out

    return projection


def _filter_projection(node: dict[str, Any]) -> Evaluate:
    left, right, condition = (compile_ast(child) for child in node["children"])

    def filter_projection(value: Json) -> Json:
        base = left(value)
        if base.__class__ is not list:
            return None
        out = []
        for element in base:
            if _truthy(condition(element)):
                result = right(element)
                if result is not None:
                    out.append(result)
        return out

    return filter_projection


def _flatten(node: dict[str, Any]) -> Evaluate:
    (child,) = (compile_ast(c) for c in node["children"])

    def flatten(value: Json) -> Json:
        base = child(value)
        if base.__class__ is not list:
            return None
        out = []
        for element in base:
            if element.__class__ is list:
                out.extend(element)
            else:
                out.append(element)
        return out

    return flatten


def _multi_select_list(node: dict[str, Any]) -> Evaluate:
    children = tuple(compile_ast(child) for child in node["children"])
    return lambda value: None if value is None else [child(value) for child in children]


def _multi_select_dict(node: dict[str, Any]) -> Evaluate:
    pairs = tuple((pair["value"], compile_ast(pair["children"][0])) for pair in node["children"])
    return lambda value: None if value is None else {key: child(value) for key, child in pairs}


# -- functions --------------------------------------------------------------------------------


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


def _function_type(value: Json) -> Json:
    return _type_name(value)


def _function_length(value: Json) -> Json:
    if value.__class__ not in _CONTAINERS:
        raise _type_error("length", value, "string, array, object")
    return len(value)


def _function_contains(subject: Json, search: Json) -> Json:
    if subject.__class__ is str:
        if search.__class__ is not str:
            return False
        return search in subject
    if subject.__class__ is list:
        return any(_equal(element, search) for element in subject)
    raise _type_error("contains", subject, "array, string")


def _function_join(glue: Json, items: Json) -> Json:
    if glue.__class__ is not str:
        raise _type_error("join", glue, "string")
    if items.__class__ is not list or any(item.__class__ is not str for item in items):
        raise _type_error("join", items, "array-string")
    return glue.join(items)


def _function_floor(value: Json) -> Json:
    if value.__class__ is bool or not _is_number(value):
        raise _type_error("floor", value, "number")
    return math.floor(value)


def _function_not_null(*values: Json) -> Json:
    for value in values:
        if value is not None:
            return value
    return None


def _type_error(name: str, value: Json, expected: str) -> jmespath_errors.JMESPathTypeError:
    return jmespath_errors.JMESPathTypeError(name, value, _type_name(value), [expected])


_FUNCTIONS: dict[str, tuple[Callable[..., Json], int | None]] = {
    # name: (implementation, number of arguments or None for variadic)
    "type": (_function_type, 1),
    "length": (_function_length, 1),
    "contains": (_function_contains, 2),
    "join": (_function_join, 2),
    "floor": (_function_floor, 1),
    "not_null": (_function_not_null, None),
}


def _function(node: dict[str, Any]) -> Evaluate:
    known = _FUNCTIONS.get(node["value"])
    if known is None or (known[1] is not None and known[1] != len(node["children"])):
        return _interpreted(node)  # other functions, and arity errors, as jmespath reports them
    implementation = known[0]
    arguments = tuple(compile_ast(child) for child in node["children"])
    if len(arguments) == 1:
        (only,) = arguments
        return lambda value: implementation(only(value))
    if len(arguments) == 2:
        first, second = arguments
        return lambda value: implementation(first(value), second(value))
    return lambda value: implementation(*(argument(value) for argument in arguments))


_NODES: dict[str, Callable[[dict[str, Any]], Evaluate]] = {
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
