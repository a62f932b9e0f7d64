"""The proxy under a real uvicorn on 127.0.0.1, in a background thread, for end-to-end tests.

It runs with the settings ``mapper serve`` uses (``engine.proxy.server.uvicorn_config``: uvloop and
httptools when installed, lifespan on), on a socket bound here to a free port so that the port is
known before the server starts. Start-up and shutdown waits are bounded.

    with ProxyServer(config) as proxy:
        client = openai.OpenAI(base_url=proxy.base_url, api_key="k", max_retries=0)
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable

import uvicorn

from mapper.engine import deterministic_context
from mapper.engine.context import Context
from mapper.engine.proxy import ProxyApp, ProxyConfig
from mapper.engine.proxy.server import uvicorn_config


class ProxyServer:
    """``ProxyApp(config)`` served by uvicorn from a thread; ``base_url`` ends in ``/v1``."""

    def __init__(self, config: ProxyConfig, *, new_context: Callable[[], Context] = deterministic_context,
                 app: Any = None) -> None:
        self.app = app if app is not None else ProxyApp(config, new_context=new_context)
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

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
        self.port = sock.getsockname()[1]
        config = uvicorn_config(self.app, host="127.0.0.1", port=self.port)
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                        name="proxy-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the proxy did not start within {timeout}s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout)
        self._server = self._thread = None
        if thread.is_alive():
            raise RuntimeError(f"the proxy did not stop within {timeout}s")

    def __enter__(self) -> "ProxyServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
