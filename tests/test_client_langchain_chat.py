"""LangChain's ``ChatOpenAI`` on Chat Completions through ``mapper serve --mapping openai-responses``.

The reverse of ``tests/test_client_langchain.py``: ChatOpenAI on its default API (no
``use_responses_api``), in front of an upstream that answers only ``/v1/responses``
(``no_chat_endpoint``), so every answer LangChain gets has been converted both ways. mapper runs
on its defaults. Covered: invoke and stream (LangChain asks for usage in the stream only with
``stream_usage=True`` when its base URL is not OpenAI's), a ``bind_tools`` round trip with the
result sent back as a ToolMessage, ``with_structured_output`` (json_schema ``response_format`` is
ChatOpenAI's default method in langchain-openai 1.x; function calling is the other common one),
and ``reasoning_effort``. Nothing reaches beyond 127.0.0.1 (``only_loopback``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from support.fake_upstream import FakeUpstream
from support.langchain_client import ask, chat_model, weather_tool
from support.mapper_serve import MapperServe
from support.real_clients import require_python_package
from support.request_reading import content_text, request_messages
from support.toy_model import Answer, ToolCall, responses_answer, split_words

PROMPT = "please call get_weather for Paris"
STREAMED = pytest.mark.parametrize("streamed", [False, True], ids=["invoke", "stream"])
pytestmark = pytest.mark.usefixtures("only_loopback")


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    require_python_package("langchain_openai", "langchain-openai")


def filled(schema: Any, text: str) -> dict:
    """An object that fits ``schema`` (flat properties): strings are ``text``, booleans true."""
    samples = {"string": text, "boolean": True, "integer": len(text.split())}
    return {name: samples[spec["type"]] for name, spec in schema["properties"].items()}


def structured_or_toy(body: Any, reasoning: bool) -> Answer:
    """The toy model, except that it answers as asked: JSON for a json_schema ``text.format``, and
    the forced function's call (arguments that fit its parameters) for a ``tool_choice`` by name."""
    text_format = (body.get("text") or {}).get("format") or {}
    forced = body.get("tool_choice") if isinstance(body.get("tool_choice"), dict) else {}
    if text_format.get("type") != "json_schema" and forced.get("type") != "function":
        return responses_answer(body, reasoning)
    user_text = content_text(request_messages(body)[-1]["content"])
    if text_format.get("type") == "json_schema":
        return Answer(split_words(json.dumps(filled(text_format["schema"], user_text))), (), (), False, 1)
    (tool,) = [tool for tool in body["tools"] if tool.get("name") == forced["name"]]
    call = ToolCall("call_forced", tool["name"], json.dumps(filled(tool["parameters"], user_text)))
    return Answer((), (call,), (), False, 1)


@pytest.fixture(scope="module")
def upstream_server():
    """A Responses-only upstream, raw reasoning when asked for it (``mapper_to_responses`` fronts it)."""
    quirks = ["no_chat_endpoint", "responses_reasoning_text"]
    with FakeUpstream(quirks=quirks, responses_model=structured_or_toy) as server:
        yield server


def test_invoke(mapper_to_responses: MapperServe, fake: FakeUpstream) -> None:
    from langchain_core.messages import HumanMessage, SystemMessage

    sent: list = []
    answer = chat_model(mapper_to_responses, sent).invoke([SystemMessage("Be brief."), HumanMessage("hello there")])
    assert answer.text == "echo: hello there"
    assert answer.response_metadata["finish_reason"] == "stop"
    assert answer.response_metadata["id"].startswith("chatcmpl-")
    usage = answer.usage_metadata
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (4, 3, 7)
    # LangChain spoke Chat Completions (the messages as it sent them), mapper the Responses API
    assert sent[-1]["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}]
    assert fake.last.path == "/v1/responses"
    assert fake.last_json["input"] == [{"type": "message", "role": "system", "content": "Be brief."},
                                       {"type": "message", "role": "user", "content": "hello there"}]
    assert (fake.last_json["stream"], fake.last_json["store"]) == (False, False)


@pytest.mark.parametrize("stream_usage", [None, True], ids=["default", "stream_usage"])
def test_stream(mapper_to_responses: MapperServe, fake: FakeUpstream, stream_usage: bool | None) -> None:
    """One chunk per streamed word; usage in the stream only when LangChain asks for it."""
    sent: list = []
    model = chat_model(mapper_to_responses, sent, stream_usage=stream_usage)
    since = len(mapper_to_responses.log_lines())
    chunks = list(model.stream("streams work fine"))
    assert [chunk.text for chunk in chunks if chunk.text] == ["echo: ", "streams ", "work ", "fine"]
    usages = [chunk.usage_metadata for chunk in chunks if chunk.usage_metadata]
    if stream_usage:
        assert sent[-1]["stream_options"] == {"include_usage": True}
        assert [(usage["input_tokens"], usage["output_tokens"]) for usage in usages] == [(3, 4)]
        # a Responses stream always ends with its usage, so the option itself has nowhere to go
        assert mapper_to_responses.left_out(since) == {"stream_options"}
    else:  # ChatOpenAI with a base_url of its own does not ask, and mapper adds no usage chunk
        assert "stream_options" not in sent[-1] and usages == []
    assert [chunk.response_metadata["finish_reason"] for chunk in chunks
            if "finish_reason" in chunk.response_metadata] == ["stop"]
    assert fake.last.path == "/v1/responses" and fake.last_json["stream"] is True


@STREAMED
def test_a_bound_tool_round_trip(mapper_to_responses: MapperServe, fake: FakeUpstream, streamed: bool) -> None:
    from langchain_core.messages import HumanMessage, ToolMessage

    get_weather = weather_tool()
    sent: list = []
    model = chat_model(mapper_to_responses, sent).bind_tools([get_weather])
    call_message = ask(model, [HumanMessage(PROMPT)], streamed)
    (call,) = call_message.tool_calls
    assert (call["name"], call["args"], call["id"]) == ("get_weather", {"q": PROMPT}, "call_1")
    assert call_message.invalid_tool_calls == [] and not call_message.text
    assert call_message.response_metadata["finish_reason"] == "tool_calls"
    tools = fake.last_json["tools"]
    assert [(tool["type"], tool["name"], tool["strict"]) for tool in tools] == [("function", "get_weather", False)]
    assert tools[0]["parameters"]["properties"] == {"q": {"type": "string"}}

    result = ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])
    history = [HumanMessage(PROMPT), call_message, result]
    final = ask(model, history, streamed)
    assert final.text == "tool said: sunny" and final.tool_calls == []
    assert sent[-1]["messages"][-1] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    assert fake.last.path == "/v1/responses" and fake.last_json["stream"] is streamed
    assert fake.last_json["input"][1:] == [
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": json.dumps({"q": PROMPT})},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}]
    if not streamed:  # the prompt and the tool's result in, the answer out, a word a token
        usage = final.usage_metadata
        assert (usage["input_tokens"], usage["output_tokens"]) == (5 + 1, 3)


@STREAMED
@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
# a model_dump of the openai SDK's parsed stream chunk (`parsed` typed None) warns, client-side only
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
def test_structured_output(mapper_to_responses: MapperServe, fake: FakeUpstream, streamed: bool, method: str) -> None:
    """``with_structured_output``: json_schema is ChatOpenAI's default; its schema becomes ``text.format``."""
    from pydantic import BaseModel

    class Weather(BaseModel):
        city: str
        sunny: bool

    sent: list = []
    options = {} if method == "json_schema" else {"method": method}
    structured = chat_model(mapper_to_responses, sent).with_structured_output(Weather, **options)
    if streamed:
        *_, result = structured.stream("Paris")
    else:
        result = structured.invoke("Paris")
    assert result == Weather(city="Paris", sunny=True)
    body = fake.last_json
    assert fake.last.path == "/v1/responses" and body["stream"] is streamed
    if method == "json_schema":
        assert sent[-1]["response_format"]["type"] == "json_schema" and "tools" not in sent[-1]
        text_format = body["text"]["format"]
        assert (text_format["type"], text_format["name"], text_format["strict"]) == ("json_schema", "Weather", True)
        assert text_format["schema"]["required"] == ["city", "sunny"]
        assert text_format["schema"]["additionalProperties"] is False
        assert "tools" not in body
    else:
        assert "response_format" not in sent[-1] and "text" not in body
        assert (body["tool_choice"], body["parallel_tool_calls"]) == ({"type": "function", "name": "Weather"}, False)
        assert [tool["name"] for tool in body["tools"]] == ["Weather"]


@STREAMED
def test_reasoning_effort(mapper_to_responses: MapperServe, fake: FakeUpstream, streamed: bool) -> None:
    """``reasoning_effort`` reaches the upstream; the reasoning is counted but kept out of the text."""
    sent: list = []
    model = chat_model(mapper_to_responses, sent, reasoning_effort="low", stream_usage=True)
    answer = ask(model, "why is the sky blue", streamed)
    assert answer.text == "echo: why is the sky blue"  # no "thinking about: ..." in it
    assert sent[-1]["reasoning_effort"] == "low"
    assert fake.last_json["reasoning"] == {"effort": "low"}
    usage = answer.usage_metadata  # "thinking about: why is the sky blue", then the answer, a word a token
    assert (usage["output_tokens"], usage["output_token_details"]["reasoning"]) == (7 + 6, 7)
