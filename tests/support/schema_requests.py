"""Hypothesis strategies for requests drawn from a client API's schema (``schemas/openai/``).

The vendored request schemas are large (the Responses one has some 200 definitions, unions of
thirty item kinds, recursion), so a general JSON Schema generator is slow on them. This one walks
the same normalised form request validation compiles (``engine.validation.shapes``) and keeps
every example small: arrays of at most two elements, short strings, numbers near their bounds,
a few optional members per object, and a depth past which only required members are drawn.

What it draws is valid for the keywords request validation checks; ``pattern`` and ``format`` are
not honoured, like the validator, so a drawn value may still be one OpenAI refuses for those.
``valid_requests`` filters through the compiled validator, so every example it yields passes it.

``wrong_value`` gives, for a top-level field, a value the schema refuses: a wrong JSON type, a
number past a bound, or a string outside an enum.
"""

from __future__ import annotations

import string
from functools import lru_cache
from typing import Any

import orjson
from hypothesis import strategies as st

from mapper.engine.apis import schema_path
from mapper.engine.validation.shapes import ANY, Plain, Reader, Ref, Shape, Union
from mapper.engine.validation.supplement import supplement

Json = Any
MAX_DEPTH = 4
SIZES = {"max_items": 2, "max_text": 6, "optional": 3}
_TEXT = st.text(string.ascii_letters + string.digits + " _-", max_size=SIZES["max_text"])


@lru_cache(maxsize=None)
def reader(schema: str) -> Reader:
    document = orjson.loads(schema_path(schema).read_bytes())
    return Reader(supplement(schema, document))


def root(schema: str) -> Plain:
    shape = reader(schema).resolve(reader(schema).root())
    assert isinstance(shape, Plain)
    return shape


class Drawer:
    """Strategies for the values of one schema's shapes."""

    def __init__(self, schema: str) -> None:
        self.reader = reader(schema)

    def values(self, shape: Shape, depth: int = 0) -> st.SearchStrategy[Json]:
        if isinstance(shape, Ref):
            target = self.reader.resolve(shape)
            if isinstance(target, Ref):  # a cycle: nothing to draw from
                return st.nothing()
            return st.deferred(lambda: self.values(target, depth + 1))
        if isinstance(shape, Union):
            members = [self.values(m, depth) for m in shape.members]
            return st.one_of(*members, *([st.none()] if shape.nullable else []))
        return self.plain(shape, depth)

    def plain(self, shape: Plain, depth: int) -> st.SearchStrategy[Json]:
        if shape == ANY:
            return st.one_of(st.none(), st.booleans(), st.integers(-3, 3), _TEXT)
        if shape.also and shape == Plain(types=shape.types, also=shape.also):
            return self.values(shape.also[0], depth)  # e.g. {"type": "object"} beside a union
        if shape.enum is not None:
            return st.sampled_from([v for v in shape.enum])
        kinds = sorted(shape.types) if shape.types is not None else ["string"]
        return st.one_of(*(self.of_type(shape, kind, depth) for kind in kinds))

    def of_type(self, shape: Plain, kind: str, depth: int) -> st.SearchStrategy[Json]:
        if kind == "null":
            return st.none()
        if kind == "boolean":
            return st.booleans()
        if kind == "string":
            low = shape.min_length or 0
            high = max(low, min(shape.max_length if shape.max_length is not None else 6, low + 6))
            return st.text(string.ascii_letters + string.digits, min_size=low, max_size=high)
        if kind in ("integer", "number"):
            low = shape.minimum if shape.minimum is not None else -3
            high = shape.maximum if shape.maximum is not None else low + 1000
            if shape.exclusive_minimum is not None:
                low = shape.exclusive_minimum + 1
            if shape.exclusive_maximum is not None:
                high = shape.exclusive_maximum - 1
            if kind == "integer":
                return st.integers(int(low), int(max(low, min(high, low + 1000))))
            return st.floats(float(low), float(max(low, min(high, low + 1000))),
                             allow_nan=False, allow_infinity=False)
        if kind == "array":
            items = self.values(shape.items, depth + 1) if shape.items is not None else \
                self.plain(ANY, depth)
            low = shape.min_items or 0
            high = low if depth >= MAX_DEPTH else max(low, min(shape.max_items or SIZES["max_items"],
                                                               SIZES["max_items"]))
            return st.lists(items, min_size=low, max_size=high)
        return self.object(shape, depth)

    def object(self, shape: Plain, depth: int) -> st.SearchStrategy[Json]:
        if shape.switch is not None:
            cases = [self.case(shape, value, then, depth) for value, then in shape.switch.cases]
            return st.one_of(*cases)
        properties = dict(shape.properties)
        required = {name: self.values(properties.get(name, ANY), depth + 1) for name in shape.required}
        optional = {} if depth >= MAX_DEPTH else {
            name: self.values(sub, depth + 1) for name, sub in properties.items()
            if name not in shape.required}
        base = st.fixed_dictionaries(required, optional=optional)
        if shape.additional is not None and not properties:
            extra = st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=4),
                                    self.values(shape.additional, depth + 1), max_size=2)
            return st.tuples(base, extra).map(lambda pair: {**pair[1], **pair[0]})
        return base

    def case(self, shape: Plain, value: str, then: Shape, depth: int) -> st.SearchStrategy[Json]:
        """One variant of a dispatched union, with its discriminator set to ``value``."""
        prop = shape.switch.property  # type: ignore[union-attr]
        return self.values(then, depth).filter(lambda v: isinstance(v, dict)).map(
            lambda v: {**v, prop: value})


# -- top-level requests --------------------------------------------------------------------------


def requests(schema: str, must: dict[str, st.SearchStrategy[Json]], *,
             optional: int = SIZES["optional"]) -> st.SearchStrategy[dict[str, Json]]:
    """Requests with the ``must`` fields and up to ``optional`` other top-level fields, each drawn
    from its schema."""
    drawer = Drawer(schema)
    top = dict(root(schema).properties)
    names = sorted(name for name in top if name not in must)

    @st.composite
    def draw(draw_one: Any) -> dict[str, Json]:
        body = {name: draw_one(strategy) for name, strategy in must.items()}
        for name in draw_one(st.lists(st.sampled_from(names), max_size=optional, unique=True)):
            body[name] = draw_one(drawer.values(top[name], 1))
        return body

    return draw()


def field_shape(schema: str, name: str) -> Shape:
    return dict(root(schema).properties)[name]


def wrong_value(schema: str, name: str) -> st.SearchStrategy[Json] | None:
    """A value of top-level field ``name`` that its schema refuses (never null), or None if the
    field accepts anything."""
    shape = reader(schema).resolve(field_shape(schema, name))
    kinds = reader(schema).accepted(shape)
    if kinds is None:
        return None
    wrong: list[st.SearchStrategy[Json]] = []
    samples = {"string": _TEXT, "boolean": st.booleans(), "integer": st.integers(-5, 5),
               "number": st.integers(-5, 5).map(lambda n: n + 0.5),
               "array": st.lists(st.integers(), max_size=1), "object": st.just({"x": 1})}
    for kind, strategy in samples.items():
        # an integer is a number; a decimal is refused only where an integer is expected
        if kind not in kinds and not (kind == "integer" and "number" in kinds):
            wrong.append(strategy)
    if isinstance(shape, Plain):
        # a bound past float precision (seed's +-9.2e18) has no neighbour to step to
        if shape.minimum is not None and shape.minimum - 1 != shape.minimum:
            wrong.append(st.just(shape.minimum - 1))
        if shape.maximum is not None and shape.maximum + 1 != shape.maximum:
            wrong.append(st.just(shape.maximum + 1))
        if shape.enum is not None and all(isinstance(v, str) for v in shape.enum if v is not None):
            wrong.append(_TEXT.filter(lambda text: text not in shape.enum))
    return st.one_of(*wrong) if wrong else None
