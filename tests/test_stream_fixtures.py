"""Stream fixtures: tests/mappings/<mapping>/stream/*.yaml, each an upstream stream and what it must give.

For every case the converted stream must:
* pass the stream invariant checker (order, dense indexes, ids, sums of deltas, one terminal event,
  every event valid against the OpenAI event schema);
* come out byte for byte the same however the upstream bytes are split (every split point, and
  one byte at a time);
* be accepted by the official ``openai`` SDK's stream accumulator, whose final response must equal
  the terminal event's (or, for incomplete and failed streams, end the way the SDK documents);
* satisfy the case's ``expect`` JMESPath assertions over ``{types, events, response}``;
* note as left out exactly the parts of the upstream stream the case lists in ``left_out``;
* match its snapshot.

A case gives ``chunks`` (chat chunks for the openai-chat mapping; objects get a default chat-chunk
envelope unless ``raw: true``; the string "[DONE]" is the sentinel), ``events`` (Responses events for
the openai-responses mapping, written with their ``event:`` lines), or raw ``sse`` text, plus an
optional client ``request`` and ``options``. For chat output, ``expect`` reads the chat checker's
summary (``content``, ``tool_calls``, ``finish_reason``, ``usage``, ``error``...) plus ``chunks``;
for Anthropic Messages output (anthropic-chat), the Messages checker's (``message``, ``text``,
``tool_uses``, ``stop_reason``, ``usage``, ``error``, ``event_types``) plus ``events``, and the
anthropic SDK's accumulator must build the same final Message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jmespath
import orjson
import pytest
import yaml

from mapper.engine import load_mapping
from mapper.engine.context import deterministic_context
from mapper.engine.streaming import translate_stream
from support.anthropic_invariants import check_anthropic_stream
from support.anthropic_replay import replay_anthropic_stream
from support.chat_invariants import check_chat_stream
from support.responses_invariants import check_responses_stream
from support.sdk_replay import replay_chat_stream, replay_responses_stream, without_sdk_fields
from support.snapshots import EventLines
from support.sse_reader import parse_sse_events

ROOT = Path(__file__).parent / "mappings"
CHUNK_ENVELOPE = {"id": "chatcmpl-fixture", "object": "chat.completion.chunk", "created": 1_700_000_000,
                  "model": "fixture-model"}
DEFAULT_REQUESTS = {  # by the API the client speaks
    "openai.responses": {"model": "fixture-model", "input": "hi", "stream": True},
    "openai.chat": {"model": "fixture-model", "messages": [{"role": "user", "content": "hi"}],
                    "stream": True},
    "anthropic.messages": {"model": "fixture-model", "max_tokens": 1024,
                           "messages": [{"role": "user", "content": "hi"}], "stream": True},
}


def _cases() -> list[Path]:
    only = os.environ.get("MAPPER_CASE")
    cases = sorted(ROOT.glob("*/stream/*.yaml"))
    return [p for p in cases if not only or only in str(p)]


CASES = _cases()
_MAPPINGS: dict[tuple[str, str], Any] = {}


def mapping_for(mapping_id: str, options: dict[str, Any] | None) -> Any:
    key = (mapping_id, orjson.dumps(options or {}, option=orjson.OPT_SORT_KEYS).decode())
    if key not in _MAPPINGS:
        _MAPPINGS[key] = load_mapping(mapping_id, options=options)
    return _MAPPINGS[key]


def upstream_bytes(case: dict[str, Any]) -> bytes:
    if "sse" in case:
        return case["sse"].encode()
    if "events" in case:
        return b"".join(b"data: [DONE]\n\n" if event == "[DONE]" else
                        b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
                        for event in case["events"])
    frames = []
    for chunk in case["chunks"]:
        if chunk == "[DONE]":
            frames.append(b"data: [DONE]\n\n")
            continue
        body = dict(chunk)
        if not body.pop("raw", False):
            body = {**CHUNK_ENVELOPE, **body}
        frames.append(b"data: " + orjson.dumps(body) + b"\n\n")
    return b"".join(frames)


def convert(mapping: Any, pieces: list[bytes], request: dict[str, Any], ctx: Any = None) -> bytes:
    ctx = ctx if ctx is not None else deterministic_context()
    return b"".join(translate_stream(mapping, pieces, request=request, ctx=ctx))


def summary(events: list[Any]) -> dict[str, Any]:
    objects = [e for e in events if isinstance(e, dict)]
    terminal = objects[-1] if objects else {}
    return {"types": [e.get("type") for e in objects], "events": objects,
            "response": terminal.get("response")}


def test_there_are_stream_cases() -> None:
    assert CASES


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.parent.name}.{p.stem}" for p in CASES])
def test_stream_fixture(path: Path, snapshot: Any) -> None:
    case = yaml.safe_load(path.read_text())
    assert case.get("description") and case.get("expect")
    options = case.get("options")
    mapping = mapping_for(path.parent.parent.name, options)
    request = case.get("request", DEFAULT_REQUESTS[mapping.from_api])
    raw = upstream_bytes(case)

    ctx = deterministic_context()
    whole = convert(mapping, [raw], request, ctx)
    assert [what for what, _ in ctx.left_out or ()] == case.get("left_out", []), \
        "what the conversion left out"
    # the same bytes however the upstream splits them
    assert convert(mapping, [raw[i:i + 1] for i in range(len(raw))], request) == whole
    for cut in range(1, len(raw)):
        assert convert(mapping, [raw[:cut], raw[cut:]], request) == whole, f"split at byte {cut}"

    events = parse_sse_events(whole, require_event_name=mapping.from_api == "anthropic.messages")
    if mapping.from_api == "anthropic.messages":
        scope = check_anthropic_stream(events)
        scope["events"] = events
        _check_anthropic_with_sdk(whole, scope, request)
    elif mapping.from_api == "openai.responses":
        check_responses_stream(events, allow_completed_incomplete=bool(
            (options or {}).get("incomplete_as_completed")))
        _check_with_sdk(whole, events, request)
        scope = summary(events)
    else:
        wants_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        scope = check_chat_stream(events, expect_usage=wants_usage)
        scope["chunks"] = [e for e in events if isinstance(e, dict)]
        _check_chat_with_sdk(whole, scope, request)

    for expression, wanted in case["expect"].items():
        got = jmespath.search(expression, scope)
        assert got == wanted, f"{expression}: expected {wanted!r}, got {got!r}"
    assert [e for e in events if isinstance(e, dict)] == snapshot(extension_class=EventLines)


def _check_chat_with_sdk(body: bytes, scope: dict[str, Any], request: dict[str, Any]) -> None:
    sdk_request = {key: value for key, value in request.items() if key not in ("stream", "stream_options")}
    replay = replay_chat_stream(body, request=sdk_request)
    if scope.get("error"):
        assert replay.verdict == "error-surfaced", (replay.verdict, replay.error)
        return
    # the SDK raises on length and content_filter finishes by design, with the completion attached
    assert replay.verdict in ("accepted", "accepted-finish-error"), (replay.verdict, replay.error)
    message = replay.final["choices"][0]["message"]
    assert (message.get("content") or "") == (scope["content"] or "")
    calls = [(c["id"], c["function"]["name"], c["function"]["arguments"])
             for c in message.get("tool_calls") or []]
    assert calls == [(c["id"], c["name"], c["arguments"]) for c in scope["tool_calls"]]
    # citations (an annotation-only delta, as OpenAI's search models send them) reach the message
    streamed = [annotation for chunk in scope["chunks"] for choice in chunk.get("choices") or []
                for annotation in (choice.get("delta") or {}).get("annotations") or []]
    assert (message.get("annotations") or []) == streamed


def _check_anthropic_with_sdk(body: bytes, scope: dict[str, Any], request: dict[str, Any]) -> None:
    replay = replay_anthropic_stream(body, request={k: v for k, v in request.items() if k != "stream"})
    if scope.get("error"):
        assert replay.verdict == "error-surfaced", (replay.verdict, replay.error)
        return
    assert replay.verdict == "accepted", (replay.verdict, replay.error)
    assert replay.final == scope["message"]


def _check_with_sdk(body: bytes, events: list[Any], request: dict[str, Any]) -> None:
    terminal = [e for e in events if isinstance(e, dict)][-1]
    sdk_request = {key: value for key, value in request.items() if key != "stream"}
    replay = replay_responses_stream(body, request=sdk_request)
    if terminal["type"] == "response.completed":
        assert replay.verdict == "accepted", (replay.verdict, replay.error)
        assert without_sdk_fields(replay.final) == terminal["response"]
    else:
        # get_final_response() raises for incomplete and failed streams, by design
        assert replay.terminal_without_completed, (replay.verdict, replay.error)
