"""Tests for `support.fake_upstream`: the fake provider other tests rely on must itself be right.

Every payload the toy model produces is checked against the official schemas, so a proxy test that
passes against the fake has been talking to something shaped like OpenAI. All HTTP goes to 127.0.0.1
through plain sync httpx, and every wait has a bound.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.fake_upstream import FakeUpstream
from support.provider_quirks import BODY_QUIRKS, KNOWN_QUIRKS
from support.schemas import assert_valid, assert_valid_event
from support.scripted_agent import AgentPlan, Function
from support.upstream_replies import error_reply, hang_reply, json_reply, raw_reply, sse_reply

TIMEOUT = httpx.Timeout(5.0)
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]
RESPONSES_TOOLS = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(models=["fake-model", "fake-mini"]) as server:
        yield server


def chat(upstream: FakeUpstream, **body: Any) -> httpx.Response:
    body.setdefault("model", "fake-model")
    return httpx.post(upstream.url("/chat/completions"), json=body, timeout=TIMEOUT)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def weather_call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}


def data_frames(text: str) -> list[Any]:
    """The `data:` payloads of an SSE body, JSON-decoded except the `[DONE]` sentinel."""
    frames = []
    for block in text.split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                payload = line[len("data: ") :]
                frames.append(payload if payload == "[DONE]" else json.loads(payload))
    return frames


def event_frames(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event line, decoded data) pairs of a Responses SSE body."""
    pairs = []
    for block in filter(None, text.split("\n\n")):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        pairs.append((lines["event"], json.loads(lines["data"])))
    return pairs


def streamed_chat(chunks: list[Any]) -> tuple[str, dict[int, dict[str, str]]]:
    """Concatenated content and tool calls (by index) of chat chunks."""
    text, calls = "", {}
    for chunk in chunks[:-1]:
        for choice in chunk["choices"]:
            delta = choice["delta"]
            text += delta.get("content") or ""
            for call in delta.get("tool_calls", []):
                slot = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                slot["id"] += call.get("id", "")
                slot["name"] += call.get("function", {}).get("name", "")
                slot["arguments"] += call.get("function", {}).get("arguments", "")
    return text, calls


# --------------------------------------------------------------------------------------------- chat


def test_models_lists_the_configured_ids(upstream: FakeUpstream) -> None:
    listing = httpx.get(upstream.url("/models"), timeout=TIMEOUT).json()
    assert listing == {
        "object": "list",
        "data": [
            {"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"},
            {"id": "fake-mini", "object": "model", "created": 0, "owned_by": "fake"},
        ],
    }


def test_chat_echoes_the_last_user_text(upstream: FakeUpstream) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "echo: first"},
        {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "world"}]},
    ]
    completion = chat(upstream, messages=messages).json()
    assert_valid("chat.response", completion)
    assert completion["id"] == "chatcmpl-fake-1"
    assert completion["choices"][0]["message"]["content"] == "echo: hello world"
    assert completion["choices"][0]["finish_reason"] == "stop"
    usage = completion["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (7, 3, 10)
    assert upstream.last_json["messages"] == messages
    assert upstream.last.headers["content-type"] == "application/json"


@pytest.mark.parametrize("include_usage", [False, True])
def test_chat_stream_matches_the_non_stream_text(upstream: FakeUpstream, include_usage: bool) -> None:
    messages = user("the quick  brown fox")
    full = chat(upstream, messages=messages).json()
    response = chat(upstream, messages=messages, stream=True, stream_options={"include_usage": include_usage})
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = data_frames(response.text)

    assert chunks[-1] == "[DONE]"
    for chunk in chunks[:-1]:
        assert_valid("chat.chunk", chunk)
    assert {chunk["id"] for chunk in chunks[:-1]} == {"chatcmpl-fake-2"}
    assert {chunk["created"] for chunk in chunks[:-1]} == {full["created"]}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    words = [chunk["choices"][0]["delta"]["content"] for chunk in chunks[1:6]]
    assert words == ["echo: ", "the ", "quick  ", "brown ", "fox"]
    assert streamed_chat(chunks)[0] == full["choices"][0]["message"]["content"]
    finish = chunks[6]
    assert finish["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    if include_usage:
        assert len(chunks) == 9
        assert chunks[7]["choices"] == [] and chunks[7]["usage"] == full["usage"]
    else:
        assert len(chunks) == 8
        assert all("usage" not in chunk for chunk in chunks[:-1])


def test_chat_single_tool_call(upstream: FakeUpstream) -> None:
    completion = chat(upstream, messages=user("please call get_weather now"), tools=TOOLS).json()
    assert_valid("chat.response", completion)
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"q": "please call get_weather now"})},
        }
    ]


def test_chat_parallel_tool_calls_stream(upstream: FakeUpstream) -> None:
    text = "call get_time and call get_weather"
    full = chat(upstream, messages=user(text), tools=TOOLS).json()
    names = [call["function"]["name"] for call in full["choices"][0]["message"]["tool_calls"]]
    assert names == ["get_time", "get_weather"]  # order of mention, not of declaration

    chunks = data_frames(chat(upstream, messages=user(text), tools=TOOLS, stream=True).text)
    for chunk in chunks[:-1]:
        assert_valid("chat.chunk", chunk)
    content, calls = streamed_chat(chunks)
    assert content == ""
    expected = {"q": text}
    assert calls == {
        0: {"id": "call_1", "name": "get_time", "arguments": json.dumps(expected)},
        1: {"id": "call_2", "name": "get_weather", "arguments": json.dumps(expected)},
    }
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks[:-1]]
    call_deltas = [delta["tool_calls"][0] for delta in deltas if delta.get("tool_calls")]
    assert [delta["function"]["arguments"] for delta in call_deltas if "id" in delta] == ["", ""]
    assert 2 * 3 <= len(call_deltas) <= 2 * 4  # one opening plus two or three argument pieces per call
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_chat_tool_result_and_tool_choice_none(upstream: FakeUpstream) -> None:
    messages = [
        *user("call get_weather"),
        {"role": "assistant", "content": None, "tool_calls": [weather_call("call_1")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    answer = chat(upstream, messages=messages, tools=TOOLS).json()["choices"][0]
    assert (answer["message"]["content"], answer["finish_reason"]) == ("tool said: sunny", "stop")
    plain = chat(upstream, messages=user("call get_weather"), tools=TOOLS, tool_choice="none").json()
    assert plain["choices"][0]["message"]["content"] == "echo: call get_weather"


@pytest.mark.parametrize("limit_field", ["max_tokens", "max_completion_tokens"])
def test_chat_truncates_to_n_words(upstream: FakeUpstream, limit_field: str) -> None:
    messages = user("one two three four")
    completion = chat(upstream, messages=messages, **{limit_field: 3}).json()
    choice = completion["choices"][0]
    assert (choice["message"]["content"], choice["finish_reason"]) == ("echo: one two", "length")
    assert completion["usage"]["completion_tokens"] == 3
    chunks = data_frames(chat(upstream, messages=messages, stream=True, **{limit_field: 3}).text)
    assert streamed_chat(chunks)[0] == "echo: one two"
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    untouched = chat(upstream, messages=messages, **{limit_field: 50}).json()["choices"][0]
    assert untouched["finish_reason"] == "stop"


def test_unknown_path_is_an_openai_404(upstream: FakeUpstream) -> None:
    response = httpx.post(upstream.url("/embeddings"), json={}, timeout=TIMEOUT)
    assert response.status_code == 404
    assert_valid("error", response.json())
    assert response.json()["error"]["message"] == "Invalid URL (POST /v1/embeddings)"
    assert upstream.last.path == "/v1/embeddings"


# --------------------------------------------------------------------------------------------- responses


def respond(upstream: FakeUpstream, **body: Any) -> httpx.Response:
    body.setdefault("model", "fake-model")
    return httpx.post(upstream.url("/responses"), json=body, timeout=TIMEOUT)


def test_responses_non_stream_echoes_request_fields(upstream: FakeUpstream) -> None:
    response = respond(upstream, input="hi there", instructions="be kind", temperature=0.5, metadata={"k": "v"}).json()
    assert_valid("responses.response", response)
    assert (response["object"], response["status"], response["id"]) == ("response", "completed", "resp_fake_1")
    assert (response["instructions"], response["temperature"], response["metadata"]) == ("be kind", 0.5, {"k": "v"})
    [message] = response["output"]
    assert message["type"] == "message" and message["id"].startswith("msg_")
    assert message["content"] == [{"type": "output_text", "text": "echo: hi there", "annotations": [], "logprobs": []}]
    assert response["usage"]["input_tokens"] == 4 and response["usage"]["output_tokens"] == 3
    assert response["incomplete_details"] is None


def test_responses_tool_call_then_tool_output(upstream: FakeUpstream) -> None:
    first = respond(upstream, input=[{"role": "user", "content": "call get_weather"}], tools=RESPONSES_TOOLS).json()
    assert_valid("responses.response", first)
    [call] = first["output"]
    assert call["type"] == "function_call" and call["id"].startswith("fc_")
    assert (call["call_id"], call["name"], call["status"]) == ("call_1", "get_weather", "completed")
    assert json.loads(call["arguments"]) == {"q": "call get_weather"}
    history = [
        {"role": "user", "content": [{"type": "input_text", "text": "call get_weather"}]},
        {key: call[key] for key in ("type", "call_id", "name", "arguments")},
        {"type": "function_call_output", "call_id": "call_1", "output": "rain"},
    ]
    second = respond(upstream, input=history, tools=RESPONSES_TOOLS).json()
    assert second["output"][0]["content"][0]["text"] == "tool said: rain"


def test_responses_truncation_is_incomplete(upstream: FakeUpstream) -> None:
    response = respond(upstream, input="a b c d", max_output_tokens=2).json()
    assert_valid("responses.response", response)
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["output"][0]["content"][0]["text"] == "echo: a"


MESSAGE_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def test_responses_stream_event_sequence(upstream: FakeUpstream) -> None:
    full = respond(upstream, input="hello world").json()
    pairs = event_frames(respond(upstream, input="hello world", stream=True).text)
    for name, event in pairs:
        assert name == event["type"]
        assert_valid_event(event)
    assert [name for name, _ in pairs] == MESSAGE_EVENTS
    assert [event["sequence_number"] for _, event in pairs] == list(range(len(MESSAGE_EVENTS)))
    assert "".join(event["delta"] for name, event in pairs if name.endswith("text.delta")) == "echo: hello world"
    created, completed = pairs[0][1]["response"], pairs[-1][1]["response"]
    assert (created["status"], created["output"], created["usage"]) == ("in_progress", [], None)
    assert completed["output"][0]["content"] == full["output"][0]["content"]
    assert completed["usage"] == full["usage"]


def test_responses_stream_parallel_calls_and_incomplete(upstream: FakeUpstream) -> None:
    tools = [*RESPONSES_TOOLS, {"type": "function", "name": "get_time", "parameters": {"type": "object"}}]
    pairs = event_frames(respond(upstream, input="call get_weather, call get_time", tools=tools, stream=True).text)
    for _, event in pairs:
        assert_valid_event(event)
    names = [name for name, _ in pairs]
    assert names.count("response.output_item.added") == 2 and names[-1] == "response.completed"
    dones = [event for name, event in pairs if name == "response.function_call_arguments.done"]
    assert [(d["name"], d["output_index"]) for d in dones] == [("get_weather", 0), ("get_time", 1)]
    for done in dones:
        deltas = [e["delta"] for n, e in pairs if n.endswith("arguments.delta") and e["item_id"] == done["item_id"]]
        assert 2 <= len(deltas) <= 3 and "".join(deltas) == done["arguments"]

    cut = event_frames(respond(upstream, input="a b c", max_output_tokens=1, stream=True).text)
    assert cut[-1][0] == "response.incomplete"
    assert cut[-1][1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


# --------------------------------------------------------------------------------------------- scripted replies


def test_an_agent_plan_answers_both_apis() -> None:
    plan = AgentPlan((Function("get_weather", {"q": "Paris"}),), final="Said: {output}")
    with FakeUpstream(chat_model=plan.answer, responses_model=plan.answer) as upstream:
        message = chat(upstream, messages=user("weather?"), tools=TOOLS).json()["choices"][0]["message"]
        [call] = message["tool_calls"]
        assert (call["id"], call["function"]["name"]) == ("call_step_1", "get_weather")
        assert json.loads(call["function"]["arguments"]) == {"q": "Paris"}
        history = [*user("weather?"), {"role": "assistant", "content": None, "tool_calls": [call]},
                   {"role": "tool", "tool_call_id": "call_step_1", "content": "rain"}]
        assert chat(upstream, messages=history, tools=TOOLS).json()["choices"][0]["message"]["content"] == "Said: rain"

        [item] = respond(upstream, input="weather?", tools=RESPONSES_TOOLS).json()["output"]
        assert (item["type"], item["call_id"], item["name"]) == ("function_call", "call_step_1", "get_weather")
        items = [{"role": "user", "content": "weather?"}, {key: item[key] for key in ("type", "call_id", "name",
                                                                                      "arguments")},
                 {"type": "function_call_output", "call_id": "call_step_1", "output": "rain"}]
        answer = respond(upstream, input=items, tools=RESPONSES_TOOLS).json()["output"][0]
        assert answer["content"][0]["text"] == "Said: rain"
        refused = respond(upstream, input="weather?").json()["output"][0]["content"][0]["text"]
        assert "needs a tool that is not among the offered tools []" in refused


def test_scripted_replies_are_consumed_in_order_then_default(upstream: FakeUpstream) -> None:
    upstream.expect("/v1/chat/completions", json_reply({"n": 1}), json_reply({"n": 2}, status=201))
    upstream.expect("chat/completions", raw_reply(b"<html>bad gateway</html>", 502, {"content-type": "text/html"}))
    first, second, third = (chat(upstream, messages=user("x")) for _ in range(3))
    assert (first.json(), second.status_code, second.json()) == ({"n": 1}, 201, {"n": 2})
    assert (third.status_code, third.headers["content-type"]) == (502, "text/html")
    assert third.text == "<html>bad gateway</html>"
    assert chat(upstream, messages=user("x")).json()["choices"][0]["message"]["content"] == "echo: x"
    assert len(upstream.requests) == 4


def test_error_reply_shape_and_headers(upstream: FakeUpstream) -> None:
    retry = {"retry-after": "7"}
    limited = error_reply(429, "Rate limit reached", "rate_limit_error", "rate_limit_exceeded", headers=retry)
    upstream.expect("/v1/responses", limited)
    response = respond(upstream, input="x")
    assert (response.status_code, response.headers["retry-after"]) == (429, "7")
    assert_valid("error", response.json())
    assert response.json() == {
        "error": {
            "message": "Rate limit reached",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


def test_sse_reply_frames_kinds() -> None:
    with FakeUpstream() as upstream:
        frames = [{"a": 1}, "event: x\ndata: 2\n\n", b": ping\n\n", "[DONE]"]
        upstream.expect("/v1/chat/completions", sse_reply(frames, headers={"x-extra": "1"}))
        response = chat(upstream, messages=user("x"))
    assert response.headers["x-extra"] == "1"
    assert response.text == 'data: {"a":1}\n\nevent: x\ndata: 2\n\n: ping\n\ndata: [DONE]\n\n'


def test_sse_reply_drop_after_breaks_the_stream(upstream: FakeUpstream) -> None:
    upstream.expect("/v1/chat/completions", sse_reply([{"n": 1}, {"n": 2}, {"n": 3}, "[DONE]"], drop_after=2))
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("POST", upstream.url("/chat/completions"), json={}, timeout=TIMEOUT) as response:
            for piece in response.iter_bytes():
                received += piece
    assert received == b'data: {"n":1}\n\ndata: {"n":2}\n\n'
    assert upstream.disconnects == 0  # a drop we made ourselves is not a client hang-up


# --------------------------------------------------------------------------------------------- disconnects


def test_client_hang_up_mid_stream_is_observed(upstream: FakeUpstream) -> None:
    upstream.expect("/v1/chat/completions", sse_reply([{"n": n} for n in range(100)], delay=0.05))
    with httpx.stream("POST", upstream.url("/chat/completions"), json={}, timeout=TIMEOUT) as response:
        lines = response.iter_lines()  # keep a reference: a collected iterator closes the response
        next(lines)
        assert not upstream.disconnected.is_set()
        hung_up = time.monotonic()
    assert upstream.disconnected.wait(2)
    assert upstream.disconnects == 1
    assert upstream.disconnected_at - hung_up < 0.5


def test_client_timeout_during_hang_is_observed(upstream: FakeUpstream) -> None:
    upstream.expect("/v1/chat/completions", hang_reply(30))
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(upstream.url("/chat/completions"), json={}, timeout=httpx.Timeout(5.0, read=0.2))
    assert upstream.disconnected.wait(2)
    assert upstream.disconnected_at - started < 1.0


def test_default_stream_with_delay_observes_hang_up() -> None:
    with FakeUpstream(stream_delay=0.05) as upstream:
        body = {"model": "m", "stream": True, "messages": user(" ".join(["w"] * 60))}
        with httpx.stream("POST", upstream.url("/chat/completions"), json=body, timeout=TIMEOUT) as response:
            lines = response.iter_lines()
            next(lines)
            assert not upstream.disconnected.is_set()
        assert upstream.disconnected.wait(2)


def test_stop_does_not_hang_with_a_client_connected() -> None:
    upstream = FakeUpstream().start()
    upstream.expect("/v1/chat/completions", hang_reply(30))
    errors: list[BaseException] = []

    def client() -> None:
        try:
            httpx.post(upstream.url("/chat/completions"), json={}, timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    deadline = time.monotonic() + 2
    while not upstream.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    upstream.stop(timeout=3)
    assert time.monotonic() - started < 2
    thread.join(3)
    assert not thread.is_alive() and errors  # the client saw the connection go
    assert upstream.disconnects == 0  # stopping is not a client hang-up


# --------------------------------------------------------------------------------------------- quirks

CLEAN_CHAT = {"model": "fake-model", "messages": user("hi")}

BODY_QUIRK_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "no_system_role": ({"messages": [{"role": "system", "content": "s"}, *user("hi")]}, "'system'"),
    "no_developer_role": ({"messages": [{"role": "developer", "content": "s"}, *user("hi")]}, "'developer'"),
    "max_completion_tokens_only": ({"max_tokens": 5}, "max_tokens"),
    "max_tokens_only": ({"max_completion_tokens": 5}, "max_completion_tokens"),
    "no_stream_options": ({"stream": True, "stream_options": {"include_usage": True}}, "stream_options"),
    "no_tool_choice_required": ({"tools": TOOLS, "tool_choice": "required"}, "required"),
    "no_tools": ({"tools": TOOLS}, "tools"),
    "no_images": (
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]},
        "image_url",
    ),
    "no_parallel_tool_calls_param": ({"tools": TOOLS, "parallel_tool_calls": False}, "parallel_tool_calls"),
    "no_response_format_json_schema": (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}},
        "json_schema",
    ),
    "reasoning_content": (
        {
            "messages": [
                *user("call get_weather"),
                {"role": "assistant", "content": None, "tool_calls": [weather_call("c")]},
                {"role": "tool", "tool_call_id": "c", "content": "sun"},
            ]
        },
        "reasoning_content",
    ),
    "system_message_first": (
        {"messages": [{"role": "system", "content": "a"}, {"role": "system", "content": "b"}, *user("hi")]},
        "System message must be at the beginning",
    ),
    "ollama_reasoning_effort": ({"reasoning_effort": "minimal"}, "invalid reasoning value: 'minimal'"),
    "vllm_reasoning_effort": ({"reasoning_effort": "none"}, "reasoning_effort"),
}


def test_every_body_quirk_has_a_case() -> None:
    assert set(BODY_QUIRK_CASES) == set(BODY_QUIRKS)


@pytest.mark.parametrize("quirk", sorted(BODY_QUIRK_CASES))
def test_body_quirk_rejects_its_case_and_passes_a_clean_request(quirk: str) -> None:
    bad, named = BODY_QUIRK_CASES[quirk]
    with FakeUpstream(quirks=[quirk]) as upstream:
        upstream.expect("/v1/chat/completions", json_reply({"scripted": True}))
        rejected = httpx.post(upstream.url("/chat/completions"), json={**CLEAN_CHAT, **bad}, timeout=TIMEOUT)
        assert rejected.status_code == 400
        assert_valid("error", rejected.json())
        assert named in rejected.json()["error"]["message"]
        # a rejection comes before scripted replies and does not consume them
        assert chat(upstream, **CLEAN_CHAT).json() == {"scripted": True}
        assert chat(upstream, **CLEAN_CHAT).status_code == 200
        assert len(upstream.requests) == 3


@pytest.mark.parametrize(
    ("quirk", "field"), [("reasoning_content", "reasoning_content"), ("reasoning_field", "reasoning")]
)
def test_reasoning_quirks_send_reasoning_first(quirk: str, field: str) -> None:
    with FakeUpstream(quirks=[quirk]) as upstream:
        message = chat(upstream, messages=user("why sky")).json()["choices"][0]["message"]
        assert (message[field], message["content"]) == ("thinking about: why sky", "echo: why sky")
        chunks = data_frames(chat(upstream, messages=user("why sky"), stream=True).text)
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks[1:-2]]
    reasoning = [delta[field] for delta in deltas if field in delta]
    assert "".join(reasoning) == "thinking about: why sky"
    assert deltas.index({field: reasoning[0]}) < deltas.index({"content": "echo: "})
    assert streamed_chat(chunks)[0] == "echo: why sky"


def test_reasoning_content_accepts_tool_history_that_sends_it_back() -> None:
    bad = BODY_QUIRK_CASES["reasoning_content"][0]["messages"]
    fixed = [bad[0], {**bad[1], "reasoning_content": "thinking"}, bad[2]]
    with FakeUpstream(quirks=["reasoning_content"]) as upstream:
        assert chat(upstream, messages=fixed).json()["choices"][0]["message"]["content"] == "tool said: sun"


@pytest.mark.parametrize(("quirk", "field"), [("responses_reasoning_text", "content"),
                                               ("responses_reasoning_summary", "summary")])
def test_responses_reasoning_quirks_think_when_asked(quirk: str, field: str) -> None:
    text_type = {"content": "reasoning_text", "summary": "summary_text"}[field]
    with FakeUpstream(quirks=[quirk]) as upstream:
        plain = respond(upstream, input="why sky").json()
        assert [item["type"] for item in plain["output"]] == ["message"]
        for effort in ("none", None):
            asked = {"reasoning": {"effort": effort}} if effort else {}
            assert respond(upstream, input="why sky", **asked).json()["output"][0]["type"] == "message"
        full = respond(upstream, input="why sky", reasoning={"effort": "low"}).json()
        assert_valid("responses.response", full)
        reasoning, message = full["output"]
        assert reasoning[field] == [{"type": text_type, "text": "thinking about: why sky"}]
        assert message["content"][0]["text"] == "echo: why sky"
        assert full["usage"]["output_tokens_details"]["reasoning_tokens"] == 4  # a word is a token
        assert full["usage"]["output_tokens"] == 4 + 3
        pairs = event_frames(respond(upstream, input="why sky", reasoning={"effort": "low"}, stream=True).text)
    for _, event in pairs:
        assert_valid_event(event)
    deltas = [event for name, event in pairs if name.startswith("response.reasoning") and name.endswith(".delta")]
    assert "".join(event["delta"] for event in deltas) == "thinking about: why sky"
    assert {event["output_index"] for event in deltas} == {0}
    streamed = pairs[-1][1]["response"]["output"]
    assert [{**item, "id": None} for item in streamed] == [{**item, "id": None} for item in full["output"]]


@pytest.mark.parametrize(
    ("quirks", "thinking", "not_thinking"),
    [
        (["enable_thinking"], {"enable_thinking": True}, {}),
        (["reasoning_field", "chat_template_kwargs"], {}, {"chat_template_kwargs": {"enable_thinking": False}}),
    ],
)
def test_thinking_switches(quirks: list[str], thinking: dict[str, Any], not_thinking: dict[str, Any]) -> None:
    with FakeUpstream(quirks=quirks) as upstream:
        field = upstream.reasoning_key
        message = chat(upstream, messages=user("why sky"), **thinking).json()["choices"][0]["message"]
        assert message[field] == "thinking about: why sky"
        message = chat(upstream, messages=user("why sky"), **not_thinking).json()["choices"][0]["message"]
        assert field not in message and message["content"] == "echo: why sky"
        chunks = data_frames(chat(upstream, messages=user("why sky"), stream=True, **not_thinking).text)
        assert not any(field in chunk["choices"][0]["delta"] for chunk in chunks[:-1] if chunk["choices"])


def test_azure_addressing() -> None:
    with FakeUpstream(quirks=["azure"], api_key="azure-key") as upstream:
        key = {"api-key": "azure-key"}

        def post(path: str, headers: dict[str, str]) -> httpx.Response:
            return httpx.post(upstream.origin + path, json=CLEAN_CHAT, headers=headers, timeout=TIMEOUT)

        assert post("/openai/v1/chat/completions", key).status_code == 200
        assert post("/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21", key).status_code == 200
        assert post("/openai/deployments/gpt-4o/chat/completions", key).status_code == 404  # no api-version
        assert post("/v1/chat/completions", key).status_code == 404
        refused = post("/openai/v1/chat/completions", {"authorization": "Bearer azure-key"})
        assert refused.status_code == 401 and "subscription key" in refused.json()["error"]["message"]
        assert httpx.get(upstream.origin + "/openai/v1/models", headers=key, timeout=TIMEOUT).status_code == 200
    with pytest.raises(ValueError, match="needs api_key"):
        FakeUpstream(quirks=["azure"])


def test_route_quirks() -> None:
    with FakeUpstream(quirks=["no_responses_endpoint"]) as upstream:
        assert respond(upstream, input="x").status_code == 404
        assert chat(upstream, **CLEAN_CHAT).status_code == 200
    with FakeUpstream(quirks=["no_chat_endpoint"]) as upstream:
        assert respond(upstream, input="x").status_code == 200
        assert chat(upstream, **CLEAN_CHAT).status_code == 404
    with FakeUpstream(quirks=["models_only"]) as upstream:
        assert httpx.get(upstream.url("/models"), timeout=TIMEOUT).status_code == 200
        broken = chat(upstream, **CLEAN_CHAT)
        assert broken.status_code == 404 and "error" in broken.json()


@pytest.mark.parametrize(
    ("quirk", "body"),
    [
        ("error_format_detail", {"detail": "Invalid URL (GET /v1/nope)"}),
        ("error_format_string", {"error": "Invalid URL (GET /v1/nope)"}),
    ],
)
def test_error_format_quirks(quirk: str, body: dict[str, Any]) -> None:
    with FakeUpstream(quirks=[quirk]) as upstream:
        assert httpx.get(upstream.url("/nope"), timeout=TIMEOUT).json() == body
        upstream.expect("/v1/models", error_reply(503, "overloaded", "server_error"))
        assert httpx.get(upstream.url("/models"), timeout=TIMEOUT).json() == {**{k: "overloaded" for k in body}}


def test_require_auth() -> None:
    with FakeUpstream(quirks=["require_auth"], api_key="sk-test") as upstream:
        missing = httpx.get(upstream.url("/models"), timeout=TIMEOUT)
        wrong = httpx.get(upstream.url("/models"), headers={"authorization": "Bearer nope"}, timeout=TIMEOUT)
        right = httpx.get(upstream.url("/models"), headers={"authorization": "Bearer sk-test"}, timeout=TIMEOUT)
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert_valid("error", missing.json())
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert upstream.requests[2].headers["authorization"] == "Bearer sk-test"


def test_bad_quirk_configuration_raises() -> None:
    with pytest.raises(ValueError, match="no_such_quirk"):
        FakeUpstream(quirks=["no_such_quirk"])
    with pytest.raises(ValueError, match="api_key"):
        FakeUpstream(quirks=["require_auth"])
    assert "models_only" in KNOWN_QUIRKS


# --------------------------------------------------------------------------------------------- lifecycle


def test_start_stop_twice_and_two_servers_at_once() -> None:
    upstream = FakeUpstream()
    for _ in range(2):
        upstream.start()
        assert httpx.get(upstream.url("/models"), timeout=TIMEOUT).status_code == 200
        upstream.stop()
        upstream.stop()  # idempotent
    with FakeUpstream(models=["a"]) as first, FakeUpstream(models=["b"]) as second:
        assert first.port != second.port
        assert first.base_url == f"http://127.0.0.1:{first.port}/v1"
        assert httpx.get(first.url("models"), timeout=TIMEOUT).json()["data"][0]["id"] == "a"
        assert httpx.get(second.url("/v1/models"), timeout=TIMEOUT).json()["data"][0]["id"] == "b"
    assert len(upstream.requests) == 2


def test_records_method_path_query_and_raw_body(upstream: FakeUpstream) -> None:
    url = upstream.url("/chat/completions?api-version=2024-10-21")
    httpx.post(url, content=b"not json", headers={"X-Trace": "t1"}, timeout=TIMEOUT)
    recorded = upstream.last
    assert (recorded.method, recorded.path) == ("POST", "/v1/chat/completions")
    assert recorded.query == {"api-version": "2024-10-21"}
    assert (recorded.body, recorded.json, recorded.headers["x-trace"]) == (b"not json", None, "t1")
    upstream.reset()
    assert upstream.requests == []


def test_official_sdk_reads_the_fake() -> None:
    openai = pytest.importorskip("openai")
    with FakeUpstream(quirks=["require_auth"], api_key="sk-test") as upstream:
        client = openai.OpenAI(base_url=upstream.base_url, api_key="sk-test", max_retries=0, timeout=5)
        with client.chat.completions.stream(model="fake-model", messages=user("hi there")) as stream:
            assert stream.get_final_completion().choices[0].message.content == "echo: hi there"
        with client.responses.stream(model="fake-model", input="call get_weather", tools=RESPONSES_TOOLS) as stream:
            [call] = stream.get_final_response().output
        assert (call.type, call.name) == ("function_call", "get_weather")
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=upstream.base_url, api_key="wrong", max_retries=0, timeout=5).models.list()
