"""Stage two: turn a resolved, schema-checked spec into an immutable ``Mapping``.

Everything that can be decided before a payload arrives is decided here, once: expressions are
parsed, templates compiled, function names resolved against the registry, tables indexed, and the
set of request fields each rule reads is worked out. Compile errors are collected per rule and
reported together, each with its file, line and rule id.
"""

from __future__ import annotations

from typing import Any, Callable

from .coverage import document_reads
from .errors import SpecError, SpecErrors
from .load import Loaded
from .mapping import Document, Mapping, Reject, read_only
from .codegen import RuleCompiler
from .ops import Table, Where, plain
from .paths import WHOLE
from .schema import validate_spec
from .types import Rule

DEFAULT_OPTIONS = {
    # a request field that no rule reads, drops, rejects or passes through: reject | drop
    "unknown_fields": "reject",
}


class _Collector:
    """Runs compile steps and keeps every ``SpecError`` instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[SpecError] = []

    def run(self, step: Callable[[], Any]) -> Any:
        try:
            return step()
        except SpecErrors as many:
            self.errors.extend(many.errors)
        except SpecError as error:
            self.errors.append(error)
        return None


def compile_mapping(loaded: Loaded) -> Mapping:
    """Validate and compile ``loaded``. Raises ``SpecErrors`` listing every problem found."""
    spec = loaded.spec
    validate_spec(spec)
    collect = _Collector()
    tables = {name: table for name, table in
              ((name, collect.run(lambda n=name, t=t: _table(n, t, spec)))
               for name, t in (spec.get("tables") or {}).items()) if table is not None}
    maps = spec.get("maps") or {}
    compiler = RuleCompiler(tables=tables, map_names=maps)
    for name, rule in maps.items():
        where = Where(None, None, f"maps.{name}").inside(maps, name)
        compiled = collect.run(lambda r=rule, w=where, n=name: compiler.compile(r, w, rule_id=f"maps.{n}"))
        if compiled is not None:
            compiler.define_map(name, compiled)

    request = collect.run(lambda: _request(spec, compiler, maps))
    response = collect.run(lambda: _response(spec, compiler, maps))
    error = collect.run(lambda: _error(spec, compiler, maps))
    stream_spec = None
    if spec.get("stream"):
        from .stream_spec import compile_stream  # imported lazily: request-only tools skip it
        stream_spec = collect.run(lambda: compile_stream(spec, compiler))
    if collect.errors:
        raise SpecErrors(collect.errors)

    options = dict(DEFAULT_OPTIONS)
    options.update(spec.get("options") or {})
    return Mapping(
        id=str(spec["id"]),
        version=str(spec["version"]),
        description=str(spec.get("description", "")).strip(),
        from_api=spec["from"],
        to_api=spec["to"],
        sources=loaded.sources,
        options=read_only(options),
        spec=spec,
        request=request,
        response=response,
        error=error,
        stream_spec=stream_spec,
        reject_unknown=options.get("unknown_fields") == "reject",
        generated_source="\n".join(compiler.sources),
    )


def _table(name: str, spec: dict[str, Any], root: dict[str, Any]) -> Table:
    where = Where(None, None, f"tables.{name}").inside(root.get("tables"), name)
    columns = tuple(spec.get("columns") or ())
    rows: dict[str, Any] = {}
    for key, row in spec["rows"].items():
        if columns:
            if not isinstance(row, list) or len(row) != len(columns):
                row_where = where.inside(spec["rows"], key)
                raise row_where.error(SpecError, f"row {key!r} needs {len(columns)} values "
                                                 f"({', '.join(columns)})")
            row = tuple(row)
        rows[str(key)] = plain(row)
    default = spec.get("default")
    if default is not None and str(default) not in rows:
        raise where.error(SpecError, f"default row {default!r} is not a row of the table")
    return Table(name, rows, columns, None if default is None else str(default))


def _section(section: dict[str, Any], keys: tuple[str, ...], compiler: RuleCompiler,
             rule_prefix: str) -> Rule:
    """One generated function that builds the section's object from its field rules."""
    fields = []
    for key in keys:
        entries = section.get(key) or {}
        for name, rule in entries.items():
            where = Where(None, None, f"{rule_prefix}.{key}.{name}").inside(entries, name)
            fields.append((name, rule, where))
    where = Where(getattr(section, "file", None), getattr(section, "line", None), rule_prefix)
    return compiler.compile_section(fields, where)


def _prepare(section: dict[str, Any], compiler: RuleCompiler, rule_prefix: str) -> Rule | None:
    """A section's ``prepare`` rule, run on the whole document before its fields read it."""
    if section.get("prepare") is None:
        return None
    where = Where(None, None, f"{rule_prefix}.prepare").inside(section, "prepare")
    return compiler.compile(section["prepare"], where)


def _request(spec: dict[str, Any], compiler: RuleCompiler, maps: dict[str, Any]) -> Document | None:
    section = spec.get("request")
    if not section:
        return None
    build = _section(section, ("fields",), compiler, "request")
    reads = document_reads(section.get("fields") or {}, maps) - {WHOLE}
    rejects = []
    for field, entry in (section.get("reject") or {}).items():
        if isinstance(entry, dict):
            where = Where(None, None, f"request.reject.{field}").inside(entry)
            when = compiler.compile_guard(entry, where)
            rejects.append(Reject(field, when, str(entry["message"])))
        else:
            rejects.append(Reject(field, None, str(entry)))
    drops = tuple(section.get("drop") or ())
    passthrough = tuple(section.get("passthrough") or ())
    known = frozenset(reads) | frozenset(drops) | frozenset(passthrough) | {r.field for r in rejects}
    return Document(build=build, rejects=tuple(rejects), known=known,
                    passthrough=passthrough, drops=drops, reads=frozenset(reads),
                    prepare=_prepare(section, compiler, "request"))


def _response(spec: dict[str, Any], compiler: RuleCompiler, maps: dict[str, Any]) -> Document | None:
    section = spec.get("response")
    if not section:
        return None
    overlap = set(section.get("fields") or {}) & set(section.get("echo") or {})
    if overlap:
        raise SpecError(f"response fields and echo both set {', '.join(sorted(overlap))}",
                        file=getattr(section, "file", None), line=getattr(section, "line", None),
                        rule="response.echo")
    build = _section(section, ("fields", "echo"), compiler, "response")
    reads = document_reads(section.get("fields") or {}, maps) - {WHOLE}
    drops = tuple(section.get("drop") or ())
    return Document(build=build, drops=drops, reads=frozenset(reads),
                    known=frozenset(reads) | frozenset(drops),
                    prepare=_prepare(section, compiler, "response"))


def _error(spec: dict[str, Any], compiler: RuleCompiler, maps: dict[str, Any]) -> Document | None:
    section = spec.get("error")
    if not section:
        return None
    return Document(build=_section(section, ("fields",), compiler, "error"),
                    prepare=_prepare(section, compiler, "error"))
