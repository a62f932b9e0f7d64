"""How an overlay changes the spec it extends, and the reverse: what a resolved spec changed.

An overlay says only what differs from its base:

* objects merge key by key, at any depth: a rule's ``emit:`` fields, a table's ``rows``, a section's
  field map, stream kinds and their events;
* ``null`` deletes the key it is written for, at any depth (a key the base lacks stays absent);
* a key the base lacks is added after the base's keys, exactly as written (``default: null`` inside
  a new rule is kept);
* lists and plain values replace the base's whole;
* an object tagged ``!replace`` replaces the base's object whole;
* a **rule whose source changes is replaced whole**: when merging would leave a rule with two
  sources (``drop`` from the base, ``emit`` from the overlay), the overlay's rule takes the base's
  place. A stream rule's action (``feed``, ``finish``, ``usage``, ``error``) counts the same way.
  Writing ``null`` for the base's source instead keeps the rest of the base's rule.

Which objects are rules is read from ``schemas/mapping-1.schema.json`` (``$defs/ruleObject`` and
``$defs/streamRule``) by walking it beside the spec, so an ``emit:`` field that happens to be called
``value`` or ``id`` is never mistaken for a source.

``changes(base, resolved)`` is the smallest overlay that turns ``base`` into ``resolved`` under these
rules (``merge(base, changes(base, resolved)) == resolved``); ``mapper resolve --changes`` prints it.
"""

from __future__ import annotations

from typing import Any

from .nodes import LineDict, LineList, Replace, new_dict
from .ops import SOURCES
from .schema import mapping_schema

# The keys that say what kind of thing a rule is, by the schema definition of that rule; one rule
# holds at most one of them.
RULE_KINDS = {
    "ruleObject": SOURCES,
    "streamRule": ("feed", "finish", "usage", "error"),
}

Schema = dict[str, Any] | None


def merge(base: LineDict, overlay: LineDict, *, null_deletes: bool = True) -> LineDict:
    """``base`` changed by ``overlay``; neither is modified. Keys remember who wrote them last.

    ``null_deletes=False`` merges a file that is not an overlay (a base over the parts it
    includes, a part): its ``null`` is a value, as in any mapping written whole.
    """
    return _merge(base, overlay, _resolve(mapping_schema(), overlay), null_deletes)


def _merge(base: LineDict, overlay: LineDict, schema: Schema, null_deletes: bool = True) -> LineDict:
    merged = new_dict(getattr(base, "file", None), getattr(base, "line", None))
    merged.update(base)
    merged.key_lines = dict(getattr(base, "key_lines", {}))
    if getattr(overlay, "line", None) is not None:  # the object is now (also) the overlay's
        merged.file, merged.line = overlay.file, overlay.line
    for key, value in overlay.items():
        if value is None and null_deletes:
            merged.pop(key, None)
            merged.key_lines.pop(key, None)
            continue
        child = _resolve(_child(schema, key), value)
        old = merged.get(key)
        if (isinstance(old, dict) and isinstance(value, dict) and not isinstance(value, Replace)
                and not changes_kind(old, value, child)):
            merged[key] = _merge(old, value, child, null_deletes)
        else:
            merged[key] = as_written(value)
        lines = getattr(overlay, "key_lines", None)
        if lines and key in lines:
            merged.key_lines[key] = lines[key]
    return merged


def changes_kind(old: dict[str, Any], new: dict[str, Any], schema: Schema) -> bool:
    """Whether merging ``new`` into the rule ``old`` would leave it with two sources (or actions)."""
    kinds = _kinds(schema)
    if not kinds:
        return False
    kept = {key for key in kinds if key in old and (key not in new or new[key] is not None)}
    added = {key for key in kinds if new.get(key) is not None}
    return len(kept | added) > 1


def as_written(node: Any) -> Any:
    """``node`` with every ``Replace`` inside turned into a plain node (the tag has done its job)."""
    if isinstance(node, dict):
        children = {key: as_written(value) for key, value in node.items()}
        if type(node) is not Replace and all(children[key] is node[key] for key in node):
            return node
        copy = new_dict(getattr(node, "file", None), getattr(node, "line", None))
        copy.update(children)
        copy.key_lines = dict(getattr(node, "key_lines", {}))
        return copy
    if isinstance(node, list):
        items = [as_written(item) for item in node]
        if all(new is old for new, old in zip(items, node)):
            return node
        copy = LineList(items)
        copy.file, copy.line = getattr(node, "file", None), getattr(node, "line", None)
        copy.item_lines = getattr(node, "item_lines", [])
        return copy
    return node


# -- the reverse: what changed ----------------------------------------------------------------


def changes(base: dict[str, Any], resolved: dict[str, Any]) -> dict[str, Any]:
    """The smallest overlay that turns ``base`` into ``resolved`` (both plain data).

    Unchanged keys are left out, a deleted key is ``None``, a changed object shows only what changed
    in it, a rule whose source changed shows whole, and an object that gained a ``null`` value (which
    no merge can write) is a ``Replace`` of the whole object.
    """
    found = _changes(base, resolved, _resolve(mapping_schema(), resolved))
    return dict(found) if isinstance(found, Replace) else found


def _changes(base: dict[str, Any], resolved: dict[str, Any], schema: Schema) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in resolved.items():
        if key in base and same(base[key], value):
            continue
        if value is None:
            return _replacement(resolved)  # a null value can only be written by replacing its object
        old = base.get(key)
        child = _resolve(_child(schema, key), value)
        if isinstance(old, dict) and isinstance(value, dict) and not changes_kind(old, value, child):
            found[key] = _changes(old, value, child)
        else:
            found[key] = value
    for key in base:
        if key not in resolved:
            found[key] = None
    return found


def _replacement(resolved: dict[str, Any]) -> Replace:
    replacement = Replace(resolved)
    replacement.file, replacement.line, replacement.key_lines = None, None, {}
    return replacement


def same(a: Any, b: Any) -> bool:
    """JSON equality: ``True`` is not ``1``, key order does not matter, tuples are lists."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


# -- where a node sits in the schema ----------------------------------------------------------


def _resolve(schema: Any, value: Any) -> Schema:
    """The object schema that applies to ``value``: ``$ref`` followed, ``if: {type: object}`` decided."""
    definitions = mapping_schema()["$defs"]
    for _ in range(8):  # a chain of references is short; a loop in the schema must not hang us
        if not isinstance(schema, dict):
            return None
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            schema = definitions.get(reference.rsplit("/", 1)[-1])
        elif schema.get("if") == {"type": "object"}:
            schema = schema.get("then" if isinstance(value, dict) else "else")
        else:
            return schema
    return None


def _child(schema: Schema, key: Any) -> Any:
    if schema is None:
        return None
    properties = schema.get("properties") or {}
    if key in properties:
        return properties[key]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def _kinds(schema: Schema) -> tuple[str, ...]:
    if schema is None:
        return ()
    definitions = mapping_schema()["$defs"]
    for name, kinds in RULE_KINDS.items():
        if definitions.get(name) is schema:
            return kinds
    return ()
