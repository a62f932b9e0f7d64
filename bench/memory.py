"""Memory under load: how much a proxy's RSS grows while it holds 1,000 slow streams at once.

A streaming proxy keeps per-request state for the whole life of a stream (buffers, the upstream
connection, the converter's state machine), so the cost that matters is per *open* stream. The test
points a proxy at a slow upstream (one frame every ``chunk_delay_ms``, ~42 frames), warms it up with
a few streams, reads its RSS (``VmRSS`` in ``/proc/<pid>/status``, summed over its processes), then
opens ``streams`` connections, sends every request at once and samples RSS every 50 ms until all
streams have ended. Growth is peak minus the warmed-up baseline. The sampler also counts streams that
have started and not yet finished, to show they really were open together.

The target (issue 7) is growth < 100 MB for 1,000 streams; the reference pass-through's growth is
measured the same way, for the ratio.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .load import RawDriver, Request
from .procs import Proc

SAMPLE_EVERY = 0.05
TARGET_MB = 100.0


async def rss_growth(proxy: Proc, request: Request, streams: int, warmup: int,
                     time_limit: float, grace: float, settle: float = 0.5) -> dict[str, Any]:
    """Hold ``streams`` concurrent streams through ``proxy`` and report its RSS growth."""
    warm = RawDriver(request, warmup)
    await warm.connect()
    try:
        warmed = await warm.phase(warmup, time_limit, grace)
    finally:
        await warm.close()
    await asyncio.sleep(settle)  # let the proxy release what the warm-up streams held
    baseline = proxy.rss_kib()

    driver = RawDriver(request, streams)
    peak = {"rss": baseline, "open": 0, "samples": 0}
    finished = asyncio.Event()

    async def sample() -> None:
        while not finished.is_set():
            peak["rss"] = max(peak["rss"], proxy.rss_kib())
            open_now = sum(1 for c in driver.connections if c.waiter is not None and c.first)
            peak["open"] = max(peak["open"], open_now)
            peak["samples"] += 1
            try:
                await asyncio.wait_for(finished.wait(), SAMPLE_EVERY)
            except asyncio.TimeoutError:
                pass

    sampler = asyncio.ensure_future(sample())
    started = time.perf_counter()
    try:
        await driver.connect()
        result = await driver.phase(streams, time_limit, grace)
    finally:
        finished.set()
        await asyncio.wait([sampler], timeout=2.0)
        await driver.close()
    after = proxy.rss_kib()
    growth_kib = peak["rss"] - baseline
    return {
        "streams": streams,
        "completed": result.completed,
        "errors": result.errors,
        "timeouts": result.timeouts,
        "error_samples": result.error_samples,
        "warmup_errors": warmed.errors,
        "peak_open_streams": peak["open"],
        "samples": peak["samples"],
        "seconds": round(time.perf_counter() - started, 2),
        "baseline_mib": baseline / 1024,
        "peak_mib": peak["rss"] / 1024,
        "after_mib": after / 1024,
        "growth_mib": growth_kib / 1024,
        "growth_kib_per_stream": growth_kib / streams if streams else 0.0,
        "stream_p50_ms": result.summary()["p50_ms"],
    }
