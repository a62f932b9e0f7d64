"""Which source fields a mapping reads, and which fields of the source API it leaves unaccounted for.

Coverage is how mapper keeps its promise that nothing is lost silently. Every top-level property of
the source API's schema must be *read* by some rule, *dropped* with a reason, *rejected* with a
message, or *passed through*. ``mapper lint`` fails on any other property, so when OpenAI adds a
field and the schemas in ``schemas/openai/`` are refreshed, the gap shows up before a user hits it.

The same analysis gives the request converter its set of known fields: a request field that no rule
knows is refused with a 400 that names it, the way OpenAI refuses an unknown parameter.

"Reads" is worked out from the rules themselves, so it cannot drift from what they do: a rule reads
the root fields its JMESPath expressions touch *while the scope is still the document root*. Inside
``each`` the scope is an element, after ``from`` it is the value read, so deeper paths don't count.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .apis import APIS, schema_document, schema_name
from .ops import OPS, SOURCES
from .paths import fields_read

# Which schema describes each payload of each API: ``folder/stem`` under schemas/ (engine.apis).
API_SCHEMAS = {api: {kind: schema_name(api, kind) for kind in entry.schemas}
               for api, entry in APIS.items()}


def rule_reads(rule: Any, maps: dict[str, Any], _seen: frozenset[str] = frozenset()) -> set[str]:
    """Top-level fields of the scope that ``rule`` reads (``WHOLE`` when it reads all of it).

    Each op says what its keys read (``engine.ops``); in an ``each`` rule only the keys that act on
    the list count, since the others read the elements.
    """
    if isinstance(rule, str):
        return fields_read(rule)
    if not isinstance(rule, dict):
        return set()
    reader = _Reader(maps, _seen, scope_unchanged=not any(key in rule for key in SOURCES))
    each = "each" in rule
    reads: set[str] = set()
    for op in dict.fromkeys(OPS[key] for key in rule if key in OPS):
        if not each or op.on_list:
            reads |= op.reads(rule, reader)
    return reads


class _Reader:
    """What an op's ``reads`` may ask: the reads of a nested rule or of a named map."""

    __slots__ = ("maps", "seen", "scope_unchanged")

    def __init__(self, maps: dict[str, Any], seen: frozenset[str], *, scope_unchanged: bool) -> None:
        self.maps = maps
        self.seen = seen
        self.scope_unchanged = scope_unchanged

    def rule(self, spec: Any) -> set[str]:
        return rule_reads(spec, self.maps, self.seen)

    def map(self, name: Any) -> set[str]:
        if not isinstance(name, str) or name not in self.maps or name in self.seen:
            return set()  # a map that reaches itself again adds nothing new
        return rule_reads(self.maps[name], self.maps, self.seen | {name})


def document_reads(fields: dict[str, Any], maps: dict[str, Any]) -> set[str]:
    """Root fields read by a section's field rules."""
    reads: set[str] = set()
    for rule in (fields or {}).values():
        reads |= rule_reads(rule, maps)
    return reads


@lru_cache(maxsize=None)
def schema_properties(name: str) -> tuple[str, ...]:
    """Top-level property names of a schema's root object (``folder/stem``), through ``allOf``/``$ref``."""
    schema = schema_document(name)
    definitions = schema.get("$defs", {})

    def collect(node: dict[str, Any], into: set[str]) -> None:
        if "$ref" in node:
            collect(definitions[node["$ref"].rsplit("/", 1)[-1]], into)
        for sub in node.get("allOf", []):
            collect(sub, into)
        into.update(node.get("properties", {}))

    names: set[str] = set()
    collect(schema, names)
    return tuple(sorted(names))


def gaps(source_properties: tuple[str, ...], accounted: set[str]) -> list[str]:
    """Properties of the source schema that no rule reads, drops, rejects or passes through."""
    return [name for name in source_properties if name not in accounted]
