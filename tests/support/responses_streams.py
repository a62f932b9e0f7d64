"""Responses event streams drawn the way upstreams send them, for the stream property tests.

Every mapping that reads a Responses stream (``openai-responses``, ``anthropic-responses``) must
give the same answer whatever the upstream's answer holds, so their property tests share one plan
and one renderer of the official event lifecycle: ``response.created`` and ``response.in_progress``;
per output item ``response.output_item.added``, its content (parts opened with
``content_part.added`` / ``reasoning_summary_part.added``, text in random deltas, then the
``.done`` events) and ``response.output_item.done`` with the whole item; then the terminal event.

- reasoning as ``reasoning_text`` deltas (vLLM, gpt-oss, Ollama) or as summary parts (OpenAI's
  reasoning models), or a reasoning item that shows nothing (OpenAI without a summary asked for);
- a message with any number of ``output_text`` parts (possibly none);
- parallel function calls;
- items of the upstream's built-in tools (``image_generation_call``, ``web_search_call``) at any
  place among them;
- reasoning, texts and arguments cut into random deltas, or only in their ``.done`` events (no deltas);
- the terminal: ``response.completed``, ``response.incomplete`` (``max_output_tokens`` or
  ``content_filter``), or, after a random prefix of the item events, ``response.failed``, an
  ``error`` event, or nothing at all (a stream cut short).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from hypothesis import strategies as st

from .generators import fragments

Json = Any
Call = tuple[str, str, str]  # (call id, name, arguments)
COMPLETE = ("completed", "max_output_tokens", "content_filter")
FAILURES = ("failed", "error", "cut")  # a terminal that is no finish: after a random prefix
UNCARRIED = ("image_generation_call", "web_search_call")
FAILED_ERROR = {"code": "server_error", "message": "The model crashed"}
ERROR_EVENT = {"code": "rate_limit_exceeded", "message": "Slow down"}
CREATED_AT = 5


@dataclass
class ResponsesStreamPlan:
    """What a Responses stream says, and how it is sent."""

    reasoning_in: str | None        # None (no reasoning item), "text" (reasoning_text), "summary"
    reasoning: list[str]            # the reasoning_text (one) or the summary parts; [] shows nothing
    text: list[str] | None          # the message's output_text parts; None: no message item
    calls: list[Call]
    deltas: str                     # "all", "none" (reasoning, texts and arguments only in .done) or "some"
    terminal: str                   # one of COMPLETE or FAILURES
    usage: tuple[int, int, int] | None = (4, 0, 6)   # input tokens, of them cached, output tokens
    done_marker: bool = False       # "data: [DONE]" after the terminal event
    uncarried: list[tuple[int, str]] = field(default_factory=list)  # (place among the items, type)
    echo_output: bool = True        # the terminal Response lists the output (some gateways: [])
    twice: bool = False             # the reasoning item and the message item each come twice in a row

    @property
    def thinking(self) -> str:
        """The reasoning as one text: summary parts joined by a blank line."""
        return "\n\n".join(self.reasoning)


def render_responses_stream(draw: Any, plan: ResponsesStreamPlan) -> list[Json | str]:
    """The events of ``plan``, ``sequence_number`` from 0; ``"[DONE]"`` as the sentinel."""
    response = {"id": "resp_p", "object": "response", "created_at": CREATED_AT, "model": "gpt",
                "status": "in_progress", "output": []}
    events: list[Json | str] = [{"type": "response.created", "response": response},
                                {"type": "response.in_progress", "response": response}]
    writers: list[Any] = []
    copies = 2 if plan.twice else 1
    if plan.reasoning_in is not None:
        writers += [lambda index: _reasoning_events(draw, plan, index)] * copies
    if plan.text is not None:
        writers += [lambda index: _message_events(draw, plan, index)] * copies
    writers += [lambda index, call=call: _call_events(draw, plan, index, call) for call in plan.calls]
    for place, kind in sorted(plan.uncarried, key=lambda pair: pair[0]):
        writers.insert(min(place, len(writers)), lambda index, kind=kind: _uncarried_events(kind, index))
    outputs = []
    for index, write in enumerate(writers):
        item_events, item = write(index)
        events += item_events
        outputs.append(item)

    if plan.terminal in FAILURES:
        events = events[:draw(st.integers(1, len(events)))]
    if plan.terminal == "failed":
        events.append({"type": "response.failed", "response": {
            **response, "status": "failed", "error": FAILED_ERROR, "usage": _usage(plan)}})
    elif plan.terminal == "error":
        events.append({"type": "error", **ERROR_EVENT, "param": None})
    elif plan.terminal != "cut":
        final = {**response, "status": "completed" if plan.terminal == "completed" else "incomplete",
                 "output": outputs if plan.echo_output else [], "usage": _usage(plan),
                 "incomplete_details": None if plan.terminal == "completed" else {"reason": plan.terminal}}
        events.append({"type": f"response.{final['status']}", "response": final})
        if plan.done_marker:
            events.append("[DONE]")
    for number, event in enumerate(events):
        if isinstance(event, dict):
            event["sequence_number"] = number
    return events


def responses_sse(events: list[Json | str]) -> bytes:
    """The SSE body of ``events``, each with its ``event:`` line (``"[DONE]"`` as the sentinel)."""
    return b"".join(b"data: [DONE]\n\n" if e == "[DONE]" else
                    b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n"
                    for e in events)


def _usage(plan: ResponsesStreamPlan) -> Json:
    if plan.usage is None:
        return None
    prompt, cached, output = plan.usage
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + output}


def _with_deltas(draw: Any, plan: ResponsesStreamPlan) -> bool:
    return plan.deltas == "all" or (plan.deltas == "some" and draw(st.booleans()))


def _added(index: int, item: Json) -> Json:
    return {"type": "response.output_item.added", "output_index": index, "item": item}


def _done(index: int, item: Json) -> Json:
    return {"type": "response.output_item.done", "output_index": index, "item": item}


# how a reasoning item carries its text: raw (reasoning_text) or as summary parts; each is
# (part type, index field, part events' prefix, text events' prefix, the done item's list field)
REASONING_SHAPES = {
    "text": ("reasoning_text", "content_index", "response.content_part", "response.reasoning_text", "content"),
    "summary": ("summary_text", "summary_index", "response.reasoning_summary_part",
                "response.reasoning_summary_text", "summary"),
}


def _reasoning_events(draw: Any, plan: ResponsesStreamPlan, index: int) -> tuple[list[Json], Json]:
    item = {"id": f"rs_{index}", "type": "reasoning", "summary": []}
    where = {"item_id": item["id"], "output_index": index}
    events = [_added(index, item)]
    part_type, index_field, part_events, text_events, field = REASONING_SHAPES[plan.reasoning_in]
    parts = [{"type": part_type, "text": text} for text in plan.reasoning]
    for number, text in enumerate(plan.reasoning):
        at = {**where, index_field: number}
        events.append({"type": f"{part_events}.added", **at, "part": {"type": part_type, "text": ""}})
        if _with_deltas(draw, plan):
            events += [{"type": f"{text_events}.delta", **at, "delta": piece} for piece in fragments(draw, text)]
        events += [{"type": f"{text_events}.done", **at, "text": text},
                   {"type": f"{part_events}.done", **at, "part": parts[number]}]
    done = {**item, field: parts}
    events.append(_done(index, done))
    return events, done


def _message_events(draw: Any, plan: ResponsesStreamPlan, index: int) -> tuple[list[Json], Json]:
    item = {"id": f"msg_{index}", "type": "message", "role": "assistant", "status": "in_progress",
            "content": []}
    events = [_added(index, item)]
    parts = []
    for number, text in enumerate(plan.text or []):
        at = {"item_id": item["id"], "output_index": index, "content_index": number}
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        parts.append(part)
        events.append({"type": "response.content_part.added", **at, "part": {**part, "text": ""}})
        if _with_deltas(draw, plan):
            events += [{"type": "response.output_text.delta", **at, "delta": piece, "logprobs": []}
                       for piece in fragments(draw, text) if piece]
        events += [{"type": "response.output_text.done", **at, "text": text, "logprobs": []},
                   {"type": "response.content_part.done", **at, "part": part}]
    done = {**item, "status": "completed", "content": parts}
    events.append(_done(index, done))
    return events, done


def _call_events(draw: Any, plan: ResponsesStreamPlan, index: int, call: Call) -> tuple[list[Json], Json]:
    call_id, name, arguments = call
    item = {"id": f"fc_{index}", "type": "function_call", "status": "in_progress", "call_id": call_id,
            "name": name, "arguments": ""}
    where = {"item_id": item["id"], "output_index": index}
    events = [_added(index, item)]
    if _with_deltas(draw, plan):
        events += [{"type": "response.function_call_arguments.delta", **where, "delta": piece}
                   for piece in fragments(draw, arguments)]
    done = {**item, "status": "completed", "arguments": arguments}
    events += [{"type": "response.function_call_arguments.done", **where, "name": name,
                "arguments": arguments},
               _done(index, done)]
    return events, done


def _uncarried_events(kind: str, index: int) -> tuple[list[Json], Json]:
    """An image generation or a web search the upstream ran: its progress events, no text."""
    short = "ig" if kind == "image_generation_call" else "ws"
    item = {"id": f"{short}_{index}", "type": kind, "status": "in_progress"}
    where = {"item_id": item["id"], "output_index": index}
    if kind == "image_generation_call":
        steps = [{"type": "response.image_generation_call.in_progress", **where},
                 {"type": "response.image_generation_call.generating", **where},
                 {"type": "response.image_generation_call.partial_image", **where,
                  "partial_image_index": 0, "partial_image_b64": "iVBORw0KGgo="}]
        done = {**item, "status": "completed", "result": "iVBORw0KGgo="}
    else:
        steps = [{"type": f"response.web_search_call.{step}", **where}
                 for step in ("in_progress", "searching", "completed")]
        done = {**item, "status": "completed", "action": {"type": "search", "query": "weather"}}
    return [_added(index, item), *steps, _done(index, done)], done
