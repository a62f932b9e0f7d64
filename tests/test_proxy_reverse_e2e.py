"""End to end, reverse direction: the official SDK's chat client → the proxy → a Responses-only upstream.

This is the CoPaw / AgentScope situation (seeds/000): a framework that only calls
``chat.completions.create`` in front of a gateway that only serves ``/v1/responses``. The proxy
runs under its server with ``--mapping openai-responses``; the fake upstream answers only the
Responses API (its chat endpoint is switched off), so every request must have been converted.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from mapper.engine.context import Context
from mapper.engine.proxy import ServeOptions, build_config
from support.fake_upstream import FakeUpstream
from support.proxy_server import ProxyServer
from support.upstream_replies import error_reply, json_reply, sse_reply

TOOLS = [{"type": "function", "function": {
    "name": name, "description": f"{name} for a city",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}
    for name in ("get_weather", "get_time")]
SYSTEM = "You are a ReAct agent. Think, then call tools, then answer."


@pytest.fixture(scope="module")
def upstream():
    with FakeUpstream(quirks=["no_chat_endpoint"]) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(upstream: FakeUpstream):
    config = build_config(ServeOptions(mapping="openai-responses", upstream=upstream.base_url), env={})
    with ProxyServer(config, new_context=Context) as server:
        yield server


@pytest.fixture
def client(proxy: ProxyServer, upstream: FakeUpstream):
    upstream.reset()
    with openai.OpenAI(base_url=proxy.base_url, api_key="sk-client", max_retries=0, timeout=10) as sdk:
        yield sdk


def test_create_text(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    completion = client.chat.completions.create(
        model="fake-model", messages=[{"role": "system", "content": SYSTEM},
                                      {"role": "user", "content": "hello there"}])
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    sent = upstream.last_json
    assert upstream.last.path == "/v1/responses"
    assert sent["input"][0] == {"type": "message", "role": "system", "content": SYSTEM}
    assert sent["store"] is False


def test_the_stream_helper_with_usage(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(model="fake-model",
                                        messages=[{"role": "user", "content": "stream this please"}],
                                        stream_options={"include_usage": True}) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        completion = stream.get_final_completion()
    assert "".join(deltas) == "echo: stream this please" == completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0


@pytest.mark.parametrize("streamed", [False, True])
def test_an_agentscope_style_tool_loop(client: openai.OpenAI, upstream: FakeUpstream,
                                       streamed: bool) -> None:
    """Two parallel calls, their results, then the answer: the loop a ReAct agent runs."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM, "name": "system"},
        {"role": "user", "content": "call get_weather and call get_time for Paris", "name": "user"},
    ]
    first = _ask(client, messages, streamed)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    calls = message.tool_calls
    assert [call.function.name for call in calls] == ["get_weather", "get_time"]
    assert len({call.id for call in calls}) == 2
    assert json.loads(calls[0].function.arguments)["q"].startswith("call get_weather")

    messages.append({"role": "assistant", "content": message.content, "name": "agent",
                     "tool_calls": [call.model_dump(exclude_none=True) for call in calls]})
    for call, result in zip(calls, ("18 C, sunny", "14:05")):
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    second = _ask(client, messages, streamed)
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "tool said: 14:05"

    items = upstream.last_json["input"]
    kinds = [item.get("type") for item in items]
    assert kinds == ["message", "message", "function_call", "function_call",
                     "function_call_output", "function_call_output"]
    assert [item["call_id"] for item in items[2:4]] == [call.id for call in calls]
    assert [item["call_id"] for item in items[4:]] == [call.id for call in calls]


def _ask(client: openai.OpenAI, messages: list[dict[str, Any]], streamed: bool) -> Any:
    if not streamed:
        return client.chat.completions.create(model="fake-model", messages=messages, tools=TOOLS)
    with client.chat.completions.stream(model="fake-model", messages=messages, tools=TOOLS) as stream:
        for _ in stream:
            pass
        return stream.get_final_completion()


def test_max_tokens_gives_length(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    words = " ".join(f"w{i}" for i in range(40))
    completion = client.chat.completions.create(model="fake-model", max_tokens=20,
                                                messages=[{"role": "user", "content": words}])
    assert completion.choices[0].finish_reason == "length"
    assert upstream.last_json["max_output_tokens"] == 20
    with pytest.raises(openai.LengthFinishReasonError):
        with client.chat.completions.stream(model="fake-model", max_tokens=20,
                                            messages=[{"role": "user", "content": words}]) as stream:
            stream.get_final_completion()


def test_an_upstream_429_keeps_retry_after(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    upstream.expect("/v1/responses", error_reply(429, "Rate limit reached", type="rate_limit_error",
                                                 code="rate_limit_exceeded",
                                                 headers={"retry-after": "3"}))
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "x"}])
    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.code == "rate_limit_exceeded"


def test_a_failure_mid_stream_reaches_the_client_as_an_error(client: openai.OpenAI,
                                                             upstream: FakeUpstream) -> None:
    upstream.expect("/v1/responses", sse_reply([
        {"type": "response.created", "sequence_number": 0,
         "response": {"id": "resp_1", "created_at": 1, "model": "fake-model", "status": "in_progress",
                      "output": []}},
        {"type": "response.output_text.delta", "sequence_number": 1, "output_index": 0,
         "content_index": 0, "item_id": "msg_1", "delta": "partial"},
        {"type": "response.failed", "sequence_number": 2,
         "response": {"id": "resp_1", "status": "failed", "output": [],
                      "error": {"code": "server_error", "message": "the model crashed"}}},
    ]))
    seen = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model="fake-model", stream=True,
                                                    messages=[{"role": "user", "content": "x"}]):
            seen.extend(choice.delta.content for choice in chunk.choices if choice.delta.content)
    assert seen == ["partial"]
    assert "the model crashed" in str(caught.value)


def test_a_refused_field_names_the_param(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake-model", stop=["Observation:"],
                                       messages=[{"role": "user", "content": "x"}])
    assert caught.value.param == "stop"
    assert upstream.requests == []  # refused before anything reached the upstream


def test_a_web_search_returns_its_citations(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    """web_search_options becomes the web_search tool; the citation comes back as an annotation."""
    text = "Rain in Lyon today."
    citation = {"type": "url_citation", "url": "https://example.com/lyon", "title": "Lyon weather",
                "start_index": 0, "end_index": 13}
    upstream.expect("/v1/responses", json_reply({
        "id": "resp_1", "object": "response", "created_at": 1, "status": "completed",
        "model": "fake-model", "output": [
            {"id": "ws_1", "type": "web_search_call", "status": "completed",
             "action": {"type": "search", "query": "Lyon weather"}},
            {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": text, "annotations": [citation],
                          "logprobs": []}]}]}))
    raw = client.chat.completions.with_raw_response.create(
        model="fake-model", messages=[{"role": "user", "content": "weather in Lyon?"}],
        web_search_options={"search_context_size": "low",
                            "user_location": {"type": "approximate", "approximate": {"city": "Lyon"}}})
    completion = raw.parse()
    assert upstream.last_json["tools"] == [{"type": "web_search", "search_context_size": "low",
                                           "user_location": {"type": "approximate", "city": "Lyon"}}]
    annotation = completion.choices[0].message.annotations[0]
    assert (annotation.url_citation.url, annotation.url_citation.start_index,
            annotation.url_citation.end_index) == ("https://example.com/lyon", 0, 13)
    assert raw.headers["x-mapper-dropped"] == "output[web_search_call]"
