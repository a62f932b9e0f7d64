"""The compiled ``Mapping``: immutable, shared by every request, and the run-stage entry points.

``Mapping.convert_request`` / ``convert_response`` / ``convert_error`` are pure functions over
dicts: the only state they touch is the per-call ``Context`` (clock, ids, the original request).
``Mapping.stream()`` hands out a fresh per-stream state machine (see ``engine.stream``).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping as ReadOnly

from .context import Context
from .errors import ConversionError, RejectedField
from .ops import truthy
from .types import Json, JsonObject, Rule


@dataclass(frozen=True, slots=True)
class Reject:
    """A ``reject:`` entry: refuse ``field`` when present (and when ``when`` holds)."""

    field: str
    when: Rule | None
    message: str


@dataclass(frozen=True, slots=True)
class Document:
    """One compiled section (request, response or error): its field rules and dispositions."""

    build: Rule
    rejects: tuple[Reject, ...] = ()
    known: frozenset[str] = frozenset()
    passthrough: tuple[str, ...] = ()
    drops: tuple[str, ...] = ()
    reads: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Mapping:
    """One direction of one protocol pair, compiled once. Safe to share across threads and tasks."""

    id: str
    version: str
    description: str
    from_api: str
    to_api: str
    sources: tuple[str, ...]
    options: ReadOnly[str, Json]
    # each table's rows, read-only, for ``$tables.NAME``
    tables: ReadOnly[str, ReadOnly[str, Json]]
    spec: Any
    request: Document | None
    response: Document | None
    error: Document | None
    stream_spec: Any = None
    # whether a request field that no rule knows is refused (option ``unknown_fields``)
    reject_unknown: bool = True
    # the Python the mapping compiled to (``mapper resolve --code``)
    generated_source: str = ""

    # -- requests -------------------------------------------------------------------------------

    def convert_request(self, body: Json, ctx: Context | None = None) -> JsonObject:
        """Convert a client request into the upstream's request. Raises ``ConversionError``."""
        document = self.request
        if document is None:
            raise self._missing("request")
        if body.__class__ is not dict:
            raise ConversionError("the request body must be a JSON object")
        # the client's request is both the document and ``$request`` (functions that know the
        # client's tools read them there, in every direction and kind)
        if ctx is None:
            ctx = Context(options=self.options, tables=self.tables, root=body, request=body)
        else:
            ctx.options, ctx.tables, ctx.root, ctx.request = self.options, self.tables, body, body
        known = document.known
        for key in body:
            if key not in known:
                self._unknown_field(key, ctx)
        for reject in document.rejects:
            if body.get(reject.field) is not None and (
                    reject.when is None or truthy(reject.when(body, ctx))):
                raise RejectedField(reject.message, path=[reject.field],
                                    rule=f"request.reject.{reject.field}")
        converted = document.build(body, ctx)
        for field in document.passthrough:
            if field in body:
                converted[field] = body[field]
        return converted

    def _unknown_field(self, key: str, ctx: Context) -> None:
        """A request field no rule knows: refused (``unknown_fields: reject``) or left out."""
        if not self.reject_unknown:
            ctx.leave_out(key, "a request field this mapping does not know (newer than it?)")
            return
        raise RejectedField(
            f"unknown parameter '{key}': mapping '{self.id}' does not know it. Map it (a rule in "
            "request.fields), drop it (request.drop, with the reason), reject it (request.reject) "
            "or pass it through (request.passthrough) in an overlay; or set the option "
            "unknown_fields: drop to leave unknown fields out", path=[key], rule="request")

    def dropped_fields(self, body: JsonObject) -> list[str]:
        """The fields of ``body`` this mapping drops on purpose (for a warning header or log).

        A drop may name a nested field (``stream_options.reasoning_summary_delivery``).
        """
        document = self.request
        if document is None or body.__class__ is not dict:
            return []
        return [field for field in document.drops if _present(body, field)]

    # -- responses and errors -------------------------------------------------------------------

    def convert_response(self, body: Json, *, request: Json = None,
                         ctx: Context | None = None) -> JsonObject:
        """Convert an upstream response body; ``request`` is the client's original request."""
        document = self.response
        if document is None:
            raise self._missing("response")
        if body.__class__ is not dict:
            raise ConversionError("the response body must be a JSON object")
        if ctx is None:
            ctx = Context(options=self.options, tables=self.tables, root=body, request=request)
        else:
            ctx.options, ctx.tables, ctx.root, ctx.request = self.options, self.tables, body, request
        return document.build(body, ctx)

    def convert_error(self, body: Json, *, status: int, ctx: Context | None = None) -> JsonObject:
        """Convert an upstream error body (any shape, even plain text) and its HTTP status."""
        document = self.error
        if document is None:
            raise self._missing("error")
        if body.__class__ is not dict:
            body = {"text": body if isinstance(body, str) else str(body)}
        if ctx is None:
            ctx = Context(options=self.options, tables=self.tables, root=body, status=status)
        else:
            ctx.options, ctx.tables, ctx.root, ctx.status = self.options, self.tables, body, status
        return document.build(body, ctx)

    # -- streams --------------------------------------------------------------------------------

    def stream(self, *, request: Json = None, ctx: Context | None = None) -> Any:
        """A fresh stream translator for one upstream stream (see ``engine.stream``)."""
        from .stream import StreamMachine  # the stream runtime is only loaded when used
        if self.stream_spec is None:
            raise ConversionError(f"mapping '{self.id}' declares no stream translation")
        if ctx is None:
            ctx = Context(options=self.options, tables=self.tables, request=request)
        else:
            ctx.options, ctx.tables, ctx.request = self.options, self.tables, request
        return StreamMachine(self.stream_spec, ctx)

    def _missing(self, section: str) -> ConversionError:
        return ConversionError(f"mapping '{self.id}' declares no {section} section")


def read_only(options: dict[str, Json]) -> ReadOnly[str, Json]:
    return MappingProxyType(dict(options))


def _present(body: JsonObject, dotted: str) -> bool:
    """Whether ``body`` holds a non-null value at the dotted path ``a.b``."""
    value: Json = body
    for name in dotted.split("."):
        if value.__class__ is not dict:
            return False
        value = value.get(name)
    return value is not None
