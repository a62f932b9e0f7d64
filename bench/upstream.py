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

With ``--large-mb N`` every streamed answer is instead one large answer of about N MB of text in
1,000-character deltas, written in 64 KiB pieces, to measure how fast a proxy relays a long stream.

    python -m bench.upstream --port 8001 [--chunk-delay-ms 2] [--large-mb 50]
"""

from __future__ import annotations

import argparse
import asyncio

from typing import Any

import orjson
from aiohttp import web

from . import payloads

Json = Any

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


def large_stream(api: str, megabytes: float) -> bytes:
    """About ``megabytes`` MB of text as one stream in ``api`` ("chat" or "responses")."""
    piece = "x" * 1000
    head = {"id": "chatcmpl-large", "object": "chat.completion.chunk", "created": payloads.CREATED,
            "model": payloads.MODEL}
    if api == "chat":
        def chunk(delta: Json, finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return b"data: " + orjson.dumps({**head, "choices": [choice]}) + b"\n\n"
        one = chunk({"content": piece})
        count = int(megabytes * 1e6) // len(one)
        return b"".join([chunk({"role": "assistant", "content": ""}), one * count,
                         chunk({}, "stop"), b"data: [DONE]\n\n"])
    response = {"id": "resp_large", "object": "response", "created_at": payloads.CREATED,
                "status": "in_progress", "model": payloads.MODEL, "output": []}
    item = {"id": "msg_large", "type": "message", "role": "assistant", "status": "in_progress",
            "content": []}
    where = {"output_index": 0, "item_id": "msg_large", "content_index": 0}

    def event(kind: str, **fields: Json) -> bytes:
        return (b"event: " + kind.encode() + b"\ndata: "
                + orjson.dumps({"type": kind, "sequence_number": 0, **fields}) + b"\n\n")
    one = event("response.output_text.delta", delta=piece, logprobs=[], **where)
    count = int(megabytes * 1e6) // len(one)
    text = piece * count
    part = {"type": "output_text", "text": text, "annotations": []}
    done = {**item, "status": "completed", "content": [part]}
    return b"".join([
        event("response.created", response=response),
        event("response.output_item.added", output_index=0, item=item),
        event("response.content_part.added", part={**part, "text": ""}, **where),
        one * count,
        event("response.output_text.done", text=text, logprobs=[], **where),
        event("response.content_part.done", part=part, **where),
        event("response.output_item.done", output_index=0, item=done),
        event("response.completed", response={**response, "status": "completed", "output": [done]}),
    ])


def build_app(chunk_delay_ms: float = 0.0, large_mb: float = 0.0) -> web.Application:
    """The upstream as an aiohttp application."""
    bodies = CannedBodies()
    default_delay = chunk_delay_ms / 1000.0
    if large_mb:  # one large stream, in 64 KiB writes, instead of the 42 frames
        for api, name in (("chat", "chat_frames"), ("responses", "response_frames")):
            blob = large_stream(api, large_mb)
            setattr(bodies, name, tuple(blob[at:at + 65536] for at in range(0, len(blob), 65536)))

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
    parser.add_argument("--large-mb", type=float, default=0.0,
                        help="stream one answer of about this many MB instead (default: no)")
    args = parser.parse_args(argv)
    install_uvloop()
    web.run_app(build_app(args.chunk_delay_ms, args.large_mb), host=args.host, port=args.port,
                backlog=BACKLOG, access_log=None, print=None)


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
