"""The response store end to end: the official SDK → the proxy with ``--store`` → a fake upstream.

What a Responses client relies on when it stores and chains: create (streamed or not) then
retrieve the same object with the same ids, chain with ``previous_response_id`` (the upstream gets
the earlier input, every earlier output item — reasoning and function calls included — and the new
input, but not the earlier instructions), list the input items, delete. Then the same across
processes: two ``mapper serve`` processes on one SQLite file, and two proxies on one real Redis.
Edge cases (pagination, refusals, a store that fails) run in-process through ``httpx.ASGITransport``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import httpx
import openai
import orjson
import pytest

from mapper.engine import load_mapping
from mapper.engine.context import Context
from mapper.engine.proxy import ProxyApp, ProxyConfig, ServeOptions, build_config
from mapper.engine.proxy.stored import Turn
from support.fake_upstream import FakeUpstream
from support.proxy_server import ProxyServer, reset_upstreams, serve_routes
from support.sse_reader import parse_sse_events
from support.upstream_replies import error_reply, sse_reply

ROUTES = """\
format: mapper-routes/1
store: sqlite:///responses.sqlite3     # relative to this file
routes:
  reasoner:
    match: "^deepseek-"
    upstream: {reasoner}
    mapping: deepseek                  # passes reasoning back, as DeepSeek requires
  default:
    upstream: {main}
    mapping: openai-chat
"""

WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Weather in a city.",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                               "required": ["q"], "additionalProperties": False}}


@pytest.fixture(scope="module")
def main_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def reasoner_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(quirks=["reasoning_content"], models=["deepseek-reasoner"]) as server:
        yield server


@pytest.fixture(scope="module")
def routes_dir(tmp_path_factory) -> Path:
    return Path(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def proxy(main_upstream: FakeUpstream, reasoner_upstream: FakeUpstream,
          routes_dir: Path) -> Iterator[ProxyServer]:
    routes = ROUTES.format(main=main_upstream.base_url, reasoner=reasoner_upstream.base_url)
    with serve_routes(routes, routes_dir) as server:
        yield server


@pytest.fixture
def fake(main_upstream: FakeUpstream, reasoner_upstream: FakeUpstream) -> FakeUpstream:
    return reset_upstreams(main_upstream, reasoner_upstream)


def sdk(base_url: str, key: str = "sk-client") -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=10)


@pytest.fixture
def client(proxy: ProxyServer) -> Iterator[openai.OpenAI]:
    with sdk(proxy.base_url) as made:
        yield made


def dump(model: Any) -> Any:
    return model.model_dump(mode="json", exclude_unset=True)


def final_response(client: openai.OpenAI, **request: Any) -> Any:
    """The Response a stream's terminal event carried (not the helper's parsed copy)."""
    events = list(client.responses.create(model="fake-model", stream=True, **request))
    assert events[-1].type == "response.completed"
    return events[-1].response


def stored_count(routes_dir: Path) -> int:
    with contextlib.closing(sqlite3.connect(routes_dir / "responses.sqlite3")) as db:
        return db.execute("SELECT count(*) FROM responses").fetchone()[0]


# -- create, retrieve, delete -------------------------------------------------------------------


def test_a_created_response_is_retrieved_unchanged(client: openai.OpenAI, fake: FakeUpstream) -> None:
    created = client.responses.create(model="fake-model", input="hello there")
    assert created.store is True  # OpenAI's default, followed when the proxy has a store
    assert created.previous_response_id is None
    assert dump(client.responses.retrieve(created.id)) == dump(created)


def test_a_stream_is_stored_before_its_terminal_event_with_the_streamed_ids(
        client: openai.OpenAI, proxy: ProxyServer, fake: FakeUpstream) -> None:
    item_ids: list[str] = []
    with sdk(proxy.base_url) as other:
        with pytest.raises(openai.NotFoundError):  # a warm connection: the read below is quick
            other.responses.retrieve("resp_warm_up")
        for event in client.responses.create(model="fake-model", input="streams are kept",
                                             stream=True):
            if event.type == "response.output_item.added":
                item_ids.append(event.item.id)
            if event.type == "response.completed":
                # the terminal event has just arrived: the record must already be there
                at_once = other.responses.retrieve(event.response.id)
                final = event.response
    assert dump(at_once) == dump(final)
    assert [item.id for item in at_once.output] == item_ids and item_ids
    assert at_once.output_text == "echo: streams are kept"


def test_delete_then_retrieve_is_not_found(client: openai.OpenAI, proxy: ProxyServer,
                                           fake: FakeUpstream) -> None:
    created = client.responses.create(model="fake-model", input="short-lived")
    answer = httpx.delete(f"{proxy.base_url}/responses/{created.id}",
                          headers={"authorization": "Bearer sk-client"})
    assert answer.json() == {"id": created.id, "object": "response.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.retrieve(created.id)
    assert missing.value.body["message"] == f"Response with id '{created.id}' not found."
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)


def test_store_false_keeps_nothing(client: openai.OpenAI, fake: FakeUpstream) -> None:
    created = client.responses.create(model="fake-model", input="forget me", store=False)
    assert created.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_a_failed_stream_is_kept_but_an_upstream_error_keeps_nothing(
        client: openai.OpenAI, fake: FakeUpstream, routes_dir: Path) -> None:
    frames = [{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
              for word in ("It ", "was ", "a ")]
    fake.expect("/v1/chat/completions", sse_reply(frames, drop_after=2))
    events = list(client.responses.create(model="fake-model", input="x", stream=True))
    assert events[-1].type == "response.failed"
    kept = client.responses.retrieve(events[-1].response.id)
    assert kept.status == "failed" and kept.output[0].content[0].text == "It was "
    assert dump(kept) == dump(events[-1].response)

    before = stored_count(routes_dir)
    fake.expect("/v1/chat/completions", error_reply(500, "the model is down", "server_error"))
    with pytest.raises(openai.InternalServerError):
        client.responses.create(model="fake-model", input="x")
    assert stored_count(routes_dir) == before


def test_records_belong_to_the_key_that_made_them(proxy: ProxyServer, fake: FakeUpstream) -> None:
    with sdk(proxy.base_url, "sk-alice") as alice, sdk(proxy.base_url, "sk-bob") as bob:
        created = alice.responses.create(model="fake-model", input="mine")
        with pytest.raises(openai.NotFoundError):
            bob.responses.retrieve(created.id)
        with pytest.raises(openai.NotFoundError):
            bob.responses.create(model="fake-model", input="x", previous_response_id=created.id)
        assert alice.responses.retrieve(created.id).id == created.id


# -- chains ---------------------------------------------------------------------------------------


def test_a_chain_replays_input_and_every_output_item_but_not_old_instructions(
        client: openai.OpenAI, fake: FakeUpstream, reasoner_upstream: FakeUpstream) -> None:
    # turn 1, streamed: the reasoner thinks, then calls the tool
    with client.responses.stream(model="deepseek-reasoner", instructions="Old instructions.",
                                 input="call get_weather in Paris", tools=[WEATHER_TOOL]) as stream:
        first = stream.get_final_response()
    assert [item.type for item in first.output] == ["reasoning", "function_call"]
    call = first.output[1]

    # turn 2, at once: only the tool's output is sent, with new instructions
    second = client.responses.create(
        model="deepseek-reasoner", previous_response_id=first.id, instructions="New instructions.",
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[WEATHER_TOOL])
    assert second.previous_response_id == first.id and second.store is True
    assert second.output_text == "tool said: sunny"
    reasoning_text = first.output[0].content[0].text
    assert reasoner_upstream.last_json["messages"] == [
        {"role": "system", "content": "New instructions."},  # the old ones are not replayed
        {"role": "user", "content": "call get_weather in Paris"},
        {"role": "assistant", "reasoning_content": reasoning_text,
         "tool_calls": [{"id": call.call_id, "type": "function",
                         "function": {"name": "get_weather", "arguments": call.arguments}}]},
        {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"},
    ]

    # turn 3 chains from turn 2 alone; its record already holds turn 1, so nothing recurses
    third = client.responses.create(model="deepseek-reasoner", previous_response_id=second.id,
                                    input="thanks")
    sent = reasoner_upstream.last_json["messages"]
    assert [message["role"] for message in sent] == ["user", "assistant", "tool", "assistant", "user"]
    assert sent[3] == {"role": "assistant", "content": "tool said: sunny",
                       "reasoning_content": second.output[0].content[0].text}
    # exactly what a stateless client sending the whole conversation would have caused
    whole = [{"role": "user", "content": "call get_weather in Paris"},
             *[dump(item) for item in first.output],
             {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
             *[dump(item) for item in second.output], {"role": "user", "content": "thanks"}]
    assert sent == load_mapping("deepseek").convert_request(
        {"model": "deepseek-reasoner", "input": whole})["messages"]

    # the input items of turn 3: the whole conversation, each with an id
    listed = client.responses.input_items.list(third.id, order="asc")
    assert [item.type for item in listed.data] == [
        "message", "reasoning", "function_call", "function_call_output", "reasoning", "message",
        "message"]
    ids = [item.id for item in listed.data]
    assert all(ids) and len(set(ids)) == len(ids)
    assert ids[1:3] == [first.output[0].id, call.id] and ids[4:6] == [item.id for item in second.output]
    assert (listed.first_id, listed.last_id, listed.has_more) == (ids[0], ids[-1], False)
    newest_first = client.responses.input_items.list(third.id)  # OpenAI's default order: desc
    assert [item.id for item in newest_first.data] == ids[::-1]
    paged = [item.id for item in client.responses.input_items.list(third.id, order="asc", limit=3)]
    assert paged == ids  # the SDK follows `after` through three pages


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_item_references_are_replaced_by_the_stored_items(client: openai.OpenAI, fake: FakeUpstream,
                                                          stream: bool) -> None:
    # the Vercel AI SDK's default multi-turn: earlier output sent back as references to its ids
    first = final_response(client, input="first question")
    (message,) = first.output
    request = {"input": [{"role": "user", "content": "first question"},
                         {"type": "item_reference", "id": message.id},
                         {"role": "user", "content": "second question"}]}
    if stream:
        second = final_response(client, **request)
    else:
        second = client.responses.create(model="fake-model", **request)
    assert second.status == "completed"
    assert fake.last_json["messages"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "echo: first question"},
        {"role": "user", "content": "second question"}]
    listed = [item.id for item in client.responses.input_items.list(second.id, order="asc").data]
    assert listed[1] == message.id  # the referenced item itself, with its id


def test_an_item_reference_finds_function_calls_and_older_inputs(client: openai.OpenAI,
                                                                 fake: FakeUpstream) -> None:
    called = client.responses.create(model="fake-model", input="call get_weather",
                                     tools=[WEATHER_TOOL])
    (call,) = called.output
    assert call.type == "function_call"
    user_item = client.responses.input_items.list(called.id).data[0]
    client.responses.create(model="fake-model", tools=[WEATHER_TOOL], input=[
        {"type": "item_reference", "id": user_item.id},
        {"type": "item_reference", "id": call.id},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    sent = fake.last_json["messages"]
    assert sent[0] == {"role": "user", "content": "call get_weather"}
    assert sent[1]["tool_calls"][0]["id"] == call.call_id
    assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}


def test_an_unknown_or_foreign_item_reference_is_a_404(proxy: ProxyServer, fake: FakeUpstream) -> None:
    with sdk(proxy.base_url, "sk-alice") as alice, sdk(proxy.base_url, "sk-bob") as bob:
        made = alice.responses.create(model="fake-model", input="private")
        for client, item_id in ((alice, "msg_never_stored"), (bob, made.output[0].id)):
            with pytest.raises(openai.NotFoundError) as caught:
                client.responses.create(model="fake-model", input=[
                    {"role": "user", "content": "hi"}, {"type": "item_reference", "id": item_id}])
            error = caught.value.body
            assert error["message"] == f"Item with id '{item_id}' not found."
            assert (error["param"], error["code"]) == ("input[1]", "item_not_found")
    assert len(fake.requests) == 1


def test_an_unknown_previous_response_is_a_404(client: openai.OpenAI, fake: FakeUpstream) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="fake-model", input="x", previous_response_id="resp_nope")
    assert missing.value.body == {"message": "Previous response with id 'resp_nope' not found.",
                                  "type": "invalid_request_error", "param": "previous_response_id",
                                  "code": "previous_response_not_found"}
    assert fake.requests == []  # nothing went upstream


def test_background_and_conversation_stay_refused(client: openai.OpenAI, fake: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="fake-model", input="x", background=True)
    assert refused.value.body["param"] == "background"
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="fake-model", input="x", conversation="conv_1")
    assert refused.value.body["param"] == "conversation"


# -- two processes on one SQLite file ---------------------------------------------------------------


def _serve(upstream: FakeUpstream, store: Path) -> tuple[subprocess.Popen[str], str]:
    from test_proxy_cli import _free_port  # the same helpers as the CLI tests

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mapper.cli", "serve", "--mapping", "openai-chat", "--upstream",
         upstream.base_url, "--port", str(port), "--store", f"sqlite:///{store}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return process, f"http://127.0.0.1:{port}"


def test_two_processes_share_one_sqlite_file(fake: FakeUpstream, tmp_path: Path) -> None:
    from test_proxy_cli import _stop, _wait_healthy

    store = tmp_path / "shared.sqlite3"
    (first, first_url), (second, second_url) = _serve(fake, store), _serve(fake, store)
    try:
        _wait_healthy(first_url + "/health", first)
        _wait_healthy(second_url + "/health", second)
        with sdk(first_url + "/v1") as one, sdk(second_url + "/v1") as two:
            made = final_response(one, input="from the first")
            assert dump(two.responses.retrieve(made.id)) == dump(made)
            chained = two.responses.create(model="fake-model", input="and the second",
                                           previous_response_id=made.id)
            assert [m["role"] for m in fake.last_json["messages"]] == ["user", "assistant", "user"]
            assert len(one.responses.input_items.list(chained.id).data) == 3

            # writers in both processes at once: every record lands and is seen by the other
            def create(client: openai.OpenAI, n: int) -> str:
                return client.responses.create(model="fake-model", input=f"turn {n}").id

            results: list[tuple[openai.OpenAI, str]] = []
            threads = [threading.Thread(target=lambda c=c, n=n: results.append(
                (c, create(c, n)))) for n, c in enumerate([one, two] * 6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(20)
            assert len(results) == 12
            for writer, response_id in results:
                reader = two if writer is one else one
                assert reader.responses.retrieve(response_id).id == response_id

            one.responses.delete(chained.id)
            with pytest.raises(openai.NotFoundError):
                two.responses.retrieve(chained.id)
    finally:
        logs = _stop(first) + _stop(second)
    assert "sk-client" not in logs


# -- two proxies on one Redis --------------------------------------------------------------------


def test_two_proxies_share_a_redis_store(redis_url: str, fake: FakeUpstream) -> None:
    config = build_config(ServeOptions(mapping="openai-chat", upstream=fake.base_url,
                                       store=redis_url + "?ttl=60"), env={})
    with ProxyServer(config, new_context=Context) as first, \
            ProxyServer(config, new_context=Context) as second, \
            sdk(first.base_url) as one, sdk(second.base_url) as two:
        made = final_response(one, input="kept in redis")
        assert dump(two.responses.retrieve(made.id)) == dump(made)
        chained = two.responses.create(model="fake-model", input="next", previous_response_id=made.id)
        assert [m["content"] for m in fake.last_json["messages"]] == [
            "kept in redis", "echo: kept in redis", "next"]
        assert [item.type for item in one.responses.input_items.list(chained.id).data] == \
            ["message"] * 3
        one.responses.delete(made.id)
        with pytest.raises(openai.NotFoundError):
            two.responses.retrieve(made.id)
        assert two.responses.retrieve(chained.id).id == chained.id  # its record stands alone
        # the item index lives in Redis too: one proxy finds what the other stored
        referenced = final_response(one, input="referenced")
        two.responses.create(model="fake-model", input=[
            {"type": "item_reference", "id": referenced.output[0].id},
            {"role": "user", "content": "and then"}])
        assert [m["content"] for m in fake.last_json["messages"]] == ["echo: referenced", "and then"]


# -- in-process edge cases ----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def asgi(config: ProxyConfig) -> AsyncIterator[httpx.AsyncClient]:
    app = ProxyApp(config, new_context=Context)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy",
                                     timeout=10, headers={"authorization": "Bearer k"}) as client:
            yield client
    finally:
        await app.aclose()


def with_store(fake: FakeUpstream, store: Path | str) -> ProxyConfig:
    return build_config(ServeOptions(mapping="openai-chat", upstream=fake.base_url,
                                     store=store if isinstance(store, str) else f"sqlite:///{store}"),
                        env={})


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [True, False])
async def test_the_record_exists_before_the_answer_leaves(fake: FakeUpstream, tmp_path: Path,
                                                          stream: bool) -> None:
    """Checked in ``send`` itself: the bytes that end the answer go out after the record exists."""
    app = ProxyApp(with_store(fake, tmp_path / "r.sqlite3"), new_context=Context)
    request = {"type": "http.request", "more_body": False,
               "body": orjson.dumps({"model": "m", "input": "x", "stream": stream})}
    found: list[Any] = []

    async def receive() -> dict[str, Any]:
        nonlocal request
        if request is None:
            await asyncio.Event().wait()  # the client stays connected
        message, request = request, None
        return message

    async def send(message: dict[str, Any]) -> None:
        if message["type"] != "http.response.body" or not message.get("body"):
            return
        if stream:
            events = parse_sse_events(message["body"])
            answers = [event["response"] for event in events if event["type"] == "response.completed"]
        else:
            answers = [orjson.loads(message["body"])]
        for answer in answers:
            found.append(await app.stored.store.get(answer["id"]))

    scope = {"type": "http", "method": "POST", "path": "/v1/responses", "query_string": b"",
             "headers": [(b"content-type", b"application/json")]}
    try:
        await app(scope, receive, send)
    finally:
        await app.aclose()
    assert len(found) == 1 and found[0] is not None and found[0].response["status"] == "completed"


@pytest.mark.anyio
async def test_input_items_pages_and_refusals(fake: FakeUpstream, tmp_path: Path) -> None:
    async with asgi(with_store(fake, tmp_path / "r.sqlite3")) as client:
        created = (await client.post("/v1/responses", json={
            "model": "m", "input": [{"role": "user", "content": f"part {n}"} for n in range(5)]})).json()
        url = f"/v1/responses/{created['id']}/input_items"
        everything = (await client.get(url, params={"order": "asc"})).json()
        ids = [item["id"] for item in everything["data"]]
        assert all(item_id.startswith("msg_") for item_id in ids) and len(ids) == 5
        page = (await client.get(url, params={"limit": 2, "after": ids[3]})).json()
        assert page == {"object": "list", "data": everything["data"][2::-1][:2],
                        "first_id": ids[2], "last_id": ids[1], "has_more": True}
        for params, param in [({"limit": 0}, "limit"), ({"limit": "x"}, "limit"),
                              ({"order": "up"}, "order")]:
            refused = await client.get(url, params=params)
            assert (refused.status_code, refused.json()["error"]["param"]) == (400, param)
        assert (await client.get(url, params={"after": "msg_nope"})).status_code == 404
        assert (await client.post(f"/responses/{created['id']}")).status_code == 405
        streamed = await client.get(f"/v1/responses/{created['id']}", params={"stream": "true"})
        assert (streamed.status_code, streamed.json()["error"]["param"]) == (400, "stream")
        assert (await client.get(f"/v1/responses/{created['id']}/cancel")).status_code == 404


@pytest.mark.anyio
async def test_bad_store_fields_and_duplicates_are_400s(fake: FakeUpstream, tmp_path: Path) -> None:
    async with asgi(with_store(fake, tmp_path / "r.sqlite3")) as client:
        for field, value in [("store", "yes"), ("previous_response_id", 7),
                             ("previous_response_id", "")]:
            refused = await client.post("/v1/responses", json={"model": "m", "input": "x", field: value})
            assert (refused.status_code, refused.json()["error"]["param"]) == (400, field)
        first = (await client.post("/v1/responses", json={"model": "m", "input": "hi"})).json()
        again = await client.post("/v1/responses", json={
            "model": "m", "previous_response_id": first["id"], "input": first["output"]})
        assert again.status_code == 400
        assert again.json()["error"]["message"].startswith(
            f"Duplicate item found with id {first['output'][0]['id']}.")
        # the mapping's own checks still apply to the expanded input...
        bad = await client.post("/v1/responses", json={
            "model": "m", "previous_response_id": first["id"],
            "input": [{"type": "compaction", "encrypted_content": "x"}]})
        # ... and name the client's own item: input[0], not its place in the expanded input
        assert (bad.status_code, bad.json()["error"]["param"]) == (400, "input[0]")
        assert fake.requests and len(fake.requests) == 1


@pytest.mark.anyio
async def test_a_failing_store_is_a_503_on_reads_and_a_logged_error_on_writes(
        fake: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "a-file").write_text("")
    config = with_store(fake, tmp_path / "a-file" / "r.sqlite3")  # cannot be created
    async with asgi(config) as client:
        with caplog.at_level("INFO", logger="mapper.proxy"):
            created = await client.post("/v1/responses", json={"model": "m", "input": "hi"})
        assert created.status_code == 200  # the tokens are spent: the answer still goes out
        line = next(r for r in caplog.records if r.getMessage() == "request").fields
        assert "the SQLite store" in line["store_error"] and "stored" not in line
        assert any(r.getMessage() == "response not stored" and r.levelname == "ERROR"
                   for r in caplog.records)
        read = await client.get(f"/v1/responses/{created.json()['id']}")
        assert read.status_code == 503
        assert read.json()["error"]["code"] == "store_unavailable"
        chained = await client.post("/v1/responses", json={"model": "m", "input": "x",
                                                           "previous_response_id": "resp_1"})
        assert chained.status_code == 503


@pytest.mark.anyio
async def test_without_a_store_nothing_changes(fake: FakeUpstream) -> None:
    config = build_config(ServeOptions(mapping="openai-chat", upstream=fake.base_url), env={})
    async with asgi(config) as client:
        assert (await client.get("/v1/responses/resp_1")).status_code == 404
        refused = await client.post("/v1/responses", json={"model": "m", "input": "x",
                                                           "previous_response_id": "resp_1"})
        assert refused.status_code == 400 and "mapper serve --store" in refused.json()["error"]["message"]
        created = (await client.post("/v1/responses", json={"model": "m", "input": "x"})).json()
        assert created["store"] is False


def test_lifespan_fails_when_the_store_cannot_open(fake: FakeUpstream, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    app = ProxyApp(with_store(fake, tmp_path / "a-file" / "r.sqlite3"))
    sent: list[dict[str, Any]] = []
    messages = iter([{"type": "lifespan.startup"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        try:
            await app({"type": "lifespan"}, receive, send)
        finally:
            await app.aclose()

    asyncio.run(run())
    assert sent[0]["type"] == "lifespan.startup.failed" and "M501" in sent[0]["message"]


def test_a_400_names_the_clients_own_input_item() -> None:
    turn = Turn(request={}, echo={}, input=[], owner="", store=True, replayed=3)
    assert turn.param("input[4].content[1]") == "input[1].content[1]"
    assert turn.param("input[1]") == "previous_response_id"  # a replayed item refused now
    assert turn.param("tools[0]") == "tools[0]" and turn.param(None) is None
    assert Turn({}, {}, [], "", True).param("input[4]") == "input[4]"
