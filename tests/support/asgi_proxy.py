"""The proxy app in-process: an ``httpx.AsyncClient`` that talks to a ``ProxyApp`` over ASGI.

No socket between the client and the proxy (the upstream is still a real server, the fake one),
and ids and clocks deterministic unless a test passes its own context factory.
"""

from __future__ import annotations

import contextlib
from typing import AsyncIterator, Callable

import httpx

from mapper.engine.context import Context, deterministic_context
from mapper.engine.proxy import ProxyApp, ProxyConfig
from mapper.engine.proxy.upstream import Upstream


@contextlib.asynccontextmanager
async def in_process(config: ProxyConfig, upstream: Upstream | None = None,
                     new_context: Callable[[], Context] = deterministic_context,
                     ) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a ``ProxyApp`` built from ``config``; the app is closed afterwards."""
    app = ProxyApp(config, upstream=upstream, new_context=new_context)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://proxy", timeout=10) as client:
            yield client
    finally:
        await app.aclose()
