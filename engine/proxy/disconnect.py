"""Cancel the upstream request when the client hangs up, streaming or not.

An ASGI server reports a closed client connection as an ``http.disconnect`` message from
``receive()``; nothing else tells the app (a server may drop writes to a closed connection
silently). So once the request body has been read, ``run_until_disconnect`` runs the work (the
upstream exchange) while a watcher task waits on ``receive()``; a disconnect cancels the work, and
the cancellation closes the upstream connection (``Upstream.open``), which is how the upstream
learns that nobody is listening. This is why there is no Starlette ``BaseHTTPMiddleware``
anywhere near the proxy: it consumes ``receive()`` itself and hides the disconnect (PEERS.md §C,
item 27), and the upstream keeps generating for nobody.

A server also answers ``receive()`` with ``http.disconnect`` once the response is complete; that
is not a hang-up, and the work (which may still be draining the upstream) runs to its end.

mapper's own server (``engine.proxy.front``) offers a cheaper way, as the ASGI scope extension
``mapper.hangup``: a function that registers a callback for the connection's loss and returns
its remover. With it there is no watcher task at all, only a callback.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from .http import Receive, Scope

__all__ = ["run_until_disconnect"]


HANGUP = "mapper.hangup"  # the scope extension: register(callback) -> remove()


async def run_until_disconnect(receive: Receive, work: Awaitable[None],
                               response_complete: Callable[[], bool],
                               scope: Scope | None = None) -> bool:
    """Run ``work`` until it ends or the client hangs up; True when the client hung up.

    The work runs in the calling task itself; the server's ``mapper.hangup`` callback, or else one
    watcher task waiting on ``receive()``, cancels the caller when the client hangs up.
    """
    caller = asyncio.current_task()
    assert caller is not None
    hung_up = False

    def on_disconnect() -> None:
        nonlocal hung_up
        if not response_complete():
            hung_up = True
            caller.cancel()

    register = scope.get("extensions", {}).get(HANGUP) if scope is not None else None
    if register is not None:
        stop_watching = register(on_disconnect)
    else:
        stop_watching = asyncio.ensure_future(_disconnected(receive, on_disconnect)).cancel
    try:
        await work
        return False
    except asyncio.CancelledError:
        if hung_up and caller.uncancel() == 0:
            return True  # our own cancel: the client left; anything else (shutdown) propagates
        raise
    finally:
        stop_watching()


async def _disconnected(receive: Receive, on_disconnect: Callable[[], None]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass  # the body was read already; a stray http.request message carries nothing new
    on_disconnect()
