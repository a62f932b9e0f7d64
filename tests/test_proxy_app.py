"""The proxy app in-process (httpx.ASGITransport) against a real fake upstream on 127.0.0.1.

What a client sees for every kind of request: converted answers and streams, bad input as 4xx
naming the field, upstream errors relayed with their status and pacing headers, 502/504 for an
upstream that fails, the two auth modes, the log line, and a 500 (not a dropped connection) when
mapper itself fails.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any, AsyncIterator

import httpx
import orjson
import pytest

from mapper.engine import deterministic_context
from mapper.engine.proxy import ProxyApp, ProxyConfig, ServeOptions, build_config
from mapper.engine.proxy.logs import JsonLines
from mapper.engine.proxy.upstream import Upstream
from support.fake_upstream import FakeUpstream
from support.responses_invariants import check_responses_stream
from support.schemas import assert_valid
from support.sse_reader import parse_sse_events
from support.upstream_replies import error_reply, hang_reply, json_reply, raw_reply, sse_reply

pytestmark = pytest.mark.anyio


def flags(fake: FakeUpstream, env: dict[str, str] | None = None, **options: Any) -> ProxyConfig:
    options.setdefault("mapping", "openai-chat")
    options.setdefault("upstream", fake.base_url)
    return build_config(ServeOptions(**options), env=env or {})


@contextlib.asynccontextmanager
async def proxy(config: ProxyConfig, upstream: Upstream | None = None) -> AsyncIterator[httpx.AsyncClient]:
    app = ProxyApp(config, upstream=upstream, new_context=deterministic_context)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://proxy", timeout=10) as client:
            yield client
    finally:
        await app.aclose()


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


# -- answers ------------------------------------------------------------------------------------


async def test_a_request_is_converted_there_and_back(fake: FakeUpstream) -> None:
    async with proxy(flags(fake)) as client:
        response = await client.post("/v1/responses", json={"model": "fake-model", "input": "hello there"})
    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert_valid("responses.response", body)
    assert body["output"][0]["content"][0]["text"] == "echo: hello there"
    assert body["usage"]["input_tokens"] == 2
    assert fake.last.path == "/v1/chat/completions"
    assert fake.last_json["messages"] == [{"role": "user", "content": "hello there"}]


async def test_a_base_url_without_v1_is_served_too(fake: FakeUpstream) -> None:
    async with proxy(flags(fake)) as client:
        response = await client.post("/responses", json={"model": "m", "input": "hi"})
    assert response.status_code == 200


async def test_fields_dropped_on_purpose_are_named_in_a_header(fake: FakeUpstream) -> None:
    async with proxy(flags(fake)) as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "hi", "truncation": "auto"})
    assert response.headers["x-mapper-dropped"] == "truncation"
    assert "truncation" not in fake.last_json


async def test_a_stream_is_held_until_converted_then_sent_as_events(fake: FakeUpstream) -> None:
    async with proxy(flags(fake)) as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "one two", "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert b"event: response.created\n" in response.content
    summary = check_responses_stream(parse_sse_events(response.content))
    assert (summary["terminal"], summary["text"]) == ("response.completed", "echo: one two")
    assert summary["response"]["usage"]["output_tokens"] == 3
    assert fake.last_json["stream_options"] == {"include_usage": True}


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, param, code", [
    (b"{not json", None, "invalid_json"),
    (b"[1, 2]", None, "invalid_json"),
    (b'{"input": "x"}', "model", "missing_required_parameter"),
    (b'{"model": 5, "input": "x"}', "model", "invalid_type"),
    (b'{"model": "m"}', "input", "M203"),
    (b'{"model": "m", "input": 5}', "input", None),
    (b'{"model": "m", "input": [{"role": "user", "content": "hi"}, {"type": "compaction", '
     b'"encrypted_content": "x"}]}', "input[1]", "M202"),
    (b'{"model": "m", "input": "x", "temperature": "hot"}', "temperature", "M203"),
    (b'{"model": "m", "input": "x", "store": true}', "store", "M202"),
])
async def test_bad_input_is_a_400_naming_the_field(fake: FakeUpstream, body: bytes, param: str | None,
                                                   code: str | None) -> None:
    async with proxy(flags(fake)) as client:
        response = await client.post("/v1/responses", content=body,
                                     headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert fake.requests == []


async def test_unknown_fields_and_builtin_tools_are_left_out_named_and_warned_once(
        fake: FakeUpstream, caplog: pytest.LogCaptureFixture) -> None:
    # what Codex sends on every turn, plus a field newer than any mapping
    body = {"model": "m", "input": "x", "client_metadata": {"session_id": "s"}, "brand_new": 1,
            "stream_options": {"reasoning_summary_delivery": "after"},
            "tools": [{"type": "web_search", "external_web_access": False},
                      {"type": "function", "name": "f", "parameters": {"type": "object"}}]}
    async with proxy(flags(fake)) as client:
        with caplog.at_level(logging.WARNING, logger="mapper.proxy"):
            first = await client.post("/v1/responses", json=body)
            second = await client.post("/v1/responses", json=body)
    for response in (first, second):
        assert response.status_code == 200, response.text
        assert response.headers["x-mapper-dropped"].split(",") == [
            "stream_options", "stream_options.reasoning_summary_delivery", "client_metadata",
            "brand_new", "tools[web_search]"]
    sent = fake.last_json
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["f"]
    assert not {"client_metadata", "brand_new", "stream_options"} & set(sent)
    warned = [record.fields["what"] for record in caplog.records if record.getMessage() == "left out"]
    assert warned == ["brand_new", "tools[web_search]"]  # once each, not once per request


async def test_strict_refuses_unknown_fields_and_builtin_tools(fake: FakeUpstream) -> None:
    async with proxy(flags(fake, strict=True)) as client:
        unknown = await client.post("/v1/responses", json={"model": "m", "input": "x", "bogus": 1})
        builtin = await client.post("/v1/responses", json={"model": "m", "input": "x",
                                                           "tools": [{"type": "web_search"}]})
    assert unknown.status_code == builtin.status_code == 400
    assert (error_of(unknown)["param"], error_of(unknown)["code"]) == ("bogus", "M202")
    assert "unknown parameter 'bogus'" in error_of(unknown)["message"]
    assert (error_of(builtin)["param"], error_of(builtin)["code"]) == ("tools[0]", "M202")
    assert "'web_search'" in error_of(builtin)["message"]
    assert fake.requests == []


async def test_a_body_over_the_limit_is_413_declared_or_not(fake: FakeUpstream) -> None:
    big = orjson.dumps({"model": "m", "input": "x" * 2000})

    async def chunked():
        for start in range(0, len(big), 500):
            yield big[start:start + 500]

    async with proxy(flags(fake, max_body_bytes=1000)) as client:
        declared = await client.post("/v1/responses", content=big)
        streamed = await client.post("/v1/responses", content=chunked())
        small = await client.post("/v1/responses", json={"model": "m", "input": "x"})
    assert "content-length" not in streamed.request.headers
    for response in (declared, streamed):
        assert response.status_code == 413
        assert error_of(response)["code"] == "request_too_large"
    assert small.status_code == 200
    assert len(fake.requests) == 1


async def test_paths_and_methods(fake: FakeUpstream) -> None:
    async with proxy(flags(fake)) as client:
        health = await client.get("/health")
        unknown = await client.post("/v1/embeddings", json={})
        wrong_method = await client.get("/v1/responses")
        chat = await client.post("/v1/chat/completions", json={"model": "m", "messages": []})
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert unknown.status_code == 404 and error_of(unknown)["message"] == "Invalid URL (POST /v1/embeddings)"
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert chat.status_code == 404  # no route of this proxy serves the chat API


# -- upstream errors ------------------------------------------------------------------------------


async def test_upstream_errors_keep_their_status_and_pacing_headers(fake: FakeUpstream) -> None:
    fake.expect("/v1/chat/completions",
                error_reply(400, "context too long", param="messages", code="context_length_exceeded"),
                error_reply(429, "Rate limit reached", "requests", "rate_limit_exceeded",
                            headers={"retry-after": "7", "x-ratelimit-remaining-requests": "0",
                                     "set-cookie": "not=passed"}),
                error_reply(500, "boom", "server_error"),
                raw_reply(b"<html>502 Bad Gateway</html>", 502, {"content-type": "text/html"}))
    async with proxy(flags(fake)) as client:
        answers = [await client.post("/v1/responses", json={"model": "m", "input": "x"}) for _ in range(4)]
    bad, limited, broken, gateway = answers
    assert bad.status_code == 400
    # the param is named in the client's request: its messages are the Responses `input`
    assert error_of(bad) == {"message": "context too long", "type": "invalid_request_error",
                             "param": "input", "code": "context_length_exceeded"}
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    assert "set-cookie" not in limited.headers
    assert error_of(limited)["type"] == "requests"
    assert (broken.status_code, error_of(broken)["message"]) == (500, "boom")
    assert gateway.status_code == 502
    assert "502 Bad Gateway" in error_of(gateway)["message"]


async def test_a_short_client_key_never_mangles_a_relayed_message(fake: FakeUpstream) -> None:
    # pass-through mode: the client's own key is a secret to redact, but "k" is no key-length
    # string, and redacting it inside words turned "backend crashed" into "bac[REDACTED]end crashed"
    fake.expect("/v1/chat/completions", error_reply(500, "backend crashed", "server_error"))
    async with proxy(flags(fake)) as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "x"},
                                     headers={"authorization": "Bearer k"})
    assert (response.status_code, error_of(response)["message"]) == (500, "backend crashed")


@pytest.mark.parametrize("quirk, shape", [("error_format_detail", "detail"), ("error_format_string", "string")])
async def test_other_error_shapes_become_openai_errors(quirk: str, shape: str) -> None:
    with FakeUpstream(quirks=[quirk]) as odd:
        odd.expect("/v1/chat/completions", error_reply(422, "bad value for top_k"))
        async with proxy(flags(odd)) as client:
            response = await client.post("/v1/responses", json={"model": "m", "input": "x"})
    assert response.status_code == 422
    assert "bad value for top_k" in error_of(response)["message"]


async def test_an_unreachable_upstream_is_502_and_a_slow_one_504(fake: FakeUpstream) -> None:
    fake.expect("/v1/chat/completions", hang_reply(5))
    async with proxy(flags(fake, upstream="http://127.0.0.1:9/v1")) as client:
        unreachable = await client.post("/v1/responses", json={"model": "m", "input": "x"})
    async with proxy(flags(fake, read_timeout=0.3)) as client:
        slow = await client.post("/v1/responses", json={"model": "m", "input": "x"})
    assert unreachable.status_code == 502
    assert error_of(unreachable)["code"] == "upstream_unreachable"
    assert error_of(unreachable)["type"] == "server_error"
    assert slow.status_code == 504
    assert error_of(slow)["code"] == "upstream_timeout"
    assert "0.3s" in error_of(slow)["message"]


async def test_a_2xx_that_cannot_be_converted_is_502(fake: FakeUpstream) -> None:
    fake.expect("/v1/chat/completions",
                raw_reply(b"<html>hello</html>", 200, {"content-type": "text/html"}),
                json_reply({"error": {"message": "quota exhausted", "code": "insufficient_quota"}}),
                json_reply([{"choices": []}]))
    async with proxy(flags(fake)) as client:
        answers = [await client.post("/v1/responses", json={"model": "m", "input": "x"}) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [502, 502, 502]
    assert "not JSON" in error_of(answers[0])["message"]
    assert error_of(answers[1])["message"] == "quota exhausted"
    assert error_of(answers[2])["code"] == "bad_upstream_response"
    assert "cannot be converted" in error_of(answers[2])["message"]


# -- streams that go wrong --------------------------------------------------------------------------


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


async def test_a_stream_whose_first_frame_is_an_error_gets_a_real_status(fake: FakeUpstream) -> None:
    fake.expect("/v1/chat/completions",
                sse_reply([{"error": {"message": "prompt too long", "type": "BadRequestError", "code": 400}}]))
    async with proxy(flags(fake)) as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "x", "stream": True})
    assert response.status_code == 400
    assert error_of(response)["message"] == "prompt too long"


async def test_a_stream_that_breaks_or_stalls_ends_in_response_failed(fake: FakeUpstream) -> None:
    frames = [_chunk({"role": "assistant", "content": "Hel"}), _chunk({"content": "lo"}),
              _chunk({"content": "!"}), _chunk({}, "stop"), "[DONE]"]
    fake.expect("/v1/chat/completions", sse_reply(frames, drop_after=2), sse_reply(frames, delay=1.0))
    async with proxy(flags(fake, idle_timeout=0.3)) as client:
        dropped = await client.post("/v1/responses", json={"model": "m", "input": "x", "stream": True})
        stalled = await client.post("/v1/responses", json={"model": "m", "input": "x", "stream": True})
    for response, reason in ((dropped, "broke mid-answer"), (stalled, "idle timeout")):
        assert response.status_code == 200
        events = parse_sse_events(response.content)
        summary = check_responses_stream(events)
        assert summary["terminal"] == "response.failed"
        error = next(event for event in events if event["type"] == "error")
        assert error["code"] == "server_error" and reason in error["message"]
    assert summary["text"] == "Hel"


async def test_a_stream_answered_with_json_or_nothing_is_502(fake: FakeUpstream) -> None:
    fake.expect("/v1/chat/completions",
                json_reply({"id": "c", "object": "chat.completion", "choices": []}),
                sse_reply([]),
                json_reply({"error": {"message": "no streaming for you"}}))
    async with proxy(flags(fake)) as client:
        answers = [await client.post("/v1/responses", json={"model": "m", "input": "x", "stream": True})
                   for _ in range(3)]
    assert [answer.status_code for answer in answers] == [502, 502, 502]
    assert "not an event stream" in error_of(answers[0])["message"]
    assert "before sending any event" in error_of(answers[1])["message"]
    assert error_of(answers[2])["message"] == "no streaming for you"


# -- a bug in mapper is still an answer -----------------------------------------------------------


async def test_an_internal_error_is_an_openai_shaped_500(fake: FakeUpstream, caplog) -> None:
    def explode(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug")

    caplog.set_level(logging.INFO, logger="mapper.proxy")
    async with proxy(flags(fake), Upstream(httpx.MockTransport(explode))) as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "x"})
    assert response.status_code == 500
    assert error_of(response)["type"] == "server_error"
    assert "a bug" not in response.text
    assert any(record.exc_info and "a bug" in str(record.exc_info[1]) for record in caplog.records)


async def test_an_internal_error_mid_stream_still_ends_in_response_failed(fake: FakeUpstream) -> None:
    class Breaks(httpx.AsyncByteStream):
        async def __aiter__(self):
            yield b"data: " + orjson.dumps(_chunk({"role": "assistant", "content": "Hi"})) + b"\n\n"
            raise RuntimeError("a bug")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Breaks())

    async with proxy(flags(fake), Upstream(httpx.MockTransport(handler))) as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "x", "stream": True})
    assert response.status_code == 200
    summary = check_responses_stream(parse_sse_events(response.content))
    assert summary["terminal"] == "response.failed"
    assert "internal error" in summary["response"]["error"]["message"]


# -- auth -----------------------------------------------------------------------------------------


async def test_pass_through_sends_the_clients_key_upstream() -> None:
    with FakeUpstream(quirks=["require_auth"], api_key="sk-client-key-0001") as guarded:
        async with proxy(flags(guarded)) as client:
            good = await client.post("/v1/responses", json={"model": "m", "input": "x"},
                                     headers={"authorization": "Bearer sk-client-key-0001"})
            bad = await client.post("/v1/responses", json={"model": "m", "input": "x"},
                                    headers={"authorization": "Bearer sk-wrong-key-0002"})
            models = await client.get("/v1/models", headers={"authorization": "Bearer sk-client-key-0001"})
    assert good.status_code == 200
    assert bad.status_code == 401  # the upstream's own 401, relayed
    assert models.json()["data"][0]["id"] == "fake-model"


async def test_held_key_mode_checks_clients_and_sends_the_held_key() -> None:
    env = {"UPSTREAM_KEY": "sk-held-upstream-0001", "PROXY_KEYS": "pk-alice,pk-bob"}
    with FakeUpstream(quirks=["require_auth"], api_key="sk-held-upstream-0001") as guarded:
        config = flags(guarded, env, api_key_env="UPSTREAM_KEY", proxy_key_env="PROXY_KEYS")
        async with proxy(config) as client:
            answers = {
                "bob": await client.post("/v1/responses", json={"model": "m", "input": "x"},
                                         headers={"authorization": "Bearer pk-bob"}),
                "wrong": await client.post("/v1/responses", json={"model": "m", "input": "x"},
                                           headers={"authorization": "Bearer pk-mallory"}),
                "none": await client.post("/v1/responses", json={"model": "m", "input": "x"}),
                "models": await client.get("/v1/models"),
                "health": await client.get("/health"),
            }
        assert len(guarded.requests) == 1
        assert guarded.last.headers["authorization"] == "Bearer sk-held-upstream-0001"
    assert answers["bob"].status_code == 200
    for name, code in (("wrong", "invalid_api_key"), ("none", "missing_api_key"), ("models", "missing_api_key")):
        assert answers[name].status_code == 401
        assert error_of(answers[name])["code"] == code
        assert "pk-" not in answers[name].text
    assert answers["health"].status_code == 200


async def test_held_keys_never_reach_clients_even_when_the_upstream_quotes_them(fake: FakeUpstream) -> None:
    env = {"UPSTREAM_KEY": "sk-held-upstream-0001"}
    fake.expect("/v1/chat/completions",
                error_reply(401, "Incorrect API key provided: sk-held-upstream-0001. Check it.",
                            code="invalid_api_key"))
    async with proxy(flags(fake, env, api_key_env="UPSTREAM_KEY")) as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "x"})
    assert response.status_code == 401
    assert "sk-held" not in response.text
    assert error_of(response)["message"] == "Incorrect API key provided: [REDACTED]. Check it."


async def test_azure_style_routes_move_the_endpoint_and_the_key_header(fake: FakeUpstream) -> None:
    env = {"AZURE_KEY": "az-held-key"}
    options = {"upstream_path": "/deployments/{model}/chat/completions", "upstream_query": "api-version=2024-10-21"}
    fake.expect("/v1/openai/deployments/gpt-4o/chat/completions", json_reply({
        "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}))
    config = flags(fake, env, upstream=fake.origin + "/v1/openai", overlays=("azure-openai",), options=options,
                   api_key_env="AZURE_KEY")
    async with proxy(config) as client:
        response = await client.post("/v1/responses", json={"model": "gpt-4o", "input": "x", "max_output_tokens": 9})
    assert response.status_code == 200, response.text
    assert (fake.last.path, fake.last.query) == ("/v1/openai/deployments/gpt-4o/chat/completions",
                                                 {"api-version": "2024-10-21"})
    assert fake.last.headers["api-key"] == "az-held-key"
    assert "authorization" not in fake.last.headers
    assert fake.last_json["max_completion_tokens"] == 9


# -- logs -----------------------------------------------------------------------------------------


async def test_one_log_line_per_request_with_no_key_in_it(fake: FakeUpstream, caplog) -> None:
    caplog.set_level(logging.INFO, logger="mapper.proxy")
    env = {"UPSTREAM_KEY": "sk-held-upstream-0001", "PROXY_KEYS": "pk-alice-secret"}
    config = flags(fake, env, api_key_env="UPSTREAM_KEY", proxy_key_env="PROXY_KEYS", log_bodies=True)
    async with proxy(config) as client:
        await client.post("/v1/responses", headers={"authorization": "Bearer pk-alice-secret"},
                          json={"model": "m", "input": "my key is sk-held-upstream-0001", "truncation": "auto"})
        await client.post("/v1/responses", headers={"authorization": "Bearer pk-alice-secret"},
                          json={"model": "m", "input": "streamed", "stream": True})
        await client.post("/v1/responses", headers={"authorization": "Bearer pk-wrong"}, json={})
    records = [record for record in caplog.records if record.getMessage() == "request"]
    assert len(records) == 3
    formatter = JsonLines()
    lines = [json.loads(formatter.format(record)) for record in records]
    plain, streamed, refused = lines
    assert {"time", "level", "request_id", "route", "model", "status", "upstream_status", "duration_ms",
            "ttfb_ms", "tokens", "dropped", "request_body", "upstream_body", "response_body"} <= set(plain)
    assert (plain["route"], plain["model"], plain["status"], plain["upstream_status"]) == ("default", "m", 200, 200)
    assert plain["tokens"] == {"input": 4, "output": 5, "total": 9}
    assert plain["dropped"] == ["truncation"]
    assert 0 < plain["ttfb_ms"] <= plain["duration_ms"]
    assert (streamed["stream"], streamed["status"], streamed["tokens"]["output"]) == (True, 200, 2)
    assert (refused["status"], refused["error"]) == (401, "Incorrect API key provided.")
    text = "\n".join(formatter.format(record) for record in caplog.records)
    for secret in ("sk-held-upstream-0001", "pk-alice-secret", "pk-wrong"):
        assert secret not in text
    assert "[REDACTED]" in text  # the key in the prompt, with --log-bodies


async def test_a_refused_request_logs_its_body_with_log_bodies(fake: FakeUpstream, caplog) -> None:
    caplog.set_level(logging.INFO, logger="mapper.proxy")
    async with proxy(flags(fake, log_bodies=True)) as client:
        response = await client.post("/v1/responses", json={
            "model": "m", "input": [{"type": "compaction", "encrypted_content": "x"}]})
    assert response.status_code == 400
    (record,) = [record for record in caplog.records if record.getMessage() == "request"]
    line = json.loads(JsonLines().format(record))
    assert line["status"] == 400 and "compaction" in line["error"]
    assert line["request_body"]["input"][0]["type"] == "compaction"
    assert "upstream_body" not in line
    assert fake.requests == []


async def test_bodies_are_not_logged_by_default(fake: FakeUpstream, caplog) -> None:
    caplog.set_level(logging.INFO, logger="mapper.proxy")
    async with proxy(flags(fake)) as client:
        await client.post("/v1/responses", json={"model": "m", "input": "a private prompt"})
    (record,) = [record for record in caplog.records if record.getMessage() == "request"]
    assert "a private prompt" not in JsonLines().format(record)
