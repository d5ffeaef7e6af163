"""The engine settings that keep orders safe when several agents and the sync runner write at once."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from db.engine import BUSY_TIMEOUT_MS, make_engine, normalise_url
from db.models import ActorKind, Order, OrderLine
from db.store import NewOrder, Store
from db.views import Actor

_o = Order.__table__.c
SYSTEM = Actor(ActorKind.SYSTEM, "test")


async def _new_order(store: Store) -> int:
    return await store.add_order(NewOrder("pos", "shop", "N1", datetime(2026, 3, 1, tzinfo=UTC)), actor=SYSTEM)


async def _increment(store: Store, order_id: int) -> None:
    """Read, then write what was read plus one: loses updates unless writers are serialised."""
    async with store.write() as conn:
        value = (await conn.execute(select(_o.total_fen).where(_o.id == order_id))).scalar_one()
        await asyncio.sleep(0)  # let another writer in between the read and the write, if it can get in
        await conn.execute(update(Order.__table__).where(_o.id == order_id).values(total_fen=value + 1))


async def _total(store: Store, order_id: int) -> int:
    async with store.engine.connect() as conn:
        return (await conn.execute(select(_o.total_fen).where(_o.id == order_id))).scalar_one()


def test_normalise_url() -> None:
    assert normalise_url("/data/orders.db") == "sqlite+aiosqlite:////data/orders.db"
    assert normalise_url("sqlite:////data/orders.db") == "sqlite+aiosqlite:////data/orders.db"
    assert normalise_url("postgresql://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "orders.db")
    try:
        async with store.engine.connect() as conn:
            pragma = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
            }
    finally:
        await store.close()
    assert pragma == {"journal_mode": "wal", "foreign_keys": 1, "synchronous": 2, "busy_timeout": BUSY_TIMEOUT_MS}


async def test_sqlite_file_and_its_folder_are_created(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "orders.db"
    engine = make_engine(path)
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
    finally:
        await engine.dispose()
    assert path.exists()


async def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(IntegrityError):
        async with store.write() as conn:
            await conn.execute(insert(OrderLine.__table__).values(order_id=999, sku="X", sku_norm="X"))


async def test_a_failed_write_leaves_nothing_behind(store: Store) -> None:
    order_id = await _new_order(store)
    with pytest.raises(RuntimeError):
        async with store.write() as conn:
            await conn.execute(update(Order.__table__).where(_o.id == order_id).values(total_fen=500))
            raise RuntimeError("the agent's action failed half-way")
    assert await _total(store, order_id) == 0


async def test_sqlite_write_transaction_takes_the_lock_up_front(tmp_path: Path) -> None:
    path = tmp_path / "orders.db"
    store = await Store.open(path)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        async with store.write() as conn:
            await conn.execute(select(_o.id))  # only a read so far, yet the write lock is ours
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released on commit
        other.execute("ROLLBACK")

        async with store.engine.connect() as conn:  # a read does not block writers
            await conn.execute(select(_o.id))
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
    finally:
        other.close()
        await store.close()


async def test_a_writer_waits_for_the_write_transaction_not_for_readers(store: Store) -> None:
    """A write transaction holds the write lock from its start, even before its first write."""
    order_id = await _new_order(store)
    other = await Store.open(store.url.render_as_string(hide_password=False))
    try:
        async with store.write() as conn:
            await conn.execute(select(_o.total_fen).where(_o.id == order_id))  # only a read so far
            waiting = asyncio.create_task(_increment(other, order_id))
            await asyncio.sleep(0.3)
            assert not waiting.done()
        await asyncio.wait_for(waiting, 5)

        async with store.engine.connect() as conn:  # an open read does not hold writers up
            await conn.execute(select(_o.total_fen).where(_o.id == order_id))
            await asyncio.wait_for(_increment(other, order_id), 5)
    finally:
        await other.close()
    assert await _total(store, order_id) == 2


async def test_concurrent_read_modify_writes_lose_nothing(store: Store) -> None:
    """Several tasks, each with its own pooled connection, on both backends."""
    order_id = await _new_order(store)

    async def worker() -> None:
        for _ in range(10):
            await _increment(store, order_id)

    await asyncio.gather(*(worker() for _ in range(4)))
    assert await _total(store, order_id) == 40


def _run(coro):  # noqa: ANN001, ANN202
    """asyncio.run in a short-lived thread: leaves this thread's event loop state to pytest-asyncio."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _increment_in_process(path: str, order_id: int, tasks: int, times: int) -> None:
    async def main() -> None:
        store = await Store.open(path)
        try:

            async def worker() -> None:
                for _ in range(times):
                    await _increment(store, order_id)

            await asyncio.gather(*(worker() for _ in range(tasks)))
        finally:
            await store.close()

    asyncio.run(main())


def test_sqlite_writers_in_several_processes_lose_nothing(tmp_path: Path) -> None:
    """4 processes x 2 tasks x 25 read-then-write increments on one file: exactly 200."""
    path = str(tmp_path / "orders.db")

    async def prepare() -> int:
        store = await Store.open(path)
        try:
            return await _new_order(store)
        finally:
            await store.close()

    async def total(order_id: int) -> int:
        store = await Store.open(path)
        try:
            return await _total(store, order_id)
        finally:
            await store.close()

    order_id = _run(prepare())
    # fork: no re-import per child (spawn costs ~3 s here); safe because this test is synchronous and
    # this process holds no database connection or event loop while the children start
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    processes = [context.Process(target=_increment_in_process, args=(path, order_id, 2, 25)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    assert _run(total(order_id)) == 200
