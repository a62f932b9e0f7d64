"""Functions over conversation histories: grouping items into chat turns, checking tool-call pairs.

Chat Completions and Responses cut a conversation differently. In chat, one assistant turn is one
message that may hold text, reasoning and several ``tool_calls``; in Responses the same turn is a run
of items (``reasoning``, ``message``, ``function_call``, ``function_call``). Splitting one batch of
tool calls into several assistant messages is what broke Codex's chat wire (openai/codex#8479) and
DeepSeek's thinking mode, so the grouping is done here, once, with look-behind.
"""

from __future__ import annotations

from ..context import Context
from ..errors import ConversionError
from ..types import Json
from .registry import Example, register


# tool outputs and the calls they answer (a chat tool message answers either kind)
_CALLS = frozenset({"function_call", "custom_tool_call"})
_OUTPUTS = {"function_call_output": "function_call", "custom_tool_call_output": "custom_tool_call"}


def _has(message: dict, key: str) -> bool:
    value = message.get(key)
    return value is not None and value != "" and value != []


def _absorbs(turn: dict, message: dict) -> bool:
    """Whether ``message`` continues the assistant ``turn`` before it rather than starting one."""
    if _has(message, "tool_calls") and not _has(message, "content"):
        return True  # tool calls join the text or reasoning (or calls) just before them
    only_reasoning = not _has(turn, "content") and not _has(turn, "tool_calls")
    return only_reasoning and (_has(message, "content") or _has(message, "tool_calls"))


def _merge(turn: dict, message: dict) -> dict:
    merged = dict(turn)
    for key, value in message.items():
        if key == "tool_calls":
            merged["tool_calls"] = list(turn.get("tool_calls") or []) + list(value or [])
        elif value is not None and not _has(merged, key):
            merged[key] = value
    return merged


@register("merge_assistant_turns", examples=[
    Example(
        given=[{"role": "user", "content": "hi"},
               {"role": "assistant", "content": "Let me look."},
               {"role": "assistant", "tool_calls": [{"id": "a"}]},
               {"role": "assistant", "tool_calls": [{"id": "b"}]},
               {"role": "tool", "tool_call_id": "a", "content": "1"},
               {"role": "tool", "tool_call_id": "b", "content": "2"}],
        expect=[{"role": "user", "content": "hi"},
                {"role": "assistant", "content": "Let me look.", "tool_calls": [{"id": "a"}, {"id": "b"}]},
                {"role": "tool", "tool_call_id": "a", "content": "1"},
                {"role": "tool", "tool_call_id": "b", "content": "2"}]),
    Example(
        given=[{"role": "assistant", "reasoning_content": "think"},
               {"role": "assistant", "content": "answer"},
               {"role": "assistant", "content": "second message"}],
        expect=[{"role": "assistant", "reasoning_content": "think", "content": "answer"},
                {"role": "assistant", "content": "second message"}]),
    Example(
        given=[{"role": "user", "content": "q"}, {"role": "assistant", "reasoning_content": "dangling"}],
        expect=[{"role": "user", "content": "q"}]),
    Example(
        given=[{"role": "assistant", "reasoning_content": "think"},
               {"role": "assistant", "content": "calling", "tool_calls": [{"id": "a"}]}],
        expect=[{"role": "assistant", "reasoning_content": "think", "content": "calling",
                 "tool_calls": [{"id": "a"}]}]),
])
def merge_assistant_turns(messages: Json, ctx: Context) -> Json:
    """Join consecutive assistant messages that form one chat turn: reasoning, text, then tool calls.

    A message with only tool calls joins the assistant message before it; a message with text joins
    one that holds only reasoning. Two text messages stay apart. Reasoning that no text or tool call
    follows is dropped: a chat turn cannot consist of reasoning alone.
    """
    if sum(1 for message in messages if message.get("role") == "assistant") == 0:
        return messages  # nothing to join (a first turn, a plain question)
    turns: list[dict] = []
    for message in messages:
        previous = turns[-1] if turns else None
        if (message.get("role") == "assistant" and previous is not None
                and previous.get("role") == "assistant" and _absorbs(previous, message)):
            turns[-1] = _merge(previous, message)
        else:
            turns.append(message)
    return [turn for turn in turns
            if turn.get("role") != "assistant" or _has(turn, "content") or _has(turn, "tool_calls")
            or _has(turn, "refusal")]


@register("check_function_call_outputs", examples=[
    Example(given=[{"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                   {"type": "function_call_output", "call_id": "c1", "output": "ok"}],
            expect=[{"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "c1", "output": "ok"}]),
    Example(given=[{"type": "function_call_output", "call_id": "nope", "output": "ok"}],
            raises="ConversionError"),
    Example(given=[{"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "P"},
                   {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"}],
            expect=[{"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "P"},
                    {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"}]),
    Example(given=[{"type": "custom_tool_call_output", "call_id": "c9", "output": "done"}],
            raises="ConversionError"),
    Example(given="just a string", expect="just a string"),
])
def check_function_call_outputs(items: Json, ctx: Context) -> Json:
    """Refuse a tool output (function or custom) whose call_id no earlier call in the input has.

    A chat upstream rejects a tool message that answers no tool call, with an error that does not
    say which item is wrong; this names it. The input passes through unchanged.
    """
    if items.__class__ is not list:
        return items
    calls: set[str] = set()
    for index, item in enumerate(items):
        if item.__class__ is not dict:
            continue
        kind = item.get("type")
        if kind in _CALLS:
            calls.add(item.get("call_id"))
        elif kind in _OUTPUTS and item.get("call_id") not in calls:
            raise ConversionError(
                f"{kind} answers call_id {item.get('call_id')!r}, but no earlier "
                f"{_OUTPUTS[kind]} in the input has that call_id",
                path=[index, "call_id"])
    return items
