"""Functions for a Chat Completions client in front of a Responses upstream (``openai-responses``).

A chat history says which call a tool result answers only by id, and the legacy function-calling
history (an assistant ``function_call`` answered by a ``function`` message) not even that. A Responses
input needs each result typed after its call (``function_call_output`` for a function,
``custom_tool_call_output`` for a custom tool) and tied to it by ``call_id``. Working that out needs
look-behind over the whole history, so it is done here, once, before the mapping converts messages
one at a time.

The other functions raise the error of a Response that did not finish (a chat completion has no
way to carry a failed generation, so the client must get an error instead), and turn a Response's
citations into chat annotations, whose indexes count in the one text a chat message holds.
"""

from __future__ import annotations

from ..context import Context
from ..errors import ConversionError, UpstreamError
from ..types import Json
from .registry import Example, register


def _legacy_call_id(index: int) -> str:
    # derived from the position, so the same history always gives the same input (prompt caching)
    return f"call_legacy_{index}"


@register("pair_tool_results", examples=[
    Example(
        given=[{"role": "user", "content": "weather?"},
               {"role": "assistant", "tool_calls": [
                   {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                   {"id": "b", "type": "custom", "custom": {"name": "g", "input": "x"}}]},
               {"role": "tool", "tool_call_id": "a", "content": "1"},
               {"role": "tool", "tool_call_id": "b", "content": "2"}],
        expect=[{"role": "user", "content": "weather?"},
                {"role": "assistant", "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                    {"id": "b", "type": "custom", "custom": {"name": "g", "input": "x"}}]},
                {"role": "tool", "tool_call_id": "a", "content": "1", "call_type": "function"},
                {"role": "tool", "tool_call_id": "b", "content": "2", "call_type": "custom"}]),
    Example(
        given=[{"role": "user", "content": "weather?"},
               {"role": "assistant", "content": None,
                "function_call": {"name": "f", "arguments": "{}"}},
               {"role": "function", "name": "f", "content": "sunny"}],
        expect=[{"role": "user", "content": "weather?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_legacy_1", "type": "function",
                     "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_legacy_1", "content": "sunny",
                 "call_type": "function"}]),
    Example(given=[{"role": "tool", "tool_call_id": "nope", "content": "1"}], raises="ConversionError"),
    Example(given=[{"role": "function", "name": "f", "content": "1"}], raises="ConversionError"),
])
def pair_tool_results(messages: Json, ctx: Context) -> Json:
    """Pair every tool result with the earlier call it answers, and mark it with that call's type.

    A ``tool`` message gets ``call_type`` (``function`` or ``custom``) from the assistant tool call
    whose id it names. Legacy history is rewritten in the same walk: an assistant ``function_call``
    becomes one tool call with an id derived from its position, and the ``function`` message after it
    becomes a ``tool`` message answering that id. A result that answers no earlier call is refused,
    with its path, because the upstream would refuse it with a path into the converted input.
    The messages are not changed in place.
    """
    if messages.__class__ is not list:
        return messages
    call_types: dict[str, str] = {}
    legacy_call: str | None = None  # the legacy function_call still waiting for its answer
    paired: list[Json] = []
    for index, message in enumerate(messages):
        if message.__class__ is not dict:
            paired.append(message)
            continue
        role = message.get("role")
        if role == "assistant":
            message, legacy_call = _assistant(message, index, legacy_call)
            for call in message.get("tool_calls") or ():
                if call.__class__ is dict and call.get("id") is not None:
                    call_types[call["id"]] = call.get("type") or "function"
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in call_types:
                raise ConversionError(
                    f"this tool message answers tool_call_id {call_id!r}, but no earlier assistant "
                    "message has a tool call with that id", path=[index, "tool_call_id"])
            message = {**message, "call_type": call_types[call_id]}
        elif role == "function":
            if legacy_call is None:
                raise ConversionError(
                    "this function message answers no earlier assistant function_call; each "
                    "function message must follow the function_call it answers", path=[index])
            message = {"role": "tool", "tool_call_id": legacy_call,
                       "content": message.get("content"), "call_type": "function"}
            legacy_call = None
        paired.append(message)
    return paired


def _assistant(message: dict, index: int, legacy_call: str | None) -> tuple[dict, str | None]:
    """An assistant message with its legacy ``function_call`` turned into a tool call."""
    function_call = message.get("function_call")
    if function_call.__class__ is not dict:
        return message, legacy_call
    call_id = _legacy_call_id(index)
    call = {"id": call_id, "type": "function",
            "function": {"name": function_call.get("name"),
                         "arguments": function_call.get("arguments")}}
    rewritten = {key: value for key, value in message.items() if key != "function_call"}
    rewritten["tool_calls"] = list(message.get("tool_calls") or []) + [call]
    return rewritten, call_id


@register("raise_response_error", examples=[
    Example(given={"status": "failed", "error": {"code": "server_error", "message": "boom"}},
            args={"status": 500, "error_type": "server_error"}, raises="UpstreamError"),
    Example(given={"status": "cancelled", "error": None}, raises="UpstreamError"),
])
def raise_response_error(response: Json, ctx: Context, status: Json = 502,
                         error_type: Json = "server_error") -> Json:
    """Raise the error of a Response that did not finish as an UpstreamError with an OpenAI error body.

    A chat completion cannot say that generation failed, so the client gets the error the upstream
    reported, with ``status`` as the HTTP status. The mapping decides which statuses count as
    unfinished and which status and type each error code gets.
    """
    error = response.get("error") if response.__class__ is dict else None
    error = error if error.__class__ is dict else {}
    state = response.get("status") if response.__class__ is dict else None
    message = error.get("message") or f"the upstream response ended with status {state!r}"
    code = error.get("code")
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    raise UpstreamError(f"the upstream response {state}: {message}", status=int(status),
                        body=body, error_type=str(error_type))


@register("chat_annotations", examples=[
    Example(
        given=[{"type": "message", "content": [
            {"type": "output_text", "text": "Hello. ", "annotations": []},
            {"type": "output_text", "text": "News here.", "annotations": [
                {"type": "url_citation", "url": "https://example.com/", "title": "Example",
                 "start_index": 0, "end_index": 4}]}]}],
        expect=[{"type": "url_citation", "url_citation": {
            "url": "https://example.com/", "title": "Example", "start_index": 7, "end_index": 11}}]),
    Example(given=[{"type": "message", "content": [{"type": "output_text", "text": "x", "annotations": [
        {"type": "file_citation", "file_id": "file_1", "filename": "a.pdf", "index": 0}]}]}],
        expect=None),
    Example(given=[{"type": "reasoning", "summary": []}], expect=None),
])
def chat_annotations(output: Json, ctx: Context) -> Json:
    """The url_citation annotations of a Response's output text, as a chat message's annotations.

    A chat message holds one text: every output_text part of every message item, joined in order
    (as ``content`` is built). A Responses annotation counts its indexes in its own part, so each
    is moved by the length of the parts before it (in characters, as Python counts them). Chat
    annotations are URL citations only; a citation of another type (a file's) is noted as left out.
    """
    if output.__class__ is not list:
        return None
    found: list[Json] = []
    offset = 0
    for item in output:
        if item.__class__ is not dict or item.get("type") != "message":
            continue
        content = item.get("content")
        for part in content if content.__class__ is list else ():
            if part.__class__ is not dict or part.get("type") != "output_text":
                continue
            annotations = part.get("annotations")
            for annotation in annotations if annotations.__class__ is list else ():
                kind = annotation.get("type") if annotation.__class__ is dict else None
                if kind != "url_citation":
                    ctx.leave_out(f"annotations[{kind}]", "chat message annotations are URL citations only")
                    continue
                found.append({"type": "url_citation", "url_citation": {
                    "url": annotation.get("url"), "title": annotation.get("title"),
                    "start_index": _moved(annotation.get("start_index"), offset),
                    "end_index": _moved(annotation.get("end_index"), offset)}})
            text = part.get("text")
            offset += len(text) if text.__class__ is str else 0
    return found or None


def _moved(index: Json, offset: int) -> Json:
    return index + offset if index.__class__ is int else index
