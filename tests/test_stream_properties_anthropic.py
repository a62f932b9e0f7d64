"""Property test: generated chat streams, cut at random places, always give a correct Messages stream.

Hypothesis builds a plan (reasoning in ``reasoning_content`` or vLLM's ``reasoning``, answer text,
parallel tool calls with JSON arguments, a finish reason, a usage chunk, the [DONE] marker), renders
it as chat chunks the ways providers do (``support.chat_streams``: fragments of random sizes; calls sequential,
interleaved, all in one chunk, or Ollama's index 0 for every call; ids and names resent on every
chunk or not), then splits the SSE bytes at random offsets, and converts it with the
``anthropic-chat`` mapping. Every converted stream must pass Anthropic's stream rules
(``check_anthropic_sse``: dense block indexes, one block open at a time, deltas that fit their
block, tool input only in ``input_json_delta``, a signature closing each thinking block,
``message_delta`` after the last block, nothing after ``message_stop``), carry exactly the planned
thinking, text and tool inputs (parsed JSON equal) in that order, end with the stop_reason the
finish reason implies, not depend on the byte splits, give the anthropic SDK's accumulator the
same final Message, and be the Message the mapping makes of the same answer sent as a
chat.completion (signatures included). A stream cut short must end with an ``error`` event, never
silently.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapper.engine import load_mapping
from mapper.engine.context import deterministic_context
from mapper.engine.streaming import translate_stream
from support.anthropic_invariants import check_anthropic_sse
from support.anthropic_mapping import ANTHROPIC_CHAT, requires_anthropic_chat
from support.anthropic_replay import replay_anthropic_stream
from support.chat_streams import LAYOUTS, ChatStreamPlan, chat_chunk, chat_completion_of, chat_sse, render_chat_stream
from support.generators import ARGUMENTS, NAMES, TEXT, byte_pieces

pytestmark = requires_anthropic_chat

# chat finish_reason -> Messages stop_reason
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
SETTINGS = settings(max_examples=200, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@functools.cache
def mapping() -> Any:
    """The compiled mapping, loaded on first use: importing this module must work without it."""
    return load_mapping(ANTHROPIC_CHAT)


@st.composite
def plans(draw: Any) -> ChatStreamPlan:
    calls = [(f"call_{i}", draw(NAMES), draw(ARGUMENTS)) for i in range(draw(st.integers(0, 3)))]
    reasoning = draw(st.none() | TEXT)
    text = draw(st.none() | TEXT)
    if not (reasoning or text or calls):
        text = "x"
    finishes = ["tool_calls", "length"] if calls else ["stop", "length", "content_filter"]
    return ChatStreamPlan(reasoning=reasoning, text=text, calls=calls,
                          reasoning_field=draw(st.sampled_from(["reasoning_content", "reasoning"])),
                          layout=draw(st.sampled_from(LAYOUTS)), resend_ids=draw(st.booleans()),
                          finish=draw(st.sampled_from(finishes)), usage=draw(st.booleans()),
                          done=draw(st.booleans()))


def request_of(plan: ChatStreamPlan) -> dict[str, Any]:
    """The client's Messages request: it offers the tools the model calls."""
    tools = [{"name": name, "input_schema": {"type": "object"}} for name in sorted({name for _, name, _ in plan.calls})]
    return {"model": "prop", "max_tokens": 1024, "messages": [{"role": "user", "content": "hi"}], "tools": tools}


def convert(pieces: list[bytes], plan: ChatStreamPlan) -> bytes:
    return b"".join(translate_stream(mapping(), pieces, request=request_of(plan), ctx=deterministic_context()))


@SETTINGS
@given(data=st.data())
def test_generated_chat_streams_become_correct_messages_streams(data: Any) -> None:
    plan = data.draw(plans())
    raw = chat_sse(render_chat_stream(data.draw, plan))
    whole = convert([raw], plan)
    assert convert(byte_pieces(data.draw, raw), plan) == whole

    summary = check_anthropic_sse(whole)
    message = summary["message"]
    expected_types = (["thinking"] if plan.reasoning else []) + (["text"] if plan.text else []) \
        + ["tool_use"] * len(plan.calls)
    assert [block["type"] for block in message["content"]] == expected_types
    blocks = {block["type"]: block for block in message["content"]}
    if plan.reasoning:
        assert blocks["thinking"]["thinking"] == plan.reasoning
    assert summary["text"] == (plan.text or "")
    uses = summary["tool_uses"]
    assert [(use["name"], use["input"]) for use in uses] == [(name, json.loads(arguments)) for _, name, arguments in plan.calls]
    assert len({use["id"] for use in uses}) == len(uses) and all(use["id"] for use in uses)
    assert summary["stop_reason"] == STOP_REASONS[plan.finish]
    if plan.usage:
        assert (summary["usage"]["input_tokens"], summary["usage"]["output_tokens"]) == (3, 5)

    replay = replay_anthropic_stream(whole, request=request_of(plan))
    assert replay.verdict == "accepted", replay.error_info
    assert replay.final == message

    # the stream and the JSON answer agree: the Message the mapping makes of the same answer sent
    # as a chat.completion (the accumulator sets stop_details, which message_delta may carry, to null)
    answer = mapping().convert_response(chat_completion_of(plan), request=request_of(plan),
                                        ctx=deterministic_context())
    assert {**answer, "id": message["id"], "stop_details": None} == message


@settings(SETTINGS, max_examples=150)
@given(data=st.data())
def test_a_stream_cut_anywhere_ends_in_an_error_event(data: Any) -> None:
    """An upstream that dies before its finish gives a stream that ends with `error` (a complete one
    after its finish); either way every rule holds."""
    plan = data.draw(plans())
    raw = chat_sse(render_chat_stream(data.draw, plan))
    cut = data.draw(st.integers(0, len(raw)))
    summary = check_anthropic_sse(convert([raw[:cut]], plan))
    finished = b'"finish_reason":"' + plan.finish.encode() in raw[:cut]
    if not finished:
        assert summary["error"] is not None and summary["event_types"][-1] == "error"
        assert "message_stop" not in summary["event_types"]


def test_a_stream_cut_inside_tool_arguments_leaves_the_call_unfinished() -> None:
    """A tool_use block whose arguments were cut must not be closed as if whole: a client that runs
    a tool when its block stops (or parses partial JSON, as the SDK does) would run
    ``rm -rf /tmp/x`` from ``rm -rf /tmp/x/cache``. Only the error event may follow."""
    call = {"index": 0, "id": "call_0", "type": "function",
            "function": {"name": "Bash", "arguments": '{"command": "rm -rf /tmp/x'}}
    plan = ChatStreamPlan(reasoning=None, reasoning_field="reasoning_content", text=None,  # offers Bash
                          calls=[("call_0", "Bash", "{}")], layout="sequential", resend_ids=False,
                          finish="tool_calls", usage=False, done=False)
    raw = chat_sse([chat_chunk({"role": "assistant", "content": ""}), chat_chunk({"tool_calls": [call]})])
    summary = check_anthropic_sse(convert([raw], plan))
    assert summary["event_types"][-2:] == ["content_block_delta", "error"], summary["event_types"]
    assert "content_block_stop" not in summary["event_types"]
