"""Rules the vendored schemas lack, kept as data: ``schemas/validation-supplement.json``.

``schemas/openai/`` is copied unchanged from OpenAI's OpenAPI description, and that description
leaves out some limits the live API enforces (``max_tool_calls`` at least 1, ``metadata`` at most
16 pairs...) and requires a few members the live API does without. The supplement lists each
departure as an edit at a JSON Pointer into one schema, with the reason and the evidence, so the
rules stay reviewable and are reapplied to a refreshed schema; an edit whose pointer no longer
resolves fails loudly (``tests/test_validation.py`` applies them all).

Edits:

    {"at": "/$defs/X/properties/n", "merge": {"minimum": 1}}       add or replace keywords
    {"at": "/$defs/X/required", "remove": ["strict"]}               drop values from a list
    {"at": "/$defs/X/properties/y", "accept": {"type": "string"}}   also allow another schema
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

import orjson

from ..load import PACKAGE_ROOT

SUPPLEMENT = PACKAGE_ROOT / "schemas" / "validation-supplement.json"


@lru_cache(maxsize=1)
def _supplement() -> dict[str, Any]:
    return orjson.loads(SUPPLEMENT.read_bytes())


def edits(schema_name: str) -> list[dict[str, Any]]:
    """The supplement's edits of ``schemas/<schema_name>.json`` (``folder/stem``), in file order."""
    return list(_supplement()["schemas"].get(schema_name, ()))


def supplement(schema_name: str, document: dict[str, Any]) -> dict[str, Any]:
    """Apply the supplement's edits of ``schema_name`` to ``document`` (in place) and return it."""
    return apply_edits(document, edits(schema_name), schema_name)


def apply_edits(document: dict[str, Any], changes: list[dict[str, Any]],
                schema_name: str = "") -> dict[str, Any]:
    """Apply ``changes`` (supplement edits) to ``document`` in place. Raises ``ValueError``."""
    patched = document
    for edit in changes:
        where = edit["at"]
        parent, key = _locate(patched, where)
        node = parent[key]
        if "merge" in edit:
            if not isinstance(node, dict):
                raise ValueError(f"{schema_name}{where}: 'merge' needs an object")
            node.update(copy.deepcopy(edit["merge"]))
        elif "remove" in edit:
            missing = [value for value in edit["remove"] if not isinstance(node, list) or
                       value not in node]
            if missing:
                raise ValueError(f"{schema_name}{where}: nothing to remove for {missing}")
            parent[key] = [value for value in node if value not in edit["remove"]]
        elif "accept" in edit:
            parent[key] = {"anyOf": [node, copy.deepcopy(edit["accept"])]}
        else:
            raise ValueError(f"{schema_name}{where}: an edit needs merge, remove or accept")
    return patched


def _locate(document: Any, pointer: str) -> tuple[Any, str | int]:
    """The container holding the node at ``pointer`` (RFC 6901), and its key there."""
    if not pointer.startswith("/"):
        raise ValueError(f"not a JSON Pointer: {pointer!r}")
    steps = [step.replace("~1", "/").replace("~0", "~") for step in pointer[1:].split("/")]
    node = document
    for step in steps[:-1]:
        node = _step(node, step, pointer)
    last: str | int = int(steps[-1]) if isinstance(node, list) else steps[-1]
    _step(node, steps[-1], pointer)
    return node, last


def _step(node: Any, step: str, pointer: str) -> Any:
    try:
        return node[int(step)] if isinstance(node, list) else node[step]
    except (KeyError, IndexError, ValueError, TypeError):
        raise ValueError(f"{pointer} does not resolve (at {step!r})") from None
