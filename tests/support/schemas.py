"""JSON Schema checks for payloads the suite emits, against the OpenAI schemas in ``schemas/openai/``.

The schemas are the source of truth for shapes (STYLE §3), so tests validate against them instead of
against hand-written expectations. Two choices keep failures readable and the suite fast:

- ``assert_valid`` reports *every* error with its JSON path, ``best_match`` first, because the first
  error jsonschema happens to yield is often a distant ``anyOf`` branch rather than the real cause.
- Stream events are validated against the single ``$defs`` entry their ``type`` names in the schema's
  ``x-discriminator.mapping``, not against the whole 58-way ``oneOf``. That is faster, and the error
  names the field that is wrong instead of "is not valid under any of the given schemas".

Validators are built once per schema (and once per event type) and cached for the session.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

SCHEMA_DIR = Path(__file__).resolve().parent.parent.parent / "schemas" / "openai"
EVENT_SCHEMA = "responses.stream-event"


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """Return the parsed ``schemas/openai/<name>.json`` document."""
    path = SCHEMA_DIR / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in SCHEMA_DIR.glob("*.json"))
        raise ValueError(f"no schema {name!r} in {SCHEMA_DIR} (known: {', '.join(known)})")
    return json.loads(path.read_text(encoding="utf-8"))


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """Return a cached Draft 2020-12 validator for ``schemas/openai/<name>.json``.

    >>> validator("chat.chunk").is_valid({"object": "chat.completion.chunk"})
    False
    """
    return Draft202012Validator(load_schema(name))


def event_types() -> frozenset[str]:
    """Every Responses stream event ``type`` the schema knows."""
    return frozenset(_event_mapping())


@functools.cache
def event_validator(event_type: str) -> Draft202012Validator:
    """Return a cached validator for one Responses stream event type.

    The validator's schema is ``{"$ref": "#/$defs/<Name>", "$defs": <all defs>}``, so every ``$ref``
    inside the event's definition resolves against the same bundle as the full schema does.
    """
    mapping = _event_mapping()
    if event_type not in mapping:
        raise KeyError(event_type)
    bundle = load_schema(EVENT_SCHEMA)
    schema = {"$schema": bundle["$schema"], "$ref": mapping[event_type], "$defs": bundle["$defs"]}
    return Draft202012Validator(schema)


def schema_errors(name: str, payload: Any) -> list[str]:
    """Return every error of ``payload`` against schema ``name`` as ``"$.path: message"`` lines."""
    return _format_errors(validator(name), payload)


def assert_valid(name: str, payload: Any) -> None:
    """Raise AssertionError listing all errors of ``payload`` against ``schemas/openai/<name>.json``."""
    errors = schema_errors(name, payload)
    if errors:
        raise AssertionError(_report(f"payload is not a valid {name}", errors))


def assert_valid_event(event: Any) -> None:
    """Raise AssertionError unless ``event`` is a valid Responses stream event of a known ``type``."""
    if not isinstance(event, dict):
        raise AssertionError(f"stream event is a {type(event).__name__}, not a JSON object")
    event_type = event.get("type")
    if not isinstance(event_type, str) or event_type not in _event_mapping():
        raise AssertionError(f"$.type: {event_type!r} is not a known Responses stream event type")
    errors = _format_errors(event_validator(event_type), event)
    if errors:
        raise AssertionError(_report(f"event is not a valid {event_type}", errors))


@functools.cache
def _event_mapping() -> dict[str, str]:
    discriminator = load_schema(EVENT_SCHEMA)["x-discriminator"]
    assert discriminator["propertyName"] == "type"
    return dict(discriminator["mapping"])


def _format_errors(schema_validator: Draft202012Validator, payload: Any) -> list[str]:
    errors = list(schema_validator.iter_errors(payload))
    if not errors:
        return []
    best = best_match(errors)
    rest = sorted((e for e in errors if e is not best), key=lambda e: [str(p) for p in e.absolute_path])
    lines: list[str] = []
    for error in [best, *rest]:
        line = _format_error(error)
        if line not in lines:
            lines.append(line)
    return lines


def _format_error(error: ValidationError) -> str:
    path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    message = error.message if len(error.message) <= 300 else error.message[:300] + "..."
    return f"{path}: {message}"


def _report(headline: str, errors: list[str]) -> str:
    count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
    return "\n".join([f"{headline} ({count}, best match first):", *(f"  {line}" for line in errors)])
