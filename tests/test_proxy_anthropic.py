"""The proxy in front of Anthropic's clients (``anthropic-chat``): paths, keys, errors, extras.

What a Messages client relies on besides the conversion itself, which the mapping fixtures cover:
``POST /v1/messages`` (with ``?beta=true``, without ``/v1``), either key header, every error in
Anthropic's shape with its status (an overloaded upstream is a 529, which clients retry), the
token-count endpoint, the model list in Anthropic's shape, and ``ping`` while the upstream is
silent. The official SDK and Claude Code run against it in ``tests/test_client_anthropic*.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from mapper.engine.proxy import ServeOptions, build_config
from support.anthropic_invariants import check_anthropic_sse
from support.anthropic_schemas import assert_valid
from support.asgi_proxy import in_process
from support.fake_upstream import FakeUpstream
from support.upstream_replies import error_reply, sse_reply

pytestmark = pytest.mark.anyio

REQUEST = {"model": "fake-model", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
KEYS = {"UPSTREAM_KEY": "sk-upstream-held-0001", "PROXY_KEYS": "ant-proxy-key-0001"}


def config(fake: FakeUpstream, **options: Any):
    options.setdefault("mapping", "anthropic-chat")
    options.setdefault("upstream", fake.base_url)
    return build_config(ServeOptions(**options), env=KEYS)


def assert_anthropic_error(response: httpx.Response, status: int, error_type: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert_valid("error", body)
    assert body["type"] == "error" and body["error"]["type"] == error_type
    assert response.headers["x-request-id"].startswith("req_")
    return body["error"]


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages?beta=true", "/messages"])
async def test_messages_answers_on_every_path_clients_use(fake: FakeUpstream, path: str) -> None:
    async with in_process(config(fake)) as client:
        response = await client.post(path, json=REQUEST)
    assert response.status_code == 200, response.text
    message = response.json()
    assert_valid("messages.response", message)
    assert message["content"] == [{"type": "text", "text": "echo: hi"}]
    assert fake.last.path == "/v1/chat/completions"
    assert fake.last_json["max_tokens"] == 64


@pytest.mark.parametrize("headers", [{"x-api-key": "ant-proxy-key-0001"},
                                     {"authorization": "Bearer ant-proxy-key-0001"}])
async def test_held_key_mode_takes_either_key_header(fake: FakeUpstream, headers: dict) -> None:
    async with in_process(config(fake, api_key_env="UPSTREAM_KEY", proxy_key_env="PROXY_KEYS")) as client:
        accepted = await client.post("/v1/messages", json=REQUEST,
                                     headers={**headers, "anthropic-version": "2023-06-01",
                                              "anthropic-beta": "claude-code-20250219"})
        refused = await client.post("/v1/messages", json=REQUEST, headers={"x-api-key": "wrong-key-0001"})
    assert accepted.status_code == 200, accepted.text
    assert fake.last.headers["authorization"] == "Bearer sk-upstream-held-0001"
    assert_anthropic_error(refused, 401, "authentication_error")


async def test_a_pass_through_x_api_key_goes_upstream_as_a_bearer_token(fake: FakeUpstream) -> None:
    async with in_process(config(fake)) as client:
        await client.post("/v1/messages", json=REQUEST, headers={"x-api-key": "sk-client-own-0001"})
    assert fake.last.headers["authorization"] == "Bearer sk-client-own-0001"


async def test_the_proxys_own_errors_are_in_anthropics_shape(fake: FakeUpstream) -> None:
    async with in_process(config(fake)) as client:
        bad_json = await client.post("/v1/messages", content=b"{nope",
                                     headers={"content-type": "application/json"})
        no_max_tokens = await client.post("/v1/messages", json={"model": "m", "messages": []})
        refused_block = await client.post("/v1/messages", json={
            **REQUEST, "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "file", "file_id": "file_1"}}]}]})
    assert_anthropic_error(bad_json, 400, "invalid_request_error")
    assert "max_tokens" in assert_anthropic_error(no_max_tokens, 400, "invalid_request_error")["message"]
    assert "Files API" in assert_anthropic_error(refused_block, 400, "invalid_request_error")["message"]
    assert fake.requests == []


async def test_an_overloaded_upstream_is_a_529_that_clients_retry(fake: FakeUpstream) -> None:
    fake.expect("/v1/chat/completions", error_reply(503, "The server is overloaded", "server_error"),
                error_reply(429, "Rate limit reached", "requests", headers={"retry-after": "3"}))
    async with in_process(config(fake)) as client:
        overloaded = await client.post("/v1/messages", json=REQUEST)
        limited = await client.post("/v1/messages", json=REQUEST)
    assert assert_anthropic_error(overloaded, 529, "overloaded_error")["message"] == "The server is overloaded"
    assert_anthropic_error(limited, 429, "rate_limit_error")
    assert limited.headers["retry-after"] == "3"


async def test_an_unreachable_upstream_is_an_api_error() -> None:
    options = ServeOptions(mapping="anthropic-chat", upstream="http://127.0.0.1:9/v1")
    async with in_process(build_config(options, env={})) as client:
        response = await client.post("/v1/messages", json=REQUEST)
    assert "cannot be reached" in assert_anthropic_error(response, 502, "api_error")["message"]


async def test_a_stream_is_a_valid_messages_stream(fake: FakeUpstream) -> None:
    async with in_process(config(fake)) as client:
        response = await client.post("/v1/messages?beta=true", json={**REQUEST, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    summary = check_anthropic_sse(response.content)
    assert (summary["text"], summary["stop_reason"]) == ("echo: hi", "end_turn")
    assert summary["usage"]["output_tokens"] == 2


async def test_a_stream_whose_first_frame_is_an_error_is_a_real_status(fake: FakeUpstream) -> None:
    fake.expect("/v1/chat/completions",
                sse_reply([{"error": {"message": "The server is overloaded", "code": 503}}]))
    async with in_process(config(fake)) as client:
        response = await client.post("/v1/messages", json={**REQUEST, "stream": True})
    assert_anthropic_error(response, 529, "overloaded_error")


async def test_a_silent_upstream_gets_pings_between_the_events(fake: FakeUpstream, tmp_path: Path) -> None:
    # an overlay that pings every 50 ms (the mapping's own is 10 s): pings while the upstream waits
    overlay = tmp_path / "fast-ping.yaml"
    overlay.write_text("format: mapper/1\nid: fast-ping\nversion: 1.0.0\n"
                       "extends: {mapping: anthropic-chat, version: '^1'}\n"
                       "stream: {framing: {heartbeat: {every: 0.05}}}\n")
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    frames = [{**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "slow"},
                                     "finish_reason": None}]},
              {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}, "[DONE]"]
    fake.expect("/v1/chat/completions", sse_reply(frames, delay=0.3))
    async with in_process(config(fake, overlays=(str(overlay),))) as client:
        response = await client.post("/v1/messages", json={**REQUEST, "stream": True})
    summary = check_anthropic_sse(response.content)
    types = summary["event_types"]
    assert "ping" in types
    assert types.index("ping") > types.index("message_start") and types[-1] == "message_stop"
    assert summary["text"] == "slow"


async def test_count_tokens_is_an_estimate_without_an_upstream_call(fake: FakeUpstream) -> None:
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "a" * 400}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}]}
    async with in_process(config(fake)) as client:
        counted = await client.post("/v1/messages/count_tokens?beta=true", json=body)
        no_model = await client.post("/v1/messages/count_tokens", json={"messages": []})
    assert counted.status_code == 200, counted.text
    assert counted.json()["input_tokens"] > 100
    assert_valid("count_tokens.response", counted.json())
    assert_anthropic_error(no_model, 400, "invalid_request_error")
    assert fake.requests == []


async def test_models_in_anthropics_shape_for_anthropic_clients(fake: FakeUpstream) -> None:
    async with in_process(config(fake)) as client:
        anthropic = await client.get("/v1/models?limit=1000", headers={"anthropic-version": "2023-06-01"})
        openai_shape = await client.get("/v1/models")
    listed = anthropic.json()
    assert_valid("models.list", listed)
    assert [model["id"] for model in listed["data"]] == ["fake-model"]
    assert listed["data"][0]["type"] == "model" and listed["has_more"] is False
    assert openai_shape.json()["object"] == "list"
