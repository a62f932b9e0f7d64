"""An httpx transport over aiohttp's connection pool: httpx's API, a pool that holds up under load.

httpx's own pool (httpcore) loses most of its throughput as concurrency grows (encode/httpx#3215);
aiohttp's does not. ``httpx_aiohttp`` bridges the two but does work per request the proxy never
needs (URL re-serialisation, a new ``ClientTimeout``, an exception-mapping context around every
chunk). This transport does only the bridging: ``httpx.Request`` in, ``httpx.Response`` out, the
body streamed as aiohttp receives it, aiohttp's errors raised as httpx's (with the aiohttp error as
``__cause__``, which ``engine.proxy.upstream.failure`` reads to tell unreachable from slow).

Closing a response whose body was not read to the end closes its connection: that is how a
client's hang-up reaches the upstream, which then stops generating.

The proxy's own requests skip even the httpx objects: ``send`` takes plain values and returns a
``DirectResponse`` with the few attributes the proxy reads (``status_code``, ``headers``, ``stream``,
``aclose``), so a request builds no ``httpx.Request``/``httpx.Response`` (their header
normalisation was about a tenth of the proxy's CPU per request).
"""

from __future__ import annotations

from functools import lru_cache
from typing import AsyncIterator

import aiohttp
import httpx

__all__ = ["AiohttpTransport", "DirectResponse"]


class AiohttpTransport(httpx.AsyncBaseTransport):
    """``httpx.AsyncBaseTransport`` on one ``aiohttp.ClientSession``, created in the running loop."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._limits.max_connections or 0,
                                             keepalive_timeout=self._limits.keepalive_expiry)
            # no decompression (the proxy asks for identity), no proxy from the environment
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                                  trust_env=False)
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        try:
            response = await self._client().request(
                request.method, _text(request.url), data=request.content or None,
                headers=request.headers.multi_items(), allow_redirects=False,
                timeout=_client_timeout(timeout.get("connect"), timeout.get("read"),
                                        timeout.get("pool")))
        except aiohttp.ClientError as error:
            raise _translated(error, request) from error
        return httpx.Response(response.status, headers=response.raw_headers,
                              stream=_Body(response), request=request)

    async def send(self, method: str, url: str, content: bytes | None,
                   headers: list[tuple[str, str]], connect: float) -> "DirectResponse":
        """The request without httpx objects; errors are raised as httpx's, like the above."""
        try:
            response = await self._client().request(
                method, url, data=content, headers=headers, allow_redirects=False,
                timeout=_client_timeout(connect, None, None))
        except aiohttp.ClientError as error:
            raise _translated(error, None) from error
        return DirectResponse(response)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class DirectResponse:
    """What the proxy reads of an upstream response, straight from aiohttp's."""

    __slots__ = ("status_code", "headers", "stream")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.status_code = response.status
        self.headers = response.headers  # case-insensitive, like httpx's
        self.stream = _Body(response)

    async def aclose(self) -> None:
        await self.stream.aclose()


def _translated(error: aiohttp.ClientError, request: httpx.Request | None) -> httpx.HTTPError:
    if isinstance(error, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(error), request=request)
    if isinstance(error, aiohttp.ServerTimeoutError):
        return httpx.ConnectTimeout(str(error), request=request)
    return httpx.RemoteProtocolError(str(error) or type(error).__name__, request=request)


class _Body(httpx.AsyncByteStream):
    """An aiohttp response body as an httpx stream."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except aiohttp.ClientError as error:
            raise httpx.ReadError(str(error) or type(error).__name__) from error

    async def aclose(self) -> None:
        response = self._response
        if response.content.at_eof():
            response.release()  # read to the end: the connection goes back to the pool
        else:
            response.close()  # cut short: close the connection so the upstream stops


@lru_cache(maxsize=256)
def _text(url: httpx.URL) -> str:
    return str(url)


@lru_cache(maxsize=64)
def _client_timeout(connect: float | None, read: float | None,
                    pool: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read, connect=pool)
