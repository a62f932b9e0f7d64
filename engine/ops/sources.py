"""The leaf sources: a rule's value read from the scope, written literally, rendered, minted or refused.

``from`` (JMESPath), ``value`` (a literal), ``template`` (Jinja2, strings only), ``id`` and ``now``
(from the context's id factory and clock), ``reject`` (refuse the input, 400) and ``drop`` (no value,
on purpose). The sources built from other rules are in ``engine.ops.structure``.
"""

from __future__ import annotations

from typing import Any

from ..errors import SpecError
from ..paths import fields_read
from ..source import NONE, Code, SourceWriter
from ..templates import template_variables
from .base import Builder, Reader, Source, Spec, Where

_TEXT = {"type": "string", "minLength": 1}


class From(Source):
    """``from: EXPR``: a JMESPath read of the scope (a bare string rule is the same)."""

    key = "from"
    schema = {"from": _TEXT}

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, scope: str,
                where: Where) -> Code:
        return c.path(w, value, scope, where)

    def reads(self, spec: Spec, reader: Reader) -> set[str]:
        return fields_read(spec["from"]) if isinstance(spec["from"], str) else set()


class Value(Source):
    """``value: LITERAL``: a literal; containers are copied per use."""

    key = "value"
    schema = {"value": True}

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, scope: str,
                where: Where) -> Code:
        return c.literal(w, value)


class Template(Source):
    """``template: "..."``: Jinja2 rendering into a string."""

    key = "template"
    schema = {"template": {"type": "string"}}

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, scope: str,
                where: Where) -> Code:
        return c.template(w, value, scope, where)

    def reads(self, spec: Spec, reader: Reader) -> set[str]:
        source = spec["template"]
        return template_variables(source) if isinstance(source, str) else set()


class Id(Source):
    """``id: PREFIX``: a fresh id from the context's factory (``resp`` gives ``resp_...``)."""

    key = "id"
    schema = {"id": {"type": "string", "pattern": "^[a-z]+[-_]?$",
                     "description": "id prefix; resp gives resp_<random>, chatcmpl- gives chatcmpl-<random>"}}

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, scope: str,
                where: Where) -> Code:
        if not isinstance(value, str) or not value:
            raise where.error(SpecError, "id takes a prefix such as resp, msg or chatcmpl-")
        target = w.var("i")
        w(f"{target} = ctx.new_id({value!r})")
        return Code(target, nullable=False, fresh=True)


class Now(Source):
    """``now: seconds``: the context's clock."""

    key = "now"
    schema = {"now": {"const": "seconds"}}

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, scope: str,
                where: Where) -> Code:
        target = w.var("n")
        w(f"{target} = ctx.now()")
        return Code(target, nullable=False, fresh=True)


class Reject(Source):
    """``reject: "message"``: refuse the input (``RejectedField``, a 400); the message is a template."""

    key = "reject"
    schema = {"reject": _TEXT}

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, scope: str,
                where: Where) -> Code:
        message = c.template(w, value, scope, where)
        w(f"raise RejectedField({message.expr})")
        w.may_raise()
        return NONE


class Drop(Source):
    """``drop: "reason"``: no value, on purpose; the reason is required."""

    key = "drop"
    schema = {"drop": _TEXT}

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, scope: str,
                where: Where) -> Code:
        if not isinstance(value, str) or not value.strip():
            raise where.error(SpecError, "drop needs a reason: say why the value is not forwarded")
        return NONE
