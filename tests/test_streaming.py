"""engine/streaming.py and engine/stream.py: the session the proxy drives, beyond the fixtures."""

from __future__ import annotations

import tracemalloc

import orjson
import pytest

from mapper.engine import UpstreamError, load_mapping
from mapper.engine.context import deterministic_context
from mapper.engine.streaming import StreamSession
from support.responses_invariants import check_responses_stream
from support.sse_reader import parse_sse_events

MAPPING = load_mapping("openai-chat")
REQUEST = {"model": "m", "input": "hi", "stream": True}


def frame(payload: dict) -> bytes:
    body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", **payload}
    return b"data: " + orjson.dumps(body) + b"\n\n"


def text(delta: str) -> bytes:
    return frame({"choices": [{"index": 0, "delta": {"content": delta}}]})


FINISH = frame({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})


def session() -> StreamSession:
    return StreamSession(MAPPING, request=REQUEST, ctx=deterministic_context())


def test_first_frame_error_raises_so_the_proxy_can_send_a_status() -> None:
    s = session()
    with pytest.raises(UpstreamError) as caught:
        s.feed(b'data: {"error": {"message": "rate limited", "type": "rate_limit_error", "code": 429}}\n\n')
    assert caught.value.status == 429 and caught.value.message == "rate limited"
    assert not s.started


def test_role_only_first_frame_starts_the_stream() -> None:
    s = session()
    out = s.feed(frame({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}))
    assert s.started and b"response.created" in out and b"response.in_progress" in out


def test_nothing_is_written_until_a_whole_frame_arrives() -> None:
    s = session()
    raw = text("hello")
    assert s.feed(raw[:-1]) == b"" and not s.started
    assert b"response.output_text.delta" in s.feed(raw[-1:])


def test_abort_before_finish_fails_and_after_finish_completes() -> None:
    s = session()
    body = s.feed(text("partial")) + s.abort("upstream read timed out")
    summary = check_responses_stream(parse_sse_events(body))
    assert summary["terminal"] == "response.failed"
    assert summary["response"]["error"] == {"code": "server_error", "message": "upstream read timed out"}

    s = session()
    body = s.feed(text("whole") + FINISH) + s.abort("usage chunk never came")
    assert check_responses_stream(parse_sse_events(body))["terminal"] == "response.completed"


def test_input_after_the_terminal_event_is_ignored() -> None:
    s = session()
    body = s.feed(text("a") + FINISH + b"data: [DONE]\n\n")
    assert s.finished
    assert s.feed(text("late")) == b"" and s.close() == b"" and s.abort("x") == b""
    check_responses_stream(parse_sse_events(body))


def test_invalid_utf8_fails_the_stream() -> None:
    s = session()
    body = s.feed(text("ok")) + s.feed(b'data: {"x": "\xff"}\n\n')
    summary = check_responses_stream(parse_sse_events(body))
    assert summary["terminal"] == "response.failed" and "UTF-8" in summary["response"]["error"]["message"]


def test_usage_is_available_for_logs() -> None:
    s = session()
    s.feed(text("a") + FINISH + frame({"choices": [], "usage": {"prompt_tokens": 2,
                                                                 "completion_tokens": 1,
                                                                 "total_tokens": 3}}))
    assert s.usage["total_tokens"] == 3


def test_error_message_is_the_failure_a_stream_ended_with() -> None:
    s = session()
    s.feed(text("partial"))
    assert s.error_message is None  # still running
    s.abort("upstream read timed out")
    assert s.error_message == "upstream read timed out"

    s = session()
    s.feed(text("whole") + FINISH + b"data: [DONE]\n\n")
    assert s.finished and s.error_message is None


def test_memory_does_not_grow_with_frames_that_carry_no_text() -> None:
    """Keep-alive chunks (role, empty deltas, comments) must not accumulate anything."""
    s = session()
    s.feed(text("start"))
    idle = frame({"choices": [{"index": 0, "delta": {"content": ""}}]}) + b": keep-alive\n\n"
    for _ in range(2_000):  # warm up caches and allocator pools
        s.feed(idle)
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    for _ in range(50_000):
        s.feed(idle)
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert after - before < 64 * 1024, f"grew by {after - before} bytes over 50,000 frames"


def test_text_is_the_only_thing_that_grows() -> None:
    s = session()
    s.feed(text("x"))
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    for _ in range(20_000):
        s.feed(text("y"))
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # 20,000 one-character pieces kept for the final object: well under 100 bytes each
    assert after - before < 20_000 * 100
