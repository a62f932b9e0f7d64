"""The proxy under its real server on 127.0.0.1, in a background thread, for end-to-end tests.

It runs what ``mapper serve`` runs (``engine.proxy.front``: aiohttp's low-level server with the
client limits, the app's lifespan, uvloop when installed), on a socket bound here to a free port so
that the port is known before the server starts. Start-up and shutdown waits are bounded.

    with ProxyServer(config) as proxy:
        client = openai.OpenAI(base_url=proxy.base_url, api_key="k", max_retries=0)
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from mapper.engine import deterministic_context
from mapper.engine.context import Context
from mapper.engine.proxy import ProxyApp, ProxyConfig, ServeOptions, build_config
from mapper.engine.proxy.asgi import serve_until
from mapper.engine.proxy.front import DEFAULT_LIMITS, Limits

from .loop_thread import stop_loop_thread


class ProxyServer:
    """``ProxyApp(config)`` served from a thread; ``base_url`` ends in ``/v1``."""

    def __init__(self, config: ProxyConfig, *, new_context: Callable[[], Context] = deterministic_context,
                 app: Any = None, limits: Limits = DEFAULT_LIMITS) -> None:
        self.app = app if app is not None else ProxyApp(config, new_context=new_context)
        self.limits = limits
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None

    @property
    def origin(self) -> str:
        if self.port is None:
            raise RuntimeError("ProxyServer is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"

    def start(self, timeout: float = 10.0) -> "ProxyServer":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(512)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, args=(sock,), name="proxy-server",
                                        daemon=True)
        self._thread.start()
        if not self._started.wait(timeout) or self._failure is not None:
            self.stop()
            raise RuntimeError(f"the proxy did not start within {timeout}s: {self._failure!r}")
        return self

    def _run(self, sock: socket.socket) -> None:
        if importlib.util.find_spec("uvloop"):
            import uvloop
            loop = uvloop.new_event_loop()
        else:
            loop = asyncio.new_event_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        try:
            loop.run_until_complete(serve_until(self.app, self._stop, sockets=[sock],
                                                limits=self.limits, started=self._started.set))
        except BaseException as error:  # noqa: BLE001 - reported by start()
            self._failure = error
            self._started.set()
        finally:
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            stop_loop_thread(thread, self._loop, self._stop, timeout, "the proxy")

    def __enter__(self) -> "ProxyServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextmanager
def serve_routes(routes: str, folder: Path) -> Iterator[ProxyServer]:
    """The proxy for a routes file whose text is ``routes`` (written into ``folder``), with random
    ids as ``mapper serve`` has them, and no key taken from the environment."""
    path = folder / "routes.yaml"
    path.write_text(routes)
    config = build_config(ServeOptions(config=str(path)), env={})
    with ProxyServer(config, new_context=Context) as server:
        yield server


def reset_upstreams(first: Any, *others: Any) -> Any:
    """Forget every upstream's recorded requests and scripted replies; returns ``first``."""
    for upstream in (first, *others):
        upstream.reset()
    return first
