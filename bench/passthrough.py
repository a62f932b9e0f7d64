"""The reference pass-through proxy: what a bare, conversion-free hop costs on this machine.

Every proxy figure in RESULTS.md is also given as a ratio against this process, measured in the same
run, so that a noisy machine moves both sides of the ratio alike. It is deliberately the cheapest
sensible proxy one could write with common tools: an aiohttp server and **one** shared aiohttp
``ClientSession`` with no connection limit (a pool cap would measure the pool, not the hop), the body
forwarded as bytes without parsing, and streams copied chunk by chunk as they arrive.

    python -m bench.passthrough --port 8002 --upstream http://127.0.0.1:8001

Any method and path is forwarded to the same path on the upstream; ``Content-Type``,
``Authorization``, ``Accept`` and ``x-bench-*`` headers go along.
"""

from __future__ import annotations

import argparse

import aiohttp
from aiohttp import web

from .upstream import BACKLOG, install_uvloop

_FORWARDED = ("Content-Type", "Authorization", "Accept", "x-bench-chunk-delay-ms")


def build_app(upstream: str) -> web.Application:
    """The pass-through as an aiohttp application forwarding to ``upstream`` (an origin URL)."""
    base = upstream.rstrip("/")
    app = web.Application(client_max_size=64 * 1024 * 1024)

    async def open_session(app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=300)
        app["session"] = aiohttp.ClientSession(connector=connector, timeout=timeout,
                                               auto_decompress=False)

    async def close_session(app: web.Application) -> None:
        await app["session"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {name: request.headers[name] for name in _FORWARDED if name in request.headers}
        session: aiohttp.ClientSession = request.app["session"]
        async with session.request(request.method, base + request.path_qs, data=body,
                                   headers=headers) as upstream_response:
            content_type = upstream_response.headers.get("Content-Type", "application/json")
            if content_type.startswith("text/event-stream"):
                response = web.StreamResponse(status=upstream_response.status, headers={
                    "Content-Type": content_type, "Cache-Control": "no-cache"})
                await response.prepare(request)
                async for chunk in upstream_response.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
            payload = await upstream_response.read()
            return web.Response(status=upstream_response.status, body=payload,
                                headers={"Content-Type": content_type})

    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="origin URL, e.g. http://127.0.0.1:8001")
    args = parser.parse_args(argv)
    install_uvloop()
    web.run_app(build_app(args.upstream), host=args.host, port=args.port, backlog=BACKLOG,
                access_log=None, print=None)


if __name__ == "__main__":
    main()
