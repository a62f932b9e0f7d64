"""The Codex CLI through ``mapper serve --mapping openai-chat`` on its defaults, with and without --store.

Codex (npm ``@openai/codex``, see tests/clients/package.json) runs ``codex exec --json`` with a
task; the chat upstream is the fake one, driven by a scripted model (``scripted_agent``) that
answers Codex's streamed requests with calls of the tools Codex offers, one per turn, then a final
message. The task is multi-step: write a file, read it back, answer with what it says. Codex
always streams, so every turn crosses mapper's stream conversion both ways.

Three model names show three faces of Codex: ``fake-model`` is not in Codex's catalogue, so it sends
its fallback tool set (a ``namespace`` tool among them) and the file is written by a shell
command; ``gpt-5.5`` is, so it sends the freeform ``apply_patch`` tool, a client-run
``tool_search`` and ``text.verbosity``, and the file is written with a patch; ``fake-agent-model``
first calls a tool of the ``multi_agent_v1`` namespace, which Codex runs only when the call comes
back with its ``namespace`` and bare name (otherwise it answers "unsupported call"). A last run puts a
DeepSeek-style thinking upstream behind ``--mapping deepseek``: it refuses a tool-call history
whose reasoning is missing, so the task completes only if Codex's reasoning items come back.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support.codex_cli import CodexRun, codex_script, run_codex
from support.fake_upstream import FakeUpstream
from support.mapper_serve import MapperServe
from support.scripted_agent import AgentPlan, Namespaced, Patch, Shell

NOTE = "mapper was here"
TASK = "Write a note to note.txt, read it back, and tell me what it says."
FINAL = "The note says: {last_line}"
CHAT_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

PLANS = {
    "fake-model": AgentPlan((Shell(f"printf '{NOTE}\\n' > note.txt"), Shell("cat note.txt")), FINAL),
    "gpt-5.5": AgentPlan((Patch(f"*** Begin Patch\n*** Add File: note.txt\n+{NOTE}\n*** End Patch\n"),
                          Shell("cat note.txt")), FINAL),
    # another name outside Codex's catalogue: its fallback tools include the multi_agent_v1 namespace
    "fake-agent-model": AgentPlan((Namespaced("multi_agent_v1", "close_agent", {"target": "nobody"}),
                                   Shell(f"printf '{NOTE}\n' > note.txt"), Shell("cat note.txt")), FINAL),
}


def scripted_by_model(body: dict, reasoning: bool = False):
    """Each model name follows its own plan (one upstream serves both)."""
    return PLANS[body["model"]].answer(body, reasoning)


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    codex_script()


@pytest.fixture(scope="module")
def upstream_server():
    """The chat upstream (conftest's ``fake`` resets it): the scripted model instead of the toy one."""
    with FakeUpstream(models=list(PLANS), chat_model=scripted_by_model) as server:
        yield server


@pytest.fixture(scope="module")
def thinking_upstream():
    with FakeUpstream(models=list(PLANS), chat_model=scripted_by_model, quirks=["reasoning_content"]) as server:
        yield server


@pytest.fixture(scope="module")
def deepseek(thinking_upstream: FakeUpstream, tmp_path_factory):
    folder = tmp_path_factory.mktemp("codex-deepseek")
    with MapperServe(["--mapping", "deepseek", "--upstream", thinking_upstream.base_url], folder) as server:
        yield server


def assert_task_done(run: CodexRun, mapper: MapperServe, work: Path) -> None:
    """Codex finished the turn, ran both steps, and answered with the note's text."""
    context = f"{run.describe()}\n--- mapper refused:\n" + "\n".join(mapper.refusals())
    types = [event["type"] for event in run.events]
    assert run.returncode == 0, context
    assert types[0] == "thread.started" and types[-1] == "turn.completed", context
    assert "turn.failed" not in types and "error" not in types, context
    assert (work / "note.txt").read_text() == NOTE + "\n", context
    (message,) = run.items("agent_message")
    assert message["text"] == f"The note says: {NOTE}", context
    reads = [item for item in run.items("command_execution") if "cat note.txt" in item["command"]]
    assert [(item["exit_code"], item["status"], item["aggregated_output"].strip()) for item in reads] == [
        (0, "completed", NOTE)], context


def assert_chat_requests(fake: FakeUpstream, model: str) -> None:
    """Three streamed chat turns (two calls, then the answer), each with Codex's tools valid for chat."""
    bodies = [request.json for request in fake.requests if request.path == "/v1/chat/completions"]
    assert len(bodies) == 3
    for body in bodies:
        assert body["model"] == model and body["stream"] is True
        names = [tool["function"]["name"] for tool in body["tools"]]
        assert "exec_command" in names
        assert all(CHAT_TOOL_NAME.match(name) for name in names), names
    tool_results = [m for m in bodies[-1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_results] == ["call_step_1", "call_step_2"]
    assert NOTE in str(tool_results[-1]["content"])


@pytest.mark.parametrize("server", ["mapper_without_store", "mapper_with_store"])
def test_codex_runs_a_shell_task(server: str, fake: FakeUpstream, tmp_path: Path, request) -> None:
    mapper: MapperServe = request.getfixturevalue(server)
    since = len(mapper.log_lines())
    run = run_codex(TASK, mapper.base_url, tmp_path)
    assert_task_done(run, mapper, tmp_path / "work")
    commands = [item["command"] for item in run.items("command_execution")]
    assert len(commands) == 2 and "printf" in commands[0], run.describe()
    assert_chat_requests(fake, "fake-model")
    # what a chat upstream cannot take is left out and named; the namespace's tools are not
    assert mapper.left_out(since) == {"client_metadata", "tools[web_search]", "reasoning.summary",
                                      "include[reasoning.encrypted_content]"}
    names = [tool["function"]["name"] for tool in fake.requests[0].json["tools"]]
    assert "multi_agent_v1__spawn_agent" in names


@pytest.mark.parametrize("server", ["mapper_without_store", "mapper_with_store"])
def test_codex_with_a_catalogued_model_patches_then_reads(server: str, fake: FakeUpstream, tmp_path: Path,
                                                          request) -> None:
    mapper: MapperServe = request.getfixturevalue(server)
    since = len(mapper.log_lines())
    run = run_codex(TASK, mapper.base_url, tmp_path, model="gpt-5.5")
    assert_task_done(run, mapper, tmp_path / "work")
    assert mapper.left_out(since) == {"client_metadata", "tools[tool_search]", "tools[web_search]",
                                      "include[reasoning.encrypted_content]"}
    (change,) = run.items("file_change")
    assert change["status"] == "completed", run.describe()
    assert [(Path(entry["path"]).name, entry["kind"]) for entry in change["changes"]] == [("note.txt", "add")]
    assert_chat_requests(fake, "gpt-5.5")
    patch_tool = next(tool for tool in fake.requests[0].json["tools"] if tool["function"]["name"] == "apply_patch")
    assert list(patch_tool["function"]["parameters"]["properties"]) == ["input"]  # freeform, as mapper sends it


def test_codex_passes_reasoning_back_to_a_thinking_upstream(deepseek: MapperServe, thinking_upstream: FakeUpstream,
                                                            tmp_path: Path) -> None:
    thinking_upstream.reset()
    run = run_codex(TASK, deepseek.base_url, tmp_path)
    assert_task_done(run, deepseek, tmp_path / "work")
    # three words of thought per turn ("planning step 1" …), counted by mapper from the chat usage
    assert run.events[-1]["usage"]["reasoning_output_tokens"] == 9, run.describe()
    last = thinking_upstream.requests[-1].json["messages"]
    assert [m["reasoning_content"] for m in last if m.get("tool_calls")] == ["planning step 1", "planning step 2"]


def test_codex_runs_a_namespaced_tool(mapper_without_store: MapperServe, fake: FakeUpstream, tmp_path: Path) -> None:
    run = run_codex(TASK, mapper_without_store.base_url, tmp_path, model="fake-agent-model")
    assert_task_done(run, mapper_without_store, tmp_path / "work")
    bodies = [request.json for request in fake.requests]
    (namespaced, *_) = [m for m in bodies[-1]["messages"] if m["role"] == "tool"]
    # Codex's close_agent ran and refused the made-up id; an unrecognised call says "unsupported call"
    assert "nobody" in namespaced["content"] and "unsupported call" not in namespaced["content"], run.describe()
    first_call = next(m for m in bodies[-1]["messages"] if m.get("tool_calls"))["tool_calls"][0]["function"]
    assert first_call["name"].startswith("multi_agent_v1") and first_call["name"].endswith("close_agent")
