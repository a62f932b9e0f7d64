"""Property test, reverse direction: generated Responses event streams become correct chat streams.

Hypothesis plans an answer (an optional image generation call, which chat cannot carry, optional
reasoning, message text in one to three output_text parts, parallel function calls, a terminal
event), renders the official event sequence (``support.responses_streams``, shared with the
``anthropic-responses`` property test) with text and arguments cut into random deltas (or, for all
or some of them, no deltas at all, only the ``.done`` events), and splits the SSE bytes at random.
The chat stream must pass the chat invariant checker (one id, role first, tool-call indexes
introduced in order with id and name, one finish, usage only when asked, ``[DONE]`` last), carry
exactly the planned text and calls with the finish reason the terminal event implies, not depend on
the splits, and be accepted by the official SDK's ``chat.completions.stream`` accumulator. The image
generation call is left out and noted as such; the reasoning (raw or summary parts) arrives as
``reasoning_content`` (the default), several reasoning items a paragraph apart. The chat answer the
mapping makes of the terminal Response as JSON must say the same: text, reasoning, calls, finish.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapper.engine import load_mapping
from mapper.engine.context import deterministic_context
from mapper.engine.streaming import translate_stream
from support.chat_invariants import check_chat_stream
from support.generators import ARGUMENTS, NAMES, TEXT, byte_pieces
from support.responses_streams import COMPLETE, ResponsesStreamPlan, render_responses_stream, responses_sse
from support.sdk_replay import replay_chat_stream
from support.sse_reader import parse_sse_events

MAPPING = load_mapping("openai-responses")


@st.composite
def plans(draw: Any) -> ResponsesStreamPlan:
    calls = [(f"call_{i}", draw(NAMES), draw(ARGUMENTS)) for i in range(draw(st.integers(0, 3)))]
    text = draw(st.none() | st.lists(TEXT, min_size=1, max_size=3))
    if not text and not calls:
        text = ["x"]
    reasoning_in = draw(st.sampled_from([None, "text", "summary"]))
    # vLLM streams its reasoning as one reasoning_text part; OpenAI's summaries come in parts
    reasoning = [] if reasoning_in is None else draw(
        st.lists(TEXT, min_size=1, max_size=1 if reasoning_in == "text" else 3))
    return ResponsesStreamPlan(
        reasoning_in=reasoning_in, reasoning=reasoning, text=text, calls=calls,
        deltas=draw(st.sampled_from(["all", "none", "some"])),
        terminal=draw(st.sampled_from(COMPLETE)), done_marker=draw(st.booleans()),
        # an image generation call first: left out, and noted
        uncarried=[(0, "image_generation_call")] if draw(st.booleans()) else [],
        twice=draw(st.booleans()))


def convert(pieces: list[bytes], request: dict[str, Any], ctx: Any = None) -> bytes:
    ctx = ctx if ctx is not None else deterministic_context()
    return b"".join(translate_stream(MAPPING, pieces, request=request, ctx=ctx))


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_generated_responses_streams_become_correct_chat_streams(data: Any) -> None:
    plan = data.draw(plans())
    events = render_responses_stream(data.draw, plan)
    raw = responses_sse(events)
    usage = data.draw(st.booleans())
    request = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    if usage:
        request["stream_options"] = {"include_usage": True}

    ctx = deterministic_context()
    whole = convert([raw], request, ctx)
    assert [what for what, _ in ctx.left_out or ()] == (["output[image_generation_call]"] if plan.uncarried else [])
    assert convert(byte_pieces(data.draw, raw), request) == whole
    chunks = parse_sse_events(whole)
    summary = check_chat_stream(chunks, expect_usage=usage)

    copies = 2 if plan.twice else 1  # the reasoning and the message items, each once or twice
    text = "".join(plan.text or []) * copies or None
    assert (summary["content"] or None) == text
    assert [(c["id"], c["name"], c["arguments"]) for c in summary["tool_calls"]] == plan.calls
    # reasoning_content is on by default; reasoning items are a paragraph apart
    assert summary["reasoning"] == ("\n\n".join([plan.thinking] * copies) if plan.thinking else None)
    expected_finish = {"max_output_tokens": "length", "content_filter": "content_filter"}.get(
        plan.terminal, "tool_calls" if plan.calls else "stop")
    assert summary["finish_reason"] == expected_finish

    replay = replay_chat_stream(whole, request={"model": "gpt", "messages": request["messages"]})
    assert replay.verdict in ("accepted", "accepted-finish-error"), replay.error
    message = replay.final["choices"][0]["message"]
    assert (message.get("content") or None) == text
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"])
            for c in message.get("tool_calls") or []] == plan.calls

    # the stream and the JSON answer agree
    answer = MAPPING.convert_response(events[-2 if plan.done_marker else -1]["response"],
                                      request=request, ctx=deterministic_context())
    choice = answer["choices"][0]
    assert (choice["message"].get("content") or None) == text
    assert choice["message"].get("reasoning_content") == summary["reasoning"]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"])
            for c in choice["message"].get("tool_calls") or []] == plan.calls
    assert choice["finish_reason"] == expected_finish
