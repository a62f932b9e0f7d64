"""Functions for provider overlays: moving instruction text where an upstream can take it.

``instructions`` and ``system``/``developer`` messages become chat ``system`` (or ``developer``)
messages in the base mapping. Some upstreams cannot take them there: early open-model servers refuse
the ``system`` role outright, and the chat templates of several open models (Qwen3.5, Gemma) raise
"System message must be at the beginning." for any system message that is not the first. Where the
text goes depends on the whole message list (which user message comes next, where the first message
is), so it is done here, once, over the finished list: the overlays run these functions after
``merge_assistant_turns`` in ``maps.finish_messages``.

Text is never dropped: every instruction survives, in the order it was written, joined by a blank
line.
"""

from __future__ import annotations

from ..context import Context
from ..types import Json
from .registry import Example, register

INSTRUCTION_ROLES = ("system", "developer")
_SEPARATOR = "\n\n"


def _text(content: Json) -> str:
    """The text of an instruction's content: a string, or its text parts joined."""
    if content.__class__ is str:
        return content
    if content.__class__ is list:
        return "".join(part.get("text") or "" for part in content
                       if part.__class__ is dict and part.get("type") == "text")
    return ""


def _prepend(text: str, content: Json) -> Json:
    """User content with ``text`` in front: joined to a string, or as a first text part."""
    if content.__class__ is list:
        return [{"type": "text", "text": text}, *content]
    if content is None or content == "":
        return text
    return f"{text}{_SEPARATOR}{content}"


def _is_instruction(message: Json) -> bool:
    return message.__class__ is dict and message.get("role") in INSTRUCTION_ROLES


@register("fold_system_into_user", examples=[
    Example(given=[{"role": "system", "content": "Be brief."},
                   {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                   {"role": "user", "content": "Hello"}],
            expect=[{"role": "user", "content": "Be brief.\n\nUse French.\n\nHello"}]),
    Example(given=[{"role": "system", "content": "Be brief."},
                   {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                                {"type": "image_url", "image_url": {"url": "data:,"}}]}],
            expect=[{"role": "user", "content": [{"type": "text", "text": "Be brief."},
                                                 {"type": "text", "text": "What is this?"},
                                                 {"type": "image_url", "image_url": {"url": "data:,"}}]}]),
    Example(given=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                   {"role": "system", "content": "Now answer in French."}],
            expect=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "Now answer in French."}]),
])
def fold_system_into_user(messages: Json, ctx: Context) -> Json:
    """Move system and developer text into the next user message, for upstreams without a system role.

    Consecutive instructions are joined and put in front of the next user message's text; text
    after the last user message becomes a user message of its own, so nothing is lost.
    """
    if messages.__class__ is not list:
        return messages
    out: list[Json] = []
    pending: list[str] = []
    for message in messages:
        if _is_instruction(message):
            text = _text(message.get("content"))
            if text:
                pending.append(text)
            continue
        if pending and message.__class__ is dict and message.get("role") == "user":
            message = {**message, "content": _prepend(_SEPARATOR.join(pending), message.get("content"))}
            pending = []
        out.append(message)
    if pending:
        out.append({"role": "user", "content": _SEPARATOR.join(pending)})
    return out


@register("hoist_system_messages", examples=[
    Example(given=[{"role": "system", "content": "Be brief."},
                   {"role": "system", "content": [{"type": "text", "text": "Sandbox: read-only."}]},
                   {"role": "user", "content": "Hello"}],
            expect=[{"role": "system", "content": "Be brief.\n\nSandbox: read-only."},
                    {"role": "user", "content": "Hello"}]),
    Example(given=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                   {"role": "developer", "content": "Now answer in French."},
                   {"role": "user", "content": "c"}],
            expect=[{"role": "system", "content": "Now answer in French."},
                    {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "c"}]),
    Example(given=[{"role": "user", "content": "no instructions"}],
            expect=[{"role": "user", "content": "no instructions"}]),
])
def hoist_system_messages(messages: Json, ctx: Context) -> Json:
    """Join every system and developer message into one leading system message, in order.

    For chat templates that accept a system message only as the first message; the text of later
    instructions moves to the front, which keeps every word but not its position.
    """
    if messages.__class__ is not list:
        return messages
    texts = [text for message in messages if _is_instruction(message)
             if (text := _text(message.get("content")))]
    rest = [message for message in messages if not _is_instruction(message)]
    if not texts:
        return rest
    return [{"role": "system", "content": _SEPARATOR.join(texts)}, *rest]
