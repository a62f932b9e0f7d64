"""The server front's phases of the bench: which HTTP server, how many workers, how fast large streams go.

    servers   the same ``ProxyApp`` under each HTTP server of ``bench/servers.py`` (those installed:
              ``pip install -e '.[bench]'``), beside the reference pass-through, interleaved
              rounds of non-streamed and streamed requests at c=8: CPU per request and latency,
              the figures the server was chosen by (bench/ANALYSIS.md)
    workers   ``mapper serve --workers 2`` against ``--workers 1``, both allowed every CPU, at c=64
    large     one streamed answer of about 50 MB, both directions: direct, reference and mapper,
              wall time, MB/s and the proxy's CPU

Each phase starts its own processes through ``ProcessSet`` (stopped in a ``finally``) and returns
a section of results.json that ``bench/report.py`` renders.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any, Callable

from .load import RawDriver, Request
from .procs import ProcessSet, free_port
from .stack import REPO_ROOT, Stack, _python_env, start_stack, stop_stack
from .targets import DIRECTIONS, Scenario, mapper_argv, request_for

Json = Any
SERVER_ORDER = ("aiohttp", "uvicorn", "granian", "hypercorn")
_SERVER_PACKAGES = {"aiohttp": "aiohttp", "uvicorn": "uvicorn", "granian": "granian",
                    "hypercorn": "hypercorn"}


def installed_servers() -> list[str]:
    import importlib.util
    return [name for name in SERVER_ORDER if importlib.util.find_spec(_SERVER_PACKAGES[name])]


async def servers_phase(bench: Any, procs: ProcessSet, log: Callable[[str], None]) -> Json:
    """ProxyApp under each installed server, against the reference, responses-to-chat, c=8."""
    config = bench.config
    direction = DIRECTIONS[0]
    names = installed_servers()[:1 if config.smoke else None]  # smoke: mapper's own only
    log(f"servers: the proxy app under {', '.join(names)}")
    stack = start_stack(procs, bench.layout, "servers", 0.0, config.ready_timeout,
                        directions=())
    env = _python_env()
    try:
        for name in names:
            port = free_port()
            proc = procs.start(f"servers-{name}", [
                sys.executable, "-m", "bench.servers", "--server", name, "--port", str(port),
                "--mapping", direction.mapping,
                "--upstream", f"http://127.0.0.1:{stack.upstream.port}/v1"],
                port, bench.layout.proxy, env=env, cwd=str(REPO_ROOT))
            procs.wait_ready(proc, config.ready_timeout)
            stack.mappers[name] = proc
        runs = []
        concurrency = 8
        rounds = min(config.rounds, 3)
        for number in range(rounds):
            for stream in (False, True):
                scenario = Scenario(direction, stream, concurrency)
                requests = config.requests(stream, concurrency)
                for target in ("reference", *names):
                    figures = await _measure_on(bench, stack, scenario, target, requests)
                    runs.append({"round": number, "stream": stream, "target": target, **figures})
                    log(f"  [servers {number + 1}/{rounds}] {'stream' if stream else 'json':<6}"
                        f" {target:<10} p50 {figures['p50_ms']:7.2f} ms  "
                        f"proxy {figures['proxy_cpu_ms_per_req'] or 0:.3f} ms CPU/req")
    finally:
        stop_stack(procs, stack)
    return {"servers": {"names": names, "concurrency": concurrency, "runs": runs}}


async def _measure_on(bench: Any, stack: Stack, scenario: Scenario, target: str,
                      requests: int) -> Json:
    """``Bench.measure`` for a stack whose mapper processes are keyed by server name."""
    if target == "reference":
        return await bench.measure(stack, scenario, "reference", requests)
    proxy = stack.mappers[target]
    path, body, _ = request_for(scenario, "mapper")
    driver = RawDriver(Request(f"http://127.0.0.1:{proxy.port}{path}", body, scenario.stream),
                       scenario.concurrency)
    config = bench.config
    await driver.connect()
    try:
        await driver.phase(config.warmup(scenario.concurrency, requests), config.time_limit,
                           config.grace)
        before = proxy.cpu_seconds()
        result = await driver.phase(requests, config.time_limit, config.grace)
        cpu = proxy.cpu_seconds() - before
    finally:
        await driver.close()
    figures = result.summary()
    figures["proxy_cpu_ms_per_req"] = cpu / result.completed * 1e3 if result.completed else None
    return figures


async def workers_phase(bench: Any, procs: ProcessSet, log: Callable[[str], None]) -> Json:
    """``--workers 2`` against ``--workers 1``; both may use every CPU (the driver's core too)."""
    config = bench.config
    direction = DIRECTIONS[0]
    every_cpu = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else frozenset()
    log("workers: mapper serve --workers 1 and --workers 2")
    stack = start_stack(procs, bench.layout, "workers", 0.0, config.ready_timeout, directions=())
    env = _python_env()
    try:
        for workers in (1, 2):
            port = free_port()
            argv = mapper_argv(direction, stack.upstream.port, port,
                               (*bench.mapper_extra, "--workers", str(workers)))
            proc = procs.start(f"workers-{workers}", argv, port, every_cpu, env=env,
                               cwd=str(REPO_ROOT))
            procs.wait_ready(proc, config.ready_timeout)
            stack.mappers[f"workers={workers}"] = proc
        concurrency = max(config.concurrencies)
        runs = []
        rounds = min(config.rounds, 3)
        for number in range(rounds):
            for stream in (False, True):
                scenario = Scenario(direction, stream, concurrency)
                for target in stack.mappers:
                    figures = await _measure_on(bench, stack, scenario, target,
                                                config.requests(stream, concurrency))
                    runs.append({"round": number, "stream": stream, "target": target, **figures})
                    log(f"  [workers {number + 1}/{rounds}] {'stream' if stream else 'json':<6}"
                        f" {target:<10} {figures['rps']:7.0f} req/s  p50 {figures['p50_ms']:7.2f} ms")
    finally:
        stop_stack(procs, stack)
    return {"workers": {"concurrency": concurrency, "runs": runs}}


async def large_phase(bench: Any, procs: ProcessSet, log: Callable[[str], None]) -> Json:
    """One large streamed answer per direction and target, three times; the median of each."""
    config = bench.config
    megabytes = 2.0 if config.smoke else 50.0
    log(f"large: one streamed answer of about {megabytes:g} MB per direction")
    stack = start_stack(procs, bench.layout, "large", 0.0, config.ready_timeout,
                        upstream_extra=("--large-mb", str(megabytes)))
    rows = []
    try:
        for direction in DIRECTIONS:
            for target in ("direct", "reference", "mapper"):
                if target == "mapper" and direction.key not in stack.mappers:
                    continue
                tries = [await _large_once(stack, direction, target) for _ in range(1 if config.smoke else 3)]
                row = {"direction": direction.key, "target": target,
                       "seconds": statistics.median(t["seconds"] for t in tries),
                       "bytes": tries[0]["bytes"], "status": tries[0]["status"],
                       "driver_cpu_s": statistics.median(t["driver_cpu_s"] for t in tries),
                       "proxy_cpu_s": statistics.median(t["proxy_cpu_s"] for t in tries)
                       if tries[0]["proxy_cpu_s"] is not None else None}
                rows.append(row)
                log(f"  {direction.key} {target}: {row['bytes'] / 1e6:.1f} MB in "
                    f"{row['seconds']:.2f} s")
    finally:
        stop_stack(procs, stack)
    return {"large": {"megabytes": megabytes, "rows": rows}}


async def _large_once(stack: Stack, direction: Any, target: str) -> Json:
    scenario = Scenario(direction, True, 1)
    path, body, _ = request_for(scenario, target)
    proxy = stack.proxy(target, direction)
    driver = RawDriver(Request(stack.origin(target, direction) + path, body, True), 1)
    before = proxy.cpu_seconds() if proxy else None
    started, driver_started = time.perf_counter(), time.process_time()
    status, size = await driver.fetch_size()
    seconds = time.perf_counter() - started
    cpu = proxy.cpu_seconds() - before if proxy and before is not None else None
    return {"seconds": seconds, "bytes": size, "status": status, "proxy_cpu_s": cpu,
            "driver_cpu_s": time.process_time() - driver_started}
