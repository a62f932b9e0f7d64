"""Stage two: turn a resolved, schema-checked spec into an immutable ``Mapping``.

Everything that can be decided before a payload arrives is decided here, once: expressions are
parsed, templates compiled, function names resolved against the registry, tables indexed, and the
set of request fields each rule reads is worked out. Compile errors are collected per rule and
reported together, each with its file, line and rule id.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from .coverage import document_reads
from .errors import ReferenceError_, SpecError, SpecErrors
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
    order = {source: index for index, source in enumerate(loaded.sources)}
    # a table with a bad row is still built (without it), so that its lookups compile and the
    # row is the only error reported
    tables = {name: _table(name, table, spec, order, collect.errors)
              for name, table in (spec.get("tables") or {}).items()}
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
    client_error = collect.run(lambda: _error(spec, compiler, maps, "client_error"))
    count_tokens = collect.run(lambda: _error(spec, compiler, maps, "count_tokens"))
    stream_spec = None
    if spec.get("stream"):
        from .stream_spec import compile_stream  # imported lazily: request-only tools skip it
        stream_spec = collect.run(lambda: compile_stream(spec, compiler))
    if collect.errors:
        raise SpecErrors([_blame_columns(error, spec, order) for error in collect.errors])

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
        tables=read_only({name: read_only(table.rows) for name, table in tables.items()}),
        request=request,
        response=response,
        error=error,
        client_error=client_error,
        count_tokens=count_tokens,
        stream_spec=stream_spec,
        reject_unknown=options.get("unknown_fields") == "reject",
        generated_source="\n".join(compiler.sources),
    )


def _table(name: str, spec: dict[str, Any], root: dict[str, Any], order: dict[str, int],
           errors: list[SpecError]) -> Table:
    where = Where(None, None, f"tables.{name}").inside(root.get("tables"), name)
    columns = tuple(spec.get("columns") or ())
    rows: dict[str, Any] = {}
    for key, row in spec["rows"].items():
        if columns:
            if not isinstance(row, list) or len(row) != len(columns):
                errors.append(_row_error(name, spec, key, columns, where, order))
                continue
            row = tuple(row)
        rows[str(key)] = plain(row)
    default = spec.get("default")
    if default is not None and str(default) not in rows:
        if str(default) not in map(str, spec["rows"]):  # not a bad row, already reported
            errors.append(where.inside(spec, "default").error(
                SpecError, f"default row {default!r} is not a row of the table"))
        default = None
    return Table(name, rows, columns, None if default is None else str(default))


def _row_error(name: str, table: dict[str, Any], key: Any, columns: tuple[str, ...], where: Where,
               order: dict[str, int]) -> SpecError:
    """A row that does not fit the columns, blamed on whichever of the two an overlay wrote later."""
    row_where, columns_where = where.inside(table["rows"], key), where.inside(table, "columns")
    message = f"row {key!r} needs {len(columns)} values ({', '.join(columns)})"
    if _later(columns_where.file, row_where.file, order):
        return columns_where.error(SpecError, f"{message}; the row is at {row_where.file}:{row_where.line}")
    return row_where.error(SpecError, message)


def _later(file: str | None, than: str | None, order: dict[str, int]) -> bool:
    """Whether ``file`` was applied after ``than`` (an overlay after its base)."""
    return file is not None and than is not None and order.get(file, -1) > order.get(than, -1)


_NO_COLUMN = re.compile(r"table '(?P<table>[^']+)' has no column ")


def _blame_columns(error: SpecError, spec: dict[str, Any], order: dict[str, int]) -> SpecError:
    """A lookup of a column that an overlay took away from its table is the overlay's error.

    The lookup (in the base, say) was right until an overlay rewrote the table's columns; the error
    then points at the overlay's table, and names the lookup.
    """
    match = _NO_COLUMN.match(error.message) if isinstance(error, ReferenceError_) else None
    table = (spec.get("tables") or {}).get(match["table"]) if match else None
    if table is None:
        return error
    columns = Where(None, None, f"tables.{match['table']}").inside(spec["tables"], match["table"])
    columns = columns.inside(table, "columns") if "columns" in table else columns
    if not _later(columns.file, error.file, order):
        return error
    return columns.error(ReferenceError_, f"{error.message}, which {error.location} [{error.rule}] "
                                          "looks up")


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


def _error(spec: dict[str, Any], compiler: RuleCompiler, maps: dict[str, Any],
           name: str = "error") -> Document | None:
    """The ``error`` section (or ``client_error``, ``count_tokens``: built the same way)."""
    section = spec.get(name)
    if not section:
        return None
    status = None
    if section.get("status") is not None:
        status = compiler.compile(section["status"],
                                  Where(None, None, f"{name}.status").inside(section, "status"))
    return Document(build=_section(section, ("fields",), compiler, name),
                    prepare=_prepare(section, compiler, name), status=status)
