"""LangChain's ``ChatOpenAI(use_responses_api=True)`` (langchain-openai) through ``mapper serve``.

Invoke and stream, a tool bound with ``bind_tools`` whose result goes back as a ToolMessage, a
second turn that resends the first answer (LangChain sends it with its item id), and a second
turn on ``previous_response_id`` (``use_previous_response_id=True``), which needs ``--store``.
The server runs with its defaults otherwise.
"""

from __future__ import annotations

import json

import pytest

from support.fake_upstream import FakeUpstream
from support.langchain_client import ask, chat_model, weather_tool
from support.mapper_serve import MapperServe
from support.real_clients import require_python_package

PROMPT = "please call get_weather for Paris"


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    require_python_package("langchain_openai", "langchain-openai")


def test_invoke_and_stream(mapper_with_store: MapperServe, fake: FakeUpstream) -> None:
    model = chat_model(mapper_with_store, use_responses_api=True)
    answer = model.invoke("hello there")
    assert answer.text == "echo: hello there"
    assert answer.response_metadata["status"] == "completed"
    assert answer.usage_metadata["input_tokens"] == 2 and answer.usage_metadata["output_tokens"] == 3
    chunks = list(model.stream("streams work fine"))
    assert "".join(chunk.text for chunk in chunks) == "echo: streams work fine"
    assert sum(1 for chunk in chunks if chunk.text) == 4  # one chunk per streamed word
    assert fake.last_json["stream"] is True


@pytest.mark.parametrize("streamed", [False, True])
def test_a_bound_tool_round_trip(mapper_with_store: MapperServe, fake: FakeUpstream, streamed: bool) -> None:
    from langchain_core.messages import HumanMessage, ToolMessage

    get_weather = weather_tool()
    model = chat_model(mapper_with_store, use_responses_api=True).bind_tools([get_weather])
    call_message = ask(model, [HumanMessage(PROMPT)], streamed)
    (call,) = call_message.tool_calls
    assert (call["name"], call["args"]) == ("get_weather", {"q": PROMPT})
    result = ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])
    history = [HumanMessage(PROMPT), call_message, result]
    final = ask(model, history, streamed)
    assert final.text == "tool said: sunny"
    sent = fake.last_json
    assert sent["messages"][-1] == {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}
    assert json.loads(sent["messages"][-2]["tool_calls"][0]["function"]["arguments"]) == {"q": PROMPT}


def test_a_second_turn_resends_the_first_answer(mapper_with_store: MapperServe, fake: FakeUpstream) -> None:
    from langchain_core.messages import HumanMessage

    sent: list = []
    model = chat_model(mapper_with_store, sent, use_responses_api=True)
    first = model.invoke("hello there")
    second = model.invoke([HumanMessage("hello there"), first, HumanMessage("and again")])
    assert second.text == "echo: and again"
    resent = sent[-1]["input"][1]
    assert (resent["role"], resent["id"]) == ("assistant", first.content[0]["id"])  # the output item, id and all
    assert [m["role"] for m in fake.last_json["messages"]] == ["user", "assistant", "user"]


def test_a_second_turn_on_previous_response_id(mapper_with_store: MapperServe, fake: FakeUpstream) -> None:
    from langchain_core.messages import HumanMessage

    sent: list = []
    model = chat_model(mapper_with_store, sent, use_responses_api=True, use_previous_response_id=True)
    first = model.invoke("hello there")
    second = model.invoke([HumanMessage("hello there"), first, HumanMessage("and again")])
    assert second.text == "echo: and again"
    # LangChain sent only the new message; mapper rebuilt the history from its store
    assert sent[-1]["previous_response_id"] == first.response_metadata["id"]
    assert [item["content"] for item in sent[-1]["input"]] == ["and again"]
    history = [(m["role"], m["content"]) for m in fake.last_json["messages"]]
    assert history == [("user", "hello there"), ("assistant", "echo: hello there"), ("user", "and again")]
