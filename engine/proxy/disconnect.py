"""Cancel the upstream request when the client hangs up, streaming or not.

An ASGI server reports a closed client connection as an ``http.disconnect`` message from
``receive()``; nothing else tells the app (uvicorn even drops writes to a closed connection
silently). So once the request body has been read, ``run_until_disconnect`` runs the work (the
upstream exchange) in one task and waits on ``receive()`` in another; a disconnect cancels the
work, and the cancellation closes the upstream connection (``Upstream.open``), which is how the
upstream learns that nobody is listening. This is why there is no Starlette ``BaseHTTPMiddleware``
anywhere near the proxy: it consumes ``receive()`` itself and hides the disconnect (PEERS.md §C,
item 27), and the upstream keeps generating for nobody.

A server also answers ``receive()`` with ``http.disconnect`` once the response is complete; that
is not a hang-up, and the work (which may still be draining the upstream) runs to its end.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from .http import Receive

__all__ = ["run_until_disconnect"]


async def run_until_disconnect(receive: Receive, work: Awaitable[None],
                               response_complete: Callable[[], bool]) -> bool:
    """Run ``work`` until it ends or the client hangs up; True when the client hung up."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
        if task.done() or response_complete():
            await task
            return False
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled ourselves (shutdown), not just the work
        return True
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass  # the body was read already; a stray http.request message carries nothing new
