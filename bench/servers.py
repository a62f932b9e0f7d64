"""The proxy app under each candidate HTTP server, for choosing one by measurement.

``mapper serve`` runs on one server (``engine.proxy.front``: aiohttp's low-level server); this
module runs the very same ``ProxyApp`` (a plain ASGI callable) under the others, one worker,
uvloop, so that ``python -m bench.run --servers`` can put them side by side in RESULTS.md:

    python -m bench.servers --server granian --port 8003 --mapping openai-chat \\
        --upstream http://127.0.0.1:8001/v1

    aiohttp     engine.proxy.front, what ``mapper serve`` runs
    uvicorn     uvicorn with httptools (mapper's server before)
    granian     granian's ASGI interface (Rust, hyper)
    hypercorn   hypercorn (h11)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from typing import Any

SERVERS = ("aiohttp", "uvicorn", "granian", "hypercorn")
_OPTIONS_ENV = "MAPPER_BENCH_SERVER_OPTIONS"


def _app() -> Any:
    from mapper.engine.proxy import ProxyApp, ServeOptions, build_config
    from mapper.engine.proxy.logs import Redactor, configure_logging

    options = ServeOptions.from_json(os.environ[_OPTIONS_ENV])
    config = build_config(options)
    configure_logging(Redactor(config.secrets()))
    return ProxyApp(config)


def granian_app() -> Any:
    """The factory granian imports (``bench.servers:granian_app``)."""
    return _app()


def _listening_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def run(server: str, host: str, port: int) -> None:
    if server == "granian":
        os.execvp(sys.executable, [sys.executable, "-m", "granian", "--interface", "asgi",
                                   "--host", host, "--port", str(port), "--workers", "1",
                                   "--loop", "uvloop", "--no-ws", "--log-level", "warning",
                                   "--factory", "bench.servers:granian_app"])
    import uvloop

    if server == "uvicorn":
        import uvicorn

        # as mapper ran on uvicorn before: httptools, uvloop, no access log, no server header
        uvicorn.run(_app(), host=host, port=port, loop="uvloop", http="httptools", ws="none",
                    lifespan="on", log_config=None, access_log=False, server_header=False,
                    backlog=2048)
        return
    if server == "hypercorn":
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"{host}:{port}"]
        config.accesslog = None
        config.backlog = 2048
        uvloop.run(serve(_app(), config))
        return
    from mapper.engine.proxy.asgi import serve_until
    from mapper.engine.proxy.front import DEFAULT_LIMITS

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve_until(_app(), stop, sockets=[_listening_socket(host, port)], limits=DEFAULT_LIMITS)

    uvloop.run(main())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=SERVERS, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mapping", required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args(argv)
    from mapper.engine.proxy import ServeOptions

    os.environ[_OPTIONS_ENV] = ServeOptions(mapping=args.mapping, upstream=args.upstream).to_json()
    run(args.server, args.host, args.port)


if __name__ == "__main__":
    main()
