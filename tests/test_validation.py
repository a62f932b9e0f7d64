"""Request validation (``engine/validation``): the client API's refusals, in its own words.

Each refusal is checked for the three things a client sees: the ``param`` it names, OpenAI's
error ``code`` and the sentence. The sentences are the ones OpenAI's API answers with (quoted in
public bug reports and conformance records); where this file pins one exactly, it is that wording.
Alongside: what is *not* refused (unknown members, unknown union variants, null for an optional
member), the supplement of rules the vendored schemas lack, and small synthetic schemas for the
keywords the OpenAI schemas do not use.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mapper.engine import load_mapping
from mapper.engine.errors import ConversionError, InvalidRequest
from mapper.engine.load import load
from mapper.engine.validation import compile_validator, request_validator, validator_for_schema
from mapper.engine.validation.supplement import apply_edits, edits

from bench import payloads

RESPONSES = {"model": "m", "input": "hi"}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
FIXTURES = Path(__file__).parent / "mappings"


def refusal(api: str, body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        request_validator(api)(body)
    return caught.value


def forward(**fields: Any) -> InvalidRequest:
    return refusal("openai.responses", {**RESPONSES, **fields})


def reverse(**fields: Any) -> InvalidRequest:
    return refusal("openai.chat", {**CHAT, **fields})


# -- the cases of issue 11 -----------------------------------------------------------------------

ISSUE_CASES = [
    # forward: a Responses client in front of a chat upstream
    ("openai.responses", {"tool_choice": 3}, "tool_choice", "invalid_type",
     "Invalid type for 'tool_choice': expected one of one of 'none', 'auto', or 'required' or "
     "object, but got an integer instead."),
    ("openai.responses", {"parallel_tool_calls": "true"}, "parallel_tool_calls", "invalid_type",
     "Invalid type for 'parallel_tool_calls': expected a boolean, but got a string instead."),
    ("openai.responses", {"text": "plain"}, "text", "invalid_type",
     "Invalid type for 'text': expected an object, but got a string instead."),
    ("openai.responses", {"reasoning": "high"}, "reasoning", "invalid_type",
     "Invalid type for 'reasoning': expected an object, but got a string instead."),
    ("openai.responses", {"include": "x"}, "include", "invalid_type",
     "Invalid type for 'include': expected an array of strings, but got a string instead."),
    ("openai.responses", {"store": "true"}, "store", "invalid_type",
     "Invalid type for 'store': expected a boolean, but got a string instead."),
    ("openai.responses", {"max_output_tokens": -1}, "max_output_tokens", "integer_below_min_value",
     "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got -1 "
     "instead."),
    ("openai.responses", {"temperature": 99}, "temperature", "decimal_above_max_value",
     "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 99 "
     "instead."),
    # reverse: a chat client in front of a Responses upstream
    ("openai.chat", {"logprobs": "yes"}, "logprobs", "invalid_type",
     "Invalid type for 'logprobs': expected a boolean, but got a string instead."),
    ("openai.chat", {"messages": []}, "messages", "empty_array",
     "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty "
     "array instead."),
    ("openai.chat", {"max_tokens": -1}, "max_tokens", "integer_below_min_value",
     "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got -1 "
     "instead."),
]


@pytest.mark.parametrize("api, fields, param, code, message", ISSUE_CASES,
                         ids=[f"{api.split('.')[1]}-{next(iter(f))}" for api, f, *_ in ISSUE_CASES])
def test_the_issue_cases_are_refused_by_name(api: str, fields: dict[str, Any], param: str, code: str,
                                             message: str) -> None:
    base = RESPONSES if api == "openai.responses" else CHAT
    error = refusal(api, {**base, **fields})
    assert (error.param, error.api_code, error.message) == (param, code, message)
    assert isinstance(error, ConversionError) and error.code == "M205"  # mapper's own code stays


@pytest.mark.parametrize("mapping, base, fields, param", [
    ("openai-chat", RESPONSES, {"max_output_tokens": -1}, "max_output_tokens"),
    ("openai-responses", CHAT, {"max_tokens": -1}, "max_tokens"),
])
def test_convert_request_validates_before_the_mapping_runs(mapping: str, base: dict[str, Any],
                                                           fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        load_mapping(mapping).convert_request({**base, **fields})
    assert caught.value.param == param
    # the option turns it off: the mapping then does what it does with the value (here: -1 -> 16)
    lenient = load_mapping(mapping, options={"validate_requests": False})
    assert lenient.validate_request is None
    lenient.convert_request({**base, **fields})


# -- OpenAI's sentence for each code ---------------------------------------------------------------


@pytest.mark.parametrize("body, param, code, message", [
    ({**RESPONSES, "truncation": "bogus"}, "truncation", "invalid_value",
     "Invalid value: 'bogus'. Supported values are: 'auto' and 'disabled'."),
    ({**RESPONSES, "include": ["x"]}, "include[0]", "invalid_value",
     "Invalid value: 'x'. Supported values are: 'file_search_call.results', "
     "'web_search_call.results', 'web_search_call.action.sources', 'message.input_image.image_url', "
     "'computer_call_output.output.image_url', 'code_interpreter_call.outputs', "
     "'reasoning.encrypted_content', and 'message.output_text.logprobs'."),
    ({**RESPONSES, "tools": [{}]}, "tools[0].type", "missing_required_parameter",
     "Missing required parameter: 'tools[0].type'."),
    ({**RESPONSES, "tools": [{"type": "function"}]}, "tools[0].name", "missing_required_parameter",
     "Missing required parameter: 'tools[0].name'."),
    ({**RESPONSES, "tool_choice": {"type": "function"}}, "tool_choice.name",
     "missing_required_parameter", "Missing required parameter: 'tool_choice.name'."),
    ({**RESPONSES, "max_tool_calls": 0}, "max_tool_calls", "integer_below_min_value",
     "Invalid 'max_tool_calls': integer below minimum value. Expected a value >= 1, but got 0 "
     "instead."),
    ({**RESPONSES, "top_logprobs": 21}, "top_logprobs", "integer_above_max_value",
     "Invalid 'top_logprobs': integer above maximum value. Expected a value <= 20, but got 21 "
     "instead."),
    ({**RESPONSES, "top_p": -0.5}, "top_p", "decimal_below_min_value",
     "Invalid 'top_p': decimal below minimum value. Expected a value >= 0, but got -0.5 instead."),
    ({**RESPONSES, "max_output_tokens": 16.5}, "max_output_tokens", "invalid_type",
     "Invalid type for 'max_output_tokens': expected an integer, but got a decimal number instead."),
    ({**RESPONSES, "metadata": {str(n): "v" for n in range(17)}}, "metadata",
     "object_above_max_properties", "Invalid 'metadata': too many properties. Expected an object "
     "with at most 16 properties, but got an object with 17 properties instead."),
    ({**RESPONSES, "metadata": {"k": "v" * 513}}, "metadata.k", "string_above_max_length",
     "Invalid 'metadata.k': string too long. Expected a string with maximum length 512, but got a "
     "string with length 513 instead."),
    ({**RESPONSES, "metadata": {"k" * 65: "v"}}, "metadata." + "k" * 65,
     "property_name_above_max_length", f"Invalid property name in 'metadata': '{'k' * 65}' is too "
     "long. Expected a string with maximum length 64, but got a string with length 65 instead."),
    ({**RESPONSES, "metadata": {"k": 1}}, "metadata.k", "invalid_type",
     "Invalid type for 'metadata.k': expected a string, but got an integer instead."),
    ({**RESPONSES, "model": 7}, "model", "invalid_type",
     "Invalid type for 'model': expected a string, but got an integer instead."),
    ({**RESPONSES, "input": 42}, "input", "invalid_type",
     "Invalid type for 'input': expected one of a string or array of objects, but got an integer "
     "instead."),
    ({**RESPONSES, "input": [{"role": "user", "content": [{"type": "input_text", "text": 5}]}]},
     "input[0].content[0].text", "invalid_type",
     "Invalid type for 'input[0].content[0].text': expected a string, but got an integer instead."),
    ({**RESPONSES, "input": [{"role": "critic", "content": "x"}]}, "input[0].role", "invalid_value",
     "Invalid value: 'critic'. Supported values are: 'user', 'assistant', 'system', and "
     "'developer'."),
    ({**CHAT, "n": 0}, "n", "integer_below_min_value",
     "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead."),
    ({**CHAT, "seed": 1.5}, "seed", "invalid_type",
     "Invalid type for 'seed': expected an integer, but got a decimal number instead."),
    ({**CHAT, "frequency_penalty": 3}, "frequency_penalty", "decimal_above_max_value",
     "Invalid 'frequency_penalty': decimal above maximum value. Expected a value <= 2, but got 3 "
     "instead."),
    ({**CHAT, "stop": ["a", "b", "c", "d", "e"]}, "stop", "array_above_max_length",
     "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array "
     "with length 5 instead."),
    ({**CHAT, "messages": "ping"}, "messages", "invalid_type",
     "Invalid type for 'messages': expected an array of objects, but got a string instead."),
    ({**CHAT, "messages": [{"content": "x"}]}, "messages[0].role", "missing_required_parameter",
     "Missing required parameter: 'messages[0].role'."),
    ({**CHAT, "messages": [{"role": "user", "content": 7}]}, "messages[0].content", "invalid_type",
     "Invalid type for 'messages[0].content': expected one of a string or array of objects, but "
     "got an integer instead."),
    ({**CHAT, "messages": [{"role": "assistant", "tool_calls": []}]}, "messages[0].tool_calls",
     "empty_array", "Invalid 'messages[0].tool_calls': empty array. Expected an array with minimum "
     "length 1, but got an empty array instead."),
    ({**CHAT, "messages": [{"role": "system", "content": [{"type": "image_url",
                                                            "image_url": {"url": "https://x"}}]}]},
     "messages[0].content[0].type", "invalid_value",
     "Invalid value: 'image_url'. Supported values are: 'text'."),
    ({**CHAT, "tools": [{"type": "function"}]}, "tools[0].function", "missing_required_parameter",
     "Missing required parameter: 'tools[0].function'."),
    ({**CHAT, "response_format": {"type": "json_schema"}}, "response_format.json_schema",
     "missing_required_parameter", "Missing required parameter: 'response_format.json_schema'."),
    ({**CHAT, "logit_bias": {"50256": -101}}, "logit_bias.50256", "integer_below_min_value",
     "Invalid 'logit_bias.50256': integer below minimum value. Expected a value >= -100, but got "
     "-101 instead."),
    ({**CHAT, "max_completion_tokens": 0}, "max_completion_tokens", "integer_below_min_value",
     "Invalid 'max_completion_tokens': integer below minimum value. Expected a value >= 1, but got "
     "0 instead."),
])
def test_refusals_are_in_openais_words(body: dict[str, Any], param: str, code: str,
                                       message: str) -> None:
    api = "openai.responses" if "input" in body else "openai.chat"
    error = refusal(api, body)
    assert (error.param, error.api_code, error.message) == (param, code, message)


def test_a_number_past_64_bits_is_refused_where_an_integer_is_expected() -> None:
    # orjson reads 100000000000000000000000000000 as the float 1e29; as an integer it would
    # become an int that orjson cannot write back
    for field in ("max_output_tokens", "top_logprobs"):
        error = forward(**{field: 1e29})
        assert (error.param, error.api_code) == (field, "integer_above_max_value")
        assert error.message == (f"Invalid '{field}': integer above maximum value. Expected a "
                                 "value <= 9223372036854775807, but got 1e+29 instead.")
    assert reverse(seed=-1e30).api_code == "integer_below_min_value"
    request_validator("openai.responses")({**RESPONSES, "max_output_tokens": 64.0})  # 64.0 is 64


# -- what is not refused -------------------------------------------------------------------------


@pytest.mark.parametrize("api, body", [
    # an unknown member, at the top or deeper: the mapping's unknown-field policy decides
    ("openai.responses", {**RESPONSES, "future_parameter": {"x": 1}}),
    ("openai.responses", {**RESPONSES, "reasoning": {"effort": "low", "future": 1}}),
    # a union member whose discriminator the schema does not know: the mapping decides by name
    ("openai.responses", {**RESPONSES, "tools": [{"type": "tool_from_the_future", "x": 1}]}),
    ("openai.responses", {**RESPONSES, "input": [{"type": "item_from_the_future"}]}),
    ("openai.responses", {**RESPONSES, "input": [{"role": "user", "content": [
        {"type": "input_video", "video_url": "https://x"}]}]}),
    ("openai.responses", {**RESPONSES, "tool_choice": {"type": "choice_from_the_future"}}),
    ("openai.chat", {**CHAT, "messages": [{"role": "narrator", "content": "x"}]}),
    ("openai.chat", {**CHAT, "tools": [{"type": "tool_from_the_future"}]}),
    # null for an optional member means "not given", as the mappings read it
    ("openai.responses", {**RESPONSES, "text": None, "tools": None, "stream_options": None}),
    ("openai.chat", {**CHAT, "stream_options": None, "tools": None, "n": None}),
    # a function tool without strict (OpenAI defaults it), and the bare-string image_url
    ("openai.responses", {**RESPONSES, "tools": [{"type": "function", "name": "f",
                                                  "parameters": {"type": "object"}}]}),
    ("openai.chat", {**CHAT, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": "https://example.com/a.png"}]}]}),
])
def test_unknown_is_not_invalid(api: str, body: dict[str, Any]) -> None:
    request_validator(api)(body)


def test_a_known_variant_with_a_bad_value_is_refused() -> None:
    error = forward(tools=[{"type": "function", "name": "f", "parameters": {}, "strict": "yes"}])
    assert (error.param, error.api_code) == ("tools[0].strict", "invalid_type")
    error = forward(input=[{"type": "function_call", "call_id": "c", "arguments": "{}"}])
    assert (error.param, error.api_code) == ("input[0].name", "missing_required_parameter")


def test_null_for_a_required_member_is_refused() -> None:
    error = refusal("openai.chat", {"model": "m", "messages": None})
    assert (error.param, error.api_code) == ("messages", "invalid_type")
    assert error.message.endswith("but got null instead.")


def _fixture_requests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(FIXTURES.glob("*/request/*.yaml")):
        case = yaml.safe_load(path.read_text())
        if "error" not in case:
            found.append((f"{path.parent.parent.name}/{path.stem}", case["input"]))
    return found


@pytest.mark.parametrize("name, body", _fixture_requests(), ids=[n for n, _ in _fixture_requests()])
def test_every_converting_fixture_is_a_valid_request(name: str, body: dict[str, Any]) -> None:
    api = load(name.partition("/")[0]).spec["from"]  # the API the mapping's clients speak
    request_validator(api)(body)


def test_the_bench_payloads_are_valid_requests() -> None:
    request_validator("openai.responses")(payloads.responses_request(stream=True))
    request_validator("openai.responses")(payloads.simple_request())
    request_validator("openai.chat")(payloads.chat_request(stream=True))


def test_the_validator_does_not_change_the_request() -> None:
    body = payloads.responses_request()
    before = copy.deepcopy(body)
    request_validator("openai.responses")(body)
    assert body == before


# -- the supplement --------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", ["openai/responses.request", "openai/chat.request"])
def test_every_supplement_edit_applies_and_says_why(schema: str) -> None:
    assert edits(schema), f"no supplement for {schema}"
    for edit in edits(schema):
        assert edit["kind"] in ("limit", "relax", "leniency") and edit["why"] and edit["evidence"]
    assert "def " in validator_for_schema(schema).source  # applied and compiled


def test_a_supplement_edit_that_no_longer_resolves_fails_loudly() -> None:
    with pytest.raises(ValueError, match="does not resolve"):
        apply_edits({"$defs": {}}, [{"at": "/$defs/Gone/properties/x", "merge": {"minimum": 1}}])
    with pytest.raises(ValueError, match="nothing to remove"):
        apply_edits({"required": ["y"]}, [{"at": "/required", "remove": ["x"]}])


def test_supplement_edits_change_the_schema_as_described() -> None:
    document = {"$defs": {"T": {"type": "object", "required": ["a", "b"],
                                "properties": {"n": {"type": "integer"}, "u": {"type": "object"}}}}}
    patched = apply_edits(document, [
        {"at": "/$defs/T/properties/n", "merge": {"minimum": 1}},
        {"at": "/$defs/T/required", "remove": ["b"]},
        {"at": "/$defs/T/properties/u", "accept": {"type": "string"}}])
    assert patched["$defs"]["T"] == {"type": "object", "required": ["a"], "properties": {
        "n": {"type": "integer", "minimum": 1},
        "u": {"anyOf": [{"type": "object"}, {"type": "string"}]}}}


# -- the keywords, on small schemas ---------------------------------------------------------------


def check(schema: dict[str, Any], value: Any) -> tuple[str | None, str | None]:
    """(param, code) of the refusal of ``value``, or (None, None) when it passes."""
    try:
        compile_validator(schema, "test")(value)
    except InvalidRequest as error:
        return error.param, error.api_code
    return None, None


def test_lengths_and_exclusive_bounds() -> None:
    schema = {"type": "object", "properties": {
        "tags": {"type": "array", "minItems": 2, "items": {"type": "string", "minLength": 3}},
        "name": {"type": "string", "minLength": 1},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "kind": {"const": "fixed"}}}
    assert check(schema, {"tags": ["abc"]}) == ("tags", "array_below_min_length")
    assert check(schema, {"tags": ["abc", "ab"]}) == ("tags[1]", "string_below_min_length")
    assert check(schema, {"name": ""}) == ("name", "empty_string")
    assert check(schema, {"ratio": 0}) == ("ratio", "decimal_below_min_value")
    assert check(schema, {"ratio": 1}) == ("ratio", "decimal_above_max_value")
    assert check(schema, {"kind": "other"}) == ("kind", "invalid_value")
    assert check(schema, {"tags": ["abc", "def"], "name": "n", "ratio": 0.5, "kind": "fixed"}) == \
        (None, None)
    with pytest.raises(InvalidRequest) as caught:
        compile_validator(schema, "test")({"ratio": 0})
    assert caught.value.message == ("Invalid 'ratio': decimal below minimum value. Expected a "
                                    "value > 0, but got 0 instead.")


def test_recursion_allof_and_dispatch() -> None:
    schema = {"$ref": "#/$defs/Node", "$defs": {
        "Base": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
        "Node": {"allOf": [{"$ref": "#/$defs/Base"}, {"type": "object", "properties": {
            "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
            "shape": {"allOf": [{"type": "object", "required": ["type"],
                                 "properties": {"type": {"enum": ["circle", "square"]}},
                                 "allOf": [
                                     {"if": {"required": ["type"], "properties": {"type": {"enum": ["circle"]}}},
                                      "then": {"type": "object", "required": ["r"],
                                               "properties": {"r": {"type": "number"}}}},
                                     {"if": {"required": ["type"], "properties": {"type": {"enum": ["square"]}}},
                                      "then": {"type": "object", "required": ["side"],
                                               "properties": {"side": {"type": "number"}}}}]}]}}}]}}}
    assert check(schema, {"id": 1, "children": [{"id": 2, "children": [{"id": "x"}]}]}) == \
        ("children[0].children[0].id", "invalid_type")
    assert check(schema, {"id": 1, "children": [{}]}) == ("children[0].id", "missing_required_parameter")
    assert check(schema, {"id": 1, "shape": {"type": "circle"}}) == ("shape.r", "missing_required_parameter")
    assert check(schema, {"id": 1, "shape": {"type": "square", "side": "x"}}) == ("shape.side", "invalid_type")
    assert check(schema, {"id": 1, "shape": {"type": "hexagon"}}) == (None, None)  # unknown variant
    assert check(schema, {"id": 1, "shape": {}}) == ("shape.type", "missing_required_parameter")
    assert check(schema, {"id": 1, "shape": {"type": "circle", "r": 2}, "children": []}) == (None, None)


def test_a_union_reports_the_member_that_got_furthest() -> None:
    schema = {"type": "array", "items": {"anyOf": [
        {"type": "object", "required": ["role", "content"], "properties": {
            "type": {"enum": ["message"]}, "role": {"enum": ["user", "assistant"]},
            "content": {"type": "string"}}},
        {"type": "object", "required": ["id"], "properties": {
            "type": {"enum": ["item_reference"]}, "id": {"type": "string"}}},
        {"type": "object", "required": ["type", "call_id"], "properties": {
            "type": {"enum": ["function_call"]}, "call_id": {"type": "string"}}}]}}
    assert check(schema, [{"role": "critic", "content": "x"}]) == ("[0].role", "invalid_value")
    assert check(schema, [{"type": "function_call"}]) == ("[0].call_id", "missing_required_parameter")
    assert check(schema, [{"type": "later_kind"}]) == (None, None)
    assert check(schema, [{"type": 7}]) == ("[0].type", "invalid_type")
    assert check(schema, ["text"]) == ("[0]", "invalid_type")
    assert check(schema, [{"id": "r1"}, {"role": "user", "content": "hi"}]) == (None, None)
