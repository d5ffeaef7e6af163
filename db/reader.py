"""Reads of a SQLite order pool on plain ``sqlite3`` connections, in a small thread pool.

Through aiosqlite every statement costs four thread hops (cursor, execute, fetch, close) plus
BEGIN and the pool's reset: ~24 hops and 2–6 ms for a lookup whose SQL takes 0.1 ms. A
:class:`Reader` runs a whole read — all its statements, in one snapshot — in one hop. Its
connections are ``query_only``: a read path can never write. The snapshot ends with the read, so
an idle app never holds back a checkpoint (see PITFALLS.md). No SQLAlchemy here: the app can open
a Reader and answer searches while the write engine is still being imported.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from db import reads, search
from db.views import OrderCard, OrderHit

T = TypeVar("T")

#: How long a read waits for a writer's checkpoint or lock before giving up.
BUSY_TIMEOUT_MS = 5000
#: Two threads: a lookup and a card can run at once; more would only contend for the GIL.
THREADS = 2


class Reader:
    """Read-only access to a SQLite order pool file; create with the file's path."""

    def __init__(self, path: str | Path, *, cache_mb: int = 32) -> None:
        self.path = str(path)
        self._cache_mb = cache_mb
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._threads = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="deskapp-read")

    def close(self) -> None:
        """Wait for running reads, then close every connection."""
        self._threads.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    async def read(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(q, *args)`` in one snapshot on a reader thread (``q`` runs one statement)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self.read_now, fn, args)

    def read_now(self, fn: Callable[..., T], args: tuple = ()) -> T:
        """The same, on the calling thread (for scripts and reader threads)."""
        conn = self._connection()
        cursor = conn.cursor()

        def q(sql: str, params: dict | Sequence = ()) -> list[tuple]:
            cursor.execute(sql, params)
            return cursor.fetchall()

        cursor.execute("BEGIN")
        try:
            return fn(q, *args)
        finally:
            cursor.execute("COMMIT")  # ends the snapshot: never hold one while idle
            cursor.close()

    # -- the reads the desk needs --------------------------------------------------------------

    async def find_orders(self, query: str, *, limit: int = search.LIMIT) -> list[OrderHit]:
        """Orders matching what an agent typed: exact ids first, then phone, name, address."""
        probes = search.probes(query, dialect="sqlite")
        if not probes:
            return []
        return await self.read(reads.find_orders, probes, limit, True)

    async def order_card(self, order_id: int, *, now: datetime | None = None,
                         reveal: frozenset[str] = frozenset()) -> OrderCard | None:
        """Everything the lifecycle card shows, read in one snapshot; None if there is no such order.

        Customer data masked but for the fields in ``reveal`` (see ``Store.order_card``)."""
        return await self.read(reads.order_card, order_id, now or datetime.now(UTC), frozenset(reveal))

    async def operator_name(self, login: str) -> str:
        """The display name of an operator (the login itself when unknown)."""
        return await self.read(reads.operator_name, login) or login

    async def count_orders(self) -> int:
        """How many orders the pool holds."""
        return await self.read(reads.count_orders)

    def revision(self) -> str | None:
        """The schema revision of the file (None: not a deskapp database yet)."""
        try:
            rows = self.read_now(lambda q: q("SELECT version_num FROM alembic_version"))
        except sqlite3.Error:
            return None
        return rows[0][0] if rows else None

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            uri = Path(self.path).absolute().as_uri() + "?mode=rw"  # never creates a file
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            for pragma in (f"busy_timeout={BUSY_TIMEOUT_MS}", f"cache_size={-1000 * self._cache_mb}",
                           "temp_store=MEMORY", "query_only=ON"):
                conn.execute(f"PRAGMA {pragma}")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn
