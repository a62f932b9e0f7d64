"""Property test, reverse direction: generated Responses event streams become correct chat streams.

Hypothesis plans an answer (an optional image generation call, which chat cannot carry, optional
reasoning, message text, parallel function calls, a terminal event), renders the official event sequence with text and arguments cut into random deltas (or, for
some items, no deltas at all and only the ``.done`` event), and splits the SSE bytes at random. The
chat stream must pass the chat invariant checker (one id, role first, tool-call indexes introduced in
order with id and name, one finish, usage only when asked, ``[DONE]`` last), carry exactly the
planned text and calls with the finish reason the terminal event implies, not depend on the splits,
and be accepted by the official SDK's ``chat.completions.stream`` accumulator. The image generation
call is left out and noted as such; the reasoning arrives as ``reasoning_content`` (the default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapper.engine import load_mapping
from mapper.engine.context import deterministic_context
from mapper.engine.streaming import translate_stream
from support.chat_invariants import check_chat_stream
from support.generators import ARGUMENTS, NAMES, TEXT, byte_pieces, fragments
from support.sdk_replay import replay_chat_stream
from support.sse_reader import parse_sse_events

MAPPING = load_mapping("openai-responses")


@dataclass
class Plan:
    image: bool                    # an image_generation_call first: left out, and noted
    reasoning: str | None
    text: str | None
    calls: list[tuple[str, str, str]]
    skip_deltas: bool              # send texts and arguments only in their .done events
    terminal: str                  # completed | max_output_tokens | content_filter
    usage: bool
    done_marker: bool


@st.composite
def plans(draw: Any) -> Plan:
    calls = [(f"call_{i}", draw(NAMES), draw(ARGUMENTS)) for i in range(draw(st.integers(0, 3)))]
    text = draw(st.none() | TEXT)
    if not text and not calls:
        text = "x"
    return Plan(image=draw(st.booleans()), reasoning=draw(st.none() | TEXT), text=text, calls=calls,
                skip_deltas=draw(st.booleans()),
                terminal=draw(st.sampled_from(["completed", "max_output_tokens", "content_filter"])),
                usage=draw(st.booleans()), done_marker=draw(st.booleans()))


def render(draw: Any, plan: Plan) -> list[dict[str, Any] | str]:
    events: list[dict[str, Any] | str] = [
        {"type": "response.created", "response": {"id": "resp_p", "created_at": 5, "model": "gpt",
                                                  "status": "in_progress", "output": []}}]
    index = 0
    outputs: list[dict[str, Any]] = []
    if plan.image:
        item = {"id": "ig_1", "type": "image_generation_call", "status": "in_progress"}
        done = {**item, "status": "completed", "result": "iVBORw0KGgo="}
        events += [{"type": "response.output_item.added", "output_index": index, "item": item},
                   {"type": "response.image_generation_call.partial_image", "output_index": index,
                    "item_id": "ig_1", "partial_image_index": 0, "partial_image_b64": "iVBORw0KGgo="},
                   {"type": "response.output_item.done", "output_index": index, "item": done}]
        outputs.append(done)
        index += 1
    if plan.reasoning:
        item = {"id": "rs_1", "type": "reasoning", "summary": []}
        events.append({"type": "response.output_item.added", "output_index": index, "item": item})
        for piece in fragments(draw, plan.reasoning):
            events.append({"type": "response.reasoning_text.delta", "output_index": index,
                           "content_index": 0, "item_id": "rs_1", "delta": piece})
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
        outputs.append(item)
        index += 1
    if plan.text:
        events.append({"type": "response.output_item.added", "output_index": index,
                       "item": {"id": "msg_1", "type": "message", "content": []}})
        if not plan.skip_deltas:
            for piece in fragments(draw, plan.text):
                events.append({"type": "response.output_text.delta", "output_index": index,
                               "content_index": 0, "item_id": "msg_1", "delta": piece})
        events.append({"type": "response.output_text.done", "output_index": index,
                       "content_index": 0, "item_id": "msg_1", "text": plan.text})
        outputs.append({"type": "message"})
        index += 1
    for call_id, name, arguments in plan.calls:
        item = {"id": f"fc_{index}", "type": "function_call", "call_id": call_id, "name": name,
                "arguments": ""}
        events.append({"type": "response.output_item.added", "output_index": index, "item": item})
        if not plan.skip_deltas:
            for piece in fragments(draw, arguments):
                events.append({"type": "response.function_call_arguments.delta", "output_index": index,
                               "item_id": item["id"], "delta": piece})
        events.append({"type": "response.function_call_arguments.done", "output_index": index,
                       "item_id": item["id"], "name": name, "arguments": arguments})
        events.append({"type": "response.output_item.done", "output_index": index,
                       "item": {**item, "arguments": arguments, "status": "completed"}})
        outputs.append({"type": "function_call"})
        index += 1
    usage = {"input_tokens": 4, "output_tokens": 6, "total_tokens": 10}
    if plan.terminal == "completed":
        events.append({"type": "response.completed", "response": {
            "id": "resp_p", "status": "completed", "output": outputs, "usage": usage}})
    else:
        events.append({"type": "response.incomplete", "response": {
            "id": "resp_p", "status": "incomplete", "output": outputs, "usage": usage,
            "incomplete_details": {"reason": plan.terminal}}})
    if plan.done_marker:
        events.append("[DONE]")
    for number, event in enumerate(events):
        if isinstance(event, dict):
            event["sequence_number"] = number
    return events


def sse(events: list[dict[str, Any] | str]) -> bytes:
    return b"".join(b"data: [DONE]\n\n" if e == "[DONE]" else
                    b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n"
                    for e in events)


def convert(pieces: list[bytes], request: dict[str, Any], ctx: Any = None) -> bytes:
    ctx = ctx if ctx is not None else deterministic_context()
    return b"".join(translate_stream(MAPPING, pieces, request=request, ctx=ctx))


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_generated_responses_streams_become_correct_chat_streams(data: Any) -> None:
    plan = data.draw(plans())
    raw = sse(render(data.draw, plan))
    request = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    if plan.usage:
        request["stream_options"] = {"include_usage": True}

    ctx = deterministic_context()
    whole = convert([raw], request, ctx)
    assert [what for what, _ in ctx.left_out or ()] == (["output[image_generation_call]"] if plan.image else [])
    assert convert(byte_pieces(data.draw, raw), request) == whole
    chunks = parse_sse_events(whole)
    summary = check_chat_stream(chunks, expect_usage=plan.usage)

    assert (summary["content"] or None) == plan.text
    assert [(c["id"], c["name"], c["arguments"]) for c in summary["tool_calls"]] == plan.calls
    assert summary["reasoning"] == plan.reasoning  # reasoning_content is on by default
    expected_finish = {"max_output_tokens": "length", "content_filter": "content_filter"}.get(
        plan.terminal, "tool_calls" if plan.calls else "stop")
    assert summary["finish_reason"] == expected_finish

    replay = replay_chat_stream(whole, request={"model": "gpt", "messages": request["messages"]})
    assert replay.verdict in ("accepted", "accepted-finish-error"), replay.error
    message = replay.final["choices"][0]["message"]
    assert (message.get("content") or None) == plan.text
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"])
            for c in message.get("tool_calls") or []] == plan.calls
