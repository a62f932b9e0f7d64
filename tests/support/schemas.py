"""JSON Schema checks for payloads the suite emits, against the schemas in ``schemas/openai/`` (and, through
``SchemaFolder``, ``schemas/anthropic/``).

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

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match

SCHEMA_ROOT = Path(__file__).resolve().parent.parent.parent / "schemas"


def _discriminated_one_of(validator: Any, one_of: list[Any], instance: Any, schema: dict[str, Any]) -> Any:
    """``oneOf`` that validates only the variant an ``x-discriminator`` names, when the instance names one.

    The result is the same (variants pin distinct constants), but an error then points into that
    variant ("$.delta: 'text' is a required property") instead of "not valid under any of the given
    schemas" about the whole union.
    """
    variant = _named_variant(one_of, instance, schema.get("x-discriminator"))
    if variant is None:
        yield from Draft202012Validator.VALIDATORS["oneOf"](validator, one_of, instance, schema)
    else:
        yield from validator.descend(instance, variant, schema_path=one_of.index(variant))


def _named_variant(one_of: list[Any], instance: Any, discriminator: Any) -> Any:
    if not isinstance(discriminator, dict) or not isinstance(instance, dict):
        return None
    value = instance.get(discriminator["propertyName"])
    ref = discriminator["mapping"].get(value) if isinstance(value, str) else discriminator.get("whenAbsent")
    return next((variant for variant in one_of if variant.get("$ref") == ref), None) if ref else None


# Draft 2020-12 with the discriminated oneOf above; every SchemaFolder validator is one of these
DiscriminatingValidator = validators.extend(Draft202012Validator, {"oneOf": _discriminated_one_of})


class SchemaFolder:
    """The schemas of one API (one folder of ``schemas/``) and the cached validators built from them.

    ``event_schema`` names the file whose root ``x-discriminator`` maps each stream event ``type`` to
    its ``$defs`` entry; ``api`` names the API in error messages.
    """

    def __init__(self, folder: str, event_schema: str, api: str) -> None:
        self.directory = SCHEMA_ROOT / folder
        self.event_schema = event_schema
        self.api = api
        self.load_schema = functools.cache(self._load_schema)
        self.validator = functools.cache(self._validator)
        self.event_validator = functools.cache(self._event_validator)
        self._event_mapping = functools.cache(self._read_event_mapping)

    def _load_schema(self, name: str) -> dict[str, Any]:
        path = self.directory / f"{name}.json"
        if not path.is_file():
            known = sorted(p.stem for p in self.directory.glob("*.json"))
            raise ValueError(f"no schema {name!r} in {self.directory} (known: {', '.join(known)})")
        return json.loads(path.read_text(encoding="utf-8"))

    def _validator(self, name: str) -> Draft202012Validator:
        return DiscriminatingValidator(self.load_schema(name))

    def _event_validator(self, event_type: str) -> Draft202012Validator:
        # {"$ref": "#/$defs/<Name>", "$defs": <all defs>}: every $ref inside the event's definition
        # resolves against the same bundle as the full schema does
        mapping = self._event_mapping()
        if event_type not in mapping:
            raise KeyError(event_type)
        bundle = self.load_schema(self.event_schema)
        return DiscriminatingValidator({"$schema": bundle["$schema"], "$ref": mapping[event_type], "$defs": bundle["$defs"]})

    def _read_event_mapping(self) -> dict[str, str]:
        discriminator = self.load_schema(self.event_schema)["x-discriminator"]
        assert discriminator["propertyName"] == "type"
        return dict(discriminator["mapping"])

    def event_types(self) -> frozenset[str]:
        """Every stream event ``type`` the event schema knows."""
        return frozenset(self._event_mapping())

    def schema_errors(self, name: str, payload: Any) -> list[str]:
        """Every error of ``payload`` against schema ``name`` as ``"$.path: message"`` lines."""
        return _format_errors(self.validator(name), payload)

    def event_errors(self, event: Any) -> list[str]:
        """Every error of one stream event against its type's definition; an unknown ``type`` is one error."""
        problem = self._unknown_event(event)
        return [problem] if problem else _format_errors(self.event_validator(event["type"]), event)

    def _unknown_event(self, event: Any) -> str | None:
        if not isinstance(event, dict):
            return f"stream event is a {type(event).__name__}, not a JSON object"
        event_type = event.get("type")
        if not isinstance(event_type, str) or event_type not in self._event_mapping():
            return f"$.type: {event_type!r} is not a known {self.api} stream event type"
        return None

    def assert_valid(self, name: str, payload: Any) -> None:
        """Raise AssertionError listing all errors of ``payload`` against ``<folder>/<name>.json``."""
        errors = self.schema_errors(name, payload)
        if errors:
            raise AssertionError(_report(f"payload is not a valid {name}", errors))

    def assert_valid_event(self, event: Any) -> None:
        """Raise AssertionError unless ``event`` is a valid stream event of a known ``type``."""
        problem = self._unknown_event(event)
        if problem:
            raise AssertionError(problem)
        errors = _format_errors(self.event_validator(event["type"]), event)
        if errors:
            raise AssertionError(_report(f"event is not a valid {event['type']}", errors))


OPENAI = SchemaFolder("openai", "responses.stream-event", "Responses")
SCHEMA_DIR = OPENAI.directory
EVENT_SCHEMA = OPENAI.event_schema


def load_schema(name: str) -> dict[str, Any]:
    """Return the parsed ``schemas/openai/<name>.json`` document."""
    return OPENAI.load_schema(name)


def validator(name: str) -> Draft202012Validator:
    """Return a cached Draft 2020-12 validator for ``schemas/openai/<name>.json``.

    >>> validator("chat.chunk").is_valid({"object": "chat.completion.chunk"})
    False
    """
    return OPENAI.validator(name)


def event_types() -> frozenset[str]:
    """Every Responses stream event ``type`` the schema knows."""
    return OPENAI.event_types()


def event_validator(event_type: str) -> Draft202012Validator:
    """Return a cached validator for one Responses stream event type."""
    return OPENAI.event_validator(event_type)


def schema_errors(name: str, payload: Any) -> list[str]:
    """Return every error of ``payload`` against schema ``name`` as ``"$.path: message"`` lines."""
    return OPENAI.schema_errors(name, payload)


def assert_valid(name: str, payload: Any) -> None:
    """Raise AssertionError listing all errors of ``payload`` against ``schemas/openai/<name>.json``.

    ``name`` may also be ``folder/stem`` (the engine's names, ``mapper.engine.apis``), for any API.
    """
    folder, _, stem = name.rpartition("/")
    if folder and folder != "openai":
        from .anthropic_schemas import ANTHROPIC  # the only other folder

        ANTHROPIC.assert_valid(stem, payload)
        return
    OPENAI.assert_valid(stem, payload)


def assert_valid_event(event: Any) -> None:
    """Raise AssertionError unless ``event`` is a valid Responses stream event of a known ``type``."""
    OPENAI.assert_valid_event(event)


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
