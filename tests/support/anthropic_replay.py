"""Replay a recorded Anthropic Messages body through the official ``anthropic`` SDK and report what it built.

``anthropic_invariants`` says what a stream *should* look like; the SDK says what a real client *does*
with it. ``client.messages.stream()`` runs the SDK's own accumulator (``MessageStream``): it raises on an
event before ``message_start`` or a delta for a block it never saw, turns an ``error`` event into an
``APIStatusError``, and silently skips frames without an ``event:`` line and deltas of the wrong type.
Replaying mapper's streams through it catches what a client would trip on, with the client's code.

How it works: an ``anthropic.Anthropic`` client (``max_retries=0``) sends through an
``httpx2.MockTransport`` whose handler records each request and answers with the given body, so no
socket is opened. ``chunk_size`` hands the body to the SDK in pieces of that many bytes, so its SSE
decoder meets frames split at awkward offsets. ``get_final_message()`` gives the accumulated Message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator

import anthropic
import httpx2  # anthropic 2.x speaks httpx2, httpx's successor; it refuses plain httpx objects

Json = Any

BASE_URL = "http://anthropic.replay"
DEFAULT_REQUEST: dict[str, Json] = {
    "model": "claude-replay",
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": "replay"}],
}


@dataclass
class AnthropicReplayResult:
    """What the SDK made of a replayed body.

    ``events``: the SDK's stream events (raw events plus its ``text``/``input_json``/``thinking``/
    ``signature``/``citation`` helper events). ``final``: the final Message as JSON (``model_dump(mode=
    "json", by_alias=True, exclude_unset=True)``), or None. ``error``: what the SDK raised, or None.
    ``stage``: where it stopped: "request", "iterate", "final" or "done". ``requests``: what the SDK sent,
    as ``{"method", "path", "query", "headers", "body"}``.
    """

    mode: str
    events: list[Any] = field(default_factory=list)
    final: dict[str, Json] | None = None
    error: BaseException | None = None
    stage: str = "request"
    requests: list[dict[str, Json]] = field(default_factory=list)

    @property
    def event_types(self) -> list[str]:
        """The ``type`` of every SDK event, in order."""
        return [getattr(event, "type", type(event).__name__) for event in self.events]

    @property
    def text(self) -> str:
        """The text blocks of the final Message, joined."""
        content = (self.final or {}).get("content") or []
        return "".join(block.get("text", "") for block in content if block.get("type") == "text")

    @property
    def error_info(self) -> dict[str, Json] | None:
        """The error's class and message and, for ``anthropic.APIStatusError``, status_code and body."""
        if self.error is None:
            return None
        info: dict[str, Json] = {"class": type(self.error).__name__, "message": str(self.error)}
        if isinstance(self.error, anthropic.APIStatusError):
            info["status_code"] = self.error.status_code
            info["body"] = self.error.body
        return info

    @property
    def verdict(self) -> str:
        """"accepted", "error-surfaced" (an API error reached the caller as one) or "rejected"."""
        if isinstance(self.error, anthropic.APIStatusError):
            return "error-surfaced"
        return "rejected" if self.error is not None else "accepted"


class _Recorder:
    """The MockTransport handler: records each request, answers with the prepared response."""

    def __init__(self, body: bytes, *, stream: bool, status: int, chunk_size: int | None) -> None:
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.body, self.stream, self.status, self.chunk_size = body, stream, status, chunk_size
        self.requests: list[dict[str, Json]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        raw = request.read()
        self.requests.append({
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query.decode("ascii"),
            "headers": dict(request.headers),
            "body": json.loads(raw) if raw else None,
        })
        # an error answer is JSON even on a streaming call, as the API sends it
        content_type = "text/event-stream" if self.stream and self.status < 400 else "application/json"
        headers = {"content-type": content_type, "request-id": "req_replay"}
        if self.chunk_size is None:
            return httpx2.Response(self.status, headers=headers, content=self.body)
        return httpx2.Response(self.status, headers=headers, content=_pieces(self.body, self.chunk_size))


def _pieces(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _client(recorder: _Recorder) -> anthropic.Anthropic:
    transport = httpx2.MockTransport(recorder)
    http_client = httpx2.Client(transport=transport, timeout=10.0)
    return anthropic.Anthropic(api_key="sk-ant-replay", base_url=BASE_URL, max_retries=0, http_client=http_client)


def replay_anthropic_stream(
    body: bytes | str,
    *,
    request: dict[str, Json] | None = None,
    chunk_size: int | None = None,
    status: int = 200,
) -> AnthropicReplayResult:
    """Drive ``client.messages.stream(**request)`` over ``body`` and ``get_final_message()``."""
    recorder = _Recorder(_as_bytes(body), stream=True, status=status, chunk_size=chunk_size)
    result = AnthropicReplayResult(mode="messages-stream")
    with _client(recorder) as client:
        try:
            with client.messages.stream(**{**DEFAULT_REQUEST, **(request or {})}) as stream:
                result.stage = "iterate"
                for event in stream:
                    result.events.append(event)
                result.stage = "final"
                result.final = _dump(stream.get_final_message())
                result.stage = "done"
        except Exception as exc:  # noqa: BLE001 - every SDK failure is a finding to report
            result.error = exc
    result.requests = recorder.requests
    return result


def replay_anthropic_json(
    body: bytes | str | dict[str, Json],
    *,
    status: int = 200,
    request: dict[str, Json] | None = None,
) -> AnthropicReplayResult:
    """Send a non-stream ``body`` (or an error body with ``status`` >= 400) through ``messages.create()``."""
    raw = json.dumps(body).encode("utf-8") if isinstance(body, dict) else _as_bytes(body)
    recorder = _Recorder(raw, stream=False, status=status, chunk_size=None)
    result = AnthropicReplayResult(mode="messages-json")
    with _client(recorder) as client:
        try:
            result.final = _dump(client.messages.create(**{**DEFAULT_REQUEST, **(request or {})}))
            result.stage = "done"
        except Exception as exc:  # noqa: BLE001 - every SDK failure is a finding to report
            result.error = exc
    result.requests = recorder.requests
    return result


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def _dump(model: Any) -> dict[str, Json]:
    # exclude_unset: only what the body carried, so the result compares directly with the JSON sent
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True, warnings=False)
