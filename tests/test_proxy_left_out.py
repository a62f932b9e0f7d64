"""What the proxy says about the parts of an answer a conversion leaves out (issue 11).

Both directions, against the fake upstream: the parts are named in ``x-mapper-dropped`` while the
headers can still change, and always in the request's log line; an answer with nothing left for the
client to read is an error (a 502 before the first byte, an error frame in a stream), never an
empty success.
"""

from __future__ import annotations

import json
import logging
from typing import Any, AsyncContextManager

import httpx
import pytest

from mapper.engine.proxy import ServeOptions, build_config
from mapper.engine.proxy.logs import JsonLines
from support.asgi_proxy import in_process
from support.chat_invariants import check_chat_stream
from support.fake_upstream import FakeUpstream
from support.responses_invariants import check_responses_stream
from support.schemas import assert_valid
from support.sse_reader import parse_sse_events
from support.upstream_replies import json_reply, sse_reply

pytestmark = pytest.mark.anyio


def proxy(fake: FakeUpstream, mapping: str, **options: Any) -> AsyncContextManager[httpx.AsyncClient]:
    return in_process(build_config(ServeOptions(mapping=mapping, upstream=fake.base_url,
                                                options=options), env={}))


def logged(caplog: Any) -> list[dict[str, Any]]:
    formatter = JsonLines()
    return [json.loads(formatter.format(record)) for record in caplog.records
            if record.getMessage() == "request"]


def chunk(index: int, **delta: Any) -> dict[str, Any]:
    finish = delta.pop("finish", None)
    return {"id": "chatcmpl-n", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


# -- forward: an upstream that ignores n ----------------------------------------------------------


async def test_other_choices_are_left_out_of_the_response_and_named(fake: FakeUpstream, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="mapper.proxy")
    fake.expect("/v1/chat/completions", json_reply({
        "id": "chatcmpl-n", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 1, "message": {"role": "assistant", "content": "second"}, "finish_reason": "stop"},
                    {"index": 0, "message": {"role": "assistant", "content": "first"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}))
    async with proxy(fake, "openai-chat") as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "hi", "truncation": "auto"})
    assert response.status_code == 200
    body = response.json()
    assert_valid("responses.response", body)
    assert [part["text"] for item in body["output"] for part in item["content"]] == ["first"]
    assert response.headers["x-mapper-dropped"] == "truncation,choices[1]"
    assert logged(caplog)[0]["dropped"] == ["truncation", "choices[1]"]


async def test_a_stream_names_the_choices_it_saw_before_its_first_event(fake: FakeUpstream) -> None:
    both = chunk(0, role="assistant", content="A")
    both["choices"].append({"index": 1, "delta": {"role": "assistant", "content": "B"}, "finish_reason": None})
    fake.expect("/v1/chat/completions", sse_reply([both, chunk(1, content="BB"), chunk(0, content="AA"),
                                                   chunk(1, finish="stop"), chunk(0, finish="stop"), "[DONE]"]))
    async with proxy(fake, "openai-chat") as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "hi", "stream": True})
    assert response.headers["x-mapper-dropped"] == "choices[1]"
    summary = check_responses_stream(parse_sse_events(response.content))
    assert (summary["terminal"], summary["text"]) == ("response.completed", "AAA")


async def test_choices_that_come_after_the_first_event_are_logged(fake: FakeUpstream, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="mapper.proxy")
    fake.expect("/v1/chat/completions", sse_reply([
        chunk(0, role="assistant", content="A"), chunk(1, role="assistant", content="B"),
        chunk(2, content="C"), chunk(0, finish="stop"), chunk(1, finish="stop"), chunk(2, finish="stop"),
        "[DONE]"], delay=0.05))  # frame by frame, so the first event goes out before choice 1 arrives
    async with proxy(fake, "openai-chat") as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "hi", "stream": True})
    assert "x-mapper-dropped" not in response.headers  # the headers left with the first event
    summary = check_responses_stream(parse_sse_events(response.content))
    assert summary["text"] == "A"
    assert logged(caplog)[0]["dropped"] == ["choices[1]", "choices[2]"]


# -- reverse: output items a chat completion cannot carry -----------------------------------------

IMAGE = {"id": "ig_1", "type": "image_generation_call", "status": "completed", "result": "iVBORw0KGgo="}
APPROVAL = {"id": "mcpr_1", "type": "mcp_approval_request", "server_label": "files", "name": "rm",
            "arguments": "{}"}
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
           "content": [{"type": "output_text", "text": "Here it is.", "annotations": [], "logprobs": []}]}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "draw a cat"}]}


def response_body(*items: dict[str, Any]) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": "m",
            "output": list(items), "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}


def events(*items: dict[str, Any]) -> list[Any]:
    frames: list[Any] = [{"type": "response.created", "sequence_number": 0,
                          "response": {**response_body(), "status": "in_progress"}}]
    for index, item in enumerate(items):
        if item["type"] == "message":
            frames.append({"type": "response.output_text.delta", "output_index": index, "content_index": 0,
                           "item_id": item["id"], "delta": item["content"][0]["text"], "logprobs": []})
        frames.append({"type": "response.output_item.done", "output_index": index, "item": item})
    frames.append({"type": "response.completed", "response": response_body(*items)})
    return frames


async def test_an_answer_with_only_uncarried_items_is_a_502_that_names_them(fake: FakeUpstream, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="mapper.proxy")
    fake.expect("/v1/responses", json_reply(response_body(IMAGE, APPROVAL)))
    async with proxy(fake, "openai-responses") as client:
        response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 502
    error = response.json()["error"]
    assert_valid("error", response.json())
    assert "(image_generation_call, mcp_approval_request)" in error["message"]
    assert (error["type"], error["code"]) == ("server_error", "bad_upstream_response")
    assert response.headers["x-mapper-dropped"] == "output[image_generation_call],output[mcp_approval_request]"
    line = logged(caplog)[0]
    assert line["dropped"] == ["output[image_generation_call]", "output[mcp_approval_request]"]
    assert "cannot carry" in line["error"]


async def test_a_message_beside_uncarried_items_is_kept_and_they_are_named(fake: FakeUpstream) -> None:
    fake.expect("/v1/responses", json_reply(response_body(IMAGE, MESSAGE, APPROVAL)))
    async with proxy(fake, "openai-responses") as client:
        response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200
    assert_valid("chat.response", response.json())
    assert response.json()["choices"][0]["message"]["content"] == "Here it is."
    assert response.headers["x-mapper-dropped"] == "output[image_generation_call],output[mcp_approval_request]"


async def test_a_stream_with_only_uncarried_items_ends_in_an_error_frame(fake: FakeUpstream, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="mapper.proxy")
    fake.expect("/v1/responses", sse_reply(events(IMAGE)))
    async with proxy(fake, "openai-responses") as client:
        response = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert response.status_code == 200  # the role chunk went out with response.created
    summary = check_chat_stream(parse_sse_events(response.content))
    assert summary["error"]["code"] == "bad_upstream_response"
    assert "(image_generation_call)" in summary["error"]["message"]
    line = logged(caplog)[0]
    assert line["dropped"] == ["output[image_generation_call]"]
    assert "cannot carry" in line["error"]


async def test_a_stream_with_a_message_beside_uncarried_items_finishes(fake: FakeUpstream, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="mapper.proxy")
    fake.expect("/v1/responses", sse_reply(events(IMAGE, MESSAGE)))
    async with proxy(fake, "openai-responses") as client:
        response = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    summary = check_chat_stream(parse_sse_events(response.content))
    assert (summary["content"], summary["finish_reason"], summary["error"]) == ("Here it is.", "stop", None)
    assert logged(caplog)[0]["dropped"] == ["output[image_generation_call]"]


# -- reverse: earlier reasoning in the chat history -----------------------------------------------

HISTORY = {"model": "m", "messages": [
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "4", "reasoning_content": "2 plus 2 is 4."},
    {"role": "user", "content": "and 3+3?"}]}


async def test_earlier_reasoning_is_left_out_by_default_and_named(fake: FakeUpstream) -> None:
    async with proxy(fake, "openai-responses") as client:
        response = await client.post("/v1/chat/completions", json=HISTORY)
    assert response.status_code == 200  # never refused
    assert response.headers["x-mapper-dropped"] == "messages[].reasoning_content"
    assert [item["type"] for item in fake.last_json["input"]] == ["message", "message", "message"]


async def test_earlier_reasoning_goes_back_as_a_reasoning_item_when_asked(fake: FakeUpstream) -> None:
    async with proxy(fake, "openai-responses", reasoning_history=True) as client:
        response = await client.post("/v1/chat/completions", json=HISTORY)
    assert response.status_code == 200
    assert "x-mapper-dropped" not in response.headers
    sent = fake.last_json["input"]
    assert [item["type"] for item in sent] == ["message", "reasoning", "message", "message"]
    assert sent[1]["content"] == [{"type": "reasoning_text", "text": "2 plus 2 is 4."}]
    assert sent[1]["summary"] == [] and sent[1]["id"].startswith("rs_")
