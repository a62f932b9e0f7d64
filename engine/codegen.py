"""Compile rules into Python source, once, so that running a mapping costs what hand-written code costs.

An interpreter of the rule tree (or a tree of closures, the first design) pays a Python call for
every node: for a typical request that is a hundred calls, and four times the cost of a hand-written
converter. So the compiler writes the code a person would write instead: straight-line dict lookups,
inline type checks, ``if``/``elif`` for a ``switch``, a ``for`` loop for ``each``, direct calls
between maps. The source is compiled with ``compile()`` and ``exec()`` into one namespace per
mapping, at load time; ``RuleCompiler.sources`` keeps it (``mapper resolve --code`` prints it).

Each rule becomes statements that leave its value, or ``None``, in a local variable. The semantics
are those of ``engine.ops`` (the vocabulary) and ``engine.paths`` (JMESPath): the generated code reads
the same, fails the same (run errors carry their input path and rule id, built while unwinding) and is
tested by the same suite. What does not compile to a line or two (real JMESPath expressions,
templates, tables, registered functions) is a constant in the namespace that the code calls.
"""

from __future__ import annotations

import bisect
import keyword
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from .errors import (CoercionError, ConversionError, NoCase, ReferenceError_, RejectedField, SpecError,
                     SpecErrors, UnknownFunction)
from .functions.registry import REGISTRY, Function
from .ops import (CONTAINERS, COERCIONS, EACH_LIST_KEYS, MODIFIERS, SOURCES, Table, Where, case_key,
                  copy_json, expect, fresh, json_type, located, plain, suggest, truthy)
from .expressions import truth_test
from .paths import PATH_RUNTIME, input_path, write_path
from .source import Names, SourceWriter, define_function
from .templates import TEMPLATE_RUNTIME, write_template
from .types import Json, Rule

# Checks that ``as:`` writes inline: the exact class a value must have, and how to name it.
_EXACT_TYPES = {"string": ("str", "a string"), "boolean": ("bool", "a boolean"),
                "array": ("list", "an array"), "object": ("dict", "an object")}
# For the other coercions, the test that the value still needs the coercion's call.
_ALREADY = {"integer": "{0}.__class__ is not int", "text": "{0}.__class__ is not str",
            "json_string": "{0}.__class__ is not str", "list": "{0}.__class__ is not list",
            "number": "{0}.__class__ is not int and {0}.__class__ is not float"}


class RuleCompiler:
    """Compiles rules against one mapping's functions, tables and named maps, into one namespace."""

    def __init__(self, *, tables: dict[str, Table], map_names: Iterable[str],
                 functions: dict[str, Function] | None = None) -> None:
        self.tables = tables
        self.functions = REGISTRY if functions is None else functions
        self.map_names = set(map_names)
        self.sources: list[str] = []
        self.names = Names()
        self._never_none: set[str] = set()  # generated variables that cannot hold None
        self.namespace: dict[str, Any] = {
            "truthy": truthy, "case_key": case_key, "copy_json": copy_json, "fresh": fresh,
            "expect": expect, "json_type": json_type, "CONTAINERS": CONTAINERS,
            "ConversionError": ConversionError, "CoercionError": CoercionError,
            "RejectedField": RejectedField, "NoCase": NoCase,
            **PATH_RUNTIME, **TEMPLATE_RUNTIME,
        }
        # A map that no one defines still has a name, so that generated calls resolve; compile.py
        # defines every map before any rule runs.
        for name in self.map_names:
            self.namespace[_map_function(name)] = _undefined_map(name)

    # -- the interface used by compile.py and stream_spec.py -----------------------------------

    def define_map(self, name: str, rule: Rule) -> None:
        self.namespace[_map_function(name)] = rule

    def compile(self, spec: Any, where: Where, *, rule_id: str | None = None) -> Rule:
        """Compile one rule into a function ``(scope, ctx) -> value``. Raises ``SpecError``.

        With ``rule_id``, a run error raised inside that names no rule is given this one.
        """
        w = self._writer(level=2 if rule_id else 1)
        result = self._rule(w, spec, "scope", where)
        return self._function(w, result, where, rule_id=rule_id)

    def compile_fields(self, fields: dict[str, Any], where: Where) -> Rule:
        """An object built field by field; a field with no value is left out."""
        w = self._writer()
        result = self._emit(w, fields, "scope", where)
        return self._function(w, result, where)

    def compile_section(self, fields: list[tuple[str, Any, Where]], where: Where) -> Rule:
        """A section's object from ``(name, rule, where)`` fields, as one function.

        A run error is given the id of the field rule that raised it. Spec errors are collected
        for every field and raised together.
        """
        w = self._writer(level=2)
        out = w.var("out")
        w(f"{out} = {{}}")
        # a section's scope is always a dict (the caller checks): its .get is bound once
        w("scope_get = scope.get")
        w.getters["scope"] = "scope_get"
        errors: list[SpecError] = []
        # which field rule each stretch of the body belongs to: a run error finds its rule id from
        # its line number, so the happy path stores nothing per field
        starts: list[tuple[int, str]] = []
        for name, spec, field_where in fields:
            field_writer = w.child()
            starts.append((len(w.lines), field_where.rule))
            try:
                self._field(field_writer, out, name, spec, "scope", field_where)
            except SpecErrors as many:
                errors.extend(many.errors)
                continue
            except SpecError as error:
                errors.append(error)
                continue
            w.lines.extend(field_writer.lines)
        if errors:
            raise SpecErrors(errors)
        # body lines start on line 3 of the function: ``def`` is line 1 and ``try:`` line 2
        table = w.constant(_RuleLines([(offset + 3, rule) for offset, rule in starts]), "RULES")
        return self._function(w, out, where, rule_id=f"{table}.rule_of(error)", dynamic_rule=True)

    def compile_frame_rules(self, rules: list[tuple[str, dict[str, Any], Where, Any, Any]],
                            where: Where) -> Callable[..., None]:
        """One function ``(frame, ctx, machine)`` that runs a stream's rules on one upstream frame.

        ``rules`` are ``(id, spec, where, kind, part)`` in file order, already validated by
        ``engine.stream_spec``; ``kind``/``part`` are the compiled item kind and part a ``feed``
        rule names (None otherwise). The code evaluates each rule's guard, delta, final text and
        attributes inline and calls the machine only when the frame has something for it (most
        frames carry one field out of the several rules look at).
        """
        w = self._writer()
        for rule_id, spec, rule_where, kind, part in rules:
            w(f"# {rule_id}")
            with self._guarded(w, spec, "scope", rule_where):
                if "each" in spec:
                    items = self._path(w, spec["each"], "scope", rule_where.inside(spec, "each"))
                    item = w.var("item")
                    with w.block(f"for {item} in {items} or ():"):
                        self._frame_action(w, spec, item, rule_where, kind, part)
                else:
                    self._frame_action(w, spec, "scope", rule_where, kind, part)
        return self._function(w, "None", where, arguments="scope, ctx, machine")

    def _frame_action(self, w: SourceWriter, spec: dict[str, Any], scope: str, where: Where,
                      kind: Any, part: Any) -> None:
        if "feed" not in spec:
            action = next(key for key in ("finish", "usage", "error") if key in spec)
            value = self._rule(w, spec[action], scope, where.inside(spec, action))
            if action == "finish":
                w(f"machine.finish({value})")
            else:
                with w.block(f"if {value} is not None:"):
                    w(f"machine.{'set_usage' if action == 'usage' else 'upstream_error'}({value})")
            w("if machine.finished: return None")
            return

        def value_of(key: str) -> str:
            return self._rule(w, spec[key], scope, where.inside(spec, key)) if key in spec else "None"

        delta, final = value_of("delta"), value_of("final")
        attributes = [(name, self._rule(w, rule, scope, where.inside(spec["set"], name)))
                      for name, rule in (spec.get("set") or {}).items()]
        # the machine is called only when this frame has a delta, a final text or an attribute
        present = [term for term in (delta, final) if term != "None"]
        present += [f"{value} is not None" for _, value in attributes]
        if not present:
            return
        with w.block(f"if {' or '.join(present)}:"):
            key = value_of("key") if kind.keyed else "None"
            identity = value_of("identity") if kind.keyed else "None"
            collected = [(name, self._rule(w, rule, scope, where.inside(spec["collect"], name)))
                         for name, rule in (spec.get("collect") or {}).items()]
            w(f"machine.feed_item({w.constant(kind, 'KIND')}, "
              f"{w.constant(part, 'PART') if part is not None else 'None'}, {delta}, {final}, "
              f"{key}, {identity}, {_pairs(attributes)}, {_pairs(collected)})")
            w("if machine.finished: return None")

    def compile_guard(self, spec: dict[str, Any], where: Where) -> Rule | None:
        """``when`` and ``unless`` as one check that is true when the rule should run.

        Each takes one JMESPath condition or a list: every ``when`` must hold and no ``unless``.
        (A list is how a ``$request`` condition and a scope condition combine, since a ``$`` path
        reads the context for its whole expression.)
        """
        if "when" not in spec and "unless" not in spec:
            return None
        w = self._writer()
        ok = w.var("ok")
        w(f"{ok} = False")
        with self._guarded(w, spec, "scope", where):
            w(f"{ok} = True")
        return self._function(w, ok, where)

    def always_written(self, spec: Any) -> bool:
        """A field is written even when null if its rule is a literal or declares ``default``."""
        if isinstance(spec, dict):
            return "default" in spec
        return not isinstance(spec, str)

    def _writer(self, level: int = 1) -> SourceWriter:
        return SourceWriter(self.names, self.namespace, level)

    # -- functions ------------------------------------------------------------------------------

    def _function(self, w: SourceWriter, result: str, where: Where, *, rule_id: str | None = None,
                  dynamic_rule: bool = False, arguments: str = "scope, ctx") -> Rule:
        name = self.names.fresh("_" + _identifier(where.rule))
        if rule_id is None:
            body = w.lines + [f"    return {result}"]
        else:
            # attribute run errors to the rule (or, in a section, to the field rule running)
            label = rule_id if dynamic_rule else repr(rule_id)
            body = ["    try:"] + w.lines + [
                f"        return {result}",
                "    except ConversionError as error:",
                "        if error.rule is None:",
                f"            error.rule = {label}",
                "        raise",
            ]
        try:
            function, source = define_function(self.namespace, name, body, arguments=arguments,
                                               filename=f"<mapper {where.rule}>")
        except SyntaxError as error:  # e.g. Python's limit of 20 nested blocks
            raise where.error(SpecError, f"the rule is too deeply nested to compile ({error.msg}); "
                                         "move part of it into a map") from None
        self.sources.append(source)
        return function

    # -- rules ----------------------------------------------------------------------------------

    def _rule(self, w: SourceWriter, spec: Any, scope: str, where: Where) -> str:
        """Write statements that leave the rule's value (or None) in a variable; return its name."""
        if isinstance(spec, str):
            return self._path(w, spec, scope, where)
        if isinstance(spec, dict):
            return self._object(w, spec, scope, where.inside(spec))
        return self._literal(w, spec)

    def _literal(self, w: SourceWriter, value: Json) -> str:
        if value is None:
            return "None"
        if isinstance(value, (bool, str)):
            return repr(value)
        if isinstance(value, int):
            return f"({value!r})"  # parenthesised: `1.__class__` would not parse
        if isinstance(value, (list, dict)):
            target = w.var()
            if not value:
                w(f"{target} = {'[]' if isinstance(value, list) else '{}'}")
            else:
                w(f"{target} = copy_json({w.constant(plain(value))})")
            return target
        return w.constant(value)

    def _object(self, w: SourceWriter, spec: dict[str, Any], scope: str, where: Where) -> str:
        if "each" in spec:
            return self._wrapped(w, spec, scope, where, self._each, list_level=True)
        sources = [key for key in spec if key in SOURCES]
        if len(sources) > 1:
            raise where.error(SpecError, f"a rule has one source, found {', '.join(sources)}")
        return self._wrapped(w, spec, scope, where, self._source(sources[0] if sources else None))

    def _wrapped(self, w: SourceWriter, spec: dict[str, Any], scope: str, where: Where,
                 produce: Callable[..., str], list_level: bool = False) -> str:
        """Guard, source, modifiers in written order, ``required``, ``default``: around ``produce``."""
        modifiers = [key for key in spec if key in MODIFIERS
                     and (not list_level or key in EACH_LIST_KEYS)]
        required = bool(spec.get("required"))
        has_default = "default" in spec
        guarded = "when" in spec or "unless" in spec
        if not (modifiers or required or has_default or guarded):
            return produce(w, spec, scope, where)  # nothing to wrap: no copy, no checks
        path = () if list_level else (input_path(spec.get("from")) if "from" in spec else ())
        target = w.var("r")
        if guarded:
            w(f"{target} = None")
        with self._guarded(w, spec, scope, where):
            value = produce(w, spec, scope, where)
            if not guarded and _is_fresh(value, scope):
                target = value  # the rule's own variable: modify it in place, no copy
                if modifiers:
                    self._never_none.discard(target)  # a modifier may leave it None
            else:
                w(f"{target} = {value}")
            if modifiers:
                self._modifiers(w, spec, modifiers, target, scope, where, path)
            if required:
                with w.block(f"if {target} is None:"):
                    w(f"raise CoercionError('required value is missing').at(*{path!r})")
            if has_default:
                default = plain(spec.get("default"))
                if default is not None:
                    with w.block(f"if {target} is None:"):
                        w(f"{target} = {self._literal(w, default)}")
        if not guarded and (required or plain(spec.get("default")) is not None):
            self._never_none.add(target)
        return target

    @contextmanager
    def _guarded(self, w: SourceWriter, spec: dict[str, Any], scope: str, where: Where) -> Iterator[None]:
        """Nest what follows under the ``when`` conditions (all true) and ``unless`` (all false)."""
        opened = 0
        for key, negate in (("when", False), ("unless", True)):
            if key not in spec:
                continue
            expressions = spec[key] if isinstance(spec[key], list) else [spec[key]]
            for expression in expressions:
                value = self._path(w, expression, scope, where.inside(spec, key))
                w(f"if {'not ' if negate else ''}{truth_test(value)}:")
                w.level += 1
                opened += 1
        try:
            yield
        finally:
            w.level -= opened

    def _modifiers(self, w: SourceWriter, spec: dict[str, Any], keys: list[str], target: str, scope: str,
                   where: Where, path: tuple) -> None:
        depth = 0
        body = w.child()
        for number, key in enumerate(keys):
            if number:
                body(f"if {target} is not None:")
                body.level += 1
                depth += 1
            getattr(self, f"_modifier_{key}")(body, spec[key], spec, target, scope,
                                              where.inside(spec, key))
        body.level -= depth
        with w.block(f"if {target} is not None:"):
            if not path:
                w.lines.extend("    " + line for line in body.lines)
                return
            # the input path is prefixed while an error unwinds (nothing is paid otherwise)
            with w.block("try:"):
                w.lines.extend("        " + line for line in body.lines)
            with w.block("except ConversionError as error:"):
                w(f"raise error.at(*{path!r})")
            with w.block("except (TypeError, ValueError) as error:"):
                w(f"raise CoercionError(str(error)).at(*{path!r}) from None")

    # -- sources: each writes code and returns the variable holding the value --------------------

    def _source(self, key: str | None) -> Callable[..., str]:
        if key is None:
            return lambda w, spec, scope, where: scope
        method = getattr(self, f"_source_{key}")
        return lambda w, spec, scope, where: method(w, spec[key], spec, scope, where.inside(spec, key))

    def _source_from(self, w: SourceWriter, expression: Any, spec: dict, scope: str, where: Where) -> str:
        return self._path(w, expression, scope, where)

    def _source_value(self, w: SourceWriter, literal: Any, spec: dict, scope: str, where: Where) -> str:
        return self._literal(w, literal)

    def _source_template(self, w: SourceWriter, source: Any, spec: dict, scope: str, where: Where) -> str:
        return self._template(w, source, scope, where)

    def _source_emit(self, w: SourceWriter, fields: Any, spec: dict, scope: str, where: Where) -> str:
        if not isinstance(fields, dict):
            raise where.error(SpecError, "emit takes an object of field rules")
        return self._emit(w, fields, scope, where)

    def _source_switch(self, w: SourceWriter, expression: Any, spec: dict, scope: str, where: Where) -> str:
        key = self._path(w, expression, scope, where)
        w(f"if {key}.__class__ is not str: {key} = case_key({key})")
        target = w.var("s")
        cases = spec.get("cases") or {}
        keyword_ = "if"
        for case, rule in cases.items():
            with w.block(f"{keyword_} {key} == {str(case)!r}:"):
                w(f"{target} = {self._rule(w, rule, scope, where.inside(cases, case))}")
            keyword_ = "elif"
        with w.block("else:" if cases else "if True:"):
            if "otherwise" in spec:
                otherwise = self._rule(w, spec["otherwise"], scope, where.inside(spec, "otherwise"))
                w(f"{target} = {otherwise}")
            else:
                known = ", ".join(str(case) for case in cases)
                w(f"raise NoCase(f'unexpected value {{{key}!r}} (expected one of: {known})')")
        return target

    def _source_concat(self, w: SourceWriter, parts: Any, spec: dict, scope: str, where: Where) -> str:
        if not isinstance(parts, dict):
            raise where.error(SpecError, "concat takes an object of rules keyed by id")
        target = w.var("c")
        w(f"{target} = []")
        for part_id, rule in parts.items():
            value = self._rule(w, rule, scope, where.inside(parts, part_id))
            self._add_to_list(w, target, value, flatten=True)
        return target

    def _add_to_list(self, w: SourceWriter, target: str, value: str, *, flatten: bool) -> None:
        """Append ``value`` to the list ``target`` unless None; with ``flatten``, extend by a list."""
        if value == "None":
            return
        if _is_literal(value):  # a literal is neither None nor a list: no test to write
            w(f"{target}.append({value})")
            return
        if flatten:
            with w.block(f"if {value}.__class__ is list:"):
                w(f"{target}.extend({value})")
            with w.block(f"elif {value} is not None:"):
                w(f"{target}.append({value})")
        else:
            with w.block(f"if {value} is not None:"):
                w(f"{target}.append({value})")

    def _source_first(self, w: SourceWriter, rules: Any, spec: dict, scope: str, where: Where) -> str:
        if not isinstance(rules, list) or not rules:
            raise where.error(SpecError, "first takes a non-empty list of rules")
        target = w.var("f")
        w(f"{target} = {self._rule(w, rules[0], scope, where)}")
        opened = 0
        for rule in rules[1:]:
            w(f"if {target} is None:")
            w.level += 1
            opened += 1
            w(f"{target} = {self._rule(w, rule, scope, where)}")
        w.level -= opened
        return target

    def _source_id(self, w: SourceWriter, prefix: Any, spec: dict, scope: str, where: Where) -> str:
        if not isinstance(prefix, str) or not prefix:
            raise where.error(SpecError, "id takes a prefix such as resp, msg or chatcmpl-")
        target = w.var("i")
        w(f"{target} = ctx.new_id({prefix!r})")
        return target

    def _source_now(self, w: SourceWriter, unit: Any, spec: dict, scope: str, where: Where) -> str:
        target = w.var("n")
        w(f"{target} = ctx.now()")
        return target

    def _source_reject(self, w: SourceWriter, message: Any, spec: dict, scope: str, where: Where) -> str:
        message = self._template(w, message, scope, where)
        w(f"raise RejectedField({message})")
        return "None"

    def _source_drop(self, w: SourceWriter, reason: Any, spec: dict, scope: str, where: Where) -> str:
        if not isinstance(reason, str) or not reason.strip():
            raise where.error(SpecError, "drop needs a reason: say why the value is not forwarded")
        return "None"

    def _each(self, w: SourceWriter, spec: dict[str, Any], scope: str, where: Where) -> str:
        items = self._path(w, spec["each"], scope, where.inside(spec, "each"))
        path = input_path(spec["each"])
        item_spec = type(spec)((k, v) for k, v in spec.items() if k not in EACH_LIST_KEYS)
        for attribute in ("file", "line", "key_lines"):
            if hasattr(spec, attribute):
                setattr(item_spec, attribute, getattr(spec, attribute))
        flatten = bool(spec.get("flatten"))
        target, item, index = w.var("e"), w.var("item"), w.var("i")
        w(f"{target} = None")
        with w.block(f"if {items} is not None:"):
            with w.block(f"if {items}.__class__ is not list:"):
                w(f"raise CoercionError('expected an array, got ' + json_type({items})).at(*{path!r})")
            w(f"{target} = []")
            w(f"{index} = 0")
            with w.block("try:"):
                with w.block(f"for {index}, {item} in enumerate({items}):"):
                    value = self._object(w, item_spec, item, where) if item_spec else item
                    self._add_to_list(w, target, value, flatten=flatten)
            with w.block("except ConversionError as error:"):
                w(f"raise error.at(*{path!r}, {index})")
        return target

    # -- modifiers: each rewrites the target variable, which is known not to be None -------------

    def _modifier_apply(self, w: SourceWriter, name: Any, spec: dict, target: str, scope: str,
                        where: Where) -> None:
        if name not in self.map_names:
            raise where.error(ReferenceError_, f"apply names no map '{name}'"
                                               f"{suggest(name, self.map_names)} (see maps:)")
        w(f"{target} = {_map_function(name)}({target}, ctx)")

    def _modifier_fn(self, w: SourceWriter, name: Any, spec: dict, target: str, scope: str,
                     where: Where) -> None:
        function = self.functions.get(name)
        if function is None:
            raise where.error(UnknownFunction, f"unknown function '{name}'"
                                               f"{suggest(name, self.functions)}; see mapper functions")
        args = spec.get("args") or {}
        unknown = set(args) - set(function.parameters)
        if unknown:
            raise where.error(SpecError, f"function '{name}' takes no argument(s) "
                                         f"{', '.join(sorted(unknown))}")
        call = w.constant(function.call, "FN")
        values = [f"{arg}={self._rule(w, rule, scope, where.inside(args, arg))}"
                  for arg, rule in args.items()]
        w(f"{target} = {call}({', '.join([target, 'ctx', *values])})")

    def _modifier_lookup(self, w: SourceWriter, reference: Any, spec: dict, target: str, scope: str,
                         where: Where) -> None:
        table_name, _, column = str(reference).partition(".")
        table = self.tables.get(table_name)
        if table is None:
            raise where.error(ReferenceError_, f"lookup names no table '{table_name}'"
                                               f"{suggest(table_name, self.tables)} (see tables:)")
        row = w.constant(table.row, "ROW")
        if not column:
            w(f"{target} = fresh({row}({target}))")
            return
        if column not in table.columns:
            raise where.error(ReferenceError_, f"table '{table_name}' has no column '{column}' "
                                               f"(columns: {', '.join(table.columns)})")
        w(f"{target} = fresh({row}({target})[{table.column_index(column)}])")

    def _modifier_as(self, w: SourceWriter, type_name: Any, spec: dict, target: str, scope: str,
                     where: Where) -> None:
        if type_name not in COERCIONS:
            raise where.error(SpecError, f"unknown type '{type_name}' for as: "
                                         f"(known: {', '.join(COERCIONS)})")
        if type_name in _EXACT_TYPES:
            kind, described = _EXACT_TYPES[type_name]
            with w.block(f"if {target}.__class__ is not {kind}:"):
                w(f"raise expect({described!r}, {target})")
            return
        coerce = w.constant(COERCIONS[type_name], "AS")
        already = _ALREADY.get(type_name)
        if already:  # the value usually has the type already: call the coercion only when not
            w(f"if {already.format(target)}: {target} = {coerce}({target})")
        else:
            w(f"{target} = {coerce}({target})")

    def _modifier_clamp(self, w: SourceWriter, bounds: Any, spec: dict, target: str, scope: str,
                        where: Where) -> None:
        low, high = bounds
        w(f"{target} = min(max({target}, {low!r}), {high!r})")

    def _modifier_then(self, w: SourceWriter, rule: Any, spec: dict, target: str, scope: str,
                       where: Where) -> None:
        w(f"{target} = {self._rule(w, rule, target, where)}")

    def _modifier_omit_empty(self, w: SourceWriter, flag: Any, spec: dict, target: str, scope: str,
                             where: Where) -> None:
        if flag:
            w(f"if not {target} and {target}.__class__ in CONTAINERS: {target} = None")

    # -- pieces -----------------------------------------------------------------------------------

    def _emit(self, w: SourceWriter, fields: dict[str, Any], scope: str, where: Where) -> str:
        target = w.var("o")
        w(f"{target} = {{}}")
        self._never_none.add(target)
        for name, rule in fields.items():
            self._field(w, target, name, rule, scope, where.inside(fields, name))
        return target

    def _field(self, w: SourceWriter, target: str, name: str, rule: Any, scope: str, where: Where) -> None:
        value = self._rule(w, rule, scope, where)
        if self.always_written(rule) or _is_literal(value) or value in self._never_none:
            w(f"{target}[{name!r}] = {value}")
        elif value != "None":
            with w.block(f"if {value} is not None:"):
                w(f"{target}[{name!r}] = {value}")

    def _path(self, w: SourceWriter, expression: Any, scope: str, where: Where) -> str:
        """Write a JMESPath read of ``scope``; plain paths become inline lookups."""
        if not isinstance(expression, str):
            raise where.error(SpecError, f"expected a JMESPath expression, got {expression!r}")
        try:
            return write_path(w, expression, scope).expr
        except SpecError as error:
            raise located(error, where) from None

    def _template(self, w: SourceWriter, source: Any, scope: str, where: Where) -> str:
        if not isinstance(source, str):
            raise where.error(SpecError, "template must be a string")
        try:
            return write_template(w, source, scope).expr
        except SpecError as error:
            raise located(error, where) from None


def _pairs(pairs: list[tuple[str, str]]) -> str:
    """``[(name, variable)]`` as the source of a tuple of ``(name, value)`` pairs."""
    return "(" + "".join(f"({name!r}, {value}), " for name, value in pairs) + ")"


class _RuleLines:
    """Which rule a line of a generated section function belongs to."""

    __slots__ = ("lines", "rules")

    def __init__(self, starts: list[tuple[int, str]]) -> None:
        self.lines = [line for line, _ in starts]
        self.rules = [rule for _, rule in starts]

    def rule_of(self, error: BaseException) -> str | None:
        """The rule whose lines were running when ``error`` passed through the section function."""
        traceback = error.__traceback__  # its first entry is the section function's own frame
        if traceback is None or not self.lines:
            return None
        index = bisect.bisect_right(self.lines, traceback.tb_lineno) - 1
        return self.rules[index] if index >= 0 else None


def _is_fresh(code: str, scope: str) -> bool:
    """Whether generated code names a variable the rule itself just wrote (so it may modify it)."""
    return code != scope and code != "None" and code.isidentifier() and not code.isupper() \
        and code[:1].islower() and code not in ("scope", "ctx", "scope_get")


def _is_literal(code: str) -> bool:
    """Whether generated code is a literal that cannot be None (``'message'``, ``0``, ``True``)."""
    return code[:1] in ("'", '"') or code in ("True", "False") or code.strip("()-").isdigit()


def _map_function(name: str) -> str:
    return f"map_{name}"


def _identifier(rule_id: str) -> str:
    text = "".join(c if c.isalnum() else "_" for c in rule_id or "rule")
    return text if text.isidentifier() and not keyword.iskeyword(text) else f"r_{text}"


def _undefined_map(name: str) -> Rule:
    def undefined(scope: Json, ctx: Any) -> Json:
        raise ConversionError(f"map '{name}' did not compile")

    return undefined
