"""The deterministic toy model behind a `FakeUpstream`, and the wire shapes it answers in.

It answers `"echo: " + <last user text>`, calls the tools the user names (`"call get_weather"`),
answers `"tool said: ..."` after a tool result, and truncates to `max_tokens` words, so tests can
assert its answers exactly; a word counts as a token, which keeps usage predictable too. Each request
gives one `Answer`, independent of the wire, which is then rendered as a Chat Completions or Responses
payload, streamed or not, so both APIs say the same thing. Everything here is a pure function over
dicts; `FakeUpstream` wraps the results in replies.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .request_reading import content_text, request_messages
from .upstream_replies import Frame

Json = Any

CREATED = 1_700_000_000  # pinned clock: every `created` / `created_at` the fake sends


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the toy model decided to make."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Answer:
    """What the toy model says, independent of the wire shape."""

    pieces: tuple[str, ...]  # one word each, with its trailing space: "".join(pieces) is the text
    tool_calls: tuple[ToolCall, ...]
    reasoning: tuple[str, ...]
    truncated: bool
    prompt_words: int

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def reasoning_text(self) -> str:
        return "".join(self.reasoning)

    @property
    def output_words(self) -> int:
        return len(self.pieces) + sum(len(call.arguments.split()) for call in self.tool_calls)


def think(
    user_text: str,
    tool_output: str | None,
    tool_names: list[str],
    limit: int | None,
    prompt_words: int,
    reasoning: bool = False,
    freeform: frozenset[str] = frozenset(),
) -> Answer:
    """The toy model: tool result → "tool said: …"; "call <tool>" → calls; else "echo: <user text>".

    A call's arguments are ``{"q": <user text>}``, or ``{"input": <user text>}`` for a ``freeform``
    tool (a function whose one parameter is ``input``: how mapper sends a custom tool).
    """
    calls = () if tool_output is not None else _named_calls(user_text, tool_names, freeform)
    text = "" if calls else (f"tool said: {tool_output}" if tool_output is not None else f"echo: {user_text}")
    pieces = split_words(text)
    truncated = limit is not None and len(pieces) > limit
    if truncated:
        pieces = pieces[:limit]
        pieces = (*pieces[:-1], pieces[-1].rstrip()) if pieces else ()
    thoughts = split_words(f"thinking about: {user_text}") if reasoning else ()
    return Answer(pieces, calls, thoughts, truncated, prompt_words)


def split_words(text: str) -> tuple[str, ...]:
    """`text` as `Answer.pieces`: one word each, with its trailing space."""
    return tuple(re.findall(r"\S+\s*", text))


def _named_calls(user_text: str, tool_names: list[str], freeform: frozenset[str]) -> tuple[ToolCall, ...]:
    found = []
    for name in tool_names:
        match = re.search(rf"\bcall {re.escape(name)}(?![\w-])", user_text)
        if match:
            found.append((match.start(), name))
    return tuple(ToolCall(f"call_{n}", name, json.dumps({"input" if name in freeform else "q": user_text}))
                 for n, (_, name) in enumerate(sorted(found), 1))


def _last_user_text(messages: list[Json]) -> str:
    users = [message for message in messages if message.get("role") == "user"]
    return content_text(users[-1].get("content")) if users else ""


def _words(*texts: str | None) -> int:
    return sum(len((text or "").split()) for text in texts)


def _arguments_fragments(arguments: str) -> list[str]:
    """Two or three pieces, the way real streams split call arguments."""
    size = len(arguments)
    cuts = sorted({0, size // 3, 2 * size // 3, size})
    return [arguments[start:end] for start, end in zip(cuts, cuts[1:])]


# ---- chat completions


def chat_answer(body: Json, reasoning: bool = False) -> Answer:
    """Run the toy model on a chat request."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    last = messages[-1] if messages else {}
    tool_output = content_text(last.get("content")) if last.get("role") == "tool" else None
    tools = [] if body.get("tool_choice") == "none" else body.get("tools") or []
    functions = [tool["function"] for tool in tools if tool.get("type") == "function" and "function" in tool]
    names = [function["name"] for function in functions]
    freeform = frozenset(function["name"] for function in functions
                         if list((function.get("parameters") or {}).get("properties") or {}) == ["input"])
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    prompt_words = _words(*(content_text(message.get("content")) for message in messages))
    return think(_last_user_text(messages), tool_output, names, limit, prompt_words, reasoning, freeform)


def _finish_reason(answer: Answer) -> str:
    return "tool_calls" if answer.tool_calls else ("length" if answer.truncated else "stop")


def _chat_usage(answer: Answer) -> Json:
    completion = answer.output_words + len(answer.reasoning)
    return {
        "prompt_tokens": answer.prompt_words,
        "completion_tokens": completion,
        "total_tokens": answer.prompt_words + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": len(answer.reasoning)},
    }


def chat_completion(answer: Answer, completion_id: str, model: str, reasoning_key: str | None) -> Json:
    """A non-streamed `chat.completion`."""
    message: Json = {"role": "assistant", "content": answer.text if not answer.tool_calls else None, "refusal": None}
    if reasoning_key:
        message[reasoning_key] = answer.reasoning_text
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in answer.tool_calls
        ]
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(answer)}
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [choice],
        "usage": _chat_usage(answer),
    }


def chat_chunks(
    answer: Answer, completion_id: str, model: str, reasoning_key: str | None, include_usage: bool
) -> list[Frame]:
    """The frames of a streamed chat completion, `[DONE]` included."""
    base: Json = {"id": completion_id, "object": "chat.completion.chunk", "created": CREATED, "model": model}
    if include_usage:
        base["usage"] = None  # OpenAI sends "usage": null on every chunk but the last when usage is on

    def chunk(delta: Json, finish_reason: str | None = None) -> Json:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

    frames: list[Frame] = [chunk({"role": "assistant", "content": ""})]
    frames += [chunk({reasoning_key: piece}) for piece in answer.reasoning if reasoning_key]
    frames += [chunk({"content": piece}) for piece in answer.pieces]
    for index, call in enumerate(answer.tool_calls):
        # chat sends the tool-call id, type and name only on the first delta of each call
        function = {"name": call.name, "arguments": ""}
        opening = {"index": index, "id": call.call_id, "type": "function", "function": function}
        frames.append(chunk({"tool_calls": [opening]}))
        for fragment in _arguments_fragments(call.arguments):
            frames.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}))
    frames.append(chunk({}, _finish_reason(answer)))
    if include_usage:
        frames.append({**base, "choices": [], "usage": _chat_usage(answer)})
    frames.append("[DONE]")
    return frames


# ---- responses


def responses_answer(body: Json, reasoning: bool = False) -> Answer:
    """Run the toy model on a Responses request."""
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    items = [item for item in items or [] if isinstance(item, dict)]
    last = items[-1] if items else {}
    tool_output = content_text(last.get("output")) if last.get("type") == "function_call_output" else None
    tools = [] if body.get("tool_choice") == "none" else body.get("tools") or []
    names = [tool["name"] for tool in tools if tool.get("type") == "function" and "name" in tool]
    outputs = [content_text(item.get("output")) for item in items if item.get("type") == "function_call_output"]
    texts = [content_text(message.get("content")) for message in request_messages({"input": items})]
    prompt_words = _words(content_text(body.get("instructions")), *texts, *outputs)
    user_text = _last_user_text(request_messages({"input": items}))
    return think(user_text, tool_output, names, body.get("max_output_tokens"), prompt_words, reasoning)


def _response_items(answer: Answer, number: int, final: bool, reasoning_in: str | None = None) -> list[Json]:
    """Output items as `output_item.added` shows them (`final=False`) or as they end.

    With ``reasoning_in`` ("content" or "summary", see ``provider_quirks.RESPONSES_REASONING_QUIRKS``)
    the answer's reasoning comes first, as a reasoning item with its text in that field.
    """
    items = [_reasoning_item(answer, number, final, reasoning_in)] if reasoning_in and answer.reasoning else []
    return items + _answer_items(answer, number, final)


def _reasoning_item(answer: Answer, number: int, final: bool, reasoning_in: str) -> Json:
    item: Json = {"type": "reasoning", "id": f"rs_fake_{number}", "summary": []}
    if reasoning_in == "content":
        item["content"] = [{"type": "reasoning_text", "text": answer.reasoning_text}] if final else []
    elif final:
        item["summary"] = [_summary_text(answer.reasoning_text)]
    return item


def _summary_text(text: str) -> Json:
    return {"type": "summary_text", "text": text}


def _answer_items(answer: Answer, number: int, final: bool) -> list[Json]:
    if answer.tool_calls:
        return [
            {
                "type": "function_call",
                "id": f"fc_fake_{number}_{index}",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments if final else "",
                "status": "completed" if final else "in_progress",
            }
            for index, call in enumerate(answer.tool_calls, 1)
        ]
    # a message cut by max_output_tokens ends `incomplete`, like the response around it
    status = ("incomplete" if answer.truncated else "completed") if final else "in_progress"
    content = [_output_text(answer.text)] if final else []
    return [{"type": "message", "id": f"msg_fake_{number}", "role": "assistant", "status": status, "content": content}]


def _echo_tool(tool: Json) -> Json:
    """A request tool as the response echoes it: function tools gain `strict` (true by default in Responses)."""
    if not isinstance(tool, dict) or tool.get("type") != "function":
        return tool
    return {"description": None, "parameters": None, "strict": True, **tool}


def _output_text(text: str) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def response_object(
    body: Json, answer: Answer | None, number: int, model: str, reasoning_in: str | None = None
) -> Json:
    """A `response` object; `answer=None` gives the in-progress shell that opens a stream."""
    if answer is None:
        status, output, usage, incomplete = "in_progress", [], None, None
    else:
        status = "incomplete" if answer.truncated else "completed"
        output = _response_items(answer, number, True, reasoning_in)
        reasoning_tokens = len(answer.reasoning) if reasoning_in else 0
        output_tokens = answer.output_words + reasoning_tokens
        usage = {
            "input_tokens": answer.prompt_words,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": answer.prompt_words + output_tokens,
        }
        incomplete = {"reason": "max_output_tokens"} if answer.truncated else None
    return {
        "id": f"resp_fake_{number}",
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "completed_at": CREATED if status == "completed" else None,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": [_echo_tool(tool) for tool in body.get("tools") or []],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def response_events(
    body: Json, answer: Answer, number: int, model: str, reasoning_in: str | None = None
) -> list[Json]:
    """The official event sequence of a streamed response, `sequence_number` from 0."""
    events: list[Json] = [
        {"type": "response.created", "response": response_object(body, None, number, model)},
        {"type": "response.in_progress", "response": response_object(body, None, number, model)},
    ]
    added = _response_items(answer, number, False, reasoning_in)
    done = _response_items(answer, number, True, reasoning_in)
    for output_index, (opening, item) in enumerate(zip(added, done)):
        events.append({"type": "response.output_item.added", "output_index": output_index, "item": opening})
        where = {"item_id": item["id"], "output_index": output_index}
        if item["type"] == "message":
            events += _text_events(answer, where)
        elif item["type"] == "reasoning":
            events += _reasoning_events(answer, where, reasoning_in)
        else:
            events += [
                {"type": "response.function_call_arguments.delta", **where, "delta": fragment}
                for fragment in _arguments_fragments(item["arguments"])
            ]
            arguments = {"name": item["name"], "arguments": item["arguments"]}
            events.append({"type": "response.function_call_arguments.done", **where, **arguments})
        events.append({"type": "response.output_item.done", "output_index": output_index, "item": item})
    final = response_object(body, answer, number, model, reasoning_in)
    events.append({"type": f"response.{final['status']}", "response": final})
    return [{**event, "sequence_number": sequence_number} for sequence_number, event in enumerate(events)]


def _text_events(answer: Answer, where: Json) -> list[Json]:
    where = {**where, "content_index": 0}
    return [
        {"type": "response.content_part.added", **where, "part": _output_text("")},
        *({"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []} for piece in answer.pieces),
        {"type": "response.output_text.done", **where, "text": answer.text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": _output_text(answer.text)},
    ]


def _reasoning_events(answer: Answer, where: Json, reasoning_in: str | None) -> list[Json]:
    """Raw reasoning as `reasoning_text` deltas, or one summary part with `reasoning_summary_text` deltas."""
    text = answer.reasoning_text
    if reasoning_in == "content":
        where = {**where, "content_index": 0}
        return [
            *({"type": "response.reasoning_text.delta", **where, "delta": piece} for piece in answer.reasoning),
            {"type": "response.reasoning_text.done", **where, "text": text},
        ]
    where = {**where, "summary_index": 0}
    return [
        {"type": "response.reasoning_summary_part.added", **where, "part": _summary_text("")},
        *({"type": "response.reasoning_summary_text.delta", **where, "delta": piece} for piece in answer.reasoning),
        {"type": "response.reasoning_summary_text.done", **where, "text": text},
        {"type": "response.reasoning_summary_part.done", **where, "part": _summary_text(text)},
    ]
