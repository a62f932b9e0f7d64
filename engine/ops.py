"""The op vocabulary of the mapping language, and the small runtime the compiled rules call.

A rule is a bare string (a JMESPath path), a literal (number, boolean, null, list), or an object whose
keys say what language each part is in. Evaluation order inside one object:

1. ``when`` (JMESPath, or a list that must all hold): when falsy, the rule gives no value and
   nothing else runs; ``unless``: the same when truthy.
2. one **source**: ``from`` (JMESPath) | ``value`` (literal) | ``template`` (Jinja2, strings only) |
   ``emit`` (build an object) | ``each`` (map an array) | ``switch``/``cases``/``otherwise`` |
   ``concat`` (join lists) | ``first`` (first rule with a value) | ``id`` (mint an id) | ``now``
   (the clock) | ``reject`` (refuse, 400) | ``drop`` (no value, on purpose, with a reason).
   Without a source the value is the scope itself.
3. **modifiers**, in the order they are written: ``apply`` (a named map) | ``fn`` + ``args`` (a
   registered function) | ``lookup`` (a table) | ``as`` (check and coerce a type) | ``clamp`` |
   ``then`` (a rule run on the value) | ``omit_empty``. A modifier is skipped once the value is null.
4. ``required`` (error when there is still no value), then ``default`` (a literal used instead).

``None`` means "no value": ``emit`` leaves the field out, ``each`` skips the element. A field whose
rule declares ``default`` (even ``default: null``) is always written.

``engine.codegen`` turns rules into Python source that calls the helpers below; this module holds
what both the compiler and the compiled code need: the vocabulary, locations (``Where``), tables,
JMESPath truthiness, JSON copies and the ``as:`` coercions.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import orjson

from .errors import CoercionError, ConversionError, SpecError
from .expressions import jp_truthy
from .types import Json

SOURCES = ("from", "value", "template", "emit", "each", "switch", "concat", "first", "id", "now",
           "reject", "drop")
MODIFIERS = ("apply", "fn", "lookup", "as", "clamp", "then", "omit_empty")
AUXILIARY = ("when", "unless", "default", "required", "cases", "otherwise", "args", "flatten")
# Keys of an ``each`` rule that act on the resulting list rather than on each element.
EACH_LIST_KEYS = ("each", "flatten", "when", "unless", "default", "required", "then", "omit_empty")


@dataclass(frozen=True, slots=True)
class Where:
    """Where a rule was written, for spec errors: file, line and rule id."""

    file: str | None
    line: int | None
    rule: str

    def inside(self, spec: Any, key: Any = None) -> "Where":
        """The location of ``spec`` (or of its ``key``) when the loader recorded one."""
        lines = getattr(spec, "key_lines", None)
        if key is not None and lines and key in lines:
            file, line = lines[key]
            return Where(file, line, self.rule)
        line = getattr(spec, "line", None)
        if line is not None:
            return Where(getattr(spec, "file", self.file), line, self.rule)
        return self

    def error(self, kind: type[SpecError], message: str, **extra: Any) -> SpecError:
        return kind(message, file=self.file, line=self.line, rule=self.rule, **extra)


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


def suggest(name: Any, known: Iterable[str]) -> str:
    """`` (did you mean x?)`` for a near miss, else nothing."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def plain(value: Json) -> Json:
    """Turn loader containers (which remember lines) into plain dicts, lists and tuples."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(plain(item) for item in value)
    return value


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


def located(error: SpecError, where: Where) -> SpecError:
    """Fill in the file, line and rule id of an error raised below ``where`` that lacks them."""
    error.file = error.file or where.file
    error.line = error.line or where.line
    error.rule = error.rule or where.rule
    return error


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
