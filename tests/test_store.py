"""The response store's backends (``engine/store``): SQLite and a real Redis, the same contract.

Each backend must keep a record until it is deleted or expires, give None for an id it does not
hold, survive many concurrent writers, and share its records with another store object on the
same file or server (another worker process does exactly that). URLs are parsed and checked
before anything connects.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path
from typing import AsyncIterator, Callable

import pytest

from mapper.engine.errors import StoreError
from mapper.engine.store import ResponseStore, StoreConfig, StoredResponse, default_sqlite_path, owner_of
from mapper.engine.store.redis import RedisStore
from mapper.engine.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio


def record(response_id: str, text: str = "hi", owner: str = "") -> StoredResponse:
    return StoredResponse(
        response={"id": response_id, "object": "response", "status": "completed",
                  "output": [{"id": "msg_1", "type": "message", "role": "assistant",
                              "content": [{"type": "output_text", "text": text}]}]},
        input=[{"id": "msg_0", "type": "message", "role": "user", "content": "ünïcode ✓"}],
        owner=owner)


def new_id() -> str:
    return "resp_" + os.urandom(8).hex()


@pytest.fixture(params=["sqlite", "redis"])
async def make_store(request, tmp_path: Path) -> AsyncIterator[Callable[..., ResponseStore]]:
    """A factory of stores of one backend, all on the same file or server; closed afterwards."""
    made: list[ResponseStore] = []
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    def make(ttl: float | None = None) -> ResponseStore:
        store = SQLiteStore(tmp_path / "responses.sqlite3", ttl=ttl) if url is None \
            else RedisStore(url, ttl=ttl)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.aclose()


@pytest.fixture
def store(make_store: Callable[..., ResponseStore]) -> ResponseStore:
    return make_store()


async def test_put_get_delete(store: ResponseStore) -> None:
    kept = record(new_id(), owner="abc")
    await store.put(kept)
    assert await store.get(kept.id) == kept
    assert await store.delete(kept.id) is True
    assert await store.get(kept.id) is None
    assert await store.delete(kept.id) is False


async def test_a_missing_id_is_none(store: ResponseStore) -> None:
    assert await store.get("resp_never_stored") is None
    assert await store.delete("resp_never_stored") is False


async def test_a_put_replaces_the_record_with_the_same_id(store: ResponseStore) -> None:
    response_id = new_id()
    await store.put(record(response_id, "first"))
    await store.put(record(response_id, "second"))
    kept = await store.get(response_id)
    assert kept is not None and kept.response["output"][0]["content"][0]["text"] == "second"


async def test_items_are_found_by_id_in_the_newest_record_that_holds_them(
        make_store: Callable[..., ResponseStore]) -> None:
    first, second = make_store(), make_store()  # the index is shared like the records
    older, newer = record(new_id(), "older"), record(new_id(), "newer")
    await first.put(older)
    await first.put(newer)  # holds items with the same ids (a chain replays earlier items)
    found = await second.find_item("msg_1")
    assert found == newer and found.item("msg_1")["content"][0]["text"] == "newer"
    assert (await second.find_item("msg_0")).item("msg_0")["content"] == "ünïcode ✓"
    assert await second.find_item("msg_never_stored") is None
    await second.delete(newer.id)
    assert await first.find_item("msg_1") is None  # a deleted record's items are gone with it


async def test_concurrent_puts_all_land(store: ResponseStore) -> None:
    records = [record(new_id(), f"text {n}") for n in range(50)]
    await asyncio.gather(*(store.put(one) for one in records))
    found = await asyncio.gather(*(store.get(one.id) for one in records))
    assert found == records


async def test_two_store_objects_share_records(make_store: Callable[..., ResponseStore]) -> None:
    first, second = make_store(), make_store()  # as two worker processes would
    kept = record(new_id())
    await first.put(kept)
    assert await second.get(kept.id) == kept
    assert await second.delete(kept.id) is True
    assert await first.get(kept.id) is None


async def test_records_expire_after_the_ttl(make_store: Callable[..., ResponseStore]) -> None:
    store = make_store(ttl=0.3)
    kept = record(new_id())
    await store.put(kept)
    assert await store.get(kept.id) == kept
    await asyncio.sleep(0.5)
    assert await store.get(kept.id) is None
    assert await store.delete(kept.id) is False


# -- SQLite specifics ---------------------------------------------------------------------------


async def test_sqlite_uses_wal_and_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "private" / "responses.sqlite3"
    store = SQLiteStore(path)
    try:
        await store.put(record(new_id()))
    finally:
        await store.aclose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_sqlite_deletes_expired_rows_on_a_later_write(tmp_path: Path) -> None:
    now = [1000.0]
    store = SQLiteStore(tmp_path / "r.sqlite3", ttl=10, clock=lambda: now[0])
    try:
        old = record(new_id())
        await store.put(old)
        now[0] += 100  # expired, and past the purge interval
        assert await store.get(old.id) is None
        await store.put(record(new_id()))
    finally:
        await store.aclose()
    with sqlite3.connect(tmp_path / "r.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM responses").fetchone()[0] == 1
        # the expired record's item rows went with it; the new record's point at it
        assert db.execute("SELECT count(*) FROM items WHERE response = ?",
                          (old.id,)).fetchone()[0] == 0


async def test_sqlite_failures_are_store_errors(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    store = SQLiteStore(tmp_path / "a-file" / "responses.sqlite3")  # its folder is a file
    with pytest.raises(StoreError, match="M501|the SQLite store"):
        await store.open()
    await store.aclose()


async def test_an_unreachable_redis_is_a_store_error() -> None:
    store = RedisStore("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(StoreError, match=r"the Redis store redis://127\.0\.0\.1:1/0: PING failed"):
            await store.open()
    finally:
        await store.aclose()


# -- URLs -----------------------------------------------------------------------------------------


def test_sqlite_urls(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    default = StoreConfig.parse(None, env=env)
    assert (default.scheme, default.target) == ("sqlite", str(tmp_path / "data/mapper/responses.sqlite3"))
    assert StoreConfig.parse("sqlite://", env=env) == default
    assert default_sqlite_path({}) == Path.home() / ".local/share/mapper/responses.sqlite3"
    relative = StoreConfig.parse("sqlite:///r.sqlite3", base_dir=tmp_path)
    assert relative.target == str(tmp_path.resolve() / "r.sqlite3")
    absolute = StoreConfig.parse("sqlite:////var/lib/mapper/r.sqlite3?ttl=60")
    assert (absolute.target, absolute.ttl) == ("/var/lib/mapper/r.sqlite3", 60.0)
    assert absolute.display == "sqlite:////var/lib/mapper/r.sqlite3"
    assert StoreConfig.parse("sqlite:////x", ttl=5).ttl == 5


def test_redis_urls_keep_the_password_out_of_sight() -> None:
    config = StoreConfig.parse("redis://:s3cret-pass@cache.internal:6380/2?ttl=3600")
    assert (config.scheme, config.ttl) == ("redis", 3600.0)
    assert config.display == "redis://cache.internal:6380/2"
    assert config.secret == "s3cret-pass"
    assert "s3cret" not in repr(config)
    assert "ttl" not in config.target


@pytest.mark.parametrize("url, ttl, message", [
    ("postgres://h/db", None, "unknown store 'postgres://h/db'"),
    ("sqlite://host/x", None, "has no host"),
    ("sqlite:///x?mode=ro", None, "unknown SQLite store parameter 'mode'"),
    ("sqlite:///x?ttl=soon", None, "?ttl= takes seconds"),
    ("sqlite:///x?ttl=0", None, "positive number of seconds"),
    ("sqlite:///x?ttl=5", 5, "given twice"),
    ("redis:///0", None, "needs a host"),
    ("https://user:pw@h/x", None, "unknown store 'https://h/x'"),  # no password in the message
])
def test_bad_store_urls(url: str, ttl: float | None, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        StoreConfig.parse(url, ttl=ttl)
    assert message in str(raised.value)


def test_owners_are_fingerprints_not_keys() -> None:
    assert owner_of(None) == owner_of("") == ""
    assert owner_of("sk-a") != owner_of("sk-b")
    assert owner_of("sk-a") == owner_of("sk-a")
    assert "sk-a" not in owner_of("sk-a") and len(owner_of("sk-a")) == 32
