"""Type aliases shared by the engine (like starlette/types.py).

Payloads are plain JSON values: ``dict``/``list``/``str``/numbers/``bool``/``None``. There are no
pydantic models of the OpenAI APIs on purpose: ``schemas/openai/`` is the source of truth, and
plain dicts are what JSON parsers give and take, so conversion never copies into objects and back.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Union

Json = Any
"""Any JSON value. (A precise recursive alias buys little here and slows type checkers down.)"""

JsonObject = Dict[str, Json]
Chunk = JsonObject
"""One decoded upstream stream frame (a chat chunk or a Responses event)."""

Event = JsonObject
"""One event (or chat chunk) the stream runtime emits."""

Rule = Callable[[Json, "Context"], Json]  # noqa: F821 - Context lives in engine.context
"""A compiled rule: ``(scope, ctx) -> value``; ``None`` means "no value" and omits the field."""

PathSegment = Union[str, int]
Path = List[PathSegment]
