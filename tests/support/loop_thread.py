"""Stopping a server that runs its own event loop on a background thread (the test servers)."""

from __future__ import annotations

import asyncio
import threading


def stop_loop_thread(thread: threading.Thread, loop: asyncio.AbstractEventLoop | None,
                     stop: asyncio.Event | None, timeout: float, what: str) -> None:
    """Set the loop's ``stop`` event from this thread and join ``thread``; raise if it outlives ``timeout``."""
    if loop is not None and stop is not None and not loop.is_closed():
        try:
            loop.call_soon_threadsafe(stop.set)
        except RuntimeError:  # the loop closed between the check and the call
            pass
    thread.join(timeout)
    if thread.is_alive():
        raise RuntimeError(f"{what} did not stop within {timeout}s")
