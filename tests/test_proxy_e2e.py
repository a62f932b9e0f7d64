"""End to end: the official ``openai`` SDK → the proxy under its server → a fake chat upstream.

Everything here crosses real sockets on 127.0.0.1: the SDK's own HTTP stack and stream parser on
one side, the fake upstream's aiohttp server on the other. One proxy, started once for the module
from a routes file, serves most tests; the auth tests start their own.

Routes of the shared proxy:

    reasoner      ^deepseek-   → an upstream that sends reasoning_content (DeepSeek's field)
    renamed       ^gpt-4o      → the main upstream, model renamed to fake-model-renamed
    default       (the rest)   → the main upstream
    chat-clients  (all)        → the reverse direction: /v1/chat/completions to the main
                                 upstream's /v1/responses (the path comes from the mapping)
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time

import openai
import pytest
from pydantic import BaseModel

from mapper.engine.proxy import ServeOptions, build_config
from mapper.engine.proxy.logs import JsonLines
from support.fake_upstream import FakeUpstream
from support.proxy_server import ProxyServer, reset_upstreams, serve_routes
from support.responses_invariants import check_responses_stream
from support.upstream_replies import error_reply, hang_reply, json_reply, sse_reply

ROUTES = """\
format: mapper-routes/1
routes:
  reasoner:
    match: "^deepseek-"
    upstream: {reasoner}
    mapping: openai-chat
  renamed:
    match: "^gpt-4o"
    upstream: {main}
    mapping: openai-chat
    model: fake-model-renamed
    models: [gpt-4o, gpt-4o-mini]
  default:
    upstream: {main}
    mapping: openai-chat
  chat-clients:
    upstream: {main}
    mapping: openai-responses
"""

WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Weather in a city.",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                               "required": ["q"], "additionalProperties": False}}
PIXEL = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                                       "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()


@pytest.fixture(scope="module")
def main_upstream():
    with FakeUpstream(models=["fake-model", "fake-model-renamed"]) as server:
        yield server


@pytest.fixture(scope="module")
def reasoner_upstream():
    with FakeUpstream(quirks=["reasoning_content"], models=["deepseek-reasoner"]) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(main_upstream: FakeUpstream, reasoner_upstream: FakeUpstream, tmp_path_factory):
    routes = ROUTES.format(main=main_upstream.origin, reasoner=reasoner_upstream.base_url)
    with serve_routes(routes, tmp_path_factory.mktemp("routes")) as server:
        yield server


@pytest.fixture
def fake(main_upstream: FakeUpstream, reasoner_upstream: FakeUpstream) -> FakeUpstream:
    return reset_upstreams(main_upstream, reasoner_upstream)


@pytest.fixture
def client(proxy: ProxyServer) -> openai.OpenAI:
    with openai.OpenAI(base_url=proxy.base_url, api_key="sk-client", max_retries=0, timeout=10) as sdk:
        yield sdk


# -- requests and answers ---------------------------------------------------------------------------


def test_create_with_a_string_input(client: openai.OpenAI, fake: FakeUpstream) -> None:
    response = client.responses.create(model="fake-model", input="hello there")
    assert response.output_text == "echo: hello there"
    assert response.status == "completed"
    assert response.usage.input_tokens == 2
    assert response._request_id.startswith("req_")  # the proxy's x-request-id


def test_create_with_items_and_instructions(client: openai.OpenAI, fake: FakeUpstream) -> None:
    response = client.responses.create(
        model="fake-model", instructions="Be brief.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "first"}]},
               {"role": "assistant", "content": "ok"},
               {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "second"}]}])
    assert response.output_text == "echo: second"
    assert [m["role"] for m in fake.last_json["messages"]] == ["system", "user", "assistant", "user"]


def test_the_stream_helper(client: openai.OpenAI, fake: FakeUpstream) -> None:
    with client.responses.stream(model="fake-model", input="streams work fine") as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert deltas == final.output_text == "echo: streams work fine"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert final.usage.output_tokens == 4
    assert events[-1].type == "response.completed"


def test_a_function_tool_round_trip(client: openai.OpenAI, fake: FakeUpstream) -> None:
    first = client.responses.create(model="fake-model", input="please call get_weather for Paris",
                                    tools=[WEATHER_TOOL])
    (call,) = first.output
    assert (call.type, call.name) == ("function_call", "get_weather")
    assert json.loads(call.arguments) == {"q": "please call get_weather for Paris"}
    second = client.responses.create(
        model="fake-model", tools=[WEATHER_TOOL],
        input=[{"role": "user", "content": "please call get_weather for Paris"}, call.model_dump(),
               {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert second.output_text == "tool said: sunny"
    assert fake.last_json["messages"][-1] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}
    with client.responses.stream(model="fake-model", input="call get_weather", tools=[WEATHER_TOOL]) as stream:
        streamed = stream.get_final_response()
    assert [(item.type, item.name) for item in streamed.output] == [("function_call", "get_weather")]


PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch.",
              "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/s"}}


def test_a_custom_tool_round_trip(client: openai.OpenAI, fake: FakeUpstream) -> None:
    """Codex's freeform apply_patch against a chat upstream: the upstream sees a function taking
    `input`; the SDK sees a custom_tool_call whose input is the bare text, streamed or not."""
    prompt = 'call apply_patch with "*** Begin Patch"'
    first = client.responses.create(model="fake-model", input=prompt, tools=[PATCH_TOOL])
    (call,) = first.output
    assert (call.type, call.name, call.input) == ("custom_tool_call", "apply_patch", prompt)
    sent = fake.last_json["tools"][0]["function"]
    assert sent["name"] == "apply_patch" and list(sent["parameters"]["properties"]) == ["input"]
    assert "start: /.+/s" in sent["description"]

    second = client.responses.create(
        model="fake-model", tools=[PATCH_TOOL],
        input=[{"role": "user", "content": prompt}, call.model_dump(exclude_none=True),
               {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Done!"}])
    assert second.output_text == "tool said: Done!"
    replayed = fake.last_json["messages"][1]["tool_calls"][0]
    assert (replayed["type"], json.loads(replayed["function"]["arguments"])) == ("function", {"input": prompt})

    with client.responses.stream(model="fake-model", input=prompt, tools=[PATCH_TOOL]) as stream:
        events = list(stream)
        streamed = stream.get_final_response()
    check_responses_stream([event.model_dump(exclude_unset=True) for event in events])
    (item,) = streamed.output
    assert (item.type, item.input) == ("custom_tool_call", prompt)
    assert [event.input for event in events if event.type == "response.custom_tool_call_input.done"] == [prompt]


def test_parallel_calls_do_not_mix(proxy: ProxyServer, fake: FakeUpstream) -> None:
    async def run() -> list[str]:
        async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key="k", max_retries=0, timeout=10) as sdk:
            async def one(number: int) -> str:
                if number % 2:
                    response = await sdk.responses.create(model="fake-model", input=f"request {number}")
                    return response.output_text
                async with sdk.responses.stream(model="fake-model", input=f"request {number}") as stream:
                    return (await stream.get_final_response()).output_text

            return await asyncio.gather(*(one(number) for number in range(24)))

    assert asyncio.run(run()) == [f"echo: request {number}" for number in range(24)]


def test_parse_with_a_pydantic_model(client: openai.OpenAI, fake: FakeUpstream) -> None:
    class Weather(BaseModel):
        city: str
        temperature_c: int

    content = json.dumps({"city": "Paris", "temperature_c": 21})
    fake.expect("/v1/chat/completions", json_reply({
        "id": "c1", "object": "chat.completion", "created": 1, "model": "fake-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}}))
    parsed = client.responses.parse(model="fake-model", input="weather in Paris?", text_format=Weather)
    assert parsed.output_parsed == Weather(city="Paris", temperature_c=21)
    response_format = fake.last_json["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "Weather"
    assert response_format["json_schema"]["strict"] is True


def test_image_input(client: openai.OpenAI, fake: FakeUpstream) -> None:
    url = f"data:image/png;base64,{PIXEL}"
    response = client.responses.create(model="fake-model", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "what is this"},
        {"type": "input_image", "image_url": url, "detail": "low"}]}])
    assert response.output_text == "echo: what is this"
    parts = fake.last_json["messages"][0]["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": url, "detail": "low"}}


def test_reasoning(client: openai.OpenAI, reasoner_upstream: FakeUpstream, fake: FakeUpstream) -> None:
    response = client.responses.create(model="deepseek-reasoner", input="why", reasoning={"effort": "low"})
    assert reasoner_upstream.last_json["reasoning_effort"] == "low"
    reasoning, message = response.output
    assert reasoning.type == "reasoning"
    assert reasoning.content[0].text == "thinking about: why"
    assert message.content[0].text == "echo: why"
    with client.responses.stream(model="deepseek-reasoner", input="why") as stream:
        events = list(stream)
    deltas = "".join(event.delta for event in events if event.type == "response.reasoning_text.delta")
    assert deltas == "thinking about: why"
    assert fake.requests == []  # the route sent it to the reasoner only


def test_length_gives_incomplete(client: openai.OpenAI, fake: FakeUpstream) -> None:
    # the toy model answers "echo: <input>", one token a word; OpenAI's floor is 16 tokens
    words = " ".join(f"w{n}" for n in range(1, 21))
    response = client.responses.create(model="fake-model", input=words, max_output_tokens=16)
    assert (response.status, response.incomplete_details.reason) == ("incomplete", "max_output_tokens")
    assert response.output_text == "echo: " + " ".join(f"w{n}" for n in range(1, 16))
    assert fake.last_json["max_tokens"] == 16
    events = list(client.responses.create(model="fake-model", input=words, max_output_tokens=16,
                                          stream=True))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.output[0].status == "incomplete"


# -- failures -------------------------------------------------------------------------------------


def test_upstream_errors_become_the_sdks_exceptions(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.expect("/v1/chat/completions",
                error_reply(400, "bad request", param="messages"),
                error_reply(429, "Rate limit reached, try again in 3s", "requests", "rate_limit_exceeded",
                            headers={"retry-after": "3", "x-ratelimit-reset-requests": "3s"}),
                error_reply(500, "the model crashed", "server_error"),
                error_reply(429, "slow down", "requests", "rate_limit_exceeded", headers={"retry-after": "5"}))
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model="fake-model", input="x")
    with pytest.raises(openai.RateLimitError) as limited:
        client.responses.create(model="fake-model", input="x")
    with pytest.raises(openai.InternalServerError) as broken:
        client.responses.create(model="fake-model", input="x")
    with pytest.raises(openai.RateLimitError) as limited_stream:  # held status: no 200 stream first
        client.responses.create(model="fake-model", input="x", stream=True)
    assert bad.value.status_code == 400 and bad.value.param == "input"  # the client's name for it
    assert "bad request" in bad.value.message
    assert limited.value.response.headers["retry-after"] == "3"
    assert limited.value.response.headers["x-ratelimit-reset-requests"] == "3s"
    assert limited.value.code == "rate_limit_exceeded"
    assert broken.value.status_code == 500 and "the model crashed" in broken.value.message
    assert limited_stream.value.response.headers["retry-after"] == "5"


def test_bad_input_is_a_400_naming_the_param(client: openai.OpenAI, fake: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="fake-model", input=[{"type": "compaction",
                                                            "encrypted_content": "x"}])
    assert caught.value.param == "input[0]"
    with pytest.raises(openai.BadRequestError) as invalid:  # request validation, in OpenAI's words
        client.responses.create(model="fake-model", input="x", max_output_tokens=-1)
    assert (invalid.value.param, invalid.value.code) == ("max_output_tokens", "integer_below_min_value")
    assert invalid.value.message.endswith("Expected a value >= 16, but got -1 instead.")
    assert fake.requests == []


def test_the_upstream_dropping_mid_stream(client: openai.OpenAI, fake: FakeUpstream) -> None:
    frames = [{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
              for word in ("It ", "was ", "a ", "dark ")]
    fake.expect("/v1/chat/completions", sse_reply(frames, drop_after=2))
    events = list(client.responses.create(model="fake-model", input="x", stream=True))
    assert [event.type for event in events[-2:]] == ["error", "response.failed"]
    assert events[-1].response.error.code == "server_error"
    assert events[-1].response.output[0].content[0].text == "It was "
    # exclude_unset: the events as they were on the wire, without the SDK's defaults
    check_responses_stream([event.model_dump(mode="json", exclude_unset=True) for event in events])


def test_a_cancel_reaches_the_upstream(client: openai.OpenAI, fake: FakeUpstream) -> None:
    frames = [{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": {"content": f"w{n} "}, "finish_reason": None}]} for n in range(100)]
    fake.expect("/v1/chat/completions", sse_reply(frames, delay=0.05), hang_reply(10))
    with client.responses.stream(model="fake-model", input="x") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                break
    closed_at = time.monotonic()
    assert fake.disconnected.wait(5)
    stream_latency = fake.disconnected_at - closed_at
    fake.disconnected.clear()
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.3).responses.create(model="fake-model", input="x")
    gave_up_at = time.monotonic()
    assert fake.disconnected.wait(5)
    assert fake.disconnected_at - gave_up_at < 0.1
    assert stream_latency < 0.1
    assert fake.disconnects == 2


# -- routes ------------------------------------------------------------------------------------------


def test_model_routes(client: openai.OpenAI, fake: FakeUpstream, reasoner_upstream: FakeUpstream) -> None:
    assert client.responses.create(model="gpt-4o-mini", input="a").output_text == "echo: a"
    assert fake.last_json["model"] == "fake-model-renamed"
    client.responses.create(model="whatever", input="b")
    assert fake.last_json["model"] == "whatever"
    client.responses.create(model="deepseek-chat", input="c")
    assert reasoner_upstream.last_json["model"] == "deepseek-chat"
    assert len(fake.requests) == 2
    names = [model.id for model in client.models.list()]
    assert names == ["deepseek-reasoner", "gpt-4o", "gpt-4o-mini", "fake-model", "fake-model-renamed"]


def test_one_routes_file_serves_both_directions(client: openai.OpenAI, fake: FakeUpstream) -> None:
    completion = client.chat.completions.create(model="fake-model",
                                                messages=[{"role": "user", "content": "from a chat client"}])
    assert completion.choices[0].message.content == "echo: from a chat client"
    assert completion.usage.prompt_tokens == 4
    assert fake.last.path == "/v1/responses"
    response = client.responses.create(model="fake-model", input="from a responses client")
    assert response.output_text == "echo: from a responses client"
    assert fake.last.path == "/v1/chat/completions"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake-model", messages=[{"role": "wizard", "content": "x"}])
    assert caught.value.param.startswith("messages[0]")


# -- auth and logs ----------------------------------------------------------------------------------


def test_pass_through_auth() -> None:
    with FakeUpstream(quirks=["require_auth"], api_key="sk-users-own-key-1") as guarded:
        config = build_config(ServeOptions(mapping="openai-chat", upstream=guarded.base_url), env={})
        with ProxyServer(config) as proxy:
            good = openai.OpenAI(base_url=proxy.base_url, api_key="sk-users-own-key-1", max_retries=0)
            assert good.responses.create(model="m", input="hi").output_text == "echo: hi"
            bad = openai.OpenAI(base_url=proxy.base_url, api_key="sk-not-the-key-2", max_retries=0)
            with pytest.raises(openai.AuthenticationError):
                bad.responses.create(model="m", input="hi")
        assert guarded.requests[0].headers["authorization"] == "Bearer sk-users-own-key-1"


def test_held_key_auth_and_log_lines_without_keys(caplog) -> None:
    caplog.set_level(logging.INFO, logger="mapper.proxy")
    env = {"UPSTREAM_KEY": "sk-held-upstream-key-1", "PROXY_KEYS": "pk-team-a-1,pk-team-b-2"}
    with FakeUpstream(quirks=["require_auth"], api_key="sk-held-upstream-key-1") as guarded:
        config = build_config(ServeOptions(mapping="openai-chat", upstream=guarded.base_url,
                                           api_key_env="UPSTREAM_KEY", proxy_key_env="PROXY_KEYS",
                                           log_bodies=True), env=env)
        with ProxyServer(config) as proxy:
            team_b = openai.OpenAI(base_url=proxy.base_url, api_key="pk-team-b-2", max_retries=0)
            assert team_b.responses.create(model="m", input="hi").output_text == "echo: hi"
            with team_b.responses.stream(model="m", input="streamed") as stream:
                assert stream.get_final_response().output_text == "echo: streamed"
            stranger = openai.OpenAI(base_url=proxy.base_url, api_key="sk-held-upstream-key-1", max_retries=0)
            with pytest.raises(openai.AuthenticationError) as refused:
                stranger.responses.create(model="m", input="hi")
        assert len(guarded.requests) == 2
        assert {r.headers["authorization"] for r in guarded.requests} == {"Bearer sk-held-upstream-key-1"}
    assert refused.value.code == "invalid_api_key"
    formatter = JsonLines()
    lines = [json.loads(formatter.format(record)) for record in caplog.records if record.getMessage() == "request"]
    assert [(line["status"], line.get("upstream_status")) for line in lines] == [(200, 200), (200, 200), (401, None)]
    assert all({"route", "model", "duration_ms", "ttfb_ms"} <= set(line) for line in lines[:2])
    assert lines[2]["error"] == "Incorrect API key provided."
    assert lines[0]["tokens"] == {"input": 1, "output": 2, "total": 3}
    text = "\n".join(formatter.format(record) for record in caplog.records)
    for secret in ("sk-held-upstream-key-1", "pk-team-a-1", "pk-team-b-2"):
        assert secret not in text
