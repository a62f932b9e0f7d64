"""Tests for tests/support/sdk_replay.py: the official openai SDK replaying recorded bodies.

Every oracle sample must get the SDK verdict the oracle bundle recorded in EXPECTED.json (openai-python
3.52.0), and the objects the SDK builds must equal what was on the wire.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest

from support.chat_invariants import check_chat_stream
from support.sdk_replay import (
    ReplayServer,
    replay_chat_stream,
    replay_json,
    replay_responses_stream,
    shared_server,
    without_sdk_fields,
)
from support.sse_reader import parse_sse_events

SAMPLES = Path(__file__).parent / "data" / "oracle_sse"
EXPECTED = json.loads((SAMPLES / "EXPECTED.json").read_text())["streams"]


def _body(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def _replay(name: str, **options: Any):
    replay = replay_chat_stream if name.startswith("chat.") else replay_responses_stream
    return replay(_body(name), **options)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_gets_the_recorded_sdk_verdict(name: str) -> None:
    result = _replay(name)
    assert result.verdict == EXPECTED[name]["sdk_verdict"], result.error_info


@pytest.mark.parametrize("name", ["responses.text+reasoning.valid.sse", "responses.function-call.valid.sse"])
def test_final_response_equals_the_terminal_event(name: str) -> None:
    result = replay_responses_stream(_body(name))
    assert result.error is None, result.error_info
    terminal = parse_sse_events(_body(name))[-1]
    assert result.event_types[-1] == terminal["type"] == "response.completed"
    assert without_sdk_fields(result.final) == terminal["response"]
    assert result.terminal == result.final


def test_incomplete_stream_ends_without_completed() -> None:
    name = "responses.incomplete-max-output-tokens.valid.sse"
    result = replay_responses_stream(_body(name))
    assert result.terminal_without_completed
    assert isinstance(result.error, RuntimeError)
    assert result.final is None
    assert result.terminal == parse_sse_events(_body(name))[-1]["response"]


def test_accumulation_failure_is_not_terminal_without_completed() -> None:
    truncated = replay_responses_stream(_body("responses.truncated-no-completed.invalid.sse"))
    assert truncated.error is not None and not truncated.terminal_without_completed
    rejected = replay_responses_stream(_body("responses.item-id-changed.invalid.sse"))
    assert rejected.stage == "iterate" and "identity changed" in str(rejected.error)


def test_delta_mismatch_is_reported() -> None:
    result = replay_responses_stream(_body("responses.delta-final-mismatch.invalid.sse"))
    assert result.delta_mismatches == [
        {"what": "text", "output_index": 1, "content_index": 0, "streamed": "Hello world!", "final": "Hello there!"}
    ]


def test_chat_stream_builds_the_completion() -> None:
    name = "chat.parallel-tool-calls.valid.sse"
    result = replay_chat_stream(_body(name))
    assert result.verdict == "accepted"
    message = result.final["choices"][0]["message"]
    calls = [{"id": c["id"], "name": c["function"]["name"], "arguments": c["function"]["arguments"]}
             for c in message["tool_calls"]]
    assert calls == check_chat_stream(parse_sse_events(_body(name)))["tool_calls"]
    assert result.final["choices"][0]["finish_reason"] == "tool_calls"
    assert "chunk" in result.event_types


def test_chat_length_finish_still_reports_the_completion() -> None:
    result = replay_chat_stream(_body("chat.finish-length.valid.sse"))
    assert isinstance(result.error, openai.LengthFinishReasonError)
    assert result.final["choices"][0]["message"]["content"] == "Hello there!"
    assert result.final["usage"]["total_tokens"] == 25


def test_error_body_with_429_raises_rate_limit_error() -> None:
    error = {"error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    result = replay_json(error, "responses", 429)
    assert isinstance(result.error, openai.RateLimitError)
    assert result.error_info == {
        # the SDK prefixes the status to the body's message
        "class": "RateLimitError", "message": "Error code: 429 - Rate limit reached", "status_code": 429,
        "code": "rate_limit_exceeded", "type": "requests", "param": None, "body": error["error"],
    }
    chat = replay_json(json.dumps(error), "chat", 429)
    assert chat.verdict == "error-surfaced" and chat.error_info["status_code"] == 429


def test_stream_request_answered_with_an_error_status() -> None:
    error = {"error": {"message": "bad", "type": "invalid_request_error", "param": "input", "code": None}}
    result = replay_responses_stream(json.dumps(error), status=400)
    assert isinstance(result.error, openai.BadRequestError)
    assert result.error_info["param"] == "input"


def test_json_bodies() -> None:
    response = parse_sse_events(_body("responses.text+reasoning.valid.sse"))[-1]["response"]
    result = replay_json(response, "responses")
    assert result.verdict == "accepted"
    assert without_sdk_fields(result.final) == response
    completion = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-test",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": "Hi", "refusal": None}}],
    }
    chat = replay_json(completion, "chat")
    assert chat.verdict == "accepted" and chat.final == completion
    with pytest.raises(ValueError):
        replay_json(completion, "completions")


def test_chunked_replay_matches_the_whole_body() -> None:
    name = "responses.text+reasoning.valid.sse"
    whole = replay_responses_stream(_body(name))
    pieces = replay_responses_stream(_body(name), chunk_size=7)
    assert pieces.verdict == "accepted"
    assert pieces.final == whole.final
    assert pieces.event_types == whole.event_types


def test_request_reaches_the_server() -> None:
    request = {"model": "gpt-x", "store": False}
    result = replay_responses_stream(_body("responses.function-call.valid.sse"), request=request)
    assert result.requests == [{"model": "gpt-x", "input": "replay", "store": False, "stream": True}]


def test_private_server_starts_and_stops() -> None:
    server = ReplayServer().start()
    try:
        assert server.base_url.startswith("http://127.0.0.1:")
        result = replay_chat_stream(_body("chat.text+usage.valid.sse"), server=server)
        assert result.final["choices"][0]["message"]["content"] == "Hello there!"
    finally:
        server.stop()
    with pytest.raises(AssertionError, match="not started"):
        server.base_url
    assert shared_server() is shared_server()
