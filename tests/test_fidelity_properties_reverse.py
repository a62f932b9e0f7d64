"""Fidelity, reverse: chat requests drawn from the Chat Completions schema, through the proxy to a
Responses upstream (mapping ``openai-responses``).

The same two properties as ``test_fidelity_properties.py``, the other way: valid requests never
get a 5xx and never lose a field silently (each is read by a rule, named in ``x-mapper-dropped``,
or a refusal rule's field whose condition did not hold; the fields with a direct destination
carry their value there); invalid ones get a 400 naming the field, and the schema refuses them too.
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
from support.chat_invariants import check_chat_stream
from support.fidelity import EMPTY, Harness, dropped_header, same, schema_validator
from support.schema_requests import Drawer, requests, root, wrong_value
from support.schemas import assert_valid
from support.sse_reader import parse_sse_events
from support.upstream_replies import event_frame

SCHEMA = "chat.request"
MESSAGE = {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
           "content": [{"type": "output_text", "text": "ok", "annotations": []}]}
RESPONSE = {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": "m",
            "output": [MESSAGE], "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}}
EVENTS = [
    {"type": "response.created", "sequence_number": 0,
     "response": {**RESPONSE, "status": "in_progress", "output": [], "usage": None}},
    {"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
     "item": {**MESSAGE, "status": "in_progress", "content": []}},
    {"type": "response.output_text.delta", "sequence_number": 2, "item_id": "msg_1",
     "output_index": 0, "content_index": 0, "delta": "ok"},
    {"type": "response.output_item.done", "sequence_number": 3, "output_index": 0, "item": MESSAGE},
    {"type": "response.completed", "sequence_number": 4, "response": RESPONSE},
]
STREAM = "".join(event_frame(event) for event in EVENTS).encode()
SETTINGS = settings(max_examples=250, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.function_scoped_fixture])


def _limit(value: Any, up: Any) -> bool:
    # the Responses API refuses a limit below 16; the mapping raises smaller ones to 16
    return up.get("max_output_tokens") == max(value, 16)


# where a field's value lands in the Responses request, for the fields that land in one place
DESTINATIONS = {
    "model": same("model"),
    "temperature": same("temperature"),
    "top_p": same("top_p"),
    "user": same("user"),
    "safety_identifier": same("safety_identifier"),
    "service_tier": same("service_tier"),
    "prompt_cache_key": same("prompt_cache_key"),
    "prompt_cache_retention": same("prompt_cache_retention"),
    "prompt_cache_options": same("prompt_cache_options"),
    "metadata": same("metadata"),
    "max_completion_tokens": _limit,
    "reasoning_effort": lambda value, up: up.get("reasoning", {}).get("effort") == value,
    "verbosity": lambda value, up: up.get("text", {}).get("verbosity") == value,
}


def _answer(body: Any) -> httpx.Response:
    if body.get("stream"):
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=STREAM)
    return httpx.Response(200, json=RESPONSE)


@pytest.fixture(scope="module")
def harness():
    proxy = Harness("openai-responses", "/v1/chat/completions", _answer)
    yield proxy
    proxy.close()


_drawer = Drawer(SCHEMA)
_TEXT = st.text(string.ascii_letters + " ", min_size=1, max_size=12)
# messages: mostly a user turn (what clients send), sometimes any message kinds of the schema
MESSAGES = st.one_of(
    _TEXT.map(lambda text: [{"role": "user", "content": text}]),
    st.lists(_drawer.values(Ref("ChatCompletionRequestMessage")), min_size=1, max_size=3),
)
REQUESTS = requests(SCHEMA, {"model": st.just("m"), "messages": MESSAGES})


def _accepted(body: dict[str, Any]) -> bool:
    try:
        request_validator("openai.chat")(body)
    except InvalidRequest:
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
        check_chat_stream(parse_sse_events(response.text))
    else:
        assert_valid("chat.response", response.json())


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
    assert upstream is None
