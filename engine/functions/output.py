"""Functions over model output: text that arrives in several shapes, and item statuses."""

from __future__ import annotations

from ..context import Context
from ..types import Json
from .registry import Example, register

_TEXT_PARTS = ("text", "output_text", "input_text")


@register("text_of", examples=[
    Example(given="plain", expect="plain"),
    Example(given=[{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}],
            expect="ab"),
    Example(given=[{"type": "output_text", "text": "x"}, {"type": "refusal", "refusal": "no"}],
            expect="x"),
])
def text_of(content: Json, ctx: Context) -> Json:
    """The text of a content value: a string as it is, or the text parts of a list joined."""
    if content.__class__ is str:
        return content
    if content.__class__ is list:
        return "".join(part.get("text") or "" for part in content
                       if part.__class__ is dict and part.get("type") in _TEXT_PARTS)
    return None


@register("close_output_items", examples=[
    Example(given=[{"type": "message"}, {"type": "function_call"}],
            expect=[{"type": "message", "status": "completed"},
                    {"type": "function_call", "status": "completed"}]),
    Example(given=[{"type": "reasoning"}, {"type": "message"}], args={"last_status": "incomplete"},
            expect=[{"type": "reasoning", "status": "completed"},
                    {"type": "message", "status": "incomplete"}]),
])
def close_output_items(items: Json, ctx: Context, last_status: Json = "completed") -> Json:
    """Mark output items completed, except the last, which gets ``last_status``.

    When a response is incomplete, only its last item is cut short (Open Responses: an incomplete
    item must be the last one emitted).
    """
    for item in items:
        item["status"] = "completed"
    if items and last_status:
        items[-1]["status"] = last_status
    return items


@register("subtract", examples=[
    Example(given=120, args={"amount": 20}, expect=100),
    Example(given=120, args={"amount": None}, expect=120),
])
def subtract(value: Json, ctx: Context, amount: Json = None) -> Json:
    """The value less ``amount`` (no amount: the value itself); JMESPath has no arithmetic."""
    if isinstance(amount, (int, float)) and isinstance(value, (int, float)):
        return value - amount
    return value
