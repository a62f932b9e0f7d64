"""Bad input is a 4xx, never a 500: random request bodies through the app, with hypothesis.

The bodies are random JSON built from the Responses API's own field names and item vocabulary,
so that they reach deep into the mapping instead of stopping at the first unknown key. The
upstream is an ``httpx.MockTransport`` that answers every call well, so any 5xx is mapper's.
"""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapper.engine.proxy import ProxyApp, ServeOptions, build_config
from mapper.engine.proxy.upstream import Upstream
from support.responses_invariants import check_responses_stream
from support.sse_reader import parse_sse_events

COMPLETION = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}
STREAM = (b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
          b'"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')

KEYS = st.sampled_from([
    "model", "input", "instructions", "tools", "tool_choice", "text", "reasoning", "max_output_tokens",
    "temperature", "top_p", "stream", "metadata", "parallel_tool_calls", "include", "store", "truncation",
    "user", "type", "role", "content", "call_id", "output", "name", "arguments", "image_url", "detail",
    "format", "effort", "strict", "parameters", "text", "file_data", "filename"])
SCALARS = (st.none() | st.booleans() | st.integers(-5, 2**63 - 1) | st.floats(allow_nan=False)
           | st.text(max_size=8)
           | st.sampled_from(["message", "function_call", "function_call_output", "input_text", "input_image",
                              "input_file", "output_text", "reasoning", "user", "assistant", "system",
                              "developer", "function", "auto", "required", "none", "json_schema", "text"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
                      max_leaves=25)
BODIES = st.tuples(st.dictionaries(KEYS, VALUES, max_size=6), VALUES).map(
    lambda pair: {**pair[0], "model": "m", "input": pair[1]})


def _upstream(request: httpx.Request) -> httpx.Response:
    if orjson.loads(request.content).get("stream"):
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=STREAM)
    return httpx.Response(200, json=COMPLETION)


@pytest.fixture(scope="module")
def post():
    loop = asyncio.new_event_loop()
    config = build_config(ServeOptions(mapping="openai-chat", upstream="http://upstream.invalid/v1"), env={})
    app = ProxyApp(config, upstream=Upstream(httpx.MockTransport(_upstream)))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy")
    yield lambda body: loop.run_until_complete(client.post("/v1/responses", content=body))
    loop.run_until_complete(client.aclose())
    loop.run_until_complete(app.aclose())
    loop.close()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=BODIES)
def test_random_bodies_get_an_answer_or_a_4xx_naming_the_field(post, body) -> None:
    response = post(orjson.dumps(body))
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["message"]
    elif body.get("stream") is True:
        check_responses_stream(parse_sse_events(response.content))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_random_bytes_are_a_400(post, raw: bytes) -> None:
    response = post(raw)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
