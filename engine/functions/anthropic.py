"""Functions for an Anthropic Messages client in front of a chat upstream (``anthropic-chat``).

Most of that mapping is rules; these are the steps that need look-behind, grouping or a secret:

* A Messages user turn puts its ``tool_result`` blocks first and its own text and images after;
  chat answers each call with a ``tool`` message of text, which must come straight after the
  assistant turn. So a user turn becomes its results (each a tool message) and one user message
  with the rest; images a tool returned (Claude Code's Read tool on a picture) cannot ride in a
  tool message, so they go into that user message, named after their call.
* Thinking blocks carry a signature. mapper signs the thinking it makes from a chat upstream's
  ``reasoning_content`` (``engine.signing``) and, when a block comes back, passes its text upstream
  only if the signature is its own.
* Tool arguments arrive as a JSON string; a ``tool_use`` block's ``input`` is an object.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import orjson

from .. import signing
from ..context import Context
from ..types import Json
from .registry import Example, register

_SIGNED = signing.sign("Think.")


@register("group_user_turn", examples=[
    Example(given=[{"role": "tool", "tool_call_id": "t1", "content": "ok"},
                   {"type": "text", "text": "(attached to the result of tool call t1)"},
                   {"type": "image_url", "image_url": {"url": "https://x/p.png"}},
                   {"type": "text", "text": "go on"}],
            expect=[{"role": "tool", "tool_call_id": "t1", "content": "ok"},
                    {"role": "user", "content": [
                        {"type": "text", "text": "(attached to the result of tool call t1)"},
                        {"type": "image_url", "image_url": {"url": "https://x/p.png"}},
                        {"type": "text", "text": "go on"}]}]),
    Example(given=[{"role": "tool", "tool_call_id": "t1", "content": "ok"}],
            expect=[{"role": "tool", "tool_call_id": "t1", "content": "ok"}]),
])
def group_user_turn(items: Json, ctx: Context) -> Json:
    """A user turn's converted blocks as chat messages: its tool messages, then one user message.

    The blocks arrive converted one by one (a tool result is a tool message, any other block a
    content part); chat wants the tool messages straight after the assistant's calls, and the
    turn's own content (images a tool returned first, as its results come first) after them.
    """
    messages = [item for item in items if item.__class__ is dict and "role" in item]
    parts = [item for item in items if item.__class__ is dict and "role" not in item]
    if parts:
        messages.append({"role": "user", "content": parts})
    return messages


@register("group_user_items", examples=[
    Example(given=[{"type": "function_call_output", "call_id": "t1", "output": "ok"},
                   {"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}],
            expect=[{"type": "function_call_output", "call_id": "t1", "output": "ok"},
                    {"type": "message", "role": "user", "content": [
                        {"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]}]),
])
def group_user_items(items: Json, ctx: Context) -> Json:
    """A user turn's converted blocks as Responses input items, content parts grouped in messages.

    Each tool result stays an item of its own; every run of content parts between them becomes
    one user message.
    """
    grouped: list[Json] = []
    parts: list[Json] = []
    for item in items if items.__class__ is list else ():
        if item.__class__ is dict and item.get("type") == "function_call_output":
            if parts:
                grouped.append({"type": "message", "role": "user", "content": parts})
                parts = []
            grouped.append(item)
        elif item is not None:
            parts.append(item)
    if parts:
        grouped.append({"type": "message", "role": "user", "content": parts})
    return grouped


@register("tool_result_text", examples=[
    Example(given={"type": "tool_result", "tool_use_id": "t", "content": "hi"}, expect="hi"),
    Example(given={"type": "tool_result", "tool_use_id": "t", "is_error": True,
                   "content": [{"type": "text", "text": "no such file"}]},
            expect="Error: no such file"),
    Example(given={"type": "tool_result", "tool_use_id": "t"}, expect=""),
])
def tool_result_text(block: Json, ctx: Context) -> Json:
    """A tool result as the text of a chat tool message; a failed call's text says it failed."""
    content = block.get("content")
    if content.__class__ is list:
        texts = []
        for part in content:
            if part.__class__ is not dict:
                continue
            if part.get("type") == "text":
                texts.append(part.get("text") or "")
            elif part.get("type") == "search_result":
                texts.append(_search_result_text(part))
        content = "\n\n".join(texts)
    text = content if content.__class__ is str else ""
    return f"Error: {text}" if block.get("is_error") is True else text


def _search_result_text(part: dict) -> str:
    body = "\n".join(item.get("text") or "" for item in part.get("content") or ()
                     if item.__class__ is dict)
    return f"{part.get('title') or ''} ({part.get('source') or ''})\n{body}".strip()


@register("search_result_text", examples=[
    Example(given={"type": "search_result", "title": "T", "source": "https://s",
                   "content": [{"type": "text", "text": "body"}]}, expect="T (https://s)\nbody"),
])
def search_result_text(part: Json, ctx: Context) -> Json:
    """A search result block as text: its title, its source and its content."""
    return _search_result_text(part)


@register("thinking_signature", examples=[
    Example(given="Think.", expect=_SIGNED),
])
def thinking_signature(text: Json, ctx: Context) -> Json:
    """The signature mapper gives a thinking block's text (an HMAC under this deployment's key)."""
    return signing.sign(text if text.__class__ is str else "")


@register("verified_thinking", examples=[
    Example(given=[{"type": "thinking", "thinking": "Think.", "signature": _SIGNED},
                   {"type": "text", "text": "answer"}], expect="Think."),
    Example(given=[{"type": "thinking", "thinking": "Invented.", "signature": "sig"}], expect=None),
    Example(given=[{"type": "redacted_thinking", "data": "EncryptedByAnthropic"}], expect=None),
])
def verified_thinking(blocks: Json, ctx: Context) -> Json:
    """The text of the thinking blocks mapper signed, joined; other thinking is left out and noted.

    A block whose signature is not this deployment's came from elsewhere (another model, an edit,
    Anthropic's own API) and says nothing the upstream made; ``redacted_thinking`` is encrypted.
    """
    texts = []
    for block in blocks if blocks.__class__ is list else ():
        kind = block.get("type") if block.__class__ is dict else None
        if kind == "thinking":
            if signing.verify(block.get("thinking") or "", block.get("signature")):
                texts.append(block.get("thinking") or "")
            else:
                ctx.leave_out("thinking", "a thinking block whose signature is not this "
                                          "deployment's (so not the upstream's own reasoning)")
        elif kind == "redacted_thinking":
            ctx.leave_out("redacted_thinking", "thinking encrypted by Anthropic, which no other "
                                               "upstream can read")
    return "".join(texts) or None


@register("tool_input", examples=[
    Example(given='{"command": "ls"}', expect={"command": "ls"}),
    Example(given="", expect={}),
    Example(given="[1]", expect={}),
])
def tool_input(arguments: Json, ctx: Context) -> Json:
    """A tool call's JSON arguments as a ``tool_use`` block's ``input`` object.

    Arguments that are not a JSON object (a model that wrote broken JSON) become ``{}`` and are
    noted as left out, rather than failing the whole answer.
    """
    if arguments.__class__ is dict:
        return arguments
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        value = None
    if value.__class__ is dict:
        return value
    ctx.leave_out("tool_use.input", "tool arguments that are not a JSON object")
    return {}


@register("effort_for_budget", examples=[
    Example(given=2048, args={"limits": {"low": 4096, "medium": 16384, "high": None}},
            expect="low"),
    Example(given=16384, args={"limits": {"low": 4096, "medium": 16384, "high": None}},
            expect="high"),
])
def effort_for_budget(budget: Json, ctx: Context, limits: Json = None) -> Json:
    """The first effort of ``limits`` (effort -> budget it stays under; null: any) the budget fits."""
    if not isinstance(budget, (int, float)) or not isinstance(limits, Mapping):
        return None
    for effort, below in limits.items():
        if below is None or budget < below:
            return effort
    return None


@register("at_most", examples=[
    Example(given=32000, args={"limit": 8192}, expect=8192),
    Example(given=1024, args={"limit": 8192}, expect=1024),
    Example(given=1024, args={"limit": None}, expect=1024),
])
def at_most(value: Json, ctx: Context, limit: Json = None) -> Json:
    """The value, lowered to ``limit`` when a limit is set."""
    if isinstance(limit, (int, float)) and isinstance(value, (int, float)) and value > limit:
        return limit
    return value


@register("estimate_tokens", examples=[
    Example(given={"messages": [{"role": "user", "content": "Hello, world"}]}, expect=4),
    Example(given={}, expect=1),
])
def estimate_tokens(request: Json, ctx: Context) -> Json:
    """An estimate of a request's input tokens: one per four characters of its text, at least one.

    mapper cannot run the upstream's tokenizer; clients (Claude Code) use the count to decide when
    to compact a conversation, for which an estimate of the right size is enough.
    """
    parts = [request.get(name) for name in ("system", "messages", "tools")] \
        if request.__class__ is dict else []
    characters = sum(_characters(part) for part in parts)
    return max(1, math.ceil(characters / 4))


def _characters(value: Json) -> int:
    """The characters of text a request part holds (strings, and JSON for tool schemas)."""
    if value.__class__ is str:
        return len(value)
    if value.__class__ is list:
        return sum(_characters(item) for item in value)
    if value.__class__ is dict:
        if value.get("type") in ("image", "document") and "source" in value:
            return 1600 * 4  # an image or a page costs about 1,600 tokens in Anthropic's count
        return sum(_characters(item) for key, item in value.items()
                   if key not in ("type", "cache_control", "signature", "id", "tool_use_id"))
    return 0
