"""The upstream leg: one pooled HTTP client per process, its transport, its timeouts, its URLs.

The proxy talks to upstreams through ``httpx``'s API, but not through httpx's default connection
pool: under concurrency that pool collapses (encode/httpx#3215, throughput falls from about 1.1k to
about 0.3k requests/s between 1 and 64 concurrent requests). The default transport is therefore
``engine.proxy.transport.AiohttpTransport`` (aiohttp's pool behind the httpx API). ``TRANSPORTS``
holds the choices by name so that ``mapper serve --upstream-transport httpx`` (and the benchmark)
can compare.

Timeouts are three, because an LLM answers in two phases:

* ``connect``: the TCP (and TLS) connection, enforced by the transport;
* ``read``: from sending the request to the first piece of the answer's body. A non-streamed
  completion often sends nothing until the whole answer is ready, and a stream may send its head
  at once but its first token only after a long prompt, so this one is long;
* ``idle``: the longest silence between two pieces of the body once it has begun.

``read`` and ``idle`` are enforced here with ``asyncio.timeout`` rather than by the transport,
whose single read timeout cannot tell the two phases apart. Every failure becomes an
``UpstreamError`` whose status says what the client gets: 502 when the upstream cannot be reached
or breaks the connection, 504 when it is too slow.

Base URLs. Users give the URL an OpenAI client would take (``http://host:8000/v1``) but often get
the ``/v1`` wrong; ``base_url`` (in ``engine.upstream_target``) forgives the usual slips. The endpoint under the
base URL, and the header that carries the key, follow the mapping's options
(``engine.upstream_target``: ``upstream_path``, ``upstream_query``, ``auth_header``).
"""

from __future__ import annotations

import asyncio
import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import AsyncIterator, Callable, Mapping

import aiohttp
import httpx

from ... import __version__
from ..errors import UpstreamError
from ..upstream_target import base_url, redact_url
from .transport import AiohttpTransport, DirectResponse

__all__ = ["TRANSPORTS", "Reply", "Timeouts", "Upstream", "base_url", "passed_headers", "redact_url"]

MAX_CONNECTIONS = 1024  # per process; streams hold a connection for their whole length
KEEPALIVE_SECONDS = 30.0
ERROR_BODY_LIMIT = 1 << 20  # bytes of an upstream error body worth reading
BODY_LIMIT = 256 << 20  # bytes of a non-streamed upstream answer


def _aiohttp_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    return AiohttpTransport(limits)


def _httpx_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport(limits=limits, trust_env=False)


TRANSPORTS: dict[str, Callable[[httpx.Limits], httpx.AsyncBaseTransport]] = {
    "aiohttp": _aiohttp_transport,  # the default: holds up under concurrency
    "httpx": _httpx_transport,  # httpx's own pool (httpcore), for comparison
}


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds allowed for the connection, the response head, each silence in the body, and all.

    ``total`` bounds the whole exchange, streamed or not, from the request's arrival to the last
    byte: the idle timer restarts on every byte, so an upstream that drips would otherwise hold a
    request forever.
    """

    connect: float = 10.0
    read: float = 600.0
    idle: float = 300.0
    total: float = 1800.0

    def replace(self, **changes: float | None) -> "Timeouts":
        """A copy with the given (non-``None``) values changed."""
        values = {"connect": self.connect, "read": self.read, "idle": self.idle,
                  "total": self.total}
        values.update({name: float(value) for name, value in changes.items() if value is not None})
        return Timeouts(**values)


# -- headers ------------------------------------------------------------------------------------


def passed_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """The upstream's headers a client needs to pace itself: ``retry-after*``, ``x-ratelimit-*``."""
    return [(name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
            if name.lower().startswith(("x-ratelimit-", "retry-after"))]


# -- the client -----------------------------------------------------------------------------------


class Upstream:
    """The process's one pooled client. Create it once; share it across requests and routes.

    Requests go straight to the httpx transport (``handle_async_request``): the proxy needs none of
    what ``httpx.AsyncClient.send`` adds around it (auth flows, redirects, cookies, event hooks,
    content decoders), and skipping it is about a sixth of the proxy's CPU per request. The API is
    still httpx's: ``httpx.Request`` in, ``httpx.Response`` out, any httpx transport underneath.
    """

    def __init__(self, transport: str | httpx.AsyncBaseTransport = "aiohttp", *,
                 max_connections: int = MAX_CONNECTIONS,
                 user_agent: str = f"mapper/{__version__}") -> None:
        """``transport`` is a name in ``TRANSPORTS``, or a transport object (a test double)."""
        if isinstance(transport, str) and transport not in TRANSPORTS:
            raise ValueError(f"unknown upstream transport {transport!r}; known: {sorted(TRANSPORTS)}")
        self.transport = transport
        self._limits = httpx.Limits(max_connections=max_connections,
                                    max_keepalive_connections=max_connections,
                                    keepalive_expiry=KEEPALIVE_SECONDS)
        # sent with every request; identity: compressing a token stream only adds latency
        self._text_headers = [("user-agent", user_agent), ("accept-encoding", "identity")]
        self._base_headers = [(name.encode(), value.encode()) for name, value in self._text_headers]
        self._transport: httpx.AsyncBaseTransport | None = None

    def client(self) -> httpx.AsyncBaseTransport:
        """The pooled transport, created on first use inside the running event loop."""
        if self._transport is None:
            transport = self.transport
            if isinstance(transport, str):
                transport = TRANSPORTS[transport](self._limits)
            self._transport = transport
        return self._transport

    async def aclose(self) -> None:
        """Close the pool (at shutdown)."""
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.aclose()

    @asynccontextmanager
    async def open(self, method: str, url: str, *, content: bytes | None = None,
                   headers: Mapping[str, str] | None = None,
                   timeouts: Timeouts = Timeouts()) -> AsyncIterator["Reply"]:
        """Send a request and wait for the response head; the body is read from the ``Reply``.

        Leaving the block closes the response: if the body was not read to the end, the
        connection is closed too, which is how a cancelled request reaches the upstream.
        """
        transport = self.client()
        if isinstance(transport, AiohttpTransport):  # the default: no httpx objects on the way
            sending = transport.send(method, url, content,
                                     [*self._text_headers, *(headers or {}).items()],
                                     timeouts.connect)
        else:
            request = httpx.Request(method, _url(url), content=content,
                                    headers=self._base_headers + _encoded(headers),
                                    extensions={"timeout": _transport_timeouts(timeouts)})
            sending = transport.handle_async_request(request)
        now = asyncio.get_running_loop().time()
        deadline = now + timeouts.total
        first_byte_by = min(now + timeouts.read, deadline)
        try:
            async with asyncio.timeout_at(first_byte_by):
                response = await sending
        except TimeoutError:
            raise read_timeout(timeouts, total=first_byte_by == deadline) from None
        except httpx.HTTPError as error:
            raise failure(error, timeouts) from None
        try:
            yield Reply(response, timeouts, first_byte_by, deadline)
        finally:
            await response.aclose()


@lru_cache(maxsize=256)
def _url(url: str) -> httpx.URL:
    # a handful of upstream endpoints, parsed once each rather than on every request
    return httpx.URL(url)


@lru_cache(maxsize=64)
def _transport_timeouts(timeouts: Timeouts) -> dict[str, float | None]:
    # the transport enforces connect (and write); read and idle are enforced in Reply.chunks
    return {"connect": timeouts.connect, "read": None, "write": timeouts.connect, "pool": None}


def _encoded(headers: Mapping[str, str] | None) -> list[tuple[bytes, bytes]]:
    if not headers:
        return []
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


class Reply:
    """An upstream response whose head has arrived; its body is read with the idle timeout."""

    __slots__ = ("_response", "_timeouts", "_first_byte_by", "_deadline", "_pieces", "status",
                 "headers")

    def __init__(self, response: httpx.Response | DirectResponse, timeouts: Timeouts,
                 first_byte_by: float, deadline: float) -> None:
        self._response = response
        self._timeouts = timeouts
        self._first_byte_by = first_byte_by  # loop time by which the body's first piece is due
        self._deadline = deadline  # loop time by which the whole body is due (total timeout)
        # the raw stream: no decoders to run, since the request asked for identity encoding;
        # one iterator, which chunks() and drain() share
        self._pieces = response.stream.__aiter__()
        self.status = response.status_code
        self.headers = response.headers

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; ``UpstreamError`` when it stalls or the connection breaks."""
        pieces = self._pieces
        idle = self._timeouts.idle
        deadline = self._deadline
        loop = asyncio.get_running_loop()
        due, first = self._first_byte_by, True  # the first piece still falls under the read timeout
        while True:
            try:
                async with asyncio.timeout_at(due):
                    piece = await anext(pieces)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if due >= deadline:
                    raise total_timeout(self._timeouts) from None
                if first:
                    raise read_timeout(self._timeouts) from None
                raise UpstreamError(f"the upstream sent nothing for {idle:g}s (idle timeout)",
                                    status=504, error_type="upstream_timeout") from None
            except httpx.HTTPError as error:
                raise failure(error, self._timeouts, during_body=True) from None
            if piece:
                due, first = min(loop.time() + idle, deadline), False
                yield piece

    async def read(self, limit: int = BODY_LIMIT) -> bytes:
        """The whole body; ``UpstreamError`` (502) if it is longer than ``limit`` bytes."""
        pieces: list[bytes] = []
        size = 0
        async for piece in self.chunks():
            size += len(piece)
            if size > limit:
                raise UpstreamError(f"the upstream's answer is over {limit} bytes", status=502,
                                    error_type="bad_upstream_response")
            pieces.append(piece)
        return b"".join(pieces)

    async def drain(self, seconds: float = 1.0) -> None:
        """Read what is left (briefly) so the connection can be reused; otherwise it is closed."""
        try:
            async with asyncio.timeout(seconds):
                async for _ in self._pieces:
                    pass
        except (TimeoutError, httpx.HTTPError):
            return  # leaving Upstream.open closes the connection instead of reusing it


# -- failures ---------------------------------------------------------------------------------------


def read_timeout(timeouts: Timeouts, *, total: bool = False) -> UpstreamError:
    if total:
        return total_timeout(timeouts)
    return UpstreamError(f"the upstream did not answer within {timeouts.read:g}s (read timeout)",
                         status=504, error_type="upstream_timeout")


def total_timeout(timeouts: Timeouts) -> UpstreamError:
    return UpstreamError(f"the upstream's answer took longer than {timeouts.total:g}s in all "
                         "(total timeout)", status=504, error_type="upstream_timeout")


def failure(error: httpx.HTTPError, timeouts: Timeouts, *, during_body: bool = False) -> UpstreamError:
    """What a transport exception means for the client: 502 (unreachable, broken) or 504 (slow)."""
    reason = _reason(error)
    if _is_connect_timeout(error):
        return UpstreamError(f"the upstream did not accept a connection within "
                             f"{timeouts.connect:g}s", status=504, error_type="upstream_timeout")
    if during_body:
        return UpstreamError(f"the upstream connection broke mid-answer: {reason}", status=502,
                             error_type="upstream_disconnected")
    if isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout)) and _connect_failed(error):
        return UpstreamError(f"the upstream cannot be reached: {reason}", status=502,
                             error_type="upstream_unreachable")
    return UpstreamError(f"the upstream request failed: {reason}", status=502,
                         error_type="upstream_error")


def _causes(error: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _is_connect_timeout(error: httpx.HTTPError) -> bool:
    # the aiohttp transport keeps aiohttp's error as the cause; when there is one, it decides
    cause = error.__cause__
    if isinstance(cause, aiohttp.ClientError):
        return isinstance(cause, aiohttp.ServerTimeoutError) and not isinstance(
            cause, aiohttp.SocketTimeoutError)
    return isinstance(error, httpx.ConnectTimeout)


def _connect_failed(error: httpx.HTTPError) -> bool:
    cause = error.__cause__
    if isinstance(cause, aiohttp.ClientError):
        return isinstance(cause, aiohttp.ClientConnectorError)
    return True


def _reason(error: httpx.HTTPError) -> str:
    """A short reason for a message: never the URL's credentials or query."""
    for link in _causes(error):
        if isinstance(link, ConnectionRefusedError):
            return "connection refused"
        if isinstance(link, socket.gaierror):
            return "the host name does not resolve"
        if isinstance(link, aiohttp.ServerDisconnectedError):
            return "the server closed the connection"
        if isinstance(link, aiohttp.ClientPayloadError):
            return "the body ended early"
        if isinstance(link, httpx.RemoteProtocolError):
            return f"protocol error ({link})"
    text = str(error.__cause__ or error).strip()
    return text[:200] if text else type(error).__name__
