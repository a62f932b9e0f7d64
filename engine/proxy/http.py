"""ASGI plumbing for the proxy: reading a bounded body, sending JSON and streams, OpenAI error bodies.

The proxy is a plain ASGI callable, without a framework: it needs a handful of things and must
control exactly when the status line goes out (held until the upstream answers) and notice a client
that hangs up (see ``engine.proxy.disconnect``). ``Responder`` sends one response and remembers how
far it got, so that a late failure knows whether it can still choose the status.

Errors clients see have OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, so
that SDKs raise the right exception class (they pick it by HTTP status) and show the message.
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Iterable, MutableMapping

import orjson

from ..errors import error_body

__all__ = ["BodyTooLarge", "ClientGone", "HttpError", "Responder", "error_body", "header",
           "read_body"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
RawHeaders = list[tuple[bytes, bytes]]

JSON_TYPE = (b"content-type", b"application/json")
# Event streams must reach the client event by event: no proxy buffering (nginx reads
# X-Accel-Buffering), no caching.
SSE_HEADERS: RawHeaders = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class HttpError(Exception):
    """An answer decided before any byte was sent: a status and an OpenAI error body."""

    def __init__(self, status: int, body: dict[str, Any], headers: RawHeaders | None = None) -> None:
        super().__init__(body.get("error", {}).get("message", ""))
        self.status = status
        self.body = body
        self.headers = headers or []


class BodyTooLarge(HttpError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, error_body(f"The request body is over the limit of {limit} bytes.",
                                         "invalid_request_error", code="request_too_large"))


class ClientGone(Exception):
    """The client hung up before its request body was complete."""


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (``name`` in lower case), decoded as latin-1."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (before reading, when declared)."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    pieces: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        piece = message.get("body", b"")
        size += len(piece)
        if size > limit:
            raise BodyTooLarge(limit)
        pieces.append(piece)
        if not message.get("more_body", False):
            return b"".join(pieces)


class Responder:
    """Sends one response over ASGI; remembers whether it started and when the first byte left."""

    __slots__ = ("_send", "headers", "status", "started", "finished", "first_byte_at",
                 "last_sent_at")

    def __init__(self, send: Send, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._send = send
        self.headers: RawHeaders = list(headers)  # sent with every response (x-request-id, ...)
        self.status: int | None = None
        self.started = False
        self.finished = False
        self.first_byte_at: float | None = None
        self.last_sent_at = 0.0  # time.monotonic() of the last bytes sent (a stream's keep-alive)

    def set_header(self, name: bytes, value: bytes) -> None:
        """Set a header of every response (replacing one of that name); only before ``start``."""
        self.headers = [pair for pair in self.headers if pair[0] != name]
        self.headers.append((name, value))

    async def json(self, status: int, body: Any, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
        """A whole JSON response."""
        payload = orjson.dumps(body)
        await self.start(status, [JSON_TYPE, (b"content-length", str(len(payload)).encode()),
                                  *headers])
        await self.end(payload)

    async def send(self, status: int, payload: bytes, content_type: str) -> None:
        """A whole response of another type (the metrics' text format)."""
        await self.start(status, [(b"content-type", content_type.encode()),
                                  (b"content-length", str(len(payload)).encode())])
        await self.end(payload)

    async def start(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """The status line and headers; after this the status is fixed."""
        self.status = status
        self.started = True
        self.first_byte_at = time.perf_counter()
        self.last_sent_at = time.monotonic()
        await self._send({"type": "http.response.start", "status": status,
                          "headers": [*self.headers, *headers]})

    async def chunk(self, data: bytes) -> None:
        """A piece of a streamed body, sent at once."""
        self.last_sent_at = time.monotonic()
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self, data: bytes = b"") -> None:
        """The last piece of the body."""
        self.finished = True
        await self._send({"type": "http.response.body", "body": data, "more_body": False})
