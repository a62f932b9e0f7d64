"""The proxy app (a plain ASGI callable) on mapper's server front, and the server's run loop.

``asgi_handler`` is the seam between the two: a few lines that turn one aiohttp request into
ASGI's ``scope``, ``receive`` and ``send``, so ``ProxyApp`` runs unchanged under any ASGI server
(the tests also drive it through ``httpx.ASGITransport``, and bench/servers.py under uvicorn,
granian and hypercorn). Two things go beyond plain ASGI, both cheaper than their ASGI forms:

* the ``mapper.hangup`` scope extension tells the app of a lost connection by a callback
  (``engine.proxy.disconnect``) instead of a task waiting on ``receive()``;
* the app's answers are written as bytes rendered here (status line, headers, body or chunks)
  through aiohttp's writer, which keeps its flow control, without aiohttp's response objects. A
  client that takes nothing of its answer for the keep-alive timeout is reset, so that it cannot
  hold an upstream request forever; a request body that falls silent for the header timeout is a
  408.

``serve_until`` runs the app's lifespan, listens, and shuts down gracefully.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Awaitable, Callable

from aiohttp import web

from . import metrics
from .front import LOGGER, Connection, Front, Limits, error_response, too_large

__all__ = ["Lifespan", "asgi_handler", "serve_until"]

App = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]],
                Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]


def asgi_handler(app: App) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
    """An aiohttp request handler that runs ``app`` (ASGI 3, http scope) for each request."""

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        connection = request.protocol
        if isinstance(connection, Connection) and \
                _head_size(request) > connection.limits.max_header_bytes:  # arrived all at once
            metrics.refused(431)
            return error_response(431, too_large(connection.limits), "headers_too_large")
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


# -- running it ------------------------------------------------------------------------------------


class Lifespan:
    """Drives an ASGI app's lifespan protocol: ``startup()`` before listening, ``shutdown()`` after."""

    def __init__(self, app: App) -> None:
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


async def serve_until(app: App, stop: asyncio.Event, *, sockets: list[Any], limits: Limits,
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
