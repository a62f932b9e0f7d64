"""A fast canned upstream: pre-rendered Chat Completions and Responses answers, streamed or not.

The bench measures what a proxy adds, so the upstream must cost as little as possible and answer
the same bytes every time. Every body and every SSE frame is rendered once at start-up from
``bench/payloads.py``; a request costs an aiohttp dispatch, reading the body to see whether it asks
for ``"stream": true``, and the writes.

Routes:

    POST /v1/chat/completions   chat.completion, or its stream: 41 chunks with usage, then [DONE]
    POST /v1/responses          a Response, or its event stream (created ... completed)
    GET  /v1/models             one model

A stream writes one SSE frame per write, as a model server does. ``--chunk-delay-ms`` (or the
``x-bench-chunk-delay-ms`` request header, which wins) sleeps before every frame, the first
included, to make a paced stream whose time to first byte is known.

    python -m bench.upstream --port 8001 [--chunk-delay-ms 2]
"""

from __future__ import annotations

import argparse
import asyncio

import orjson
from aiohttp import web

from . import payloads

DELAY_HEADER = "x-bench-chunk-delay-ms"
BACKLOG = 4096  # the memory test opens 1,000 connections at once


class CannedBodies:
    """Everything the upstream sends, as bytes, rendered once."""

    def __init__(self) -> None:
        self.chat = orjson.dumps(payloads.chat_completion())
        self.chat_frames = tuple(payloads.chat_sse_frames())
        self.response = orjson.dumps(payloads.response_body())
        self.response_frames = tuple(payloads.responses_sse_frames())
        self.models = orjson.dumps({"object": "list", "data": [
            {"id": payloads.MODEL, "object": "model", "created": payloads.CREATED,
             "owned_by": "bench"}]})


def build_app(chunk_delay_ms: float = 0.0) -> web.Application:
    """The upstream as an aiohttp application."""
    bodies = CannedBodies()
    default_delay = chunk_delay_ms / 1000.0

    async def chat_completions(request: web.Request) -> web.StreamResponse:
        return await _answer(request, bodies.chat, bodies.chat_frames, default_delay)

    async def responses(request: web.Request) -> web.StreamResponse:
        return await _answer(request, bodies.response, bodies.response_frames, default_delay)

    async def models(request: web.Request) -> web.Response:
        return web.Response(body=bodies.models, content_type="application/json")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/responses", responses)
    app.router.add_get("/v1/models", models)
    return app


async def _answer(request: web.Request, body: bytes, frames: tuple[bytes, ...],
                  default_delay: float) -> web.StreamResponse:
    raw = await request.read()
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return web.Response(status=400, content_type="application/json",
                            body=b'{"error":{"message":"body is not JSON","type":"invalid_request_error"}}')
    if document.__class__ is not dict or document.get("stream") is not True:
        return web.Response(body=body, content_type="application/json")
    delay = default_delay
    header = request.headers.get(DELAY_HEADER)
    if header:
        delay = float(header) / 1000.0
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)
    for frame in frames:
        if delay:
            await asyncio.sleep(delay)
        await response.write(frame)
    await response.write_eof()
    return response


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0,
                        help="sleep before every stream frame (default 0)")
    args = parser.parse_args(argv)
    install_uvloop()
    web.run_app(build_app(args.chunk_delay_ms), host=args.host, port=args.port, backlog=BACKLOG,
                access_log=None, print=None)


def install_uvloop() -> bool:
    """Use uvloop when it is installed (it is in the test extras); plain asyncio otherwise."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


if __name__ == "__main__":
    main()
