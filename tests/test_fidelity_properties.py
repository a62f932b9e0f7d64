"""Fidelity both ways: requests drawn from the client API's schema, through the proxy app.

Per direction (``forward``: Responses client → chat upstream, mapping ``openai-chat``;
``reverse``: chat client → Responses upstream, ``openai-responses``), with a canned upstream that
answers well, so any 5xx is mapper's:

* valid requests (drawn from ``schemas/openai/<api>.request.json``, bounded in size) never get a
  5xx and never lose a field silently: on a 200 each top-level field the client set is read by a
  rule, named in ``x-mapper-dropped``, or a refusal rule's field whose condition did not hold, and
  the fields with a direct destination carry their value there; a 400 is an OpenAI error;
* invalid requests (one top-level field given a wrong type, a number past a bound or a string
  outside an enum) get a 400 naming that field, and the schema itself (jsonschema, with the
  supplement) refuses them too: validation is never stricter than the schema.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, Callable

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mapper.engine.validation.shapes import Ref
from support.chat_invariants import check_chat_stream
from support.fidelity import Harness, accepted, check_invalid, check_valid, invalid_requests, same
from support.responses_invariants import check_responses_stream
from support.schema_requests import Drawer, field_shape, requests
from support.schemas import assert_valid
from support.sse_reader import parse_sse_events
from support.upstream_replies import event_frame

Json = Any
SETTINGS = settings(max_examples=250, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.function_scoped_fixture])
_TEXT = st.text(string.ascii_letters + " ", min_size=1, max_size=12)


@dataclass(frozen=True)
class Direction:
    schema: str  # the client API's request schema
    mapping: str
    path: str
    answer: Callable[[Json], httpx.Response]  # the canned upstream
    requests: st.SearchStrategy[Json]
    destinations: dict[str, Callable[[Json, Json], bool]]  # where a field's value lands
    answer_schema: str
    check_stream: Callable[[list[Json]], Any]

    def check_answer(self, response: httpx.Response, body: Json) -> None:
        if body.get("stream") is True:
            self.check_stream(parse_sse_events(response.text))
        else:
            assert_valid(self.answer_schema, response.json())


def _canned(body: Json, stream: bytes) -> Callable[[Json], httpx.Response]:
    def answer(request: Json) -> httpx.Response:
        if request.get("stream"):
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=stream)
        return httpx.Response(200, json=body)
    return answer


# -- forward: a Responses client, a chat upstream -----------------------------------------------

COMPLETION = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                           "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
CHUNKS = (b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
          b'[{"index":0,"delta":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}\n\n'
          b"data: [DONE]\n\n")
_responses = Drawer("openai/responses.request")
FORWARD = Direction(
    schema="openai/responses.request", mapping="openai-chat", path="/v1/responses",
    answer=_canned(COMPLETION, CHUNKS),
    # input: mostly what clients send (text, messages), sometimes any item kind of the schema
    requests=requests("openai/responses.request", {"model": st.just("m"), "input": st.one_of(
        _TEXT,
        st.lists(_responses.values(Ref("EasyInputMessage")), min_size=1, max_size=2),
        _responses.values(field_shape("openai/responses.request", "input"), 1))}),
    destinations={
        **{name: same(name) for name in (
            "model", "temperature", "top_p", "user", "safety_identifier", "service_tier",
            "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options", "metadata",
            "stream")},
        "max_output_tokens": same("max_output_tokens", "max_tokens"),
        "top_logprobs": lambda value, up: up.get("top_logprobs") == value and up.get("logprobs") is True,
        "instructions": lambda value, up: up["messages"][0] == {"role": "system", "content": value},
    },
    answer_schema="responses.response", check_stream=check_responses_stream)


# -- reverse: a chat client, a Responses upstream -----------------------------------------------

MESSAGE = {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
           "content": [{"type": "output_text", "text": "ok", "annotations": []}]}
RESPONSE = {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": "m",
            "output": [MESSAGE], "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}}
EVENTS = "".join(event_frame(event) for event in [
    {"type": "response.created", "sequence_number": 0,
     "response": {**RESPONSE, "status": "in_progress", "output": [], "usage": None}},
    {"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
     "item": {**MESSAGE, "status": "in_progress", "content": []}},
    {"type": "response.output_text.delta", "sequence_number": 2, "item_id": "msg_1",
     "output_index": 0, "content_index": 0, "delta": "ok"},
    {"type": "response.output_item.done", "sequence_number": 3, "output_index": 0, "item": MESSAGE},
    {"type": "response.completed", "sequence_number": 4, "response": RESPONSE},
]).encode()
_chat = Drawer("openai/chat.request")
REVERSE = Direction(
    schema="openai/chat.request", mapping="openai-responses", path="/v1/chat/completions",
    answer=_canned(RESPONSE, EVENTS),
    # messages: mostly a user turn (what clients send), sometimes any message kinds of the schema
    requests=requests("openai/chat.request", {"model": st.just("m"), "messages": st.one_of(
        _TEXT.map(lambda text: [{"role": "user", "content": text}]),
        st.lists(_chat.values(Ref("ChatCompletionRequestMessage")), min_size=1, max_size=3))}),
    destinations={
        **{name: same(name) for name in (
            "model", "temperature", "top_p", "user", "safety_identifier", "service_tier",
            "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options", "metadata")},
        # the Responses API refuses a limit below 16; the mapping raises a smaller one to 16
        "max_completion_tokens": lambda value, up: up.get("max_output_tokens") == max(value, 16),
        "reasoning_effort": lambda value, up: up.get("reasoning", {}).get("effort") == value,
        "verbosity": lambda value, up: up.get("text", {}).get("verbosity") == value,
    },
    answer_schema="chat.response", check_stream=check_chat_stream)

DIRECTIONS = {"forward": FORWARD, "reverse": REVERSE}


@pytest.fixture(scope="module", params=list(DIRECTIONS))
def direction(request: pytest.FixtureRequest) -> Any:
    chosen = DIRECTIONS[request.param]
    proxy = Harness(chosen.mapping, chosen.path, chosen.answer)
    yield chosen, proxy
    proxy.close()


@SETTINGS
@given(data=st.data())
def test_a_valid_request_is_converted_or_refused_and_nothing_is_lost_silently(
        direction: tuple[Direction, Harness], data: st.DataObject) -> None:
    chosen, harness = direction
    body = data.draw(chosen.requests, label="request")
    assume(accepted(chosen.schema, body))
    check_valid(harness, body, chosen.destinations, chosen.check_answer)


@SETTINGS
@given(data=st.data())
def test_an_invalid_value_is_a_400_naming_the_field(direction: tuple[Direction, Harness],
                                                    data: st.DataObject) -> None:
    chosen, harness = direction
    name, body = data.draw(invalid_requests(chosen.schema, chosen.requests), label="field, request")
    assume(accepted(chosen.schema, {key: value for key, value in body.items() if key != name}))
    check_invalid(harness, chosen.schema, name, body)
