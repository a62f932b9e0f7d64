"""Fidelity, forward: Responses requests drawn from the Responses schema, through the proxy to a chat
upstream (mapping ``openai-chat``).

Valid requests (drawn from ``schemas/openai/responses.request.json``, bounded in size) never get
a 5xx, and never lose a field silently: on a 200 each top-level field the client set is read by a
rule, named in ``x-mapper-dropped``, or a refusal rule's field whose condition did not hold; the
fields with a direct destination carry their value there. A 400 is an OpenAI error naming what
it refuses. Invalid requests (one top-level field given a wrong type, an out-of-range number or an
unknown enum value) get a 400 naming that field, and the schema itself (jsonschema, with the
supplement) refuses them too: validation is never stricter than the schema.
"""

from __future__ import annotations

import string
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st

from mapper.engine.errors import InvalidRequest
from mapper.engine.validation import request_validator
from mapper.engine.validation.shapes import Ref
from support.fidelity import EMPTY, Harness, dropped_header, same, schema_validator
from support.responses_invariants import check_responses_stream
from support.schema_requests import Drawer, field_shape, requests, root, wrong_value
from support.schemas import assert_valid
from support.sse_reader import parse_sse_events

SCHEMA = "responses.request"
COMPLETION = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                           "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
STREAM = (b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
          b'[{"index":0,"delta":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}\n\n'
          b"data: [DONE]\n\n")
SETTINGS = settings(max_examples=250, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.function_scoped_fixture])

# where a field's value lands in the chat request, for the fields that land in one place
DESTINATIONS = {
    "model": same("model"),
    "temperature": same("temperature"),
    "top_p": same("top_p"),
    "max_output_tokens": same("max_output_tokens", "max_tokens"),
    "top_logprobs": lambda value, up: up.get("top_logprobs") == value and up.get("logprobs") is True,
    "user": same("user"),
    "safety_identifier": same("safety_identifier"),
    "service_tier": same("service_tier"),
    "prompt_cache_key": same("prompt_cache_key"),
    "prompt_cache_retention": same("prompt_cache_retention"),
    "prompt_cache_options": same("prompt_cache_options"),
    "metadata": same("metadata"),
    "stream": same("stream"),
    "instructions": lambda value, up: up["messages"][0] == {"role": "system", "content": value},
}


def _answer(body: Any) -> httpx.Response:
    if body.get("stream"):
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=STREAM)
    return httpx.Response(200, json=COMPLETION)


@pytest.fixture(scope="module")
def harness():
    proxy = Harness("openai-chat", "/v1/responses", _answer)
    yield proxy
    proxy.close()


_drawer = Drawer(SCHEMA)
_TEXT = st.text(string.ascii_letters + " ", min_size=1, max_size=12)
# input: mostly what clients send (text, messages), sometimes any item kind of the schema
INPUT = st.one_of(
    _TEXT,
    st.lists(_drawer.values(Ref("EasyInputMessage")), min_size=1, max_size=2),
    _drawer.values(field_shape(SCHEMA, "input"), 1),
)
REQUESTS = requests(SCHEMA, {"model": st.just("m"), "input": INPUT})


def _accepted(body: dict[str, Any]) -> bool:
    try:
        request_validator("openai.responses")(body)
    except InvalidRequest:
        # the drawn value was refused: the schema must refuse it too (never stricter than it)
        assert not schema_validator(SCHEMA).is_valid(body), "validation refused what the schema allows"
        return False
    return True


@SETTINGS
@given(body=REQUESTS)
def test_a_valid_request_is_converted_or_refused_and_nothing_is_lost_silently(
        harness: Harness, body: dict[str, Any]) -> None:
    assume(_accepted(body))
    response, upstream = harness.post(body)
    note(f"{response.status_code} {response.text[:300]}")
    event(f"status {response.status_code}")
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["message"]
        assert upstream is None
        return
    assert upstream is not None
    dropped = dropped_header(response)
    for name, value in body.items():
        if value is None:
            continue  # null is "not given"
        assert harness.accounted(name, dropped), f"{name} was lost without a word"
        if name in DESTINATIONS and value not in EMPTY:
            assert DESTINATIONS[name](value, upstream), f"{name}={value!r} did not reach the upstream"
    if body.get("stream") is True:
        check_responses_stream(parse_sse_events(response.text))
    else:
        assert_valid("responses.response", response.json())


FIELDS = sorted(name for name, _ in root(SCHEMA).properties if wrong_value(SCHEMA, name) is not None)


@st.composite
def invalid_requests(draw: Any) -> tuple[str, dict[str, Any]]:
    body = draw(REQUESTS)
    name = draw(st.sampled_from(FIELDS))
    return name, {**body, name: draw(wrong_value(SCHEMA, name))}


@SETTINGS
@given(case=invalid_requests())
def test_an_invalid_value_is_a_400_naming_the_field(harness: Harness, case: tuple[str, dict]) -> None:
    name, body = case
    assume(_accepted({key: value for key, value in body.items() if key != name}))
    assert not schema_validator(SCHEMA).is_valid(body), f"the schema allows {name}={body[name]!r}"
    response, upstream = harness.post(body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == name or error["param"].startswith((f"{name}.", f"{name}[")), error
    assert error["code"] in ("invalid_type", "invalid_value", "integer_below_min_value",
                             "integer_above_max_value", "decimal_below_min_value",
                             "decimal_above_max_value", "missing_required_parameter",
                             "empty_array", "empty_string"), error
    assert upstream is None
