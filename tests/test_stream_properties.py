"""Property test: generated chat streams, cut at random places, always give a correct Responses stream.

Hypothesis builds a plan (reasoning text, answer text, parallel tool calls with JSON arguments, some
of them calls of custom tools sent as functions taking `input`, a finish reason, a usage chunk, the
[DONE] marker), renders it as chat chunks the way different
providers do (fragments of random sizes; calls sequential, interleaved, all in one chunk, Ollama's
index 0 for every call, ids and names resent on every chunk), then splits the SSE bytes at random
offsets. For every example the converted stream must pass the invariant checker, carry exactly the
planned reasoning, text and calls, end with the status the finish reason implies, not depend on the
byte splits, be accepted by the official SDK with the same final response, and have the output,
status and usage of the Response the mapping makes of the same answer sent as a chat.completion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapper.engine import load_mapping
from mapper.engine.context import deterministic_context
from mapper.engine.streaming import translate_stream
from support.chat_streams import LAYOUTS, ChatStreamPlan, chat_completion_of, chat_sse, render_chat_stream
from support.generators import ARGUMENTS, NAMES, TEXT, byte_pieces
from support.responses_invariants import check_responses_stream
from support.sdk_replay import replay_responses_stream, without_sdk_fields
from support.sse_reader import parse_sse_events

MAPPING = load_mapping("openai-chat")


@dataclass
class Plan(ChatStreamPlan):
    custom: dict[str, str] = field(default_factory=dict)  # custom tool name -> the input its call carries


@st.composite
def plans(draw: Any) -> Plan:
    calls, custom = [], {}
    for i in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):  # a custom tool's call: its text wrapped as {"input": ...}
            name, text = f"custom{i}-tool", draw(TEXT)  # '-' is not in NAMES: no collision
            custom[name] = text
            calls.append((f"call_{i}", name, orjson.dumps({"input": text}).decode()))
        else:
            calls.append((f"call_{i}", draw(NAMES), draw(ARGUMENTS)))
    reasoning = draw(st.none() | TEXT)
    text = draw(st.none() | TEXT)
    if not (reasoning or text or calls):
        text = "x"
    finishes = ["tool_calls", "length"] if calls else ["stop", "length", "content_filter"]
    return Plan(reasoning=reasoning,
                reasoning_field=draw(st.sampled_from(["reasoning_content", "reasoning"])),
                text=text, calls=calls, custom=custom,
                layout=draw(st.sampled_from(LAYOUTS)),
                resend_ids=draw(st.booleans()), finish=draw(st.sampled_from(finishes)),
                usage=draw(st.booleans()), done=draw(st.booleans()))


def request_of(plan: Plan) -> dict[str, Any]:
    """The client's request: its custom tools tell which calls are custom."""
    return {"model": "prop", "input": "hi", "tools": [{"type": "custom", "name": name} for name in plan.custom]}


def convert(pieces: list[bytes], plan: Plan) -> bytes:
    return b"".join(translate_stream(MAPPING, pieces, request=request_of(plan), ctx=deterministic_context()))


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_generated_streams_convert_correctly(data: Any) -> None:
    plan = data.draw(plans())
    raw = chat_sse(render_chat_stream(data.draw, plan))
    pieces = byte_pieces(data.draw, raw)

    whole = convert([raw], plan)
    assert convert(pieces, plan) == whole
    events = parse_sse_events(whole)
    summary = check_responses_stream(events)
    response = summary["response"]

    expected_types = (["reasoning"] if plan.reasoning else []) + (["message"] if plan.text else []) \
        + ["custom_tool_call" if name in plan.custom else "function_call" for _, name, _ in plan.calls]
    assert [item["type"] for item in response["output"]] == expected_types
    by_type = {item["type"]: item for item in response["output"]}
    if plan.reasoning:
        assert by_type["reasoning"]["content"][0]["text"] == plan.reasoning
    if plan.text:
        assert by_type["message"]["content"][0]["text"] == plan.text
    calls = [(i["call_id"], i["name"], i["input"] if i["type"] == "custom_tool_call" else i["arguments"])
             for i in response["output"] if i["type"] in ("function_call", "custom_tool_call")]
    assert calls == [(call_id, name, plan.custom.get(name, arguments)) for call_id, name, arguments in plan.calls]
    incomplete = plan.finish in ("length", "content_filter")
    assert response["status"] == ("incomplete" if incomplete else "completed")
    assert summary["terminal"] == ("response.incomplete" if incomplete else "response.completed")
    assert (response["usage"] is not None) == plan.usage

    replay = replay_responses_stream(whole, request=request_of(plan))
    if incomplete:
        assert replay.terminal_without_completed, replay.error
    else:
        assert replay.verdict == "accepted", replay.error
        assert without_sdk_fields(replay.final) == response

    # the stream and the JSON answer agree: the Response the mapping makes of the same answer as a
    # chat.completion has the same output, status and usage
    answer = MAPPING.convert_response(chat_completion_of(plan), request=request_of(plan), ctx=deterministic_context())
    assert answer["output"] == response["output"]
    assert (answer["status"], answer.get("incomplete_details"), answer.get("usage")) == \
        (response["status"], response.get("incomplete_details"), response.get("usage"))


@settings(max_examples=100, deadline=None, database=None)
@given(data=st.data())
def test_a_stream_cut_anywhere_fails_cleanly(data: Any) -> None:
    """An upstream that dies mid-stream gives a failed (or, after its finish, a complete) stream."""
    plan = data.draw(plans())
    raw = chat_sse(render_chat_stream(data.draw, plan))
    cut = data.draw(st.integers(0, len(raw)))
    events = parse_sse_events(convert([raw[:cut]], plan))
    summary = check_responses_stream(events)
    finished = b'"finish_reason":"' + plan.finish.encode() in raw[:cut]
    if not finished:
        assert summary["terminal"] == "response.failed"
        assert summary["response"]["error"]["code"] == "server_error"
