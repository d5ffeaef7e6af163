"""Snapshot tests: what the lookup and the order card look like, at 80×24 and 120×40, in Chinese.

Fixed seed, fixed clock (the header clock and every countdown), blink off, workers awaited.
Update with ``pytest tests/snapshots --snapshot-update`` after looking at the new pictures.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.models import Order, Parcel
from db.store import Store
from tests.appkit import app_on
from widgets.i18n import set_language

SIZES = [(80, 24), (120, 40)]


@pytest.fixture(autouse=True)
def chinese():
    set_language("zh")


async def _pick(path: Path, kind: str) -> int:
    store = await Store.open(path)
    o, p = Order.__table__.c, Parcel.__table__.c
    try:
        async with store.engine.connect() as conn:
            if kind == "split":
                query = (
                    select(p.order_id)
                    .group_by(p.order_id)
                    .having(func.count() >= 2)
                    .order_by(p.order_id.desc())
                )
            else:
                query = select(o.id).where(o.status == kind).order_by(o.id.desc())
            return (await conn.execute(query.limit(1))).scalar_one()
    finally:
        await store.close()


async def _settle(pilot) -> None:  # noqa: ANN001
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_lookup_with_results(snap_compare, demo_db: Path, size: tuple[int, int]) -> None:  # noqa: ANN001
    async def type_name(pilot) -> None:  # noqa: ANN001
        await pilot.press("王")
        await _settle(pilot)

    assert snap_compare(app_on(demo_db), terminal_size=size, run_before=type_name)


@pytest.mark.parametrize("kind", ["split", "hold"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_order_card(snap_compare, demo_db: Path, size: tuple[int, int], kind: str) -> None:  # noqa: ANN001
    order_id = asyncio.run(_pick(demo_db, kind))

    async def open_card(pilot) -> None:  # noqa: ANN001
        pilot.app.open_order(order_id)
        await _settle(pilot)
        await _settle(pilot)

    assert snap_compare(app_on(demo_db), terminal_size=size, run_before=open_card)


async def _seed_connectors(path: Path) -> None:
    """Connector health as a busy morning leaves it: one fine, one failing, one heard of only
    through its quarantine. Times are fixed against the demo's clock."""
    from datetime import timedelta

    from sqlalchemy import update

    from db.ingest import CursorUpdate, QuarantineItem, cursor_record_error, ingest
    from db.models import SyncCursor
    from db.views import Actor
    from deskapp.services.demo import DEMO_NOW

    store = await Store.open(path)
    cursors = SyncCursor.__table__
    try:
        for connector, minutes in (("taobao:shop1", 2), ("pdd:shop1", 25), ("douyin:shop2", 1)):
            await ingest(store, [], actor=Actor("connector", connector), at=DEMO_NOW - timedelta(minutes=minutes),
                         cursor=CursorUpdate(connector, DEMO_NOW - timedelta(minutes=minutes + 3)))
        for minutes in (9, 6, 3):
            await cursor_record_error(store, "pdd:shop1", "平台返回 503（服务繁忙），重试 5 次后放弃；下次轮询重读这个时间窗",
                                      at=DEMO_NOW - timedelta(minutes=minutes))
        async with store.write() as conn:
            for connector, new, updated in (("taobao:shop1", 128, 311), ("pdd:shop1", 57, 96), ("douyin:shop2", 12, 4)):
                await conn.execute(update(cursors).where(cursors.c.connector == connector)
                                   .values(day_new=new, day_updated=updated))
        items = [
            QuarantineItem("pdd:shop1", "pdd", "shop1", {"order_sn": f"2611200{i}", "order_status": 9},
                           "未知的平台状态「9」：请在 deskapp.toml 的 status_map 中说明它对应哪个标准状态",
                           "unknown_status", external_id=f"261120-0000000{i}")
            for i in range(3)
        ]
        items.append(QuarantineItem("jd:shop1", "jd", "shop1", {"orderId": "3012"}, "缺少收货地址", "missing_field",
                                    external_id="3012"))
        await ingest(store, [], actor=Actor("connector", "pdd:shop1"), at=DEMO_NOW - timedelta(minutes=40),
                     quarantined=items)
    finally:
        await store.close()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_connectors_screen(snap_compare, demo_db: Path, size: tuple[int, int]) -> None:  # noqa: ANN001
    asyncio.run(_seed_connectors(demo_db))

    async def open_connectors(pilot) -> None:  # noqa: ANN001
        await pilot.press("f4")
        await _settle(pilot)
        await pilot.press("down")  # the failing one: its last error below the table
        await _settle(pilot)

    assert snap_compare(app_on(demo_db), terminal_size=size, run_before=open_connectors)
