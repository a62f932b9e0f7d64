"""Functions for custom (freeform) tools in front of a chat upstream (``openai-chat``).

A Responses ``custom`` tool takes free text, not JSON: Codex's ``apply_patch`` is one, and its input
is a patch. Chat upstreams (vLLM, DeepSeek, Ollama, ...) know only function tools, so the mapping
sends each custom tool as a function with one string parameter, ``input``, and turns the calls of
those functions back into ``custom_tool_call`` items whose ``input`` is that string, unwrapped.
Forwarding the JSON wrapper as the input is the bug peers ship (copilot-api#242: Codex then fails
with "apply_patch invoked with incompatible payload").

Which calls are custom is known only from the client's request (``ctx.request``): a chat answer
names a function, and the function stands for a custom tool when the request has a custom tool of
that name.
"""

from __future__ import annotations

import orjson

from ..context import Context
from ..types import Json
from .registry import Example, register

_REQUEST = {"tools": [{"type": "custom", "name": "apply_patch"},
                      {"type": "function", "name": "get_weather"}]}


def _custom_names(ctx: Context) -> frozenset[str]:
    request = ctx.request
    tools = request.get("tools") if request.__class__ is dict else None
    if tools.__class__ is not list:
        return frozenset()
    return frozenset(tool.get("name") for tool in tools
                     if tool.__class__ is dict and tool.get("type") == "custom")


@register("custom_tool_input", examples=[
    Example(given='{"input": "*** Begin Patch\\n*** End Patch"}',
            expect="*** Begin Patch\n*** End Patch"),
    Example(given='"just a string"', expect="just a string"),
    Example(given="*** Begin Patch", expect="*** Begin Patch"),
    Example(given='{"patch": "x"}', expect='{"patch": "x"}'),
    Example(given="", expect=""),
])
def custom_tool_input(arguments: Json, ctx: Context) -> Json:
    """The free text of a custom tool's call, from the arguments of the function that stands for it.

    ``{"input": text}`` gives the text; a JSON string gives itself. Anything else (a model that
    wrote the text without the wrapper, or another shape) is passed on as it came, so that the
    client's tool reports what is wrong with it rather than mapper guessing.
    """
    if arguments.__class__ is not str:
        return arguments
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    if value.__class__ is dict and len(value) == 1 and value.get("input").__class__ is str:
        return value["input"]
    if value.__class__ is str:
        return value
    return arguments


@register("is_custom_tool", examples=[
    Example(given="apply_patch", expect=True, context={"request": _REQUEST}),
    Example(given="get_weather", expect=False, context={"request": _REQUEST}),
    Example(given="apply_patch", expect=False),
])
def is_custom_tool(name: Json, ctx: Context) -> Json:
    """Whether ``name`` is a custom tool of the client's request (its calls become custom calls)."""
    return name in _custom_names(ctx)


@register("native_custom_calls", examples=[
    Example(
        given=[{"id": "c1", "type": "function",
                "function": {"name": "apply_patch", "arguments": '{"input": "P"}'}},
               {"id": "c2", "type": "function",
                "function": {"name": "get_weather", "arguments": "{}"}}],
        expect=[{"id": "c1", "type": "custom", "custom": {"name": "apply_patch", "input": "P"}},
                {"id": "c2", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{}"}}],
        context={"request": _REQUEST}),
])
def native_custom_calls(tool_calls: Json, ctx: Context) -> Json:
    """Chat tool calls with each call of a custom tool's function written as chat's custom call.

    An upstream that supports custom tools natively already answers ``{type: custom, custom:
    {name, input}}``; after this, the mapping handles one shape for both.
    """
    if tool_calls.__class__ is not list:
        return tool_calls
    names = _custom_names(ctx)
    if not names:
        return tool_calls
    calls = []
    for call in tool_calls:
        function = call.get("function") if call.__class__ is dict else None
        if function.__class__ is dict and call.get("type", "function") == "function" \
                and function.get("name") in names:
            call = {**{key: value for key, value in call.items() if key != "function"},
                    "type": "custom",
                    "custom": {"name": function["name"],
                               "input": custom_tool_input(function.get("arguments") or "", ctx)}}
        calls.append(call)
    return calls
