"""openai-responses: what the fixtures cannot say.

The fixtures under tests/mappings/openai-responses/ load the mapping with its default options and
check one conversion each. These tests cover the rest: route options (``reasoning_content``,
``reasoning_summary``), Responses that did not finish (they raise ``UpstreamError``, which carries a
status rather than an input path), the official SDK accepting what the mapping returns, and the two
directions agreeing on a conversation.
"""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from mapper.engine import UpstreamError, load_mapping
from mapper.engine.context import deterministic_context
from support.schemas import assert_valid

REQUEST = {"model": "gpt-5", "messages": [{"role": "user", "content": "2+2?"}]}


def response(*output: dict[str, Any], status: str = "completed", **fields: Any) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "created_at": 1755600000, "status": status,
            "model": "gpt-5", "output": list(output), **fields}


def message(text: str) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}


def reasoning(summary: list[str] = (), content: list[str] = ()) -> dict[str, Any]:
    item: dict[str, Any] = {"id": "rs_1", "type": "reasoning",
                            "summary": [{"type": "summary_text", "text": t} for t in summary]}
    if content:
        item["content"] = [{"type": "reasoning_text", "text": t} for t in content]
    return item


@pytest.fixture(scope="module")
def default() -> Any:
    return load_mapping("openai-responses")


@pytest.fixture(scope="module")
def with_reasoning(default: Any) -> Any:
    return default  # reasoning_content is on by default


@pytest.fixture(scope="module")
def without_reasoning() -> Any:
    return load_mapping("openai-responses", options={"reasoning_content": False})


def convert(mapping: Any, body: dict[str, Any], request: dict[str, Any] = REQUEST) -> dict[str, Any]:
    converted = mapping.convert_response(body, request=request, ctx=deterministic_context())
    assert_valid("chat.response", converted)
    return converted


# -- reasoning_content ------------------------------------------------------------------------


def test_reasoning_content_is_on_by_default(default: Any) -> None:
    converted = convert(default, response(reasoning(["thinking"]), message("4")))
    assert converted["choices"][0]["message"]["reasoning_content"] == "thinking"


def test_reasoning_content_can_be_turned_off(without_reasoning: Any) -> None:
    converted = convert(without_reasoning, response(reasoning(["thinking"]), message("4")))
    assert "reasoning_content" not in converted["choices"][0]["message"]


def test_reasoning_content_prefers_raw_reasoning_text(with_reasoning: Any) -> None:
    body = response(reasoning(["**Adding**"], content=["2 plus 2 ", "is 4."]), message("4"))
    converted = convert(with_reasoning, body)
    assert converted["choices"][0]["message"] == {
        "role": "assistant", "content": "4", "refusal": None, "reasoning_content": "2 plus 2 is 4."}


def test_reasoning_content_falls_back_to_summaries(with_reasoning: Any) -> None:
    body = response(reasoning(["**Adding**", "Two and two make four."]),
                    {**reasoning(["**Checking**"]), "id": "rs_2"}, message("4"))
    converted = convert(with_reasoning, body)
    assert converted["choices"][0]["message"]["reasoning_content"] == (
        "**Adding**\n\nTwo and two make four.\n\n**Checking**")


def test_reasoning_content_is_left_out_when_there_is_none(with_reasoning: Any) -> None:
    converted = convert(with_reasoning, response(reasoning([]), message("4")))
    assert "reasoning_content" not in converted["choices"][0]["message"]


def test_reasoning_content_comes_with_tool_calls(with_reasoning: Any) -> None:
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
            "arguments": "{}", "status": "completed"}
    converted = convert(with_reasoning, response(reasoning(["Need f."]), call))
    choice = converted["choices"][0]
    assert choice["message"]["reasoning_content"] == "Need f."
    assert choice["message"]["tool_calls"][0]["id"] == "call_1"
    assert choice["finish_reason"] == "tool_calls"


def test_the_sdk_keeps_reasoning_content(with_reasoning: Any) -> None:
    converted = convert(with_reasoning, response(reasoning(["thinking"]), message("4")))
    completion = ChatCompletion.model_validate(converted)
    assert completion.choices[0].message.content == "4"
    assert completion.choices[0].message.model_extra == {"reasoning_content": "thinking"}


def test_reasoning_summary_option_asks_for_summaries() -> None:
    mapping = load_mapping("openai-responses", options={"reasoning_summary": "auto"})
    converted = mapping.convert_request({**REQUEST, "reasoning_effort": "high"})
    assert_valid("responses.request", converted)
    assert converted["reasoning"] == {"effort": "high", "summary": "auto"}


def test_no_reasoning_parameter_by_default(default: Any) -> None:
    assert "reasoning" not in default.convert_request(REQUEST)


# -- Responses that did not finish ------------------------------------------------------------


@pytest.mark.parametrize("code, status, error_type", [
    ("server_error", 500, "server_error"),
    ("rate_limit_exceeded", 429, "rate_limit_error"),
    ("insufficient_quota", 429, "insufficient_quota"),
    ("invalid_prompt", 400, "invalid_request_error"),
    ("something_new", 502, "server_error"),
])
def test_a_failed_response_raises_its_error(default: Any, code: str, status: int,
                                            error_type: str) -> None:
    body = response(status="failed", error={"code": code, "message": "It went wrong."})
    with pytest.raises(UpstreamError) as caught:
        default.convert_response(body, request=REQUEST, ctx=deterministic_context())
    assert caught.value.status == status
    assert caught.value.body == {"error": {"message": "It went wrong.", "type": error_type,
                                           "param": None, "code": code}}
    assert_valid("error", caught.value.body)


@pytest.mark.parametrize("state", ["cancelled", "queued", "in_progress"])
def test_an_unfinished_response_raises(default: Any, state: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        default.convert_response(response(status=state, error=None), request=REQUEST)
    assert caught.value.status == 502
    assert state in caught.value.body["error"]["message"]


def test_a_response_without_status_is_read_as_completed(default: Any) -> None:
    body = response(message("Hi"))
    del body["status"]
    assert convert(default, body)["choices"][0]["finish_reason"] == "stop"


# -- clients and the other direction ----------------------------------------------------------


def test_the_sdk_accepts_a_tool_call_answer(default: Any) -> None:
    calls = [{"type": "function_call", "id": f"fc_{i}", "call_id": f"call_{i}", "name": "f",
              "arguments": '{"i": %d}' % i, "status": "completed"} for i in range(2)]
    usage = {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0},
             "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 4}, "total_tokens": 14}
    completion = ChatCompletion.model_validate(convert(default, response(*calls, usage=usage)))
    assert completion.id.startswith("chatcmpl-")
    assert [call.id for call in completion.choices[0].message.tool_calls] == ["call_0", "call_1"]
    assert completion.usage.prompt_tokens_details.cached_tokens == 2
    assert completion.usage.completion_tokens_details.reasoning_tokens == 4


def test_random_ids_look_like_openai_chat_ids(default: Any) -> None:
    converted = default.convert_response(response(message("Hi")), request=REQUEST)
    assert converted["id"].startswith("chatcmpl-") and "_" not in converted["id"]


def test_the_two_directions_agree_on_a_tool_conversation(default: Any) -> None:
    """A chat history sent through openai-responses and back through openai-chat keeps its turns."""
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": '{"c":"Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "w", "arguments": '{"c":"Rome"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21"},
        {"role": "tool", "tool_call_id": "call_2", "content": "25"},
        {"role": "developer", "content": "Answer in Celsius."},
        {"role": "assistant", "content": "21 and 25."},
    ]
    responses_request = default.convert_request({"model": "m", "messages": history})
    back = load_mapping("openai-chat").convert_request(responses_request)
    assert back["messages"] == history
