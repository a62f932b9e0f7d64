"""The HTTP server in front of the proxy app: aiohttp's low-level server, hardened against clients.

Chosen by measurement (bench/ANALYSIS.md, *The server*): the only candidate on which every limit
below can be enforced and every refusal answered in the OpenAI shape, within 7-9 % of the cheapest
(uvicorn) in CPU per request; it is also the server of the bench's reference pass-through, and it
shares its event loop and C HTTP parser with the upstream client. ``engine.proxy.asgi`` runs the
ASGI app on it.

The limits, each an option of ``mapper serve`` (``Limits``):

* **header bytes**: a request head (request line and headers) over ``max_header_bytes`` is
  answered 431 and the connection closed, before the head is complete when it arrives in pieces,
  so a 64 MB header costs 64 KiB of memory, not 64 MB;
* **header-read timeout**: once the first byte of a head has arrived, the rest must follow within
  ``header_timeout`` seconds (a slow-loris sender gets a 408 and is closed); the same bounds each
  silence in a request body still arriving;
* **idle keep-alive timeout**: a connection with no request in progress and no byte of a new one
  is closed after ``keepalive_timeout`` seconds, also right after it was accepted; a client that
  takes nothing of its answer for as long is reset, which cancels its upstream request;
* **connections**: past ``max_connections`` open connections a new one is answered 503 at once
  and closed half a second later (logged, at most once a second), instead of the process running
  out of descriptors: a flood of silent sockets costs each refused one half a second.

Every answer the server itself makes (those, and a request the parser refuses: an unknown method,
a malformed line) is an OpenAI-shaped JSON error with an ``x-request-id``, like the app's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler, _ErrInfo
from aiohttp.streams import EMPTY_PAYLOAD

from ..errors import error_body
from . import metrics

__all__ = ["DEFAULT_LIMITS", "Connection", "Front", "Limits", "error_response", "too_large"]

LOGGER = logging.getLogger("mapper.proxy")


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client connection may do (seconds and bytes); see the module's docstring."""

    header_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    max_header_bytes: int = 64 << 10
    max_connections: int = 4096


DEFAULT_LIMITS = Limits()
_REASONS = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large",
            503: "Service Unavailable"}


def request_id() -> str:
    """A new request id, as the app makes them."""
    return "req_" + os.urandom(12).hex()


def error_response(status: int, message: str, code: str, rid: str | None = None) -> web.Response:
    """An OpenAI-shaped error that closes the connection (the server's own answers)."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    response = web.Response(status=status, reason=_REASONS.get(status),
                            body=orjson.dumps(error_body(message, kind, code=code)),
                            content_type="application/json",
                            headers={"x-request-id": rid or request_id()})
    response.force_close()
    return response


def _nothing() -> None:
    pass


def _raw_error(status: int, message: str, code: str) -> bytes:
    """A whole error response as bytes, for a connection the server will not read from."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = orjson.dumps(error_body(message, kind, code=code))
    return (f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nx-request-id: {request_id()}\r\n"
            f"connection: close\r\n\r\n").encode() + body


class Connection(RequestHandler):
    """One client connection: aiohttp's protocol with the head limits and a hang-up signal."""

    __slots__ = ("limits", "refused", "_head_bytes", "_payload", "_head_timer", "_gone",
                 "_hangup")

    def __init__(self, manager: "Front", limits: Limits, **kwargs: Any) -> None:
        # the parser's own limits stop one line or field early; the whole head is counted here
        super().__init__(manager, keepalive_timeout=limits.keepalive_timeout,
                         max_line_size=limits.max_header_bytes,
                         max_field_size=limits.max_header_bytes, max_headers=256, **kwargs)
        self.limits = limits
        self.refused = False  # over the connection cap: answered 503, nothing read
        self._head_bytes = 0  # bytes of the head being received (0: none begun)
        self._payload: Any = None  # the body of the last request parsed, while it is read
        self._head_timer: asyncio.TimerHandle | None = None
        self._gone: asyncio.Future[None] | None = None
        self._hangup: Callable[[], None] | None = None

    # -- a hang-up, for ASGI's http.disconnect ---------------------------------------------------

    def gone(self) -> asyncio.Future[None]:
        """A future resolved when the client's connection closes."""
        if self._gone is None:
            self._gone = self._loop.create_future()
            if self.transport is None:
                self._gone.set_result(None)
        return self._gone

    def on_hangup(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` if the connection is lost (the ``mapper.hangup`` scope extension);
        returns the function that cancels this."""
        if self.transport is None:
            self._loop.call_soon(callback)
            return _nothing
        self._hangup = callback
        return self._forget_hangup

    def _forget_hangup(self) -> None:
        self._hangup = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_head_timer()
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)
        hangup, self._hangup = self._hangup, None
        if hangup is not None:
            hangup()
        super().connection_lost(exc)

    # -- the head limits ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        payload = self._payload
        if payload is not None and not payload.is_eof():  # a body: not the head's bytes
            super().data_received(data)
            return
        if self._force_close or self._close or self.refused:
            return
        count = self._request_count
        super().data_received(data)
        if self._request_count != count:  # a head is complete (the handler checks its size)
            self._stop_head_timer()
            self._head_bytes = 0
            self._payload = self._messages[-1][1] if self._messages else None
            return
        # a head still coming: counted, and timed from its first piece (a head that arrives
        # whole, the usual case, costs no timer)
        self._head_bytes += len(data)
        if self._head_bytes > self.limits.max_header_bytes:
            self._refuse(431, too_large(self.limits), "headers_too_large")
        elif self._head_timer is None and self._head_bytes:
            self._start_head_timer()

    def _start_head_timer(self) -> None:
        if self._keepalive_handle is not None:  # the head has begun: no longer idle
            self._keepalive_handle.cancel()
            self._keepalive_handle = None
        self._head_timer = self._loop.call_later(self.limits.header_timeout, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        self._refuse(408, f"The request's headers did not arrive within "
                          f"{self.limits.header_timeout:g}s.", "header_timeout")

    def refuse_connection(self, linger: float = 0.5) -> None:
        """Over the connection cap: a 503 now, whatever the client sends, and close soon after.

        The close waits a little so that the answer is read rather than lost to a reset (a
        socket closed with unread input sends RST).
        """
        self.refused = self._close = True
        self._stop_head_timer()
        transport = self.transport
        if transport is None:
            return
        transport.pause_reading()
        transport.write(_raw_error(503, "The server is at its connection limit; retry later.",
                                   "too_many_connections"))
        self._loop.call_later(linger, self.force_close)

    def _refuse(self, status: int, message: str, code: str) -> None:
        """Answer ``status`` in place of the request being received, then close."""
        self._stop_head_timer()
        self._head_bytes = 0
        self._close = True  # read nothing more
        if self.transport is not None:
            self.transport.pause_reading()
        self._messages.append((_ErrInfo(status=status, exc=_Refusal(code), message=message),
                               EMPTY_PAYLOAD))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- answers the parser or the limits decide --------------------------------------------------

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None, message: str | None = None) -> web.StreamResponse:
        """An OpenAI-shaped JSON error for what never reached the app."""
        if isinstance(exc, _Refusal):
            code = exc.code
        elif isinstance(exc, LineTooLong):  # the request line or one header, alone over the limit
            status, code = 431, "headers_too_large"
            message = too_large(self.limits)
        elif isinstance(exc, BadHttpMethod):
            code, message = "invalid_method", "The request's method is not valid HTTP."
        elif status == 400:
            code = "invalid_http_request"
            message = f"The request is not valid HTTP: {message or exc}"
        else:  # a failure inside aiohttp itself
            LOGGER.error("server error", exc_info=exc)
            status, code, message = 500, "internal_error", "mapper failed on this request"
        rid = request_id()
        metrics.refused(status)
        LOGGER.info("request", extra={"fields": {"request_id": rid, "status": status,
                                                 "error": message}})
        return error_response(status, str(message), code, rid)


class _Refusal(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Front(web.Server):
    """aiohttp's low-level server with ``Limits`` and a connection cap; a protocol factory."""

    def __init__(self, handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
                 limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(handler, access_log=None)
        self.limits = limits
        self._refusals = 0
        self._refusal_logged = 0.0

    def __call__(self) -> Connection:
        return Connection(self, self.limits, loop=self._loop, access_log=None)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        if len(self._connections) > self.limits.max_connections:
            assert isinstance(handler, Connection)
            handler.refuse_connection()  # before any byte is read from it
            self._refused_connection()

    def _refused_connection(self) -> None:
        metrics.refused(503)
        self._refusals += 1
        now = time.monotonic()
        if now - self._refusal_logged >= 1.0:  # a flood gives one line a second, not one each
            LOGGER.warning("connections over the limit", extra={"fields": {
                "max_connections": self.limits.max_connections, "refused": self._refusals}})
            self._refusals, self._refusal_logged = 0, now


def too_large(limits: Limits) -> str:
    return f"The request's headers are over the limit of {limits.max_header_bytes} bytes."
