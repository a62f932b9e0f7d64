"""The op vocabulary of the mapping language: one class per op, found by the key it owns.

A rule is a bare string (a JMESPath path), a literal (number, boolean, null, list), or an object whose
keys say what language each part is in. Evaluation order inside one object:

1. **guards**: ``when`` (JMESPath, or a list that must all hold): when falsy, the rule gives no
   value and nothing else runs; ``unless``: the same when truthy.
2. one **source**: ``from`` (JMESPath) | ``value`` (literal) | ``template`` (Jinja2, strings only) |
   ``emit`` (build an object) | ``each`` (map an array) | ``switch``/``cases``/``otherwise`` |
   ``concat`` (join lists) | ``first`` (first rule with a value) | ``id`` (mint an id) | ``now``
   (the clock) | ``reject`` (refuse, 400) | ``drop`` (no value, on purpose, with a reason).
   Without a source the value is the scope itself.
3. **modifiers**, in the order they are written: ``apply`` (a named map) | ``fn`` + ``args`` (a
   registered function) | ``lookup`` (a table) | ``as`` (check and coerce a type) | ``clamp`` |
   ``then`` (a rule run on the value) | ``omit_empty``. A modifier is skipped once the value is null.
4. **checks**: ``required`` (error when there is still no value), then ``default`` (a literal used
   instead).

``None`` means "no value": ``emit`` leaves the field out, ``each`` skips the element. A field whose
rule declares ``default`` (even ``default: null``) is always written.

Each op is a small class (``engine.ops.base`` says what one holds) in ``sources``, ``structure``,
``modifiers`` or ``checks``; the tables below are how the compiler (``engine.codegen``) and the
coverage reader (``engine.coverage``) dispatch to them by key, the way jmespath's visitor dispatches
by node type. ``rule_schema()`` is the rule object's JSON schema as the ops declare it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from ..types import Json
from .base import Check, Guard, Modifier, Op, Source, Where, located, plain, suggest
from .checks import Default, Required, Unless, When
from .modifiers import Apply, As, Clamp, Fn, Lookup, OmitEmpty, Then
from .runtime import COERCIONS, CONTAINERS, Table, case_key, copy_json, expect, fresh, json_type, truthy
from .sources import Drop, From, Id, Now, Reject, Template, Value
from .structure import Concat, Each, Emit, First, Switch

AnyOp = TypeVar("AnyOp", bound=Op)


def _by_key(*ops: AnyOp) -> dict[str, AnyOp]:
    return {op.key: op for op in ops}


SOURCES: dict[str, Source] = _by_key(From(), Value(), Template(), Emit(), Each(), Switch(), Concat(),
                                     First(), Id(), Now(), Reject(), Drop())
MODIFIERS: dict[str, Modifier] = _by_key(Apply(), Fn(), Lookup(), As(), Clamp(), Then(), OmitEmpty())
GUARDS: dict[str, Guard] = _by_key(When(), Unless())
CHECKS: dict[str, Check] = _by_key(Required(), Default())

OPS: dict[str, Op] = {key: op for table in (GUARDS, SOURCES, MODIFIERS, CHECKS)
                      for op in table.values() for key in op.schema}
"""Every key a rule object may hold -> the op that owns it (``cases`` -> ``switch``)."""

EACH_LIST_KEYS = tuple(key for key, op in OPS.items() if op.on_list)
"""Keys of an ``each`` rule that act on the resulting list rather than on each element."""


def rule_schema() -> dict[str, Json]:
    """The JSON schema of a rule object (``$defs.ruleObject``), from the ops' own pieces."""
    properties: dict[str, Json] = {}
    requires: dict[str, Any] = {}
    for op in dict.fromkeys(OPS.values()):
        properties.update(op.schema)
        requires.update(op.requires)
    return {"type": "object", "additionalProperties": False, "properties": properties,
            "dependentRequired": requires}


__all__ = [
    "CHECKS", "COERCIONS", "CONTAINERS", "EACH_LIST_KEYS", "GUARDS", "MODIFIERS", "OPS", "SOURCES",
    "Check", "Guard", "Modifier", "Op", "Source", "Table", "Where", "case_key", "copy_json", "expect",
    "fresh", "json_type", "located", "plain", "rule_schema", "suggest", "truthy",
]
