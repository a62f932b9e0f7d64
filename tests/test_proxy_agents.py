"""The OpenAI Agents SDK runs an agent with a function tool through the proxy, plain and streamed.

Both of the SDK's OpenAI models, each in front of the upstream it does not speak:

- ``OpenAIResponsesModel`` through ``--mapping openai-chat`` to the fake chat upstream;
- ``OpenAIChatCompletionsModel`` through ``--mapping openai-responses`` to a Responses-only upstream
  (``no_chat_endpoint``), the reverse direction.

In both, the toy model calls ``get_weather`` when asked to, the Agents SDK runs the tool and sends
its output back, and the toy model answers with it. So the tests cover the SDK's real request shapes
(tools with ``strict``, its input items or messages) over two turns. Tracing is off and nothing may
leave 127.0.0.1 (``only_loopback``).
"""

from __future__ import annotations

import asyncio
import json
from contextlib import contextmanager
from typing import Any, Iterator

import agents
import openai
import pytest
from agents import (Agent, ModelSettings, OpenAIChatCompletionsModel, OpenAIResponsesModel, RunResult,
                    RunResultStreaming, Runner, function_tool)
from openai.types.shared import Reasoning

from mapper.engine.context import Context
from mapper.engine.proxy import ServeOptions, build_config
from support.fake_upstream import FakeUpstream
from support.proxy_server import ProxyServer

PROMPT = "please call get_weather for Paris"
INSTRUCTIONS = "Answer with the tool."
TIMEOUT = 10.0  # seconds for one request, and for one run of the agent
pytestmark = pytest.mark.usefixtures("only_loopback")


@contextmanager
def proxied(mapping: str, **upstream: Any) -> Iterator[tuple[ProxyServer, FakeUpstream]]:
    """The proxy on ``mapping``'s defaults in front of a fake upstream made with ``upstream``."""
    agents.set_tracing_disabled(True)  # the SDK would otherwise send its traces to OpenAI
    with FakeUpstream(**upstream) as server:
        config = build_config(ServeOptions(mapping=mapping, upstream=server.base_url), env={})
        with ProxyServer(config, new_context=Context) as proxy:
            yield proxy, server


@pytest.fixture(scope="module")
def proxy_and_upstream():
    with proxied("openai-chat") as pair:
        yield pair


@pytest.fixture(scope="module")
def reverse_proxy_and_upstream():
    # reasoning (a summary, as OpenAI's reasoning models give it) only when the request asks for it
    with proxied("openai-responses", quirks=["no_chat_endpoint", "responses_reasoning_summary"]) as pair:
        yield pair


@function_tool
def get_weather(q: str) -> str:
    """The weather for a question that names a city."""
    return "sunny in Paris" if "Paris" in q else "unknown"


def run_agent(proxy: ProxyServer, model_class: type, streamed: bool,
              settings: ModelSettings | None = None) -> tuple[RunResult | RunResultStreaming, list]:
    """Run the weather agent on ``model_class`` over ``proxy``: its result, and its stream events if streamed."""

    async def run() -> tuple[RunResult | RunResultStreaming, list]:
        async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key="k", max_retries=0, timeout=TIMEOUT) as client:
            agent = Agent(name="weather", instructions=INSTRUCTIONS, tools=[get_weather],
                          model=model_class(model="fake-model", openai_client=client),
                          model_settings=settings or ModelSettings())
            if not streamed:
                return await Runner.run(agent, PROMPT, max_turns=3), []
            result = Runner.run_streamed(agent, PROMPT, max_turns=3)
            return result, [event async for event in result.stream_events()]

    return asyncio.run(asyncio.wait_for(run(), TIMEOUT))


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
def test_an_agent_with_a_function_tool(proxy_and_upstream, streamed: bool) -> None:
    proxy, upstream = proxy_and_upstream
    upstream.reset()
    result, _ = run_agent(proxy, OpenAIResponsesModel, streamed)
    assert result.final_output == "tool said: sunny in Paris"
    first, second = (request.json for request in upstream.requests)
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert first["messages"][0] == {"role": "system", "content": INSTRUCTIONS}
    assert second["messages"][-1]["role"] == "tool"
    assert second["messages"][-1]["content"] == "sunny in Paris"
    assert all(request.json.get("stream", False) is streamed for request in upstream.requests)


@pytest.mark.parametrize("streamed, settings", [
    (False, ModelSettings()), (True, ModelSettings()), (True, ModelSettings(include_usage=True))],
    ids=["run", "run_streamed", "run_streamed_with_usage"])
def test_the_chat_completions_model_in_front_of_a_responses_upstream(
        reverse_proxy_and_upstream, streamed: bool, settings: ModelSettings) -> None:
    """``OpenAIChatCompletionsModel`` on its defaults: one tool call, its output, then the answer."""
    proxy, upstream = reverse_proxy_and_upstream
    upstream.reset()
    result, events = run_agent(proxy, OpenAIChatCompletionsModel, streamed, settings)
    assert result.final_output == "tool said: sunny in Paris"
    assert [item.type for item in result.new_items] == [
        "tool_call_item", "tool_call_output_item", "message_output_item"]
    (call,) = [item.raw_item for item in result.new_items if item.type == "tool_call_item"]
    assert (call.name, json.loads(call.arguments), call.call_id) == ("get_weather", {"q": PROMPT}, "call_1")

    # usage: (prompt, arguments) then (prompt and the tool's output, the answer), a word a token
    usage = result.context_wrapper.usage
    if not streamed or settings.include_usage:
        assert (usage.requests, usage.input_tokens, usage.output_tokens) == (2, 9 + 12, 6 + 5)
    else:  # the SDK asks for stream usage only from OpenAI itself, and mapper adds none unasked
        assert (usage.input_tokens, usage.output_tokens) == (0, 0)
    if streamed:
        deltas = [event.data.delta for event in events
                  if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"]
        assert "".join(deltas) == result.final_output and len(deltas) == 5  # a delta per word
        assert [event.name for event in events if event.type == "run_item_stream_event"] == [
            "tool_called", "tool_output", "message_output_created"]

    assert [request.path for request in upstream.requests] == ["/v1/responses"] * 2
    first, second = (request.json for request in upstream.requests)
    assert first["input"] == [{"type": "message", "role": "system", "content": INSTRUCTIONS},
                              {"type": "message", "role": "user", "content": PROMPT}]
    (tool,) = first["tools"]
    assert (tool["type"], tool["name"], tool["strict"]) == ("function", "get_weather", True)
    assert tool["parameters"]["additionalProperties"] is False  # the SDK's strict schema, as it is
    assert second["input"][:2] == first["input"] and second["tools"] == first["tools"]
    assert second["input"][2:] == [
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": call.arguments},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny in Paris"}]
    assert all(request.json.get("stream", False) is streamed and request.json["store"] is False
               for request in upstream.requests)


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
def test_reasoning_comes_back_as_reasoning_items(reverse_proxy_and_upstream, streamed: bool) -> None:
    """``ModelSettings.reasoning``: its effort reaches the upstream; the summary, as the chat answer's
    ``reasoning_content``, becomes the SDK's reasoning item ahead of each turn's call or answer."""
    proxy, upstream = reverse_proxy_and_upstream
    upstream.reset()
    settings = ModelSettings(reasoning=Reasoning(effort="low"), include_usage=True)
    result, _ = run_agent(proxy, OpenAIChatCompletionsModel, streamed, settings)
    assert result.final_output == "tool said: sunny in Paris"
    assert [item.type for item in result.new_items] == [
        "reasoning_item", "tool_call_item", "tool_call_output_item", "reasoning_item", "message_output_item"]
    summaries = [[part.text for part in item.raw_item.summary] for item in result.new_items
                 if item.type == "reasoning_item"]
    assert summaries == [[f"thinking about: {PROMPT}"]] * 2
    assert [request.json["reasoning"] for request in upstream.requests] == [{"effort": "low"}] * 2
    assert [item["type"] for item in upstream.last_json["input"]] == [
        "message", "message", "function_call", "function_call_output"]
    usage = result.context_wrapper.usage  # seven words of reasoning a turn
    assert (usage.output_tokens, usage.output_tokens_details.reasoning_tokens) == (6 + 5 + 2 * 7, 2 * 7)
