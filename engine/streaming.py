"""Glue between SSE bytes and the stream runtime: upstream bytes in, client SSE bytes out.

``StreamSession`` is what the proxy drives for one streamed request, and what ``mapper convert
--kind stream`` drives from a file: it decodes SSE frames (``engine.sse``), parses each frame's
JSON, feeds the ``StreamMachine`` (``engine.stream``) and encodes the events it returns. It owns the
decisions that sit between framing and translation:

* the upstream's end-of-stream sentinel (``data: [DONE]`` for chat) ends the input;
* a frame that is not JSON fails the stream (``error`` + ``response.failed``), it is never skipped;
* an upstream error frame that arrives before anything was sent raises ``UpstreamError``, so that
  the proxy can still answer with a real HTTP error status instead of a 200 stream;
* the end of input without the upstream finishing is a truncated stream, and fails it.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import orjson

from .context import Context
from .errors import SSEDecodeError, UpstreamError
from .sse import DONE, SSEDecoder, encode_data, encode_event
from .types import Json

__all__ = ["StreamSession", "translate_stream"]


class StreamSession:
    """Translate one upstream SSE stream into the client's SSE stream, chunk by chunk."""

    def __init__(self, mapping: Any, *, request: Json = None, ctx: Context | None = None) -> None:
        self.mapping = mapping
        self.machine = mapping.stream(request=request, ctx=ctx)
        spec = self.machine.spec
        self._decoder = SSEDecoder()
        self._done_sentinel = spec.done_in
        self._encode = encode_event if spec.event_lines else encode_data
        self._done_out = DONE if spec.done_out else b""
        self._frames = 0

    # -- what the proxy reads -------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """True once any client bytes have been produced; after that, errors are stream events."""
        return self.machine.started

    @property
    def finished(self) -> bool:
        """True once the terminal event has been produced; later input is ignored."""
        return self.machine.finished

    @property
    def usage(self) -> Json:
        """The upstream's usage as the client sees it, once known (for logs)."""
        return self.machine.state.get("usage")

    @property
    def error_message(self) -> str | None:
        """The message of the error a failed stream ended with (for logs); None otherwise."""
        state = self.machine.state
        error = state.get("error")
        if state.get("status") == "failed" and isinstance(error, dict):
            return str(error.get("message"))
        return None

    @property
    def heartbeat_every(self) -> float | None:
        """Seconds of silence after which the proxy sends ``heartbeat()``; None: never."""
        return self.machine.spec.heartbeat_every

    def heartbeat(self) -> bytes:
        """The keep-alive event the mapping declares (Anthropic's ``ping``), encoded; it carries
        nothing, so it may go between any two events of a stream that has begun."""
        return self._encode(self.machine.spec.heartbeat)

    @property
    def left_out(self) -> list[tuple[str, str]]:
        """What the translation has left out so far, as (what, why) pairs (``choices[1]``)."""
        return self.machine.ctx.left_out or []

    @property
    def response(self) -> Json:
        """The Response object the terminal event carried, once finished; None before.

        What a response store keeps: the very object the client's stream ended with, so a later
        retrieve has the streamed ids.
        """
        return self.machine.state.get("response") if self.machine.finished else None

    # -- driving it -----------------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Bytes from the upstream in, bytes for the client out (often empty)."""
        if self.machine.finished:
            return b""
        try:
            frames = self._decoder.feed(data)
        except SSEDecodeError as error:
            return self._encode_all(self._fail(str(error)))
        return self._frames_to_bytes(frames)

    def close(self) -> bytes:
        """The upstream's body ended: finish normally, or fail a stream cut short."""
        out = b""
        if not self.machine.finished:
            try:
                out = self._frames_to_bytes(self._decoder.close(), at_end=True)
            except SSEDecodeError as error:
                return out + self._encode_all(self.machine.fail(str(error), code="server_error"))
        if not self.machine.finished:
            out += self._encode_all(self.machine.end_of_input())
        return out

    def abort(self, message: str, code: str = "server_error") -> bytes:
        """The upstream failed mid-stream (timeout, reset): close what is open and fail.

        After the upstream's finish the answer is whole and only the usage chunk or the end marker
        went missing, so the stream completes instead.
        """
        if self.machine.finished:
            return b""
        if self.machine.saw_finish:
            return self._encode_all(self.machine.end_of_input())
        return self._encode_all(self.machine.fail(message, code=code))

    # -- internals --------------------------------------------------------------------------------

    def _frames_to_bytes(self, frames: list[Any], at_end: bool = False) -> bytes:
        """Convert decoded frames; ``at_end``: the upstream's body has ended (no status is held
        for these frames any more, and one that does not parse was cut short)."""
        out = []
        machine = self.machine
        for frame in frames:
            if machine.finished:
                break
            self._frames += 1
            data = frame.data
            if data == self._done_sentinel:
                events = machine.end_of_input(done=True)
            else:
                try:
                    chunk = orjson.loads(data)
                except orjson.JSONDecodeError:
                    # an unterminated last frame that does not parse was cut short, not malformed
                    message = (f"the upstream stream ended before it finished, inside frame {self._frames}"
                               if at_end else f"upstream frame {self._frames} is not JSON: {data[:200]!r}")
                    events = self._fail(message, hold=not at_end)
                else:
                    events = machine.feed(chunk)
            for event in events:
                out.append(self._encode(event))
            if machine.finished and self._done_out:
                out.append(self._done_out)
        return b"".join(out)

    def _fail(self, message: str, hold: bool = True) -> list[Json]:
        """An unreadable upstream frame: ``UpstreamError`` (a 502) before the stream has started,
        so that the proxy can still answer with a status (``hold``); a failed stream after."""
        if hold and not self.machine.started:
            raise UpstreamError(message, status=502, error_type="bad_upstream_response")
        return self.machine.fail(message, code="server_error")

    def _encode_all(self, events: list[Json]) -> bytes:
        out = b"".join(self._encode(event) for event in events)
        if self.machine.finished and self._done_out:
            out += self._done_out
        return out


def translate_stream(mapping: Any, chunks: Iterable[bytes], *, request: Json = None,
                     ctx: Context | None = None) -> Iterator[bytes]:
    """Synchronous translation of a whole stream (``mapper convert --kind stream``).

    An upstream error before anything was written still becomes a complete stream here (there is
    no HTTP status to hold in a file), so ``UpstreamError`` is turned into a failed stream.
    """
    session = StreamSession(mapping, request=request, ctx=ctx)
    for chunk in chunks:
        try:
            out = session.feed(chunk)
        except UpstreamError as error:
            out = session.abort(error.message, code=error.error_code)
        if out:
            yield out
    out = session.close()
    if out:
        yield out

