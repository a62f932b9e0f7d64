"""``Shape`` nodes compiled to Python source: one function per ``$defs`` entry, union and object.

The generated code does what a hand-written check would: a class test (``v.__class__ is str``),
a set membership for an enum, a comparison for a bound, a loop for array items, ``dict.get`` for
the properties of small objects and a dispatch over the present keys for large ones (a request
sets a handful of the thirty-odd top-level parameters). It raises ``Invalid`` at the first
refused value; the surrounding call adds the path while the exception unwinds. Scalars are checked
inline; objects, unions and ``$defs`` entries that are not plain scalars become functions, which
keeps nesting shallow and lets recursive schemas recurse.

Unions dispatch on the value's JSON type first, then (for several object members) on a
discriminating property such as ``type`` or ``role`` when every member fixes its values; an
unknown value passes, as ``Switch`` does. Only candidates that share both type and discriminator
are tried one after another (``runtime.first_valid``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..source import Names, SourceWriter, define_function
from . import runtime
from .shapes import ANY, Plain, Reader, Ref, Shape, Union, is_scalar
from .wording import expected

Path = tuple[str, ...]  # Python expressions, one per path segment: "'content'", "i3"

# a test of the value's Python class, and the JSON types a value of that class can satisfy
_CLASSES = (
    ("{c} is dict", frozenset({"object"})),
    ("{c} is list", frozenset({"array"})),
    ("{c} is str", frozenset({"string"})),
    ("{c} is bool", frozenset({"boolean"})),
    ("{c} is int", frozenset({"integer", "number"})),
    ("{c} is float", frozenset({"number", "integer"})),
    ("{v} is None", frozenset({"null"})),
)
_TESTS = {
    "string": "{v}.__class__ is str",
    "boolean": "{v}.__class__ is bool",
    "object": "{v}.__class__ is dict",
    "array": "{v}.__class__ is list",
    "integer": "{v}.__class__ is int or {v}.__class__ is float",
    "number": "{v}.__class__ is int or {v}.__class__ is float",
    "null": "{v} is None",
}
_DISCRIMINATORS = ("type", "role")
_INLINE_PROPERTIES = 6  # objects with more properties than this dispatch on the present keys


class Generator:
    """Writes the check functions of one schema document into one namespace."""

    def __init__(self, reader: Reader, filename: str) -> None:
        self.reader = reader
        self.filename = filename
        self.names = Names()
        self.namespace: dict[str, Any] = {
            "Invalid": runtime.Invalid, "check_integral": runtime.check_integral,
            "first_valid": runtime.first_valid}
        self.functions: dict[Any, str] = {}  # shape (or def name) -> its function's name
        self.pending: list[tuple[str, "Shape | _Tried"]] = []
        self.sources: list[str] = []

    def compile(self, shape: Shape) -> Callable[[Any], None]:
        """The function that checks ``shape``, and every function it calls, defined now."""
        name = self.function(shape)
        while self.pending:
            function_name, pending = self.pending.pop()
            writer = SourceWriter(self.names, self.namespace)
            if isinstance(pending, _Tried):
                self.emit_candidates(writer, list(pending.members), "v")
            elif isinstance(pending, Union):
                self.emit_union(writer, pending, "v")
            else:
                self.emit_plain(writer, pending, "v", ())
            body = writer.lines or ["    pass"]
            _, source = define_function(self.namespace, function_name, body, arguments="v",
                                        filename=self.filename)
            self.sources.append(source)
        bind(self.namespace)
        return self.namespace[name]

    def function(self, shape: Shape) -> str:
        """The name of the function that checks ``shape`` (generated later, once)."""
        key: Any = ("def", shape.name) if isinstance(shape, Ref) else shape
        name = self.functions.get(key)
        if name is None:
            hint = f"check_{shape.name}_" if isinstance(shape, Ref) else "check_"
            name = self.names.fresh(hint.replace("-", "_"))
            self.functions[key] = name
            target = self.reader.resolve(shape)
            self.pending.append((name, ANY if isinstance(target, Ref) else target))
        return name

    # -- one shape, into the current function ----------------------------------------------------

    def emit(self, w: SourceWriter, shape: Shape, v: str, path: Path) -> None:
        """Check the value in local ``v`` against ``shape``; ``path`` locates ``v``."""
        if isinstance(shape, Ref):
            target = self.reader.definition(shape.name)
            if isinstance(target, Plain) and is_scalar(target):
                self.emit_plain(w, target, v, path)
            else:
                self.call(w, self.function(shape), v, path)
        elif isinstance(shape, Union):
            self.call(w, self.function(shape), v, path)
        elif shape == ANY:
            return
        elif is_scalar(shape) or _is_array_of_scalars(shape):
            self.emit_plain(w, shape, v, path)
        else:
            self.call(w, self.function(shape), v, path)

    def call(self, w: SourceWriter, function: str, v: str, path: Path) -> None:
        if not path:
            w(f"{function}({v})")
            return
        with w.block("try:"):
            w(f"{function}({v})")
        with w.block("except Invalid as failure:"):
            w(f"failure.path[:0] = {_list(path)}")
            w("raise")

    def emit_plain(self, w: SourceWriter, shape: Plain, v: str, path: Path) -> None:
        kinds = shape.types
        if kinds is None:
            self.emit_keywords(w, shape, v, path, None)
        else:
            present = [kind for kind in kinds if kind != "null"]
            described = w.constant(expected(self.reader, shape), "E")
            test = " or ".join(_TESTS[kind].format(v=v) for kind in present) or "False"
            if shape.nullable:
                test = f"{v} is None or {test}"
            with w.block(f"if not ({test}):"):
                w(f"raise Invalid('invalid_type', {_list(path)}, {v}, {described})")
            checks = w.child()
            if shape.nullable:
                checks.level += 1
            if "integer" in present and "number" not in present:
                with checks.block(f"if {v}.__class__ is float:"):
                    checks(f"check_integral({v}, {_list(path)}, {described})")
            self.emit_keywords(checks, shape, v, path, frozenset(present))
            if checks.lines and shape.nullable:
                w(f"if {v} is not None:")
            w.lines.extend(checks.lines)
        for part in shape.also:
            self.emit(w, part, v, path)

    def emit_keywords(self, w: SourceWriter, shape: Plain, v: str, path: Path,
                      kinds: frozenset[str] | None) -> None:
        """The keywords of each JSON type, each under a class test unless the type is the only one."""
        for json_type, check in (("string", self.emit_string), ("number", self.emit_number),
                                 ("array", self.emit_array), ("object", self.emit_object)):
            if not _applies(shape, json_type):
                continue
            if kinds is not None and json_type == "number" and not kinds & {"number", "integer"}:
                continue
            if kinds is not None and json_type != "number" and json_type not in kinds:
                continue
            only = kinds is not None and (kinds <= {"number", "integer"} if json_type == "number"
                                          else kinds == {json_type})
            if only:
                check(w, shape, v, path)
            else:
                with w.block(f"if {_TESTS[json_type].format(v=v)}:"):
                    check(w, shape, v, path)
        if shape.enum is not None and not any(isinstance(e, str) for e in shape.enum):
            self.emit_enum(w, shape, v, path)

    def emit_enum(self, w: SourceWriter, shape: Plain, v: str, path: Path) -> None:
        allowed = w.constant(frozenset(e for e in shape.enum or () if e is not None), "A")
        listed = w.constant(tuple(e for e in shape.enum or () if e is not None), "L")
        with w.block(f"if {v} not in {allowed}:"):
            w(f"raise Invalid('invalid_value', {_list(path)}, {v}, {listed})")

    def emit_string(self, w: SourceWriter, shape: Plain, v: str, path: Path) -> None:
        if shape.enum is not None:
            self.emit_enum(w, shape, v, path)
        if shape.min_length:
            code = "'empty_string'" if shape.min_length == 1 else "'string_below_min_length'"
            with w.block(f"if len({v}) < {shape.min_length}:"):
                w(f"raise Invalid({code}, {_list(path)}, len({v}), {shape.min_length})")
        if shape.max_length is not None:
            with w.block(f"if len({v}) > {shape.max_length}:"):
                w(f"raise Invalid('string_above_max_length', {_list(path)}, len({v}), "
                  f"{shape.max_length})")

    def emit_number(self, w: SourceWriter, shape: Plain, v: str, path: Path) -> None:
        kind = "integer" if shape.types is not None and "number" not in shape.types else "decimal"
        bounds = ((shape.minimum, "<", ">=", "below_min"), (shape.maximum, ">", "<=", "above_max"),
                  (shape.exclusive_minimum, "<=", ">", "below_min"),
                  (shape.exclusive_maximum, ">=", "<", "above_max"))
        for bound, failing, relation, name in bounds:
            if bound is None:
                continue
            with w.block(f"if {v} {failing} {bound!r}:"):
                w(f"raise Invalid('{kind}_{name}_value', {_list(path)}, {v}, "
                  f"({relation!r}, {bound!r}))")

    def emit_array(self, w: SourceWriter, shape: Plain, v: str, path: Path) -> None:
        if shape.min_items:
            code = "'empty_array'" if shape.min_items == 1 else "'array_below_min_length'"
            with w.block(f"if len({v}) < {shape.min_items}:"):
                w(f"raise Invalid({code}, {_list(path)}, len({v}), {shape.min_items})")
        if shape.max_items is not None:
            with w.block(f"if len({v}) > {shape.max_items}:"):
                w(f"raise Invalid('array_above_max_length', {_list(path)}, len({v}), "
                  f"{shape.max_items})")
        if shape.items is not None and shape.items != ANY:
            index, item = w.var("i"), w.var("x")
            with w.block(f"for {index}, {item} in enumerate({v}):"):
                self.emit(w, shape.items, item, (*path, index))

    def emit_object(self, w: SourceWriter, shape: Plain, v: str, path: Path) -> None:
        declared = dict(shape.properties)
        properties = dict(declared)
        # a wrong variant says so first ("Invalid value: 'image_url'. Supported values are:
        # 'text'."), before the members that variant would need
        for name in _DISCRIMINATORS:
            if name in properties and properties[name] != ANY:
                item = w.var("x")
                w(f"{item} = {v}.get({name!r})")
                with w.block(f"if {item} is not None:"):
                    self.emit(w, properties.pop(name), item, (*path, repr(name)))
        for name in shape.required:
            with w.block(f"if {name!r} not in {v}:"):
                w(f"raise Invalid('missing_required_parameter', {_list((*path, repr(name)))})")
            if name in declared and not _nullable(self.reader, declared[name]):
                # null is taken as "not given" for optional members; a required one needs a value
                described = w.constant(expected(self.reader, declared[name]), "E")
                with w.block(f"if {v}[{name!r}] is None:"):
                    w(f"raise Invalid('invalid_type', {_list((*path, repr(name)))}, None, "
                      f"{described})")
        if len(properties) <= _INLINE_PROPERTIES:
            for name, sub in properties.items():
                if sub == ANY:
                    continue
                item = w.var("x")
                w(f"{item} = {v}.get({name!r})")
                with w.block(f"if {item} is not None:"):
                    self.emit(w, sub, item, (*path, repr(name)))
        else:
            table = w.constant({name: self.namespace_function(sub) for name, sub in properties.items()
                                if sub != ANY}, "P")
            key, item, check = w.var("k"), w.var("x"), w.var("f")
            with w.block(f"for {key}, {item} in {v}.items():"):
                w(f"{check} = {table}.get({key})")
                with w.block(f"if {check} is not None and {item} is not None:"):
                    self.call(w, check, item, (*path, key))
        if shape.additional is not None and shape.additional != ANY:
            known = w.constant(frozenset(declared), "K")
            key, item = w.var("k"), w.var("x")
            with w.block(f"for {key}, {item} in {v}.items():"):
                with w.block(f"if {key} not in {known}:"):
                    self.emit(w, shape.additional, item, (*path, key))
        if shape.max_properties is not None:
            with w.block(f"if len({v}) > {shape.max_properties}:"):
                w(f"raise Invalid('object_above_max_properties', {_list(path)}, len({v}), "
                  f"{shape.max_properties})")
        if shape.max_name_length is not None:
            key = w.var("k")
            with w.block(f"for {key} in {v}:"):
                with w.block(f"if len({key}) > {shape.max_name_length}:"):
                    w(f"raise Invalid('property_name_above_max_length', {_list((*path, key))}, "
                      f"{key}, {shape.max_name_length})")
        if shape.switch is not None:
            cases = w.constant({value: self.namespace_function(then)
                                for value, then in shape.switch.cases}, "S")
            self.emit_dispatch(w, v, path, shape.switch.property, cases, unknown=None)

    def emit_dispatch(self, w: SourceWriter, v: str, path: Path, prop: str, cases: str,
                      unknown: str | None) -> None:
        """``cases[v[prop]](v)`` for a known string value; an unknown one calls ``unknown``."""
        tag, check = w.var("t"), w.var("f")
        w(f"{tag} = {v}.get({prop!r})")
        with w.block(f"if {tag}.__class__ is str:"):
            w(f"{check} = {cases}.get({tag}, {unknown})")
            with w.block(f"if {check} is not None:"):
                self.call(w, check, v, path)

    def namespace_function(self, shape: Shape) -> "_Late":
        """A dispatch-table entry for the function that checks ``shape`` (bound once all exist)."""
        return _Late(self.namespace, self.function(shape))

    # -- unions -----------------------------------------------------------------------------------

    def emit_union(self, w: SourceWriter, shape: Union, v: str) -> None:
        described = w.constant(expected(self.reader, shape), "E")
        if shape.nullable:
            with w.block(f"if {v} is None:"):
                w("return")
        kind = w.var("c")
        w(f"{kind} = {v}.__class__")
        anything = [m for m in shape.members if self.reader.accepted(m) is None]
        for test, json_types in _CLASSES:
            candidates = [m for m in shape.members if m in anything or
                          _accepts(self.reader, m, json_types)]
            if not candidates or candidates == anything:
                continue
            with w.block(f"if {test.format(c=kind, v=v)}:"):
                if "object" in json_types and len(candidates) > 1:
                    self.emit_object_union(w, candidates, v)
                else:
                    self.emit_candidates(w, candidates, v)
                w("return")
        if anything:
            self.emit_candidates(w, anything, v)
        else:
            w(f"raise Invalid('invalid_type', [], {v}, {described})")

    def emit_candidates(self, w: SourceWriter, candidates: list[Shape], v: str) -> None:
        if len(candidates) == 1:
            self.emit(w, candidates[0], v, ())
        else:
            checks = w.constant(tuple(self.namespace_function(c) for c in candidates), "C")
            w(f"first_valid({checks}, {v})")

    def emit_object_union(self, w: SourceWriter, candidates: list[Shape], v: str) -> None:
        """Several object members: dispatch on a property each of them fixes, if there is one."""
        for prop in _DISCRIMINATORS:
            tags = [self.tags(c, prop) for c in candidates]
            if sum(values is not None for values, _ in tags) < 2:
                continue
            open_members = [c for c, (values, _) in zip(candidates, tags) if values is None]
            table: dict[str, list[Shape]] = {}
            for candidate, (values, _) in zip(candidates, tags):
                for value in values or ():
                    table.setdefault(value, []).append(candidate)
            for members in table.values():
                members.extend(open_members)
            cases = w.constant({value: self.candidates_function(members)
                                for value, members in table.items()}, "S")
            absent = [c for c, (values, required) in zip(candidates, tags) if not required]
            unknown = self.candidates_function(open_members) if open_members else None
            tag = w.var("t")
            w(f"{tag} = {v}.get({prop!r})")
            with w.block(f"if {tag} is None:"):
                if absent:
                    self.emit_candidates(w, absent, v)
                else:
                    w(f"raise Invalid('missing_required_parameter', [{prop!r}])")
                w("return")
            with w.block(f"if {tag}.__class__ is not str:"):
                w(f"raise Invalid('invalid_type', [{prop!r}], {tag}, 'a string')")
            unknown_name = w.constant(unknown, "U") if unknown is not None else "None"
            self.emit_dispatch(w, v, (), prop, cases, unknown_name)
            return
        self.emit_candidates(w, candidates, v)

    def candidates_function(self, members: list[Shape]) -> "_Late":
        """A function trying ``members`` in order (they share a type and a discriminator value)."""
        if len(members) == 1:
            return self.namespace_function(members[0])
        key = _Tried(tuple(members))
        name = self.functions.get(key)
        if name is None:
            name = self.functions[key] = self.names.fresh("check_any_")
            self.pending.append((name, key))
        return _Late(self.namespace, name)

    def tags(self, shape: Shape, prop: str) -> tuple[frozenset[str] | None, bool]:
        """The values ``shape`` allows for property ``prop`` (``None``: any) and whether it is required."""
        resolved = self.reader.resolve(shape)
        if not isinstance(resolved, Plain):
            return None, False
        values: frozenset[str] | None = None
        required = prop in resolved.required
        sub = resolved.property(prop)
        if sub is not None:
            values = _string_values(self.reader, sub)
        if values is None and resolved.switch is not None and resolved.switch.property == prop:
            values = frozenset(value for value, _ in resolved.switch.cases)
        for part in resolved.also:
            more, more_required = self.tags(part, prop)
            required |= more_required
            if values is None:
                values = more
        return values, required


@dataclass(frozen=True)
class _Tried:
    """Union members to try one after another, with no further dispatch."""

    members: tuple[Shape, ...]


class _Late:
    """A dispatch-table entry: the named generated function, looked up on first call.

    Tables are built while their functions are still being written; each entry replaces itself
    in its table with the real function when ``bind`` runs after the last function is defined.
    """

    __slots__ = ("namespace", "name")

    def __init__(self, namespace: dict[str, Any], name: str) -> None:
        self.namespace = namespace
        self.name = name

    def __call__(self, value: Any) -> None:
        self.namespace[self.name](value)


def bind(namespace: dict[str, Any]) -> None:
    """Replace every ``_Late`` in the namespace (and in its tables) with the function it names."""
    for name, value in list(namespace.items()):
        if isinstance(value, _Late):
            namespace[name] = namespace[value.name]
        elif isinstance(value, dict):
            for key, entry in value.items():
                if isinstance(entry, _Late):
                    value[key] = namespace[entry.name]
        elif isinstance(value, tuple) and any(isinstance(e, _Late) for e in value):
            namespace[name] = tuple(namespace[e.name] if isinstance(e, _Late) else e for e in value)


def _list(path: Path) -> str:
    return "[" + ", ".join(path) + "]"


def _applies(shape: Plain, json_type: str) -> bool:
    if json_type == "string":
        return shape.enum is not None and any(isinstance(e, str) for e in shape.enum) or \
            shape.min_length is not None or shape.max_length is not None
    if json_type == "number":
        return any(b is not None for b in (shape.minimum, shape.maximum, shape.exclusive_minimum,
                                           shape.exclusive_maximum))
    if json_type == "array":
        return shape.min_items is not None or shape.max_items is not None or shape.items is not None
    return bool(shape.required or shape.properties or shape.additional is not None or
                shape.max_properties is not None or shape.max_name_length is not None or
                shape.switch is not None)


def _is_array_of_scalars(shape: Plain) -> bool:
    return shape.types is not None and shape.types <= {"array", "null"} and not shape.also and (
        shape.items is None or (isinstance(shape.items, Plain) and is_scalar(shape.items)))


def _accepts(reader: Reader, shape: Shape, json_types: frozenset[str]) -> bool:
    kinds = reader.accepted(shape)
    return kinds is not None and bool(kinds & json_types)


def _nullable(reader: Reader, shape: Shape) -> bool:
    kinds = reader.accepted(shape)
    return kinds is None or "null" in kinds


def _string_values(reader: Reader, shape: Shape) -> frozenset[str] | None:
    resolved = reader.resolve(shape)
    if isinstance(resolved, Union):
        found: set[str] = set()
        for member in resolved.members:
            values = _string_values(reader, member)
            if values is None:
                return None
            found |= values
        return frozenset(found)
    if isinstance(resolved, Plain) and resolved.enum is not None:
        return frozenset(v for v in resolved.enum if isinstance(v, str))
    return None
