"""Check a (merged) mapping spec against ``schemas/mapping-1.schema.json`` and report every error.

jsonschema reports an error at a JSON path; the loader's ``LineDict`` nodes turn that path back into
the file and line that wrote it, even when the spec was merged from several overlay files. All errors
are reported at once, in file order, each with the id of the rule it sits in.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson

from .errors import SchemaError, SpecErrors

MAPPING_SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "mapping-1.schema.json"

# Top-level keys whose value is a map of entries keyed by id, and the sub-maps of each section that
# are: a schema error is reported with the id of the entry it falls in (``maps.usage``).
ENTRY_MAPS = ("options", "tables", "maps")
SECTION_MAPS = {
    "request": ("fields", "drop", "reject", "passthrough"),
    "response": ("fields", "echo", "drop"),
    "error": ("fields",),
    "stream": ("framing", "init", "capture", "rules", "kinds", "outcome", "response", "start", "end",
               "fail", "envelope"),
    "coverage": ("request", "response", "stream", "upstream_response", "upstream_stream"),
}


@lru_cache(maxsize=1)
def mapping_schema() -> dict[str, Any]:
    """``schemas/mapping-1.schema.json``, parsed once."""
    return orjson.loads(MAPPING_SCHEMA.read_bytes())


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(mapping_schema())


def validate_spec(spec: dict[str, Any]) -> None:
    """Raise ``SpecErrors`` listing every schema violation in ``spec``, located; else return."""
    problems = [_located(error, spec) for error in _validator().iter_errors(spec)]
    if problems:
        problems.sort(key=lambda e: (e.file or "", e.line or 0, e.message))
        raise SpecErrors(problems)


def rule_id(path: list[Any]) -> str | None:
    """The id of the rule a JSON path falls in: ``maps.user_content``, ``request.fields.model``."""
    if not path:
        return None
    head = str(path[0])
    if head in ENTRY_MAPS and len(path) >= 2:
        return f"{head}.{path[1]}"
    if head in SECTION_MAPS and len(path) >= 3 and path[1] in SECTION_MAPS[head]:
        return f"{head}.{path[1]}.{path[2]}"
    return ".".join(str(p) for p in path[:2])


def _located(error: jsonschema.ValidationError, spec: dict[str, Any]) -> SchemaError:
    path = list(error.absolute_path)
    file, line = _line_of(spec, path)
    message = error.message
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {})
        extras = [key for key in error.instance if key not in allowed]
        if extras:
            key_lines = getattr(error.instance, "key_lines", {})
            file, line = key_lines.get(extras[0], (file, line))
            path = path + [extras[0]]
            message = f"unknown key {', '.join(repr(k) for k in extras)}"
    where = ".".join(str(p) for p in path) or "<root>"
    return SchemaError(f"{where}: {message}", file=file, line=line, rule=rule_id(path))


def _line_of(spec: Any, path: list[Any]) -> tuple[str | None, int | None]:
    """Walk ``path`` through the loader's nodes; the deepest known position wins."""
    node = spec
    file, line = getattr(spec, "file", None), getattr(spec, "line", None)
    for key in path:
        key_lines = getattr(node, "key_lines", None)
        if key_lines and key in key_lines:
            file, line = key_lines[key]
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
        file = getattr(node, "file", file)
        line = getattr(node, "line", line)
    return file, line
