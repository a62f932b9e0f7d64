"""The SQLite backend: one file on a local disk, shared by the worker processes of one machine.

The stdlib ``sqlite3`` module blocks, so every call runs on the store's own one-thread executor:
the connection lives on that thread alone, calls are serialised without a lock, and the event loop
never waits on the disk (``asyncio.to_thread`` would hand the connection from thread to thread).
WAL mode lets the other ``--workers`` processes read while one writes, and ``busy_timeout`` makes a
writer wait for another process's write instead of failing. ``synchronous=NORMAL`` is durable
against a crash of mapper (a power cut may lose the last records, never corrupt the file).

The file and its folder are created private (0600, 0700): records are the users' conversations.
Expired records are invisible at once and deleted at most once a minute, on a write. The ``items``
table points each item id at the newest response that holds it (``item_reference``); it is written
in the record's own transaction, and its rows go with their response.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

from ..errors import StoreError
from . import ResponseStore

__all__ = ["SQLiteStore"]

T = TypeVar("T")
BUSY_TIMEOUT = 10.0  # seconds a write waits for another process's write
PURGE_EVERY = 60.0  # seconds between deletions of expired records
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id      TEXT PRIMARY KEY,
    record  BLOB NOT NULL,   -- StoredResponse.encode(): JSON
    stored  REAL NOT NULL,   -- unix time
    expires REAL             -- unix time, or NULL: kept until deleted
);
CREATE INDEX IF NOT EXISTS responses_expires ON responses (expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS items (
    id       TEXT PRIMARY KEY,
    response TEXT NOT NULL  -- the newest response holding the item
);
"""


class SQLiteStore(ResponseStore):
    """Records in one SQLite file (WAL mode); ``clock`` is injectable for TTL tests."""

    def __init__(self, path: Path, *, ttl: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(ttl)
        self.path = path
        self.clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None  # used on the executor's thread only
        self._purged = 0.0

    async def open(self) -> None:
        await self._call(lambda db: None)

    async def aclose(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        await asyncio.get_running_loop().run_in_executor(executor, self._close)
        executor.shutdown(wait=False)

    async def _write(self, response_id: str, data: bytes, item_ids: list[str]) -> None:
        def write(db: sqlite3.Connection) -> None:
            now = self.clock()
            expires = now + self.ttl if self.ttl is not None else None
            with db:  # one transaction: a record is never visible without its item index
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT OR REPLACE INTO responses (id, record, stored, expires) "
                           "VALUES (?, ?, ?, ?)", (response_id, data, now, expires))
                db.executemany("INSERT OR REPLACE INTO items (id, response) VALUES (?, ?)",
                               [(item_id, response_id) for item_id in item_ids])
                if self.ttl is not None and now - self._purged >= PURGE_EVERY:
                    self._purged = now
                    db.execute("DELETE FROM responses WHERE expires IS NOT NULL AND expires <= ?",
                               (now,))
                    db.execute("DELETE FROM items WHERE response NOT IN (SELECT id FROM responses)")

        await self._call(write)

    async def _read_item(self, item_id: str) -> str | None:
        def read(db: sqlite3.Connection) -> str | None:
            row = db.execute("SELECT response FROM items WHERE id = ?", (item_id,)).fetchone()
            return None if row is None else row[0]

        return await self._call(read)

    async def _read(self, response_id: str) -> bytes | None:
        def read(db: sqlite3.Connection) -> bytes | None:
            row = db.execute("SELECT record FROM responses WHERE id = ? "
                             "AND (expires IS NULL OR expires > ?)",
                             (response_id, self.clock())).fetchone()
            return None if row is None else bytes(row[0])

        return await self._call(read)

    async def _remove(self, response_id: str) -> bool:
        def remove(db: sqlite3.Connection) -> bool:
            with db:
                db.execute("BEGIN IMMEDIATE")
                cursor = db.execute("DELETE FROM responses WHERE id = ? "
                                    "AND (expires IS NULL OR expires > ?)",
                                    (response_id, self.clock()))
                db.execute("DELETE FROM items WHERE response = ?", (response_id,))
            return cursor.rowcount > 0

        return await self._call(remove)

    # -- the executor's thread ------------------------------------------------------------------

    async def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="mapper-store")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, work)

    def _run(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        try:
            if self._db is None:
                self._db = self._connect()
            return work(self._db)
        except (sqlite3.Error, OSError) as error:
            raise StoreError(f"the SQLite store {self.path}: {error}") from None

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # created private before SQLite opens it; its -wal and -shm files copy these permissions
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
