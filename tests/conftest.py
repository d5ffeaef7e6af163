"""Shared fixtures: a fresh, migrated ``Store`` on each backend, and empty databases for migrations.

``store`` runs a test twice: on a SQLite file in ``tmp_path`` and on PostgreSQL. The PostgreSQL run
is marked ``pg`` (deselect with ``-m "not pg"``). If the server cannot be reached it is skipped —
unless the ``CI`` environment variable is set, where an unreachable server is a failure.
Server: ``DESKAPP_TEST_PG_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``).

Isolation, kept fast:

* SQLite: one migrated template file per session, copied for each test.
* PostgreSQL: one throwaway database per session (``deskapp_test_<random>``), migrated once and
  dropped at the end (``synchronous_commit=off`` there: throwaway data); every test starts on empty
  tables with reset id sequences (one round trip of DELETEs: ~10 ms, where TRUNCATE took ~150 ms).
* ``empty_db_url``: a new, unmigrated database per test (a file, or its own PostgreSQL database).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url

from db.store import Store

PG_URL = os.environ.get("DESKAPP_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("pg", marks=pytest.mark.pg)]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _run(coro):  # noqa: ANN001, ANN202
    """Run a coroutine to completion on its own loop in a worker thread (for session fixtures)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _dsn(url: str) -> str:
    """The asyncpg DSN of a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_dsn(PG_URL), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _create_database() -> str:
    name = f"deskapp_test_{secrets.token_hex(6)}"
    await _admin(f'CREATE DATABASE "{name}"')
    return name


async def _drop_database(name: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The server URL, once it has answered; skip (or, under CI, fail) when it does not."""
    try:
        _run(_admin("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "no server"
        message = f"PostgreSQL unreachable at {make_url(PG_URL).render_as_string()}: {exc!r}"
        if _in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return PG_URL


@pytest.fixture(scope="session")
def pg_database(pg_server: str) -> Iterator[tuple[str, str]]:
    """A migrated database for this session: (url, TRUNCATE statement that empties it)."""
    name = _run(_create_database())
    url = _with_database(pg_server, name)

    async def migrate() -> str:
        await _admin(f'ALTER DATABASE "{name}" SET synchronous_commit = off')  # throwaway data
        store = await Store.open(url)
        try:
            async with store.engine.connect() as conn:
                tables = await conn.run_sync(_tables_children_first)
        finally:
            await store.close()
        deletes = "".join(_empty(t) for t in tables if t != "alembic_version")
        return deletes + (
            "SELECT setval(c.oid::regclass, 1, false) FROM pg_class c "
            "WHERE c.relkind = 'S' AND c.relnamespace = current_schema()::regnamespace"
        )

    try:
        empty_tables = _run(migrate())
        yield url, empty_tables
    finally:
        _run(_drop_database(name))


def _empty(table: str) -> str:
    """The statement that empties one table; the access log refuses DELETE until its triggers are off."""
    if table == "access_log":
        return ('ALTER TABLE access_log DISABLE TRIGGER USER; DELETE FROM access_log; '
                'ALTER TABLE access_log ENABLE TRIGGER USER; ')
    return f'DELETE FROM "{table}"; '


def _tables_children_first(sync_conn) -> list[str]:  # noqa: ANN001
    """Every table the migrations created, each before the tables it references."""
    metadata = MetaData()
    metadata.reflect(sync_conn)
    return [table.name for table in reversed(metadata.sorted_tables)]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file to copy: saves running the migrations for every test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"

    async def migrate() -> None:
        store = await Store.open(path)
        await store.close()

    _run(migrate())
    return path


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh, empty, migrated Store on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "orders.db"
        for suffix in ("", "-wal"):
            if Path(f"{template}{suffix}").exists():
                shutil.copyfile(f"{template}{suffix}", f"{path}{suffix}")
        opened = await Store.open(path)
    else:
        url, empty_tables = request.getfixturevalue("pg_database")
        opened = await Store.open(url)
        async with opened.engine.connect() as conn:  # several statements: asyncpg's simple protocol
            await (await conn.get_raw_connection()).driver_connection.execute(empty_tables)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(params=BACKENDS)
async def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL (or path) of a new, empty, unmigrated database on each backend."""
    if request.param == "sqlite":
        yield str(tmp_path / "empty.db")
        return
    server: str = request.getfixturevalue("pg_server")
    name = await _create_database()
    try:
        yield _with_database(server, name)
    finally:
        await _drop_database(name)
