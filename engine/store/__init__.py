"""Stored responses: what ``store``, ``previous_response_id`` and ``GET /v1/responses/{id}`` read.

A Chat Completions upstream keeps nothing between requests, so the Responses API's server-side
state lives here, in the proxy. Per response the store keeps one record (``StoredResponse``):

* the final Response object, exactly as the client received it (the streamed terminal event's
  ``response``, or the non-streamed body), so a retrieve equals the create and carries the same ids;
* the whole input the upstream saw, already expanded (earlier turns included) and with an id on
  every item, so that chaining from it never recurses through older records;
* the owner: a fingerprint of the key the client presented, never the key (``owner_of``).

Backends are chosen by URL and share one small async interface (``put``, ``get``, ``find_item``,
``delete``, ``aclose``) over bytes: the record's encoding lives here, once. ``find_item`` reads an
index from item id to the response that holds it, for the ``item_reference`` input items of
clients that keep only ids (the Vercel AI SDK).

    sqlite:///responses.sqlite3            a file relative to the working directory (or routes file)
    sqlite:////var/lib/mapper/r.sqlite3    an absolute path (four slashes, as in SQLAlchemy)
    sqlite://                              the default file (``default_sqlite_path``)
    redis://[:password@]host:6379/0        Redis (``pip install 'mapper[redis]'``); also rediss://

``?ttl=SECONDS`` on any URL makes records expire; without it they stay until deleted. SQLite is the
default because it needs nothing installed and its WAL mode lets the ``--workers`` processes of one
machine share a file; Redis is for several machines (or containers) behind one load balancer.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from ..types import JsonObject
from ..upstream_target import redact_url

__all__ = ["ResponseStore", "StoreConfig", "StoredResponse", "default_sqlite_path", "owner_of"]

SCHEMES = ("sqlite", "redis", "rediss")
_OWNER_DOMAIN = b"mapper response owner\0"  # keeps the fingerprint from equalling a bare sha256


def default_sqlite_path(env: dict[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/mapper/responses.sqlite3``, else ``~/.local/share/mapper/...``."""
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "mapper" / "responses.sqlite3"


def owner_of(token: str | None) -> str:
    """The owner of records made with ``token`` (the client's key): a SHA-256 fingerprint.

    Records are visible only to the key that made them, as OpenAI scopes responses to a project;
    without a key (a local proxy in front of Ollama) every client shares the owner ``""``.
    """
    if not token:
        return ""
    return hashlib.sha256(_OWNER_DOMAIN + token.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One stored response: the Response object, the input the upstream saw, and its owner."""

    response: JsonObject
    input: list[JsonObject]
    owner: str = ""

    @property
    def id(self) -> str:
        return self.response["id"]

    def item_ids(self) -> list[str]:
        """The ids of every item the record holds (its input and its output), for ``find_item``."""
        items = [*self.input, *(self.response.get("output") or ())]
        return [item["id"] for item in items
                if item.__class__ is dict and item.get("id").__class__ is str]

    def item(self, item_id: str) -> JsonObject | None:
        """The item of this record with ``item_id`` (output first: the newest form), or None."""
        for item in [*(self.response.get("output") or ()), *self.input]:
            if item.__class__ is dict and item.get("id") == item_id:
                return item
        return None

    def encode(self) -> bytes:
        return orjson.dumps({"owner": self.owner, "response": self.response, "input": self.input})

    @classmethod
    def decode(cls, data: bytes) -> "StoredResponse":
        record = orjson.loads(data)
        return cls(response=record["response"], input=record["input"], owner=record["owner"])


class ResponseStore(ABC):
    """A store of ``StoredResponse`` records by response id. One per process, shared by routes."""

    def __init__(self, ttl: float | None = None) -> None:
        self.ttl = ttl  # seconds a record lives; None: until deleted

    async def put(self, record: StoredResponse) -> None:
        """Store ``record`` under its response id (replacing one with the same id), and index its
        items by id so that an ``item_reference`` finds them."""
        await self._write(record.id, record.encode(), record.item_ids())

    async def get(self, response_id: str) -> StoredResponse | None:
        """The record of ``response_id``, or None when there is none (or it expired)."""
        data = await self._read(response_id)
        return None if data is None else StoredResponse.decode(data)

    async def find_item(self, item_id: str) -> StoredResponse | None:
        """The newest record holding the item ``item_id``, or None."""
        response_id = await self._read_item(item_id)
        return None if response_id is None else await self.get(response_id)

    async def delete(self, response_id: str) -> bool:
        """Remove the record; True when there was one."""
        return await self._remove(response_id)

    async def open(self) -> None:
        """Connect and check the store (at start-up); the other methods also open it when needed."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release connections and threads."""

    @abstractmethod
    async def _write(self, response_id: str, data: bytes, item_ids: list[str]) -> None:
        """Store the record, and point each of ``item_ids`` at it (replacing older pointers)."""

    @abstractmethod
    async def _read(self, response_id: str) -> bytes | None: ...

    @abstractmethod
    async def _read_item(self, item_id: str) -> str | None:
        """The id of the response an item was last stored with."""

    @abstractmethod
    async def _remove(self, response_id: str) -> bool: ...


@dataclass(frozen=True)
class StoreConfig:
    """Where the store is, parsed from its URL and checked, without connecting (``open`` does)."""

    scheme: str  # sqlite | redis | rediss
    target: str = field(repr=False)  # the SQLite file, or the Redis URL (may hold a password)
    ttl: float | None = None

    @classmethod
    def parse(cls, url: str | None, *, ttl: float | None = None, base_dir: Path | None = None,
              env: dict[str, str] | None = None) -> "StoreConfig":
        """A store URL (None: the default SQLite file) and an optional TTL; ``ValueError`` if wrong.

        Relative SQLite paths are taken from ``base_dir`` (a routes file's folder) or the working
        directory; a TTL given both in the URL and as ``ttl`` is refused rather than guessed at.
        """
        if url is None or url in ("sqlite", "sqlite://"):
            return cls("sqlite", str(default_sqlite_path(env)), _ttl(ttl))
        parts = urlsplit(url.strip())
        if parts.scheme not in SCHEMES:
            raise ValueError(f"unknown store {redact_url(url)!r}: expected sqlite:///FILE or "
                             "redis://HOST:PORT/DB")
        query = parse_qsl(parts.query, keep_blank_values=True)
        in_url = [value for name, value in query if name == "ttl"]
        rest = [(name, value) for name, value in query if name != "ttl"]
        if in_url and ttl is not None:
            raise ValueError("the store's TTL is given twice (?ttl= in the URL and --store-ttl)")
        if in_url:
            try:
                ttl = float(in_url[-1])
            except ValueError:
                raise ValueError(f"?ttl= takes seconds, not {in_url[-1]!r}") from None
        ttl = _ttl(ttl)
        if parts.scheme == "sqlite":
            if parts.netloc:
                raise ValueError(f"a SQLite store URL has no host ({parts.netloc!r}): write "
                                 "sqlite:///relative/file or sqlite:////absolute/file")
            if rest:
                raise ValueError(f"unknown SQLite store parameter {rest[0][0]!r} (only ttl)")
            path = parts.path[1:]  # sqlite:///x is "x"; sqlite:////x is "/x"
            if not path:
                return cls("sqlite", str(default_sqlite_path(env)), ttl)
            file = Path(path).expanduser()
            if not file.is_absolute():
                file = (base_dir or Path.cwd()) / file
            return cls("sqlite", str(file.resolve()), ttl)
        if importlib.util.find_spec("redis") is None:
            raise ValueError("a Redis store needs the redis package: pip install 'mapper[redis]'")
        if not parts.hostname:
            raise ValueError("a Redis store URL needs a host: redis://HOST:PORT/DB")
        target = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), ""))
        return cls(parts.scheme, target, ttl)

    @property
    def display(self) -> str:
        """The store for logs and messages: no password, no query."""
        if self.scheme == "sqlite":
            return "sqlite:///" + self.target  # an absolute path: four slashes
        return redact_url(self.target)

    @property
    def secret(self) -> str | None:
        """The Redis password in the URL, for redaction."""
        return None if self.scheme == "sqlite" else urlsplit(self.target).password

    def open(self) -> ResponseStore:
        """A store object; no I/O yet (``ResponseStore.open`` connects)."""
        if self.scheme == "sqlite":
            from .sqlite import SQLiteStore
            return SQLiteStore(Path(self.target), ttl=self.ttl)
        from .redis import RedisStore
        return RedisStore(self.target, ttl=self.ttl)


def _ttl(ttl: float | None) -> float | None:
    if ttl is not None and not (ttl > 0 and math.isfinite(ttl)):
        raise ValueError(f"the store's TTL must be a positive number of seconds, not {ttl}")
    return ttl
