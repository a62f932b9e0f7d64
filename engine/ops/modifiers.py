"""The modifiers: each rewrites the rule's value, in the order the rule writes them.

``apply`` (a named map), ``fn`` + ``args`` (a registered function), ``lookup`` (a table row or
column), ``as`` (check and coerce a type), ``clamp``, ``then`` (a rule run on the value) and
``omit_empty``. A modifier is skipped once the value is None; the compiler writes that test and
the input path an error is reported at, so each modifier writes only its own step on ``target``.

Names (maps, functions, tables, types) are resolved here, at compile time, so a typo fails
``mapper lint`` rather than the first request.
"""

from __future__ import annotations

from typing import Any

from ..errors import ReferenceError_, SpecError, UnknownFunction
from ..paths import WHOLE
from ..source import SourceWriter
from .base import Builder, Modifier, Reader, Spec, Where, map_function, suggest
from .runtime import COERCIONS

_RULE = {"$ref": "#/$defs/rule"}


class Apply(Modifier):
    """``apply: MAP``: run a named map (``maps:``) on the value."""

    key = "apply"
    schema = {"apply": {"$ref": "#/$defs/ruleId"}}

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, target: str, scope: str,
                where: Where) -> None:
        if value not in c.map_names:
            raise where.error(ReferenceError_, f"apply names no map '{value}'"
                                               f"{suggest(value, c.map_names)} (see maps:)")
        w(f"{target} = {map_function(value)}({target}, ctx)")
        w.may_raise()  # as the map's own rules may

    def reads(self, spec: Spec, reader: Reader) -> set[str]:
        # without a source the map runs on the rule's own scope, so what it reads counts here
        return reader.map(spec["apply"]) if reader.scope_unchanged else set()


class Fn(Modifier):
    """``fn: NAME`` + ``args: {name: rule}``: call a registered function; args see the rule's scope."""

    key = "fn"
    schema = {"fn": {"$ref": "#/$defs/ruleId"},
              "args": {"type": "object", "additionalProperties": _RULE}}
    requires = {"args": ["fn"]}

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, target: str, scope: str,
                where: Where) -> None:
        function = c.functions.get(value)
        if function is None:
            raise where.error(UnknownFunction, f"unknown function '{value}'"
                                               f"{suggest(value, c.functions)}; see mapper functions")
        args = spec.get("args") or {}
        unknown = set(args) - set(function.parameters)
        if unknown:
            raise where.error(SpecError, f"function '{value}' takes no argument(s) "
                                         f"{', '.join(sorted(unknown))}")
        call = w.constant(function.call, "FN")
        values = [f"{arg}={c.rule(w, rule, scope, where.inside(args, arg)).expr}"
                  for arg, rule in args.items()]
        w(f"{target} = {call}({', '.join([target, 'ctx', *values])})")
        w.may_raise()  # a function refuses what it cannot convert

    def reads(self, spec: Spec, reader: Reader) -> set[str]:
        found: set[str] = set()
        if isinstance(spec.get("args"), dict):
            for rule in spec["args"].values():
                found |= reader.rule(rule)
        if reader.scope_unchanged:
            found.add(WHOLE)  # a function given the whole scope may read any of it
        return found


class Lookup(Modifier):
    """``lookup: TABLE[.COLUMN]``: the table's row (or one column of it) keyed by the value."""

    key = "lookup"
    schema = {"lookup": {"type": "string",
                         "pattern": "^[a-z_][a-z0-9_]*(\\.[a-z_][a-z0-9_]*)?$"}}

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, target: str, scope: str,
                where: Where) -> None:
        table_name, _, column = str(value).partition(".")
        table = c.tables.get(table_name)
        if table is None:
            raise where.error(ReferenceError_, f"lookup names no table '{table_name}'"
                                               f"{suggest(table_name, c.tables)} (see tables:)")
        row = w.constant(table.row, "ROW")
        w.may_raise()  # a key with no row, in a table without a default
        if not column:
            w(f"{target} = fresh({row}({target}))")
            return
        if column not in table.columns:
            raise where.error(ReferenceError_, f"table '{table_name}' has no column '{column}' "
                                               f"(columns: {', '.join(table.columns)})")
        w(f"{target} = fresh({row}({target})[{table.column_index(column)}])")


# Checks that ``as:`` writes inline: the exact class a value must have, and how to name it.
_EXACT_TYPES = {"string": ("str", "a string"), "boolean": ("bool", "a boolean"),
                "array": ("list", "an array"), "object": ("dict", "an object")}
# For the other coercions, the test that the value still needs the coercion's call.
_ALREADY = {"integer": "{0}.__class__ is not int", "text": "{0}.__class__ is not str",
            "json_string": "{0}.__class__ is not str", "list": "{0}.__class__ is not list",
            "number": "{0}.__class__ is not int and {0}.__class__ is not float"}


class As(Modifier):
    """``as: TYPE``: check the value's type, or coerce it (``text``, ``json_string``, ``json``, ``list``)."""

    key = "as"
    schema = {"as": {"enum": list(COERCIONS)}}

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, target: str, scope: str,
                where: Where) -> None:
        if value not in COERCIONS:
            raise where.error(SpecError, f"unknown type '{value}' for as: "
                                         f"(known: {', '.join(COERCIONS)})")
        w.may_raise()  # a value of another type
        if value in _EXACT_TYPES:
            kind, described = _EXACT_TYPES[value]
            with w.block(f"if {target}.__class__ is not {kind}:"):
                w(f"raise expect({described!r}, {target})")
            return
        coerce = w.constant(COERCIONS[value], "AS")
        already = _ALREADY.get(value)
        if already:  # the value usually has the type already: call the coercion only when not
            w(f"if {already.format(target)}: {target} = {coerce}({target})")
        else:
            w(f"{target} = {coerce}({target})")


class Clamp(Modifier):
    """``clamp: [low, high]``: bound a number."""

    key = "clamp"
    schema = {"clamp": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}}

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, target: str, scope: str,
                where: Where) -> None:
        low, high = value
        w(f"{target} = min(max({target}, {low!r}), {high!r})")


class Then(Modifier):
    """``then: rule``: a rule whose scope is the value so far."""

    key = "then"
    schema = {"then": _RULE}
    on_list = True

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, target: str, scope: str,
                where: Where) -> None:
        w(f"{target} = {c.rule(w, value, target, where).expr}")

    def reads(self, spec: Spec, reader: Reader) -> set[str]:
        return reader.rule(spec["then"]) if reader.scope_unchanged else set()


class OmitEmpty(Modifier):
    """``omit_empty: true``: an empty string, array or object becomes no value."""

    key = "omit_empty"
    schema = {"omit_empty": {"type": "boolean"}}
    on_list = True

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, target: str, scope: str,
                where: Where) -> None:
        if value:
            w(f"if not {target} and {target}.__class__ in CONTAINERS: {target} = None")
