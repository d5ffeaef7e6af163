"""Open the order pool for an agent's session: reads at once, writes when the engine is ready.

Importing SQLAlchemy, SQLModel and pydantic and opening the write engine costs ~0.5 s before any
query runs — most of a cold start. A :class:`LazyStore` answers lookups and cards from a
:class:`db.reader.Reader` (plain sqlite3) from the first frame, while the full
:class:`db.store.Store` is imported and opened in the background; a write waits for it. Only for an
existing SQLite file whose schema is current: anything else goes through ``Store.open`` first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from db import search
from db.reader import Reader
from db.views import Actor, OrderCard, OrderHit

if TYPE_CHECKING:
    from db.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

VERSIONS = Path(__file__).parent / "migrations" / "versions"


def newest_revision() -> str:
    """The newest schema revision this code knows (revision files are numbered ``NNNN_name.py``)."""
    return max(p.name.split("_", 1)[0] for p in VERSIONS.glob("[0-9]*_*.py"))


def quick_reader(path: str | Path) -> Reader | None:
    """A Reader on an existing, up-to-date SQLite file; None when the full open must come first."""
    if "://" in str(path) or not Path(path).is_file():
        return None
    reader = Reader(path)
    if reader.revision() != newest_revision():
        reader.close()
        return None
    return reader


class LazyStore:
    """The Store's read methods at once; everything else once ``Store.open`` has finished."""

    def __init__(self, reader: Reader, *, login: str) -> None:
        self.reader = reader
        self.dialect = "sqlite"
        self._login = login
        self._store: Store | None = None
        self._opening: asyncio.Task[Store] | None = None

    def start(self) -> None:
        """Begin importing and opening the full Store in the background (call in the event loop)."""
        if self._opening is None:
            self._opening = asyncio.create_task(self._open(), name="open-store")

    async def _open(self) -> Store:
        # The import is ~0.5 s of pure Python: in a thread, so the event loop keeps painting and
        # answering keys meanwhile (the GIL is handed over every few milliseconds).
        module = await asyncio.to_thread(_import_store)
        # Who may work here was settled before the app started (deskapp.services.auth
        # .resolve_operator): opening never adds an operator.
        store = await module.Store.open(self.reader.path, reader=self.reader)
        self._store = store
        return store

    async def store(self) -> Store:
        """The full Store, waiting for it to open if need be."""
        if self._store is not None:
            return self._store
        self.start()
        return await self._opening

    # -- reads: answered by the Reader from the start --------------------------------------------

    async def find_orders(self, query: str, *, limit: int = search.LIMIT) -> list[OrderHit]:
        return await self.reader.find_orders(query, limit=limit)

    async def order_card(self, order_id: int, *, now: datetime | None = None,
                         reveal: frozenset[str] = frozenset()) -> OrderCard | None:
        return await self.reader.order_card(order_id, now=now, reveal=reveal)

    async def operator_name(self, login: str) -> str:
        return await self.reader.operator_name(login)

    async def count_orders(self) -> int:
        return await self.reader.count_orders()

    # -- writes: through the full Store (``await lazy.store()`` for anything not listed) --------

    async def set_seller_memo(self, order_id: int, memo: str, *, actor: Actor) -> None:
        await (await self.store()).set_seller_memo(order_id, memo, actor=actor)

    async def close(self) -> None:
        """Close the Store if it opened (it closes the Reader), else the Reader alone."""
        if self._opening is not None and self._store is None:
            try:
                await self._opening
            except Exception:  # noqa: BLE001 - it failed to open: nothing more to close
                log.exception("the order pool did not open")
        if self._store is not None:
            await self._store.close()
        else:
            self.reader.close()


async def read(store: Store | LazyStore, fn: Callable[..., T], *args: object) -> T:
    """Run ``fn(q, *args)`` (``q`` as in ``db.reads``) in one snapshot of a Store or a LazyStore.

    A LazyStore answers from its Reader at once, without waiting for the full Store to open.
    """
    if isinstance(store, LazyStore):
        return await store.reader.read(fn, *args)
    return await store._read(fn, *args)


async def full(store: Store | LazyStore) -> Store:
    """The full Store (a LazyStore's, once it has opened) for a write."""
    if isinstance(store, LazyStore):
        return await store.store()
    return store


def _import_store():  # noqa: ANN202
    import db.store

    return db.store
