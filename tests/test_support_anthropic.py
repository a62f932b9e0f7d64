"""Tests for the Anthropic Messages test support: the schemas in ``schemas/anthropic/``, the stream checker
(``support/anthropic_invariants.py``) and the SDK replay harness (``support/anthropic_replay.py``).

The checker will judge every Messages stream mapper emits, so it is tested as the OpenAI checkers are:
each sample in ``data/anthropic/sse/`` gets its expected verdict, from the checker and from the real
SDK, and every rule (A1-A9) has hand-built streams that break it and must be caught with its tag.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import Any, Callable

import anthropic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from support.anthropic_invariants import DELTA_BLOCKS, check_anthropic_sse, check_anthropic_stream
from support.anthropic_replay import replay_anthropic_json, replay_anthropic_stream
from support.anthropic_schemas import ANTHROPIC, SCHEMA_DIR, assert_valid, assert_valid_event, schema_errors
from support.generators import mutated_stream
from support.invariants import StreamInvariantError
from support.sse_reader import parse_sse_events

DATA = Path(__file__).parent / "data" / "anthropic"
SAMPLES = DATA / "sse"
CLAUDE_CODE = DATA / "claude_code"
EXPECTED = json.loads((SAMPLES / "EXPECTED.json").read_text())["streams"]
VALID = sorted(name for name in EXPECTED if name.endswith(".valid.sse"))
INVALID = sorted(name for name in EXPECTED if name.endswith(".invalid.sse"))

Events = list[Any]


def _body(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def _events(name: str) -> Events:
    return parse_sse_events(_body(name), require_event_name=True)


def _assert_breaks(events: Events, rule: str, fragment: str, **options: Any) -> StreamInvariantError:
    with pytest.raises(StreamInvariantError) as caught:
        check_anthropic_stream(events, **options)
    assert rule in caught.value.rules, str(caught.value)
    assert fragment in str(caught.value), str(caught.value)
    return caught.value


# ------------------------------------------------------------------------------------------------
# samples


def test_every_sample_is_classified() -> None:
    files = {path.name for path in SAMPLES.glob("*.sse")}
    assert files == set(EXPECTED)
    assert {name for name, entry in EXPECTED.items() if entry["checker"] == "passes"} == files - set(INVALID)


@pytest.mark.parametrize("name", VALID)
def test_valid_sample_passes_and_builds_what_the_sdk_builds(name: str) -> None:
    summary = check_anthropic_sse(_body(name))
    replay = replay_anthropic_stream(_body(name))
    assert replay.verdict == "accepted", replay.error_info
    assert summary["message"] == replay.final
    assert_valid("messages.response", summary["message"])
    assert summary["stop_reason"] in ("end_turn", "tool_use")


@pytest.mark.parametrize("name", INVALID)
def test_invalid_sample_fails_on_its_defect(name: str) -> None:
    expected = EXPECTED[name]["checker"]
    _assert_breaks(_events(name), expected["rule"], expected["finding"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_sdk_verdict(name: str) -> None:
    replay = replay_anthropic_stream(_body(name))
    assert replay.verdict == EXPECTED[name]["sdk_verdict"], replay.error_info


def test_the_sdk_accepts_most_defects_the_checker_catches() -> None:
    # why the checker exists: the SDK's accumulator drops mismatched deltas and never checks order
    silent = [name for name in INVALID if EXPECTED[name]["sdk_verdict"] == "accepted"]
    assert len(silent) >= len(INVALID) - 2
    replay = replay_anthropic_stream(_body("tool-input-in-start.invalid.sse"))
    # the Python SDK keeps input from content_block_start; Claude Code (the TypeScript SDK) replaces it
    # with the (absent) input_json_delta pieces and runs the tool with {}
    assert replay.final["content"][0]["input"] == {"location": "Paris"}


def test_error_sample_passes_and_surfaces_in_the_sdk() -> None:
    summary = check_anthropic_sse(_body("overloaded-mid-stream.error.sse"))
    assert summary["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert summary["event_types"][-1] == "error"
    replay = replay_anthropic_stream(_body("overloaded-mid-stream.error.sse"))
    assert replay.error_info["body"]["error"]["type"] == "overloaded_error"
    assert replay.stage == "iterate"


def test_sample_summaries() -> None:
    tools = check_anthropic_sse(_body("tool-use.valid.sse"))
    assert tools["text"] == "Okay, let's check the weather for San Francisco, CA:"
    assert tools["tool_uses"] == [{
        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather",
        "input": {"location": "San Francisco, CA", "unit": "fahrenheit"},
    }]
    assert tools["usage"] == {"input_tokens": 472, "output_tokens": 89}
    parallel = check_anthropic_sse(_body("parallel-tool-use.valid.sse"))
    assert [call["input"]["location"] for call in parallel["tool_uses"]] == ["Paris", "Oslo"]
    thinking = check_anthropic_sse(_body("thinking.valid.sse"))["message"]["content"][0]
    assert thinking["thinking"].endswith("10,800 + 1,350 + 81 = 12,231")
    assert thinking["signature"].startswith("EqQB")


# ------------------------------------------------------------------------------------------------
# every rule, on hand-built streams


def _insert(position: int, event: Any) -> Callable[[Events], Events]:
    return lambda events: events[:position] + [event] + events[position:]


def _replace(position: int, change: Callable[[dict[str, Any]], None]) -> Callable[[Events], Events]:
    def mutate(events: Events) -> Events:
        events[position] = copy.deepcopy(events[position])
        change(events[position])
        return events

    return mutate


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for key in parents:
            target = target[key]
        target[last] = value

    return change


def _drop(*positions: int) -> Callable[[Events], Events]:
    return lambda events: [event for index, event in enumerate(events) if index not in positions]


# text.valid.sse: 0 message_start, 1 content_block_start, 2 ping, 3-4 text_delta, 5 content_block_stop,
# 6 message_delta, 7 message_stop. tool-use.valid.sse: the tool block's pieces are #18-26, its stop #27.
# thinking.valid.sse: thinking deltas #2-7, signature_delta #8.
BROKEN = {
    "A1 unknown event type": ("text.valid.sse", _insert(3, {"type": "content_block_pause", "index": 0}),
                              "A1", "'content_block_pause' is not a known Messages stream event type"),
    "A1 [DONE] sentinel": ("text.valid.sse", lambda events: events + ["[DONE]"], "A1", "not a JSON object"),
    "A1 missing field": ("text.valid.sse", _replace(3, lambda event: event["delta"].pop("text")),
                         "A1", "'text' is a required property"),
    "A2 second message_start": ("text.valid.sse", lambda events: events[:1] + events, "A2", "a second message_start"),
    "A2 content in message_start": ("text.valid.sse", _replace(0, _set("message.content", [{"type": "text", "text": "x"}])),
                                    "A2", "message_start's content must be []"),
    "A2 stop_reason in message_start": ("text.valid.sse", _replace(0, _set("message.stop_reason", "end_turn")),
                                        "A2", "message_start's stop_reason must be null"),
    "A2 ping first": ("text.valid.sse", _insert(0, {"type": "ping"}), "A2", "the first event must be message_start"),
    "A3 index gap": ("text.valid.sse", lambda events: [
        {**event, "index": 1} if "index" in event else event for event in events], "A3", "block index 1 starts, but the next index is 0"),
    "A3 stopped twice": ("text.valid.sse", lambda events: events[:6] + events[5:], "A3", "content_block_stop for block 0, which is not open"),
    "A3 never stopped": ("text.valid.sse", _drop(5, 6, 7), "A3", "block 0 (started #1) never stopped"),
    "A3 stop before deltas": ("text.valid.sse", lambda events: events[:2] + events[5:6] + events[2:5] + events[6:],
                              "A3", "content_block_delta for block 0, which is not open"),
    "A4 thinking_delta into text": ("text.valid.sse", _replace(3, _set("delta", {"type": "thinking_delta", "thinking": "x"})),
                                    "A4", "a thinking_delta sent into block 0, a text block"),
    "A4 input_json_delta into text": ("text.valid.sse", _replace(3, _set("delta", {"type": "input_json_delta", "partial_json": "{}"})),
                                      "A4", "a input_json_delta sent into block 0, a text block"),
    "A5 input not JSON": ("tool-use.valid.sse", _replace(26, _set("delta.partial_json", "renheit\"")),
                          "A5", "the input_json_delta pieces of block 1 are not JSON"),
    "A5 input not an object": ("tool-use.valid.sse", lambda events: events[:18] + [
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "[1, 2]"}}] + events[27:],
        "A5", "the input of block 1 is a list, not an object"),
    "A6 thinking after signature": ("thinking.valid.sse", lambda events: events[:7] + events[8:9] + events[7:8] + events[9:],
                                    "A6", "a thinking_delta after the signature_delta of block 0"),
    "A6 empty signature": ("thinking.valid.sse", _replace(8, _set("delta.signature", "")),
                           "A6", "thinking block 0 closes without a signature"),
    "A7 two message_deltas": ("text.valid.sse", lambda events: events[:7] + events[6:], "A7", "a second message_delta"),
    "A7 output_tokens fall": ("text.valid.sse", _replace(6, _set("usage.output_tokens", 0)),
                              "A7", "usage.output_tokens fell from 1 to 0"),
    "A7 no stop_reason": ("text.valid.sse", _replace(6, _set("delta.stop_reason", None)), "A7", "carries no stop_reason"),
    "A7 stop_sequence unnamed": ("text.valid.sse", _replace(6, _set("delta.stop_reason", "stop_sequence")),
                                 "A7", "stop_sequence names none"),
    "A7 tool_use without tool block": ("text.valid.sse", _replace(6, _set("delta.stop_reason", "tool_use")),
                                       "A7", "no tool_use block was streamed"),
    "A7 block after message_delta": ("text.valid.sse", lambda events: events[:1] + events[6:7] + events[1:6] + events[7:],
                                     "A7", "a block starts after message_delta"),
    "A8 message_stop without message_delta": ("text.valid.sse", _drop(6), "A8", "message_stop without a message_delta"),
    "A8 ping after message_stop": ("text.valid.sse", lambda events: events + [{"type": "ping"}], "A8", "an event after message_stop"),
    "A8 no message_delta at all": ("text.valid.sse", _drop(6, 7), "A8", "the stream has no message_delta"),
    "A9 event after error": ("overloaded-mid-stream.error.sse", lambda events: events + [{"type": "message_stop"}],
                             "A9", "an event after the error event #3"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_rule_breaks_are_caught(case: str) -> None:
    sample, mutate, rule, fragment = BROKEN[case]
    _assert_breaks(mutate(_events(sample)), rule, fragment)


def test_every_rule_has_a_broken_stream() -> None:
    rules = {rule for _, _, rule, _ in BROKEN.values()}
    rules |= {entry["checker"]["rule"] for entry in EXPECTED.values() if entry["checker"] != "passes"}
    assert rules == {f"A{number}" for number in range(1, 10)}


def test_ping_may_come_anywhere_between_start_and_stop() -> None:
    events = [event for event in _events("text.valid.sse") if event["type"] != "ping"]
    for position in range(1, len(events)):
        check_anthropic_stream(events[:position] + [{"type": "ping"}] + events[position:])


def test_repeated_message_delta_is_allowed_on_request() -> None:
    events = _events("text.valid.sse")
    events = events[:6] + [{**events[6], "usage": {"output_tokens": 9}}] + events[6:]
    summary = check_anthropic_stream(events, allow_repeated_message_delta=True)
    assert summary["usage"]["output_tokens"] == 15
    _assert_breaks(events, "A7", "a second message_delta")


def test_an_error_first_ends_the_stream() -> None:
    error = {"type": "error", "error": {"type": "api_error", "message": "boom"}}
    assert check_anthropic_stream([error])["error"] == error["error"]
    _assert_breaks([error, *_events("text.valid.sse")], "A9", "an event after the error event #0")


def test_all_findings_are_reported_together() -> None:
    events = _events("tool-input-in-start.invalid.sse")
    events = events[:-1] + [{"type": "ping"}, events[-1], {"type": "ping"}]
    caught = _assert_breaks(events, "A5", "tool input must come in input_json_delta")
    assert caught.rules == {"A5", "A8"}
    assert "#6 ping [A8]" in str(caught)


def test_a_frame_without_event_name_is_refused_and_the_sdk_drops_it() -> None:
    unnamed = _body("text.valid.sse").decode().replace("event: ", "x-note: ")
    with pytest.raises(AssertionError, match="has no `event:` line"):
        check_anthropic_sse(unnamed)
    # the anthropic SDK skips every frame without `event:`, so it never sees message_start
    assert replay_anthropic_stream(unnamed).verdict == "rejected"


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 3) | st.sampled_from(["", "text", "tool_use", "thinking", "text_delta", "{"]),
    lambda children: st.lists(children, max_size=2) | st.dictionaries(st.sampled_from(["type", "index", "text"]), children, max_size=2),
    max_leaves=4,
)


_MUTATED = mutated_stream(
    [_events(name) for name in [*VALID, "overloaded-mid-stream.error.sse"]], _JSON_VALUES,
    keys=["index", "type"], nested=["delta", "content_block", "message", "usage"],
)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(_MUTATED)
def test_checker_reports_instead_of_crashing(events: Events) -> None:
    try:
        check_anthropic_stream(events)
    except StreamInvariantError:
        pass


# ------------------------------------------------------------------------------------------------
# schemas


def _schema_files() -> list[Path]:
    return sorted(SCHEMA_DIR.glob("*.json"))


@pytest.mark.parametrize("path", _schema_files(), ids=lambda path: path.name)
def test_schema_file_is_a_valid_2020_12_schema_with_real_unions(path: Path) -> None:
    schema = json.loads(path.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    defs = schema["$defs"]
    refs = _collect(schema, "$ref")
    assert {ref.removeprefix("#/$defs/") for ref in refs} <= set(defs)
    for node in _collect(schema, "x-discriminator", whole=True):
        discriminator = node["x-discriminator"]
        name, mapping = discriminator["propertyName"], discriminator["mapping"]
        # a real union: the oneOf lists exactly the mapped variants, each pinning the discriminator
        assert {variant["$ref"] for variant in node["oneOf"]} == set(mapping.values())
        for value, ref in mapping.items():
            variant = defs[ref.removeprefix("#/$defs/")]
            assert value in _constants(variant["properties"][name]), (ref, value)
            if ref != discriminator.get("whenAbsent"):
                assert name in variant["required"], (ref, name)


def _collect(node: Any, key: str, *, whole: bool = False) -> list[Any]:
    found: list[Any] = []
    if isinstance(node, dict):
        if key in node:
            found.append(node if whole else node[key])
        for value in node.values():
            found += _collect(value, key, whole=whole)
    elif isinstance(node, list):
        for value in node:
            found += _collect(value, key, whole=whole)
    return found


def _constants(schema: dict[str, Any]) -> list[Any]:
    if "const" in schema:
        return [schema["const"]]
    if "enum" in schema:
        return list(schema["enum"])
    return [value for branch in schema.get("anyOf", []) for value in _constants(branch)]


def test_stream_event_schema_knows_every_event_and_delta() -> None:
    assert ANTHROPIC.event_types() == {
        "message_start", "message_delta", "message_stop", "content_block_start", "content_block_delta",
        "content_block_stop", "ping", "error",
    }
    bundle = ANTHROPIC.load_schema("messages.stream-event")
    delta = bundle["$defs"]["RawContentBlockDeltaEvent"]["properties"]["delta"]["x-discriminator"]["mapping"]
    assert set(delta) == set(DELTA_BLOCKS)


def test_assert_valid_event_picks_the_definition_by_type() -> None:
    with pytest.raises(AssertionError) as caught:
        assert_valid_event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}})
    assert "'text' is a required property" in str(caught.value)
    with pytest.raises(AssertionError, match="not a known Messages stream event type"):
        assert_valid_event({"type": "response.created"})
    assert_valid_event({"type": "ping"})


def test_request_schema_holds_what_the_anthropic_mapping_reads() -> None:
    root = ANTHROPIC.load_schema("messages.request")["$defs"]["MessageCreateParams"]
    assert root["required"] == ["max_tokens", "messages", "model"]
    for name in ("system", "tools", "tool_choice", "thinking", "metadata", "stop_sequences", "stream",
                 "temperature", "top_p", "top_k", "service_tier", "cache_control"):
        assert name in root["properties"], name
    assert set(root["properties"]["tool_choice"]["x-discriminator"]["mapping"]) == {"auto", "any", "tool", "none"}
    assert {"enabled", "disabled", "adaptive"} <= set(root["properties"]["thinking"]["x-discriminator"]["mapping"])
    tools = root["properties"]["tools"]["items"]["x-discriminator"]
    assert tools["whenAbsent"] == tools["mapping"]["custom"] == "#/$defs/ToolParam"
    assert len(tools["mapping"]) > 15  # custom plus every server and client tool version
    stop_reasons = ANTHROPIC.load_schema("messages.response")["$defs"]["Message"]["properties"]["stop_reason"]
    assert {"end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", "pause_turn"} <= set(_constants(stop_reasons))


def test_request_schema_accepts_a_full_request_and_refuses_unknown_fields() -> None:
    request = {
        "model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True, "top_k": 5, "temperature": 0.2,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Look it up.", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C", "is_error": False}]},
        ],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
                  {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "metadata": {"user_id": "user-1"},
        "stop_sequences": ["END"],
    }
    assert_valid("messages.request", request)
    errors = schema_errors("messages.request", {**request, "reasoning_effort": "high"})
    assert any("'reasoning_effort' was unexpected" in error for error in errors)
    errors = schema_errors("messages.request", {**request, "tool_choice": {"type": "required"}})
    assert errors


def test_error_schema_has_a_status_for_every_error_type() -> None:
    schema = ANTHROPIC.load_schema("error")
    union = schema["$defs"]["ErrorResponse"]["properties"]["error"]["x-discriminator"]["mapping"]
    assert set(union) == set(schema["x-http-status"])
    assert schema["x-http-status"]["overloaded_error"] == 529
    assert_valid("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": None})
    assert schema_errors("error", {"type": "error", "error": {"type": "server_error", "message": "x"}})


def test_models_and_count_tokens_schemas() -> None:
    assert_valid("count_tokens.response", {"input_tokens": 12})
    assert_valid("count_tokens.request", {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert schema_errors("count_tokens.request", {"model": "m", "max_tokens": 5, "messages": []})
    page = {"data": [{"type": "model", "id": "claude-x", "display_name": "Claude X", "created_at": "2025-01-01T00:00:00Z",
                      "lifecycle": "active"}], "has_more": False, "first_id": "claude-x", "last_id": "claude-x"}
    assert_valid("models.list", page)


def _derive_module() -> Any:
    spec = importlib.util.spec_from_file_location("anthropic_schema_derive", SCHEMA_DIR / "derive.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_schemas_are_what_derive_makes() -> None:
    derive = _derive_module()
    if anthropic.__version__ != derive.SDK_VERSION:
        pytest.skip(f"anthropic {anthropic.__version__} installed; the files come from {derive.SDK_VERSION}")
    documents = derive.build_documents()
    assert set(documents) == {path.name for path in _schema_files()}
    for file, schema in documents.items():
        assert json.loads((SCHEMA_DIR / file).read_text()) == schema, f"{file} is stale: run derive.py"


# ------------------------------------------------------------------------------------------------
# Claude Code's captured requests


@pytest.mark.parametrize("name,schema", [
    ("messages.first-turn.request.json", "messages.beta.request"),
    ("messages.after-tool-use.request.json", "messages.beta.request"),
    ("count_tokens.request.json", "count_tokens.request"),
])
def test_claude_code_requests_are_valid(name: str, schema: str) -> None:
    assert_valid(schema, json.loads((CLAUDE_CODE / name).read_text()))


def test_claude_code_sends_beta_fields_the_stable_schema_refuses() -> None:
    request = json.loads((CLAUDE_CODE / "messages.first-turn.request.json").read_text())
    assert request["stream"] is True and "Bash" in [tool["name"] for tool in request["tools"]]
    assert [message["role"] for message in request["messages"]] == ["user", "system"]
    errors = schema_errors("messages.request", request)
    assert any("'context_management' was unexpected" in error for error in errors)
    after = json.loads((CLAUDE_CODE / "messages.after-tool-use.request.json").read_text())
    thinking = after["messages"][2]["content"][0]
    assert thinking == {"type": "thinking", "thinking": "The user wants a file. Bash it is.", "signature": "fake-signature-abc123"}


# ------------------------------------------------------------------------------------------------
# the replay harness


@pytest.mark.parametrize("chunk_size", [1, 3, 17])
def test_replay_gives_the_same_message_however_the_body_is_split(chunk_size: int) -> None:
    whole = replay_anthropic_stream(_body("tool-use.valid.sse"))
    split = replay_anthropic_stream(_body("tool-use.valid.sse"), chunk_size=chunk_size)
    assert split.verdict == "accepted"
    assert split.final == whole.final
    assert split.event_types == whole.event_types


def test_replay_records_what_the_sdk_sends() -> None:
    tools = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}]
    replay = replay_anthropic_stream(_body("text.valid.sse"), request={"tools": tools, "system": "Be brief."})
    [request] = replay.requests
    assert (request["method"], request["path"]) == ("POST", "/v1/messages")
    assert request["body"]["stream"] is True and request["body"]["tools"] == tools
    assert request["headers"]["x-stainless-helper-method"] == "stream"
    assert "anthropic-version" in request["headers"]
    # the SDK's own request is valid under the derived schema
    assert_valid("messages.request", request["body"])
    assert replay.text == "Hello!"
    assert "text" in replay.event_types  # the SDK's helper event next to the raw ones


def test_replay_json_message_and_error() -> None:
    message = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "stop_reason": "end_turn",
        "stop_sequence": None, "content": [{"type": "text", "text": "Hi"}], "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    assert_valid("messages.response", message)
    replay = replay_anthropic_json(message)
    assert replay.verdict == "accepted" and replay.final == message
    assert replay.requests[0]["body"].get("stream") is None
    overloaded = replay_anthropic_json({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, status=529)
    assert overloaded.verdict == "error-surfaced"
    assert isinstance(overloaded.error, anthropic.OverloadedError)
    assert overloaded.error_info["status_code"] == 529
