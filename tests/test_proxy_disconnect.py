"""A client that hangs up cancels the upstream request within 100 ms, streaming or not.

Two layers, each with both upstream transports: the ASGI app driven directly (the server's
``http.disconnect`` message is sent by the test at a known instant), and the app under its real
server (``engine.proxy.front``) where a real client closes its socket. The upstream is a real
server that records when its handler was cancelled by the closed connection
(``FakeUpstream.disconnected_at``).
"""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest

from mapper.engine import deterministic_context
from mapper.engine.proxy import ProxyApp, ServeOptions, build_config
from mapper.engine.proxy.upstream import TRANSPORTS
from support.fake_upstream import FakeUpstream
from support.proxy_server import ProxyServer
from support.upstream_replies import hang_reply, sse_reply

pytestmark = pytest.mark.anyio
LIMIT = 0.1  # seconds from the hang-up to the upstream seeing its connection closed


def _slow_stream() -> object:
    frames = [{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": {"content": f"w{n} "}, "finish_reason": None}]}
              for n in range(200)]
    return sse_reply(frames, delay=0.05)


def _config(fake: FakeUpstream, transport: str):
    return build_config(ServeOptions(mapping="openai-chat", upstream=fake.base_url, transport=transport),
                        env={})


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_an_http_disconnect_cancels_the_upstream(fake: FakeUpstream, transport: str, stream: bool) -> None:
    fake.expect("/v1/chat/completions", _slow_stream() if stream else hang_reply(10))
    app = ProxyApp(_config(fake, transport), new_context=deterministic_context)
    body = orjson.dumps({"model": "m", "input": "x", "stream": stream})
    hang_up = asyncio.Event()
    sent: list[dict] = []
    delivered = False

    async def receive() -> dict:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await hang_up.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/responses", "headers": [], "query_string": b""}
    call = asyncio.ensure_future(app(scope, receive, send))
    try:
        if stream:  # hang up once the first events went out
            deadline = time.monotonic() + 5
            while not any(m["type"] == "http.response.body" for m in sent) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        else:  # hang up while the upstream is still thinking
            await asyncio.sleep(0.3)
        hung_up_at = time.monotonic()
        hang_up.set()
        await asyncio.wait_for(call, 5)
        assert await asyncio.to_thread(fake.disconnected.wait, 5)
    finally:
        await app.aclose()
    assert fake.disconnected_at - hung_up_at < LIMIT
    assert len(fake.requests) == 1
    if stream:
        assert sent[0]["status"] == 200
    else:
        assert not sent  # nobody to answer


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_a_closed_socket_cancels_the_upstream_under_the_server(fake: FakeUpstream, transport: str) -> None:
    fake.expect("/v1/chat/completions", hang_reply(10), _slow_stream())
    with ProxyServer(_config(fake, transport)) as proxy:
        with httpx.Client(base_url=proxy.base_url, timeout=0.3) as client:
            with pytest.raises(httpx.ReadTimeout):
                client.post("/responses", json={"model": "m", "input": "x"})
        gave_up_at = time.monotonic()
        assert fake.disconnected.wait(5)
        complete_latency = fake.disconnected_at - gave_up_at
        fake.disconnected.clear()

        with httpx.Client(base_url=proxy.base_url, timeout=5) as client:
            with client.stream("POST", "/responses", json={"model": "m", "input": "x", "stream": True}) as response:
                assert response.status_code == 200
                lines = response.iter_lines()
                assert next(lines) == "event: response.created"
        closed_at = time.monotonic()
        assert fake.disconnected.wait(5)
        stream_latency = fake.disconnected_at - closed_at
    assert complete_latency < LIMIT
    assert stream_latency < LIMIT
