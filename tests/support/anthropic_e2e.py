"""What the end-to-end tests of the Messages front share: the official ``anthropic`` SDK in-process,
over real sockets, through the proxy under its server, whatever the upstream.

A module that uses it defines a ``proxy`` fixture (a ``ProxyServer``) and takes conftest's
``client`` and ``wire`` (``anthropic_sdk`` here): the SDK's transport keeps every body it read
(``anthropic_client``), so ``streamed`` checks a stream's wire bytes event by event against
Anthropic's stream rules (``check_anthropic_sse``) and replays them through the SDK's own
accumulator in small pieces (``anthropic_replay``), and ``ask`` checks a JSON answer against
``schemas/anthropic/``.
"""

from __future__ import annotations

import base64
from contextlib import contextmanager
from typing import Any, Iterator

import anthropic
import httpx
import pytest

from .anthropic_client import RecordingTransport, recording_client
from .anthropic_invariants import check_anthropic_sse
from .anthropic_replay import replay_anthropic_stream
from .anthropic_schemas import assert_valid
from .proxy_server import ProxyServer

Json = Any

WEATHER = {"name": "get_weather", "description": "Weather in a city.",
           "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}
TIME = {"name": "get_time", "description": "Time in a city.",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}
PIXEL = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                                       "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()
REPLAY_CHUNK = 7  # bytes per piece when a stream is replayed: frames split at awkward offsets
# a question about two images, one inline (base64) and one by URL
TWO_IMAGES = [{"type": "text", "text": "what are these"},
              {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
              {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}]


@contextmanager
def anthropic_sdk(proxy: ProxyServer) -> Iterator[tuple[anthropic.Anthropic, RecordingTransport]]:
    """The SDK for ``proxy`` (no retries) and its recording transport, closed on leaving."""
    client, wire = recording_client(proxy.origin)
    with client:
        yield client, wire


def user(content: Json) -> Json:
    return {"role": "user", "content": content}


def dump(message: Any) -> Json:
    """An SDK object as the JSON it was built from (no SDK defaults)."""
    return message.model_dump(mode="json", by_alias=True, exclude_unset=True, warnings=False)


def streamed(wire: RecordingTransport) -> Json:
    """Check the last streamed body against every Messages stream rule; its summary.

    The same bytes replayed through the SDK in pieces of ``REPLAY_CHUNK`` build the same Message,
    or, for a stream that ends in an error event, surface that error.
    """
    assert wire.last.headers["content-type"].startswith("text/event-stream"), wire.last.headers
    body = bytes(wire.last.body)
    summary = check_anthropic_sse(body)
    replay = replay_anthropic_stream(body, chunk_size=REPLAY_CHUNK)
    if summary["error"] is not None:
        assert replay.verdict == "error-surfaced", (replay.verdict, replay.error)
    else:
        assert replay.verdict == "accepted", (replay.verdict, replay.error)
        assert replay.final == summary["message"]
    return summary


def ask(client: anthropic.Anthropic, wire: RecordingTransport, stream: bool, **request: Any) -> Any:
    """``messages.create`` (its body checked against the schema), or ``messages.stream`` and its
    final message (its events checked by ``streamed``, which builds the same Message)."""
    if not stream:
        message = client.messages.create(**request)
        assert_valid("messages.response", wire.last.json)
        return message
    with client.messages.stream(**request) as events:
        final = events.get_final_message()
    assert streamed(wire)["message"] == dump(final)
    return final


def error_of(caught: pytest.ExceptionInfo) -> Json:
    """The error body the SDK got, checked against Anthropic's error schema."""
    body = caught.value.body
    assert_valid("error", body)
    return body["error"]


def assert_refused(proxy: ProxyServer, upstream_requests: list, body: Json, named: str) -> None:
    """``body`` posted to /v1/messages is a 400 in Anthropic's shape naming ``named``; nothing went upstream."""
    answer = httpx.post(proxy.origin + "/v1/messages", json=body, timeout=10, headers={"x-api-key": "k"})
    assert answer.status_code == 400, answer.text
    assert_valid("error", answer.json())
    assert answer.json()["error"]["type"] == "invalid_request_error" and named in answer.json()["error"]["message"]
    assert upstream_requests == []


def ask_with_every_field(client: anthropic.Anthropic) -> Any:
    """A request with system blocks, stop sequences, metadata, sampling and a three-turn history;
    the raw response, whose text must be the toy model's echo of the last turn."""
    raw = client.messages.with_raw_response.create(
        model="fake-model", max_tokens=50, stop_sequences=["END"], metadata={"user_id": "user-42"},
        # the 2.x SDK no longer names the sampling parameters; the API and older clients still send them
        extra_body={"temperature": 0.5, "top_p": 0.9, "top_k": 40},
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Answer in English."}],
        messages=[user([{"type": "text", "text": "first part"}, {"type": "text", "text": "second part"}]),
                  {"role": "assistant", "content": "noted"}, user("go on")])
    assert raw.parse().content[0].text == "echo: go on"
    return raw


def assert_other_paths_answer(proxy: ProxyServer) -> None:
    """Claude Code posts to /v1/messages?beta=true, some clients to /messages; any
    anthropic-version and anthropic-beta go."""
    for path in ("/v1/messages?beta=true", "/messages"):
        answer = httpx.post(proxy.origin + path, timeout=10, json={
            "model": "fake-model", "max_tokens": 50, "messages": [user(f"posted to {path}")]},
            headers={"x-api-key": "sk-ant-client", "anthropic-version": "2023-06-01",
                     "anthropic-beta": "some-future-beta-2099-01-01"})
        assert answer.status_code == 200, (path, answer.text)
        assert_valid("messages.response", answer.json())
        assert answer.json()["content"][0]["text"] == f"echo: posted to {path}"
