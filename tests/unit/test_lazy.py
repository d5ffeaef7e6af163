"""Opening an existing pool lazily: reads at once without SQLAlchemy, anything unusual opens fully."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from db.lazy import LazyStore, newest_revision, quick_reader
from db.store import NewOrder, Store
from db.views import Actor
from datetime import UTC, datetime


async def _pool(path: Path) -> int:
    store = await Store.open(path)
    try:
        await store.ensure_operator("li", "李霞", role="cs")  # may change memos (db.roles)
        return await store.add_order(
            NewOrder(channel="taobao", shop_code="shop1", channel_order_id="T1", order_no="T1",
                     created_at=datetime(2026, 11, 1, tzinfo=UTC), receiver_name="张三"),
            actor=Actor("operator", "wang"),
        )
    finally:
        await store.close()


async def test_a_current_file_answers_before_the_store_opens_and_writes_wait_for_it(tmp_path: Path) -> None:
    path = tmp_path / "pool.db"
    order_id = await _pool(path)
    reader = quick_reader(path)
    assert reader is not None
    lazy = LazyStore(reader, login="li")
    try:
        assert [h.id for h in await lazy.find_orders("张三")] == [order_id]
        assert (await lazy.order_card(order_id)).order_no == "T1"
        await lazy.set_seller_memo(order_id, "改地址", actor=Actor("operator", "li"))  # opens the Store
        card = await lazy.order_card(order_id)
        assert card.seller_memo == "改地址" and card.timeline[-1].actor_id == "li"
        assert await lazy.operator_name("li") == "李霞"
    finally:
        await lazy.close()


def test_new_missing_or_old_files_are_not_opened_lazily(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    assert quick_reader(missing) is None and not missing.exists()  # never creates a file
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert quick_reader(empty) is None
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num TEXT)")
        conn.execute("INSERT INTO alembic_version VALUES ('0000')")
    assert newest_revision() != "0000" and quick_reader(old) is None


def test_the_read_path_imports_no_sqlalchemy(tmp_path: Path) -> None:
    code = (
        "import sys, asyncio; from db.lazy import quick_reader; from deskapp.app import DeskApp; "
        f"r = quick_reader({str(tmp_path / 'x.db')!r}); "
        "print(sorted(m for m in ('sqlalchemy', 'sqlmodel', 'pydantic', 'aiosqlite') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2]).stdout
    assert out.strip() == "[]"
