"""The openai npm SDK through ``mapper serve`` on its defaults (driver: tests/clients/openai_node.mjs).

``responses.create`` runs a function-tool round trip, ``responses.stream`` is read event by event
and then through ``finalResponse()``, and with ``--store`` a streamed second turn rides on
``previous_response_id`` and is read back with ``responses.retrieve``. What the SDK parsed is
checked against the Responses schemas and the stream invariants, not only for its text.
"""

from __future__ import annotations

import json

import pytest

from support.fake_upstream import FakeUpstream
from support.mapper_serve import MapperServe
from support.real_clients import driver_result, require_npm_package, run_driver
from support.responses_invariants import check_responses_stream
from support.schemas import assert_valid


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    require_npm_package("openai")


def test_create_runs_a_function_tool_round_trip(mapper_with_store: MapperServe, fake: FakeUpstream) -> None:
    result = driver_result(run_driver("openai_node.mjs", "create", mapper_with_store.base_url))
    first, second = result["first"], result["second"]
    for response in (first, second):
        assert_valid("responses.response", response)
    (call,) = first["output"]
    assert (call["type"], call["name"]) == ("function_call", "get_weather")
    assert json.loads(call["arguments"]) == {"q": "please call get_weather for Paris"}
    assert result["output_text"] == "tool said: sunny"
    assert fake.last_json["messages"][-1] == {"role": "tool", "tool_call_id": call["call_id"], "content": "sunny"}


def test_stream_and_its_final_response(mapper_with_store: MapperServe, fake: FakeUpstream) -> None:
    result = driver_result(run_driver("openai_node.mjs", "stream", mapper_with_store.base_url))
    summary = check_responses_stream(result["events"])
    assert summary["terminal"] == "response.completed"
    final = result["final"]
    assert_valid("responses.response", final)
    assert result["output_text"] == final["output_text"] == summary["text"] == "echo: streams work fine"
    assert fake.last_json["messages"][0] == {"role": "system", "content": "Be brief."}
    assert fake.last_json["stream"] is True


def test_a_streamed_turn_on_previous_response_id(mapper_with_store: MapperServe, fake: FakeUpstream) -> None:
    result = driver_result(run_driver("openai_node.mjs", "previous_response", mapper_with_store.base_url))
    first, second, fetched = result["first"], result["second"], result["fetched"]
    assert second["previous_response_id"] == first["id"]
    assert second["output_text"] == "echo: what did I say"
    assert fetched["id"] == second["id"]
    assert [item["id"] for item in fetched["output"]] == [item["id"] for item in second["output"]]
    assert fetched["output_text"] == second["output_text"]
    assert_valid("responses.response", fetched)
    history = [(m["role"], m["content"]) for m in fake.last_json["messages"]]
    assert history[-3:] == [("user", "remember me"), ("assistant", "echo: remember me"),
                            ("user", "what did I say")]
