"""AgentScope's ``OpenAIChatModel`` (agentscope) through ``mapper serve --mapping openai-responses``.

The CoPaw / AgentScope situation the project grew from: a framework whose OpenAI model speaks only
Chat Completions, in front of a gateway that serves only ``/v1/responses``. The fake upstream's chat
endpoint is switched off (``no_chat_endpoint``), so every answer AgentScope gets has been converted
both ways. mapper runs on its defaults; AgentScope on its own (streaming on, usage asked for in the
stream, tools in chat form, every message named), with its retries off and a timeout so that a
failure is quick. The model is driven as an agent drives it (``await model(msgs, tools=...)``, a
history of ``Msg`` objects with tool calls, results and thinking blocks), then the real ReAct agent
(``agentscope.agent.Agent`` in 2.x) runs a registered function and answers. Nothing reaches beyond
127.0.0.1 (``only_loopback``); AgentScope's tracing is an opt-in middleware, left off.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Coroutine

import pytest

from support.fake_upstream import FakeUpstream
from support.mapper_serve import MapperServe
from support.real_clients import require_python_package
from support.scripted_agent import AgentPlan, Function
from support.toy_model import Answer, response_events, response_object, responses_answer, split_words
from support.upstream_replies import event_frame, json_reply, sse_reply

TIMEOUT = 20.0  # seconds for one test's AgentScope calls; each is a few requests to 127.0.0.1
AGENT_MODEL = "fake-agent-model"  # the model name the scripted plan answers; the toy model answers the rest
PLAN = AgentPlan((Function("get_weather", {"q": "Paris"}),), final="The tool said: {output}")
PROMPT = "call get_weather and call get_time for Paris"
STREAMED = pytest.mark.parametrize("streamed", [False, True], ids=["create", "stream"])
pytestmark = pytest.mark.usefixtures("only_loopback")  # nothing AgentScope opens may leave 127.0.0.1


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    require_python_package("agentscope", "agentscope")


def answer_by_model(body: Any, reasoning: bool) -> Answer:
    return PLAN.answer(body, reasoning) if body.get("model") == AGENT_MODEL else responses_answer(body, reasoning)


@pytest.fixture(scope="module")
def upstream_server():
    """A Responses-only upstream, raw reasoning when asked for it (``mapper_to_responses`` fronts it)."""
    quirks = ["no_chat_endpoint", "responses_reasoning_text"]
    with FakeUpstream(models=["fake-model", AGENT_MODEL], quirks=quirks, responses_model=answer_by_model) as server:
        yield server


# ---------------------------------------------------------------------------------------------- helpers


def get_weather(q: str) -> str:
    """Get the weather in a city.

    Args:
        q (str): The city, in the user's words.
    """
    return "sunny"


def get_time(q: str) -> str:
    """Get the local time in a city.

    Args:
        q (str): The city, in the user's words.
    """
    return "14:05"


def chat_model(mapper: MapperServe, sent: list | None = None, streamed: bool = True, model: str = "fake-model",
               **parameters: Any):
    """``OpenAIChatModel`` on ``mapper``; the chat bodies AgentScope sends are appended to ``sent``."""
    import httpx
    from agentscope.credential import OpenAICredential
    from agentscope.model import OpenAIChatModel

    async def record(request: httpx.Request) -> None:
        if sent is not None:
            sent.append(json.loads(request.content))

    client = httpx.AsyncClient(event_hooks={"request": [record]}, timeout=TIMEOUT)
    return OpenAIChatModel(credential=OpenAICredential(api_key="sk-dummy", base_url=mapper.base_url),
                           model=model, stream=streamed, max_retries=0,
                           parameters=OpenAIChatModel.Parameters(**parameters),
                           client_kwargs={"http_client": client, "max_retries": 0})


def run(coroutine: Coroutine[Any, Any, Any], *models: Any) -> Any:
    """Run ``coroutine`` within TIMEOUT seconds, then close the models' HTTP clients."""

    async def bounded() -> Any:
        try:
            return await asyncio.wait_for(coroutine, TIMEOUT)
        finally:
            for model in models:
                await model.client.close()

    return asyncio.run(bounded())


async def ask(model: Any, messages: list, tools: list | None = None) -> tuple[Any, list]:
    """The model's answer as AgentScope hands it to an agent, and the deltas before it when streamed."""
    from agentscope.model import ChatResponse

    result = await model(messages, tools=tools)
    if not model.stream:
        assert isinstance(result, ChatResponse)
        return result, []
    chunks = [chunk async for chunk in result]
    assert chunks and chunks[-1].is_last and not any(chunk.is_last for chunk in chunks[:-1])
    return chunks[-1], chunks[:-1]


async def tool_schemas(*functions: Any) -> list[dict]:
    """The schemas an AgentScope ``Toolkit`` makes of ``functions``, as its agent passes them to the model."""
    from agentscope.tool import FunctionTool, Toolkit

    return await Toolkit(tools=[FunctionTool(function) for function in functions]).get_tool_schemas()


def blocks(response: Any) -> list[tuple[str, str]]:
    """A ChatResponse's content as (type, text) pairs; a tool call as (tool_call, name)."""
    pairs = []
    for block in response.content:
        text = {"text": "text", "thinking": "thinking", "tool_call": "name"}[block.type]
        pairs.append((block.type, getattr(block, text)))
    return pairs


def results_for(calls: list, outputs: dict[str, str]) -> list:
    """ToolResultBlocks for ``calls``, as an agent appends them after running the tools."""
    from agentscope.message import TextBlock, ToolResultBlock

    return [ToolResultBlock(id=call.id, name=call.name, output=[TextBlock(text=outputs[call.name])], state="success")
            for call in calls]


# ---------------------------------------------------------------------------------------------- tests


@STREAMED
def test_a_text_answer_with_usage(mapper_to_responses: MapperServe, fake: FakeUpstream, streamed: bool) -> None:
    from agentscope.message import UserMsg

    sent: list = []
    model = chat_model(mapper_to_responses, sent, streamed)
    since = len(mapper_to_responses.log_lines())
    answer, deltas = run(ask(model, [UserMsg("user", "hello there")]), model)
    assert blocks(answer) == [("text", "echo: hello there")]
    assert answer.id.startswith("chatcmpl-")
    assert (answer.usage.input_tokens, answer.usage.output_tokens, answer.usage.cache_input_tokens) == (2, 3, 0)
    if streamed:  # one delta per streamed word, then the whole answer
        assert ["".join(text for _, text in blocks(delta)) for delta in deltas] == ["echo: ", "hello ", "there"]
        assert sent[-1]["stream_options"] == {"include_usage": True}
    assert fake.last.path == "/v1/responses"
    assert fake.last_json["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello there"}]}]
    assert (fake.last_json["stream"], fake.last_json["store"]) == (streamed, False)
    # a Responses stream always ends with its usage; the message's `name` is dropped by design
    assert mapper_to_responses.left_out(since) == ({"stream_options"} if streamed else set())


@STREAMED
def test_a_tool_round_trip(mapper_to_responses: MapperServe, fake: FakeUpstream, streamed: bool) -> None:
    """Two parallel calls, AgentScope's results for them in its agent's message, then the answer."""
    from agentscope.message import AssistantMsg, UserMsg

    sent: list = []
    model = chat_model(mapper_to_responses, sent, streamed)

    async def scenario() -> tuple[Any, Any, list]:
        tools = await tool_schemas(get_weather, get_time)
        history = [UserMsg("user", PROMPT)]
        first, _ = await ask(model, history, tools)
        calls = [block for block in first.content if block.type == "tool_call"]
        history.append(AssistantMsg("Friday", [*first.content, *results_for(calls, {"get_weather": "sunny",
                                                                                     "get_time": "14:05"})]))
        final, _ = await ask(model, history, tools)
        return first, final, calls

    first, final, calls = run(scenario(), model)
    assert blocks(first) == [("tool_call", "get_weather"), ("tool_call", "get_time")]
    assert len({call.id for call in calls}) == 2
    assert [json.loads(call.input) for call in calls] == [{"q": PROMPT}] * 2  # whole, however they streamed
    assert blocks(final) == [("text", "tool said: 14:05")]

    # AgentScope sent its results as named tool messages; they reached the upstream as call outputs
    assert [(m["role"], m.get("name")) for m in sent[-1]["messages"]] == [
        ("user", "user"), ("assistant", "Friday"), ("tool", "get_weather"), ("tool", "get_time")]
    body = fake.last_json
    assert fake.last.path == "/v1/responses" and "parallel_tool_calls" not in body
    assert [(tool["type"], tool["name"], tool["strict"]) for tool in body["tools"]] == [
        ("function", "get_weather", False), ("function", "get_time", False)]
    assert body["tools"][0]["parameters"]["properties"]["q"]["type"] == "string"
    items = body["input"]
    assert [item["type"] for item in items] == ["message", "function_call", "function_call",
                                                "function_call_output", "function_call_output"]
    assert [(item["call_id"], item["name"]) for item in items[1:3]] == [(call.id, call.name) for call in calls]
    assert [(item["call_id"], item["output"]) for item in items[3:]] == [(calls[0].id, "sunny"),
                                                                         (calls[1].id, "14:05")]


@STREAMED
def test_reasoning_arrives_as_a_thinking_block_and_the_history_goes_back(
        mapper_to_responses: MapperServe, fake: FakeUpstream, streamed: bool) -> None:
    """Thinking on (AgentScope's switch for o3 / gpt-5): raw reasoning → ThinkingBlock, turn after turn.

    AgentScope keeps the ThinkingBlock in its agent's message and leaves it out when it formats the
    history for Chat Completions; the next request must still go through.
    """
    from agentscope.message import AssistantMsg, UserMsg

    sent: list = []
    model = chat_model(mapper_to_responses, sent, streamed, thinking_enable=True, reasoning_effort="low")
    prompt = "call get_weather for Paris"

    async def scenario() -> tuple[Any, list, Any]:
        tools = await tool_schemas(get_weather)
        history = [UserMsg("user", prompt)]
        first, deltas = await ask(model, history, tools)
        calls = [block for block in first.content if block.type == "tool_call"]
        history.append(AssistantMsg("Friday", [*first.content, *results_for(calls, {"get_weather": "sunny"})]))
        final, _ = await ask(model, history, tools)
        return first, deltas, final

    first, deltas, final = run(scenario(), model)
    assert blocks(first) == [("thinking", f"thinking about: {prompt}"), ("tool_call", "get_weather")]
    if streamed:  # the reasoning streamed ahead of the call
        assert [block.type for delta in deltas[:2] for block in delta.content] == ["thinking", "thinking"]
    assert blocks(final) == [("thinking", f"thinking about: {prompt}"), ("text", "tool said: sunny")]
    assert final.usage.output_tokens == 6 + 3  # reasoning and text words, as the upstream counted them
    assert fake.last_json["reasoning"] == {"effort": "low"}
    assert sent[-1]["reasoning_effort"] == "low"
    resent = sent[-1]["messages"][1]
    assert resent["role"] == "assistant" and "reasoning_content" not in resent  # AgentScope drops thinking
    assert [item["type"] for item in fake.last_json["input"]] == ["message", "function_call", "function_call_output"]


@STREAMED
def test_reasoning_summaries_arrive_as_a_thinking_block(mapper_to_responses: MapperServe, fake: FakeUpstream,
                                                       streamed: bool) -> None:
    """An OpenAI reasoning model's answer: its reasoning as a summary part, not raw text."""
    from agentscope.message import UserMsg

    answer = Answer(split_words("echo: why sky"), (), split_words("Rayleigh scattering, briefly."), False, 2)
    if streamed:
        events = response_events({}, answer, 1, "fake-model", reasoning_in="summary")
        fake.expect("/v1/responses", sse_reply([event_frame(event) for event in events]))
    else:
        fake.expect("/v1/responses", json_reply(response_object({}, answer, 1, "fake-model", reasoning_in="summary")))
    model = chat_model(mapper_to_responses, streamed=streamed, thinking_enable=True, reasoning_effort="high")
    final, _ = run(ask(model, [UserMsg("user", "why sky")]), model)
    assert blocks(final) == [("thinking", "Rayleigh scattering, briefly."), ("text", "echo: why sky")]
    assert fake.last_json["reasoning"] == {"effort": "high"}


def test_parameters_reach_the_upstream(mapper_to_responses: MapperServe, fake: FakeUpstream) -> None:
    from agentscope.message import UserMsg

    sent: list = []
    model = chat_model(mapper_to_responses, sent, max_tokens=20, temperature=0.5, top_p=0.9, parallel_tool_calls=False)
    words = [f"w{number}" for number in range(30)]

    async def scenario() -> Any:
        answer, _ = await ask(model, [UserMsg("user", " ".join(words))], await tool_schemas(get_weather))
        return answer

    answer = run(scenario(), model)
    assert blocks(answer) == [("text", " ".join(["echo:", *words[:19]]))]  # cut at 20 words by the upstream
    assert (sent[-1]["max_completion_tokens"], sent[-1]["parallel_tool_calls"]) == (20, False)
    body = fake.last_json
    assert (body["max_output_tokens"], body["temperature"], body["top_p"], body["parallel_tool_calls"]) == (
        20, 0.5, 0.9, False)


def test_structured_output_forces_its_tool(mapper_to_responses: MapperServe, fake: FakeUpstream) -> None:
    """``generate_structured_output``: AgentScope forces a tool call by name and validates its arguments."""
    from agentscope.message import UserMsg
    from pydantic import BaseModel

    class Request(BaseModel):
        q: str

    model = chat_model(mapper_to_responses)
    prompt = "call generate_structured_output with my request"
    result = run(model.generate_structured_output([UserMsg("user", prompt)], Request), model)
    assert result.content["q"].startswith(prompt)
    assert fake.last_json["tool_choice"] == {"type": "function", "name": "generate_structured_output"}


@STREAMED
def test_the_agent_runs_a_tool_and_answers(mapper_to_responses: MapperServe, fake: FakeUpstream,
                                           streamed: bool) -> None:
    """AgentScope's ``Agent`` (its ReAct loop) with a registered function, on its defaults."""
    from agentscope.agent import Agent
    from agentscope.message import Msg, UserMsg
    from agentscope.permission import PermissionBehavior, PermissionDecision
    from agentscope.tool import FunctionTool, Toolkit

    ran: list[str] = []

    def get_weather(q: str) -> str:
        """Get the weather in a city.

        Args:
            q (str): The city.
        """
        ran.append(q)
        return f"sunny in {q}"

    # a function tool without a permission makes the agent stop and ask the user to confirm each call
    allowed = PermissionDecision(behavior=PermissionBehavior.ALLOW, message="a harmless test tool")
    model = chat_model(mapper_to_responses, streamed=streamed, model=AGENT_MODEL)
    agent = Agent(name="Friday", system_prompt="You are a helpful assistant.", model=model,
                  toolkit=Toolkit(tools=[FunctionTool(get_weather, permission=allowed)]))

    async def scenario() -> list:
        return [event async for event in agent.reply_stream(UserMsg("user", "What is the weather in Paris?"),
                                                            yield_final_msg=True)]

    events = run(scenario(), model)
    reply = events[-1]
    assert isinstance(reply, Msg) and reply.get_text_content() == "The tool said: sunny in Paris"
    assert ran == ["Paris"]
    kinds = [type(event).__name__ for event in events]
    calls = [index for index, kind in enumerate(kinds) if kind == "ModelCallStartEvent"]
    assert len(calls) == 2 and calls[0] < kinds.index("ToolResultEndEvent") < calls[1]
    assert [request.path for request in fake.requests] == ["/v1/responses"] * 2
    first, second = (request.json for request in fake.requests)
    assert first["input"][0] == {"type": "message", "role": "system",
                                 "content": [{"type": "input_text", "text": "You are a helpful assistant."}]}
    assert "<system-reminder>" in first["input"][-1]["content"][0]["text"]  # the agent's runtime-state hint
    assert second["input"][-2:] == [
        {"type": "function_call", "call_id": "call_step_1", "name": "get_weather", "arguments": '{"q": "Paris"}'},
        {"type": "function_call_output", "call_id": "call_step_1", "output": "sunny in Paris"}]
