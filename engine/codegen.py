"""Compile rules into Python source, once, so that running a mapping costs what hand-written code costs.

An interpreter of the rule tree (or a tree of closures, the first design) pays a Python call for
every node: for a typical request that is a hundred calls, and four times the cost of a hand-written
converter. So the compiler writes the code a person would write instead: straight-line dict lookups,
inline type checks, ``if``/``elif`` for a ``switch``, a ``for`` loop for ``each``, direct calls
between maps. The source is compiled with ``compile()`` and ``exec()`` into one namespace per
mapping, at load time; ``RuleCompiler.sources`` keeps it (``mapper resolve --code`` prints it).

``RuleCompiler`` is the driver: it walks a rule object in evaluation order (guards, the source,
the modifiers in written order, the checks) and hands each key to the op that owns it
(``engine.ops``, dispatched by key). Each op writes its statements and returns a ``Code`` that says
what the value is (whether it can be None, whether it is a fresh variable the caller may rebind),
so the driver never guesses from names. The semantics are those of ``engine.ops`` and
``engine.paths`` (JMESPath). Run errors carry their input path and rule id, both added while the
error unwinds through ``try`` blocks, which cost nothing until something raises. What does not
compile to a line or two (JMESPath functions, Jinja templates, tables, registered functions) is a
constant in the namespace that the code calls.
"""

from __future__ import annotations

import keyword
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from .errors import ConversionError, SpecError, SpecErrors
from .functions.registry import REGISTRY, Function
from .ops import CHECKS, GUARDS, MODIFIERS, OPS, SOURCES, Source, Table, Where, located, plain
from .ops.base import at, map_function
from .ops.runtime import RUNTIME
from .ops.structure import write_object
from .paths import PATH_RUNTIME, input_path, write_path
from .source import Code, Names, SourceWriter, define_function
from .templates import TEMPLATE_RUNTIME, write_template
from .types import Json, Rule


class RuleCompiler:
    """Compiles rules against one mapping's functions, tables and named maps, into one namespace."""

    def __init__(self, *, tables: dict[str, Table], map_names: Iterable[str],
                 functions: dict[str, Function] | None = None) -> None:
        self.tables = tables
        self.functions = REGISTRY if functions is None else functions
        self.map_names = set(map_names)
        self.sources: list[str] = []
        self.names = Names()
        self.namespace: dict[str, Any] = {**RUNTIME, **PATH_RUNTIME, **TEMPLATE_RUNTIME}
        # A map that no one defines still has a name, so that generated calls resolve; compile.py
        # defines every map before any rule runs.
        for name in self.map_names:
            self.namespace[map_function(name)] = _undefined_map(name)

    # -- the interface used by compile.py and the stream compiler ------------------------------

    def define_map(self, name: str, rule: Rule) -> None:
        self.namespace[map_function(name)] = rule

    def compile(self, spec: Any, where: Where, *, rule_id: str | None = None) -> Rule:
        """Compile one rule into a function ``(scope, ctx) -> value``. Raises ``SpecError``.

        With ``rule_id``, a run error raised inside that names no rule is given this one.
        """
        w = self.writer()
        body = w.child()
        body(f"return {self.rule(body, spec, 'scope', where).expr}")
        w.adopt(body, *attribution(rule_id))
        return self.function(w, where)

    def compile_fields(self, fields: dict[str, Any], where: Where) -> Rule:
        """An object built field by field; a field with no value is left out."""
        w = self.writer()
        w(f"return {write_object(self, w, fields, 'scope', where).expr}")
        return self.function(w, where)

    def compile_section(self, fields: list[tuple[str, Any, Where]], where: Where) -> Rule:
        """A section's object from ``(name, rule, where)`` fields, as one function.

        A run error is given the id of the field rule that raised it. Spec errors are collected
        for every field and raised together.
        """
        w = self.writer()
        out = w.var("out")
        w(f"{out} = {{}}")
        # a section's scope is always a dict (the caller checks): its .get is bound once
        w("scope_get = scope.get")
        w.getters["scope"] = "scope_get"
        errors: list[SpecError] = []
        for name, spec, field_where in fields:
            field_writer = w.child()
            try:
                self.field(field_writer, out, name, spec, "scope", field_where)
            except SpecErrors as many:
                errors.extend(many.errors)
                continue
            except SpecError as error:
                errors.append(error)
                continue
            w.adopt(field_writer, *attribution(field_where.rule))
        if errors:
            raise SpecErrors(errors)
        w(f"return {out}")
        return self.function(w, where)

    def compile_guard(self, spec: dict[str, Any], where: Where) -> Rule | None:
        """``when`` and ``unless`` as one check that is true when the rule should run."""
        if not any(key in spec for key in GUARDS):
            return None
        w = self.writer()
        ok = w.var("ok")
        w(f"{ok} = False")
        with self.guarded(w, spec, "scope", where):
            w(f"{ok} = True")
        w(f"return {ok}")
        return self.function(w, where)

    def always_written(self, spec: Any) -> bool:
        """A field is written even when null if its rule is a literal or declares ``default``."""
        if isinstance(spec, dict):
            return "default" in spec
        return not isinstance(spec, str)

    def writer(self) -> SourceWriter:
        """A writer for the body of one generated function."""
        return SourceWriter(self.names, self.namespace)

    def function(self, w: SourceWriter, where: Where, *, arguments: str = "scope, ctx") -> Callable[..., Any]:
        """Define the function whose body ``w`` holds (named after the rule), keeping its source."""
        name = self.names.fresh("_" + _identifier(where.rule))
        try:
            function, source = define_function(self.namespace, name, w.lines, arguments=arguments,
                                               filename=f"<mapper {where.rule}>")
        except SyntaxError as error:  # e.g. Python's limit of 20 nested blocks
            raise where.error(SpecError, f"the rule is too deeply nested to compile ({error.msg}); "
                                         "move part of it into a map") from None
        self.sources.append(source)
        return function

    # -- rules: what the ops call back (engine.ops.base.Builder) --------------------------------

    def rule(self, w: SourceWriter, spec: Any, scope: str, where: Where) -> Code:
        """Write statements that leave the rule's value (or None) in a variable or a literal."""
        if isinstance(spec, str):
            return self.path(w, spec, scope, where)
        if isinstance(spec, dict):
            return self._object(w, spec, scope, where.inside(spec))
        return self.literal(w, spec)

    def literal(self, w: SourceWriter, value: Json) -> Code:
        if value is None:
            return Code("None")
        if isinstance(value, (bool, str)):
            return Code(repr(value), nullable=False, literal=True)
        if isinstance(value, int):
            # parenthesised: `1.__class__` would not parse
            return Code(f"({value!r})", nullable=False, literal=True)
        if isinstance(value, (list, dict)):
            target = w.var()
            if not value:
                w(f"{target} = {'[]' if isinstance(value, list) else '{}'}")
            else:
                w(f"{target} = copy_json({w.constant(plain(value))})")
            return Code(target, nullable=False, fresh=True)
        return Code(w.constant(value), nullable=False)

    def path(self, w: SourceWriter, expression: Any, scope: str, where: Where) -> Code:
        """A JMESPath read of ``scope``; plain paths become inline lookups (``engine.paths``)."""
        if not isinstance(expression, str):
            raise where.error(SpecError, f"expected a JMESPath expression, got {expression!r}")
        try:
            return write_path(w, expression, scope)
        except SpecError as error:
            raise located(error, where) from None

    def template(self, w: SourceWriter, source: Any, scope: str, where: Where) -> Code:
        """A Jinja2 template rendered against ``scope`` (``engine.templates``)."""
        if not isinstance(source, str):
            raise where.error(SpecError, "template must be a string")
        try:
            return write_template(w, source, scope)
        except SpecError as error:
            raise located(error, where) from None

    def field(self, w: SourceWriter, target: str, name: str, rule: Any, scope: str, where: Where) -> None:
        """``target[name] = value``, unless the value is None and the rule has no ``default``."""
        value = self.rule(w, rule, scope, where)
        if self.always_written(rule) or not value.nullable:
            w(f"{target}[{name!r}] = {value.expr}")
        elif not value.is_none:
            with w.block(f"if {value.expr} is not None:"):
                w(f"{target}[{name!r}] = {value.expr}")

    def add_to_list(self, w: SourceWriter, target: str, value: Code, *, flatten: bool) -> None:
        """Append ``value`` to the list ``target`` unless None; with ``flatten``, extend by a list."""
        if value.is_none:
            return
        if value.literal:  # neither None nor a list: no test to write
            w(f"{target}.append({value.expr})")
            return
        if flatten:
            with w.block(f"if {value.expr}.__class__ is list:"):
                w(f"{target}.extend({value.expr})")
            with w.block(f"elif {value.expr} is not None:"):
                w(f"{target}.append({value.expr})")
        else:
            with w.block(f"if {value.expr} is not None:"):
                w(f"{target}.append({value.expr})")

    def on_list(self, key: str) -> bool:
        """Whether ``key`` in an ``each`` rule acts on the list rather than on each element."""
        op = OPS.get(key)
        return op is not None and op.on_list

    @contextmanager
    def guarded(self, w: SourceWriter, spec: dict[str, Any], scope: str, where: Where) -> Iterator[None]:
        """Nest what follows under the ``when`` conditions (all true) and ``unless`` (all false)."""
        with w.nested() as open_if:
            for key, guard in GUARDS.items():
                if key in spec:
                    guard.write(self, w, spec, scope, where, open_if)
            yield

    # -- one rule object: guards, source, modifiers, checks ------------------------------------

    def _object(self, w: SourceWriter, spec: dict[str, Any], scope: str, where: Where) -> Code:
        list_level = "each" in spec
        if list_level:
            source: Source | None = SOURCES["each"]
        else:
            found = [key for key in spec if key in SOURCES]
            if len(found) > 1:
                raise where.error(SpecError, f"a rule has one source, found {', '.join(found)}")
            source = SOURCES[found[0]] if found else None
        modifiers = [key for key in spec if key in MODIFIERS
                     and (not list_level or MODIFIERS[key].on_list)]
        checks = [key for key, check in CHECKS.items() if key in spec and check.active(spec[key])]
        guarded = any(key in spec for key in GUARDS)

        def produce() -> Code:
            return source.write(self, w, spec, scope, where) if source else Code(scope)

        if not (modifiers or checks or guarded):
            return produce()  # nothing to wrap: no copy, no checks
        path = () if list_level else (input_path(spec.get("from")) if "from" in spec else ())
        target = w.var("r")
        if guarded:
            w(f"{target} = None")
        keeps_value = False  # the rule's value is the source's own, known not to be None
        with self.guarded(w, spec, scope, where):
            value = produce()
            if not guarded and value.fresh:
                target = value.expr  # the source's own variable: rebind it in place, no copy
                keeps_value = not value.nullable and not modifiers
            else:
                w(f"{target} = {value.expr}")
            if modifiers:
                self._modifiers(w, spec, modifiers, target, scope, where, path)
            for key in checks:
                CHECKS[key].write(self, w, spec[key], target, path)
        never_none = not guarded and any(CHECKS[key].never_none(spec[key]) for key in checks)
        return Code(target, nullable=not (never_none or keeps_value), fresh=True)

    def _modifiers(self, w: SourceWriter, spec: dict[str, Any], keys: list[str], target: str,
                   scope: str, where: Where, path: tuple) -> None:
        with w.block(f"if {target} is not None:"), _errors_at(w, path), w.nested() as open_if:
            for number, key in enumerate(keys):
                if number:
                    open_if(f"{target} is not None")
                MODIFIERS[key].write(self, w, spec, target, scope, where)


def attribution(rule_id: str | None) -> tuple[tuple[str, str], ...]:
    """The ``except`` clause that names ``rule_id`` in a run error passing through (none without one).

    The error is given the id only when a rule inside did not name itself. The clause sits on a
    ``try`` around a whole field or map body, never around each nested rule, so it costs one of
    the 20 nested blocks Python allows, and nothing at run time until something raises.
    """
    if rule_id is None:
        return ()
    return (("ConversionError as error", f"raise error.in_rule({rule_id!r})"),)


@contextmanager
def _errors_at(w: SourceWriter, path: tuple) -> Iterator[None]:
    """Prefix the input path ``path`` to a run error raised by what follows, while it unwinds."""
    if not path:
        yield
        return
    w.may_raise()  # a TypeError or ValueError becomes a CoercionError at the path
    with w.trying(("ConversionError as error", f"raise error{at(path)}"),
                  ("(TypeError, ValueError) as error", f"raise CoercionError(str(error)){at(path)} from None")):
        yield


def _identifier(rule_id: str) -> str:
    text = "".join(c if c.isalnum() else "_" for c in rule_id or "rule")
    return text if text.isidentifier() and not keyword.iskeyword(text) else f"r_{text}"


def _undefined_map(name: str) -> Rule:
    def undefined(scope: Json, ctx: Any) -> Json:
        raise ConversionError(f"map '{name}' did not compile")

    return undefined
