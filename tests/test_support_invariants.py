"""Tests for tests/support: the schema helpers, the SSE reader and the stream invariant checkers.

The checkers judge every stream the suite emits, so they are tested harder than usual: each oracle
sample must get its expected verdict, and every numbered rule (R1-R11, C1-C7) has at least one
hand-built stream that breaks it and must be caught with that rule's tag.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.chat_invariants import check_chat_stream
from support.generators import mutated_stream
from support.invariants import StreamInvariantError
from support.responses_invariants import check_responses_stream
from support.schemas import assert_valid, assert_valid_event, event_types, event_validator, validator
from support.sse_reader import DONE, parse_sse_events

SAMPLES = Path(__file__).parent / "data" / "oracle_sse"
EXPECTED = json.loads((SAMPLES / "EXPECTED.json").read_text())["streams"]

# Relaxations the oracle's "valid" samples need. They are hand-written in the shape OpenAI itself
# sends, which is looser than what mapper must emit (PEERS.md §B).
SAMPLE_OPTIONS: dict[str, dict[str, Any]] = {
    # response.failed with no `error` event before it
    "responses.failed.valid.sse": {"require_error_event": False},
    # max_output_tokens: the message is done (status incomplete) with its content part still open
    "responses.incomplete-max-output-tokens.valid.sse": {"allow_open_parts_in_incomplete_item": True},
    "chat.finish-length.valid.sse": {"expect_usage": True},
    "chat.text+usage.valid.sse": {"expect_usage": True},
    "chat.parallel-tool-calls.valid.sse": {"expect_usage": False},
}
# the rule each relaxation switches off, proving the strict default still catches the sample
STRICT_FAILURES = {
    "responses.failed.valid.sse": ("R9", "must directly follow an `error` event"),
    "responses.incomplete-max-output-tokens.valid.sse": ("R5", "content part content_index=0 (added #10) is open"),
}
# each invalid sample's one defect: (rule, text the failure must contain)
DEFECTS = {
    "chat.tool-call-index-gap.invalid.sse": ("C4", "tool call index 1 arrives before index 0"),
    "chat.tool-call-without-function.invalid.sse": ("C4", "needs id, type 'function' and function.name"),
    "responses.delta-before-item-added.invalid.sse": ("R4", "output_index 1 was never added"),
    "responses.delta-final-mismatch.invalid.sse": ("R6", "'Hello there!' != the deltas' sum 'Hello world!'"),
    "responses.item-id-changed.invalid.sse": ("R7", "item id is 'msg_99' at done, 'msg_01' when added"),
    "responses.missing-created.invalid.sse": ("R1", "the first event must be response.created"),
    "responses.response-id-changed.invalid.sse": ("R7", "response.id is 'resp_OTHER'"),
    "responses.truncated-no-completed.invalid.sse": ("R8", "no terminal event"),
    "responses.unfinished-item.invalid.sse": ("R5", "output_index 1 (msg_01) was added at #2 but never done"),
}


def _sample(name: str) -> list[Any]:
    return parse_sse_events((SAMPLES / name).read_bytes())


def _checker(name: str) -> Callable[..., dict[str, Any]]:
    return check_chat_stream if name.startswith("chat.") else check_responses_stream


def _assert_breaks(check: Callable[..., Any], events: list[Any], rule: str, fragment: str, **options: Any) -> None:
    with pytest.raises(StreamInvariantError) as caught:
        check(events, **options)
    assert rule in caught.value.rules, str(caught.value)
    assert fragment in str(caught.value), str(caught.value)


# ------------------------------------------------------------------------------------------------
# oracle samples


def test_every_sample_is_classified() -> None:
    files = {path.name for path in SAMPLES.glob("*.sse")}
    assert files == set(EXPECTED)
    valid = {name for name in files if ".valid." in name or ".error-surfaced." in name}
    assert files - valid == set(DEFECTS)


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if ".valid." in n))
def test_valid_sample_passes(name: str) -> None:
    summary = _checker(name)(_sample(name), **SAMPLE_OPTIONS.get(name, {}))
    if name.startswith("responses."):
        assert summary["terminal"] == _sample(name)[-1]["type"]
        assert summary["response"] == _sample(name)[-1]["response"]


@pytest.mark.parametrize("name", sorted(STRICT_FAILURES))
def test_valid_sample_needs_its_relaxation(name: str) -> None:
    rule, fragment = STRICT_FAILURES[name]
    _assert_breaks(check_responses_stream, _sample(name), rule, fragment)


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_invalid_sample_fails_on_its_defect(name: str) -> None:
    rule, fragment = DEFECTS[name]
    _assert_breaks(_checker(name), _sample(name), rule, fragment)


def test_error_surfaced_sample_passes_and_reports_the_error() -> None:
    summary = check_chat_stream(_sample("chat.error-mid-stream.error-surfaced.sse"))
    assert summary["error"]["type"] == "server_error"
    assert summary["content"] == "Hel"
    assert summary["finish_reason"] is None


def test_sample_summaries() -> None:
    text = check_responses_stream(_sample("responses.text+reasoning.valid.sse"))
    assert (text["terminal"], text["status"], text["items"], text["text"]) == (
        "response.completed", "completed", ["reasoning", "message"], "Hello there!"
    )
    tools = check_chat_stream(_sample("chat.parallel-tool-calls.valid.sse"))
    assert tools["tool_calls"] == [
        {"id": "call_A", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"id": "call_B", "name": "get_weather", "arguments": '{"city": "Oslo"}'},
    ]
    assert tools["finish_reason"] == "tool_calls"
    usage = check_chat_stream(_sample("chat.text+usage.valid.sse"), expect_usage=True)
    assert usage["usage"]["total_tokens"] == 25


# ------------------------------------------------------------------------------------------------
# schemas


def test_validators_are_cached() -> None:
    assert validator("chat.chunk") is validator("chat.chunk")
    assert event_validator("response.output_text.delta") is event_validator("response.output_text.delta")
    assert "response.completed" in event_types() and "error" in event_types()


def test_assert_valid_lists_every_error_with_its_path() -> None:
    with pytest.raises(AssertionError) as caught:
        assert_valid("chat.chunk", {"id": 1, "object": "chat.completion.chunk", "choices": [{"delta": {"role": "bot"}}]})
    message = str(caught.value)
    for fragment in ("$.id: 1 is not of type 'string'", "$.choices[0].delta.role", "'created' is a required property"):
        assert fragment in message
    assert "best match first" in message


def test_assert_valid_event_picks_the_definition_by_type() -> None:
    with pytest.raises(AssertionError) as caught:
        assert_valid_event({"type": "response.output_text.delta", "sequence_number": 0, "item_id": "m"})
    assert "'output_index' is a required property" in str(caught.value)
    assert "not valid under any" not in str(caught.value)
    with pytest.raises(AssertionError, match="not a known Responses stream event type"):
        assert_valid_event({"type": "response.nonsense", "sequence_number": 0})


def test_event_refs_resolve_inside_the_bundle() -> None:
    # ResponseCompletedEvent reaches Response through $ref, and Response reaches items through more
    completed = _sample("responses.text+reasoning.valid.sse")[-1]
    assert_valid_event(completed)
    broken = copy.deepcopy(completed)
    broken["response"]["output"][1]["content"][0]["text"] = 5
    with pytest.raises(AssertionError, match=r"\$\.response\.output\[1\]"):
        assert_valid_event(broken)


# ------------------------------------------------------------------------------------------------
# the SSE reader


def test_parse_sse_events_reads_frames() -> None:
    body = (
        b": comment\r\n"
        b"event: response.created\r\ndata: {\"type\": \"response.created\",\r\ndata:  \"n\": 1}\r\n\r\n"
        b"id: 7\nretry: 10\ndata: {\"object\": \"chat.completion.chunk\"}\n\n"
        b"data: [DONE]\n\n"
    )
    assert parse_sse_events(body) == [
        {"type": "response.created", "n": 1},
        {"object": "chat.completion.chunk"},
        DONE,
    ]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'event: response.created\ndata: {"type": "response.completed"}\n\n', "data type is 'response.completed'"),
        (b"event: ping\n\n", "without a data line"),
        (b'data: {"type": "error"}\n', "does not end with a blank line"),
        (b"data: {oops}\n\n", "data is not JSON"),
    ],
)
def test_parse_sse_events_rejects(body: bytes, fragment: str) -> None:
    with pytest.raises(AssertionError, match=fragment.replace("(", r"\(")):
        parse_sse_events(body)


# ------------------------------------------------------------------------------------------------
# hand-built Responses streams
#
# The builders below emit the canonical sequences of PEERS.md §B; each negative case breaks one
# thing in a valid stream and names the rule that must catch it.

_TEMPLATE = _sample("responses.text+reasoning.valid.sse")[-1]["response"]


def _response(status: str, output: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    response = copy.deepcopy(_TEMPLATE)
    response.update(id="resp_test", status=status, output=copy.deepcopy(output), **fields)
    if status == "in_progress":
        response.update(usage=None)
        response.pop("completed_at", None)
    return response


def _event(event_type: str, **fields: Any) -> dict[str, Any]:
    return {"type": event_type, "sequence_number": -1, **fields}


def _numbered(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # copy one by one: a list may hold the same event twice, and each copy needs its own number
    events = [copy.deepcopy(event) for event in events]
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


def _message(index: int, item_id: str, deltas: list[str], *, status: str = "completed") -> list[dict[str, Any]]:
    text = "".join(deltas)
    where = {"item_id": item_id, "output_index": index, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    item = {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    return [
        _event("response.output_item.added", output_index=index, item=item),
        _event("response.content_part.added", **where, part=part),
        *(_event("response.output_text.delta", **where, delta=delta, logprobs=[]) for delta in deltas),
        _event("response.output_text.done", **where, text=text, logprobs=[]),
        _event("response.content_part.done", **where, part={**part, "text": text}),
        _event("response.output_item.done", output_index=index,
               item={**item, "status": status, "content": [{**part, "text": text}]}),
    ]


def _refusal(index: int, item_id: str, deltas: list[str]) -> list[dict[str, Any]]:
    text = "".join(deltas)
    where = {"item_id": item_id, "output_index": index, "content_index": 0}
    item = {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    return [
        _event("response.output_item.added", output_index=index, item=item),
        _event("response.content_part.added", **where, part={"type": "refusal", "refusal": ""}),
        *(_event("response.refusal.delta", **where, delta=delta) for delta in deltas),
        _event("response.refusal.done", **where, refusal=text),
        _event("response.content_part.done", **where, part={"type": "refusal", "refusal": text}),
        _event("response.output_item.done", output_index=index,
               item={**item, "status": "completed", "content": [{"type": "refusal", "refusal": text}]}),
    ]


def _call(index: int, item_id: str, name: str, deltas: list[str]) -> list[dict[str, Any]]:
    arguments = "".join(deltas)
    where = {"item_id": item_id, "output_index": index}
    item = {"id": item_id, "type": "function_call", "status": "in_progress", "arguments": "",
            "call_id": f"call_{item_id}", "name": name}
    return [
        _event("response.output_item.added", output_index=index, item=item),
        *(_event("response.function_call_arguments.delta", **where, delta=delta) for delta in deltas),
        _event("response.function_call_arguments.done", **where, name=name, arguments=arguments),
        _event("response.output_item.done", output_index=index,
               item={**item, "status": "completed", "arguments": arguments}),
    ]


def _custom_call(index: int, item_id: str, name: str, deltas: list[str]) -> list[dict[str, Any]]:
    text = "".join(deltas)
    where = {"item_id": item_id, "output_index": index}
    item = {"id": item_id, "type": "custom_tool_call", "input": "", "call_id": f"call_{item_id}",
            "name": name}
    return [
        _event("response.output_item.added", output_index=index, item=item),
        *(_event("response.custom_tool_call_input.delta", **where, delta=delta) for delta in deltas),
        _event("response.custom_tool_call_input.done", **where, input=text),
        _event("response.output_item.done", output_index=index, item={**item, "input": text}),
    ]


def _summary(index: int, item_id: str, deltas: list[str]) -> list[dict[str, Any]]:
    text = "".join(deltas)
    where = {"item_id": item_id, "output_index": index, "summary_index": 0}
    item = {"id": item_id, "type": "reasoning", "summary": []}
    return [
        _event("response.output_item.added", output_index=index, item=item),
        _event("response.reasoning_summary_part.added", **where, part={"type": "summary_text", "text": ""}),
        *(_event("response.reasoning_summary_text.delta", **where, delta=delta) for delta in deltas),
        _event("response.reasoning_summary_text.done", **where, text=text),
        _event("response.reasoning_summary_part.done", **where, part={"type": "summary_text", "text": text}),
        _event("response.output_item.done", output_index=index,
               item={**item, "summary": [{"type": "summary_text", "text": text}]}),
    ]


def _thinking(index: int, item_id: str, deltas: list[str]) -> list[dict[str, Any]]:
    """Raw chain of thought (PEERS.md §B 5b): a reasoning item with a reasoning_text part."""
    text = "".join(deltas)
    where = {"item_id": item_id, "output_index": index, "content_index": 0}
    item = {"id": item_id, "type": "reasoning", "summary": []}
    return [
        _event("response.output_item.added", output_index=index, item=item),
        _event("response.content_part.added", **where, part={"type": "reasoning_text", "text": ""}),
        *(_event("response.reasoning_text.delta", **where, delta=delta) for delta in deltas),
        _event("response.reasoning_text.done", **where, text=text),
        _event("response.content_part.done", **where, part={"type": "reasoning_text", "text": text}),
        _event("response.output_item.done", output_index=index,
               item={**item, "content": [{"type": "reasoning_text", "text": text}]}),
    ]


def _stream(*items: list[dict[str, Any]], terminal: str = "response.completed", **response: Any) -> list[dict[str, Any]]:
    body = [event for item in items for event in item]
    output = [event["item"] for event in body if event["type"] == "response.output_item.done"]
    status = {"response.completed": "completed", "response.incomplete": "incomplete", "response.failed": "failed"}
    prelude = [
        _event("response.created", response=_response("in_progress", [])),
        _event("response.in_progress", response=_response("in_progress", [])),
    ]
    if terminal == "response.failed":
        body.append(_event("error", code="server_error", message="upstream failed", param=None))
        response.setdefault("error", {"code": "server_error", "message": "upstream failed"})
    if terminal == "response.incomplete":
        response.setdefault("incomplete_details", {"reason": "max_output_tokens"})
    final = _event(terminal, response=_response(response.pop("status", status[terminal]), output, **response))
    return _numbered([*prelude, *body, final])


def _text_stream() -> list[dict[str, Any]]:
    return _stream(_message(0, "msg_A", ["Hel", "lo"]))


def _call_stream() -> list[dict[str, Any]]:
    return _stream(_call(0, "fc_A", "get_weather", ['{"city":', '"Paris"}']))


def _two_call_stream() -> list[dict[str, Any]]:
    return _stream(_call(0, "fc_A", "f", ['{"a":1}']), _call(1, "fc_B", "g", ['{"b":', "2}"]))


def _incomplete_stream() -> list[dict[str, Any]]:
    return _stream(_message(0, "msg_A", ["Hel", "lo"], status="incomplete"), terminal="response.incomplete")


VALID_RESPONSES = {
    "plain_text": _text_stream,
    "single_call": _call_stream,
    "two_parallel_calls": _two_call_stream,
    "text_then_call": lambda: _stream(_message(0, "msg_A", ["Hi"]), _call(1, "fc_B", "f", ["{}"])),
    "custom_call": lambda: _stream(_custom_call(0, "ctc_A", "apply_patch", ["*** Begin", " Patch"])),
    "summary_then_text": lambda: _stream(_summary(0, "rs_A", ["**Plan**", " it"]), _message(1, "msg_B", ["Hi"])),
    "reasoning_text_then_text": lambda: _stream(_thinking(0, "rs_A", ["let me", " think"]), _message(1, "msg_B", ["Hi"])),
    "refusal": lambda: _stream(_refusal(0, "msg_A", ["I can't", " help"])),
    "no_output": lambda: _stream(),
    "incomplete": _incomplete_stream,
    "failed_after_error": lambda: _stream(_message(0, "msg_A", ["Hel"]), terminal="response.failed"),
    "done_sentinel": lambda: [*_text_stream(), DONE],
}


@pytest.mark.parametrize("name", sorted(VALID_RESPONSES))
def test_hand_built_valid_responses_stream(name: str) -> None:
    events = VALID_RESPONSES[name]()
    summary = check_responses_stream(events)
    assert summary["response"] == [e for e in events if e != DONE][-1]["response"]


def test_done_sentinel_policy() -> None:
    check_responses_stream([*_text_stream(), DONE], done_sentinel=True)
    check_responses_stream(_text_stream(), done_sentinel=False)
    _assert_breaks(check_responses_stream, _text_stream(), "R8", 'does not end with "[DONE]"', done_sentinel=True)
    _assert_breaks(check_responses_stream, [*_text_stream(), DONE], "R8", "which this caller forbids",
                   done_sentinel=False)


def test_completed_with_incomplete_status_needs_the_compatibility_flag() -> None:
    events = _stream(_message(0, "msg_A", ["Hel"], status="incomplete"), status="incomplete",
                     incomplete_details={"reason": "max_output_tokens"})
    _assert_breaks(check_responses_stream, events, "R9", "response.status is 'incomplete'")
    summary = check_responses_stream(events, allow_completed_incomplete=True)
    assert (summary["terminal"], summary["status"]) == ("response.completed", "incomplete")


def _edit(events: list[dict[str, Any]], index: int, **fields: Any) -> list[dict[str, Any]]:
    events = copy.deepcopy(events)
    events[index].update(fields)
    return events


def _find(events: list[dict[str, Any]], event_type: str, nth: int = 0) -> int:
    return [i for i, event in enumerate(events) if event.get("type") == event_type][nth]


def _without(events: list[dict[str, Any]], event_type: str, nth: int = 0) -> list[dict[str, Any]]:
    events = copy.deepcopy(events)
    del events[_find(events, event_type, nth)]
    return _numbered(events)


def _moved(events: list[dict[str, Any]], source: int, target: int) -> list[dict[str, Any]]:
    events = copy.deepcopy(events)
    events.insert(target, events.pop(source))
    return _numbered(events)


def _final(events: list[dict[str, Any]]) -> dict[str, Any]:
    return events[-1]["response"]


def _with_final(events: list[dict[str, Any]], change: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    events = copy.deepcopy(events)
    change(_final(events))
    return events


T = _text_stream()
C = _call_stream()
U = _stream(_custom_call(0, "ctc_A", "apply_patch", ["*** Begin", " Patch"]))
I = _incomplete_stream()
F = VALID_RESPONSES["failed_after_error"]()
TEXT_DELTA = _find(T, "response.output_text.delta")
TEXT_DONE = _find(T, "response.output_text.done")
PART_DONE = _find(T, "response.content_part.done")
ITEM_DONE = _find(T, "response.output_item.done")

def _shifted(events: list[dict[str, Any]], start: int) -> list[dict[str, Any]]:
    """Add 1 to every sequence_number from ``start`` on (a skipped number)."""
    return [{**e, "sequence_number": e["sequence_number"] + (i >= start)} for i, e in enumerate(events)]


def _dropped_field(events: list[dict[str, Any]], index: int, key: str) -> list[dict[str, Any]]:
    events = copy.deepcopy(events)
    del events[index][key]
    return events


def _done_item(events: list[dict[str, Any]], **fields: Any) -> list[dict[str, Any]]:
    index = _find(events, "response.output_item.done")
    return _edit(events, index, item={**events[index]["item"], **fields})


ARGUMENTS_DONE = _find(C, "response.function_call_arguments.done")
BROKEN_RESPONSES: dict[str, tuple[str, str, Callable[[], list[Any]]]] = {
    # name: (rule, message fragment, broken stream)
    "in_progress_first": ("R1", "the first event must be response.created", lambda: _moved(T, 1, 0)),
    "created_twice": ("R1", "response.created again", lambda: _numbered([*T[:2], T[0], *T[2:]])),
    "sequence_starts_at_1": ("R2", "sequence_number is 1, expected 0", lambda: _shifted(T, 0)),
    "sequence_skips": ("R2", "sequence_number is 4, expected 3", lambda: _shifted(T, 3)),
    "sequence_missing": ("R2", "sequence_number is None", lambda: _edit(T, 2, sequence_number=None)),
    "schema_missing_logprobs": (
        "R3", "'logprobs' is a required property", lambda: _dropped_field(T, TEXT_DELTA, "logprobs")
    ),
    "schema_unknown_type": (
        "R3", "not a known Responses stream event type",
        lambda: _numbered([*T[:2], _event("response.bogus"), *T[2:]]),
    ),
    "first_item_at_index_1": (
        "R4", "output_index 1 added, but the next index is 0",
        lambda: _stream([{**e, "output_index": 1} for e in _message(0, "msg_A", ["x"])]),
    ),
    "index_added_twice": (
        "R4", "output_index 0 was already added",
        lambda: _stream(_message(0, "msg_A", ["x"]), _message(0, "msg_B", ["y"])),
    ),
    "delta_after_item_done": ("R4", "output_index 0 is already done", lambda: _moved(T, TEXT_DELTA, ITEM_DONE)),
    "item_never_done": ("R5", "was added at #2 but never done", lambda: _without(T, "response.output_item.done")),
    "item_done_twice": (
        "R5", "a second output_item.done", lambda: _numbered([*T[:ITEM_DONE + 1], T[ITEM_DONE], *T[ITEM_DONE + 1:]])
    ),
    "part_never_done": (
        "R5", "content part content_index=0 (added #3) is open", lambda: _without(T, "response.content_part.done")
    ),
    "delta_after_part_done": (
        "R5", "content_index 0 of output_index 0 is already done", lambda: _moved(T, TEXT_DELTA, PART_DONE)
    ),
    "delta_before_part_added": (
        "R5", "content_index 0 of output_index 0 was never added", lambda: _moved(T, TEXT_DELTA, 3)
    ),
    "content_index_not_dense": (
        "R5", "content_index 1 added, but the next one is 0",
        lambda: [{**e, "content_index": 1} if "content_index" in e else e for e in T],
    ),
    "text_done_mismatch": ("R6", "text 'Hello!' != the deltas' sum 'Hello'", lambda: _edit(T, TEXT_DONE, text="Hello!")),
    "part_done_mismatch": (
        "R6", "part text 'Help' != the deltas' sum 'Hello'",
        lambda: _edit(T, PART_DONE, part={**T[PART_DONE]["part"], "text": "Help"}),
    ),
    "item_done_text_mismatch": (
        "R6", "item content[0] text 'Help'",
        lambda: _done_item(T, content=[{**T[ITEM_DONE]["item"]["content"][0], "text": "Help"}]),
    ),
    "text_done_logprobs_mismatch": (
        "R6", "output_text.done logprobs [('Hi', -0.5)] != the deltas' []",
        lambda: _edit(T, TEXT_DONE, logprobs=[{"token": "Hi", "logprob": -0.5, "top_logprobs": []}]),
    ),
    "arguments_done_mismatch": (
        "R6", "arguments '{}' != the deltas' sum", lambda: _edit(C, ARGUMENTS_DONE, arguments="{}")
    ),
    "arguments_done_wrong_name": (
        "R6", "name is 'get_time', the item's name is 'get_weather'", lambda: _edit(C, ARGUMENTS_DONE, name="get_time")
    ),
    "item_done_arguments_mismatch": ("R6", "item arguments '{}' != streamed", lambda: _done_item(C, arguments="{}")),
    "custom_input_done_mismatch": (
        "R6", "input '*** Begin' != the deltas' sum '*** Begin Patch'",
        lambda: _edit(U, _find(U, "response.custom_tool_call_input.done"), input="*** Begin"),
    ),
    "custom_item_done_input_mismatch": ("R6", "item input 'x' != streamed", lambda: _done_item(U, input="x")),
    "custom_input_for_function_call": (
        "R5", "a response.custom_tool_call_input.delta event for a 'function_call' item",
        lambda: _edit(C, _find(C, "response.function_call_arguments.delta"),
                      type="response.custom_tool_call_input.delta"),
    ),
    "delta_item_id_changed": ("R7", "item_id 'msg_Z' != 'msg_A'", lambda: _edit(T, TEXT_DELTA, item_id="msg_Z")),
    "done_item_id_changed": ("R7", "item id is 'msg_Z' at done, 'msg_A' when added", lambda: _done_item(T, id="msg_Z")),
    "response_id_changed": (
        "R7", "response.id is 'resp_other'", lambda: _with_final(T, lambda response: response.update(id="resp_other"))
    ),
    "final_item_id_changed": (
        "R7", "final output[0] has id 'msg_Z', the streamed item there is 'msg_A'",
        lambda: _with_final(T, lambda response: response["output"][0].update(id="msg_Z")),
    ),
    "no_terminal": ("R8", "no terminal event", lambda: T[:-1]),
    "event_after_terminal": (
        "R8", "event after the terminal event #9",
        lambda: _numbered([*T, _event("response.in_progress", response=T[1]["response"])]),
    ),
    "two_terminals": ("R8", "a second terminal event", lambda: _numbered([*T, T[-1]])),
    "done_sentinel_in_the_middle": ("R8", '"[DONE]" before the end', lambda: [*T[:3], DONE, *T[3:]]),
    "completed_with_failed_status": (
        "R9", "response.status is 'failed', a response.completed event needs 'completed'",
        lambda: _with_final(T, lambda response: response.update(status="failed")),
    ),
    "incomplete_without_reason": (
        "R9", "needs incomplete_details.reason",
        lambda: _with_final(I, lambda response: response.update(incomplete_details=None)),
    ),
    "failed_without_error_event": ("R9", "must directly follow an `error` event", lambda: _without(F, "error")),
    "failed_without_error_code": (
        "R9", "needs error.code and error.message",
        lambda: _with_final(F, lambda response: response.update(error={"code": "", "message": "x"})),
    ),
    "final_output_missing_item": (
        "R10", "is missing from the final output", lambda: _with_final(T, lambda response: response.update(output=[]))
    ),
    "final_output_unstreamed_item": (
        "R10", "final output[1] (msg_X) was never streamed",
        lambda: _with_final(T, lambda response: response["output"].append({**response["output"][0], "id": "msg_X"})),
    ),
    "final_output_item_differs": (
        "R10", "differs from its output_item.done item in ['status']",
        lambda: _with_final(T, lambda response: response["output"][0].update(status="incomplete")),
    ),
    "incomplete_item_not_last": (
        "R11", "incomplete item msg_A at output_index 0 is not the last item",
        lambda: _stream(
            _message(0, "msg_A", ["x"], status="incomplete"),
            _call(1, "fc_B", "f", ["{}"]),
            terminal="response.incomplete",
        ),
    ),
    "incomplete_item_in_completed_response": (
        "R11", "incomplete item msg_A in a 'completed' response",
        lambda: _stream(_message(0, "msg_A", ["x"], status="incomplete")),
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN_RESPONSES))
def test_hand_built_broken_responses_stream(name: str) -> None:
    rule, fragment, build = BROKEN_RESPONSES[name]
    _assert_breaks(check_responses_stream, build(), rule, fragment)


def test_every_responses_rule_has_a_negative_case() -> None:
    assert {rule for rule, _, _ in BROKEN_RESPONSES.values()} == {f"R{n}" for n in range(1, 12)}


def test_findings_name_the_event() -> None:
    with pytest.raises(StreamInvariantError) as caught:
        check_responses_stream(_edit(T, TEXT_DONE, text="Hello!"))
    (finding,) = caught.value.findings
    assert (finding.rule, finding.index, finding.event_type) == ("R6", TEXT_DONE, "response.output_text.done")
    assert f"#{TEXT_DONE} response.output_text.done [R6]:" in str(caught.value)


# ------------------------------------------------------------------------------------------------
# hand-built chat streams


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    chunk = {
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1755600000, "model": "gpt-test",
        "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}],
    }
    chunk.update(fields)
    return chunk


def _tool(index: int, arguments: str, *, call_id: str | None = None, name: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id is not None:
        call.update(id=call_id, type="function")
    if name is not None:
        call["function"]["name"] = name
    return call


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
CHAT_TEXT = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Hel"}),
    _chunk({"content": "lo"}),
    _chunk({}, "stop"),
    DONE,
]
CHAT_TOOLS = [
    _chunk({"role": "assistant", "tool_calls": [_tool(0, "", call_id="call_A", name="f")]}),
    _chunk({"tool_calls": [_tool(0, '{"a":'), _tool(1, "", call_id="call_B", name="g")]}),
    _chunk({"tool_calls": [_tool(1, "{}"), _tool(0, "1}")]}),
    _chunk({}, "tool_calls"),
    DONE,
]
CHAT_USAGE = [*CHAT_TEXT[:-1], _chunk(choices=[], usage=USAGE), DONE]
ERROR_FRAME = {"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}


def test_hand_built_valid_chat_streams() -> None:
    text = check_chat_stream(CHAT_TEXT, expect_usage=False)
    assert (text["content"], text["finish_reason"], text["usage"]) == ("Hello", "stop", None)
    tools = check_chat_stream(CHAT_TOOLS)
    assert tools["tool_calls"] == [
        {"id": "call_A", "name": "f", "arguments": '{"a":1}'},
        {"id": "call_B", "name": "g", "arguments": "{}"},
    ]
    assert check_chat_stream(CHAT_USAGE, expect_usage=True)["usage"] == USAGE
    thinking = [_chunk({"role": "assistant", "reasoning_content": "hmm"}), _chunk({"content": "ok"}),
                _chunk({}, "stop"), DONE]
    assert check_chat_stream(thinking)["reasoning"] == "hmm"
    failed = check_chat_stream([*CHAT_TEXT[:2], ERROR_FRAME])
    assert failed["error"]["message"] == "boom"
    check_chat_stream([*CHAT_TEXT[:2], ERROR_FRAME, DONE])
    check_chat_stream([*CHAT_TEXT[:3], _chunk({"content": "!"}, "length"), DONE])


def _replace(chunks: list[Any], index: int, chunk: Any) -> list[Any]:
    return [*chunks[:index], chunk, *chunks[index + 1:]]


def _first(delta: dict[str, Any]) -> dict[str, Any]:
    return _chunk({"role": "assistant", **delta})


BROKEN_CHAT: dict[str, tuple[str, str, Callable[[], list[Any]], dict[str, Any]]] = {
    # name: (rule, message fragment, broken stream, options)
    "chunk_schema": (
        "C1", "'object' is a required property",
        lambda: _replace(CHAT_TEXT, 1, {k: v for k, v in CHAT_TEXT[1].items() if k != "object"}), {},
    ),
    "error_frame_schema": ("C1", "error frame schema", lambda: [*CHAT_TEXT[:2], {"error": {"type": "x"}}], {}),
    "id_changes": ("C2", "id is 'chatcmpl-2'", lambda: _replace(CHAT_TEXT, 2, {**CHAT_TEXT[2], "id": "chatcmpl-2"}), {}),
    "model_changes": ("C2", "model is 'other'", lambda: _replace(CHAT_TEXT, 2, {**CHAT_TEXT[2], "model": "other"}), {}),
    "created_changes": ("C2", "created is 1", lambda: _replace(CHAT_TEXT, 2, {**CHAT_TEXT[2], "created": 1}), {}),
    "no_role_first": (
        "C3", "the first delta's role is None", lambda: _replace(CHAT_TEXT, 0, _chunk({"content": ""})), {}
    ),
    "role_repeated": (
        "C3", "role 'assistant' repeated", lambda: _replace(CHAT_TEXT, 1, _first({"content": "Hel"})), {}
    ),
    "tool_index_gap": (
        "C4", "tool call index 1 arrives before index 0",
        lambda: _replace(CHAT_TOOLS, 0, _first({"tool_calls": [_tool(1, "", call_id="call_B", name="g")]})), {},
    ),
    "tool_first_delta_without_name": (
        "C4", "the first delta of tool call 0 needs id",
        lambda: _replace(CHAT_TOOLS, 0, _first({"tool_calls": [_tool(0, "", call_id="call_A")]})), {},
    ),
    "tool_id_resent": (
        "C4", "a later delta of tool call 0 resends id, type, function.name",
        lambda: _replace(CHAT_TOOLS, 2, _chunk({"tool_calls": [_tool(0, "1}", call_id="call_A", name="f")]})), {},
    ),
    "tool_delta_without_function": (
        "C4", "has no function object", lambda: _replace(CHAT_TOOLS, 2, _chunk({"tool_calls": [{"index": 0}]})), {}
    ),
    "no_finish": ("C5", "choice 0 never got a finish_reason", lambda: [*CHAT_TEXT[:3], DONE], {}),
    "two_finishes": ("C5", "a second finish_reason", lambda: [*CHAT_TEXT[:4], _chunk({}, "stop"), DONE], {}),
    "content_after_finish": (
        "C5", "a delta after finish_reason 'stop'", lambda: [*CHAT_TEXT[:4], _chunk({"content": "!"}), DONE], {}
    ),
    "stop_after_tool_calls": (
        "C5", "finish_reason is 'stop' after streamed tool calls", lambda: _replace(CHAT_TOOLS, 3, _chunk({}, "stop")), {}
    ),
    "usage_missing": ("C6", "expected exactly one usage chunk, got 0", lambda: CHAT_TEXT, {"expect_usage": True}),
    "usage_unexpected": ("C6", "usage was not requested", lambda: CHAT_USAGE, {"expect_usage": False}),
    "usage_with_choices": (
        "C6", "the usage chunk must have `choices: []`",
        lambda: _replace(CHAT_TEXT, 3, _chunk({}, "stop", usage=USAGE)), {"expect_usage": True},
    ),
    "usage_before_finish": (
        "C6", "a chunk after the usage chunk",
        lambda: [*CHAT_TEXT[:3], _chunk(choices=[], usage=USAGE), CHAT_TEXT[3], DONE], {},
    ),
    "usage_twice": ("C6", "2 usage chunks", lambda: [*CHAT_USAGE[:-1], _chunk(choices=[], usage=USAGE), DONE], {}),
    "no_done": ("C7", 'does not end with "[DONE]"', lambda: CHAT_TEXT[:-1], {}),
    "done_twice": ("C7", '"[DONE]" appears 2 times', lambda: [*CHAT_TEXT, DONE], {}),
    "done_in_the_middle": (
        "C7", '"[DONE]" is not the last element', lambda: [*CHAT_TEXT[:2], DONE, *CHAT_TEXT[2:]], {}
    ),
    "chunk_after_error_frame": (
        "C7", 'only "[DONE]" may follow the error frame',
        lambda: [*CHAT_TEXT[:2], ERROR_FRAME, CHAT_TEXT[2], DONE], {},
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN_CHAT))
def test_hand_built_broken_chat_stream(name: str) -> None:
    rule, fragment, build, options = BROKEN_CHAT[name]
    _assert_breaks(check_chat_stream, build(), rule, fragment, **options)


def test_every_chat_rule_has_a_negative_case() -> None:
    assert {rule for rule, _, _, _ in BROKEN_CHAT.values()} == {f"C{n}" for n in range(1, 8)}


# ------------------------------------------------------------------------------------------------
# robustness: a broken stream is reported, never crashes the checker

_JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 3), st.sampled_from(["", "x", "msg_A", "response.created"]),
    st.just([]), st.just({}), st.just([1]), st.just({"a": 1}),
)


def _mutated(streams: list[list[Any]]) -> st.SearchStrategy[list[Any]]:
    return mutated_stream(streams, _JSON_VALUES, keys=["output_index", "content_index", "index", "delta", "type"])


_FUZZ_SETTINGS = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@_FUZZ_SETTINGS
@given(_mutated([builder() for builder in VALID_RESPONSES.values()]))
def test_responses_checker_reports_instead_of_crashing(events: list[Any]) -> None:
    try:
        check_responses_stream(events)
    except StreamInvariantError:
        pass


@_FUZZ_SETTINGS
@given(_mutated([CHAT_TEXT, CHAT_TOOLS, CHAT_USAGE, [*CHAT_TEXT[:2], ERROR_FRAME, DONE]]))
def test_chat_checker_reports_instead_of_crashing(chunks: list[Any]) -> None:
    try:
        check_chat_stream(chunks)
    except StreamInvariantError:
        pass
