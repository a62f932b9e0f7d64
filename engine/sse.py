"""Server-Sent Events framing: upstream bytes to frames, and events back to bytes.

Every chunk the proxy streams passes through this module, so it does framing and nothing else: a
``Frame`` carries the ``data`` text exactly as sent, and ``stream.py`` decides what the JSON means.
Keeping the two apart lets either side be tested on its own and keeps this, the hot path, small.

Decoding follows the WHATWG event-stream rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
lines end in LF, CRLF or a lone CR; ``field: value`` loses one optional space after the colon; a
line starting with ``:`` is a comment; ``data`` lines are joined with "\\n"; a blank line dispatches
the frame unless it had no ``data`` line; unknown fields are ignored; a leading UTF-8 BOM is
skipped. As in the spec, ``id`` is sticky: every frame carries the last id seen so far (the
browser's ``lastEventId``), while ``retry`` is reported only on the frame whose lines set it.

It departs from the spec in three places, each because a converter must neither lose nor corrupt
what the upstream sent:

* ``close()`` dispatches a frame left pending at end of input, and treats an unterminated last
  line as complete. The spec discards both, but many real upstreams end their last frame (often
  ``data: [DONE]``) without the trailing blank line.
* Invalid UTF-8 anywhere, comments included, raises ``SSEDecodeError`` with its byte offset
  instead of decoding to U+FFFD.
* ``max_frame_bytes`` bounds what one frame may buffer, so a broken upstream cannot grow memory
  without end. It counts the UTF-8 bytes of every line since the last blank line, terminators
  excluded, and so gives the same verdict however the stream is split.

Why it is fast: line terminators are the ASCII bytes CR and LF, which never occur inside a
multi-byte UTF-8 sequence. So ``feed`` cuts each chunk after its last terminator, decodes that
complete part in one call and splits it with ``str`` methods; only the unterminated tail is kept
as bytes until the next chunk. A chunk boundary adds one ambiguity: a CR at the very end of a chunk
ends its line at once, but if the next chunk starts with LF, that LF is the rest of the same CRLF
and is dropped, not read as a blank line that would dispatch the frame early.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from .errors import SSEDecodeError

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "DONE",
    "Frame",
    "SSEDecodeError",
    "SSEDecoder",
    "aiter_frames",
    "encode_comment",
    "encode_data",
    "encode_event",
]

DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024

# Chat Completions ends a stream with this sentinel instead of a JSON chunk.
DONE = b"data: [DONE]\n\n"

_BOM = b"\xef\xbb\xbf"
_LF = 0x0A
_CR = 0x0D


@dataclass(slots=True)
class Frame:
    """One dispatched event; ``event`` is None when its ``event:`` line was missing or empty."""

    event: str | None
    data: str
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Incremental event-stream parser: ``feed`` bytes as they arrive, then ``close`` once.

    >>> decoder = SSEDecoder()
    >>> decoder.feed(b"event: ping\\ndata: {}\\n") + decoder.feed(b"\\n")
    [Frame(event='ping', data='{}', id=None, retry=None)]

    After it raises ``SSEDecodeError`` the decoder is spent; start a new one per stream.
    """

    __slots__ = (
        "max_frame_bytes",
        "_tail",
        "_offset",
        "_started",
        "_skip_lf",
        "_pending_bytes",
        "_data",
        "_event",
        "_last_id",
        "_retry",
    )

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._tail = bytearray()  # the unterminated last line; never holds CR or LF
        self._offset = 0  # stream offset of _tail[0], for error messages
        self._started = False  # False until the leading BOM (if any) is dealt with
        self._skip_lf = False  # the last chunk ended in CR: an LF next completes that CRLF
        self._pending_bytes = 0  # UTF-8 bytes of the lines since the last blank line
        self._data: list[str] = []
        self._event: str | None = None
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[Frame]:
        """Take the next chunk of the stream; return the frames it completes."""
        if not self._started:
            chunk = self._skip_bom(chunk)
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == _LF:
                chunk = chunk[1:]
                self._offset += 1
        if not chunk:
            return []
        last = chunk[-1]
        if last == _LF or last == _CR:
            cut = len(chunk)
            self._skip_lf = last == _CR
        else:
            cut = max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) + 1
            if not cut:
                self._keep_tail(chunk)
                return []
        tail = self._tail
        if tail:
            tail += memoryview(chunk)[:cut]
            complete: bytes | bytearray = tail
        else:
            complete = chunk if cut == len(chunk) else chunk[:cut]
        try:
            text = complete.decode()
        except UnicodeDecodeError as exc:
            raise SSEDecodeError("invalid UTF-8", self._offset + exc.start) from None
        size = len(complete)
        self._offset += size
        tail.clear()
        frames = self._read_lines(text, size)
        if cut < len(chunk):
            self._keep_tail(memoryview(chunk)[cut:])
        return frames

    def close(self) -> list[Frame]:
        """End of input: read an unterminated last line and dispatch any pending frame.

        The spec drops both; see the module docstring for why this does not. Calling it twice
        returns nothing the second time.
        """
        self._skip_lf = False
        frames: list[Frame] = []
        if self._tail:
            # A terminator completes the last line; it is no byte of the stream, so take it back.
            frames = self.feed(b"\n")
            self._offset -= 1
        if self._data:
            frames.append(self._dispatch())
        self._started = True
        self._event = None
        self._retry = None
        self._pending_bytes = 0
        return frames

    def _skip_bom(self, chunk: bytes) -> bytes:
        """Drop a leading UTF-8 BOM, which may itself arrive split across chunks."""
        head = bytes(self._tail) + chunk
        if len(head) < len(_BOM) and _BOM.startswith(head):
            self._tail[:] = head
            return b""
        self._tail.clear()
        self._started = True
        if head.startswith(_BOM):
            self._offset = len(_BOM)
            return head[len(_BOM) :]
        return head

    def _keep_tail(self, part: bytes | memoryview) -> None:
        """Carry an unterminated line over to the next chunk, within the frame size limit."""
        self._tail += part
        if self._pending_bytes + len(self._tail) > self.max_frame_bytes:
            self._too_big()

    def _read_lines(self, text: str, size: int) -> list[Frame]:
        """Apply each complete line of ``text`` (``size`` bytes, ending in a terminator).

        Lines are counted against ``max_frame_bytes`` one by one only when the pending frame plus
        these bytes could pass it; otherwise only the lines still pending at the end are counted.
        """
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        lines.pop()  # the empty piece after the final terminator
        counted = self._pending_bytes + size > self.max_frame_bytes
        frames: list[Frame] = []
        data = self._data
        pending = self._pending_bytes
        for line in lines:
            if not line:
                if data:
                    frames.append(self._dispatch())
                    data = self._data
                else:
                    # A blank line with no data still resets the event type, as the spec says.
                    self._event = None
                    self._retry = None
                pending = 0
                continue
            if counted:
                pending += _utf8_len(line)
                if pending > self.max_frame_bytes:
                    self._too_big()
            # data (and, from a Responses upstream, event) is nearly every line of a real stream,
            # so the usual spellings skip the field table.
            if line[:6] == "data: ":
                data.append(line[6:])
            elif line[:5] == "data:":
                data.append(line[5:])
            elif line[:7] == "event: ":
                self._event = line[7:] or None
            else:
                self._read_field(line)
        if counted:
            self._pending_bytes = pending
        else:
            # Most chunks end on a frame's blank line, leaving nothing pending to count.
            self._pending_bytes = self._count_pending(lines) if lines[-1] else 0
        return frames

    def _count_pending(self, lines: list[str]) -> int:
        """Bytes of the frame still pending after ``lines``: those after the last blank line."""
        size = 0
        for line in reversed(lines):
            if not line:
                return size
            size += _utf8_len(line)
        return self._pending_bytes + size

    def _read_field(self, line: str) -> None:
        """Apply a non-blank line that is not ``data:``; comments and unknown fields do nothing."""
        colon = line.find(":")
        if colon == 0:
            return
        if colon < 0:
            name, value = line, ""
        else:
            name = line[:colon]
            value = line[colon + 2 :] if line.startswith(" ", colon + 1) else line[colon + 1 :]
        apply = _FIELDS.get(name)
        if apply is not None:
            apply(self, value)

    def _set_data(self, value: str) -> None:
        self._data.append(value)

    def _set_event(self, value: str) -> None:
        self._event = value or None

    def _set_id(self, value: str) -> None:
        # The spec ignores an id containing NUL; an empty id clears the last one.
        if "\0" not in value:
            self._last_id = value or None

    def _set_retry(self, value: str) -> None:
        # Only ASCII digits count; int() alone would also take "+5", " 5", "1_0" and "٥". Past 18
        # digits it is no delay anyone means (and int() refuses very long digit strings).
        if value.isascii() and value.isdigit() and len(value) <= 18:
            self._retry = int(value)

    def _dispatch(self) -> Frame:
        data = self._data
        frame = Frame(
            self._event,
            data[0] if len(data) == 1 else "\n".join(data),
            self._last_id,
            self._retry,
        )
        self._data = []
        self._event = None
        self._retry = None
        return frame

    def _too_big(self) -> None:
        raise SSEDecodeError(
            f"frame larger than max_frame_bytes={self.max_frame_bytes}",
            self._offset + len(self._tail),
        )


def _utf8_len(line: str) -> int:
    return len(line) if line.isascii() else len(line.encode())


_FIELDS: dict[str, Callable[[SSEDecoder, str], None]] = {
    "data": SSEDecoder._set_data,
    "event": SSEDecoder._set_event,
    "id": SSEDecoder._set_id,
    "retry": SSEDecoder._set_retry,
}


async def aiter_frames(
    byte_iter: AsyncIterable[bytes], *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
) -> AsyncIterator[Frame]:
    """Decode an async byte stream (e.g. ``response.aiter_bytes()``) into frames, then close."""
    decoder = SSEDecoder(max_frame_bytes)
    async for chunk in byte_iter:
        for frame in decoder.feed(chunk):
            yield frame
    for frame in decoder.close():
        yield frame


# orjson escapes every control character, so the JSON holds no raw CR or LF and one data line
# carries it whole.


def encode_event(event: Mapping[str, Any]) -> bytes:
    """A Responses API event: ``event: <type>`` then its JSON, since the two must agree."""
    body = event if isinstance(event, dict) else dict(event)
    return _event_head(event["type"]) + orjson.dumps(body) + b"\n\n"


def encode_data(payload: Mapping[str, Any]) -> bytes:
    """A Chat Completions chunk: a bare ``data:`` line, as chat streams send no event names."""
    body = payload if isinstance(payload, dict) else dict(payload)
    return b"data: " + orjson.dumps(body) + b"\n\n"


def encode_comment(text: str = "") -> bytes:
    """A comment frame, e.g. a keep-alive; every client ignores it.

    Each line of ``text`` gets its own ``:`` so that a newline cannot turn the rest into a field.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return b"".join(b": " + line.encode() + b"\n" for line in lines) + b"\n"


@lru_cache(maxsize=256)
def _event_head(event_type: str) -> bytes:
    """``event: <type>\\ndata: `` for one event type; there are a few dozen, so it is cached."""
    if "\n" in event_type or "\r" in event_type:
        raise ValueError(f"event type {event_type!r} contains a line break")
    return b"event: " + event_type.encode() + b"\ndata: "
