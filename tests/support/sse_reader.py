"""A deliberately tiny SSE reader for the stream checkers.

It is independent of ``engine/sse.py``, so the checkers never share a bug with the code they judge.
It fails loudly on the frames openai-python would silently drop or choke on.
"""

from __future__ import annotations

import json
from typing import Any

Json = Any

DONE = "[DONE]"


def parse_sse_events(body: bytes | str, *, require_event_name: bool = False) -> list[Json]:
    """Decode an SSE body into its data payloads, in order; ``"[DONE]"`` is kept as the string.

    Frames are separated by blank lines; ``data:`` lines are joined with newlines; comments,
    ``id:`` and ``retry:`` are ignored. When a frame has an ``event:`` line it must equal the
    payload's ``type`` (Open Responses: "The `event` field MUST match the `type`").
    ``require_event_name``: every data frame must have an ``event:`` line (Anthropic streams: the
    anthropic SDK silently skips a frame without one).

    >>> parse_sse_events(b'event: error\\ndata: {"type": "error"}\\n\\ndata: [DONE]\\n\\n')
    [{'type': 'error'}, '[DONE]']
    """
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.strip() and not text.endswith("\n\n"):
        # openai-python only dispatches an event on the blank line after it: a last frame without
        # one is silently dropped by the SDK.
        raise AssertionError(f"SSE body does not end with a blank line: ...{text[-60:]!r}")
    payloads: list[Json] = []
    for number, frame in enumerate(text.split("\n\n")):
        event_name, data_lines = _read_frame(frame)
        if not data_lines:
            if event_name is not None:
                # openai-python dispatches such a frame and fails on json.loads("")
                raise AssertionError(f"SSE frame {number}: `event: {event_name}` without a data line")
            continue
        if require_event_name and event_name is None:
            raise AssertionError(f"SSE frame {number} has no `event:` line: {data_lines[0][:80]!r}")
        data = "\n".join(data_lines)
        if data == DONE:
            payloads.append(DONE)
            continue
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise AssertionError(f"SSE frame {number}: data is not JSON ({exc}): {data[:80]!r}") from None
        data_type = payload.get("type") if isinstance(payload, dict) else None
        if event_name is not None and event_name != data_type:
            raise AssertionError(f"SSE frame {number}: `event: {event_name}` but data type is {data_type!r}")
        payloads.append(payload)
    return payloads


def _read_frame(frame: str) -> tuple[str | None, list[str]]:
    event_name: str | None = None
    data_lines: list[str] = []
    for line in frame.split("\n"):
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event_name = value
        elif name == "data":
            data_lines.append(value)
    return event_name, data_lines
