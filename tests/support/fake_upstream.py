"""A fake OpenAI-compatible upstream that tests run as a real HTTP server on 127.0.0.1.

Why a real server and not `httpx.MockTransport`: the proxy's end-to-end tests and the provider-quirk tests
need what only sockets show — chunked SSE arriving frame by frame, an upstream that dies mid-stream, a
client that hangs up while the upstream is still talking.

How it is put together:

- **Replies** are small frozen dataclasses (`JsonReply`, `SseReply`, `RawReply`, `HangReply`, `ErrorReply`)
  that know how to send themselves. Tests queue them per path with `FakeUpstream.expect`; the built-in toy
  model builds the same kinds, so there is one sending path for scripted and default answers.
- **The toy model** is deterministic: it answers `"echo: " + <last user text>`, calls the tools the user
  names (`"call get_weather"`), answers `"tool said: ..."` after a tool result, and truncates to
  `max_tokens` words. It speaks both Chat Completions and Responses, streaming or not.
- **Quirks** are tables of named checks (`BODY_QUIRKS`, `ROUTE_QUIRKS`) plus a few named behaviours
  (reasoning fields and the switches that turn thinking on, error formats, auth, Azure's addressing).
  A quirk rejects what a real provider rejects *before* any scripted or default reply, so a test can
  prove that a mapping overlay is needed.
- **The server** is aiohttp in a background thread with its own event loop. It runs with
  `handler_cancellation=True`: when the client hangs up, aiohttp cancels the handler task at once
  (`RequestHandler.connection_lost`), and the handler records that in `disconnects` / `disconnected`.
  Cancellations caused by `stop()` or by a deliberate `drop_after` are not counted.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import re
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Mapping, Union

from aiohttp import web

Json = Any
Frame = Union[bytes, str, dict]
Headers = tuple[tuple[str, str], ...]

CREATED = 1_700_000_000  # pinned clock: every `created` / `created_at` the fake sends
DEFAULT_MODELS = ("fake-model",)
STOP_GRACE = 0.25  # seconds aiohttp waits for in-flight handlers on stop() before cancelling them
DROP_GRACE = 5.0  # upper bound on waiting for aiohttp to notice a connection we closed ourselves
# set inside a handler task that closed its own connection on purpose (drop_after, end of a hang), so the
# cancellation that follows is not counted as a client hang-up; aiohttp runs each request in its own task
_DROPPED: contextvars.ContextVar[bool] = contextvars.ContextVar("fake_upstream_dropped", default=False)


# --------------------------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as the fake upstream received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    json: Json | None  # parsed body, or None when the body is empty or not JSON
    body: bytes


# --------------------------------------------------------------------------------------------- replies


def encode_frame(frame: Frame) -> bytes:
    """One SSE frame on the wire: dicts become `data: <json>`, "[DONE]" the sentinel, the rest raw."""
    if isinstance(frame, dict):
        return b"data: " + _dumps(frame) + b"\n\n"
    if frame == "[DONE]":
        return b"data: [DONE]\n\n"
    return frame.encode() if isinstance(frame, str) else frame


@dataclass(frozen=True, slots=True)
class JsonReply:
    """A JSON body with a status."""

    body: Json
    status: int = 200
    headers: Headers = ()

    async def send(self, request: web.Request, upstream: FakeUpstream) -> web.StreamResponse:
        headers = {"content-type": "application/json", **dict(self.headers)}
        return web.Response(status=self.status, body=_dumps(self.body), headers=headers)


@dataclass(frozen=True, slots=True)
class RawReply:
    """Bytes as they are, e.g. an HTML error page from a gateway."""

    body: bytes
    status: int = 200
    headers: Headers = ()

    async def send(self, request: web.Request, upstream: FakeUpstream) -> web.StreamResponse:
        return web.Response(status=self.status, body=self.body, headers=dict(self.headers))


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An error in the OpenAI shape, or in the shape an `error_format_*` quirk asks for."""

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    headers: Headers = ()

    def body(self, error_format: str) -> Json:
        """The error body in `error_format` (a key of `ERROR_FORMATS`)."""
        return ERROR_FORMATS[error_format](self)

    async def send(self, request: web.Request, upstream: FakeUpstream) -> web.StreamResponse:
        reply = JsonReply(self.body(upstream.error_format), self.status, self.headers)
        return await reply.send(request, upstream)


@dataclass(frozen=True, slots=True)
class SseReply:
    """A `text/event-stream` body, one frame at a time; `drop_after=n` kills the connection after n frames."""

    frames: tuple[Frame, ...]
    delay: float = 0.0
    headers: Headers = ()
    drop_after: int | None = None
    status: int = 200

    async def send(self, request: web.Request, upstream: FakeUpstream) -> web.StreamResponse:
        headers = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
        response = web.StreamResponse(status=self.status, headers={**headers, **dict(self.headers)})
        await response.prepare(request)
        for index, frame in enumerate(self.frames):
            if index == self.drop_after:
                break
            if index and self.delay:
                await asyncio.sleep(self.delay)
            await response.write(encode_frame(frame))
        if self.drop_after is not None:
            # no terminating zero-length chunk: the client sees an incomplete chunked body
            await _close_connection(request)
        await response.write_eof()
        return response


@dataclass(frozen=True, slots=True)
class HangReply:
    """Accept the request and say nothing for `seconds`, then close the connection without an answer."""

    seconds: float = 30.0

    async def send(self, request: web.Request, upstream: FakeUpstream) -> web.StreamResponse:
        await asyncio.sleep(self.seconds)
        await _close_connection(request)
        return web.Response(status=504)


Reply = Union[JsonReply, RawReply, ErrorReply, SseReply, HangReply]


def json_reply(body: Json, status: int = 200, headers: Mapping[str, str] | None = None) -> JsonReply:
    """A JSON body: `json_reply({"ok": True}, status=201)`."""
    return JsonReply(body, status, _headers(headers))


def sse_reply(
    frames: Iterable[Frame],
    delay: float = 0.0,
    headers: Mapping[str, str] | None = None,
    drop_after: int | None = None,
    status: int = 200,
) -> SseReply:
    """An SSE stream: `sse_reply([{"choices": []}, "[DONE]"], delay=0.05, drop_after=1)`."""
    return SseReply(tuple(frames), delay, _headers(headers), drop_after, status)


def raw_reply(body: bytes | str, status: int = 200, headers: Mapping[str, str] | None = None) -> RawReply:
    """Raw bytes: `raw_reply(b"<html>502 Bad Gateway</html>", 502, {"content-type": "text/html"})`."""
    return RawReply(body.encode() if isinstance(body, str) else body, status, _headers(headers))


def hang_reply(seconds: float = 30.0) -> HangReply:
    """No answer for `seconds` (returns early if the client hangs up)."""
    return HangReply(seconds)


def error_reply(
    status: int,
    message: str,
    type: str = "invalid_request_error",  # noqa: A002 - the OpenAI field is called `type`
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ErrorReply:
    """An OpenAI-shaped error: `error_reply(429, "slow down", "rate_limit_error", headers={"retry-after": "1"})`."""
    return ErrorReply(status, message, type, code, param, _headers(headers))


async def _close_connection(request: web.Request) -> None:
    """Close the TCP connection under a running handler, then wait for aiohttp to cancel the handler."""
    _DROPPED.set(True)
    if request.transport is not None:
        request.transport.close()  # close() flushes what was written; abort() could lose the last frames
    await asyncio.sleep(DROP_GRACE)


def _headers(headers: Mapping[str, str] | None) -> Headers:
    return tuple((headers or {}).items())


def _dumps(value: Json) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------- errors


def _openai_error(error: ErrorReply) -> Json:
    """{"error": {"message", "type", "param", "code"}}, as OpenAI sends it."""
    return {"error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}}


def _detail_error(error: ErrorReply) -> Json:
    """{"detail": "..."}, as FastAPI-based servers send it."""
    return {"detail": error.message}


def _string_error(error: ErrorReply) -> Json:
    """{"error": "..."}, as Ollama sends it."""
    return {"error": error.message}


ERROR_FORMATS: dict[str, Callable[[ErrorReply], Json]] = {
    "openai": _openai_error,
    "error_format_detail": _detail_error,
    "error_format_string": _string_error,
}


# --------------------------------------------------------------------------------------------- quirks

BodyCheck = Callable[[Json], Union[str, None]]
BODY_QUIRKS: dict[str, BodyCheck] = {}


def _body_quirk(check: BodyCheck) -> BodyCheck:
    BODY_QUIRKS[check.__name__] = check
    return check


@_body_quirk
def no_system_role(body: Json) -> str | None:
    """Rejects role `system` (some early open-model servers)."""
    return _role_error(body, "system")


@_body_quirk
def no_developer_role(body: Json) -> str | None:
    """Rejects role `developer` (most non-OpenAI servers)."""
    return _role_error(body, "developer")


@_body_quirk
def max_completion_tokens_only(body: Json) -> str | None:
    """Rejects `max_tokens` (OpenAI reasoning models, Azure)."""
    # https://platform.openai.com/docs/api-reference/chat/create#chat-create-max_tokens
    if "max_tokens" in body:
        return (
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead."
        )
    return None


@_body_quirk
def max_tokens_only(body: Json) -> str | None:
    """Rejects `max_completion_tokens` (older OpenAI-compatible servers)."""
    if "max_completion_tokens" in body:
        return "Unrecognized request argument supplied: max_completion_tokens"
    return None


@_body_quirk
def no_stream_options(body: Json) -> str | None:
    """Rejects `stream_options`."""
    return "Unrecognized request argument supplied: stream_options" if "stream_options" in body else None


@_body_quirk
def no_tool_choice_required(body: Json) -> str | None:
    """Rejects `tool_choice: "required"`."""
    return "tool_choice 'required' is not supported" if body.get("tool_choice") == "required" else None


@_body_quirk
def no_tools(body: Json) -> str | None:
    """Rejects `tools` (models without function calling)."""
    return "This model does not support tools" if "tools" in body else None


@_body_quirk
def no_images(body: Json) -> str | None:
    """Rejects image content parts (text-only models)."""
    for message in _messages(body):
        for part in _parts(message.get("content")):
            if part.get("type") in ("image_url", "input_image"):
                return f"Image input ({part['type']}) is not supported by this model"
    return None


@_body_quirk
def no_parallel_tool_calls_param(body: Json) -> str | None:
    """Rejects the `parallel_tool_calls` parameter."""
    if "parallel_tool_calls" in body:
        return "Unrecognized request argument supplied: parallel_tool_calls"
    return None


@_body_quirk
def no_response_format_json_schema(body: Json) -> str | None:
    """Rejects structured output (`response_format` / `text.format` of type `json_schema`)."""
    formats = [body.get("response_format"), (body.get("text") or {}).get("format")]
    if any(isinstance(f, dict) and f.get("type") == "json_schema" for f in formats):
        return "response_format of type 'json_schema' is not supported"
    return None


@_body_quirk
def reasoning_content(body: Json) -> str | None:
    """DeepSeek thinking mode: answers carry `reasoning_content`; tool-call turns must send it back."""
    # https://api-docs.deepseek.com/guides/thinking_mode#tool-calls
    for index, message in enumerate(body.get("messages") or []):
        if message.get("role") == "assistant" and message.get("tool_calls") and "reasoning_content" not in message:
            return f"Missing `reasoning_content` field in the assistant message at message index {index}"
    return None


@_body_quirk
def system_message_first(body: Json) -> str | None:
    """Rejects a system message that is not the first (Qwen3.5's and Gemma's chat templates)."""
    for index, message in enumerate(_messages(body)):
        if index and message.get("role") == "system":
            return "Jinja Exception: System message must be at the beginning."
    return None


@_body_quirk
def ollama_reasoning_effort(body: Json) -> str | None:
    """Rejects a reasoning effort other than high, medium, low or none (Ollama)."""
    # https://github.com/ollama/ollama/blob/main/openai/openai.go (FromChatRequest)
    effort = (body.get("reasoning") or {}).get("effort") or body.get("reasoning_effort")
    if effort and effort not in ("high", "medium", "low", "none"):
        return f"invalid reasoning value: '{effort}' (must be \"high\", \"medium\", \"low\", or \"none\")"
    return None


@_body_quirk
def vllm_reasoning_effort(body: Json) -> str | None:
    """Rejects a `reasoning_effort` other than low, medium or high (vLLM's request model)."""
    # https://github.com/vllm-project/vllm/blob/main/vllm/entrypoints/openai/protocol.py
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in ("low", "medium", "high"):
        return (
            "1 validation error for ChatCompletionRequest\nreasoning_effort\n"
            f"  Input should be 'low', 'medium' or 'high' [input_value='{effort}']"
        )
    return None


# paths a quirk turns into 404s
ROUTE_QUIRKS: dict[str, frozenset[str]] = {
    "no_responses_endpoint": frozenset({"/v1/responses"}),
    "models_only": frozenset({"/v1/chat/completions", "/v1/responses"}),
    "no_chat_endpoint": frozenset({"/v1/chat/completions"}),  # Responses-only providers
}

# quirk → the chat field its reasoning goes in
REASONING_QUIRKS: dict[str, str] = {
    "reasoning_content": "reasoning_content",  # DeepSeek
    "reasoning_field": "reasoning",  # vLLM
    "enable_thinking": "reasoning_content",  # DashScope
}

# quirk → whether a request asks the model to think; a model with a reasoning quirk thinks unless one says no
THINKING_SWITCHES: dict[str, Callable[[Json], bool]] = {
    # DashScope hybrid models think only when asked (https://www.alibabacloud.com/help/en/model-studio/deep-thinking)
    "enable_thinking": lambda body: body.get("enable_thinking") is True,
    # Qwen3 behind vLLM or llama.cpp: the chat template thinks unless told not to
    "chat_template_kwargs": lambda body: (body.get("chat_template_kwargs") or {}).get("enable_thinking") is not False,
}

# Azure OpenAI addressing: /openai/v1/<endpoint>, or /openai/deployments/<name>/<endpoint>?api-version=...
AZURE_PATH = re.compile(
    r"^/openai/(?:deployments/(?P<deployment>[^/]+)|v1)(?P<endpoint>/chat/completions|/responses|/models)$"
)

KNOWN_QUIRKS = frozenset().union(BODY_QUIRKS, ROUTE_QUIRKS, REASONING_QUIRKS, THINKING_SWITCHES) | {
    "azure",
    "error_format_detail",
    "error_format_string",
    "require_auth",
}


def _role_error(body: Json, role: str) -> str | None:
    for index, message in enumerate(_messages(body)):
        if message.get("role") == role:
            return f"Unsupported value: 'messages[{index}].role' does not support '{role}' with this model."
    return None


# --------------------------------------------------------------------------------------------- toy model


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the toy model decided to make."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Answer:
    """What the toy model says, independent of the wire shape."""

    pieces: tuple[str, ...]  # one word each, with its trailing space: "".join(pieces) is the text
    tool_calls: tuple[ToolCall, ...]
    reasoning: tuple[str, ...]
    truncated: bool
    prompt_words: int

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def reasoning_text(self) -> str:
        return "".join(self.reasoning)

    @property
    def output_words(self) -> int:
        return len(self.pieces) + sum(len(call.arguments.split()) for call in self.tool_calls)


def think(
    user_text: str,
    tool_output: str | None,
    tool_names: list[str],
    limit: int | None,
    prompt_words: int,
    reasoning: bool = False,
) -> Answer:
    """The toy model: tool result → "tool said: …"; "call <tool>" → calls; else "echo: <user text>"."""
    calls = () if tool_output is not None else _named_calls(user_text, tool_names)
    text = "" if calls else (f"tool said: {tool_output}" if tool_output is not None else f"echo: {user_text}")
    pieces = tuple(re.findall(r"\S+\s*", text))
    truncated = limit is not None and len(pieces) > limit
    if truncated:
        pieces = pieces[:limit]
        pieces = (*pieces[:-1], pieces[-1].rstrip()) if pieces else ()
    thoughts = tuple(re.findall(r"\S+\s*", f"thinking about: {user_text}")) if reasoning else ()
    return Answer(pieces, calls, thoughts, truncated, prompt_words)


def _named_calls(user_text: str, tool_names: list[str]) -> tuple[ToolCall, ...]:
    found = []
    for name in tool_names:
        match = re.search(rf"\bcall {re.escape(name)}(?![\w-])", user_text)
        if match:
            found.append((match.start(), name))
    arguments = json.dumps({"q": user_text})
    return tuple(ToolCall(f"call_{n}", name, arguments) for n, (_, name) in enumerate(sorted(found), 1))


def _messages(body: Json) -> list[Json]:
    """Chat `messages`, or the message-like items of a Responses `input`."""
    if isinstance(body.get("messages"), list):
        return [m for m in body["messages"] if isinstance(m, dict)]
    items = body.get("input")
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    return [item for item in items or [] if isinstance(item, dict) and "role" in item]


def _parts(content: Json) -> list[Json]:
    if isinstance(content, list):
        return [part for part in content if isinstance(part, dict)]
    return []


def _text(content: Json) -> str:
    """The text of a message content: a string, or its text parts joined by a space."""
    if isinstance(content, str):
        return content
    text_types = ("text", "input_text", "output_text")
    texts = [part.get("text", "") for part in _parts(content) if part.get("type") in text_types]
    return " ".join(texts)


def _last_user_text(messages: list[Json]) -> str:
    users = [message for message in messages if message.get("role") == "user"]
    return _text(users[-1].get("content")) if users else ""


def _words(*texts: str | None) -> int:
    return sum(len((text or "").split()) for text in texts)


def _arguments_fragments(arguments: str) -> list[str]:
    """Two or three pieces, the way real streams split call arguments."""
    size = len(arguments)
    cuts = sorted({0, size // 3, 2 * size // 3, size})
    return [arguments[start:end] for start, end in zip(cuts, cuts[1:])]


# ---- chat completions


def chat_answer(body: Json, reasoning: bool = False) -> Answer:
    """Run the toy model on a chat request."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    last = messages[-1] if messages else {}
    tool_output = _text(last.get("content")) if last.get("role") == "tool" else None
    tools = [] if body.get("tool_choice") == "none" else body.get("tools") or []
    names = [tool["function"]["name"] for tool in tools if tool.get("type") == "function" and "function" in tool]
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    prompt_words = _words(*(_text(message.get("content")) for message in messages))
    return think(_last_user_text(messages), tool_output, names, limit, prompt_words, reasoning)


def _finish_reason(answer: Answer) -> str:
    return "tool_calls" if answer.tool_calls else ("length" if answer.truncated else "stop")


def _chat_usage(answer: Answer) -> Json:
    completion = answer.output_words + len(answer.reasoning)
    return {
        "prompt_tokens": answer.prompt_words,
        "completion_tokens": completion,
        "total_tokens": answer.prompt_words + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": len(answer.reasoning)},
    }


def chat_completion(answer: Answer, completion_id: str, model: str, reasoning_key: str | None) -> Json:
    """A non-streamed `chat.completion`."""
    message: Json = {"role": "assistant", "content": answer.text if not answer.tool_calls else None, "refusal": None}
    if reasoning_key:
        message[reasoning_key] = answer.reasoning_text
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in answer.tool_calls
        ]
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(answer)}
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [choice],
        "usage": _chat_usage(answer),
    }


def chat_chunks(
    answer: Answer, completion_id: str, model: str, reasoning_key: str | None, include_usage: bool
) -> list[Frame]:
    """The frames of a streamed chat completion, `[DONE]` included."""
    base: Json = {"id": completion_id, "object": "chat.completion.chunk", "created": CREATED, "model": model}
    if include_usage:
        base["usage"] = None  # OpenAI sends "usage": null on every chunk but the last when usage is on

    def chunk(delta: Json, finish_reason: str | None = None) -> Json:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

    frames: list[Frame] = [chunk({"role": "assistant", "content": ""})]
    frames += [chunk({reasoning_key: piece}) for piece in answer.reasoning if reasoning_key]
    frames += [chunk({"content": piece}) for piece in answer.pieces]
    for index, call in enumerate(answer.tool_calls):
        # chat sends the tool-call id, type and name only on the first delta of each call
        function = {"name": call.name, "arguments": ""}
        opening = {"index": index, "id": call.call_id, "type": "function", "function": function}
        frames.append(chunk({"tool_calls": [opening]}))
        for fragment in _arguments_fragments(call.arguments):
            frames.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}))
    frames.append(chunk({}, _finish_reason(answer)))
    if include_usage:
        frames.append({**base, "choices": [], "usage": _chat_usage(answer)})
    frames.append("[DONE]")
    return frames


# ---- responses


def responses_answer(body: Json) -> Answer:
    """Run the toy model on a Responses request."""
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    items = [item for item in items or [] if isinstance(item, dict)]
    last = items[-1] if items else {}
    tool_output = _text(last.get("output")) if last.get("type") == "function_call_output" else None
    tools = [] if body.get("tool_choice") == "none" else body.get("tools") or []
    names = [tool["name"] for tool in tools if tool.get("type") == "function" and "name" in tool]
    outputs = [_text(item.get("output")) for item in items if item.get("type") == "function_call_output"]
    texts = [_text(message.get("content")) for message in _messages({"input": items})]
    prompt_words = _words(_text(body.get("instructions")), *texts, *outputs)
    user_text = _last_user_text(_messages({"input": items}))
    return think(user_text, tool_output, names, body.get("max_output_tokens"), prompt_words)


def _response_items(answer: Answer, number: int, final: bool) -> list[Json]:
    """Output items as `output_item.added` shows them (`final=False`) or as they end."""
    if answer.tool_calls:
        return [
            {
                "type": "function_call",
                "id": f"fc_fake_{number}_{index}",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments if final else "",
                "status": "completed" if final else "in_progress",
            }
            for index, call in enumerate(answer.tool_calls, 1)
        ]
    # a message cut by max_output_tokens ends `incomplete`, like the response around it
    status = ("incomplete" if answer.truncated else "completed") if final else "in_progress"
    content = [_output_text(answer.text)] if final else []
    return [{"type": "message", "id": f"msg_fake_{number}", "role": "assistant", "status": status, "content": content}]


def _echo_tool(tool: Json) -> Json:
    """A request tool as the response echoes it: function tools gain `strict` (true by default in Responses)."""
    if not isinstance(tool, dict) or tool.get("type") != "function":
        return tool
    return {"description": None, "parameters": None, "strict": True, **tool}


def _output_text(text: str) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def response_object(body: Json, answer: Answer | None, number: int, model: str) -> Json:
    """A `response` object; `answer=None` gives the in-progress shell that opens a stream."""
    if answer is None:
        status, output, usage, incomplete = "in_progress", [], None, None
    else:
        status = "incomplete" if answer.truncated else "completed"
        output = _response_items(answer, number, final=True)
        usage = {
            "input_tokens": answer.prompt_words,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": answer.output_words,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": answer.prompt_words + answer.output_words,
        }
        incomplete = {"reason": "max_output_tokens"} if answer.truncated else None
    return {
        "id": f"resp_fake_{number}",
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "completed_at": CREATED if status == "completed" else None,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": [_echo_tool(tool) for tool in body.get("tools") or []],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def response_events(body: Json, answer: Answer, number: int, model: str) -> list[Json]:
    """The official event sequence of a streamed response, `sequence_number` from 0."""
    events: list[Json] = [
        {"type": "response.created", "response": response_object(body, None, number, model)},
        {"type": "response.in_progress", "response": response_object(body, None, number, model)},
    ]
    added = _response_items(answer, number, final=False)
    done = _response_items(answer, number, final=True)
    for output_index, (opening, item) in enumerate(zip(added, done)):
        events.append({"type": "response.output_item.added", "output_index": output_index, "item": opening})
        where = {"item_id": item["id"], "output_index": output_index}
        if item["type"] == "message":
            events += _text_events(answer, where)
        else:
            events += [
                {"type": "response.function_call_arguments.delta", **where, "delta": fragment}
                for fragment in _arguments_fragments(item["arguments"])
            ]
            arguments = {"name": item["name"], "arguments": item["arguments"]}
            events.append({"type": "response.function_call_arguments.done", **where, **arguments})
        events.append({"type": "response.output_item.done", "output_index": output_index, "item": item})
    final = response_object(body, answer, number, model)
    events.append({"type": f"response.{final['status']}", "response": final})
    return [{**event, "sequence_number": sequence_number} for sequence_number, event in enumerate(events)]


def _text_events(answer: Answer, where: Json) -> list[Json]:
    where = {**where, "content_index": 0}
    return [
        {"type": "response.content_part.added", **where, "part": _output_text("")},
        *({"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []} for piece in answer.pieces),
        {"type": "response.output_text.done", **where, "text": answer.text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": _output_text(answer.text)},
    ]


def event_frame(event: Json) -> str:
    """A Responses SSE frame: `event:` line, then `data:`."""
    return f"event: {event['type']}\ndata: {_dumps(event).decode()}\n\n"


# --------------------------------------------------------------------------------------------- server


class FakeUpstream:
    """A fake OpenAI-compatible provider on 127.0.0.1, served from a background thread.

        with FakeUpstream(quirks=["no_developer_role"]) as upstream:
            upstream.expect("/v1/chat/completions", error_reply(429, "slow down", "rate_limit_error"))
            httpx.post(upstream.url("/chat/completions"), json={...})
            assert upstream.last_json["model"] == "fake-model"
    """

    def __init__(
        self,
        models: Iterable[str] = DEFAULT_MODELS,
        quirks: Iterable[str] = (),
        api_key: str | None = None,
        stream_delay: float = 0.0,
    ) -> None:
        self.models = tuple(models)
        self.stream_delay = stream_delay  # seconds between default-model stream frames
        self.quirks = tuple(quirks)
        unknown = sorted(set(self.quirks) - KNOWN_QUIRKS)
        if unknown:
            raise ValueError(f"unknown quirk(s) {unknown}; known: {sorted(KNOWN_QUIRKS)}")
        for quirk in ("require_auth", "azure"):
            if quirk in self.quirks and not api_key:
                raise ValueError(f"quirk '{quirk}' needs api_key=")
        self.api_key = api_key
        self.error_format = next((q for q in self.quirks if q in ERROR_FORMATS), "openai")
        self.reasoning_key = next((REASONING_QUIRKS[q] for q in self.quirks if q in REASONING_QUIRKS), None)
        self.blocked_paths = frozenset().union(*(ROUTE_QUIRKS[q] for q in self.quirks if q in ROUTE_QUIRKS))
        self.requests: list[Recorded] = []
        self.disconnects = 0
        self.disconnected = threading.Event()
        self.disconnected_at: float | None = None  # time.monotonic() of the last client hang-up
        self.port: int | None = None
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._numbers = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = False
        self._startup_error: BaseException | None = None

    # ---- test-facing API

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT/v1`, what an OpenAI client takes as base URL."""
        return self.url("")

    @property
    def origin(self) -> str:
        """`http://127.0.0.1:PORT`, for paths outside `/v1`."""
        if self.port is None:
            raise RuntimeError("FakeUpstream is not started")
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL of `path` under `/v1`: `url("/models")`, `url("chat/completions")`, `url("/v1/models")`."""
        return self.origin + _under_v1(path)

    def expect(self, path: str, *replies: Reply) -> FakeUpstream:
        """Queue replies for `path` ("/v1/chat/completions" or "/chat/completions"), used before the default."""
        with self._lock:
            self._scripts[_under_v1(path)].extend(replies)
        return self

    @property
    def last(self) -> Recorded:
        """The most recent request."""
        with self._lock:
            if not self.requests:
                raise AssertionError("FakeUpstream received no request")
            return self.requests[-1]

    @property
    def last_json(self) -> Json | None:
        """The parsed body of the most recent request."""
        return self.last.json

    def reset(self) -> None:
        """Forget requests, scripted replies and disconnects (for a server shared between tests)."""
        with self._lock:
            self.requests.clear()
            self._scripts.clear()
            self.disconnects = 0
            self.disconnected_at = None
            self.disconnected.clear()

    # ---- lifecycle

    def start(self, timeout: float = 5.0) -> FakeUpstream:
        """Start serving on a free port; raises if the server is not up within `timeout` seconds."""
        if self._thread is not None:
            raise RuntimeError("FakeUpstream is already started")
        ready = threading.Event()
        self._startup_error, self._stopping = None, False
        self._thread = threading.Thread(target=self._run, args=(ready,), name="fake-upstream", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or self._startup_error is not None:
            error = self._startup_error
            self.stop(timeout)
            reason = f"failed: {error!r}" if error else f"did not start within {timeout}s"
            raise RuntimeError(f"FakeUpstream {reason}") from error
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving; in-flight handlers get `STOP_GRACE` seconds, then are cancelled. Idempotent."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop closed between the check and the call
                pass
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"FakeUpstream did not stop within {timeout}s")
        self._thread = self._loop = self._stop = None
        self.port = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:  # noqa: BLE001 - handed to start(), which raises it
            self._startup_error = exc
            ready.set()
        finally:
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client hang-up cancels the handler task (how disconnects are seen)
        runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=STOP_GRACE, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self._stop = asyncio.Event()
            ready.set()
            await self._stop.wait()
        finally:
            self._stopping = True
            await runner.cleanup()

    # ---- request handling

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        recorded = Recorded(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={name.lower(): value for name, value in request.headers.items()},
            json=_parse_json(body),
            body=body,
        )
        with self._lock:
            self.requests.append(recorded)
        reply = self._reply_for(recorded)
        try:
            return await reply.send(request, self)
        except (asyncio.CancelledError, ConnectionResetError):
            if not self._stopping and not _DROPPED.get():
                self._note_disconnect()
            raise

    def _note_disconnect(self) -> None:
        with self._lock:
            self.disconnects += 1
            self.disconnected_at = time.monotonic()
        self.disconnected.set()

    def _reply_for(self, recorded: Recorded) -> Reply:
        """Auth (Azure's addressing too), then route, body quirks, then scripted replies, then the toy model."""
        if "azure" in self.quirks:
            routed = self._azure(recorded)
            if not isinstance(routed, Recorded):
                return routed
            recorded = routed
        if "require_auth" in self.quirks and recorded.headers.get("authorization") != f"Bearer {self.api_key}":
            return ErrorReply(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        if recorded.path in self.blocked_paths:
            return ErrorReply(404, f"Invalid URL ({recorded.method} {recorded.path})")
        if recorded.method == "POST" and recorded.path in ("/v1/chat/completions", "/v1/responses"):
            if not isinstance(recorded.json, dict):
                return ErrorReply(400, "We could not parse the JSON body of your request.")
            for quirk in self.quirks:
                problem = BODY_QUIRKS[quirk](recorded.json) if quirk in BODY_QUIRKS else None
                if problem:
                    return ErrorReply(400, problem)
        with self._lock:
            script = self._scripts.get(recorded.path)
            if script:
                return script.popleft()
        route = self._routes().get((recorded.method, recorded.path))
        return route(recorded.json) if route else ErrorReply(404, f"Invalid URL ({recorded.method} {recorded.path})")

    def _azure(self, recorded: Recorded) -> Recorded | ErrorReply:
        """Azure OpenAI: the key in `api-key`; v1 paths, or deployment paths that need `api-version`."""
        # https://learn.microsoft.com/azure/foundry/openai/api-version-lifecycle
        if recorded.headers.get("api-key") != self.api_key:
            return ErrorReply(401, "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
                              "to provide a valid key for an active subscription and use a correct regional API "
                              "endpoint for your resource.", code="401")
        match = AZURE_PATH.match(recorded.path)
        if match is None or (match["deployment"] and not recorded.query.get("api-version")):
            return ErrorReply(404, "Resource not found", code="404")
        return replace(recorded, path="/v1" + match["endpoint"])

    def _routes(self) -> dict[tuple[str, str], Callable[[Json], Reply]]:
        return {
            ("GET", "/v1/models"): self._models,
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/responses"): self._responses,
        }

    def _models(self, body: Json) -> Reply:
        models = [{"id": model, "object": "model", "created": 0, "owned_by": "fake"} for model in self.models]
        return JsonReply({"object": "list", "data": models})

    def _chat(self, body: Json) -> Reply:
        thinks = all(THINKING_SWITCHES[quirk](body) for quirk in self.quirks if quirk in THINKING_SWITCHES)
        reasoning_key = self.reasoning_key if thinks else None
        answer = chat_answer(body, reasoning=reasoning_key is not None)
        completion_id = f"chatcmpl-fake-{next(self._numbers)}"
        model = body.get("model") or self.models[0]
        if not body.get("stream"):
            return JsonReply(chat_completion(answer, completion_id, model, reasoning_key))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = chat_chunks(answer, completion_id, model, reasoning_key, include_usage)
        return SseReply(tuple(chunks), self.stream_delay)

    def _responses(self, body: Json) -> Reply:
        answer = responses_answer(body)
        number = next(self._numbers)
        model = body.get("model") or self.models[0]
        if not body.get("stream"):
            return JsonReply(response_object(body, answer, number, model))
        events = response_events(body, answer, number, model)
        return SseReply(tuple(event_frame(event) for event in events), self.stream_delay)


def _under_v1(path: str) -> str:
    path = "/" + path.lstrip("/") if path else ""
    return path if path == "/v1" or path.startswith("/v1/") else "/v1" + path


def _parse_json(body: bytes) -> Json | None:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
