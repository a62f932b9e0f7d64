"""The subset of JSON Schema that request validation checks, read into a small, normalised form.

OpenAI's schemas (``schemas/openai/``) are large and written for documentation and SDK generation:
``allOf`` chains of shared property sets, ``anyOf`` with ``null`` for optional values, unions of
objects told apart by a ``type`` (or ``role``) property, and discriminated unions that the bundle's
generator rewrote as ``allOf`` lists of ``if``/``then`` pairs. Reading them into ``Shape`` nodes
first makes the code generator (``engine.validation.generate``) simple:

* ``Ref``: a ``$defs`` entry, compiled once as a function of its own (so recursion works);
* ``Union``: ``anyOf``/``oneOf``, flattened, with ``null`` members folded into ``nullable``;
* ``Plain``: everything else: allowed JSON types plus the keywords of the subset (``enum``/``const``,
  ``minimum``/``maximum``/``exclusive*``, ``minLength``/``maxLength``, ``minItems``/``maxItems``,
  ``items``, ``properties``/``required``/``additionalProperties``, ``maxProperties``,
  ``propertyNames``), ``allOf`` object parts merged into one property set, an ``if``/``then``
  dispatch kept as a ``Switch`` on its property, and whatever could not be merged in ``also``.

Keywords outside the subset (``pattern``, ``format``, ``not``...) are ignored: validation refuses
less rather than more. So is ``additionalProperties: false``: an unknown property is not a
validation error (the mapping's unknown-field policy decides what happens to it). And a
``Switch`` does not refuse a discriminator value it does not know, such as a tool ``type`` newer
than the schema: the mapping maps, drops or refuses such a member by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from ..ops import json_type

JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")
_SCALARS = frozenset({"string", "integer", "number", "boolean", "null"})


@dataclass(frozen=True)
class Ref:
    """A ``$defs`` entry by name."""

    name: str


@dataclass(frozen=True)
class Union:
    """``anyOf``/``oneOf``: the value must satisfy one member (``null`` too when ``nullable``)."""

    members: tuple["Shape", ...]
    nullable: bool = False


@dataclass(frozen=True)
class Switch:
    """An ``if``/``then`` dispatch on a string property: each known value names the schema to check."""

    property: str
    cases: tuple[tuple[str, "Shape"], ...]


@dataclass(frozen=True)
class Plain:
    """One schema's own keywords. ``types`` is ``None`` when any JSON type is allowed."""

    types: frozenset[str] | None = None
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    items: "Shape | None" = None
    properties: tuple[tuple[str, "Shape"], ...] = ()
    required: tuple[str, ...] = ()
    additional: "Shape | None" = None
    max_properties: int | None = None
    max_name_length: int | None = None  # propertyNames: {maxLength}
    switch: Switch | None = None
    also: tuple["Shape", ...] = field(default=())  # further schemas the value must satisfy

    @property
    def nullable(self) -> bool:
        return self.types is not None and "null" in self.types

    def property(self, name: str) -> "Shape | None":
        for key, shape in self.properties:
            if key == name:
                return shape
        return None


Shape = Ref | Union | Plain
ANY = Plain()


class Reader:
    """Reads one schema document (a root plus ``$defs``) into ``Shape`` nodes, ``$defs`` by name."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.raw_defs: dict[str, Any] = document.get("$defs", {})
        self.defs: dict[str, Shape] = {}

    def root(self) -> Shape:
        return self.read({key: value for key, value in self.document.items() if key != "$defs"})

    def definition(self, name: str) -> Shape:
        """The shape of ``$defs/name``, read once (a placeholder ``Ref`` guards recursion)."""
        if name not in self.defs:
            if name not in self.raw_defs:
                raise KeyError(f"$defs/{name} is not in the schema")
            self.defs[name] = Ref(name)  # a cycle reads as a reference to itself
            self.defs[name] = self.read(self.raw_defs[name])
        return self.defs[name]

    def resolve(self, shape: Shape) -> Shape:
        """Follow references until a ``Union`` or ``Plain``."""
        seen: set[str] = set()
        while isinstance(shape, Ref) and shape.name not in seen:
            seen.add(shape.name)
            shape = self.definition(shape.name)
        return shape

    # -- reading ----------------------------------------------------------------------------------

    def read(self, schema: Any) -> Shape:
        if schema is True or schema == {}:
            return ANY
        if not isinstance(schema, dict):
            raise ValueError(f"not a schema: {schema!r}")
        parts: list[Shape] = []
        if "$ref" in schema:
            parts.append(Ref(_def_name(schema["$ref"])))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                parts.append(self._union(self.read(member) for member in schema[key]))
        own = self._own(schema)
        if own != ANY:
            parts.append(own)
        for member in schema.get("allOf", ()):
            if set(member) >= {"if", "then"}:
                continue  # read with the other if/then pairs by _own
            parts.append(self.read(member))
        return self._all(parts)

    def _own(self, schema: dict[str, Any]) -> Plain:
        kinds = schema.get("type")
        types = frozenset([kinds] if isinstance(kinds, str) else kinds) if kinds is not None else None
        enum = schema.get("enum")
        if "const" in schema:
            enum = [schema["const"]]
        if enum is not None:
            enum = tuple(enum)
            if types is None:
                types = frozenset(json_type(value) for value in enum)
        switch = self._switch([m for m in schema.get("allOf", ()) if set(m) >= {"if", "then"}])
        properties = tuple((name, self.read(sub)) for name, sub in schema.get("properties", {}).items())
        if switch is not None:
            # the base lists every known discriminator value; an unknown one is not refused here
            properties = tuple((name, Plain(types=frozenset({"string"}))) if name == switch.property
                               else (name, shape) for name, shape in properties)
        additional = schema.get("additionalProperties")
        names = schema.get("propertyNames") or {}
        return Plain(
            types=types,
            enum=enum,
            minimum=schema.get("minimum"),
            maximum=schema.get("maximum"),
            exclusive_minimum=_number(schema.get("exclusiveMinimum")),
            exclusive_maximum=_number(schema.get("exclusiveMaximum")),
            min_length=schema.get("minLength"),
            max_length=schema.get("maxLength"),
            min_items=schema.get("minItems"),
            max_items=schema.get("maxItems"),
            items=self.read(schema["items"]) if isinstance(schema.get("items"), dict) else None,
            properties=properties,
            required=tuple(schema.get("required", ())),
            additional=self.read(additional) if isinstance(additional, dict) and additional else None,
            max_properties=schema.get("maxProperties"),
            max_name_length=names.get("maxLength") if isinstance(names, dict) else None,
            switch=switch,
        )

    def _switch(self, pairs: list[dict[str, Any]]) -> Switch | None:
        """``allOf: [{if: {properties: {P: {enum: [v]}}}, then: S}, ...]`` as a dispatch on P."""
        if not pairs:
            return None
        cases: list[tuple[str, Shape]] = []
        names = set()
        for pair in pairs:
            condition = pair["if"].get("properties", {})
            if len(condition) != 1:
                raise ValueError(f"an if/then dispatch on {sorted(condition)} is not supported")
            (name, test), = condition.items()
            names.add(name)
            then = self.read(pair["then"])
            values = test.get("enum", [test["const"]] if "const" in test else [])
            cases.extend((str(value), then) for value in values)
        if len(names) != 1:
            raise ValueError(f"an if/then dispatch on several properties: {sorted(names)}")
        return Switch(names.pop(), tuple(cases))

    # -- combining --------------------------------------------------------------------------------

    def _union(self, members: Iterable[Shape]) -> Shape:
        flat: list[Shape] = []
        nullable = False
        for member in members:
            alternatives, member_nullable = self._alternatives(member)
            nullable |= member_nullable
            flat.extend(m for m in alternatives if m not in flat)
        if any(m == ANY for m in flat):
            return ANY
        flat = [m for m in flat if not any(_subsumes(self.resolve(other), self.resolve(m))
                                            for other in flat if other is not m)]
        if len(flat) == 1 and not nullable:
            return flat[0]
        if len(flat) == 1 and isinstance(flat[0], Plain) and flat[0].types is not None:
            return replace(flat[0], types=flat[0].types | {"null"})
        return Union(tuple(flat), nullable)

    def _alternatives(self, member: Shape) -> tuple[list[Shape], bool]:
        """The members ``member`` contributes to a union it is in, flattening nested unions (also
        behind a ``$ref``, or behind an object node that only says ``type: object``)."""
        if isinstance(member, Plain) and member == Plain(types=member.types) and \
                member.types == frozenset({"null"}):
            return [], True
        shape = self.resolve(member)
        if isinstance(shape, Plain) and len(shape.also) == 1 and \
                shape == Plain(types=shape.types, also=shape.also):
            inner = self.resolve(shape.also[0])
            if isinstance(inner, Union) and (shape.types is None or all(
                    self.accepted(m) is not None and self.accepted(m) <= shape.types
                    for m in inner.members)):
                shape = inner
        if isinstance(shape, Union):
            return list(shape.members), shape.nullable
        return [member], False

    def accepted(self, shape: Shape, _seen: frozenset[str] = frozenset()) -> frozenset[str] | None:
        """The JSON types ``shape`` can accept at all (``None``: any), for type dispatch."""
        if isinstance(shape, Ref):
            if shape.name in _seen:
                return None
            return self.accepted(self.definition(shape.name), _seen | {shape.name})
        if isinstance(shape, Union):
            found: set[str] = {"null"} if shape.nullable else set()
            for member in shape.members:
                kinds = self.accepted(member, _seen)
                if kinds is None:
                    return None
                found |= kinds
            return frozenset(found)
        kinds = shape.types
        for part in shape.also:
            more = self.accepted(part, _seen)
            if more is not None:
                kinds = more if kinds is None else kinds & more
        if kinds is not None and "number" in kinds:
            kinds = kinds | {"integer"}  # an integer is a number
        return kinds

    def _all(self, parts: list[Shape]) -> Shape:
        """The conjunction of ``parts``: object property sets merge, the rest go to ``also``."""
        parts = [p for p in parts if p != ANY]
        if not parts:
            return ANY
        if len(parts) == 1:
            return parts[0]
        merged: Plain | None = None
        rest: list[Shape] = []
        for part in parts:
            plain = self._mergeable(part)
            if plain is None:
                rest.append(part)
            elif merged is None:
                merged = plain
            else:
                merged = _merge(merged, plain)
        if merged is None:
            return Plain(also=tuple(rest))
        rest = [r for r in rest if not _implied_by(merged, r)]
        return replace(merged, also=merged.also + tuple(r for r in rest if r not in merged.also))

    def _mergeable(self, part: Shape) -> Plain | None:
        """``part`` as a ``Plain`` that can merge with others: a plain object, or a type-only node."""
        shape = self.resolve(part)
        if not isinstance(shape, Plain) or shape.switch is not None or shape.enum is not None:
            return None
        if shape.types == frozenset({"object"}) or (
                shape.types is None and (shape.properties or shape.required) and
                shape == Plain(properties=shape.properties, required=shape.required,
                               also=shape.also)):
            return shape
        return None


def _subsumes(wide: Shape, narrow: Shape) -> bool:
    """``wide`` accepts every value ``narrow`` does: a bare ``{"type": T}`` beside a constrained
    member of the same type (a model id enum beside any string), which the union can drop."""
    return isinstance(wide, Plain) and isinstance(narrow, Plain) and wide.types is not None and \
        wide == Plain(types=wide.types) and narrow.types is not None and \
        narrow.types <= wide.types and narrow != wide


def _merge(left: Plain, right: Plain) -> Plain:
    """Two object schemas that must both hold, as one: properties and requirements combined."""
    properties = dict(left.properties)
    for name, shape in right.properties:
        if name in properties and properties[name] != shape:
            properties[name] = Plain(also=(properties[name], shape))
        else:
            properties[name] = shape
    types = left.types if right.types is None else right.types if left.types is None \
        else left.types & right.types
    also = left.also + tuple(a for a in right.also if a not in left.also)
    for keyword in ("additional", "max_properties", "max_name_length"):
        if getattr(left, keyword) is not None and getattr(right, keyword) is not None and \
                getattr(left, keyword) != getattr(right, keyword):
            also += (Plain(**{keyword: getattr(right, keyword)}),)
    return replace(left, types=types, properties=tuple(properties.items()),
                   required=tuple(dict.fromkeys(left.required + right.required)),
                   additional=left.additional or right.additional,
                   max_properties=left.max_properties or right.max_properties,
                   max_name_length=left.max_name_length or right.max_name_length, also=also)


def _implied_by(plain: Plain, shape: Shape) -> bool:
    """A type-only part that the merged node already checks (``{"type": "object"}`` beside a $ref)."""
    return isinstance(shape, Plain) and shape == Plain(types=shape.types) and \
        plain.types is not None and shape.types is not None and plain.types <= shape.types


def _def_name(reference: str) -> str:
    prefix = "#/$defs/"
    if not reference.startswith(prefix):
        raise ValueError(f"only local $defs references are supported, not {reference!r}")
    return reference[len(prefix):]


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def is_scalar(shape: Plain) -> bool:
    """A node whose check needs no loop and no call: scalar types only, nothing in ``also``."""
    return shape.types is not None and shape.types <= _SCALARS and not shape.also
