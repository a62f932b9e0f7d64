"""Functions that say what a conversion did with a value it does not forward.

A mapping that cannot carry a value says so: ``drop:`` with a reason for what is never forwarded
whatever the request holds, ``reject:`` for a 400. ``leave_out`` is the third way, for a value a
client sends that the upstream cannot use but that should not fail the request (a built-in tool
offered to a chat model): the value goes nowhere, and the conversion records what and why
(``Context.leave_out``), so the proxy can log it and name it in ``x-mapper-dropped``.

The same goes for what an answer holds that the client's API has no place for. A chat upstream that
ignores ``n`` answers with several choices, and a Response holds one (``only_choice_zero``); a
Responses upstream may answer with output items (an image generation call, an MCP approval
request) that a chat completion has no field for (``uncarried_output``). An answer with nothing
left to read becomes an error (``raise_upstream_error``), never an empty success.
"""

from __future__ import annotations

import functools

from ..context import Context
from ..errors import ConversionError, UpstreamError
from ..types import Json
from .registry import Example, register


@register("leave_out", examples=[
    Example(given={"type": "web_search"}, args={"what": "tools[web_search]",
                                                  "reason": "a chat upstream cannot run it"},
            expect=None),
])
def leave_out(value: Json, ctx: Context, what: Json = None, reason: Json = None) -> Json:
    """No value, and a note on the context of what was left out and why (for logs and headers)."""
    ctx.leave_out(str(what), str(reason))
    return None


def _index(choice: Json, position: int) -> Json:
    # a choice without an index (some providers send a single one bare) is counted by position
    index = choice.get("index") if choice.__class__ is dict else None
    return position if index is None else index


@register("only_choice_zero", examples=[
    Example(given={"choices": [{"index": 0, "delta": {"content": "a"}}]},
            expect={"choices": [{"index": 0, "delta": {"content": "a"}}]}),
    Example(given={"id": "c", "choices": [{"index": 1, "message": {"content": "b"}},
                                          {"index": 0, "message": {"content": "a"}}]},
            expect={"id": "c", "choices": [{"index": 0, "message": {"content": "a"}}]}),
    Example(given={"choices": [{"message": {"content": "a"}}, {"message": {"content": "b"}}]},
            expect={"choices": [{"message": {"content": "a"}}]}),
    Example(given={"choices": [{"index": 1, "delta": {"content": "b"}}]}, expect={"choices": []}),
    Example(given={"choices": [{"index": 1, "message": {"content": "b"}}]}, args={"required": True},
            raises="ConversionError"),
    Example(given={"choices": [], "usage": {"total_tokens": 3}},
            expect={"choices": [], "usage": {"total_tokens": 3}}),
])
def only_choice_zero(document: Json, ctx: Context, required: Json = False) -> Json:
    """A chat answer or stream chunk with only its choice 0; every other choice is noted as left out.

    A Response holds one answer, and the choice with index 0 is the one an upstream that honours
    ``n=1`` would have sent, wherever it stands in the list (an upstream that ignores ``n``
    interleaves its choices chunk by chunk, so any chunk's first choice may be another). A choice
    without an index counts by its position. With ``required``, a document whose choices hold no
    choice 0 is refused: it has no answer to give, and an empty one would stand in for it. The
    document itself is not changed.
    """
    choices = document.get("choices") if document.__class__ is dict else None
    if choices.__class__ is not list or not choices:
        return document
    if len(choices) == 1 and _index(choices[0], 0) == 0:
        return document  # the common case: one choice, choice 0
    kept = []
    for position, choice in enumerate(choices):
        index = _index(choice, position)
        if index == 0 and not kept:
            kept.append(choice)
        else:
            ctx.leave_out(f"choices[{index}]", "a Response holds one answer, the choice with index 0 "
                                               "(the upstream ignored n)")
    if required and not kept:
        raise ConversionError("the upstream's answer has no choice with index 0, the only one a "
                              "Response can hold", path=["choices"])
    return {**document, "choices": kept}


@register("uncarried_output", examples=[
    Example(given=[{"type": "image_generation_call"}, {"type": "message", "content": [
        {"type": "output_text", "text": "Here."}]}],
            args={"carried": ["message"], "answers": ["message"]}, expect=None),
    Example(given=[{"type": "image_generation_call"}, {"type": "mcp_list_tools"},
                   {"type": "message", "content": [{"type": "output_text", "text": ""}]}],
            args={"carried": ["message"], "answers": ["message"]},
            expect={"code": "bad_upstream_response", "message": (
                "the upstream answered only with output items that the client's API cannot carry "
                "(image_generation_call, mcp_list_tools): they come from tools that run on the "
                "upstream; call the upstream's own API to receive them")}),
    Example(given=[{"type": "shell_call"}, {"type": "function_call", "name": "f"}],
            args={"carried": ["function_call"], "answers": ["function_call"]}, expect=None),
    Example(given=[{"type": "reasoning"}], args={"carried": ["reasoning"], "answers": []},
            expect=None),
    Example(given=[{"type": "web_search_call"}, {"type": "function_call"}],
            args={"carried": "message function_call", "answers": "message function_call"},
            expect=None),
    Example(given=[{"type": ["odd"]}], args={"carried": "message", "answers": "message"},
            expect={"code": "bad_upstream_response", "message": (
                "the upstream answered only with output items that the client's API cannot carry "
                "(['odd']): they come from tools that run on the upstream; call the upstream's own "
                "API to receive them")}),
])
def uncarried_output(output: Json, ctx: Context, carried: Json, answers: Json = ()) -> Json:
    """Note output items of types not ``carried`` as left out; an error naming them if nothing answers.

    ``carried`` lists the item types the client's answer has a place for, ``answers`` those that
    hold something the client can read (each a list, or the names in one string separated by
    spaces). An item of an ``answers`` type with a ``content`` list needs a text or refusal in it
    (an empty message is no answer); one without ``content`` (a tool call, or a message a stream's
    terminal event lists bare) counts as it is. When some item had to be left out and none
    answers, the answer would be empty where the upstream gave content: the result is then an
    error object (``code``, ``message``) for the mapping to raise or stream; otherwise None.
    """
    if output.__class__ is not list:
        return None
    kept = _types(carried)
    types: list[str] = []
    for item in output:
        kind = item.get("type") if item.__class__ is dict else None
        kind = kind if kind.__class__ is str else str(kind)  # an odd type is still named, as text
        if kind not in kept and kind not in types:
            types.append(kind)
            ctx.leave_out(f"output[{kind}]", "an output item the client's API has no place for")
    if not types or _answered(output, _types(answers)):
        return None
    return {"code": "bad_upstream_response", "message": (
        f"the upstream answered only with output items that the client's API cannot carry "
        f"({', '.join(types)}): they come from tools that run on the upstream; call the upstream's "
        "own API to receive them")}


@functools.lru_cache(maxsize=64)
def _type_set(names: str) -> frozenset[str]:
    return frozenset(names.split())


def _types(names: Json) -> frozenset[str] | list:
    # a list, or the names in one string separated by spaces: a string literal reaches the
    # function as it is, where a list literal is copied for every call
    if names.__class__ is str:
        return _type_set(names)
    return names if names.__class__ is list else []


def _answered(output: list, answers: Json) -> bool:
    """Whether an item of an ``answers`` type holds something to read (see uncarried_output)."""
    for item in output:
        if item.__class__ is not dict or item.get("type").__class__ is not str \
                or item["type"] not in answers:
            continue
        content = item.get("content")
        if content is None:
            return True
        for part in content if content.__class__ is list else ():
            if part.__class__ is dict and (part.get("text") or part.get("refusal")):
                return True
    return False


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


_LOGPROBS = "message.output_text.logprobs"


@register("include_logprobs", examples=[
    Example(given=["message.output_text.logprobs"], expect=True),
    Example(given=["reasoning.encrypted_content"], expect=None),
    Example(given=[], expect=None),
])
def include_logprobs(include: Json, ctx: Context) -> Json:
    """True when ``include`` asks for output logprobs; its other values are noted as left out.

    A chat upstream can give logprobs; encrypted reasoning, search results, image URLs and the
    other things ``include`` may ask for exist only inside OpenAI's Responses API.
    """
    wanted = None
    for value in include if include.__class__ is list else ():
        if value == _LOGPROBS:
            wanted = True
        else:
            ctx.leave_out(f"include[{value}]", "something only OpenAI's Responses API can give")
    return wanted
