"""The load driver: a fixed number of requests, bounded in time, from C keep-alive connections.

The driver shares a core with the upstream (see ``bench/run.py``), so every microsecond it spends
is one the upstream cannot. The default client is therefore a small HTTP/1.1 client written on
``asyncio.Protocol``: a request is one ``transport.write`` of pre-rendered bytes, the response is
parsed in place (``Content-Length`` or chunked), and timestamps are taken in ``data_received``, when
the bytes arrive, not when a coroutine gets round to looking at them. An aiohttp client is kept
beside it: ``run.py`` measures both against the upstream in every run and reports what each costs.
On the 2-core machine of RESULTS.md the raw client used 3.3x less CPU per non-streamed request and
1.4x less per stream than aiohttp's, which is how it was chosen.

What one request records:

* **latency**: from the write of the request to the arrival of the last byte of the response;
* **time to first byte** (TTFB): from the write to the first byte of the response *body*, which for
  a stream is the first SSE frame (headers alone do not count: a proxy may send them early).

Bounds: each phase stops issuing requests after ``time_limit`` seconds, and gives requests still in
flight ``grace`` seconds more; those that do not finish are cancelled and counted as timeouts.

    python -m bench.load --url http://127.0.0.1:8001/v1/chat/completions --payload chat \\
        --concurrency 8 --requests 2000 [--stream] [--client raw|aiohttp]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

perf_counter = time.perf_counter

CONNECT_TIMEOUT = 10.0


# -- what a phase returns --------------------------------------------------------------------------


@dataclass
class PhaseResult:
    """Raw outcome of one phase: per-request times in seconds, counts, and the driver's own CPU."""

    latencies: list[float] = field(default_factory=list)
    ttfbs: list[float] = field(default_factory=list)
    errors: int = 0
    timeouts: int = 0
    error_samples: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    driver_cpu: float = 0.0

    @property
    def completed(self) -> int:
        return len(self.latencies)

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 3:
            self.error_samples.append(message[:300])

    def summary(self) -> dict[str, Any]:
        """The figures the report uses (milliseconds, requests per second)."""
        done = self.completed
        return {
            "completed": done,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "error_samples": self.error_samples,
            "elapsed_s": round(self.elapsed, 4),
            "rps": done / self.elapsed if self.elapsed > 0 else 0.0,
            "p50_ms": percentile(self.latencies, 50) * 1e3,
            "p90_ms": percentile(self.latencies, 90) * 1e3,
            "p99_ms": percentile(self.latencies, 99) * 1e3,
            "mean_ms": (sum(self.latencies) / done * 1e3) if done else math.nan,
            "ttfb_p50_ms": percentile(self.ttfbs, 50) * 1e3,
            "ttfb_p99_ms": percentile(self.ttfbs, 99) * 1e3,
            "driver_cpu_ms_per_req": (self.driver_cpu / done * 1e3) if done else math.nan,
        }


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


class Driver(Protocol):
    """What ``run.py`` drives: connect once, run phases (warm-up, measured), close."""

    async def connect(self) -> None: ...

    async def phase(self, requests: int, time_limit: float, grace: float) -> PhaseResult: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Request:
    """One request, rendered once: where it goes and its bytes."""

    url: str
    body: bytes
    stream: bool = False

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 80

    def wire(self) -> bytes:
        parts = urlsplit(self.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        head = (f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Content-Type: application/json\r\nAuthorization: Bearer bench\r\n"
                f"Accept: {'text/event-stream' if self.stream else 'application/json'}\r\n"
                f"Content-Length: {len(self.body)}\r\n\r\n")
        return head.encode() + self.body


def make_driver(kind: str, request: Request, concurrency: int) -> Driver:
    if kind == "raw":
        return RawDriver(request, concurrency)
    if kind == "aiohttp":
        return AiohttpDriver(request, concurrency)
    raise ValueError(f"unknown client {kind!r} (raw or aiohttp)")


# -- the raw client ----------------------------------------------------------------------------------

_HEAD, _LENGTH, _SIZE, _DATA, _CRLF, _TRAILER, _UNTIL_CLOSE = range(7)


class ResponseFailed(Exception):
    """The connection broke or the response could not be parsed."""


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that runs one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self.buffer = bytearray()
        self.state = _HEAD
        self.left = 0
        self.status = 0
        self.first = 0.0
        self.keep_alive = True
        self.body: bytearray | None = None
        self.body_bytes = 0  # of the current response's body, counted even when not kept

    # -- asyncio callbacks ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            if self.state == _UNTIL_CLOSE:
                self._complete(perf_counter())
            else:
                self.waiter.set_exception(ResponseFailed(f"connection lost: {exc or 'closed by peer'}"))

    def data_received(self, data: bytes) -> None:
        now = perf_counter()
        if self.waiter is None:
            return  # bytes after a complete response: ignore
        buffer = self.buffer
        buffer += data
        if self.state == _HEAD:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            try:
                self._read_head(bytes(buffer[:end]))
            except (ValueError, IndexError) as error:
                self._fail(f"bad response head: {error}")
                return
            del buffer[:end + 4]
            if buffer:
                self.first = now
        elif not self.first:
            self.first = now
        try:
            self._read_body(now)
        except ValueError as error:
            self._fail(f"bad chunked body: {error}")

    # -- one request ------------------------------------------------------------------------------

    def send(self, wire: bytes, capture: bool) -> asyncio.Future:
        self.buffer.clear()
        self.state = _HEAD
        self.first = 0.0
        self.body = bytearray() if capture else None
        self.body_bytes = 0
        self.waiter = self.loop.create_future()
        self.transport.write(wire)  # type: ignore[union-attr]
        return self.waiter

    def _read_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        self.status = int(lines[0].split(b" ", 2)[1])
        length = None
        chunked = False
        self.keep_alive = True
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                self.keep_alive = b"close" not in value.lower()
        if chunked:
            self.state = _SIZE
        elif length is not None:
            self.state, self.left = _LENGTH, length
        else:
            self.state, self.keep_alive = _UNTIL_CLOSE, False

    def _read_body(self, now: float) -> None:
        buffer = self.buffer
        if self.state == _LENGTH:
            if len(buffer) >= self.left:
                self.body_bytes += self.left
                if self.body is not None:
                    self.body += buffer[:self.left]
                self._complete(now)
            return
        if self.state == _UNTIL_CLOSE:
            return
        position, size = 0, len(buffer)
        while position < size:
            state = self.state
            if state == _DATA:
                take = min(self.left, size - position)
                self.body_bytes += take
                if self.body is not None:
                    self.body += buffer[position:position + take]
                position += take
                self.left -= take
                if not self.left:
                    self.state = _CRLF
            elif state == _CRLF:
                if size - position < 2:
                    break
                position += 2
                self.state = _SIZE
            else:  # _SIZE or _TRAILER: a line
                end = buffer.find(b"\r\n", position)
                if end < 0:
                    break
                line = bytes(buffer[position:end])
                position = end + 2
                if state == _SIZE:
                    self.left = int(line.split(b";", 1)[0], 16)
                    self.state = _DATA if self.left else _TRAILER
                elif not line:
                    del buffer[:position]
                    self._complete(now)
                    return
        del buffer[:position]

    def _complete(self, now: float) -> None:
        waiter, self.waiter = self.waiter, None
        body = self.body
        if self.state == _UNTIL_CLOSE and body is not None:
            body += self.buffer
        self.state = _HEAD
        if not self.keep_alive and self.transport is not None:
            self.transport.close()
            self.closed = True
        if waiter is not None and not waiter.done():
            waiter.set_result((self.status, self.first or now, now,
                               bytes(body) if body is not None else None))

    def _fail(self, message: str) -> None:
        waiter, self.waiter = self.waiter, None
        if self.transport is not None:
            self.transport.close()
        self.closed = True
        if waiter is not None and not waiter.done():
            waiter.set_exception(ResponseFailed(message))


class RawDriver:
    """The default driver: ``concurrency`` raw keep-alive connections, one request at a time each."""

    def __init__(self, request: Request, concurrency: int) -> None:
        self.request = request
        self.wire = request.wire()
        self.concurrency = concurrency
        self.connections: list[_Connection] = []

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await asyncio.wait_for(
            loop.create_connection(lambda: _Connection(loop), self.request.host, self.request.port),
            CONNECT_TIMEOUT)
        return connection

    async def connect(self) -> None:
        # open in batches so that a thousand connects do not overflow the listen backlog
        for start in range(0, self.concurrency, 200):
            batch = range(start, min(start + 200, self.concurrency))
            self.connections += await asyncio.gather(*(self._open() for _ in batch))

    async def fetch_size(self) -> tuple[int, int]:
        """One request on a fresh connection; its status and body size, the body not kept."""
        connection = await self._open()
        try:
            status, _, _, _ = await asyncio.wait_for(connection.send(self.wire, False), 60)
            return status, connection.body_bytes
        finally:
            if connection.transport is not None:
                connection.transport.close()

    async def fetch(self, capture: bool = True) -> tuple[int, bytes]:
        """One request on a fresh connection, body kept (for checking a target before measuring)."""
        connection = await self._open()
        try:
            status, _, _, body = await asyncio.wait_for(connection.send(self.wire, capture), 30)
        finally:
            if connection.transport is not None:
                connection.transport.close()
        return status, body or b""

    async def phase(self, requests: int, time_limit: float, grace: float) -> PhaseResult:
        result = PhaseResult()
        budget = [requests]
        deadline = perf_counter() + time_limit
        wire = self.wire
        latencies, ttfbs = result.latencies, result.ttfbs

        async def worker(slot: int) -> None:
            connection = self.connections[slot]
            while budget[0] > 0 and perf_counter() < deadline:
                budget[0] -= 1
                if connection.closed:
                    connection = self.connections[slot] = await self._open()
                started = perf_counter()
                try:
                    status, first, end, body = await connection.send(wire, False)
                except ResponseFailed as error:
                    result.error(str(error))
                    continue
                if status != 200:
                    result.error(f"HTTP {status}")
                    continue
                latencies.append(end - started)
                ttfbs.append(first - started)

        cpu_before, started = time.process_time(), perf_counter()
        tasks = [asyncio.ensure_future(worker(slot)) for slot in range(len(self.connections))]
        done, pending = await asyncio.wait(tasks, timeout=time_limit + grace)
        result.elapsed = perf_counter() - started
        result.driver_cpu = time.process_time() - cpu_before
        result.timeouts = len(pending)
        for task in pending:
            task.cancel()
        for task in done:
            if task.exception() is not None:
                result.error(f"driver task failed: {task.exception()!r}")
        if pending:
            await asyncio.wait(pending, timeout=1.0)
            # a connection whose request was cut off holds a half-read response: start afresh
            for slot, connection in enumerate(self.connections):
                if connection.waiter is not None and connection.transport is not None:
                    connection.transport.close()
                    connection.closed = True
        return result

    async def close(self) -> None:
        for connection in self.connections:
            if connection.transport is not None:
                connection.transport.close()
        self.connections = []
        await asyncio.sleep(0)


# -- the aiohttp client, for comparison ----------------------------------------------------------


class AiohttpDriver:
    """The same phases through one ``aiohttp.ClientSession`` with a pool of ``concurrency``."""

    def __init__(self, request: Request, concurrency: int) -> None:
        self.request = request
        self.concurrency = concurrency
        self.session: Any = None

    async def connect(self) -> None:
        import aiohttp
        connector = aiohttp.TCPConnector(limit=self.concurrency, keepalive_timeout=60)
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_read=60),
            headers={"Content-Type": "application/json", "Authorization": "Bearer bench"})

    async def phase(self, requests: int, time_limit: float, grace: float) -> PhaseResult:
        result = PhaseResult()
        budget = [requests]
        deadline = perf_counter() + time_limit
        session, url, body = self.session, self.request.url, self.request.body

        async def worker() -> None:
            while budget[0] > 0 and perf_counter() < deadline:
                budget[0] -= 1
                started = perf_counter()
                first = 0.0
                try:
                    async with session.post(url, data=body) as response:
                        async for _ in response.content.iter_any():
                            if not first:
                                first = perf_counter()
                        end = perf_counter()
                except Exception as error:  # noqa: BLE001 - any client failure is a failed request
                    result.error(repr(error))
                    continue
                if response.status != 200:
                    result.error(f"HTTP {response.status}")
                    continue
                result.latencies.append(end - started)
                result.ttfbs.append((first or end) - started)

        cpu_before, started = time.process_time(), perf_counter()
        tasks = [asyncio.ensure_future(worker()) for _ in range(self.concurrency)]
        _, pending = await asyncio.wait(tasks, timeout=time_limit + grace)
        result.elapsed = perf_counter() - started
        result.driver_cpu = time.process_time() - cpu_before
        result.timeouts = len(pending)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        return result

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


# -- command line ------------------------------------------------------------------------------------


def _payload(name: str, stream: bool) -> bytes:
    from . import payloads
    documents = {
        "chat": payloads.chat_request,
        "responses": payloads.responses_request,
    }
    return orjson.dumps(documents[name](stream))


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    body = open(args.body_file, "rb").read() if args.body_file else _payload(args.payload, args.stream)
    driver = make_driver(args.client, Request(args.url, body, args.stream), args.concurrency)
    await driver.connect()
    try:
        await driver.phase(args.warmup, args.time_limit, args.grace)
        result = await driver.phase(args.requests, args.time_limit, args.grace)
    finally:
        await driver.close()
    return result.summary()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--payload", choices=("chat", "responses"), default="chat")
    parser.add_argument("--body-file", help="send this file instead of a built-in payload")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="raw")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--grace", type=float, default=10.0)
    args = parser.parse_args(argv)
    from .upstream import install_uvloop
    install_uvloop()
    print(orjson.dumps(asyncio.run(_main(args)), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
