"""The OpenAI Agents SDK runs an agent with a function tool through the proxy, plain and streamed.

The agent's model is ``OpenAIResponsesModel`` on an ``AsyncOpenAI`` client pointed at the proxy,
which forwards to the fake chat upstream: the toy model calls ``get_weather`` when asked to, the
Agents SDK runs the tool and sends its output back, and the toy model answers with it. So the
test covers the SDK's real request shapes (tools with ``strict``, ``include``, its input items)
over two turns.
"""

from __future__ import annotations

import asyncio

import agents
import openai
import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool

from mapper.engine.context import Context
from mapper.engine.proxy import ServeOptions, build_config
from support.fake_upstream import FakeUpstream
from support.proxy_server import ProxyServer


@pytest.fixture(scope="module")
def proxy_and_upstream():
    agents.set_tracing_disabled(True)
    with FakeUpstream() as upstream:
        config = build_config(ServeOptions(mapping="openai-chat", upstream=upstream.base_url), env={})
        with ProxyServer(config, new_context=Context) as proxy:
            yield proxy, upstream


@function_tool
def get_weather(q: str) -> str:
    """The weather for a question that names a city."""
    return "sunny in Paris" if "Paris" in q else "unknown"


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
def test_an_agent_with_a_function_tool(proxy_and_upstream, streamed: bool) -> None:
    proxy, upstream = proxy_and_upstream
    upstream.reset()

    async def run() -> str:
        async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key="k", max_retries=0, timeout=10) as client:
            agent = Agent(name="weather", instructions="Answer with the tool.", tools=[get_weather],
                          model=OpenAIResponsesModel(model="fake-model", openai_client=client))
            prompt = "please call get_weather for Paris"
            if not streamed:
                return (await Runner.run(agent, prompt, max_turns=3)).final_output
            result = Runner.run_streamed(agent, prompt, max_turns=3)
            async for _ in result.stream_events():
                pass
            return result.final_output

    assert asyncio.run(run()) == "tool said: sunny in Paris"
    first, second = (request.json for request in upstream.requests)
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert first["messages"][0] == {"role": "system", "content": "Answer with the tool."}
    assert second["messages"][-1]["role"] == "tool"
    assert second["messages"][-1]["content"] == "sunny in Paris"
    assert all(request.json.get("stream", False) is streamed for request in upstream.requests)
