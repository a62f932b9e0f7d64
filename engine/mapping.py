"""The compiled ``Mapping``: immutable, shared by every request, and the run-stage entry points.

``Mapping.convert_request`` / ``convert_response`` / ``convert_error`` are pure functions over
dicts: the only state they touch is the per-call ``Context`` (clock, ids, the original request).
``convert_request`` first checks the request the way the client API (the mapping's ``from``) would
(``engine.validation``), so a value that API refuses is a 400 here too, in its words.
``Mapping.stream()`` hands out a fresh per-stream state machine (see ``engine.stream``).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping as ReadOnly

from .context import Context
from .errors import ConversionError, RejectedField
from .ops import truthy
from .types import Json, JsonObject, Rule
from .validation import request_validator


# The field every successful answer of an API has. A 2xx body that holds ``error`` and not this
# field is an error object (some upstreams answer errors with status 200).
ANSWER_FIELDS = {"openai.chat": "choices", "openai.responses": "output", "anthropic.messages": "content"}


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
    # a rule run on the whole document before anything reads it (``prepare:``); its value
    # replaces the document
    prepare: Rule | None = None
    # an error's HTTP status for the client, from ``$status`` and the document (``status:``)
    status: Rule | None = None

    def prepared(self, body: JsonObject, ctx: Context) -> JsonObject:
        """``body`` as the section's ``prepare`` rule leaves it (the body itself without one)."""
        if self.prepare is None:
            return body
        prepared = self.prepare(body, ctx)
        if prepared.__class__ is not dict:
            raise ConversionError("the document's prepare rule gave no object")
        return prepared


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
    request: Document | None
    response: Document | None
    error: Document | None
    # the proxy's own errors in the client's shape, when it is not OpenAI's (``client_error``)
    client_error: Document | None = None
    # the answer to a token-count request (``count_tokens``)
    count_tokens: Document | None = None
    stream_spec: Any = None
    # whether a request field that no rule knows is refused (option ``unknown_fields``)
    reject_unknown: bool = True
    # the Python the mapping compiled to (``mapper resolve --code``)
    generated_source: str = ""
    # checks a request as the client API would; compiled once per API (option validate_requests)
    validate_request: Callable[[Json], None] | None = None

    def __post_init__(self) -> None:
        if self.validate_request is None and self.options.get("validate_requests", True):
            object.__setattr__(self, "validate_request", request_validator(self.from_api))

    @property
    def answer_field(self) -> str | None:
        """The field every successful answer of the upstream's API has (``choices``, ``output``)."""
        return ANSWER_FIELDS.get(self.to_api)

    # -- requests -------------------------------------------------------------------------------

    def convert_request(self, body: Json, ctx: Context | None = None) -> JsonObject:
        """Convert a client request into the upstream's request. Raises ``ConversionError``."""
        document = self._checked(self.request, "request", body, "request")
        if self.validate_request is not None:
            self.validate_request(body)
        # the client's request is both the document and ``$request`` (functions that know the
        # client's tools read them there, in every direction and kind)
        if ctx is None:
            ctx = Context(options=self.options, tables=self.tables, root=body, request=body)
        else:
            ctx.options, ctx.tables, ctx.root, ctx.request = self.options, self.tables, body, body
        if document.prepare is not None:
            body = ctx.root = document.prepared(body, ctx)
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
            "unknown_fields: drop to leave unknown fields out", path=[key], rule="request",
            api_code="unknown_parameter")

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
        document = self._checked(self.response, "response", body, "response")
        if ctx is None:
            ctx = Context(options=self.options, tables=self.tables, root=body, request=request)
        else:
            ctx.options, ctx.tables, ctx.root, ctx.request = self.options, self.tables, body, request
        if document.prepare is not None:
            body = ctx.root = document.prepared(body, ctx)
        return document.build(body, ctx)

    def convert_error(self, body: Json, *, status: int, ctx: Context | None = None) -> JsonObject:
        """Convert an upstream error body (any shape, even plain text) and its HTTP status."""
        document = self.error
        if document is None:
            raise self._missing("error")
        return self._error_document(document, body, status, ctx)

    def error_status(self, body: Json, status: int, *, own: bool = False) -> int:
        """The HTTP status the client gets for an error: the ``status`` rule of the ``error``
        section (``client_error`` for the proxy's ``own`` errors), else ``status`` itself."""
        document = self.client_error if own else self.error
        if document is None or document.status is None:
            return status
        found = document.status(body if body.__class__ is dict else {},
                                self._context(None, root=body, status=status))
        return found if found.__class__ is int and 100 <= found <= 599 else status

    def own_error(self, body: JsonObject, status: int) -> tuple[int, JsonObject]:
        """One of the proxy's own errors (OpenAI's shape) as this mapping's clients get it: the
        status and the body (both unchanged for clients that read OpenAI's shape)."""
        if self.client_error is None:
            return status, body
        return (self.error_status(body, status, own=True),
                self.convert_client_error(body, status=status))

    def convert_client_error(self, body: JsonObject, *, status: int,
                             ctx: Context | None = None) -> JsonObject:
        """One of the proxy's own errors (OpenAI's shape) in the shape this mapping's clients read;
        unchanged when the mapping has no ``client_error`` section (its clients read OpenAI's)."""
        if self.client_error is None:
            return body
        return self._error_document(self.client_error, body, status, ctx)

    def convert_count_tokens(self, body: Json, ctx: Context | None = None) -> JsonObject:
        """The answer to a token-count request (``count_tokens``), from the client's request."""
        document = self._checked(self.count_tokens, "count_tokens", body, "request")
        return document.build(body, self._context(ctx, root=body, request=body))

    def _error_document(self, document: Document, body: Json, status: int,
                        ctx: Context | None) -> JsonObject:
        if body.__class__ is not dict:
            body = {"text": body if isinstance(body, str) else str(body)}
        ctx = self._context(ctx, root=body, status=status)
        if document.prepare is not None:
            body = ctx.root = document.prepared(body, ctx)
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

    def _context(self, ctx: Context | None, **fields: Json) -> Context:
        """The context of a conversion off the hot path: ``ctx`` (a caller's, with its clock and
        ids) or a new one, with this mapping's options and tables and ``fields`` set."""
        if ctx is None:
            return Context(options=self.options, tables=self.tables, **fields)
        ctx.options, ctx.tables = self.options, self.tables
        for name, value in fields.items():
            setattr(ctx, name, value)
        return ctx

    def _checked(self, document: Document | None, section: str, body: Json, what: str) -> Document:
        """``document`` (the ``section``), for a ``what`` body that must be a JSON object."""
        if document is None:
            raise self._missing(section)
        if body.__class__ is not dict:
            raise ConversionError(f"the {what} body must be a JSON object")
        return document

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
