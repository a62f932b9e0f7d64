"""What the generated code calls at run time: tables, JMESPath truth, JSON copies, ``as:`` coercions.

The compiler (``engine.codegen`` and the ops in ``engine.ops``) writes what it can inline; what it
cannot is a name in the generated functions' namespace, bound to one of these (``RUNTIME``). They
are plain functions over JSON values, with no knowledge of specs or files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import orjson

from ..errors import CoercionError, ConversionError, NoCase, RejectedField
from ..expressions import jp_truthy
from ..types import Json


@dataclass(frozen=True, slots=True)
class Table:
    """A compiled ``tables:`` entry: rows keyed by string, optional named columns, default row."""

    name: str
    rows: dict[str, Json]
    columns: tuple[str, ...]
    default: str | None

    def row(self, key: Json) -> Json:
        found = self.rows.get(case_key(key), _ABSENT)
        if found is _ABSENT:
            if self.default is None:
                raise ConversionError(f"no row {key!r} in table '{self.name}'")
            found = self.rows[self.default]
        return found

    def column_index(self, column: str) -> int:
        return self.columns.index(column)


_ABSENT = object()


def copy_json(value: Json) -> Json:
    """A deep copy of plain JSON data; much cheaper than ``copy.deepcopy``, which handles anything."""
    kind = value.__class__
    if kind is dict:
        return {key: copy_json(item) for key, item in value.items()}
    if kind is list:
        return [copy_json(item) for item in value]
    return value


def fresh(value: Json) -> Json:
    """A table cell handed out: containers are copied so that no output shares them."""
    kind = value.__class__
    if kind is tuple:  # a whole row of a table with columns
        return [copy_json(item) for item in value]
    return copy_json(value) if kind is dict or kind is list else value


CONTAINERS = (list, dict, str)


truthy = jp_truthy
"""JMESPath truth: false, null, and empty strings, arrays and objects are false; 0 is true."""


def case_key(key: Json) -> str:
    """A switch or table key as text: ``None`` is ``"null"``, booleans ``"true"``/``"false"``."""
    if key.__class__ is str:
        return key
    if key is None:
        return "null"
    if key is True:
        return "true"
    if key is False:
        return "false"
    return str(key)


# -- coercions (as:) --------------------------------------------------------------------------


def json_type(value: Json) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def expect(name: str, value: Json) -> CoercionError:
    return CoercionError(f"expected {name}, got {json_type(value)}")


# orjson reads an integer literal past 64 bits as a float (1e+29) and cannot write the int that
# float would become, so an integer is one a JSON tool can carry, or it is refused here
_INTEGER_LIMIT = 2.0 ** 63


def _as_integer(value: Json) -> int:
    if value.__class__ is int:
        return value
    if value.__class__ is float and value.is_integer():
        if abs(value) >= _INTEGER_LIMIT:
            raise CoercionError(f"expected an integer within 64 bits, got {value:g}",
                                api_code="integer_above_max_value")
        return int(value)
    raise expect("an integer", value)


def _as_number(value: Json) -> Json:
    if value.__class__ in (int, float):
        return value
    raise expect("a number", value)


def _exactly(kind: type, name: str) -> Callable[[Json], Json]:
    """A check that lets values of exactly ``kind`` through (``bool`` is not an ``int`` here)."""

    def check(value: Json) -> Json:
        if value.__class__ is kind:
            return value
        raise expect(name, value)

    return check


def _as_text(value: Json) -> str:
    """Any value as text: strings as they are, numbers printed, objects and arrays as JSON."""
    if value.__class__ is str:
        return value
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_json_string(value: Json) -> str:
    """A string as it is; any other value serialised to compact JSON (tool arguments, outputs)."""
    if value.__class__ is str:
        return value
    return orjson.dumps(value).decode()


def _as_json(value: Json) -> Json:
    if value.__class__ is not str:
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise CoercionError(f"expected a JSON document in the string: {error}") from None


def _as_list(value: Json) -> list:
    """Wrap a single value in a list; a list stays as it is."""
    return value if value.__class__ is list else [value]


COERCIONS: dict[str, Callable[[Json], Json]] = {
    "integer": _as_integer,
    "number": _as_number,
    "boolean": _exactly(bool, "a boolean"),
    "string": _exactly(str, "a string"),
    "text": _as_text,
    "json_string": _as_json_string,
    "json": _as_json,
    "array": _exactly(list, "an array"),
    "object": _exactly(dict, "an object"),
    "list": _as_list,
}


RUNTIME: dict[str, Any] = {
    "truthy": truthy, "case_key": case_key, "copy_json": copy_json, "fresh": fresh,
    "expect": expect, "json_type": json_type, "CONTAINERS": CONTAINERS,
    "ConversionError": ConversionError, "CoercionError": CoercionError,
    "RejectedField": RejectedField, "NoCase": NoCase,
}
"""The helpers above, and the errors the generated code raises, by the names it calls them."""
