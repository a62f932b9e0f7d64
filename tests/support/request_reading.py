"""Read the messages and their text out of a request body, for the fake upstream's quirks and toy model.

Chat puts the conversation in `messages`, Responses in `input` (a string or a list of items), but the
message-like entries have the same `role` and `content` in both, so one reader serves both APIs.
"""

from __future__ import annotations

from typing import Any

Json = Any


def request_messages(body: Json, *, tool_outputs: bool = False) -> list[Json]:
    """Chat `messages`, or the message-like items of a Responses `input`.

    With ``tool_outputs``, a Responses `function_call_output` item is read as the chat `tool`
    message it stands for (its `output` as the content).
    """
    if isinstance(body.get("messages"), list):
        return [m for m in body["messages"] if isinstance(m, dict)]
    items = body.get("input")
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    messages = []
    for item in items or []:
        if isinstance(item, dict) and "role" in item:
            messages.append(item)
        elif tool_outputs and isinstance(item, dict) and item.get("type") == "function_call_output":
            messages.append({"role": "tool", "content": item.get("output")})
    return messages


def content_parts(content: Json) -> list[Json]:
    """The parts of a list content (entries that are not objects skipped); none for a string content."""
    if isinstance(content, list):
        return [part for part in content if isinstance(part, dict)]
    return []


def content_text(content: Json) -> str:
    """The text of a message content: a string, or its text parts joined by a space."""
    if isinstance(content, str):
        return content
    text_types = ("text", "input_text", "output_text")
    texts = [part.get("text", "") for part in content_parts(content) if part.get("type") in text_types]
    return " ".join(texts)
