"""The upstream leg (engine/proxy/upstream.py): base URLs, passed headers, failures, cancellation.

Failures and cancellation run against real sockets with both transports, because the transports
differ exactly there (an aiohttp-based transport may report a refused connection as a connect
*timeout*; the aiohttp error kept as the cause decides).
"""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from mapper.engine import UpstreamError
from mapper.engine.proxy.upstream import TRANSPORTS, Timeouts, Upstream, base_url, passed_headers
from support.fake_upstream import FakeUpstream
from support.upstream_replies import hang_reply, sse_reply

pytestmark = pytest.mark.anyio
TRANSPORT_NAMES = sorted(TRANSPORTS)


# -- base URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize("typed, base", [
    ("http://127.0.0.1:11434", "http://127.0.0.1:11434/v1"),  # no path: /v1 added
    ("http://127.0.0.1:11434/", "http://127.0.0.1:11434/v1"),
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1"),
    ("http://127.0.0.1:8000/v1/v1", "http://127.0.0.1:8000/v1"),  # doubled
    ("http://127.0.0.1:8000/v1/chat/completions", "http://127.0.0.1:8000/v1"),  # pasted endpoint
    ("https://dashscope.aliyuncs.com/compatible-mode/v1", "https://dashscope.aliyuncs.com/compatible-mode/v1"),
    ("https://generativelanguage.googleapis.com/v1beta/openai/",
     "https://generativelanguage.googleapis.com/v1beta/openai"),
    ("https://ark.example.com/api/v3", "https://ark.example.com/api/v3"),
    ("https://x.example.com/openai/deployments/d?api-version=2024-10-21",
     "https://x.example.com/openai/deployments/d?api-version=2024-10-21"),
])
def test_base_url_forgives_the_usual_v1_slips(typed: str, base: str) -> None:
    assert base_url(typed) == base


@pytest.mark.parametrize("typed", ["127.0.0.1:8000", "ftp://host/v1", "http:///v1", ""])
def test_base_url_refuses_what_is_not_http(typed: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        base_url(typed)


def test_only_pacing_headers_are_passed_on() -> None:
    headers = {"Retry-After": "7", "retry-after-ms": "7000", "x-ratelimit-remaining-requests": "0",
               "set-cookie": "s=1", "authorization": "Bearer k", "x-request-id": "up"}
    assert dict(passed_headers(headers)) == {b"retry-after": b"7", b"retry-after-ms": b"7000",
                                             b"x-ratelimit-remaining-requests": b"0"}


def test_timeouts_replace_only_what_is_given() -> None:
    assert Timeouts().replace(read=5, idle=None) == Timeouts(connect=10.0, read=5.0, idle=300.0)


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown upstream transport"):
        Upstream("curl")


# -- failures ---------------------------------------------------------------------------------


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
async def test_a_refused_connection_is_502_unreachable(transport: str) -> None:
    upstream = Upstream(transport)
    try:
        with pytest.raises(UpstreamError) as caught:
            async with upstream.open("GET", f"http://127.0.0.1:{_closed_port()}/v1/models"):
                pass
    finally:
        await upstream.aclose()
    assert caught.value.status == 502
    assert caught.value.error_type == "upstream_unreachable"
    assert "connection refused" in caught.value.message


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
async def test_no_answer_within_the_read_timeout_is_504(transport: str, fake: FakeUpstream) -> None:
    fake.expect("/v1/chat/completions", hang_reply(5))
    upstream = Upstream(transport)
    started = time.monotonic()
    try:
        with pytest.raises(UpstreamError) as caught:
            async with upstream.open("POST", fake.url("/chat/completions"), content=b"{}",
                                     timeouts=Timeouts(read=0.3)):
                pass
    finally:
        await upstream.aclose()
    assert caught.value.status == 504
    assert "read timeout" in caught.value.message
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
async def test_silence_mid_body_is_504_and_a_broken_body_502(transport: str, fake: FakeUpstream) -> None:
    fake.expect("/v1/chat/completions",
                sse_reply([{"n": 1}, {"n": 2}], delay=2.0),
                sse_reply([{"n": 1}, {"n": 2}, {"n": 3}], drop_after=1))
    upstream = Upstream(transport)
    try:
        async with upstream.open("POST", fake.url("/chat/completions"), content=b"{}",
                                 timeouts=Timeouts(idle=0.3)) as reply:
            pieces = reply.chunks()
            assert b'"n":1' in await anext(pieces)
            with pytest.raises(UpstreamError) as stalled:
                await anext(pieces)
        async with upstream.open("POST", fake.url("/chat/completions"), content=b"{}") as reply:
            with pytest.raises(UpstreamError) as broken:
                await reply.read()
    finally:
        await upstream.aclose()
    assert (stalled.value.status, stalled.value.error_type) == (504, "upstream_timeout")
    assert (broken.value.status, broken.value.error_type) == (502, "upstream_disconnected")


class _LateBody(httpx.AsyncByteStream):
    """A head at once, the first piece of body after 0.5 s (a long prompt), then one every 0.1 s."""

    async def __aiter__(self):
        await asyncio.sleep(0.5)
        yield b"first "
        await asyncio.sleep(0.1)
        yield b"second"


async def test_the_first_piece_of_body_falls_under_the_read_timeout_not_the_idle_one() -> None:
    upstream = Upstream(httpx.MockTransport(lambda request: httpx.Response(200, stream=_LateBody())))
    try:
        async with upstream.open("POST", "http://upstream.invalid/v1/chat/completions",
                                 timeouts=Timeouts(read=2, idle=0.3)) as reply:
            assert await reply.read() == b"first second"
        async with upstream.open("POST", "http://upstream.invalid/v1/chat/completions",
                                 timeouts=Timeouts(read=0.3, idle=5)) as reply:
            with pytest.raises(UpstreamError) as caught:
                await reply.read()
    finally:
        await upstream.aclose()
    assert (caught.value.status, caught.value.error_type) == (504, "upstream_timeout")
    assert "read timeout" in caught.value.message


# -- cancellation -------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
@pytest.mark.parametrize("phase", ["head", "body"])
async def test_cancelling_the_caller_closes_the_upstream_connection(transport: str, phase: str,
                                                                    fake: FakeUpstream) -> None:
    reply = hang_reply(10) if phase == "head" else sse_reply([{"n": i} for i in range(100)], delay=0.2)
    fake.expect("/v1/chat/completions", reply)
    upstream = Upstream(transport)
    reading = asyncio.Event()

    async def call() -> None:
        async with upstream.open("POST", fake.url("/chat/completions"), content=b"{}") as answer:
            async for _ in answer.chunks():
                reading.set()

    try:
        task = asyncio.ensure_future(call())
        if phase == "body":
            await asyncio.wait_for(reading.wait(), 5)
        else:
            await asyncio.sleep(0.2)
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(fake.disconnected.wait, 5)
    finally:
        await upstream.aclose()
    assert fake.disconnected_at - cancelled_at < 0.1
