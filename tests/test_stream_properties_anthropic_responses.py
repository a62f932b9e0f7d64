"""Property test: generated Responses streams, split at random places, give a correct Messages stream.

Hypothesis plans an answer as a Responses upstream streams it (``support.responses_streams``: the
official event lifecycle; reasoning as ``reasoning_text`` deltas or summary parts, or a reasoning
item that shows nothing; a message of any number of ``output_text`` parts; parallel function calls;
image generation and web search calls among them; texts and arguments in random deltas or only in
their ``.done`` events), ends it with ``response.completed`` or ``response.incomplete``
(``max_output_tokens``, ``content_filter``), renders it to SSE bytes, splits them at random offsets
and converts it with the ``anthropic-responses`` mapping. Every converted stream must pass
Anthropic's stream rules (``check_anthropic_sse``), carry exactly the planned thinking (summary
parts joined by a blank line), text and tool inputs (parsed JSON equal) in that order, end with the
stop_reason the terminal event implies (``tables.stop_reason``; ``tool_use`` after calls even when
the terminal Response lists no output), report usage as the mapping's ``usage`` map does (input
less cached, cache reads the cached count, output as it is), name the built-in tools' items as left
out (as the non-stream answer does), not depend on the byte splits, give the anthropic SDK's
accumulator the same final Message, and be the Message the mapping makes of the terminal Response
as a JSON answer (each upstream item a block of its own, the same signatures).

A stream that fails (``response.failed``, an ``error`` event) or stops after a random prefix of its
events, or whose bytes are cut anywhere before its terminal event, must end with an ``error``
event, never silently; every block it closed is whole, and the one left open holds a prefix of the
planned content: a half tool call never looks whole.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapper.engine import load_mapping
from mapper.engine.context import deterministic_context
from mapper.engine.streaming import translate_stream
from support.anthropic_invariants import check_anthropic_sse
from support.anthropic_replay import replay_anthropic_stream
from support.generators import ARGUMENTS, NAMES, TEXT, byte_pieces
from support.responses_streams import (COMPLETE, ERROR_EVENT, FAILED_ERROR, FAILURES, UNCARRIED,
                                       ResponsesStreamPlan, render_responses_stream, responses_sse)
from support.sse_reader import parse_sse_events

# why a Response ended -> Messages stop_reason (the mapping's tables.stop_reason)
STOP_REASONS = {"max_output_tokens": "max_tokens", "content_filter": "refusal"}
# how each failure ends the Messages stream: the error event's type and message
FAILURE_ERRORS = {"failed": ("api_error", FAILED_ERROR["message"]),
                  "error": ("rate_limit_error", ERROR_EVENT["message"]),
                  "cut": ("api_error", "the upstream stream ended before it finished")}
MAPPING = load_mapping("anthropic-responses")
SETTINGS = settings(max_examples=200, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def usages(draw: Any) -> tuple[int, int, int]:
    prompt = draw(st.integers(0, 10_000))
    return prompt, draw(st.integers(0, prompt)), draw(st.integers(0, 10_000))


@st.composite
def plans(draw: Any, terminals: tuple[str, ...] = COMPLETE) -> ResponsesStreamPlan:
    reasoning_in = draw(st.sampled_from([None, "text", "summary"]))
    # vLLM streams its reasoning as one reasoning_text part; OpenAI's summaries come in parts
    reasoning = [] if reasoning_in is None else draw(st.lists(TEXT, max_size=1 if reasoning_in == "text" else 3))
    return ResponsesStreamPlan(
        reasoning_in=reasoning_in, reasoning=reasoning,
        text=draw(st.none() | st.lists(st.just("") | TEXT, max_size=3)),
        calls=[(f"call_{i}", draw(NAMES), draw(ARGUMENTS)) for i in range(draw(st.integers(0, 3)))],
        deltas=draw(st.sampled_from(["all", "none", "some"])),
        terminal=draw(st.sampled_from(terminals)),
        usage=draw(st.none() | usages()),
        done_marker=draw(st.booleans()),
        uncarried=draw(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(UNCARRIED)), max_size=2)),
        echo_output=draw(st.booleans()),
        twice=draw(st.booleans()),
    )


def planned_blocks(plan: ResponsesStreamPlan) -> list[dict[str, Any]]:
    """The content blocks the plan must become, in order (tool input as its arguments' text)."""
    copies = 2 if plan.twice else 1  # each upstream item is a block of its own
    blocks = [{"type": "thinking", "content": plan.thinking}] * copies if plan.thinking else []
    text = "".join(plan.text or [])
    blocks += [{"type": "text", "content": text}] * copies if text else []
    return blocks + [{"type": "tool_use", "id": call_id, "name": name, "content": arguments}
                     for call_id, name, arguments in plan.calls]


def request_of(plan: ResponsesStreamPlan) -> dict[str, Any]:
    """The client's Messages request: it offers the tools the model calls."""
    names = sorted({name for _, name, _ in plan.calls})
    return {"model": "prop", "max_tokens": 1024, "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": name, "input_schema": {"type": "object"}} for name in names]}


def convert(pieces: list[bytes], plan: ResponsesStreamPlan, ctx: Any = None) -> bytes:
    ctx = ctx if ctx is not None else deterministic_context()
    return b"".join(translate_stream(MAPPING, pieces, request=request_of(plan), ctx=ctx))


def streamed_blocks(body: bytes) -> list[dict[str, Any]]:
    """Each block as the events built it: type, id, name, what its deltas added up to, closed or not."""
    blocks: list[dict[str, Any]] = []
    for event in parse_sse_events(body, require_event_name=True):
        if event["type"] == "content_block_start":
            start = event["content_block"]
            blocks.append({"type": start["type"], "id": start.get("id"), "name": start.get("name"),
                           "content": "", "closed": False})
        elif event["type"] == "content_block_delta":
            delta = event["delta"]
            blocks[event["index"]]["content"] += delta.get("thinking") or delta.get("text") \
                or delta.get("partial_json") or ""
        elif event["type"] == "content_block_stop":
            blocks[event["index"]]["closed"] = True
    return blocks


@SETTINGS
@given(data=st.data())
def test_generated_responses_streams_become_correct_messages_streams(data: Any) -> None:
    plan = data.draw(plans())
    events = render_responses_stream(data.draw, plan)
    raw = responses_sse(events)
    ctx = deterministic_context()
    whole = convert([raw], plan, ctx)
    assert convert(byte_pieces(data.draw, raw), plan) == whole
    # the built-in tools' items: nothing in the stream, named as left out (as in a Message), once each
    uncarried = [e["item"]["type"] for e in events if isinstance(e, dict)
                 and e["type"] == "response.output_item.added" and e["item"]["type"] in UNCARRIED]
    assert [what for what, _ in ctx.left_out or ()] == [f"output[{kind}]" for kind in dict.fromkeys(uncarried)]

    summary = check_anthropic_sse(whole)
    message = summary["message"]
    planned = planned_blocks(plan)
    assert [block["type"] for block in message["content"]] == [block["type"] for block in planned]
    if plan.thinking:
        assert message["content"][0]["thinking"] == plan.thinking
    assert summary["text"] == "".join(plan.text or []) * (2 if plan.twice else 1)
    assert [(use["id"], use["name"], use["input"]) for use in summary["tool_uses"]] == \
        [(call_id, name, json.loads(arguments)) for call_id, name, arguments in plan.calls]
    assert all(block["content"] == want["content"] and block["closed"]
               for block, want in zip(streamed_blocks(whole), planned))
    assert summary["stop_reason"] == STOP_REASONS.get(plan.terminal, "tool_use" if plan.calls else "end_turn")
    if plan.usage is None:
        assert summary["usage"] == {"input_tokens": 0, "output_tokens": 0}
    else:
        prompt, cached, output = plan.usage
        assert summary["usage"] == {"input_tokens": prompt - cached, "cache_creation_input_tokens": 0,
                                    "cache_read_input_tokens": cached, "output_tokens": output}
    assert message["model"] == "gpt"

    replay = replay_anthropic_stream(whole, request=request_of(plan))
    assert replay.verdict == "accepted", replay.error_info
    assert replay.final == message

    # the stream and the JSON answer agree: the same blocks, signatures, stop reason and usage
    final = events[-2 if plan.done_marker else -1]["response"]
    if plan.echo_output:
        answer = MAPPING.convert_response(final, request=request_of(plan), ctx=deterministic_context())
        # (the accumulator sets stop_details, which the SDK folds in from message_delta, to null)
        assert {**answer, "id": message["id"], "stop_details": None} == message


def check_failed(body: bytes, plan: ResponsesStreamPlan, failure: str | None) -> None:
    """An error event ends the stream (the one ``failure`` implies, if given); closed blocks are
    whole, and the open one holds a prefix of its planned content."""
    summary = check_anthropic_sse(body)
    assert summary["event_types"][-1] == "error"
    assert "message_delta" not in summary["event_types"] and "message_stop" not in summary["event_types"]
    if failure is not None:
        error_type, message = FAILURE_ERRORS[failure]
        assert summary["error"]["type"] == error_type and summary["error"]["message"].startswith(message)
    planned = planned_blocks(plan)
    blocks = streamed_blocks(body)
    assert len(blocks) <= len(planned)
    assert all(block["closed"] for block in blocks[:-1])
    for block, want in zip(blocks, planned):
        assert block["type"] == want["type"]
        if want["type"] == "tool_use":
            assert (block["id"], block["name"]) == (want["id"], want["name"])
        if block["closed"]:
            assert block["content"] == want["content"]
        else:
            assert want["content"].startswith(block["content"])
    replay = replay_anthropic_stream(body, request=request_of(plan))
    assert replay.verdict == "error-surfaced", replay.error_info


@settings(SETTINGS, max_examples=150)
@given(data=st.data())
def test_a_failed_or_cut_stream_ends_in_an_error_event(data: Any) -> None:
    """``response.failed``, an ``error`` event, or nothing, after a random prefix of the events."""
    plan = data.draw(plans(FAILURES))
    raw = responses_sse(render_responses_stream(data.draw, plan))
    whole = convert([raw], plan)
    assert convert(byte_pieces(data.draw, raw), plan) == whole
    check_failed(whole, plan, plan.terminal)


@settings(SETTINGS, max_examples=100)
@given(data=st.data())
def test_a_stream_cut_anywhere_before_its_terminal_event_ends_in_an_error_event(data: Any) -> None:
    """Bytes cut at any offset, inside a frame too: short of the terminal event, an error event
    ends the stream; with it, the stream is complete."""
    plan = data.draw(plans())
    raw = responses_sse(render_responses_stream(data.draw, plan))
    terminal = raw.rindex(b"event: response.")
    cut = data.draw(st.integers(0, len(raw)))
    body = convert([raw[:cut]], plan)
    if cut < terminal:  # a cut inside a frame may leave half a frame, which is no JSON
        check_failed(body, plan, None)
    elif raw.find(b"\n\n", terminal) + 2 <= cut:
        assert check_anthropic_sse(body)["event_types"][-1] == "message_stop"
