"""The APIs mapper speaks, and where the schemas that describe each of their payloads live.

A mapping names two APIs (``from``: the client's, ``to``: the upstream's). Everything that reads a
schema (coverage, union coverage, request validation, the tests' checks) finds it here, so adding
an API means adding one entry. OpenAI's schemas are vendored under ``schemas/openai/`` (see its
SOURCE.md); Anthropic's are derived from its SDK under ``schemas/anthropic/``.

Anthropic's request schema is the *beta* one (``/v1/messages?beta=true``): it is a superset of the
plain request, and it is what Claude Code sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from .load import PACKAGE_ROOT

SCHEMAS_DIR = PACKAGE_ROOT / "schemas"


@dataclass(frozen=True, slots=True)
class Api:
    """One API: the folder of its schemas, and which file describes which payload."""

    folder: str
    schemas: dict[str, str]  # request | response | stream | error (| count_tokens) -> file stem


APIS: dict[str, Api] = {
    "openai.responses": Api("openai", {"request": "responses.request", "response": "responses.response",
                                       "stream": "responses.stream-event", "error": "error"}),
    "openai.chat": Api("openai", {"request": "chat.request", "response": "chat.response",
                                  "stream": "chat.chunk", "error": "error"}),
    "anthropic.messages": Api("anthropic", {"request": "messages.beta.request",
                                            "response": "messages.response",
                                            "stream": "messages.stream-event", "error": "error",
                                            "count_tokens": "count_tokens.request"}),
}


def schema_name(api: str, kind: str) -> str | None:
    """``folder/stem`` of the schema of ``api``'s ``kind`` of payload, or None when there is none."""
    entry = APIS.get(api)
    stem = entry.schemas.get(kind) if entry is not None else None
    return f"{entry.folder}/{stem}" if stem is not None else None


def schema_path(name: str) -> Path:
    """The file of a schema named ``folder/stem``."""
    return SCHEMAS_DIR / f"{name}.json"


@lru_cache(maxsize=None)
def schema_document(name: str) -> dict[str, Any]:
    """The parsed schema named ``folder/stem`` (read once)."""
    return orjson.loads(schema_path(name).read_bytes())
