"""The mapping engine: load a YAML mapping, compile it once, run conversions over plain dicts.

    mapping = load_mapping("openai-chat")            # load + validate + compile, once
    chat_request = mapping.convert_request(responses_request)
    response = mapping.convert_response(chat_completion, request=responses_request)
    machine = mapping.stream(request=responses_request)   # one per upstream stream

Stages and their errors are described in ``engine.errors``.
"""

from __future__ import annotations

from typing import Any, Iterable

from .compile import compile_mapping
from .context import Context, RandomIds, SequentialIds, deterministic_context, fixed_clock
from .errors import (ConversionError, MapperError, RejectedField, SpecError, SpecErrors, StreamError,
                     UpstreamError)
from .load import builtin_names, load
from .mapping import Mapping


def load_mapping(reference: str, overlays: Iterable[str] = (),
                 options: dict[str, Any] | None = None) -> Mapping:
    """Load, merge, validate and compile a mapping by built-in name or file path."""
    return compile_mapping(load(reference, overlays=tuple(overlays), options=options))


__all__ = [
    "Context", "ConversionError", "Mapping", "MapperError", "RandomIds", "RejectedField",
    "SequentialIds", "SpecError", "SpecErrors", "StreamError", "UpstreamError", "builtin_names",
    "deterministic_context", "fixed_clock", "load_mapping",
]
