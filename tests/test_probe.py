"""engine/probe.py and engine/probe_report.py against fake providers with different quirk sets.

Each fake refuses what a real provider refuses. The probe must say so check by check (the table
and the JSON), exit non-zero when the basic path fails even though ``/models`` answers, write an
overlay that combines the right generic fixes, and that overlay, loaded from the file it was
written to, must make the requests that failed pass against the same fake.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mapper.engine import deterministic_context, load_mapping
from mapper.engine.load import load
from mapper.engine.ops import plain
from mapper.engine.probe import (base_candidates, exit_code, fixes, overlay_for, probe, render_table,
                                 report_as_json, run as run_probe)
from support.fake_upstream import FakeUpstream
from support.upstream_replies import error_reply, hang_reply, sse_reply

KEY = "sk-probe-secret-0123456789"
TIMEOUT = httpx.Timeout(5.0)
TOOLS = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]

# name -> (fake upstream settings, how the user types the URL, expected verdicts, expected overlays, exit code)
PROVIDERS: dict[str, dict[str, Any]] = {
    "deepseek-like": {
        "quirks": ["reasoning_content", "no_developer_role", "no_response_format_json_schema", "require_auth"],
        "url": "origin",  # https://api.deepseek.com: no /v1
        "statuses": {"models": "ok", "chat": "ok", "system_role": "ok", "developer_role": "unsupported",
                     "system_not_first": "ok", "max_tokens": "ok", "json_schema": "unsupported",
                     "reasoning": "ok", "error_format": "ok"},
        "overlays": ["no-developer-role"],
        "exit": 0,
    },
    "old-llama-cpp": {
        "quirks": ["max_tokens_only", "no_developer_role", "system_message_first"],
        "url": "endpoint",  # a pasted .../v1/chat/completions
        "statuses": {"developer_role": "unsupported", "system_not_first": "unsupported", "max_tokens": "ok",
                     "max_completion_tokens": "unsupported", "stream_usage": "ok", "reasoning": "unsupported"},
        "overlays": ["no-developer-role", "single-system-message"],
        "exit": 0,
    },
    "fastapi-strict": {
        "quirks": ["error_format_detail", "no_system_role", "max_completion_tokens_only", "no_stream_options",
                   "no_tool_choice_required", "no_parallel_tool_calls_param", "no_images"],
        "url": "base",
        "statuses": {"system_role": "unsupported", "developer_role": "ok", "max_tokens": "unsupported",
                     "max_completion_tokens": "ok", "stream": "ok", "stream_usage": "unsupported",
                     "tools": "ok", "tool_choice_required": "unsupported", "parallel_tool_calls": "unsupported",
                     "image": "unsupported", "error_format": "ok"},
        "overlays": ["no-system-role", "max-completion-tokens", "no-stream-usage", "no-tool-choice-required",
                     "no-parallel-tool-calls"],
        "exit": 0,
    },
    "models-only": {
        "quirks": ["models_only"],
        "url": "base",
        "statuses": {"models": "ok", "chat": "unsupported", "responses_endpoint": "unsupported"},
        "overlays": [],
        "exit": 1,
    },
}


def fake(name: str) -> FakeUpstream:
    settings = PROVIDERS[name]
    api_key = KEY if "require_auth" in settings["quirks"] else None
    return FakeUpstream(quirks=settings["quirks"], api_key=api_key)


def typed_url(upstream: FakeUpstream, how: str) -> str:
    return {"origin": upstream.origin, "base": upstream.base_url,
            "endpoint": upstream.url("/chat/completions")}[how]


def run(name: str, upstream: FakeUpstream, **kwargs: Any) -> Any:
    settings = PROVIDERS[name]
    api_key = KEY if "require_auth" in settings["quirks"] else None
    return probe(typed_url(upstream, settings["url"]), "fake-model", api_key=api_key, timeout=5, **kwargs)


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request: pytest.FixtureRequest) -> Any:
    upstream = fake(request.param).start()
    try:
        yield request.param, upstream, run(request.param, upstream)
    finally:
        upstream.stop()


# -- the table and the JSON -------------------------------------------------------------------------


def test_report_says_what_works(provider: Any) -> None:
    name, upstream, report = provider
    settings = PROVIDERS[name]
    data = report_as_json(report)
    json.dumps(data)  # plain data
    statuses = {check["name"]: check["status"] for check in data["checks"]}
    assert {check: statuses.get(check) for check in settings["statuses"]} == settings["statuses"]
    assert set(statuses.values()) <= {"ok", "unsupported", "error"}
    assert data["overlays"] == fixes(report) == settings["overlays"]
    assert exit_code(report) == data["exit_code"] == settings["exit"]
    assert data["base_url"] == upstream.base_url  # found with or without /v1 as typed
    table = render_table(report)
    assert table.startswith(f"mapper probe: {report.upstream} (api chat, model fake-model)\n")
    for check in data["checks"]:
        line = next(line for line in table.splitlines() if line.startswith(check["label"] + "  "))
        assert check["status"] in line
    assert ("basic chat path: works" in table) == (settings["exit"] == 0)


def test_refusals_carry_the_upstreams_own_words(provider: Any) -> None:
    name, upstream, report = provider
    for check in report.checks:
        if check.status == "unsupported" and check.name in ("developer_role", "system_role"):
            assert check.http_status == 400
            assert "Unsupported value: 'messages[0].role'" in check.detail
    if name == "fastapi-strict":
        error = report.check("error_format")
        assert error.facts["shape"] == 'FastAPI {"detail": ...}'
        assert "We could not parse the JSON body" in error.detail
        assert "not fixable by a mapping: inline image" in render_table(report)


def test_models_alone_do_not_make_a_working_upstream() -> None:
    with fake("models-only") as upstream:
        report = run("models-only", upstream)
        tried = (upstream.base_url, upstream.origin)
    assert report.check("models").status == "ok" and exit_code(report) == 1
    table = render_table(report)
    assert "basic chat path: FAILS" in table
    assert "/models answers but the basic call does not" in table
    assert overlay_for(report) is None  # nothing to write for an upstream that does not work
    assert report.tried == tried  # both URLs were tried for chat


# -- the overlay it writes ----------------------------------------------------------------------------

# a Responses request that exercises what each generic overlay fixes
FIX_REQUESTS: dict[str, dict[str, Any]] = {
    "no-system-role": {"instructions": "Be brief.", "input": "hi"},
    "no-developer-role": {"input": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "hi"}]},
    "single-system-message": {"instructions": "Be brief.",
                              "input": [{"role": "system", "content": "Sandbox on."},
                                        {"role": "user", "content": "hi"}]},
    "max-completion-tokens": {"input": "hi", "max_output_tokens": 50},
    "no-stream-usage": {"input": "hi", "stream": True},
    "no-tool-choice-required": {"input": "call get_weather", "tools": TOOLS, "tool_choice": "required"},
    "no-parallel-tool-calls": {"input": "call get_weather", "tools": TOOLS, "parallel_tool_calls": False},
}


def test_written_overlay_makes_the_failing_requests_pass(provider: Any, tmp_path: Path) -> None:
    name, upstream, report = provider
    text = overlay_for(report)
    if not report.ok:
        assert text is None
        return
    assert text.startswith(f"# Written by `mapper probe` for {report.upstream}, model fake-model.\n")
    path = tmp_path / "probed.yaml"
    path.write_text(text, encoding="utf-8")
    written = load_mapping(str(path))
    # the same mapping as the generic overlays given with --overlay, in that order
    expected = plain(load("openai-chat", overlays=fixes(report)).spec)
    actual = plain(load(str(path)).spec)
    header = ("id", "description", "version", "extends")
    assert {k: v for k, v in actual.items() if k not in header} == {
        k: v for k, v in expected.items() if k not in header}
    base = load_mapping("openai-chat")
    headers = {"authorization": f"Bearer {KEY}"} if "require_auth" in PROVIDERS[name]["quirks"] else {}
    for fix in fixes(report):
        request = {"model": "fake-model", **FIX_REQUESTS[fix]}
        refused = httpx.post(upstream.url("/chat/completions"), headers=headers, timeout=TIMEOUT,
                             json=base.convert_request(request, ctx=deterministic_context()))
        assert refused.status_code == 400, (fix, refused.text)
        passed = httpx.post(upstream.url("/chat/completions"), headers=headers, timeout=TIMEOUT,
                            json=written.convert_request(request, ctx=deterministic_context()))
        assert passed.status_code == 200, (fix, passed.text)


# -- Responses upstreams ----------------------------------------------------------------------------


def test_a_responses_only_upstream() -> None:
    with FakeUpstream(quirks=["no_chat_endpoint"]) as upstream:
        chat = probe(upstream.base_url, "fake-model", timeout=5)
        responses = probe(upstream.base_url, "fake-model", api="responses", timeout=5)
    assert exit_code(chat) == 1 and chat.check("responses_endpoint").status == "ok"
    assert "probe again with --api responses" in render_table(chat)
    assert exit_code(responses) == 0
    statuses = {check.name: check.status for check in responses.checks}
    assert statuses["responses"] == statuses["developer_role"] == statuses["tools"] == "ok"
    assert statuses["chat_endpoint"] == "unsupported"
    assert responses.check("stream").detail.endswith("the last response.completed")
    assert "basic responses path: works" in render_table(responses)
    assert overlay_for(responses) is None


# -- keys, time bounds, unreachable hosts ---------------------------------------------------------


def test_the_key_is_never_shown() -> None:
    with FakeUpstream(quirks=["require_auth"], api_key=KEY) as upstream:
        # an upstream that echoes the key in its error
        upstream.expect("/v1/models", error_reply(401, f"Incorrect API key provided: {KEY}."))
        # a key in the URL's query is sent (some gateways want it there) but never shown
        report = probe(f"{upstream.base_url}?key={KEY}", "fake-model", api_key=KEY, timeout=5)
        assert upstream.last.query == {"key": KEY}
        wrong = probe(upstream.base_url, "fake-model", api_key="sk-wrong", timeout=5)
        assert upstream.last.headers["authorization"] == "Bearer sk-wrong"
        assert report.base_url == upstream.base_url
    assert report.check("models").detail == "401 Incorrect API key provided: ***."
    assert report.ok and exit_code(wrong) == 1 and wrong.basic.status == "error"  # a 401 is not a refusal
    for text in (render_table(report), json.dumps(report_as_json(report)), overlay_for(report) or ""):
        assert KEY not in text
    with FakeUpstream() as upstream:
        userinfo = probe(f"http://someone:hunter2@127.0.0.1:{upstream.port}", "fake-model", timeout=5)
    assert "hunter2" not in render_table(userinfo) + json.dumps(report_as_json(userinfo))


def test_every_request_is_bounded_in_time() -> None:
    with FakeUpstream() as upstream:
        upstream.expect("/v1/models", hang_reply(5))
        slow = [{"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}]}] * 20
        started = time.monotonic()
        report = probe(upstream.base_url, "fake-model", timeout=0.5)
        elapsed = time.monotonic() - started
        upstream.reset()
        upstream.expect("/v1/chat/completions", sse_reply([*slow, "[DONE]"], delay=0.1))
        trickle = probe(upstream.base_url, "fake-model", timeout=0.5)
    assert report.check("models").status == "error" and "no answer within 0.5s" in report.check("models").detail
    assert report.ok and elapsed < 4
    # the scripted stream answered the basic (non-streamed) call and never finished within the bound
    assert trickle.basic.status == "error" and "longer than 0.5s" in trickle.basic.detail


def test_an_unreachable_upstream() -> None:
    with FakeUpstream() as upstream:
        port = upstream.port
    report = probe(f"http://127.0.0.1:{port}", "fake-model", api_key=KEY, timeout=2)
    assert exit_code(report) == 1
    assert report.basic.status == "error" and report.basic.detail.startswith("unreachable: ConnectError")
    assert KEY not in json.dumps(report_as_json(report))


@pytest.mark.parametrize(("status", "verdict"), [(500, "error"), (503, "error"), (429, "error"), (403, "error"),
                                                 (400, "unsupported"), (422, "unsupported"), (501, "unsupported")])
def test_classification_of_statuses(status: int, verdict: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"object": "list", "data": []})
        try:
            body = json.loads(request.content or b"{}")
        except ValueError:
            return httpx.Response(400, text="not JSON")
        if (body.get("messages") or [{}])[0].get("role") == "developer":
            return httpx.Response(status, json={"detail": [{"msg": "role developer is not allowed"}]})
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"role": "assistant", "content": "OK"},
                                                      "finish_reason": "stop"}]})

    report = probe("https://example.test/v1", "m", timeout=5, transport=httpx.MockTransport(handler))
    check = report.check("developer_role")
    assert (check.status, check.http_status) == (verdict, status)
    assert "role developer is not allowed" in check.detail


@pytest.mark.parametrize(("typed", "candidates"), [
    ("http://h:8000", ["http://h:8000/v1", "http://h:8000"]),
    ("http://h:8000/v1/", ["http://h:8000/v1", "http://h:8000"]),
    ("http://h/v1/v1/chat/completions", ["http://h/v1", "http://h"]),
    ("https://dashscope.aliyuncs.com/compatible-mode/v1",
     ["https://dashscope.aliyuncs.com/compatible-mode/v1", "https://dashscope.aliyuncs.com/compatible-mode"]),
    ("https://r.openai.azure.com/openai/deployments/d?api-version=2024-10-21",
     ["https://r.openai.azure.com/openai/deployments/d/v1?api-version=2024-10-21",
      "https://r.openai.azure.com/openai/deployments/d?api-version=2024-10-21"]),
])
def test_base_candidates(typed: str, candidates: list[str]) -> None:
    assert base_candidates(typed) == candidates


def test_bad_input_is_refused_before_any_request() -> None:
    with pytest.raises(ValueError, match="not an http"):
        probe("ftp://h", "m")
    with pytest.raises(ValueError, match="api must be one of"):
        probe("http://h", "m", api="completions")
    with pytest.raises(ValueError, match="control characters") as refused:
        probe("http://h", "m", api_key=f"{KEY}\x00x")
    assert KEY not in str(refused.value)


def test_the_command_in_one_call(tmp_path: Path) -> None:
    with fake("old-llama-cpp") as upstream:
        table = run_probe(upstream.origin, "fake-model", write_overlay=tmp_path / "llama.yaml", timeout=5)
        as_json = run_probe(upstream.origin, "fake-model", as_json=True, timeout=5)
    with fake("models-only") as upstream:
        broken = run_probe(upstream.origin, "fake-model", write_overlay=tmp_path / "none.yaml", timeout=5)
    assert table.exit_code == 0 and table.overlay_file == tmp_path / "llama.yaml"
    assert table.output.endswith(f"overlay written to {table.overlay_file}; "
                                 f"start mapper with --mapping {table.overlay_file}\n")
    assert load_mapping(str(table.overlay_file)).sources[-1] == str(table.overlay_file)
    data = json.loads(as_json.output)
    assert data["overlays"] == ["no-developer-role", "single-system-message"] and data["overlay_file"] is None
    assert broken.exit_code == 1 and broken.overlay_file is None
    assert not (tmp_path / "none.yaml").exists()
    assert broken.output.endswith("no overlay written: the basic chat call fails, so there is nothing to fix yet\n")
