"""The op vocabulary: each rule in a mapping compiles, once, into a closure ``(scope, ctx) -> value``.

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

Compilation specialises the common shapes (a bare path, a literal) so that they cost no more than a
hand-written lookup; everything else is a small closure with no per-call dispatch on the spec.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import orjson

from .context import Context
from .errors import (CoercionError, ConversionError, NoCase, ReferenceError_, RejectedField, SpecError,
                     UnknownFunction)
from .functions.registry import REGISTRY, Function
from .paths import compile_path, input_path
from .templates import compile_template
from .types import Json, Rule

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
        found = self.rows.get(_case_key(key), _ABSENT)
        if found is _ABSENT:
            if self.default is None:
                raise ConversionError(f"no row {key!r} in table '{self.name}'")
            found = self.rows[self.default]
        return found

    def column_index(self, column: str) -> int:
        return self.columns.index(column)


_ABSENT = object()


class RuleCompiler:
    """Compiles rule specs against one mapping's functions, tables and named maps."""

    def __init__(self, *, tables: dict[str, Table], map_names: Iterable[str],
                 functions: dict[str, Function] | None = None) -> None:
        self.tables = tables
        self.functions = REGISTRY if functions is None else functions
        # Maps may refer to each other (and to themselves), so ``apply`` goes through a cell that is
        # filled once every map has compiled.
        self.map_cells: dict[str, list[Rule | None]] = {name: [None] for name in map_names}

    def define_map(self, name: str, rule: Rule) -> None:
        self.map_cells[name][0] = rule

    # -- entry point ----------------------------------------------------------------------------

    def compile(self, spec: Any, where: Where) -> Rule:
        """Compile one rule. Raises ``SpecError`` located at ``where`` (or deeper)."""
        if isinstance(spec, str):
            return self._path(spec, where)
        if isinstance(spec, dict):
            return self._object_rule(spec, where.inside(spec))
        return _literal(spec)

    def always_written(self, spec: Any) -> bool:
        """A field is written even when null if its rule is a literal or declares ``default``."""
        if isinstance(spec, dict):
            return "default" in spec
        return not isinstance(spec, str)

    # -- objects ----------------------------------------------------------------------------------

    def _object_rule(self, spec: dict[str, Any], where: Where) -> Rule:
        if "each" in spec:
            return self._each(spec, where)
        sources = [key for key in spec if key in SOURCES]
        if len(sources) > 1:
            raise where.error(SpecError, f"a rule has one source, found {', '.join(sources)}")
        source = self._source(sources[0], spec, where) if sources else _identity
        modifiers = [self._modifier(key, spec, where) for key in spec if key in MODIFIERS]
        return _assemble(source, modifiers, spec, self.compile_guard(spec, where),
                         path=input_path(spec.get("from")) if sources == ["from"] else ())

    def compile_guard(self, spec: dict[str, Any], where: Where) -> Rule | None:
        """``when`` and ``unless`` as one check that is true when the rule should run.

        Each takes one JMESPath condition or a list: every ``when`` must hold and no ``unless``.
        (A list is how a ``$request`` condition and a scope condition combine, since a ``$`` path
        reads the context for its whole expression.)
        """
        when = self._conditions(spec, "when", where)
        unless = self._conditions(spec, "unless", where)
        if not when and not unless:
            return None
        if len(when) == 1 and not unless:
            return when[0]

        def guard(scope: Json, ctx: Context) -> bool:
            for condition in when:
                if not truthy(condition(scope, ctx)):
                    return False
            for condition in unless:
                if truthy(condition(scope, ctx)):
                    return False
            return True

        return guard

    def _conditions(self, spec: dict[str, Any], key: str, where: Where) -> tuple[Rule, ...]:
        if key not in spec:
            return ()
        expressions = spec[key] if isinstance(spec[key], list) else [spec[key]]
        return tuple(self._path(expression, where.inside(spec, key)) for expression in expressions)

    def _source(self, key: str, spec: dict[str, Any], where: Where) -> Rule:
        return getattr(self, f"_source_{key}")(spec[key], spec, where.inside(spec, key))

    def _source_from(self, expression: Any, spec: dict, where: Where) -> Rule:
        return self._path(expression, where)

    def _source_value(self, literal: Any, spec: dict, where: Where) -> Rule:
        return _literal(literal)

    def _source_template(self, source: Any, spec: dict, where: Where) -> Rule:
        if not isinstance(source, str):
            raise where.error(SpecError, "template must be a string")
        try:
            return compile_template(source)
        except SpecError as error:
            raise _located(error, where) from None

    def _source_emit(self, fields: Any, spec: dict, where: Where) -> Rule:
        if not isinstance(fields, dict):
            raise where.error(SpecError, "emit takes an object of field rules")
        return self.compile_fields(fields, where)

    def compile_fields(self, fields: dict[str, Any], where: Where) -> Rule:
        """An object built field by field; a field with no value is left out."""
        compiled = tuple(
            (name, self.compile(rule, where.inside(fields, name)), self.always_written(rule))
            for name, rule in fields.items()
        )

        def emit(scope: Json, ctx: Context) -> Json:
            out = {}
            for name, rule, always in compiled:
                value = rule(scope, ctx)
                if value is not None or always:
                    out[name] = value
            return out

        return emit

    def _source_switch(self, expression: Any, spec: dict, where: Where) -> Rule:
        key_of = self._path(expression, where)
        cases_spec = spec.get("cases") or {}
        cases = {str(key): self.compile(rule, where.inside(cases_spec, key))
                 for key, rule in cases_spec.items()}
        otherwise = (self.compile(spec["otherwise"], where.inside(spec, "otherwise"))
                     if "otherwise" in spec else None)
        known = ", ".join(cases)

        def switch(scope: Json, ctx: Context) -> Json:
            key = key_of(scope, ctx)
            if key.__class__ is not str:
                key = _case_key(key)
            case = cases.get(key, otherwise)
            if case is None:
                raise NoCase(f"unexpected value {key!r} (expected one of: {known})")
            return case(scope, ctx)

        return switch

    def _source_concat(self, parts_spec: Any, spec: dict, where: Where) -> Rule:
        if not isinstance(parts_spec, dict):
            raise where.error(SpecError, "concat takes an object of rules keyed by id")
        parts = tuple(self.compile(rule, where.inside(parts_spec, key))
                      for key, rule in parts_spec.items())

        def concat(scope: Json, ctx: Context) -> Json:
            out: list[Json] = []
            for part in parts:
                value = part(scope, ctx)
                if value.__class__ is list:
                    out.extend(value)
                elif value is not None:
                    out.append(value)
            return out

        return concat

    def _source_first(self, rules_spec: Any, spec: dict, where: Where) -> Rule:
        if not isinstance(rules_spec, list) or not rules_spec:
            raise where.error(SpecError, "first takes a non-empty list of rules")
        rules = tuple(self.compile(rule, where) for rule in rules_spec)

        def first(scope: Json, ctx: Context) -> Json:
            for rule in rules:
                value = rule(scope, ctx)
                if value is not None:
                    return value
            return None

        return first

    def _source_id(self, prefix: Any, spec: dict, where: Where) -> Rule:
        if not isinstance(prefix, str) or not prefix:
            raise where.error(SpecError, "id takes a prefix such as resp, msg or chatcmpl-")
        return lambda scope, ctx: ctx.new_id(prefix)

    def _source_now(self, unit: Any, spec: dict, where: Where) -> Rule:
        return lambda scope, ctx: ctx.now()

    def _source_reject(self, message: Any, spec: dict, where: Where) -> Rule:
        render = self._source_template(message, spec, where)

        def reject(scope: Json, ctx: Context) -> Json:
            raise RejectedField(render(scope, ctx))

        return reject

    def _source_drop(self, reason: Any, spec: dict, where: Where) -> Rule:
        if not isinstance(reason, str) or not reason.strip():
            raise where.error(SpecError, "drop needs a reason: say why the value is not forwarded")
        return _nothing

    # -- each -----------------------------------------------------------------------------------

    def _each(self, spec: dict[str, Any], where: Where) -> Rule:
        items_of = self._path(spec["each"], where.inside(spec, "each"))
        item_spec = type(spec)((k, v) for k, v in spec.items() if k not in EACH_LIST_KEYS)
        for attribute in ("file", "line", "key_lines"):
            if hasattr(spec, attribute):
                setattr(item_spec, attribute, getattr(spec, attribute))
        item_rule = self._object_rule(item_spec, where) if item_spec else _identity
        flatten = bool(spec.get("flatten"))
        path = input_path(spec["each"])

        def each(scope: Json, ctx: Context) -> Json:
            items = items_of(scope, ctx)
            if items is None:
                return None
            if items.__class__ is not list:
                raise CoercionError(f"expected an array, got {_json_type(items)}").at(*path)
            out: list[Json] = []
            index = 0
            try:
                for index, item in enumerate(items):
                    value = item_rule(item, ctx)
                    if value is None:
                        continue
                    if flatten and value.__class__ is list:
                        out.extend(value)
                    else:
                        out.append(value)
            except ConversionError as error:
                raise error.at(*path, index)
            return out

        list_modifiers = [self._modifier(key, spec, where) for key in spec
                          if key in ("then", "omit_empty")]
        return _assemble(each, list_modifiers, spec, self.compile_guard(spec, where), path=())

    # -- modifiers: (value, scope, ctx) -> value ------------------------------------------------

    def _modifier(self, key: str, spec: dict[str, Any], where: Where) -> Callable[..., Json]:
        return getattr(self, f"_modifier_{key}")(spec[key], spec, where.inside(spec, key))

    def _modifier_apply(self, name: Any, spec: dict, where: Where) -> Callable[..., Json]:
        if name not in self.map_cells:
            raise where.error(ReferenceError_, f"apply names no map '{name}'"
                                               f"{_suggest(name, self.map_cells)} (see maps:)")
        cell = self.map_cells[name]
        rule_id = f"maps.{name}"

        def apply(value: Json, scope: Json, ctx: Context) -> Json:
            try:
                return cell[0](value, ctx)
            except ConversionError as error:
                if error.rule is None:
                    error.rule = rule_id
                raise

        return apply

    def _modifier_fn(self, name: Any, spec: dict, where: Where) -> Callable[..., Json]:
        function = self.functions.get(name)
        if function is None:
            raise where.error(UnknownFunction, f"unknown function '{name}'"
                                               f"{_suggest(name, self.functions)}; see mapper functions")
        args_spec = spec.get("args") or {}
        unknown = set(args_spec) - set(function.parameters)
        if unknown:
            raise where.error(SpecError, f"function '{name}' takes no argument(s) "
                                         f"{', '.join(sorted(unknown))}")
        args = tuple((arg, self.compile(rule, where.inside(args_spec, arg)))
                     for arg, rule in args_spec.items())
        call = function.call
        if not args:
            return lambda value, scope, ctx: call(value, ctx)

        def fn(value: Json, scope: Json, ctx: Context) -> Json:
            return call(value, ctx, **{arg: rule(scope, ctx) for arg, rule in args})

        return fn

    def _modifier_lookup(self, reference: Any, spec: dict, where: Where) -> Callable[..., Json]:
        table_name, _, column = str(reference).partition(".")
        table = self.tables.get(table_name)
        if table is None:
            raise where.error(ReferenceError_, f"lookup names no table '{table_name}'"
                                               f"{_suggest(table_name, self.tables)} (see tables:)")
        if not column:
            return lambda value, scope, ctx: _fresh(table.row(value))
        if column not in table.columns:
            raise where.error(ReferenceError_, f"table '{table_name}' has no column '{column}' "
                                               f"(columns: {', '.join(table.columns)})")
        index = table.column_index(column)
        return lambda value, scope, ctx: _fresh(table.row(value)[index])

    def _modifier_as(self, type_name: Any, spec: dict, where: Where) -> Callable[..., Json]:
        coerce = COERCIONS.get(type_name)
        if coerce is None:
            raise where.error(SpecError, f"unknown type '{type_name}' for as: "
                                         f"(known: {', '.join(COERCIONS)})")
        return lambda value, scope, ctx: coerce(value)

    def _modifier_clamp(self, bounds: Any, spec: dict, where: Where) -> Callable[..., Json]:
        low, high = bounds
        return lambda value, scope, ctx: min(max(value, low), high)

    def _modifier_then(self, rule_spec: Any, spec: dict, where: Where) -> Callable[..., Json]:
        rule = self.compile(rule_spec, where)
        return lambda value, scope, ctx: rule(value, ctx)

    def _modifier_omit_empty(self, flag: Any, spec: dict, where: Where) -> Callable[..., Json]:
        if not flag:
            return lambda value, scope, ctx: value
        return lambda value, scope, ctx: value if value or value.__class__ not in _CONTAINERS else None

    # -- paths ----------------------------------------------------------------------------------

    def _path(self, expression: Any, where: Where) -> Rule:
        if not isinstance(expression, str):
            raise where.error(SpecError, f"expected a JMESPath expression, got {expression!r}")
        try:
            return compile_path(expression)
        except SpecError as error:
            raise _located(error, where) from None


# -- assembling a rule -----------------------------------------------------------------------


def _assemble(source: Rule, modifiers: list[Callable[..., Json]], spec: dict[str, Any],
              when: Rule | None, path: tuple[str | int, ...]) -> Rule:
    """Join source, modifiers, ``required`` and ``default`` into one closure, specialised."""
    has_default = "default" in spec
    default = plain(spec.get("default"))  # not the loader's node: it must not reach the output
    mutable_default = isinstance(default, (list, dict))
    required = bool(spec.get("required"))
    modifiers_t = tuple(modifiers)

    if when is None and not required and not has_default:
        # the common shapes, without the general loop: a bare source, or one modifier
        if not modifiers_t:
            return source
        if len(modifiers_t) == 1:
            return _with_one_modifier(source, modifiers_t[0], path)
    if when is not None and not modifiers_t and not required and not has_default:
        return _guarded(source, when)

    def rule(scope: Json, ctx: Context) -> Json:
        if when is not None and not truthy(when(scope, ctx)):
            return None
        value = source(scope, ctx)
        if value is not None and modifiers_t:
            try:
                for modify in modifiers_t:
                    value = modify(value, scope, ctx)
                    if value is None:
                        break
            except ConversionError as error:
                raise error.at(*path)
            except (TypeError, ValueError) as error:  # e.g. clamp on a string
                raise CoercionError(str(error)).at(*path) from None
        if value is None:
            if required:
                raise CoercionError("required value is missing").at(*path)
            if mutable_default:
                return copy_json(default)
            return default
        return value

    return rule


def _with_one_modifier(source: Rule, modify: Callable[..., Json], path: tuple[str | int, ...]) -> Rule:
    def rule(scope: Json, ctx: Context) -> Json:
        value = source(scope, ctx)
        if value is None:
            return None
        try:
            return modify(value, scope, ctx)
        except ConversionError as error:
            raise error.at(*path)
        except (TypeError, ValueError) as error:
            raise CoercionError(str(error)).at(*path) from None

    return rule


def _guarded(source: Rule, when: Rule) -> Rule:
    def rule(scope: Json, ctx: Context) -> Json:
        return source(scope, ctx) if truthy(when(scope, ctx)) else None

    return rule


def _suggest(name: Any, known: Iterable[str]) -> str:
    """`` (did you mean x?)`` for a near miss, else nothing."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _literal(value: Json) -> Rule:
    if isinstance(value, (list, dict)):
        if not value:
            factory = list if isinstance(value, list) else dict
            return lambda scope, ctx: factory()
        frozen = plain(value)
        return lambda scope, ctx: copy_json(frozen)
    constant = plain(value)
    return lambda scope, ctx: constant


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


def _fresh(value: Json) -> Json:
    """A table cell handed out: containers are copied so that no output shares them."""
    kind = value.__class__
    if kind is tuple:  # a whole row of a table with columns
        return [copy_json(item) for item in value]
    return copy_json(value) if kind is dict or kind is list else value


def _identity(scope: Json, ctx: Context) -> Json:
    return scope


def _nothing(scope: Json, ctx: Context) -> Json:
    return None


def _located(error: SpecError, where: Where) -> SpecError:
    error.file = error.file or where.file
    error.line = error.line or where.line
    error.rule = error.rule or where.rule
    return error


_CONTAINERS = (list, dict, str)


def truthy(value: Json) -> bool:
    """JMESPath truth: false, null, and empty strings, arrays and objects are false; 0 is true."""
    if value is None or value is False:
        return False
    if value.__class__ in _CONTAINERS:
        return len(value) > 0
    return True


def _case_key(key: Json) -> str:
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


def _json_type(value: Json) -> str:
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


def _expect(name: str, value: Json) -> CoercionError:
    return CoercionError(f"expected {name}, got {_json_type(value)}")


def _as_integer(value: Json) -> int:
    if value.__class__ is int:
        return value
    if value.__class__ is float and value.is_integer():
        return int(value)
    raise _expect("an integer", value)


def _as_number(value: Json) -> Json:
    if value.__class__ in (int, float):
        return value
    raise _expect("a number", value)


def _exactly(kind: type, name: str) -> Callable[[Json], Json]:
    """A check that lets values of exactly ``kind`` through (``bool`` is not an ``int`` here)."""

    def check(value: Json) -> Json:
        if value.__class__ is kind:
            return value
        raise _expect(name, value)

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
