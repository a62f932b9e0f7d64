"""Stage two: turn a resolved, schema-checked spec into an immutable ``Mapping``.

Everything that can be decided before a payload arrives is decided here, once: expressions are
parsed, templates compiled, function names resolved against the registry, tables indexed, and the
set of request fields each rule reads is worked out. Compile errors are collected per rule and
reported together, each with its file, line and rule id.
"""

from __future__ import annotations

from typing import Any, Callable

from .context import Context
from .coverage import document_reads
from .errors import ConversionError, SpecError, SpecErrors
from .load import Loaded
from .mapping import Document, Mapping, Reject, read_only
from .ops import RuleCompiler, Table, Where, plain
from .paths import WHOLE
from .schema import validate_spec
from .types import Json, Rule

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
        compiled = collect.run(lambda r=rule, w=where: compiler.compile(r, w))
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


def _fields(section: dict[str, Any], key: str, compiler: RuleCompiler, rule_prefix: str) -> tuple:
    """Compile a section's field rules into ``(name, rule, always_written, rule_id)`` tuples."""
    fields = section.get(key) or {}
    collect = _Collector()
    compiled = []
    for name, rule in fields.items():
        rule_id = f"{rule_prefix}.{name}"
        where = Where(None, None, rule_id).inside(fields, name)
        compiled_rule = collect.run(lambda r=rule, w=where: compiler.compile(r, w))
        compiled.append((name, compiled_rule, compiler.always_written(rule), rule_id))
    if collect.errors:
        raise SpecErrors(collect.errors)
    return tuple(compiled)


def _emit(compiled: tuple) -> Rule:
    """Build the section's object; a run error is attributed to the field rule that raised it."""

    def build(scope: Json, ctx: Context) -> Json:
        out = {}
        rule_id = None
        try:
            for name, rule, always, rule_id in compiled:
                value = rule(scope, ctx)
                if value is not None or always:
                    out[name] = value
        except ConversionError as error:
            if error.rule is None:
                error.rule = rule_id
            raise
        return out

    return build


def _request(spec: dict[str, Any], compiler: RuleCompiler, maps: dict[str, Any]) -> Document | None:
    section = spec.get("request")
    if not section:
        return None
    fields = _fields(section, "fields", compiler, "request.fields")
    reads = document_reads(section.get("fields") or {}, maps) - {WHOLE}
    rejects = []
    for field, entry in (section.get("reject") or {}).items():
        if isinstance(entry, dict):
            where = Where(None, None, f"request.reject.{field}").inside(entry, "when")
            when = compiler.compile(entry["when"], where) if "when" in entry else None
            rejects.append(Reject(field, when, str(entry["message"])))
        else:
            rejects.append(Reject(field, None, str(entry)))
    drops = tuple(section.get("drop") or ())
    passthrough = tuple(section.get("passthrough") or ())
    known = frozenset(reads) | frozenset(drops) | frozenset(passthrough) | {r.field for r in rejects}
    return Document(build=_emit(fields), rejects=tuple(rejects), known=known,
                    passthrough=passthrough, drops=drops, reads=frozenset(reads))


def _response(spec: dict[str, Any], compiler: RuleCompiler, maps: dict[str, Any]) -> Document | None:
    section = spec.get("response")
    if not section:
        return None
    overlap = set(section.get("fields") or {}) & set(section.get("echo") or {})
    if overlap:
        raise SpecError(f"response fields and echo both set {', '.join(sorted(overlap))}",
                        file=getattr(section, "file", None), line=getattr(section, "line", None),
                        rule="response.echo")
    fields = _fields(section, "fields", compiler, "response.fields")
    echo = _fields(section, "echo", compiler, "response.echo")
    reads = document_reads(section.get("fields") or {}, maps) - {WHOLE}
    drops = tuple(section.get("drop") or ())
    return Document(build=_emit(fields + echo), drops=drops, reads=frozenset(reads),
                    known=frozenset(reads) | frozenset(drops))


def _error(spec: dict[str, Any], compiler: RuleCompiler, maps: dict[str, Any]) -> Document | None:
    section = spec.get("error")
    if not section:
        return None
    return Document(build=_emit(_fields(section, "fields", compiler, "error.fields")))
