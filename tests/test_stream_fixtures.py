"""Stream fixtures: tests/mappings/<mapping>/stream/*.yaml, each an upstream stream and what it must give.

For every case the converted stream must:
* pass the stream invariant checker (order, dense indexes, ids, sums of deltas, one terminal event,
  every event valid against the OpenAI event schema);
* come out byte for byte the same however the upstream bytes are split (every split point, and
  one byte at a time);
* be accepted by the official ``openai`` SDK's stream accumulator, whose final response must equal
  the terminal event's (or, for incomplete and failed streams, end the way the SDK documents);
* satisfy the case's ``expect`` JMESPath assertions over ``{types, events, response}``;
* match its snapshot.

A case gives ``chunks`` (objects get a default chat-chunk envelope unless ``raw: true``; the string
"[DONE]" is the sentinel) or raw ``sse`` text, plus an optional client ``request`` and ``options``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jmespath
import orjson
import pytest
import yaml
from syrupy.extensions.json import JSONSnapshotExtension

from mapper.engine import load_mapping
from mapper.engine.context import deterministic_context
from mapper.engine.streaming import translate_stream
from support.invariants import check_chat_stream, check_responses_stream, parse_sse_events
from support.sdk_replay import replay_chat_stream, replay_responses_stream, without_sdk_fields

ROOT = Path(__file__).parent / "mappings"
CHUNK_ENVELOPE = {"id": "chatcmpl-fixture", "object": "chat.completion.chunk", "created": 1_700_000_000,
                  "model": "fixture-model"}
DEFAULT_REQUEST = {"model": "fixture-model", "input": "hi", "stream": True}


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


def convert(mapping: Any, pieces: list[bytes], request: dict[str, Any]) -> bytes:
    return b"".join(translate_stream(mapping, pieces, request=request, ctx=deterministic_context()))


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
    request = case.get("request", DEFAULT_REQUEST)
    raw = upstream_bytes(case)

    whole = convert(mapping, [raw], request)
    # the same bytes however the upstream splits them
    assert convert(mapping, [raw[i:i + 1] for i in range(len(raw))], request) == whole
    for cut in range(1, len(raw)):
        assert convert(mapping, [raw[:cut], raw[cut:]], request) == whole, f"split at byte {cut}"

    events = parse_sse_events(whole)
    if mapping.from_api == "openai.responses":
        check_responses_stream(events, allow_completed_incomplete=bool(
            (options or {}).get("incomplete_as_completed")))
        _check_with_sdk(whole, events, request)
    else:
        check_chat_stream(events)
        replay = replay_chat_stream(whole, request=request)
        assert replay.verdict in ("accepted", "accepted-finish-error", "error-surfaced"), replay.error

    scope = summary(events)
    for expression, wanted in case["expect"].items():
        got = jmespath.search(expression, scope)
        assert got == wanted, f"{expression}: expected {wanted!r}, got {got!r}"
    assert scope["events"] == snapshot(extension_class=JSONSnapshotExtension)


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
