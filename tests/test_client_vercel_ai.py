"""The Vercel AI SDK (``ai`` with ``@ai-sdk/openai``) through ``mapper serve`` on its defaults.

The provider's default model speaks Responses, and its default is store on: a tool loop or a
second turn sends earlier assistant output back as ``{"type": "item_reference", "id": "msg_…"}``,
which only a proxy with a response store can resolve. The driver is tests/clients/vercel_ai.mjs.
"""

from __future__ import annotations

import pytest

from support.fake_upstream import FakeUpstream
from support.mapper_serve import MapperServe
from support.real_clients import driver_result, require_npm_package, run_driver

PROMPT = "please call get_weather for Paris"


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    require_npm_package("ai")
    require_npm_package("@ai-sdk/openai")


def assert_weather_tool_loop(result: dict, fake: FakeUpstream) -> None:
    """The model called get_weather, the SDK ran it, and the model answered from its output."""
    assert result["executed"] == [PROMPT]
    assert [step["finishReason"] for step in result["steps"]] == ["tool-calls", "stop"]
    assert result["steps"][0]["toolCalls"] == [{"name": "get_weather", "input": {"q": PROMPT}}]
    assert result["text"] == "tool said: sunny"
    first, second = (request.json for request in fake.requests)
    assert [tool["function"]["name"] for tool in first["tools"]] == ["get_weather"]
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize("server", ["mapper_with_store", "mapper_without_store"])
def test_generate_text_runs_a_tool_loop(server: str, fake: FakeUpstream, request) -> None:
    mapper: MapperServe = request.getfixturevalue(server)
    document = run_driver("vercel_ai.mjs", "generate", mapper.base_url)
    result = driver_result(document)
    assert_weather_tool_loop(result, fake)
    assert result["usage"]["inputTokens"] > 0 and result["usage"]["outputTokens"] > 0
    assert all(not request.json.get("stream") for request in fake.requests)


@pytest.mark.parametrize("server", ["mapper_with_store", "mapper_without_store"])
def test_stream_text_runs_a_tool_loop(server: str, fake: FakeUpstream, request) -> None:
    mapper: MapperServe = request.getfixturevalue(server)
    result = driver_result(run_driver("vercel_ai.mjs", "stream", mapper.base_url))
    assert_weather_tool_loop(result, fake)
    parts = result["parts"]
    assert parts[0] == "start" and parts[-1] == "finish"
    assert parts.count("tool-call") == parts.count("tool-result") == 1
    assert "tool-input-delta" in parts and "text-delta" in parts
    assert all(request.json.get("stream") is True for request in fake.requests)


def test_the_default_multi_turn_resolves_item_references_from_the_store(mapper_with_store: MapperServe,
                                                                         fake: FakeUpstream) -> None:
    document = run_driver("vercel_ai.mjs", "multi_turn", mapper_with_store.base_url)
    result = driver_result(document)
    assert (result["first"], result["second"]) == ("echo: hello there", "echo: and once more")
    sent = document["exchanges"][1]["body"]["input"]
    assert sent[0]["type"] == "item_reference" and sent[0]["id"].startswith("msg_")  # what the SDK sends
    messages = fake.last_json["messages"]
    assert [(m["role"], m["content"] if isinstance(m["content"], str) else m["content"][0]["text"])
            for m in messages] == [("assistant", "echo: hello there"), ("user", "and once more")]


def test_without_a_store_an_item_reference_is_refused(mapper_without_store: MapperServe, fake: FakeUpstream) -> None:
    document = run_driver("vercel_ai.mjs", "multi_turn", mapper_without_store.base_url)
    assert "error" in document
    refused = document["exchanges"][-1]
    assert refused["status"] == 400 and refused["body"]["input"][0]["type"] == "item_reference"
    assert "item_reference" in refused["error"]
    assert len(fake.requests) == 1  # the first turn only; the refusal never reached the upstream
