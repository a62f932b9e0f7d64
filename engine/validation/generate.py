"""``Shape`` nodes compiled to Python source: checks written in place, functions where they pay.

The generated code is what a hand-written check would be: a class test (``x.__class__ is str``),
a set membership for an enum, a comparison for a bound, a loop for array items. An object binds
``get = v.get`` once and reads its declared properties one after another (a large object tests
``'name' in v`` first: most of its properties are absent, and ``in`` is cheaper than a call).
Scalars, arrays, small objects, short ``if``/``then`` dispatches and unions whose members differ by
JSON type are checked in place; large objects, unions of objects and recursive ``$defs`` entries
become functions, which keeps nesting shallow and lets recursive schemas recurse. The first refused
value raises ``Invalid``; each call site inside a property or an array adds its segment to the
failure's path while it unwinds, so a request that passes pays nothing for paths.

Unions dispatch on the value's class first, then, for several object members, on a property
each member fixes (``type``, or ``role``): an unknown value passes, like an unknown ``Switch``
case. Only members that share both class and discriminator value are tried one after another,
and when all of them refuse, the failure found deepest in the value is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..source import Names, SourceWriter, define_function
from . import runtime
from .shapes import ANY, Plain, Reader, Ref, Shape, Union, is_scalar
from .wording import expected

Path = tuple[str, ...]  # Python expressions, one per path segment: "'content'", "i3"

# a test of the value's class (``c`` holds it), and the JSON types such a value can satisfy
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
}
_DISCRIMINATORS = ("type", "role")
_INLINE_PROPERTIES = 8  # an object with at most this many properties is checked in place
_INLINE_CASES = 8  # a dispatch on at most this many values is a chain of tests, not a table


@dataclass(frozen=True)
class _Tried:
    """Union members to try one after another (they share a class and a discriminator value)."""

    members: tuple[Shape, ...]


class Generator:
    """Writes the check functions of one schema document into one namespace."""

    def __init__(self, reader: Reader, filename: str) -> None:
        self.reader = reader
        self.filename = filename
        self.names = Names()
        self.namespace: dict[str, Any] = {
            "Invalid": runtime.Invalid, "check_integral": runtime.check_integral,
            "most_relevant": runtime.most_relevant}
        self.functions: dict[Any, str] = {}  # shape, ("def", name) or _Tried -> function name
        self.pending: list[tuple[str, Shape | _Tried]] = []
        self.inlining: set[str] = set()  # $defs being written inline, to stop at recursion
        self.sources: list[str] = []

    def compile(self, shape: Shape) -> Callable[[Any], None]:
        """The function that checks ``shape``, and every function it calls, defined now."""
        name = self.function(shape)
        while self.pending:
            function_name, pending = self.pending.pop()
            w = SourceWriter(self.names, self.namespace)
            if isinstance(pending, _Tried):
                self.emit_tried(w, pending.members, "v")
            elif isinstance(pending, Union):
                self.emit_union(w, pending, "v", ())
            elif isinstance(pending, Plain):
                self.emit_plain(w, pending, "v", ())
            _, source = define_function(self.namespace, function_name, w.lines or ["    pass"],
                                        arguments="v", filename=self.filename)
            self.sources.append(source)
        _bind(self.namespace)
        return self.namespace[name]

    def function(self, shape: Shape | _Tried) -> str:
        """The name of the function that checks ``shape`` (written later, once)."""
        key: Any = ("def", shape.name) if isinstance(shape, Ref) else shape
        name = self.functions.get(key)
        if name is None:
            hint = f"check_{shape.name.replace('-', '_')}_" if isinstance(shape, Ref) else "check_"
            name = self.functions[key] = self.names.fresh(hint)
            target = self.reader.resolve(shape) if isinstance(shape, Ref) else shape
            self.pending.append((name, ANY if isinstance(target, Ref) else target))
        return name

    def late(self, shape: Shape | _Tried) -> "_Late":
        """A table entry for the function that checks ``shape``, bound once every function exists."""
        return _Late(self.function(shape))

    # -- one shape, inline or by a call ------------------------------------------------------------

    def emit(self, w: SourceWriter, shape: Shape, v: str, path: Path, known: bool = False,
             present: bool = False) -> None:
        """Check local ``v`` against ``shape``; ``path`` locates ``v``. ``known``: its class is
        one ``shape`` accepts; ``present``: it is not None."""
        if isinstance(shape, Ref):
            target = self.reader.resolve(shape)
            if shape.name not in self.inlining and not isinstance(target, Ref) and \
                    self.inline(target):
                self.inlining.add(shape.name)
                try:
                    self.emit(w, target, v, path, known, present)
                finally:
                    self.inlining.discard(shape.name)
            else:
                self.call(w, self.function(shape), v, path)
        elif shape == ANY:
            return
        elif isinstance(shape, Union):
            if self.inline(shape):
                self.emit_union(w, shape, v, path, present)
            else:
                self.call(w, self.function(shape), v, path)
        elif self.inline(shape):
            self.emit_plain(w, shape, v, path, known, present)
        else:
            self.call(w, self.function(shape), v, path)

    def inline(self, shape: Shape) -> bool:
        """Checked in place rather than by a call: scalars, arrays, small objects (a call costs
        more than reading a few properties) and unions whose members differ by class."""
        if isinstance(shape, Union):
            return all(len(self.candidates(shape, types)) <= 1 for _, types in _CLASSES)
        if isinstance(shape, Plain):
            return shape.types is not None and \
                ("object" not in shape.types or not _applies(shape, "object") or
                 (len(shape.properties) <= _INLINE_PROPERTIES and shape.additional is None and
                  (shape.switch is None or len(shape.switch.cases) <= _INLINE_CASES))) and \
                all(isinstance(part, Plain) and is_scalar(part) for part in shape.also)
        return False

    def call(self, w: SourceWriter, function: str, v: str, path: Path) -> None:
        if not path:
            w(f"{function}({v})")
            return
        with w.block("try:"):
            w(f"{function}({v})")
        with w.block("except Invalid as failure:"):
            w(f"failure.path[:0] = {_list(path)}")
            w("raise")

    # -- plain schemas -----------------------------------------------------------------------------

    def emit_plain(self, w: SourceWriter, shape: Plain, v: str, path: Path, known: bool = False,
                   present: bool = False) -> None:
        if shape.types is None:
            self.emit_keywords(w, shape, v, path, None)
        else:
            kinds = frozenset(shape.types - {"null"})
            nullable = shape.nullable and not known and not present
            described = w.constant(expected(self.reader, shape), "E")
            if not known:
                test = " or ".join(_TESTS[kind].format(v=v) for kind in sorted(kinds)) or "False"
                with w.block(f"if not ({v} is None or {test}):" if nullable else
                             f"if not ({test}):"):
                    w(f"raise Invalid('invalid_type', {_list(path)}, {v}, {described})")
            checks = w.child()
            if nullable:
                checks.level += 1
            if "integer" in kinds and "number" not in kinds:
                with checks.block(f"if {v}.__class__ is float:"):
                    checks(f"check_integral({v}, {_list(path)}, {described})")
            self.emit_keywords(checks, shape, v, path, kinds)
            if checks.lines and nullable:
                w(f"if {v} is not None:")
            w.adopt(checks)
        for part in shape.also:
            self.emit(w, part, v, path, present=present)

    def emit_keywords(self, w: SourceWriter, shape: Plain, v: str, path: Path,
                      kinds: frozenset[str] | None) -> None:
        """Each JSON type's keywords, under a class test unless that type is the only one."""
        numeric = frozenset({"number", "integer"})
        for json_type, check in (("string", self.emit_string), ("number", self.emit_number),
                                 ("array", self.emit_array), ("object", self.emit_object)):
            accepted = numeric if json_type == "number" else frozenset({json_type})
            if not _applies(shape, json_type) or (kinds is not None and not kinds & accepted):
                continue
            if kinds is not None and kinds <= accepted:
                check(w, shape, v, path)
            else:
                with w.block(f"if {_TESTS[json_type].format(v=v)}:"):
                    check(w, shape, v, path)
        if shape.enum is not None and not any(isinstance(e, str) for e in shape.enum):
            self.emit_enum(w, shape, v, path)

    def emit_enum(self, w: SourceWriter, shape: Plain, v: str, path: Path) -> None:
        values = tuple(e for e in shape.enum or () if e is not None)
        allowed, listed = w.constant(frozenset(values), "A"), w.constant(values, "L")
        with w.block(f"if {v} not in {allowed}:"):
            w(f"raise Invalid('invalid_value', {_list(path)}, {v}, {listed})")

    def emit_string(self, w: SourceWriter, shape: Plain, v: str, path: Path) -> None:
        if shape.enum is not None:
            self.emit_enum(w, shape, v, path)
        _emit_lengths(w, v, path, "string", shape.min_length, shape.max_length)

    def emit_number(self, w: SourceWriter, shape: Plain, v: str, path: Path) -> None:
        kind = "integer" if shape.types is not None and "number" not in shape.types else "decimal"
        for bound, failing, relation, name in (
                (shape.minimum, "<", ">=", "below_min"), (shape.maximum, ">", "<=", "above_max"),
                (shape.exclusive_minimum, "<=", ">", "below_min"),
                (shape.exclusive_maximum, ">=", "<", "above_max")):
            if bound is not None:
                with w.block(f"if {v} {failing} {bound!r}:"):
                    w(f"raise Invalid('{kind}_{name}_value', {_list(path)}, {v}, "
                      f"({relation!r}, {bound!r}))")

    def emit_array(self, w: SourceWriter, shape: Plain, v: str, path: Path) -> None:
        _emit_lengths(w, v, path, "array", shape.min_items, shape.max_items)
        if shape.items is not None and shape.items != ANY:
            index, item = w.var("i"), w.var("x")
            with w.block(f"for {index}, {item} in enumerate({v}):"):
                self.emit(w, shape.items, item, (*path, index))

    def emit_object(self, w: SourceWriter, shape: Plain, v: str, path: Path) -> None:
        declared = {name: sub for name, sub in shape.properties}
        get = w.var("get")
        w(f"{get} = {v}.get")
        # a wrong variant says so before the members it would need ("Invalid value: 'image_url'.
        # Supported values are: 'text'." rather than "Missing required parameter: '...text'.")
        order = [name for name in _DISCRIMINATORS if name in declared]
        order += [name for name in shape.required if name not in order]
        order += [name for name in declared if name not in order]
        read: dict[str, str] = {}  # property -> the local holding its value
        for name in order:
            if name in shape.required or declared.get(name, ANY) != ANY:
                local = self.emit_property(w, shape, declared.get(name, ANY), get, v, name, path)
                if local is not None:
                    read[name] = local
        if shape.max_properties is not None:
            with w.block(f"if len({v}) > {shape.max_properties}:"):
                w(f"raise Invalid('object_above_max_properties', {_list(path)}, len({v}), "
                  f"{shape.max_properties})")
        additional = shape.additional is not None and shape.additional != ANY
        if additional or shape.max_name_length is not None:
            key, item = w.var("k"), w.var("x")
            with w.block(f"for {key}, {item} in {v}.items():"):
                if shape.max_name_length is not None:
                    with w.block(f"if len({key}) > {shape.max_name_length}:"):
                        w(f"raise Invalid('property_name_above_max_length', "
                          f"{_list((*path, key))}, {key}, {shape.max_name_length})")
                if additional and declared:
                    known = w.constant(frozenset(declared), "K")
                    with w.block(f"if {key} not in {known}:"):
                        self.emit(w, shape.additional, item, (*path, key))
                elif additional:
                    self.emit(w, shape.additional, item, (*path, key))
        if shape.switch is not None:
            tag = read.get(shape.switch.property)
            if tag is None:
                tag = w.var("t")
                w(f"{tag} = {get}({shape.switch.property!r})")
            if len(shape.switch.cases) <= _INLINE_CASES:
                opener = "if"
                for value, then in shape.switch.cases:
                    with w.block(f"{opener} {tag} == {value!r}:"):
                        written = len(w.lines)
                        self.emit(w, then, v, path, present=True)
                        if len(w.lines) == written:
                            w("pass")
                    opener = "elif"
            else:
                cases = w.constant({value: self.late(then) for value, then in shape.switch.cases},
                                   "S")
                self.emit_dispatch(w, v, path, tag, cases, None)

    def emit_property(self, w: SourceWriter, shape: Plain, sub: Shape, get: str, v: str, name: str,
                      path: Path) -> str | None:
        """Read and check one property; returns the local that holds its value, if it is set."""
        item = w.var("x")
        where = _list((*path, repr(name)))
        if name not in shape.required and name not in _DISCRIMINATORS and \
                len(shape.properties) > _INLINE_PROPERTIES:
            # most of a large object's properties are absent, and `in` costs less than .get()
            checks = w.child()
            checks.level += 2
            self.emit(checks, sub, item, (*path, repr(name)), present=True)
            if checks.lines:
                with w.block(f"if {name!r} in {v}:"):
                    w(f"{item} = {v}[{name!r}]")
                    w(f"if {item} is not None:")
                w.adopt(checks)
            return None
        w(f"{item} = {get}({name!r})")
        if name in shape.required:
            with w.block(f"if {item} is None:"):
                with w.block(f"if {name!r} not in {v}:"):
                    w(f"raise Invalid('missing_required_parameter', {where})")
                if not self.accepts(sub, "null"):
                    # null is "not given" for an optional member; a required one needs a value
                    described = w.constant(expected(self.reader, sub), "E")
                    w(f"raise Invalid('invalid_type', {where}, None, {described})")
            opener = "else:"
        else:
            opener = f"if {item} is not None:"
        if sub != ANY:
            checks = w.child()
            checks.level += 1
            self.emit(checks, sub, item, (*path, repr(name)), present=True)
            if checks.lines:
                w(opener)
                w.adopt(checks)
        return item

    def emit_dispatch(self, w: SourceWriter, v: str, path: Path, tag: str, cases: str,
                      unknown: str | None, string: bool = False) -> None:
        """``cases[tag](v)`` for a known string tag; an unknown one calls ``unknown``, if any.
        ``string``: the tag is known to be a string."""
        check = w.var("f")
        with w.block("if True:" if string else f"if {tag}.__class__ is str:"):
            w(f"{check} = {cases}.get({tag}, {unknown})")
            with w.block(f"if {check} is not None:"):
                self.call(w, check, v, path)

    # -- unions ------------------------------------------------------------------------------------

    def emit_union(self, w: SourceWriter, shape: Union, v: str, path: Path,
                   present: bool = False) -> None:
        """One branch per class the members accept; a class none accepts is an invalid type."""
        described = w.constant(expected(self.reader, shape), "E")
        kind = w.var("c")
        w(f"{kind} = {v}.__class__")
        opener = "if"
        if shape.nullable and not present:
            w(f"if {v} is None:")
            w("    pass")
            opener = "elif"
        open_members = [m for m in shape.members if self.reader.accepted(m) is None]
        for test, types in _CLASSES:
            candidates = self.candidates(shape, types)
            if not candidates or candidates == open_members or (present and "null" in types):
                continue
            with w.block(f"{opener} {test.format(c=kind, v=v)}:"):
                written = len(w.lines)
                if "object" in types and len(candidates) > 1:
                    self.emit_object_union(w, candidates, v, path)
                elif len(candidates) == 1:
                    self.emit(w, candidates[0], v, path, known=True, present="null" not in types)
                else:
                    self.call(w, self.function(_Tried(tuple(candidates))), v, path)
                if len(w.lines) == written:
                    w("pass")  # the class is all this member asks for
            opener = "elif"
        with w.block("else:" if opener == "elif" else "if True:"):
            written = len(w.lines)
            if open_members:
                self.emit_tried(w, tuple(open_members), v, path)
            else:
                w(f"raise Invalid('invalid_type', {_list(path)}, {v}, {described})")
            if len(w.lines) == written:
                w("pass")

    def candidates(self, shape: Union, types: frozenset[str]) -> list[Shape]:
        """The members a value of one class may match: those accepting its type, or anything."""
        return [m for m in shape.members
                if (kinds := self.reader.accepted(m)) is None or kinds & types]

    def emit_object_union(self, w: SourceWriter, candidates: list[Shape], v: str,
                          path: Path) -> None:
        """Several object members: dispatch on a property each of them fixes, if there is one."""
        for prop in _DISCRIMINATORS:
            tags = [self.tags(c, prop) for c in candidates]
            if sum(values is not None for values, _ in tags) < 2:
                continue
            open_members = [c for c, (values, _) in zip(candidates, tags) if values is None]
            table: dict[str, list[Shape]] = {}
            for candidate, (values, _) in zip(candidates, tags):
                for value in sorted(values or ()):
                    table.setdefault(value, []).append(candidate)
            cases = w.constant({value: self.late_any(members + open_members)
                                for value, members in table.items()}, "S")
            absent = [c for c, (_, required) in zip(candidates, tags) if not required]
            tag = w.var("t")
            w(f"{tag} = {v}.get({prop!r})")
            with w.block(f"if {tag} is None:"):
                if absent:
                    self.call(w, self.function(_Tried(tuple(absent))), v, path)
                else:
                    w(f"raise Invalid('missing_required_parameter', {_list((*path, repr(prop)))})")
            with w.block(f"elif {tag}.__class__ is not str:"):
                w(f"raise Invalid('invalid_type', {_list((*path, repr(prop)))}, {tag}, 'a string')")
            with w.block("else:"):
                unknown = w.constant(self.late_any(open_members), "U") if open_members else "None"
                self.emit_dispatch(w, v, path, tag, cases, unknown, string=True)
            return
        self.call(w, self.function(_Tried(tuple(candidates))), v, path)

    def late_any(self, members: list[Shape]) -> "_Late":
        return self.late(members[0]) if len(members) == 1 else self.late(_Tried(tuple(members)))

    def emit_tried(self, w: SourceWriter, members: tuple[Shape, ...], v: str,
                   path: Path = ()) -> None:
        """Try each member in turn; the first that accepts ``v`` wins (see ``most_relevant``)."""
        if len(members) == 1:
            self.emit(w, members[0], v, path)
            return
        if path:
            self.call(w, self.function(_Tried(members)), v, path)
            return
        failures = []
        for member in members:
            failure = w.var("e")
            failures.append(failure)
            with w.block("try:"):
                self.emit(w, member, v, ())
                w("return")
            with w.block("except Invalid as failure:"):
                w(f"{failure} = failure")
        w(f"raise most_relevant(({', '.join(failures)},))")

    def tags(self, shape: Shape, prop: str) -> tuple[frozenset[str] | None, bool]:
        """The values ``shape`` allows for property ``prop`` (``None``: any), and if it is required."""
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

    def accepts(self, shape: Shape, json_type: str) -> bool:
        kinds = self.reader.accepted(shape)
        return kinds is None or json_type in kinds


class _Late:
    """A table entry naming a generated function; ``_bind`` swaps in the function itself."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _bind(namespace: dict[str, Any]) -> None:
    """Replace every ``_Late`` in the namespace, and in its tables, by the function it names."""
    for name, value in list(namespace.items()):
        if isinstance(value, _Late):
            namespace[name] = namespace[value.name]
        elif isinstance(value, dict):
            for key, entry in value.items():
                if isinstance(entry, _Late):
                    value[key] = namespace[entry.name]


def _emit_lengths(w: SourceWriter, v: str, path: Path, thing: str, minimum: int | None,
                  maximum: int | None) -> None:
    """minLength/maxLength (``thing`` "string") or minItems/maxItems ("array")."""
    if minimum:
        code = f"empty_{thing}" if minimum == 1 else f"{thing}_below_min_length"
        with w.block(f"if len({v}) < {minimum}:"):
            w(f"raise Invalid({code!r}, {_list(path)}, len({v}), {minimum})")
    if maximum is not None:
        with w.block(f"if len({v}) > {maximum}:"):
            w(f"raise Invalid('{thing}_above_max_length', {_list(path)}, len({v}), {maximum})")


def _list(path: Path) -> str:
    return "[" + ", ".join(path) + "]"


def _applies(shape: Plain, json_type: str) -> bool:
    """Whether ``shape`` has any keyword for values of ``json_type``."""
    if json_type == "string":
        return (shape.enum is not None and any(isinstance(e, str) for e in shape.enum)) or \
            shape.min_length is not None or shape.max_length is not None
    if json_type == "number":
        return any(b is not None for b in (shape.minimum, shape.maximum, shape.exclusive_minimum,
                                           shape.exclusive_maximum))
    if json_type == "array":
        return shape.min_items is not None or shape.max_items is not None or shape.items is not None
    return bool(shape.required or shape.properties or shape.additional is not None or
                shape.max_properties is not None or shape.max_name_length is not None or
                shape.switch is not None)


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
