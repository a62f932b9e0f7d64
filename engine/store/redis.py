"""The Redis backend: one store for many proxy instances (machines, containers, workers).

Each record is one string key, ``mapper:response:<id>``, written with ``SET`` (with ``PX`` when a
TTL is set, so Redis itself expires it), read with ``GET`` and removed with ``DEL``. redis-py's
asyncio client keeps a connection pool on the event loop that first uses it, so the client is
made on first use, inside the server's loop. Every call is bounded by socket timeouts: a Redis that
stops answering fails the request that needs it (503) instead of holding it.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio
import redis.exceptions

from ..errors import StoreError
from ..upstream_target import redact_url
from . import ResponseStore

__all__ = ["RedisStore"]

KEY_PREFIX = "mapper:response:"
TIMEOUT = 5.0  # seconds for connecting and for each command


class RedisStore(ResponseStore):
    """Records as Redis strings; the URL is redis-py's (``redis://:password@host:6379/0``)."""

    def __init__(self, url: str, *, ttl: float | None = None) -> None:
        super().__init__(ttl)
        self._url = url  # may hold a password: never logged (``StoreConfig.display``)
        self._client: Any = None

    async def open(self) -> None:
        await self._call("PING", lambda client: client.ping())

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _write(self, response_id: str, data: bytes) -> None:
        px = max(1, int(self.ttl * 1000)) if self.ttl is not None else None
        await self._call("SET", lambda client: client.set(KEY_PREFIX + response_id, data, px=px))

    async def _read(self, response_id: str) -> bytes | None:
        return await self._call("GET", lambda client: client.get(KEY_PREFIX + response_id))

    async def _remove(self, response_id: str) -> bool:
        return bool(await self._call("DEL", lambda client: client.delete(KEY_PREFIX + response_id)))

    async def _call(self, command: str, work: Any) -> Any:
        if self._client is None:
            self._client = redis.asyncio.Redis.from_url(
                self._url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
        try:
            return await work(self._client)
        except (redis.exceptions.RedisError, OSError) as error:
            raise StoreError(f"the Redis store {redact_url(self._url)}: {command} failed: "
                             f"{error}") from None
