"""Guards and checks: what runs around a rule's source and modifiers.

``when``/``unless`` come first: each takes one JMESPath condition or a list, every ``when`` must
hold and no ``unless``, else the rule gives no value and nothing else runs. (A list is how a
``$request`` condition and a scope condition combine, since a ``$`` path reads the context for its
whole expression.) ``required`` and ``default`` come last: no value is then an error at the input
path, or is replaced by a literal.
"""

from __future__ import annotations

from typing import Any, Callable

from ..expressions import truth_test
from ..paths import fields_read
from ..source import SourceWriter
from .base import Builder, Check, Guard, Reader, Spec, Where, at, plain

_CONDITIONS = {"anyOf": [{"type": "string", "minLength": 1},
                         {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}]}


class When(Guard):
    """``when: EXPR`` (or a list): the rule runs only when every condition is truthy (JMESPath truth)."""

    key = "when"
    schema = {"when": _CONDITIONS}
    negate = False

    def write(self, c: Builder, w: SourceWriter, spec: Spec, scope: str, where: Where,
              open_if: Callable[[str], None]) -> None:
        conditions = spec[self.key]
        for expression in conditions if isinstance(conditions, list) else [conditions]:
            value = c.path(w, expression, scope, where.inside(spec, self.key)).expr
            open_if(f"{'not ' if self.negate else ''}{truth_test(value)}")

    def reads(self, spec: Spec, reader: Reader) -> set[str]:
        conditions = spec[self.key]
        found: set[str] = set()
        for expression in conditions if isinstance(conditions, list) else [conditions]:
            if isinstance(expression, str):
                found |= fields_read(expression)
        return found


class Unless(When):
    """``unless: EXPR`` (or a list): the rule runs only when no condition is truthy."""

    key = "unless"
    schema = {"unless": _CONDITIONS}
    negate = True


class Required(Check):
    """``required: true``: no value is a ``CoercionError`` at the input path."""

    key = "required"
    schema = {"required": {"type": "boolean"}}

    def active(self, value: Any) -> bool:
        return bool(value)

    def write(self, c: Builder, w: SourceWriter, value: Any, target: str, path: tuple) -> None:
        with w.block(f"if {target} is None:"):
            w(f"raise CoercionError('required value is missing'){at(path)}")
        w.may_raise()

    def never_none(self, value: Any) -> bool:
        return bool(value)


class Default(Check):
    """``default: LITERAL``: the value when there is none; a field with ``default`` is always written."""

    key = "default"
    schema = {"default": True}

    def write(self, c: Builder, w: SourceWriter, value: Any, target: str, path: tuple) -> None:
        default = plain(value)
        if default is not None:
            with w.block(f"if {target} is None:"):
                w(f"{target} = {c.literal(w, default).expr}")

    def never_none(self, value: Any) -> bool:
        return plain(value) is not None
