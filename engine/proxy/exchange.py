"""One request's exchange with its upstream: hold the status, convert the answer or the stream.

The client's status line is held until the upstream has answered, so that everything known before
the first byte can still be a real HTTP status:

* the upstream answers 4xx/5xx: the same status, the error converted to the client API's shape
  (``Mapping.convert_error``), ``retry-after`` and ``x-ratelimit-*`` passed on;
* it cannot be reached, or breaks before answering: 502; it is too slow: 504;
* it answers 2xx with something that cannot be converted (not JSON, an error object): 502;
* a stream whose first frame is an error (``StreamSession.feed`` raises ``UpstreamError``): that
  error's status, not a 200 stream that fails at once (PEERS.md §C, items 9 and 19).

What the answer's conversion leaves out on purpose (a second choice, an output item the client API
has no field for) joins what the request's conversion left out (``LeftOut.announce``): named in the
``x-mapper-dropped`` header while the headers can still change, and always in the log line.

Once the first converted event has been sent the status is 200 and fixed, and a failure becomes
an ``error`` event and then ``response.failed`` (``StreamSession.abort``): never a silent end. The
upstream body is read with the idle timeout; leaving ``Upstream.open`` closes it, so a client
disconnect (which cancels this coroutine) reaches the upstream at once.

With a response store, the final Response is kept (``Call.keep``) just before it is sent: the
non-streamed body, or the object the stream's terminal event carries, before that event's bytes.
A store that fails then is logged and the answer still goes out: the tokens are spent, and a
later read of the store reports its failure as a 503.
"""

from __future__ import annotations

import asyncio

import time
from contextlib import aclosing
from dataclasses import dataclass
from typing import Awaitable, Callable

import orjson

from ..context import Context
from ..errors import ConversionError, MapperError, StoreError, UpstreamError
from ..mapping import Mapping
from ..streaming import StreamSession
from ..types import Json, JsonObject
from . import metrics
from .http import SSE_HEADERS, Responder, error_body
from .left_out import LeftOut
from .logs import LOGGER, RequestLog, Redactor
from .routes import Route
from .upstream import ERROR_BODY_LIMIT, Reply, Upstream, passed_headers, redact_url

__all__ = ["Call", "end_stream", "forward"]

_SNIPPET = 200  # characters of an unusable upstream body quoted in a message


@dataclass(slots=True)
class Call:
    """A converted request on its way upstream, and where its answer goes."""

    route: Route
    url: str  # the upstream endpoint
    request: JsonObject  # the client's body, for echoed fields and the stream's envelope
    payload: bytes  # the upstream's body, converted and serialised
    headers: dict[str, str]  # upstream request headers
    respond: Responder
    log: RequestLog
    redactor: Redactor
    new_context: Callable[[], Context]
    session: StreamSession | None = None  # set for streamed calls
    log_bodies: bool = False
    keep: Callable[[Json], Awaitable[None]] | None = None  # stores the final Response; once
    left_out: LeftOut | None = None  # reports what the answer's conversion left out

    def announce_left_out(self, left_out: list[tuple[str, str]] | None) -> None:
        """What the answer's conversion left out: in the log line, and the header if not sent."""
        if self.left_out is not None:
            self.left_out.announce(self.route.name, left_out, self.log, self.respond)


async def forward(call: Call, upstream: Upstream) -> None:
    """Send the call upstream and answer the client, whatever happens upstream."""
    call.log.upstream_sent = time.perf_counter()
    try:
        async with upstream.open("POST", call.url, content=call.payload, headers=call.headers,
                                 timeouts=call.route.timeouts) as reply:
            call.log.upstream_at = time.perf_counter()
            call.log.upstream_status = reply.status
            if not 200 <= reply.status < 300:
                await _relay_error(call, reply)
            elif call.session is not None:
                await _stream(call, call.session, reply)
            else:
                await _complete(call, reply)
    except UpstreamError as failure:
        metrics.upstream_error(failure.error_type)
        if call.respond.started:
            raise
        await _fail(call, failure)


async def _fail(call: Call, failure: UpstreamError) -> None:
    """An upstream failure before any byte was sent: 502/504 (or the error the upstream's answer
    carried), in the client API's shape."""
    message = call.redactor.text(failure.message)
    call.log.error = message
    mapping = call.route.mapping
    if failure.body is not None:  # the upstream's own error, found inside its answer
        status = mapping.error_status(failure.body, failure.status)
        await call.respond.json(status, _client_error(call, failure.body, failure.status))
        return
    status, body = mapping.own_error(error_body(message, "server_error", code=failure.error_type),
                                     failure.status)
    await call.respond.json(status, body)


async def _relay_error(call: Call, reply: Reply) -> None:
    """An upstream 4xx/5xx: the same status, the error in the client API's shape."""
    status = reply.status
    metrics.upstream_error(f"http_{status}")
    if 300 <= status < 400 or status < 200:
        where = redact_url(reply.headers.get("location", "")) or "nowhere"
        raise UpstreamError(f"the upstream answered HTTP {status} (to {where}); check the upstream "
                            "URL", status=502, error_type="bad_upstream_response")
    try:
        raw = await reply.read(ERROR_BODY_LIMIT)
    except UpstreamError:
        raw = b""  # the status says enough
    upstream_body = _json_or_text(raw)
    body = _client_error(call, upstream_body, status)
    # the status the client's API gives this error (an overloaded 503 is Anthropic's 529)
    await call.respond.json(call.route.mapping.error_status(upstream_body, status), body,
                            passed_headers(reply.headers))


async def _complete(call: Call, reply: Reply) -> None:
    """A non-streamed answer: convert it whole."""
    raw = await reply.read()
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError("the upstream's answer is not JSON: " + _snippet(raw), status=502,
                            error_type="bad_upstream_response") from None
    headers = passed_headers(reply.headers)
    if _is_error_object(answer, call.route.mapping):
        # some providers answer an error with status 200
        await call.respond.json(502, _client_error(call, answer, 502), headers)
        return
    ctx = call.new_context()
    try:
        response = call.route.mapping.convert_response(answer, request=call.request, ctx=ctx)
    except ConversionError as error:
        raise UpstreamError(f"the upstream's answer cannot be converted: {error}", status=502,
                            error_type="bad_upstream_response") from None
    finally:  # also named when nothing was left to answer with (a 502 that says which items)
        call.announce_left_out(ctx.left_out)
    call.log.usage = response.get("usage")
    if call.log_bodies:
        call.log.bodies["response_body"] = call.redactor.json(response)
    await _keep(call, response)
    await call.respond.json(200, response, headers)


async def _stream(call: Call, session: StreamSession, reply: Reply) -> None:
    """A streamed answer: 200 and the first events once the upstream's first frame converts."""
    respond = call.respond
    if reply.content_type == "application/json":
        await _json_instead_of_stream(call, reply)
        return
    headers = [*SSE_HEADERS, *passed_headers(reply.headers)]
    stream_ended = None
    heartbeats: asyncio.Task[None] | None = None
    try:
        async with aclosing(reply.chunks()) as pieces:
            async for piece in pieces:
                try:
                    out = session.feed(piece)
                except UpstreamError as error:  # the first frame is an error: a real status still
                    await _refuse_stream(call, error, reply)
                    return
                if out:
                    if not respond.started:
                        call.announce_left_out(session.left_out)
                        stream_ended = metrics.stream_started()
                        await respond.start(200, headers)
                        if session.heartbeat_every is not None:
                            heartbeats = asyncio.ensure_future(_heartbeats(respond, session))
                    if session.finished:  # stored before the client sees the terminal event
                        await _keep(call, session.response)
                    await respond.chunk(out)
                if session.finished:
                    break
        tail = b""
        if not session.finished:
            if not respond.started:
                raise UpstreamError("the upstream ended its stream before sending any event",
                                    status=502, error_type="bad_upstream_response")
            tail = session.close()
        await end_stream(call, tail)
        _note_outcome(call, session)
        await reply.drain()  # lets the connection be reused when the upstream closes its body at once
    except UpstreamError as failure:
        if not respond.started:
            raise
        metrics.upstream_error(failure.error_type)
        message = call.redactor.text(failure.message)
        call.log.error = message
        await end_stream(call, session.abort(message, code="server_error"))
    finally:
        if heartbeats is not None:
            heartbeats.cancel()
        if stream_ended is not None:
            stream_ended()


async def _heartbeats(respond: Responder, session: StreamSession) -> None:
    """The stream's keep-alive event (Anthropic's ``ping``) whenever the upstream has been silent
    for ``heartbeat_every`` seconds, so that the client sees the answer is still coming."""
    every = session.heartbeat_every or 0.0
    while True:
        await asyncio.sleep(max(0.0, respond.last_sent_at + every - time.monotonic()))
        if respond.finished or session.finished:
            return
        if time.monotonic() >= respond.last_sent_at + every:
            await respond.chunk(session.heartbeat())


async def end_stream(call: Call, tail: bytes) -> None:
    """The stream's last bytes, after its final Response is kept."""
    if call.session is not None and call.session.finished:
        await _keep(call, call.session.response)
    await call.respond.end(tail)


async def _keep(call: Call, response: Json) -> None:
    keep, call.keep = call.keep, None
    if keep is None or response is None:
        return
    try:
        await keep(response)
    except StoreError as error:
        call.log.store_error = call.redactor.text(error.message)
        LOGGER.error("response not stored", extra={"fields": {
            "request_id": call.log.request_id, "error": call.log.store_error}})
    else:
        call.log.stored = True


async def _json_instead_of_stream(call: Call, reply: Reply) -> None:
    raw = await reply.read(ERROR_BODY_LIMIT)
    answer = _json_or_text(raw)
    if _is_error_object(answer, call.route.mapping):
        await call.respond.json(502, _client_error(call, answer, 502), passed_headers(reply.headers))
        return
    raise UpstreamError("the upstream answered a streaming request with JSON, not an event stream "
                        "(does it support stream=true?)", status=502,
                        error_type="bad_upstream_response")


async def _refuse_stream(call: Call, error: UpstreamError, reply: Reply) -> None:
    """The stream's first frame is an error: answer with its status instead of a 200 stream."""
    metrics.upstream_error(error.error_type)
    status = error.status if 400 <= error.status <= 599 else 502
    if error.body is not None:
        body = _client_error(call, error.body, status)
        status = call.route.mapping.error_status(error.body, status)
    else:
        status, body = call.route.mapping.own_error(
            error_body(call.redactor.text(error.message), "server_error", code=error.error_code),
            status)
    call.log.error = body.get("error", {}).get("message") if isinstance(body, dict) else None
    await call.respond.json(status, body, passed_headers(reply.headers))


def _note_outcome(call: Call, session: StreamSession) -> None:
    call.announce_left_out(session.left_out)
    call.log.usage = session.usage
    if session.error_message is not None:
        call.log.error = session.error_message


def _client_error(call: Call, upstream_error: Json, status: int) -> Json:
    """An upstream error body (any shape) as the client API's error, with no key in it."""
    try:
        body = call.route.mapping.convert_error(upstream_error, status=status,
                                                ctx=call.new_context())
    except MapperError as error:
        body = error_body(f"the upstream answered HTTP {status} ({error.message})", "server_error")
    body = call.redactor.json(body)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        call.log.error = str(body["error"].get("message"))[:_SNIPPET]
    return body


def _is_error_object(answer: Json, mapping: Mapping) -> bool:
    return (isinstance(answer, dict) and bool(answer.get("error"))
            and mapping.answer_field not in answer)


def _json_or_text(raw: bytes) -> Json:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace").strip()


def _snippet(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").strip()
    return repr(text[:_SNIPPET] + ("…" if len(text) > _SNIPPET else ""))
