"""The Redis backend: one store for many proxy instances (machines, containers, workers).

Each record is one string key, ``mapper:response:<id>``, written with ``SET`` (with ``PX`` when a
TTL is set, so Redis itself expires it), read with ``GET`` and removed with ``DEL``; beside it, in
the same ``MULTI``, each of its items' ids points at it (``mapper:item:<id>``, same TTL), which is
how an ``item_reference`` finds its item. A deleted record leaves its item keys behind, pointing at
nothing: a lookup then finds no record, as if the item had never been stored. redis-py's
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
ITEM_PREFIX = "mapper:item:"  # item id -> the newest response holding it (item_reference)
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

    async def _write(self, response_id: str, data: bytes, item_ids: list[str]) -> None:
        px = max(1, int(self.ttl * 1000)) if self.ttl is not None else None

        async def write(client: Any) -> None:
            async with client.pipeline(transaction=True) as pipe:  # MULTI/EXEC: all or nothing
                pipe.set(KEY_PREFIX + response_id, data, px=px)
                for item_id in item_ids:
                    pipe.set(ITEM_PREFIX + item_id, response_id, px=px)
                await pipe.execute()

        await self._call("SET", write)

    async def _read(self, response_id: str) -> bytes | None:
        return await self._call("GET", lambda client: client.get(KEY_PREFIX + response_id))

    async def _read_item(self, item_id: str) -> str | None:
        found = await self._call("GET", lambda client: client.get(ITEM_PREFIX + item_id))
        return None if found is None else found.decode()

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
