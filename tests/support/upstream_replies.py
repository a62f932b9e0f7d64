"""The replies a `FakeUpstream` sends: small frozen dataclasses that know how to send themselves.

Tests queue them per path with `FakeUpstream.expect`; the toy model's answers are sent as the same
kinds, so scripted and default answers share one sending path. An `ErrorReply` is written in the
shape the upstream's `error_format_*` quirk asks for (`ERROR_FORMATS`).

`SseReply(drop_after=n)` and `HangReply` close the connection themselves. They set `DROPPED` first,
so the server does not count the cancellation that follows as a client hang-up.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Union

from aiohttp import web

if TYPE_CHECKING:
    from .fake_upstream import FakeUpstream

Json = Any
Frame = Union[bytes, str, dict]
Headers = tuple[tuple[str, str], ...]

DROP_GRACE = 5.0  # upper bound on waiting for aiohttp to notice a connection we closed ourselves
# set inside a handler task that closed its own connection on purpose (drop_after, end of a hang), so the
# cancellation that follows is not counted as a client hang-up; aiohttp runs each request in its own task
DROPPED: contextvars.ContextVar[bool] = contextvars.ContextVar("fake_upstream_dropped", default=False)


def encode_frame(frame: Frame) -> bytes:
    """One SSE frame on the wire: dicts become `data: <json>`, "[DONE]" the sentinel, the rest raw."""
    if isinstance(frame, dict):
        return b"data: " + _dumps(frame) + b"\n\n"
    if frame == "[DONE]":
        return b"data: [DONE]\n\n"
    return frame.encode() if isinstance(frame, str) else frame


def event_frame(event: Json) -> str:
    """A Responses SSE frame: `event:` line, then `data:`."""
    return f"event: {event['type']}\ndata: {_dumps(event).decode()}\n\n"


@dataclass(frozen=True, slots=True)
class JsonReply:
    """A JSON body with a status."""

    body: Json
    status: int = 200
    headers: Headers = ()

    async def send(self, request: web.Request, upstream: FakeUpstream) -> web.StreamResponse:
        headers = {"content-type": "application/json", **dict(self.headers)}
        return web.Response(status=self.status, body=_dumps(self.body), headers=headers)


@dataclass(frozen=True, slots=True)
class RawReply:
    """Bytes as they are, e.g. an HTML error page from a gateway."""

    body: bytes
    status: int = 200
    headers: Headers = ()

    async def send(self, request: web.Request, upstream: FakeUpstream) -> web.StreamResponse:
        return web.Response(status=self.status, body=self.body, headers=dict(self.headers))


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An error in the OpenAI shape, or in the shape an `error_format_*` quirk asks for."""

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    headers: Headers = ()

    def body(self, error_format: str) -> Json:
        """The error body in `error_format` (a key of `ERROR_FORMATS`)."""
        return ERROR_FORMATS[error_format](self)

    async def send(self, request: web.Request, upstream: FakeUpstream) -> web.StreamResponse:
        reply = JsonReply(self.body(upstream.error_format), self.status, self.headers)
        return await reply.send(request, upstream)


@dataclass(frozen=True, slots=True)
class SseReply:
    """A `text/event-stream` body, one frame at a time; `drop_after=n` kills the connection after n frames."""

    frames: tuple[Frame, ...]
    delay: float = 0.0
    headers: Headers = ()
    drop_after: int | None = None
    status: int = 200

    async def send(self, request: web.Request, upstream: FakeUpstream) -> web.StreamResponse:
        headers = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
        response = web.StreamResponse(status=self.status, headers={**headers, **dict(self.headers)})
        await response.prepare(request)
        for index, frame in enumerate(self.frames):
            if index == self.drop_after:
                break
            if index and self.delay:
                await asyncio.sleep(self.delay)
            await response.write(encode_frame(frame))
        if self.drop_after is not None:
            # no terminating zero-length chunk: the client sees an incomplete chunked body
            await _close_connection(request)
        await response.write_eof()
        return response


@dataclass(frozen=True, slots=True)
class HangReply:
    """Accept the request and say nothing for `seconds`, then close the connection without an answer."""

    seconds: float = 30.0

    async def send(self, request: web.Request, upstream: FakeUpstream) -> web.StreamResponse:
        await asyncio.sleep(self.seconds)
        await _close_connection(request)
        return web.Response(status=504)


Reply = Union[JsonReply, RawReply, ErrorReply, SseReply, HangReply]


def json_reply(body: Json, status: int = 200, headers: Mapping[str, str] | None = None) -> JsonReply:
    """A JSON body: `json_reply({"ok": True}, status=201)`."""
    return JsonReply(body, status, _headers(headers))


def sse_reply(
    frames: Iterable[Frame],
    delay: float = 0.0,
    headers: Mapping[str, str] | None = None,
    drop_after: int | None = None,
    status: int = 200,
) -> SseReply:
    """An SSE stream: `sse_reply([{"choices": []}, "[DONE]"], delay=0.05, drop_after=1)`."""
    return SseReply(tuple(frames), delay, _headers(headers), drop_after, status)


def raw_reply(body: bytes | str, status: int = 200, headers: Mapping[str, str] | None = None) -> RawReply:
    """Raw bytes: `raw_reply(b"<html>502 Bad Gateway</html>", 502, {"content-type": "text/html"})`."""
    return RawReply(body.encode() if isinstance(body, str) else body, status, _headers(headers))


def hang_reply(seconds: float = 30.0) -> HangReply:
    """No answer for `seconds` (returns early if the client hangs up)."""
    return HangReply(seconds)


def error_reply(
    status: int,
    message: str,
    type: str = "invalid_request_error",  # noqa: A002 - the OpenAI field is called `type`
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ErrorReply:
    """An OpenAI-shaped error: `error_reply(429, "slow down", "rate_limit_error", headers={"retry-after": "1"})`."""
    return ErrorReply(status, message, type, code, param, _headers(headers))


async def _close_connection(request: web.Request) -> None:
    """Close the TCP connection under a running handler, then wait for aiohttp to cancel the handler."""
    DROPPED.set(True)
    if request.transport is not None:
        request.transport.close()  # close() flushes what was written; abort() could lose the last frames
    await asyncio.sleep(DROP_GRACE)


def _headers(headers: Mapping[str, str] | None) -> Headers:
    return tuple((headers or {}).items())


def _dumps(value: Json) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------- errors


def _openai_error(error: ErrorReply) -> Json:
    """{"error": {"message", "type", "param", "code"}}, as OpenAI sends it."""
    return {"error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}}


def _detail_error(error: ErrorReply) -> Json:
    """{"detail": "..."}, as FastAPI-based servers send it."""
    return {"detail": error.message}


def _string_error(error: ErrorReply) -> Json:
    """{"error": "..."}, as Ollama sends it."""
    return {"error": error.message}


ERROR_FORMATS: dict[str, Callable[[ErrorReply], Json]] = {
    "openai": _openai_error,
    "error_format_detail": _detail_error,
    "error_format_string": _string_error,
}
