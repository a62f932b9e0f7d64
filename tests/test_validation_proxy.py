"""Request validation and uncarriable numbers, seen through the proxy app (in process).

The client side: every bad value of issue 11 is a 400 in OpenAI's shape, naming the parameter,
with OpenAI's code, and nothing goes upstream. Numbers JSON allows but mapper cannot carry are a
400 from a client (an integer past 64 bits where an integer belongs; NaN and Infinity, which are
not JSON) and a 502 (or a failed stream) from an upstream; never a 500, and the request's log line
is always written.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from mapper.engine.proxy.logs import JsonLines, RequestLog
from support.chat_invariants import check_chat_stream
from support.fake_upstream import FakeUpstream
from support.responses_invariants import check_responses_stream
from support.schemas import assert_valid
from support.sse_reader import parse_sse_events
from support.upstream_replies import raw_reply, sse_reply
from test_proxy_app import error_of, flags, proxy

pytestmark = pytest.mark.anyio

BIG = "100000000000000000000000000000"  # 10**29: orjson reads it as the float 1e+29

FORWARD = [
    ({"tool_choice": 3}, "tool_choice", "invalid_type"),
    ({"parallel_tool_calls": "true"}, "parallel_tool_calls", "invalid_type"),
    ({"text": "plain"}, "text", "invalid_type"),
    ({"reasoning": "high"}, "reasoning", "invalid_type"),
    ({"include": "x"}, "include", "invalid_type"),
    ({"store": "true"}, "store", "invalid_type"),
    ({"max_output_tokens": -1}, "max_output_tokens", "integer_below_min_value"),
    ({"temperature": 99}, "temperature", "decimal_above_max_value"),
    ({"input": [{"role": "user", "content": [{"type": "input_text", "text": 1}]}]},
     "input[0].content[0].text", "invalid_type"),
]
REVERSE = [
    ({"logprobs": "yes"}, "logprobs", "invalid_type"),
    ({"messages": []}, "messages", "empty_array"),
    ({"max_tokens": -1}, "max_tokens", "integer_below_min_value"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": []}]},
     "messages[1].tool_calls", "empty_array"),
]


def _log_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The request log lines as the proxy writes them (JsonLines), parsed back."""
    formatter = JsonLines()
    return [json.loads(formatter.format(record)) for record in caplog.records
            if record.getMessage() == "request"]


@pytest.mark.parametrize("fields, param, code", FORWARD, ids=[f[1] for f in FORWARD])
async def test_a_responses_client_gets_openais_400(fake: FakeUpstream, fields: dict[str, Any],
                                                   param: str, code: str) -> None:
    async with proxy(flags(fake)) as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "hi", **fields})
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert_valid("error", response.json())
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert f"'{param}'" in error["message"]
    assert fake.requests == []


@pytest.mark.parametrize("fields, param, code", REVERSE, ids=[r[1] for r in REVERSE])
async def test_a_chat_client_gets_openais_400(fake: FakeUpstream, fields: dict[str, Any], param: str,
                                              code: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    async with proxy(flags(fake, mapping="openai-responses")) as client:
        response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["param"], error["code"]) == (param, code)
    assert fake.requests == []


# -- numbers a client sends ------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["max_output_tokens", "top_logprobs"])
async def test_an_integer_past_64_bits_from_a_client_is_a_400(fake: FakeUpstream, field: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mapper.proxy")
    body = '{"model": "m", "input": "hi", "%s": %s}' % (field, BIG)
    async with proxy(flags(fake)) as client:
        response = await client.post("/v1/responses", content=body,
                                     headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["param"], error["code"]) == (field, "integer_above_max_value")
    assert fake.requests == []
    (line,) = _log_lines(caplog)
    assert line["status"] == 400


async def test_without_validation_such_an_integer_is_still_a_400(fake: FakeUpstream) -> None:
    # validate_requests: false lets the mapping read it as an integer that cannot be written
    body = '{"model": "m", "input": "hi", "max_output_tokens": %s}' % BIG
    config = flags(fake, options={"validate_requests": False})
    assert config.router.routes[0].mapping.validate_request is None
    async with proxy(config) as client:
        response = await client.post("/v1/responses", content=body,
                                     headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["param"], error["code"]) == ("max_output_tokens", "integer_above_max_value")
    assert fake.requests == []


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_nan_and_infinity_from_a_client_are_a_400(fake: FakeUpstream, literal: str) -> None:
    body = '{"model": "m", "input": "hi", "temperature": %s}' % literal
    async with proxy(flags(fake)) as client:
        response = await client.post("/v1/responses", content=body,
                                     headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert error_of(response)["code"] == "invalid_json"  # they are not JSON numbers
    assert fake.requests == []


# -- numbers an upstream sends ----------------------------------------------------------------------


def _chat_completion(usage: str) -> str:
    return ('{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
            '"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],'
            '"usage":' + usage + '}')


async def test_an_upstream_usage_past_64_bits_is_a_502_and_the_log_line_is_kept(
        fake: FakeUpstream, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mapper.proxy")
    usage = '{"prompt_tokens":%s,"completion_tokens":1,"total_tokens":%s}' % (BIG, BIG)
    fake.expect("/v1/chat/completions",
                raw_reply(_chat_completion(usage), headers={"content-type": "application/json"}))
    async with proxy(flags(fake, log_bodies=True)) as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "hi"})
    assert response.status_code == 502, response.text
    error = error_of(response)
    assert error["code"] == "bad_upstream_response"
    assert "usage.prompt_tokens: M203 expected an integer within 64 bits, got 1e+29" in error["message"]
    (line,) = _log_lines(caplog)
    assert (line["status"], line["upstream_status"]) == (502, 200)
    assert "usage.prompt_tokens" in line["error"]


async def test_an_upstream_usage_past_64_bits_fails_the_stream_cleanly(
        fake: FakeUpstream, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mapper.proxy")
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    frames = [{**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"},
                                     "finish_reason": None}]},
              {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
              {**chunk, "choices": [], "usage": {"prompt_tokens": 1e29, "completion_tokens": 1,
                                                  "total_tokens": 1e29}}]
    fake.expect("/v1/chat/completions", sse_reply(frames))
    async with proxy(flags(fake)) as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "hi", "stream": True})
    assert response.status_code == 200  # the stream had started: it fails with an error event
    events = parse_sse_events(response.text)
    check_responses_stream(events)
    assert [event["type"] for event in events[-2:]] == ["error", "response.failed"]
    assert "1e+29" in events[-1]["response"]["error"]["message"]
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "hi"  # nothing lost
    (line,) = _log_lines(caplog)
    assert line["status"] == 200 and "1e+29" in line["error"]


async def test_a_responses_upstream_usage_past_64_bits_is_a_502_for_a_chat_client(
        fake: FakeUpstream) -> None:
    answer = ('{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"m",'
              '"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant",'
              '"content":[{"type":"output_text","text":"hi","annotations":[]}]}],'
              '"usage":{"input_tokens":1,"output_tokens":%s,"total_tokens":%s}}' % (BIG, BIG))
    fake.expect("/v1/responses", raw_reply(answer, headers={"content-type": "application/json"}))
    async with proxy(flags(fake, mapping="openai-responses")) as client:
        response = await client.post("/v1/chat/completions",
                                     json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 502, response.text
    assert "usage.output_tokens: M203 expected an integer within 64 bits, got 1e+29" in error_of(response)["message"]


async def test_a_responses_upstream_stream_with_such_usage_ends_in_an_error_frame(
        fake: FakeUpstream) -> None:
    response_object = {"id": "resp_1", "object": "response", "created_at": 1, "model": "m",
                       "status": "in_progress", "output": []}
    message = {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": "hi", "annotations": []}]}
    events = [
        {"type": "response.created", "sequence_number": 0, "response": response_object},
        {"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
         "item": {**message, "status": "in_progress", "content": []}},
        {"type": "response.output_text.delta", "sequence_number": 2, "item_id": "msg_1",
         "output_index": 0, "content_index": 0, "delta": "hi"},
        {"type": "response.output_item.done", "sequence_number": 3, "output_index": 0, "item": message},
        {"type": "response.completed", "sequence_number": 4, "response": {
            **response_object, "status": "completed", "output": [message],
            "usage": {"input_tokens": 1, "output_tokens": 1e29, "total_tokens": 1e29}}}]
    fake.expect("/v1/responses", sse_reply(events))
    async with proxy(flags(fake, mapping="openai-responses")) as client:
        response = await client.post("/v1/chat/completions", json={
            "model": "m", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    chunks = parse_sse_events(response.text)
    summary = check_chat_stream(chunks)  # ends in an error frame: no finish or usage owed after it
    assert summary["content"] == "hi" and summary["usage"] is None
    assert "1e+29" in summary["error"]["message"]  # the failure is told, not swallowed


# -- the log line ------------------------------------------------------------------------------------


def test_a_log_line_with_a_number_orjson_cannot_write_is_still_written() -> None:
    log = RequestLog("req_1", "POST", "/v1/responses")
    log.usage = {"prompt_tokens": 10**29, "completion_tokens": 1, "total_tokens": 10**29}
    log.bodies["response_body"] = {"usage": {"total_tokens": -(10**30)}, "n": float("nan")}
    record = logging.LogRecord("mapper.proxy", logging.INFO, __file__, 1, "request", (), None)
    record.fields = log.fields()
    line = json.loads(JsonLines().format(record))
    assert line["tokens"] == {"input": str(10**29), "output": 1, "total": str(10**29)}
    assert line["response_body"] == {"usage": {"total_tokens": str(-(10**30))}, "n": None}
