"""The Claude Code CLI through ``mapper serve --mapping anthropic-chat`` in front of a chat upstream
(and once through ``--mapping anthropic-responses`` in front of a Responses-only one).

Claude Code (npm ``@anthropic-ai/claude-code``, see tests/clients/package.json) runs
``claude -p TASK --output-format json --allowedTools Bash`` hermetically (``claude_code_cli``);
``ANTHROPIC_BASE_URL`` points at mapper, which serves the Messages API in front of the fake chat
upstream. The upstream's model is scripted (``scripted_agent``): it answers the first turn with a
chat tool call of Claude Code's ``Bash`` tool, which writes a file and prints it, and the second
with a text that quotes the command's output, so the task completes only if the call reached Claude
Code as a ``tool_use`` it could run and its output came back as a chat ``tool`` message. Claude Code
always streams, so every turn crosses mapper's stream conversion.

The runs: on mapper's defaults; against a DeepSeek-style thinking upstream, which refuses a
tool-call history without its ``reasoning_content`` (so the task completes only if the thinking
blocks reached Claude Code with a signature mapper accepts back); against an upstream that answers
503 once, which mapper must turn into Anthropic's retryable 529 ``overloaded_error``; against one
whose stream breaks off, which mapper must end with an ``error`` event after the text it delivered
(Claude Code then asks the model to resume); ``/context``, which asks
``/v1/messages/count_tokens`` for each part of the prompt (and, with gateway model discovery on,
``GET /v1/models``) without calling the model; and against a chat template that takes a single
leading system message (Qwen3.5's, Gemma's), with the option ``system_messages=first``.
The same Bash task also runs through ``--mapping anthropic-responses`` on its defaults against a
reasoning model that serves only the Responses API, where the call and its output travel as
``function_call`` and ``function_call_output`` items.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.anthropic_mapping import ANTHROPIC_CHAT, requires_anthropic_chat
from support.claude_code_cli import ClaudeRun, claude_executable, run_claude
from support.fake_upstream import FakeUpstream
from support.mapper_serve import MapperServe
from support.scripted_agent import AgentPlan, Shell
from support.upstream_replies import error_reply, sse_reply

pytestmark = requires_anthropic_chat

NOTE = "mapper was here"
COMMAND = f"printf '{NOTE}\\n' > note.txt && cat note.txt"
TASK = "Write a note to note.txt with the Bash tool, then tell me what the command printed."
PLAN = AgentPlan((Shell(COMMAND),), "The command printed: {last_line}")
MODEL = "fake-model"



@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    claude_executable()


@pytest.fixture(scope="module")
def upstream_server():
    """The chat upstream (conftest's ``fake`` resets it): the scripted plan instead of the toy model."""
    with FakeUpstream(models=[MODEL], chat_model=PLAN.answer) as server:
        yield server


@pytest.fixture(scope="module")
def thinking_upstream():
    """DeepSeek's thinking mode: reasoning_content out, and required back on tool-call turns."""
    with FakeUpstream(models=[MODEL], chat_model=PLAN.answer, quirks=["reasoning_content"]) as server:
        yield server


def serve(upstream: FakeUpstream, folder: Path, *options: str) -> MapperServe:
    """``mapper serve --mapping anthropic-chat`` in front of ``upstream``, with ``options`` only."""
    return MapperServe(["--mapping", ANTHROPIC_CHAT, "--upstream", upstream.base_url, *options], folder)


@pytest.fixture(scope="module")
def mapper(upstream_server: FakeUpstream, tmp_path_factory):
    with serve(upstream_server, tmp_path_factory.mktemp("mapper")) as server:
        yield server


def assert_task_done(run: ClaudeRun, mapper: MapperServe, work: Path) -> None:
    """Claude Code ran the Bash call, and its answer quotes what the command printed."""
    context = f"{run.describe()}\n--- mapper refused:\n" + "\n".join(mapper.refusals())
    assert run.succeeded, context
    assert run.result["result"] == f"The command printed: {NOTE}", context
    assert run.result["permission_denials"] == [], context
    assert (work / "note.txt").read_text() == NOTE + "\n", context


def chat_bodies(upstream: FakeUpstream) -> list[dict]:
    return [request.json for request in upstream.requests if request.path == "/v1/chat/completions"]


def assert_tool_round_trip(bodies: list[dict], streamed: tuple[bool, bool] = (True, True)) -> None:
    """Two chat turns, streamed as ``streamed`` says: the first offers Bash as a chat function, the
    second carries the call as assistant ``tool_calls`` and its output as a ``tool`` message."""
    assert len(bodies) == 2, [body.get("messages") for body in bodies]
    assert tuple(body.get("stream") is True for body in bodies) == streamed
    for body in bodies:
        assert body["model"] == MODEL
        assert body["messages"][0]["role"] == "system"  # Claude Code's system blocks lead
        bash = next(tool["function"] for tool in body["tools"] if tool["function"]["name"] == "Bash")
        assert "command" in bash["parameters"]["properties"]  # input_schema became parameters
    messages = bodies[-1]["messages"]
    (caller,) = [m for m in messages if m.get("tool_calls")]
    (call,) = caller["tool_calls"]
    assert call["function"]["name"] == "Bash"
    assert json.loads(call["function"]["arguments"])["command"] == COMMAND
    (result,) = [m for m in messages if m["role"] == "tool"]
    assert result["tool_call_id"] == call["id"] == "call_step_1"
    assert NOTE in json.dumps(result["content"])
    assert messages.index(result) == messages.index(caller) + 1


def test_claude_code_runs_a_bash_task(mapper: MapperServe, fake: FakeUpstream, tmp_path: Path) -> None:
    run = run_claude(TASK, mapper.origin, tmp_path, model=MODEL)
    assert_task_done(run, mapper, tmp_path / "work")
    assert run.result["num_turns"] == 2, run.describe()
    assert_tool_round_trip(chat_bodies(fake))
    assert mapper.refusals() == []


def test_claude_code_sends_thinking_back_with_its_signature(thinking_upstream: FakeUpstream,
                                                             tmp_path: Path) -> None:
    """Thinking blocks (from reasoning_content) go to Claude Code signed; it sends them back, and
    mapper, having checked the signature, returns their text as reasoning_content, which this
    upstream demands on every tool-call turn (its 400 otherwise fails the task)."""
    thinking_upstream.reset()
    with serve(thinking_upstream, tmp_path, "--option", "reasoning_passback=reasoning_content") as mapper:
        run = run_claude(TASK, mapper.origin, tmp_path, model=MODEL)
        assert_task_done(run, mapper, tmp_path / "work")
    bodies = chat_bodies(thinking_upstream)
    assert_tool_round_trip(bodies)
    (caller,) = [m for m in bodies[-1]["messages"] if m.get("tool_calls")]
    assert caller["reasoning_content"] == "planning step 1"


def test_claude_code_retries_an_overloaded_upstream(mapper: MapperServe, fake: FakeUpstream, tmp_path: Path) -> None:
    """An upstream 503 reaches Claude Code as Anthropic's 529 overloaded_error, which it retries."""
    since = len(mapper.log_lines())
    fake.expect("/v1/chat/completions", error_reply(503, "The engine is currently overloaded.", "server_error"))
    run = run_claude(TASK, mapper.origin, tmp_path, model=MODEL)
    assert_task_done(run, mapper, tmp_path / "work")
    bodies = chat_bodies(fake)
    assert len(bodies) == 3 and bodies[0]["messages"] == bodies[1]["messages"]  # the same turn, again
    assert_tool_round_trip(bodies[1:])
    statuses = [line.get("status") for line in mapper.log_lines(since) if line.get("event") == "request"]
    assert statuses[0] == 529, mapper.log_lines(since)


def test_claude_code_recovers_from_a_broken_stream(mapper: MapperServe, fake: FakeUpstream, tmp_path: Path) -> None:
    """The upstream dies after a word; mapper ends the stream with an error event and leaves the
    text block unclosed, as Anthropic does. Claude Code keeps no half answer: it asks the same turn
    again without streaming (its fallback after a broken stream), then streams the next turn."""
    chunk = {"id": "chatcmpl-broken", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
    frames = [{**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
              {**chunk, "choices": [{"index": 0, "delta": {"content": "Let me "}, "finish_reason": None}]},
              {**chunk, "choices": [{"index": 0, "delta": {"content": "never finish"}, "finish_reason": None}]}]
    fake.expect("/v1/chat/completions", sse_reply(frames, drop_after=2))
    run = run_claude(TASK, mapper.origin, tmp_path, model=MODEL)
    assert_task_done(run, mapper, tmp_path / "work")
    first, *rest = chat_bodies(fake)
    assert first["stream"] is True and rest[0]["messages"] == first["messages"]
    assert not any(m.get("content") == "Let me " for body in rest for m in body["messages"])
    assert_tool_round_trip(rest, streamed=(False, True))


def test_claude_code_with_a_template_that_takes_one_system_message(tmp_path: Path) -> None:
    """Qwen3.5's and Gemma's chat templates (vLLM, llama.cpp, Ollama) refuse a system message that is
    not the first; Claude Code sends its environment as a ``role: "system"`` message after the
    user's, so with ``system_messages=first`` it joins the leading system message."""
    with FakeUpstream(models=[MODEL], chat_model=PLAN.answer, quirks=["system_message_first"]) as upstream:
        with serve(upstream, tmp_path, "--option", "system_messages=first") as mapper:
            run = run_claude(TASK, mapper.origin, tmp_path, model=MODEL)
            assert_task_done(run, mapper, tmp_path / "work")
        assert_tool_round_trip(chat_bodies(upstream))


def test_claude_code_runs_a_bash_task_against_a_responses_upstream(tmp_path: Path) -> None:
    """``--mapping anthropic-responses`` on its defaults, in front of a reasoning model that serves
    only the Responses API and shows its reasoning as summaries (OpenAI's): Bash is offered as a
    function tool; the model's summary reaches Claude Code as a signed thinking block and its call
    as a ``tool_use`` from a ``function_call`` item; the command's output goes up as a
    ``function_call_output``, and the thinking Claude Code sends back is left out and named (the
    upstream finds reasoning only by id, which a Messages history lacks)."""
    quirks = ["no_chat_endpoint", "responses_reasoning_summary"]
    with FakeUpstream(models=[MODEL], responses_model=PLAN.answer, quirks=quirks) as upstream:
        with MapperServe(["--mapping", "anthropic-responses", "--upstream", upstream.base_url], tmp_path) as mapper:
            run = run_claude(TASK, mapper.origin, tmp_path, model=MODEL)
            assert_task_done(run, mapper, tmp_path / "work")
            assert run.result["num_turns"] == 2, run.describe()
            assert mapper.refusals() == [] and "thinking" in mapper.left_out(), mapper.log_lines()
        assert [request.path for request in upstream.requests] == ["/v1/responses"] * 2
        bodies = [request.json for request in upstream.requests]
    for body in bodies:
        assert body["model"] == MODEL and body["stream"] is True and body["store"] is False
        assert body["instructions"] and body["reasoning"]["effort"]  # Claude Code's system blocks; it thinks
        bash = next(tool for tool in body["tools"] if tool.get("name") == "Bash")
        assert bash["type"] == "function" and "command" in bash["parameters"]["properties"]
    items = bodies[-1]["input"]
    assert "planning step 1" not in json.dumps(items) and "reasoning" not in [item.get("type") for item in items]
    (call,) = [item for item in items if item.get("type") == "function_call"]
    assert (call["call_id"], call["name"]) == ("call_step_1", "Bash")
    assert json.loads(call["arguments"])["command"] == COMMAND
    (result,) = [item for item in items if item.get("type") == "function_call_output"]
    assert result["call_id"] == "call_step_1" and NOTE in json.dumps(result["output"])
    assert items.index(result) == items.index(call) + 1


def test_claude_code_counts_tokens_and_lists_models(mapper: MapperServe, fake: FakeUpstream, tmp_path: Path) -> None:
    """``/context`` counts every part of the prompt with count_tokens (Claude Code's body: no
    ``max_tokens``, beta fields); gateway model discovery reads ``GET /v1/models?limit=1000``."""
    since = len(mapper.log_lines())
    run = run_claude("/context", mapper.origin, tmp_path, model=MODEL,
                     env={"CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1"})
    assert run.succeeded and "Context Usage" in run.result["result"], run.describe()
    requests = [line for line in mapper.log_lines(since) if line.get("event") == "request"]
    counts = [line for line in requests if "count_tokens" in str(line.get("path"))]
    listings = [line for line in requests if str(line.get("path")).endswith("/models")]
    assert counts and listings, requests
    assert {line["status"] for line in counts + listings} == {200}, mapper.refusals()
    assert chat_bodies(fake) == []  # an estimate: the model is not asked
