"""JSON Schema checks against the Anthropic Messages schemas in ``schemas/anthropic/``.

The twin of ``schemas.py`` for the third API, built on the same ``SchemaFolder``: every error is
reported with its JSON path, best match first, and a stream event is validated against the one
``$defs`` entry its ``type`` names in ``messages.stream-event.json``'s ``x-discriminator``.
"""

from __future__ import annotations

from typing import Any

from .schemas import SchemaFolder

ANTHROPIC = SchemaFolder("anthropic", "messages.stream-event", "Messages")
SCHEMA_DIR = ANTHROPIC.directory


def assert_valid(name: str, payload: Any) -> None:
    """Raise AssertionError listing all errors of ``payload`` against ``schemas/anthropic/<name>.json``."""
    ANTHROPIC.assert_valid(name, payload)


def assert_valid_event(event: Any) -> None:
    """Raise AssertionError unless ``event`` is a valid Messages stream event of a known ``type``."""
    ANTHROPIC.assert_valid_event(event)


def schema_errors(name: str, payload: Any) -> list[str]:
    """Every error of ``payload`` against ``schemas/anthropic/<name>.json`` as ``"$.path: message"`` lines."""
    return ANTHROPIC.schema_errors(name, payload)


def event_errors(event: Any) -> list[str]:
    """Every schema error of one Messages stream event (an unknown ``type`` is one error)."""
    return ANTHROPIC.event_errors(event)
