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
