"""Functions for custom (freeform) tools in front of a chat upstream (``openai-chat``).

A Responses ``custom`` tool takes free text, not JSON: Codex's ``apply_patch`` is one, and its input
is a patch. Chat upstreams (vLLM, DeepSeek, Ollama, ...) know only function tools, so the mapping
sends each custom tool as a function with one string parameter, ``input``, and turns the calls of
those functions back into ``custom_tool_call`` items whose ``input`` is that string, unwrapped.
Forwarding the JSON wrapper as the input is the bug peers ship (copilot-api#242: Codex then fails
with "apply_patch invoked with incompatible payload").

Which calls are custom is known only from the client's request: a chat answer names a function,
and the function stands for a custom tool when the request has a custom tool of that name
(``engine.functions.tool_names`` reads the names back).
"""

from __future__ import annotations

import orjson

from ..context import Context
from ..types import Json
from .registry import Example, register

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
