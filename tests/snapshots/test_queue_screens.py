"""Snapshot tests: the warehouse queue and board at 80×24 and 160×48, in Chinese.

The demo database plus a morning's fresh orders (S/A/B/C, tags, picked and packed, printed and
not, overdue and not), the documented example rules file, the demo's fixed clock, blink off, and
every worker (rules recompute, queue read) awaited before the picture.
Update with ``pytest tests/snapshots --snapshot-update`` after looking at the new pictures.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from db.codes import ActorKind
from db.ingest import ingest
from db.models import Customer, Order, Parcel
from db.store import NewLine, NewOrder, Store
from db.views import Actor
from deskapp.services.demo import DEMO_NOW
from tests.appkit import app_on
from widgets.i18n import set_language

SIZES = [(80, 24), (160, 48)]
RULES = Path(__file__).resolve().parents[2] / "deskapp.rules.example.toml"


@pytest.fixture(autouse=True)
def chinese():
    set_language("zh")


def _order(channel: str, shop: str, no: str, paid_hours_ago: float, **fields) -> NewOrder:
    paid = DEMO_NOW - timedelta(hours=paid_hours_ago)
    fields.setdefault("lines", [NewLine("SKU-1001", "保温杯", 1, 9900)])
    return NewOrder(channel, shop, no, paid - timedelta(minutes=3), order_no=no, paid_at=paid, modified_at=paid,
                    receiver_name=fields.pop("receiver", "王小明"), province="浙江省", city="杭州市", district="西湖区",
                    address_detail=f"文三路{no[-2:]}号", **fields)


async def _seed(path: Path) -> None:
    orders = [
        _order("pdd", "pdd1", "261120-880100000001", 20, total_fen=680_000, receiver_phone="13900001111",
               receiver="陈VIP"),
        _order("taobao", "tb1", "3880200000000000002", 44.5, buyer_note="加急，明天要用", total_fen=12_900),
        _order("douyin", "dy1", "6900000000000000003", 10, ship_by=DEMO_NOW + timedelta(hours=1, minutes=30),
               lines=[NewLine("FRESH-APPLE", "苹果 5 斤", 1, 5990)], total_fen=5_990),
        _order("douyin", "dy1", "6900000000000000004", 30, ship_by=DEMO_NOW - timedelta(minutes=35),
               tags=["直播"], total_fen=250_000),
        _order("miniapp", "mp1", "WX20261120000000005", 8, status="allocating", total_fen=39_900),
        _order("taobao", "tb1", "3880200000000000006", 3, presale=True, total_fen=19_900),
        _order("pdd", "pdd1", "261120-880100000007", 47.5, status="allocating", total_fen=8_800),
        _order("taobao", "tb-flagship", "3880200000000000008", 23, total_fen=29_900, tags=["[b]x[/b]"]),
    ]
    store = await Store.open(path)
    o = Order.__table__.c
    try:
        await ingest(store, orders, actor=Actor(ActorKind.CONNECTOR, "seed"), at=DEMO_NOW - timedelta(hours=1))
        async with store.write() as conn:
            ids = dict((await conn.execute(select(o.order_no, o.id).where(o.order_no.in_([x.order_no for x in orders])))).all())
            vip = (await conn.execute(select(o.customer_id).where(o.id == ids["261120-880100000001"]))).scalar_one()
            await conn.execute(update(Customer.__table__).where(Customer.__table__.c.id == vip).values(vip_level="A"))
            await conn.execute(update(Order.__table__).where(o.id == ids["6900000000000000004"]).values(is_live=True))
            await conn.execute(update(Order.__table__).where(o.id == ids["WX20261120000000005"]).values(wh_step="picked"))
            await conn.execute(update(Order.__table__).where(o.id == ids["261120-880100000007"]).values(wh_step="packed"))
            await conn.execute(update(Order.__table__).where(o.id == ids["3880200000000000006"])
                               .values(presale_ship_at=DEMO_NOW + timedelta(days=4)))
            for no, house, waybill in (("261120-880100000001", "杭州仓", None), ("6900000000000000003", "广州仓", None),
                                       ("6900000000000000004", "广州仓", None),
                                       ("WX20261120000000005", "武汉仓", "YT7000000005"),
                                       ("261120-880100000007", "杭州仓", "SF1400000007")):
                await conn.execute(insert(Parcel.__table__).values(
                    order_id=ids[no], warehouse=house, carrier="SF" if waybill else "", waybill_no=waybill,
                    state="printed" if waybill else "pending",
                    printed_at=DEMO_NOW - timedelta(hours=1) if waybill else None))
    finally:
        await store.close()


async def _settle(pilot) -> None:
    """Until the rules have been applied and the queue read after them."""
    app = pilot.app
    for _ in range(200):
        await app.workers.wait_for_complete()
        await pilot.pause()
        runner = getattr(app, "queue_runner", None)
        screen = app.screen
        if (runner is not None and runner.service.last is not None and not runner._busy
                and getattr(screen, "loaded", False) and not app.workers._workers):
            break
    await app.workers.wait_for_complete()
    await pilot.pause()


def _app(path: Path):
    asyncio.run(_seed(path))
    app = app_on(path)
    app.settings.rules = str(RULES)
    return app


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_queue(snap_compare, demo_db: Path, size: tuple[int, int]) -> None:
    async def open_queue(pilot) -> None:
        await pilot.press("f5")
        await _settle(pilot)

    assert snap_compare(_app(demo_db), terminal_size=size, run_before=open_queue)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_board(snap_compare, demo_db: Path, size: tuple[int, int]) -> None:
    async def open_board(pilot) -> None:
        await pilot.press("f5")
        await _settle(pilot)
        await pilot.press("f5")
        await _settle(pilot)

    assert snap_compare(_app(demo_db), terminal_size=size, run_before=open_board)
