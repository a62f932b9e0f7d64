"""Every overlay under ``mappings/providers/`` against a fake upstream that enforces its quirk.

Each case converts one Responses request with the base mapping and with the overlay and POSTs both
to a ``FakeUpstream`` that refuses what the real provider refuses: the base must fail there, the
overlay must pass. Where the answer matters too (reasoning fields, usage), it is converted back,
and the next request is built from the converted answer, as a client would: a real multi-turn
round trip, streamed and not. Composition (`deepseek` + `--overlay no-system-role`) is tested the
same way, and the set of paths each overlay changes shows which overlays may be combined.

What each overlay changes in its base (``mapper resolve NAME --changes``) is snapshotted
(tests/__snapshots__/test_overlays/), and re-applying those changes to the base must give the
resolved mapping.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from mapper.cli import main as cli
from mapper.engine import ConversionError, Mapping, RejectedField, deterministic_context, load_mapping
from mapper.engine.load import PROVIDERS_DIR, load
from mapper.engine.merge import changes, merge
from mapper.engine.nodes import Replace
from mapper.engine.ops import plain
from mapper.engine.schema import validate_spec
from mapper.engine.streaming import translate_stream
from mapper.engine.upstream_target import auth_headers, endpoint_url
from support.fake_upstream import FakeUpstream
from support.upstream_replies import sse_reply

TIMEOUT = httpx.Timeout(5.0)
OVERLAYS = sorted(path.stem for path in PROVIDERS_DIR.glob("*.yaml"))
TOOLS = [
    {"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
    {"type": "function", "name": "get_time", "parameters": {"type": "object"}},
]


@cache
def mapping(name: str, *overlays: str) -> Mapping:
    return load_mapping(name, overlays=overlays)


BASE = "openai-chat"


# -- talking to the fake ------------------------------------------------------------------------


def convert(name: str | Mapping, request: dict[str, Any]) -> dict[str, Any]:
    compiled = mapping(name) if isinstance(name, str) else name
    return compiled.convert_request(request, ctx=deterministic_context())


def post(upstream: FakeUpstream, chat_request: dict[str, Any]) -> httpx.Response:
    return httpx.post(upstream.url("/chat/completions"), json=chat_request, timeout=TIMEOUT)


def answer(name: str | Mapping, upstream: FakeUpstream, request: dict[str, Any]) -> dict[str, Any]:
    """Send ``request`` through the mapping, and convert the upstream's answer back to a Response."""
    compiled = mapping(name) if isinstance(name, str) else name
    reply = post(upstream, convert(compiled, request))
    assert reply.status_code == 200, reply.text
    if not request.get("stream"):
        return compiled.convert_response(reply.json(), request=request, ctx=deterministic_context())
    events = b"".join(translate_stream(compiled, [reply.content], request=request, ctx=deterministic_context()))
    frames = [json.loads(line[len(b"data: "):]) for line in events.splitlines() if line.startswith(b"data: ")]
    assert frames[-1]["type"] in ("response.completed", "response.incomplete"), frames[-1]
    return frames[-1]["response"]


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


# -- base fails, overlay passes -----------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A request the overlay's upstream refuses from the base mapping, and the quirks that refuse it."""

    quirks: tuple[str, ...]
    request: dict[str, Any]
    refused: str  # what the upstream's 400 names
    api_key: str | None = None
    streams: tuple[bool, ...] = (False, True)
    extra: dict[str, Any] = field(default_factory=dict)


CASES: dict[str, Case] = {
    # provider overlays
    "deepseek": Case(("reasoning_content", "no_developer_role"),
                     {"input": [{"role": "developer", "content": "Be brief."}, user("hi")]}, "'developer'"),
    "qwen-dashscope": Case(("enable_thinking", "no_developer_role"),
                           {"input": [{"role": "developer", "content": "Be brief."}, user("hi")]}, "'developer'"),
    "ollama": Case(("ollama_reasoning_effort", "reasoning_field"),
                   {"input": "hi", "reasoning": {"effort": "minimal"}}, "invalid reasoning value: 'minimal'"),
    "vllm": Case(("vllm_reasoning_effort", "reasoning_field", "chat_template_kwargs", "no_developer_role"),
                 {"input": [{"role": "developer", "content": "Be brief."}, user("hi")],
                  "reasoning": {"effort": "xhigh"}}, "reasoning_effort"),
    "llama-cpp": Case(("max_tokens_only", "no_developer_role", "system_message_first"),
                      {"instructions": "Be brief.", "input": [{"role": "developer", "content": "Sandbox on."},
                                                              user("hi")]}, "'developer'"),
    "azure-openai": Case(("max_completion_tokens_only",), {"input": "hi", "max_output_tokens": 50}, "max_tokens"),
    # generic overlays
    "no-system-role": Case(("no_system_role",), {"instructions": "Be brief.", "input": "hi"}, "'system'"),
    "no-developer-role": Case(("no_developer_role",),
                              {"input": [{"role": "developer", "content": "Be brief."}, user("hi")]}, "'developer'"),
    "single-system-message": Case(("system_message_first",),
                                  {"instructions": "Be brief.",
                                   "input": [{"role": "system", "content": "Sandbox on."}, user("hi")]},
                                  "System message must be at the beginning"),
    "max-completion-tokens": Case(("max_completion_tokens_only",), {"input": "hi", "max_output_tokens": 50},
                                  "max_tokens"),
    "no-stream-usage": Case(("no_stream_options",), {"input": "hi"}, "stream_options", streams=(True,)),
    "no-tool-choice-required": Case(("no_tool_choice_required",),
                                    {"input": "hi", "tools": TOOLS, "tool_choice": "required"}, "required"),
    "no-parallel-tool-calls": Case(("no_parallel_tool_calls_param",),
                                   {"input": "hi", "tools": TOOLS, "parallel_tool_calls": False},
                                   "parallel_tool_calls"),
}


# overlays for what a client sends rather than what an upstream refuses: the base mapping in its
# strict form refuses the request (naming the field), and the overlay's conversion passes the
# fake upstream even on a route whose options are strict
STRICT_BASE = load_mapping(BASE, options={"builtin_tools": "reject"})
CLIENT_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "drop-builtin-tools": ({"input": "hi", "tools": [{"type": "web_search"}, *TOOLS], "tool_choice": "auto"},
                           "tools of type 'web_search'"),
}


# overlays for a switch the base cannot say: the upstream takes the base's request and does not do
# what it asks; with the overlay it does
SWITCH_CASES: dict[str, tuple[tuple[str, ...], dict[str, Any], list[str], list[str]]] = {
    # reasoning_effort "none" means nothing to a chat template: the model thinks anyway
    "chat-template-thinking": (("reasoning_field", "chat_template_kwargs"),
                               {"input": "why sky", "reasoning": {"effort": "none"}},
                               ["reasoning", "message"], ["message"]),
}


def test_every_overlay_has_a_quirk_case() -> None:
    assert sorted([*CASES, *CLIENT_CASES, *SWITCH_CASES]) == OVERLAYS


@pytest.mark.parametrize("name", sorted(SWITCH_CASES))
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_base_is_not_heard_and_switch_overlay_is(name: str, stream: bool) -> None:
    quirks, request, unheard, heard = SWITCH_CASES[name]
    request = {"model": "fake-model", **request, "stream": stream}
    with FakeUpstream(quirks=quirks) as upstream:
        assert [item["type"] for item in answer(BASE, upstream, request)["output"]] == unheard
        assert [item["type"] for item in answer(name, upstream, request)["output"]] == heard


@pytest.mark.parametrize("name", sorted(CLIENT_CASES))
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_base_refuses_and_client_overlay_passes(name: str, stream: bool) -> None:
    request, refused = CLIENT_CASES[name]
    request = {"model": "fake-model", **request, "stream": stream}
    with pytest.raises(ConversionError, match=refused):
        convert(STRICT_BASE, request)
    with FakeUpstream() as upstream:
        response = answer(name, upstream, request)
    assert response["status"] == "completed"
    assert [item["type"] for item in response["output"]] == ["message"]


@pytest.mark.parametrize(("name", "stream"),
                         [(name, stream) for name in sorted(CASES) for stream in CASES[name].streams])
def test_base_fails_and_overlay_passes(name: str, stream: bool) -> None:
    case = CASES[name]
    request = {"model": "fake-model", **case.request, "stream": stream}
    with FakeUpstream(quirks=case.quirks) as upstream:
        refused = post(upstream, convert(BASE, request))
        assert refused.status_code == 400, refused.text
        assert case.refused in refused.json()["error"]["message"]
        # the refusal converts into an OpenAI error the client can read
        error = mapping(name).convert_error(refused.json(), status=400)["error"]
        assert case.refused in error["message"] and error["type"] == "invalid_request_error"
        response = answer(name, upstream, request)
    assert response["status"] == "completed"
    assert [item["type"] for item in response["output"]][-1] == "message"


# -- DeepSeek: reasoning out, and back on the turn it belongs to -----------------------------------


def tool_turns(name: str | Mapping, upstream: FakeUpstream, stream: bool,
               instructions: str | None = None) -> dict[str, Any]:
    """Turn 1 (reasoning, then two parallel calls) through ``name``; returns turn 2's request."""
    first = {"model": "deepseek-reasoner", "tools": TOOLS, "stream": stream,
             "input": [user("call get_weather and call get_time")]}
    if instructions:
        first["instructions"] = instructions
    response = answer(name, upstream, first)
    kinds = [item["type"] for item in response["output"]]
    assert kinds == ["reasoning", "function_call", "function_call"], kinds
    assert response["output"][0]["content"][0]["text"].startswith("thinking about: ")
    outputs = [{"type": "function_call_output", "call_id": item["call_id"], "output": f"{item['name']} ok"}
               for item in response["output"][1:]]
    return {**first, "input": [*first["input"], *response["output"], *outputs]}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_deepseek_passes_reasoning_back_on_the_parallel_tool_call_turn(stream: bool) -> None:
    with FakeUpstream(quirks=["reasoning_content"]) as upstream:
        second = tool_turns("deepseek", upstream, stream)
        # without the overlay the reasoning item is dropped and thinking mode refuses the history
        refused = post(upstream, convert(BASE, second))
        assert refused.status_code == 400
        assert "Missing `reasoning_content` field in the assistant message at message index 1" in refused.text
        response = answer("deepseek", upstream, second)
        sent = upstream.last_json["messages"]
    # one assistant turn: the reasoning and both calls of the batch, then the two tool results
    assert [message["role"] for message in sent] == ["user", "assistant", "tool", "tool"]
    assert sent[1]["reasoning_content"] == "thinking about: call get_weather and call get_time"
    assert [call["function"]["name"] for call in sent[1]["tool_calls"]] == ["get_weather", "get_time"]
    assert response["output"][-1]["content"][0]["text"] == "tool said: get_time ok"


def test_deepseek_composes_with_no_system_role() -> None:
    # a DeepSeek-style gateway that also refuses the system role
    quirks = ("reasoning_content", "no_system_role")
    composed = mapping("deepseek", "no-system-role")
    with FakeUpstream(quirks=quirks) as upstream:
        second = tool_turns(composed, upstream, stream=False, instructions="Be brief.")
        assert "'system'" in post(upstream, convert("deepseek", second)).text
        assert "reasoning_content" in post(upstream, convert(mapping(BASE, "no-system-role"), second)).text
        response = answer(composed, upstream, second)
        sent = upstream.last_json["messages"]
    assert sent[0] == {"role": "user", "content": "Be brief.\n\ncall get_weather and call get_time"}
    assert sent[1]["reasoning_content"].startswith("thinking about:")
    assert response["status"] == "completed"
    assert composed.sources == ("openai-chat.yaml", "providers/no-developer-role.yaml", "providers/deepseek.yaml",
                                "providers/no-system-role.yaml")


def test_deepseek_reads_cache_hits_and_switches_thinking() -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,
             "prompt_cache_hit_tokens": 7, "prompt_cache_miss_tokens": 3}
    body = {"id": "x", "object": "chat.completion", "created": 1, "model": "deepseek-chat", "usage": usage,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}
    request = {"model": "deepseek-chat", "input": "hi"}
    for name, cached in (("deepseek", 7), (BASE, 0)):
        response = mapping(name).convert_response(body, request=request, ctx=deterministic_context())
        assert response["usage"]["input_tokens_details"]["cached_tokens"] == cached
    off = convert("deepseek", {**request, "reasoning": {"effort": "none"}})
    assert off["thinking"] == {"type": "disabled"} and "reasoning_effort" not in off
    on = convert("deepseek", {**request, "reasoning": {"effort": "high"}})
    assert on["thinking"] == {"type": "enabled"} and on["reasoning_effort"] == "high"
    # the client's own switch (extra_body) wins
    assert convert("deepseek", {**request, "thinking": {"type": "enabled"}})["thinking"] == {"type": "enabled"}


# -- reasoning switches and pass-back of the other providers ------------------------------------


def test_qwen_dashscope_turns_thinking_on_from_the_effort() -> None:
    request = {"model": "qwen-plus", "input": "why sky", "reasoning": {"effort": "medium"}}
    with FakeUpstream(quirks=["enable_thinking"]) as upstream:
        # the base mapping says reasoning_effort, which DashScope does not read: no reasoning comes back
        assert [item["type"] for item in answer(BASE, upstream, request)["output"]] == ["message"]
        thinking = answer("qwen-dashscope", upstream, {**request, "stream": True})
        assert upstream.last_json["enable_thinking"] is True and "reasoning_effort" not in upstream.last_json
        quiet = answer("qwen-dashscope", upstream, {**request, "reasoning": {"effort": "none"}})
        assert upstream.last_json["enable_thinking"] is False
    assert [item["type"] for item in thinking["output"]] == ["reasoning", "message"]
    assert [item["type"] for item in quiet["output"]] == ["message"]
    budget = {**request, "thinking_budget": 500}
    with pytest.raises(RejectedField, match="unknown parameter 'thinking_budget'"):
        convert(BASE, budget)
    assert convert("qwen-dashscope", budget)["thinking_budget"] == 500


@pytest.mark.parametrize(("name", "quirks", "field_name"), [
    ("ollama", ("ollama_reasoning_effort", "reasoning_field"), "reasoning"),
    ("vllm", ("vllm_reasoning_effort", "reasoning_field"), "reasoning"),
    ("llama-cpp", ("reasoning_content",), "reasoning_content"),
])
def test_reasoning_goes_back_on_the_assistant_turn(name: str, quirks: tuple[str, ...], field_name: str) -> None:
    with FakeUpstream(quirks=quirks) as upstream:
        second = tool_turns(name, upstream, stream=True)
        answer(name, upstream, second)
        sent = upstream.last_json["messages"]
        post(upstream, convert(BASE, second))
        assert field_name not in upstream.last_json["messages"][1]
    assert sent[1][field_name] == "thinking about: call get_weather and call get_time"
    assert len(sent[1]["tool_calls"]) == 2


@pytest.mark.parametrize(("effort", "sent"), [("minimal", "low"), ("xhigh", "high"), ("none", "none")])
def test_ollama_speaks_its_effort_vocabulary(effort: str, sent: str) -> None:
    assert convert("ollama", {"model": "m", "input": "hi", "reasoning": {"effort": effort}})["reasoning_effort"] == sent


@pytest.mark.parametrize("name", ["vllm", "llama-cpp"])
def test_effort_none_turns_thinking_off_in_the_chat_template(name: str) -> None:
    request = {"model": "qwen3", "input": "why sky", "reasoning": {"effort": "none"}}
    with FakeUpstream(quirks=["vllm_reasoning_effort", "reasoning_field", "chat_template_kwargs"]) as upstream:
        assert post(upstream, convert(BASE, request)).status_code == 400  # reasoning_effort "none"
        quiet = answer(name, upstream, request)
        assert upstream.last_json["chat_template_kwargs"]["enable_thinking"] is False
        loud = answer(name, upstream, {**request, "reasoning": {"effort": "low"}})
    assert [item["type"] for item in quiet["output"]] == ["message"]
    assert [item["type"] for item in loud["output"]] == ["reasoning", "message"]


@pytest.mark.parametrize(("name", "extra"), [
    ("vllm", {"top_k": 20, "min_p": 0.05, "chat_template_kwargs": {"enable_thinking": False}}),
    ("llama-cpp", {"top_k": 20, "cache_prompt": True, "chat_template_kwargs": {"enable_thinking": False}}),
    ("qwen-dashscope", {"top_k": 20, "enable_search": True}),
])
def test_provider_extras_pass_through(name: str, extra: dict[str, Any]) -> None:
    request = {"model": "m", "input": "hi", "reasoning": {"effort": "high"}, **extra}
    with pytest.raises(RejectedField):
        convert(BASE, request)
    converted = convert(name, request)
    assert {key: converted[key] for key in extra} == extra  # the client's own value wins


def test_llama_cpp_joins_instructions_into_one_leading_system_message() -> None:
    request = {"model": "m", "instructions": "Be brief.", "input": [
        {"role": "developer", "content": "Sandbox on."}, user("hi"),
        {"role": "system", "content": "Answer in French."}, user("again")]}
    with FakeUpstream(quirks=["no_developer_role", "system_message_first"]) as upstream:
        # developer -> system alone is not enough for a template that wants one leading system message
        assert "at the beginning" in post(upstream, convert(mapping(BASE, "no-developer-role"), request)).text
        answer("llama-cpp", upstream, request)
        sent = upstream.last_json["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief.\n\nSandbox on.\n\nAnswer in French."}
    assert [message["role"] for message in sent] == ["system", "user", "user"]


# -- stream usage from wherever the provider puts it --------------------------------------------


def _chunks(final: dict[str, Any]) -> list[Any]:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}]},
            {**base, **final}, "[DONE]"]


USAGE = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}


@pytest.mark.parametrize(("where", "final"), [
    ("finish chunk (llama.cpp, vLLM)", {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                                        "usage": USAGE}),
    ("choices[0].usage (Moonshot)", {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "usage": USAGE}]}),
    ("x_groq.usage (Groq)", {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                             "x_groq": {"usage": USAGE}}),
    ("nowhere", {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
])
def test_no_stream_usage_reads_usage_where_the_provider_puts_it(where: str, final: dict[str, Any]) -> None:
    request = {"model": "m", "input": "hi", "stream": True}
    with FakeUpstream(quirks=["no_stream_options"]) as upstream:
        upstream.expect("/v1/chat/completions", sse_reply(_chunks(final)))
        response = answer("no-stream-usage", upstream, request)
    if where == "nowhere":
        assert response["usage"] is None
    else:
        assert (response["usage"]["input_tokens"], response["usage"]["output_tokens"]) == (3, 1)


def test_no_tool_choice_required_and_no_parallel_tool_calls_say_what_they_change() -> None:
    request = {"model": "m", "input": "call get_weather", "tools": TOOLS, "tool_choice": "required",
               "parallel_tool_calls": False}
    converted = convert(mapping(BASE, "no-tool-choice-required", "no-parallel-tool-calls"), request)
    assert converted["tool_choice"] == "auto" and "parallel_tool_calls" not in converted
    assert mapping("no-parallel-tool-calls").dropped_fields(request) == ["parallel_tool_calls"]
    with FakeUpstream(quirks=["no_tool_choice_required", "no_parallel_tool_calls_param"]) as upstream:
        response = answer(mapping(BASE, "no-tool-choice-required", "no-parallel-tool-calls"), upstream, request)
    assert response["output"][0]["name"] == "get_weather"
    # the Response still echoes what the client asked for
    assert (response["tool_choice"], response["parallel_tool_calls"]) == ("required", False)


# -- Azure: the body here, the addressing through the options the proxy honours -----------------


AZURE_KEY = "azure-test-key"


@pytest.mark.parametrize(("base_path", "options", "status"), [
    ("/openai/v1", {}, 200),  # v1 API: the model is the deployment name
    ("/openai/deployments/gpt-4o?api-version=2024-10-21", {}, 200),  # one deployment in the base URL
    ("/openai", {"upstream_path": "/deployments/{model}/chat/completions", "upstream_query": "api-version=2024-10-21"},
     200),
    ("/openai", {"upstream_path": "/deployments/{model}/chat/completions"}, 404),  # no api-version
    ("/v1", {}, 404),  # an OpenAI-style base URL is not Azure's
])
def test_azure_addressing_and_key_header(base_path: str, options: dict[str, Any], status: int) -> None:
    azure = load_mapping("azure-openai", options=options or None)
    request = {"model": "gpt-4o", "input": "hi", "max_output_tokens": 50}
    body = convert(azure, request)
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body
    with FakeUpstream(quirks=["azure", "max_completion_tokens_only"], api_key=AZURE_KEY) as upstream:
        url = endpoint_url(upstream.origin + base_path, azure.options, api="openai.chat", model=body["model"])
        reply = httpx.post(url, json=body, headers=auth_headers(azure.options, AZURE_KEY), timeout=TIMEOUT)
        assert reply.status_code == status, reply.text
        # the base mapping's conventions (Bearer) are refused before the path is even looked at
        bearer = auth_headers(mapping(BASE).options, AZURE_KEY)
        assert bearer == {"authorization": f"Bearer {AZURE_KEY}"}
        assert httpx.post(url, json=body, headers=bearer, timeout=TIMEOUT).status_code == 401


# -- composition --------------------------------------------------------------------------------


HEADER = ("format", "id", "version", "description", "extends")


def leaves(change: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """An overlay's changes as path -> value; a deletion is None, a replaced object one leaf."""
    if not isinstance(change, dict) or isinstance(change, Replace) or (not change and path):
        return {path: change}
    found: dict[tuple[str, ...], Any] = {}
    for key, value in change.items():
        found.update(leaves(value, (*path, str(key))))
    return found


@cache
def touched(name: str) -> dict[tuple[str, ...], Any]:
    """Every path an overlay (with what it includes) sets or deletes in the base."""
    loaded = load(name)
    changed = changes(plain(loaded.base), plain(loaded.spec))
    return leaves({key: value for key, value in changed.items() if key not in HEADER})


def clashes(a: dict[tuple[str, ...], Any], b: dict[tuple[str, ...], Any]) -> set[str]:
    """Paths both set differently, or that one deletes or replaces while the other changes inside."""
    found = {path for path in a.keys() & b.keys() if a[path] != b[path]}
    found |= {inner for inner in a.keys() ^ b.keys()
              for outer in a.keys() | b.keys() if outer != inner and inner[:len(outer)] == outer}
    return {".".join(path) for path in found}


# Pairs of overlays that set the same path differently; with both, the later one wins for it.
# no-system-role folds every instruction into user messages, which also settles what llama-cpp (through
# single-system-message) and single-system-message do with them, so it is meant to come last.
KNOWN_OVERRIDES = {
    frozenset({"llama-cpp", "no-system-role"}): {"maps.finish_messages.then.fn"},
    frozenset({"single-system-message", "no-system-role"}): {"maps.finish_messages.then.fn"},
}
GENERIC = [name for name in OVERLAYS if name.startswith(("no-", "max-", "single-", "drop-", "chat-template-"))]
# two provider overlays are never combined: each says how one provider works
PAIRS = [pair for pair in itertools.combinations(OVERLAYS, 2) if set(pair) & set(GENERIC)]


@pytest.mark.parametrize(("first", "second"), PAIRS)
def test_overlays_compose_without_silent_conflicts(first: str, second: str) -> None:
    assert clashes(touched(first), touched(second)) == KNOWN_OVERRIDES.get(frozenset({first, second}), set())


@pytest.mark.parametrize("provider", [name for name in OVERLAYS if name not in GENERIC])
def test_every_generic_overlay_composes_on_every_provider(provider: str) -> None:
    composed = load_mapping(provider, overlays=GENERIC)  # merges and compiles
    assert composed.sources[0] == "openai-chat.yaml" and f"providers/{provider}.yaml" in composed.sources
    assert len(set(composed.sources)) == len(composed.sources)  # an included overlay is applied once
    assert composed.convert_request({"model": "m", "input": "hi"}, ctx=deterministic_context())


# -- what each overlay changes: mapper resolve --changes ---------------------------------------------


class YamlSnapshot(SingleFileSnapshotExtension):
    _write_mode = WriteMode.TEXT
    file_extension = "yaml"


RESOLVED = [[name] for name in OVERLAYS] + [["deepseek", "--overlay", "no-system-role"]]


def resolve_id(args: list[str]) -> str:
    return "+".join(a for a in args if a != "--overlay")


@pytest.mark.parametrize("args", RESOLVED, ids=resolve_id)
def test_changes_snapshot(args: list[str], snapshot: Any) -> None:
    result = CliRunner().invoke(cli, ["resolve", *args, "--changes"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# what providers/")
    assert result.output.splitlines()[0].endswith(" changes in openai-chat.yaml")
    assert result.output == snapshot(extension_class=YamlSnapshot)


@pytest.mark.parametrize("args", RESOLVED, ids=resolve_id)
def test_changes_applied_to_the_base_give_the_resolved_mapping(args: list[str]) -> None:
    loaded = load(args[0], overlays=args[2:])
    validate_spec(loaded.spec)
    changed = changes(plain(loaded.base), plain(loaded.spec))
    assert plain(merge(loaded.base, changed)) == plain(loaded.spec)
    # the changes say only what differs: no unchanged base entry is repeated
    for path, value in leaves(changed).items():
        assert value is None or path[0] in HEADER or not path_in(plain(loaded.base), path, value)


def path_in(document: Any, path: tuple[str, ...], value: Any) -> bool:
    for key in path:
        if not isinstance(document, dict) or key not in document:
            return False
        document = document[key]
    return document == value


@pytest.mark.parametrize("name", OVERLAYS)
def test_resolve_prints_the_whole_mapping(name: str) -> None:
    result = CliRunner().invoke(cli, ["resolve", name])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# resolved from: openai-chat.yaml + ")
    assert result.output.splitlines()[0].endswith(f"providers/{name}.yaml")
    resolved = yaml.safe_load(result.output)
    validate_spec(resolved)
    assert resolved == plain(load(name).spec)


# -- the base's extension points: one option, one table row ----------------------------------------


def test_reasoning_passback_is_an_option_of_the_base() -> None:
    item = {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "hmm"}]}
    request = {"model": "m", "input": [user("q"), item, {"role": "assistant", "content": "a"}, user("again")]}
    assert "reasoning" not in convert(BASE, request)["messages"][1]
    for field_name in ("reasoning", "reasoning_content"):
        chosen = load_mapping(BASE, options={"reasoning_passback": field_name})
        assert convert(chosen, request)["messages"][1] == {"role": "assistant", "content": "a", field_name: "hmm"}
    with pytest.raises(RejectedField, match="reasoning_passback must be none, reasoning_content or reasoning"):
        convert(load_mapping(BASE, options={"reasoning_passback": "thinking"}), request)


@pytest.mark.parametrize("name", ["max-completion-tokens", "azure-openai"])
def test_an_overlay_adds_the_error_param_row_for_the_field_it_renames(name: str) -> None:
    error = {"error": {"message": "max_completion_tokens is too large", "type": "invalid_request_error",
                       "param": "max_completion_tokens", "code": None}}
    assert mapping(BASE).convert_error(error, status=400)["error"]["param"] == "max_completion_tokens"
    assert mapping(name).convert_error(error, status=400)["error"]["param"] == "max_output_tokens"
    # the base's rows are still there
    assert mapping(name).convert_error({"error": {"message": "x", "param": "messages[1].content"}},
                                       status=400)["error"]["param"] == "input"
