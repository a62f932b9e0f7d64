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

import orjson

from .load import PACKAGE_ROOT
from .ops import SOURCES
from .paths import WHOLE, fields_read
from .templates import template_variables

OPENAI_SCHEMAS = PACKAGE_ROOT / "schemas" / "openai"

# Which schema describes each payload of each API.
API_SCHEMAS = {
    "openai.responses": {"request": "responses.request", "response": "responses.response",
                         "stream": "responses.stream-event", "error": "error"},
    "openai.chat": {"request": "chat.request", "response": "chat.response",
                    "stream": "chat.chunk", "error": "error"},
}

# Keys of a rule object whose values are evaluated with the same scope as the rule itself.
_SAME_SCOPE_RULE_KEYS = ("otherwise",)
_SAME_SCOPE_RULE_MAPS = ("emit", "cases", "concat", "args")


def rule_reads(rule: Any, maps: dict[str, Any], _seen: frozenset[str] = frozenset()) -> set[str]:
    """Top-level fields of the scope that ``rule`` reads (``WHOLE`` when it reads all of it)."""
    if isinstance(rule, str):
        return fields_read(rule)
    if not isinstance(rule, dict):
        return set()
    reads: set[str] = set()
    for key in ("when", "switch", "each", "from"):
        if isinstance(rule.get(key), str):
            reads |= fields_read(rule[key])
    if isinstance(rule.get("template"), str):
        reads |= template_variables(rule["template"])
    for key in _SAME_SCOPE_RULE_KEYS:
        if key in rule:
            reads |= rule_reads(rule[key], maps, _seen)
    for key in _SAME_SCOPE_RULE_MAPS:
        if isinstance(rule.get(key), dict) and not (key == "cases" and "each" in rule):
            for sub in rule[key].values():
                reads |= rule_reads(sub, maps, _seen)
    if isinstance(rule.get("first"), list):
        for sub in rule["first"]:
            reads |= rule_reads(sub, maps, _seen)
    if _scope_is_unchanged(rule):
        # no source: apply/fn/then see the rule's own scope, so what they read counts here too
        name = rule.get("apply")
        if isinstance(name, str) and name in maps and name not in _seen:
            reads |= rule_reads(maps[name], maps, _seen | {name})
        if "fn" in rule:
            reads.add(WHOLE)
        if "then" in rule:
            reads |= rule_reads(rule["then"], maps, _seen)
    return reads


def _scope_is_unchanged(rule: dict[str, Any]) -> bool:
    return not any(key in rule for key in SOURCES)


def document_reads(fields: dict[str, Any], maps: dict[str, Any]) -> set[str]:
    """Root fields read by a section's field rules."""
    reads: set[str] = set()
    for rule in (fields or {}).values():
        reads |= rule_reads(rule, maps)
    return reads


@lru_cache(maxsize=None)
def schema_properties(schema_name: str) -> tuple[str, ...]:
    """Top-level property names of an OpenAI schema's root object, following ``allOf``/``$ref``."""
    schema = orjson.loads((OPENAI_SCHEMAS / f"{schema_name}.json").read_bytes())
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
