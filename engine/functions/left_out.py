"""Functions for what a conversion leaves out: nothing goes missing without a word.

Two APIs never hold exactly the same things. A chat upstream that ignores ``n`` answers with several
choices, and a Response holds one answer; a Responses upstream may answer with output items (an
image generation call, an MCP approval request) that a chat completion has no field for. These
functions keep what the client's API can hold, note each part they leave out in the conversion's
``Context.left_out`` (the proxy names them in its ``x-mapper-dropped`` header and its log line), and
turn an answer with nothing left to read into an error instead of an empty success.
"""

from __future__ import annotations

from ..context import Context
from ..errors import ConversionError, UpstreamError
from ..types import Json
from .registry import Example, register


@register("leave_out", examples=[
    Example(given="earlier reasoning", args={"what": "messages[].reasoning_content"}, expect=None),
])
def leave_out(value: Json, ctx: Context, what: Json) -> Json:
    """Note that the value, named ``what``, is left out of the output on purpose; gives no value."""
    ctx.leave_out(str(what))
    return None


def _index(choice: Json, position: int) -> Json:
    # a choice without an index (some providers send a single one bare) is counted by position
    index = choice.get("index") if choice.__class__ is dict else None
    return position if index is None else index


@register("choice_zero", examples=[
    Example(given=[{"index": 0, "message": {"content": "a"}}],
            expect={"index": 0, "message": {"content": "a"}}),
    Example(given=[{"index": 1, "message": {"content": "b"}}, {"index": 0, "message": {"content": "a"}}],
            expect={"index": 0, "message": {"content": "a"}}),
    Example(given=[{"message": {"content": "a"}}], expect={"message": {"content": "a"}}),
    Example(given=[], expect=None),
    Example(given=[{"index": 1, "message": {"content": "b"}}], raises="ConversionError"),
])
def choice_zero(choices: Json, ctx: Context) -> Json:
    """The choice with index 0 of a chat answer; every other choice is noted as left out.

    A Response holds one answer, and the choice with index 0 is the one an upstream that honours
    ``n=1`` would have sent, wherever it stands in the list. An answer whose choices all have other
    indexes has none to give, which is an error rather than an empty answer.
    """
    if choices.__class__ is not list:
        return None
    found = None
    for position, choice in enumerate(choices):
        index = _index(choice, position)
        if index == 0 and found is None:
            found = choice
        else:
            ctx.leave_out(f"choices[{index}]")
    if found is None and choices:
        raise ConversionError("the upstream's answer has no choice with index 0, the only one a "
                              "Response can hold")
    return found


@register("choice_zero_chunk", examples=[
    Example(given={"choices": [{"index": 0, "delta": {"content": "a"}}]},
            expect={"choices": [{"index": 0, "delta": {"content": "a"}}]}),
    Example(given={"id": "c", "choices": [{"index": 1, "delta": {"content": "b"}}]},
            expect={"id": "c", "choices": []}),
    Example(given={"choices": [{"index": 0, "delta": {"content": "a"}},
                               {"index": 1, "delta": {"content": "b"}}]},
            expect={"choices": [{"index": 0, "delta": {"content": "a"}}]}),
    Example(given={"choices": [], "usage": {"total_tokens": 3}},
            expect={"choices": [], "usage": {"total_tokens": 3}}),
])
def choice_zero_chunk(chunk: Json, ctx: Context) -> Json:
    """A chat stream chunk with only its choice 0; deltas of other choices are noted as left out.

    An upstream that ignores ``n`` interleaves its choices chunk by chunk, and each chunk's first
    choice may be any of them; only choice 0 may feed a Response. The chunk itself is not changed.
    """
    choices = chunk.get("choices") if chunk.__class__ is dict else None
    if choices.__class__ is not list or not choices:
        return chunk
    if len(choices) == 1 and _index(choices[0], 0) == 0:
        return chunk  # the common case: one choice, choice 0
    kept = []
    for position, choice in enumerate(choices):
        index = _index(choice, position)
        if index == 0:
            kept.append(choice)
        else:
            ctx.leave_out(f"choices[{index}]")
    return {**chunk, "choices": kept}


@register("uncarried_output", examples=[
    Example(given=[{"type": "image_generation_call"}, {"type": "message"}],
            args={"carried": ["message"], "answered": True}, expect=None),
    Example(given=[{"type": "image_generation_call"}, {"type": "mcp_list_tools"}],
            args={"carried": ["message"], "answered": False},
            expect={"code": "bad_upstream_response", "message": (
                "the upstream answered only with output items that the client's API cannot carry "
                "(image_generation_call, mcp_list_tools): they come from tools that run on the "
                "upstream; call the upstream's own API to receive them")}),
    Example(given=[{"type": "reasoning"}], args={"carried": ["message", "reasoning"], "answered": False},
            expect=None),
])
def uncarried_output(output: Json, ctx: Context, carried: Json, answered: Json = False) -> Json:
    """Note output items of types not ``carried`` as left out; an error naming them if nothing ``answered``.

    ``carried`` lists the item types the client's answer has a place for. When some item had to be
    left out and ``answered`` says that no item holds anything the client can read (text, a
    refusal, a tool call), the answer would be empty where the upstream gave content: the result is
    then an error object (``code``, ``message``) for the mapping to raise or stream; otherwise None.
    """
    if output.__class__ is not list:
        return None
    kept = carried if carried.__class__ is list else ()
    types: list[str] = []
    for position, item in enumerate(output):
        kind = item.get("type") if item.__class__ is dict else None
        if kind not in kept:
            ctx.leave_out(f"output[{position}]:{kind}")
            if str(kind) not in types:
                types.append(str(kind))
    if not types or answered:
        return None
    return {"code": "bad_upstream_response", "message": (
        f"the upstream answered only with output items that the client's API cannot carry "
        f"({', '.join(types)}): they come from tools that run on the upstream; call the upstream's "
        "own API to receive them")}


@register("raise_upstream_error", examples=[
    Example(given={"code": "bad_upstream_response", "message": "nothing to read"},
            raises="UpstreamError"),
])
def raise_upstream_error(error: Json, ctx: Context, status: Json = 502) -> Json:
    """Raise an error object (``code``, ``message``) as an UpstreamError with HTTP ``status``."""
    error = error if error.__class__ is dict else {"message": str(error)}
    code = str(error.get("code") or "server_error")
    message = str(error.get("message") or "the upstream's answer cannot be converted")
    raise UpstreamError(message, status=int(status), error_type=code, error_code=code)
