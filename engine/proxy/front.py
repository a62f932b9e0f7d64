"""The HTTP server in front of the proxy app: aiohttp's low-level server, hardened, speaking ASGI.

Chosen by measurement (bench/ANALYSIS.md, *Which server*): on the bench it costs the least CPU per
request of the servers tried, it is the server of the bench's reference pass-through, and it
shares its event loop and C HTTP parser with the upstream client. The app stays a plain ASGI
callable (``ProxyApp``); ``asgi_handler`` is the seam, a few lines that turn one aiohttp request
into ASGI's ``scope``, ``receive`` and ``send``, so the app runs unchanged under any ASGI server
(the tests still drive it through ``httpx.ASGITransport``). The app's answers are written as
bytes rendered here (status line, headers, body or chunks) through aiohttp's writer, which keeps
its flow control, without building aiohttp's response objects for each request.

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
import socket
import struct
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler, _ErrInfo
from aiohttp.streams import EMPTY_PAYLOAD

from ..errors import error_body
from . import metrics

__all__ = ["DEFAULT_LIMITS", "Front", "Limits", "asgi_handler"]

LOGGER = logging.getLogger("mapper.proxy")


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client connection may do (seconds and bytes); see the module's docstring."""

    header_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    max_header_bytes: int = 64 << 10
    max_connections: int = 4096


DEFAULT_LIMITS = Limits()
_App = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]],
                 Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]
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
            self._refuse(431, _too_large(self.limits), "headers_too_large")
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
            message = _too_large(self.limits)
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


# -- ASGI over aiohttp -----------------------------------------------------------------------------


def asgi_handler(app: _App) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
    """An aiohttp request handler that runs ``app`` (ASGI 3, http scope) for each request."""

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        connection = request.protocol
        if isinstance(connection, Connection) and \
                _head_size(request) > connection.limits.max_header_bytes:  # arrived all at once
            metrics.refused(431)
            return error_response(431, _too_large(connection.limits), "headers_too_large")
        exchange = _Exchange(request)
        await app(exchange.scope(), exchange.receive, exchange.send)
        return exchange.finish()

    return handle


class _Exchange:
    """One request's ASGI messages, mapped onto aiohttp's request and its writer."""

    __slots__ = ("request", "body_read", "stalled", "status", "headers", "response", "chunked")

    def __init__(self, request: web.BaseRequest) -> None:
        self.request = request
        self.body_read = False
        self.stalled = False  # the body stopped arriving: the answer is a 408
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.response: _Written | None = None  # set once the head has been written
        self.chunked = False

    def scope(self) -> dict[str, Any]:
        request = self.request
        connection = request.protocol
        extensions = {"mapper.hangup": connection.on_hangup} \
            if isinstance(connection, Connection) else {}
        return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                "extensions": extensions,
                "method": request.method, "scheme": "http", "path": request.path,
                "raw_path": request.raw_path.encode("latin-1"),
                "query_string": request.query_string.encode("latin-1"),
                "headers": [(name.lower(), value) for name, value in request.raw_headers],
                "client": request.transport.get_extra_info("peername") if request.transport
                else None}

    async def receive(self) -> dict[str, Any]:
        if not self.body_read:
            content = self.request.content
            if content.is_eof():  # all of it arrived with the head (the usual case): no timer
                piece = await content.readany()
            else:
                connection = self.request.protocol
                silence = connection.limits.header_timeout \
                    if isinstance(connection, Connection) else None
                try:
                    async with asyncio.timeout(silence):
                        piece = await content.readany()
                except TimeoutError:
                    self.stalled = True  # the app sees a hang-up; finish() answers 408
                    return {"type": "http.disconnect"}
            self.body_read = content.is_eof()
            return {"type": "http.request", "body": piece, "more_body": not self.body_read}
        connection = self.request.protocol
        if isinstance(connection, Connection):
            await asyncio.shield(connection.gone())
        else:  # pragma: no cover - another protocol: wait for the response instead
            await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            self.headers = message.get("headers", [])
            return
        if kind != "http.response.body":
            return
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if self.response is None:
            keep_alive = self.request.keep_alive
            self.response = _Written(keep_alive)
            if not more:  # a whole body at once: one write, with its length
                head = _head(self.status, self.headers, len(body), keep_alive)
                await self._write(head if self.request.method == "HEAD" else head + body)
                return
            self.chunked = True
            head = _head(self.status, self.headers, None, keep_alive)
            await self._write(head + _chunk(body) if body else head)
        elif body:
            await self._write(_chunk(body))
        if not more and self.chunked:
            await self._write(b"0\r\n\r\n")

    async def _write(self, data: bytes) -> None:
        """Write through aiohttp's writer (its flow control); a client that takes nothing of its
        answer for the keep-alive timeout is disconnected, which cancels the upstream request."""
        request = self.request
        transport, connection = request.transport, request.protocol
        if transport is None or not isinstance(connection, Connection):
            await request.writer.write(data)
            return
        await request.writer.write(data, drain=False)
        if not transport.get_write_buffer_size():
            return  # all of it went out at once: the client keeps up (the usual case), no timer
        try:
            async with asyncio.timeout(connection.limits.keepalive_timeout):
                await request.writer.drain()  # returns at once unless the buffer is over its mark
        except TimeoutError:
            LOGGER.info("client stopped reading", extra={"fields": {
                "detail": f"took nothing for {connection.limits.keepalive_timeout:g}s"}})
            _discard_unsent(transport)
            transport.abort()  # connection_lost: the app's hang-up callback cancels its work
            await asyncio.sleep(1.0)  # the cancellation arrives here
            raise ConnectionResetError("the client stopped reading") from None

    def finish(self) -> web.StreamResponse | _Written:
        if self.response is None and self.stalled:
            metrics.refused(408)
            return error_response(408, "The request's body stopped arriving.", "body_timeout")
        if self.response is None:  # the app sent nothing (it always answers; but never hang)
            return error_response(500, "mapper sent no answer", "internal_error")
        return self.response


def _discard_unsent(transport: asyncio.BaseTransport) -> None:
    """Make the close a reset, so that the kernel does not go on feeding a client that reads
    nothing (SO_LINGER 0)."""
    sock = transport.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (AttributeError, OSError):
        pass


class _Written:
    """What aiohttp's protocol reads of a response the exchange has written itself."""

    __slots__ = ("keep_alive",)

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive

    async def prepare(self, request: web.BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


_STATUS_LINES = {status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()
                 for status in HTTPStatus}
_date_cache: list[Any] = [0, b""]


def _date() -> bytes:
    """The ``Date`` header line, rendered once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[:] = [now, f"date: {formatdate(now, usegmt=True)}\r\n".encode()]
    return _date_cache[1]


def _head(status: int, headers: list[tuple[bytes, bytes]], length: int | None,
          keep_alive: bool) -> bytes:
    """Status line and headers; ``length`` None means a chunked body."""
    lines = [_STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode()]
    for name, value in headers:
        if name == b"content-length" or b"\n" in value or b"\r" in value:
            continue  # the length is the writer's to say; a line break would forge a header
        lines.append(name + b": " + value + b"\r\n")
    lines.append(b"content-length: %d\r\n" % length if length is not None
                 else b"transfer-encoding: chunked\r\n")
    if not keep_alive:
        lines.append(b"connection: close\r\n")
    lines.append(_date())
    lines.append(b"\r\n")
    return b"".join(lines)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


def _head_size(request: web.BaseRequest) -> int:
    """The bytes of a request's head, near enough: request line, each header line, blank line."""
    return len(request.raw_path) + 16 + sum(len(name) + len(value) + 4
                                            for name, value in request.raw_headers) + 2


def _too_large(limits: Limits) -> str:
    return f"The request's headers are over the limit of {limits.max_header_bytes} bytes."


# -- running it ------------------------------------------------------------------------------------


class Lifespan:
    """Drives an ASGI app's lifespan protocol: ``startup()`` before listening, ``shutdown()`` after."""

    def __init__(self, app: _App) -> None:
        self.app = app
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Future[None] | None = None

    async def startup(self) -> None:
        """Raise ``RuntimeError`` with the app's message if its start-up fails."""
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
        self._task = asyncio.ensure_future(self.app(scope, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        answer = await self._from_app.get()
        if answer["type"] != "lifespan.startup.complete":
            raise RuntimeError(answer.get("message") or "the app's start-up failed")

    async def shutdown(self) -> None:
        if self._task is None or self._task.done():
            return
        await self._to_app.put({"type": "lifespan.shutdown"})
        await self._from_app.get()
        await self._task


async def serve_until(app: _App, stop: asyncio.Event, *, sockets: list[Any], limits: Limits,
                      started: Callable[[], None] = lambda: None) -> None:
    """Serve ``app`` on ``sockets`` (bound already) until ``stop`` is set, then close gracefully."""
    loop = asyncio.get_running_loop()
    lifespan = Lifespan(app)
    await lifespan.startup()
    front = Front(asgi_handler(app), limits)
    servers = [await loop.create_server(front, sock=sock, backlog=2048) for sock in sockets]
    started()
    try:
        await stop.wait()
    finally:
        for server in servers:
            server.close()
        front.pre_shutdown()
        await front.shutdown(5.0)
        await lifespan.shutdown()
