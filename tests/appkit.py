"""Helpers for tests that run the app: a fixed clock, a demo database, and the screen as text."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from db.engine import make_engine
from db.lazy import LazyStore, quick_reader
from db.store import Store
from deskapp.__main__ import make_app
from deskapp.services.demo import DEMO_NOW, build_demo
from deskapp.settings import Settings

OPERATOR = "wang"  # customer service
OPERATOR_NAME = "王小二"
#: Who else works in the test database (db.roles: warehouse staff scan, a supervisor overrides checks).
WAREHOUSE, WAREHOUSE_NAME = "qian", "钱小库"
SUPERVISOR, SUPERVISOR_NAME = "zhou", "周主管"
_NAMES = {OPERATOR: OPERATOR_NAME, WAREHOUSE: WAREHOUSE_NAME, SUPERVISOR: SUPERVISOR_NAME}


def fixed_clock() -> datetime:
    """Always the demo's 'now', so countdowns and the header clock never change between runs."""
    return DEMO_NOW


async def build_demo_db(path: Path, orders: int = 400, seed: int = 7) -> Path:
    """A small deterministic demo database with our operators in it."""
    store = await Store.open(path, synchronous="OFF")
    try:
        await build_demo(store, orders=orders, seed=seed, now=DEMO_NOW)
        await store.ensure_operator(OPERATOR, OPERATOR_NAME, role="cs")
        await store.ensure_operator(WAREHOUSE, WAREHOUSE_NAME, role="warehouse")
        await store.ensure_operator(SUPERVISOR, SUPERVISOR_NAME, role="supervisor")
    finally:
        await store.close()
    return path


def build_demo_db_sync(path: Path, orders: int = 400, seed: int = 7) -> Path:
    """``build_demo_db`` for session fixtures, which have no running loop."""
    return asyncio.run(build_demo_db(path, orders, seed))


def app_on(path: Path, *, lazy: bool = False, operator: str = OPERATOR):  # noqa: ANN201
    """The app on an already migrated database; connections open inside the app's own loop.

    ``lazy``: as ``deskapp`` opens an existing file — reads from plain sqlite3 at once, the write
    engine opened in the background after the first frame (``db.lazy``). ``operator``: who works
    (:data:`OPERATOR`, customer service; :data:`WAREHOUSE`; :data:`SUPERVISOR`).
    """
    settings = Settings(db=str(path), operator=operator, language="zh")
    if lazy:
        reader = quick_reader(path)
        assert reader is not None, "an existing, current database opens lazily"
        store = LazyStore(reader, login=operator)
    else:
        store = Store(make_engine(path))
    return make_app(store, settings, operator_name=_NAMES.get(operator, operator), clock=fixed_clock)


def screen_text(app) -> str:  # noqa: ANN001
    """What the terminal shows, line by line, as plain text (double-width cells counted once)."""
    strips = app.screen._compositor.render_strips()  # noqa: SLF001 - the composed screen
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)
