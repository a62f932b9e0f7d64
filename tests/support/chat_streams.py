"""Chat Completions chunk streams drawn the ways real providers send them, for the stream property tests.

Every mapping that reads a chat stream (``openai-chat``, ``anthropic-chat``) must give the same answer
however a provider lays its chunks out, so the property tests of each share one renderer of tool
calls: arguments cut into fragments of random sizes, and the calls

- ``sequential``: each call's deltas in turn (OpenAI);
- ``interleaved``: round robin over the calls, each call's first delta before its later ones;
- ``one_chunk``: every call whole in a single chunk (some vLLM parsers);
- ``ollama``: one whole call per chunk, every one at ``index`` 0 (Ollama), so only the id tells
  them apart;

with ``resend_ids`` repeating the id, type and name on every delta (some gateways).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .generators import fragments

Json = Any
Call = tuple[str, str, str]  # (call id, name, arguments)
LAYOUTS = ("sequential", "interleaved", "one_chunk", "ollama")
ENVELOPE = {"id": "chatcmpl-prop", "object": "chat.completion.chunk", "created": 1, "model": "prop"}


@dataclass
class ChatStreamPlan:
    """What a chat stream says, and how it is laid out."""

    reasoning: str | None
    reasoning_field: str                       # reasoning_content (DeepSeek, vLLM < 0.10) or reasoning
    text: str | None
    calls: list[Call]
    layout: str                                # one of LAYOUTS
    resend_ids: bool
    finish: str
    usage: bool                                # a closing usage chunk: 3 prompt tokens, 5 completion
    done: bool                                 # the [DONE] sentinel


def render_chat_stream(draw: Any, plan: ChatStreamPlan) -> list[Json | str]:
    """The chunks of ``plan``: role, reasoning, text, calls, finish, usage, [DONE]; text cut at random."""
    chunks: list[Json | str] = [chat_chunk({"role": "assistant", "content": ""})]
    for piece in fragments(draw, plan.reasoning or ""):
        chunks.append(chat_chunk({plan.reasoning_field: piece}))
    for piece in fragments(draw, plan.text or ""):
        chunks.append(chat_chunk({"content": piece}))
    chunks.extend(tool_call_chunks(draw, plan.calls, plan.layout, plan.resend_ids))
    chunks.append(chat_chunk({}, plan.finish))
    if plan.usage:
        chunks.append(usage_chunk(3, 5))
    if plan.done:
        chunks.append("[DONE]")
    return chunks


def chat_chunk(delta: Json, finish: str | None = None) -> Json:
    """One chunk of choice 0."""
    return {**ENVELOPE, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def usage_chunk(prompt_tokens: int, completion_tokens: int) -> Json:
    """The closing usage chunk (``stream_options.include_usage``): no choices."""
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
             "total_tokens": prompt_tokens + completion_tokens}
    return {**ENVELOPE, "choices": [], "usage": usage}


def tool_call_chunks(draw: Any, calls: list[Call], layout: str, resend_ids: bool) -> list[Json]:
    """The chunks that carry ``calls``, laid out as ``layout`` says (one of ``LAYOUTS``)."""

    def first(index: int, call: Call, arguments: str) -> Json:
        return {"index": index, "id": call[0], "type": "function",
                "function": {"name": call[1], "arguments": arguments}}

    def later(index: int, call: Call, arguments: str) -> Json:
        if resend_ids:
            return first(index, call, arguments)
        return {"index": index, "function": {"arguments": arguments}}

    if layout == "one_chunk" and calls:
        return [chat_chunk({"tool_calls": [first(i, c, c[2]) for i, c in enumerate(calls)]})]
    if layout == "ollama":
        return [chat_chunk({"tool_calls": [first(0, c, c[2])]}) for c in calls]
    per_call = []
    for index, call in enumerate(calls):
        pieces = fragments(draw, call[2])
        per_call.append([first(index, call, pieces[0])] + [later(index, call, p) for p in pieces[1:]])
    if layout == "sequential":
        return [chat_chunk({"tool_calls": [d]}) for deltas in per_call for d in deltas]
    ordered = []
    while any(per_call):
        for deltas in per_call:
            if deltas:
                ordered.append(chat_chunk({"tool_calls": [deltas.pop(0)]}))
    return ordered


def chat_sse(chunks: list[Json | str]) -> bytes:
    """The SSE body of ``chunks`` (``"[DONE]"`` as the sentinel)."""
    return b"".join(b"data: [DONE]\n\n" if c == "[DONE]" else b"data: " + orjson.dumps(c) + b"\n\n"
                    for c in chunks)


def chat_completion_of(plan: ChatStreamPlan) -> Json:
    """The plan as a non-streamed chat.completion, as the same provider would send it."""
    message: Json = {"role": "assistant", "content": plan.text}
    if plan.reasoning:
        message[plan.reasoning_field] = plan.reasoning
    if plan.calls:
        message["tool_calls"] = [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
                                 for call_id, name, arguments in plan.calls]
    completion = {**ENVELOPE, "object": "chat.completion",
                  "choices": [{"index": 0, "message": message, "finish_reason": plan.finish}]}
    if plan.usage:
        completion["usage"] = usage_chunk(3, 5)["usage"]
    return completion
