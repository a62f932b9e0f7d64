"""The benchmark's documents: one realistic agent turn, in every API shape the bench sends or serves.

Every figure in RESULTS.md is about the same conversation, so the upstream, the load driver and
the micro benchmarks all take their documents from here:

* the client's **Responses request**: instructions, a short history with an earlier assistant
  message, one function call and its output, two function tools, sampling parameters and metadata
  (the shape Codex and the Agents SDK send);
* the upstream's **chat.completion**: a ~110-word answer with usage and cached-token details, and
  its **stream**: a role chunk, 38 content deltas, a finish chunk and a usage chunk (41 frames,
  then ``[DONE]``), framed the way OpenAI frames them;
* a second pair of small documents (a one-line request, a tool-call answer) so the micro benchmarks
  also show the fixed cost of a conversion.

The chat request, the Responses body and the Responses event stream are derived from these with the
hand-written converters, so the two directions carry the same conversation byte for byte.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

Json = Any

CREATED = 1_755_600_000
MODEL = "qwen-plus"
CHAT_ID = "chatcmpl-bench7f3a9c2e"

# A ~110-word answer cut the way a tokenizer-driven stream cuts it: one or a few words per delta.
ANSWER_PIECES: tuple[str, ...] = (
    "Lisbon", " looks", " good", " for", " Saturday", ":", " 21", "°C", " and", " sunny",
    " in", " the", " afternoon", ",", " with", " a", " light", " breeze", " off", " the",
    " river", ". The", " cheapest", " direct", " flight", " I", " found", " leaves", " at",
    " 07:40", " and", " costs", " €", "89", " return;", " a", " 10:15", " departure costs €112.\n\n",
)
ANSWER = "".join(ANSWER_PIECES)

USAGE = {
    "prompt_tokens": 1843,
    "completion_tokens": 112,
    "total_tokens": 1955,
    "prompt_tokens_details": {"cached_tokens": 1536, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                  "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
}

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather and the forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Lisbon"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "days"],
            "additionalProperties": False,
        },
        "strict": True,
    },
    {
        "type": "function",
        "name": "search_flights",
        "description": "Search return flights between two airports on given dates.",
        "parameters": {
            "type": "object",
            "properties": {
                "origin": {"type": "string"},
                "destination": {"type": "string"},
                "depart": {"type": "string", "format": "date"},
                "return": {"type": "string", "format": "date"},
                "max_stops": {"type": "integer"},
            },
            "required": ["origin", "destination", "depart"],
        },
    },
]


def responses_request(stream: bool = False) -> Json:
    """The agent turn a Responses client sends (direction Responses client -> chat upstream)."""
    request = {
        "model": MODEL,
        "instructions": ("You are a travel assistant inside a booking app. Answer in at most three "
                         "sentences, quote prices with their currency, and call a tool whenever "
                         "a fact could have changed since your training data."),
        "input": [
            {"type": "message", "role": "user",
             "content": [{"type": "input_text",
                          "text": "I might go to Lisbon this weekend. What's the weather like?"}]},
            {"type": "message", "role": "assistant", "id": "msg_67c0a1b2c3d4", "status": "completed",
             "content": [{"type": "output_text", "text": "Let me check the forecast for Lisbon.",
                          "annotations": []}]},
            {"type": "function_call", "id": "fc_67c0a1b2c3d5", "call_id": "call_Wx81Ktq2",
             "name": "get_weather", "arguments": "{\"city\":\"Lisbon\",\"days\":3}",
             "status": "completed"},
            {"type": "function_call_output", "call_id": "call_Wx81Ktq2",
             "output": ("{\"city\":\"Lisbon\",\"forecast\":[{\"day\":\"Sat\",\"high_c\":21,\"sky\":"
                        "\"sunny\",\"wind_kph\":12},{\"day\":\"Sun\",\"high_c\":19,\"sky\":"
                        "\"cloudy\",\"wind_kph\":20}]}")},
            {"type": "message", "role": "user",
             "content": [{"type": "input_text",
                          "text": "Nice. And flights from Porto on Saturday morning, back Sunday?"}]},
        ],
        "tools": copy.deepcopy(TOOLS),
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "temperature": 0.3,
        "top_p": 0.95,
        "max_output_tokens": 800,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "reasoning": {"effort": "low"},
        "store": False,
        "user": "user-4821",
        "metadata": {"session": "bench", "app": "booking"},
    }
    if stream:
        request["stream"] = True
    return request


def simple_request(stream: bool = False) -> Json:
    """The smallest useful request: a model and one string of input."""
    request = {"model": MODEL, "input": "Say hello in Portuguese."}
    if stream:
        request["stream"] = True
    return request


def chat_completion() -> Json:
    """The upstream's non-streamed answer to the agent turn."""
    return {
        "id": CHAT_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": "fp_bench_0417",
        "service_tier": "default",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": ANSWER, "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": copy.deepcopy(USAGE),
    }


def tool_call_completion() -> Json:
    """A short answer that calls two tools at once (the fixed cost of a response conversion)."""
    return {
        "id": CHAT_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant", "content": None,
                "tool_calls": [
                    {"id": "call_Fl1", "type": "function",
                     "function": {"name": "search_flights",
                                  "arguments": "{\"origin\":\"OPO\",\"destination\":\"LIS\","
                                               "\"depart\":\"2025-08-23\",\"return\":\"2025-08-24\"}"}},
                    {"id": "call_Wx2", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Porto\",\"days\":2}"}},
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }],
        "usage": {"prompt_tokens": 402, "completion_tokens": 61, "total_tokens": 463},
    }


def chat_chunks() -> list[Json]:
    """The streamed answer as chat.completion.chunk objects (OpenAI's framing, usage requested)."""
    def chunk(delta: Json, finish_reason: str | None = None) -> Json:
        return {
            "id": CHAT_ID, "object": "chat.completion.chunk", "created": CREATED, "model": MODEL,
            "service_tier": "default", "system_fingerprint": "fp_bench_0417",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            "usage": None,
        }

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    chunks += [chunk({"content": piece}) for piece in ANSWER_PIECES]
    chunks.append(chunk({}, "stop"))
    last = chunk({})
    last["choices"] = []
    last["usage"] = copy.deepcopy(USAGE)
    chunks.append(last)
    return chunks


def chat_sse_frames() -> list[bytes]:
    """The chat stream as the upstream writes it: one SSE frame per write, then ``[DONE]``."""
    frames = [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chat_chunks()]
    frames.append(b"data: [DONE]\n\n")
    return frames


# -- documents derived with the hand-written converters --------------------------------------------


class FixedIds:
    """Stable, OpenAI-looking ids for the canned Responses bodies the upstream serves."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_bench{self.count:04d}{'0' * 36}"


def chat_request(stream: bool = False) -> Json:
    """The agent turn as a Chat Completions client sends it (and a chat upstream receives it)."""
    from .reference_converters import request_to_chat
    return request_to_chat(responses_request(stream))


def response_body() -> Json:
    """The upstream's non-streamed answer as a Response (direction chat client -> Responses upstream)."""
    from .reference_converters import chat_to_response
    return chat_to_response(chat_completion(), responses_request(), new_id=FixedIds(),
                            now=lambda: CREATED)


def responses_sse_frames() -> list[bytes]:
    """The streamed answer as Responses events, one SSE frame per event."""
    from .reference_stream import ReferenceStream
    stream = ReferenceStream(responses_request(stream=True), new_id=FixedIds(), now=lambda: CREATED)
    frames: list[bytes] = []
    for frame in chat_sse_frames():
        frames.extend(_split_frames(stream.feed(frame)))
    frames.extend(_split_frames(stream.close()))
    return frames


def _split_frames(blob: bytes) -> list[bytes]:
    return [part + b"\n\n" for part in blob.split(b"\n\n") if part]
