"""The sources built from other rules: objects, arrays mapped element by element, choices and lists.

``emit`` builds an object field by field, ``each`` maps an array, ``switch`` picks a rule by key,
``concat`` joins lists and ``first`` takes the first rule that gives a value. Each writes the
statements a person would (a dict literal filled key by key, a ``for`` loop, ``if``/``elif``), and
each reads, for coverage, what its nested rules read in the same scope.
"""

from __future__ import annotations

from typing import Any

from ..errors import SpecError
from ..paths import fields_read, input_path
from ..source import Code, SourceWriter
from .base import Builder, Reader, Source, Spec, Where, at

_RULE = {"$ref": "#/$defs/rule"}
_EXPRESSION = {"type": "string", "minLength": 1}


def _reads_all(rules: Any, reader: Reader) -> set[str]:
    found: set[str] = set()
    for rule in rules:
        found |= reader.rule(rule)
    return found


class Emit(Source):
    """``emit: {field: rule}``: an object; a field whose rule gives no value is left out."""

    key = "emit"
    schema = {"emit": {"$ref": "#/$defs/fields"}}

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, scope: str,
                where: Where) -> Code:
        if not isinstance(value, dict):
            raise where.error(SpecError, "emit takes an object of field rules")
        return write_object(c, w, value, scope, where)

    def reads(self, spec: Spec, reader: Reader) -> set[str]:
        fields = spec["emit"]
        return _reads_all(fields.values(), reader) if isinstance(fields, dict) else set()


def write_object(c: Builder, w: SourceWriter, fields: dict[str, Any], scope: str, where: Where) -> Code:
    """A dict filled field by field (``emit``, and a stream's envelope and response)."""
    target = w.var("o")
    w(f"{target} = {{}}")
    for name, rule in fields.items():
        c.field(w, target, name, rule, scope, where.inside(fields, name))
    return Code(target, nullable=False, fresh=True)


class Each(Source):
    """``each: EXPR``: map an array; the rule's other keys make the rule for one element.

    ``when``/``unless``, ``then``, ``omit_empty``, ``required`` and ``default`` act on the whole
    list; an element whose rule gives no value is skipped; ``flatten: true`` splices list results.
    """

    key = "each"
    schema = {"each": _EXPRESSION, "flatten": {"type": "boolean"}}
    requires = {"flatten": ["each"]}
    on_list = True

    def write(self, c: Builder, w: SourceWriter, spec: Spec, scope: str, where: Where) -> Code:
        items = c.path(w, spec["each"], scope, where.inside(spec, "each")).expr
        path = input_path(spec["each"])
        element = type(spec)((key, value) for key, value in spec.items() if not c.on_list(key))
        for attribute in ("file", "line", "key_lines"):  # the element rule is located as the rule
            if hasattr(spec, attribute):
                setattr(element, attribute, getattr(spec, attribute))
        target, item, index = w.var("e"), w.var("item"), w.var("i")
        w(f"{target} = None")
        with w.block(f"if {items} is not None:"):
            with w.block(f"if {items}.__class__ is not list:"):
                w(f"raise CoercionError('expected an array, got ' + json_type({items})){at(path)}")
                w.may_raise()
            w(f"{target} = []")
            w(f"{index} = 0")
            with w.trying(("ConversionError as error", f"raise error{at(path, index)}")), \
                    w.block(f"for {index}, {item} in enumerate({items}):"):
                value = c.rule(w, element, item, where) if element else Code(item)
                c.add_to_list(w, target, value, flatten=bool(spec.get("flatten")))
        return Code(target, fresh=True)

    def reads(self, spec: Spec, reader: Reader) -> set[str]:
        # the element rule reads the elements, not the root
        return fields_read(spec["each"]) if isinstance(spec["each"], str) else set()


class Switch(Source):
    """``switch: EXPR`` + ``cases: {key: rule}`` + ``otherwise: rule``: pick a rule by key.

    The key is compared as text (``null``, ``true``, numbers printed); no matching case and no
    ``otherwise`` is an error (``NoCase``), never a silent skip.
    """

    key = "switch"
    schema = {"switch": _EXPRESSION,
              "cases": {"type": "object", "additionalProperties": _RULE},
              "otherwise": _RULE}
    requires = {"cases": ["switch"], "otherwise": ["switch"]}

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, scope: str,
                where: Where) -> Code:
        key = c.path(w, value, scope, where).expr
        w(f"if {key}.__class__ is not str: {key} = case_key({key})")
        target = w.var("s")
        cases = spec.get("cases") or {}
        keyword = "if"
        for case, rule in cases.items():
            with w.block(f"{keyword} {key} == {str(case)!r}:"):
                w(f"{target} = {c.rule(w, rule, scope, where.inside(cases, case)).expr}")
            keyword = "elif"
        with w.block("else:" if cases else "if True:"):
            if "otherwise" in spec:
                otherwise = c.rule(w, spec["otherwise"], scope, where.inside(spec, "otherwise"))
                w(f"{target} = {otherwise.expr}")
            else:
                known = ", ".join(str(case) for case in cases)
                w(f"raise NoCase(f'unexpected value {{{key}!r}} (expected one of: {known})')")
                w.may_raise()
        return Code(target, fresh=True)

    def reads(self, spec: Spec, reader: Reader) -> set[str]:
        found = fields_read(spec["switch"]) if isinstance(spec["switch"], str) else set()
        if isinstance(spec.get("cases"), dict):
            found |= _reads_all(spec["cases"].values(), reader)
        if "otherwise" in spec:
            found |= reader.rule(spec["otherwise"])
        return found


class Concat(Source):
    """``concat: {id: rule}``: one list from lists (spliced) and single values, in order."""

    key = "concat"
    schema = {"concat": {"type": "object", "propertyNames": {"$ref": "#/$defs/ruleId"},
                         "additionalProperties": _RULE}}

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, scope: str,
                where: Where) -> Code:
        if not isinstance(value, dict):
            raise where.error(SpecError, "concat takes an object of rules keyed by id")
        target = w.var("c")
        w(f"{target} = []")
        for part_id, rule in value.items():
            c.add_to_list(w, target, c.rule(w, rule, scope, where.inside(value, part_id)), flatten=True)
        return Code(target, nullable=False, fresh=True)

    def reads(self, spec: Spec, reader: Reader) -> set[str]:
        parts = spec["concat"]
        return _reads_all(parts.values(), reader) if isinstance(parts, dict) else set()


class First(Source):
    """``first: [rule, ...]``: the value of the first rule that gives one."""

    key = "first"
    schema = {"first": {"type": "array", "minItems": 1, "items": _RULE}}

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, scope: str,
                where: Where) -> Code:
        if not isinstance(value, list) or not value:
            raise where.error(SpecError, "first takes a non-empty list of rules")
        target = w.var("f")
        w(f"{target} = {c.rule(w, value[0], scope, where).expr}")
        with w.nested() as open_if:
            for rule in value[1:]:
                open_if(f"{target} is None")
                w(f"{target} = {c.rule(w, rule, scope, where).expr}")
        return Code(target, fresh=True)

    def reads(self, spec: Spec, reader: Reader) -> set[str]:
        rules = spec["first"]
        return _reads_all(rules, reader) if isinstance(rules, list) else set()
