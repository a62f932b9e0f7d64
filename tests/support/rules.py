"""Compile one rule written as YAML, the way a mapping writes it, for the op and compiler tests."""

from __future__ import annotations

from typing import Any

import yaml

from mapper.engine.codegen import RuleCompiler
from mapper.engine.context import Context, deterministic_context
from mapper.engine.coverage import rule_reads
from mapper.engine.ops import Table, Where
from mapper.engine.source import Code

WHERE = Where("test.yaml", 1, "test")


def compiler(maps: dict[str, str] | None = None, tables: dict[str, Table] | None = None) -> RuleCompiler:
    """A compiler whose named maps (YAML text) are compiled and defined."""
    rules = RuleCompiler(tables=tables or {}, map_names=(maps or {}).keys())
    for name, spec in (maps or {}).items():
        rules.define_map(name, rules.compile(yaml.safe_load(spec), Where(None, None, name),
                                             rule_id=f"maps.{name}"))
    return rules


def rule(text: str, maps: dict[str, str] | None = None, tables: dict[str, Table] | None = None) -> Any:
    """The rule in ``text`` as a function ``(scope, ctx) -> value``."""
    return compiler(maps, tables).compile(yaml.safe_load(text), WHERE)


def run(text: str, scope: Any, ctx: Context | None = None, **kwargs: Any) -> Any:
    """The value of the rule in ``text`` for ``scope``."""
    return rule(text, **kwargs)(scope, ctx or deterministic_context())


def code(text: str, maps: dict[str, str] | None = None, tables: dict[str, Table] | None = None) -> tuple[Code, str]:
    """What compiling the rule in ``text`` returns (its ``Code``) and the statements it wrote."""
    rules = compiler(maps, tables)
    w = rules.writer()
    value = rules.rule(w, yaml.safe_load(text), "scope", WHERE)
    return value, "\n".join(w.lines)


def reads(text: str, maps: dict[str, str] | None = None) -> set[str]:
    """The root fields the rule in ``text`` reads, for coverage."""
    return rule_reads(yaml.safe_load(text), {name: yaml.safe_load(spec) for name, spec in (maps or {}).items()})
