"""Refuse a client's request the way the client API would, before anything is converted or sent.

A Responses client that sends ``tool_choice: 3`` or ``max_output_tokens: -1`` to OpenAI gets a
400 that names the parameter; through mapper it must get the same 400, not a 200 with the value
dropped or passed to an upstream that does something else with it. The rules are the client API's
request schema (``schemas/openai/responses.request.json``, ``chat.request.json``) plus a small
supplement of limits the schema leaves out (``schemas/validation-supplement.json``).

Checking a request with a JSON Schema library costs about a millisecond; a conversion costs ~17 µs.
So the schema is compiled once, when the first mapping from that API is loaded, into plain Python
functions (``engine.validation.generate``, written with the engine's ``SourceWriter``) that do only
class tests, set lookups and comparisons, and pay for error paths only when a request is refused.

What is checked: types, ``enum``/``const``, numeric bounds, string and array lengths, required
members of known objects, the members of known union variants. What is not: an unknown property
(the mapping's unknown-field policy decides), a union member whose ``type`` the schema does not
know (the mapping maps, drops or refuses it by name), ``null`` for an optional member (taken as
"not given", as the mappings do), and keywords outside the subset (``pattern``, ``format``).

    validate = request_validator("openai.responses")
    validate({"model": "m", "input": "hi", "tool_choice": 3})
    # InvalidRequest: Invalid type for 'tool_choice': expected one of one of 'none', 'auto', or
    # 'required' or object, but got an integer instead.   (param 'tool_choice', code invalid_type)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import copy

from ..apis import schema_document, schema_name
from ..types import Json
from .generate import Generator
from .runtime import Invalid
from .shapes import Reader
from .supplement import supplement

__all__ = ["RequestValidator", "compile_validator", "request_validator", "validator_for_schema"]


@dataclass(frozen=True, slots=True)
class RequestValidator:
    """The compiled check of one API's requests. Raises ``InvalidRequest``; shared by all callers."""

    schema: str
    check: Callable[[Json], None]
    source: str  # the generated Python, for reading and debugging

    def __call__(self, body: Json) -> None:
        try:
            self.check(body)
        except Invalid as failure:
            raise failure.error() from None


@lru_cache(maxsize=None)
def request_validator(api: str) -> RequestValidator | None:
    """The validator for requests *to* ``api`` (a mapping's ``from``), or None if mapper has no schema."""
    schema = schema_name(api, "request")
    return validator_for_schema(schema) if schema is not None else None


@lru_cache(maxsize=None)
def validator_for_schema(schema: str) -> RequestValidator:
    """Compile ``schemas/<schema>.json`` (``folder/stem``) plus its supplement into a validator."""
    document = copy.deepcopy(schema_document(schema))  # the supplement edits it in place
    return compile_validator(supplement(schema, document), schema)


def compile_validator(document: dict[str, Json], name: str) -> RequestValidator:
    """Compile one JSON Schema document (a root and its ``$defs``) into a ``RequestValidator``."""
    reader = Reader(document)
    generator = Generator(reader, filename=f"<validate {name}>")
    check = generator.compile(reader.root())
    return RequestValidator(name, check, "\n".join(reversed(generator.sources)))
