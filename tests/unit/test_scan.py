"""Scan-to-confirm: every step in order, recorded under the operator with its start and end; a
wrong scan changes nothing at all.

Every test that takes ``store`` runs on SQLite and on PostgreSQL (see conftest).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, update

from db.codes import ActorKind
from db.ingest import ingest
from db.models import Order, Parcel, TimelineEvent
from db.store import NewLine, NewOrder, Store
from db.views import Actor
from deskapp.services.scan import REFUSALS, Step, advance, normalise_code
from widgets.i18n import set_language

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
SYNC = Actor(ActorKind.CONNECTOR, "taobao:tb1")
PICKER = Actor(ActorKind.OPERATOR, "zhaolei")
PACKER = Actor(ActorKind.OPERATOR, "sunpeng")


@pytest.fixture(autouse=True)
def chinese():
    set_language("zh")


async def add(store: Store, no: str, **fields) -> int:
    # the scanners are warehouse staff, who may confirm warehouse steps (db.roles)
    await store.ensure_operator("zhaolei", "赵磊", role="warehouse")
    await store.ensure_operator("sunpeng", "孙鹏", role="warehouse")
    created = T0 - timedelta(hours=3)
    fields.setdefault("paid_at", created + timedelta(minutes=2))
    await ingest(store, [NewOrder("taobao", "tb1", f"TB{no}", created, order_no=no, modified_at=created,
                                  lines=[NewLine("SKU-1", "杯子", 1, 1990)], receiver_name="张三", **fields)],
                 actor=SYNC, at=created)
    async with store.engine.connect() as conn:
        return (await conn.execute(select(Order.__table__.c.id).where(Order.__table__.c.order_no == no))).scalar_one()


async def parcel(store: Store, order_id: int, waybill: str | None, *, printed: bool = True) -> None:
    async with store.write() as conn:
        await conn.execute(insert(Parcel.__table__).values(
            order_id=order_id, warehouse="杭州仓", carrier="SF" if waybill else "", waybill_no=waybill,
            state="printed" if printed else "pending", printed_at=T0 - timedelta(hours=1) if printed else None))


async def everything(store: Store) -> tuple:
    """All orders, parcels and the number of timeline events: what a refused scan must not change."""
    async with store.engine.connect() as conn:
        orders = (await conn.execute(select(Order.__table__).order_by(Order.__table__.c.id))).all()
        parcels = (await conn.execute(select(Parcel.__table__).order_by(Parcel.__table__.c.id))).all()
        events = (await conn.execute(select(func.count()).select_from(TimelineEvent.__table__))).scalar_one()
    return [tuple(r) for r in orders], [tuple(r) for r in parcels], events


async def steps(store: Store, order_id: int) -> list[tuple]:
    t = TimelineEvent.__table__.c
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(t.kind, t.actor_kind, t.actor_id, t.from_value, t.to_value, t.message, t.detail)
            .where(t.order_id == order_id, t.kind.in_(["allocate", "pick", "pack", "ship"])).order_by(t.id))
        return [tuple(r) for r in rows]


async def test_four_scans_move_a_paid_order_through_every_step_with_who_and_how_long(store: Store) -> None:
    order_id = await add(store, "880001")
    await parcel(store, order_id, "SF1234567890")
    paid = T0 - timedelta(hours=3) + timedelta(minutes=2)
    times = [T0, T0 + timedelta(minutes=12), T0 + timedelta(minutes=15), T0 + timedelta(minutes=40)]
    actors = [PICKER, PICKER, PACKER, PACKER]
    codes = ["880001", "８８０００１", "SF1234567890", "sf1234567890"]  # full-width from an IME; a lower-case waybill

    results = [await advance(store, code, actor, at=at) for code, actor, at in zip(codes, actors, times, strict=True)]

    assert [r.ok for r in results] == [True] * 4
    assert [r.step for r in results] == [Step.ALLOCATE, Step.PICK, Step.PACK, Step.SHIP]
    assert [r.next_step for r in results] == [Step.PICK, Step.PACK, Step.SHIP, None]
    assert [r.seconds for r in results] == [(T0 - paid).total_seconds(), 720, 180, 1500]
    events = await steps(store, order_id)
    assert [(e[0], e[1], e[2], e[3], e[4]) for e in events] == [
        ("allocate", "operator", "zhaolei", "paid", "allocating"),
        ("pick", "operator", "zhaolei", "allocating", "picked"),
        ("pack", "operator", "sunpeng", "picked", "packed"),
        ("ship", "operator", "sunpeng", "packed", "shipped"),
    ]
    pick, pack, ship = events[1][6], events[2][6], events[3][6]
    assert pick["started_at"] == T0.isoformat() and pick["ended_at"] == times[1].isoformat()
    assert pick["seconds"] == 720 and pick["started_by"] == "zhaolei" and pick["source"] == "scan"
    assert pack["started_by"] == "zhaolei" and pack["seconds"] == 180
    assert ship["scanned"] == "SF1234567890" and ship["seconds"] == 1500
    assert "拣货完成" in events[1][5] and "SF1234567890" in events[3][5]
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(Order.__table__).where(Order.__table__.c.id == order_id))).first()
        shipped = (await conn.execute(select(Parcel.__table__.c.state, Parcel.__table__.c.shipped_at)
                                      .where(Parcel.__table__.c.order_id == order_id))).all()
    assert row.status == "shipped" and row.wh_step is None
    assert [s for s, _ in shipped] == ["shipped"] and shipped[0][1] is not None

    again = await advance(store, "880001", PACKER, at=times[3] + timedelta(minutes=1))
    assert not again.ok and again.code == "shipped"


async def test_an_order_the_channel_put_in_allocation_starts_at_picking(store: Store) -> None:
    order_id = await add(store, "880002", status="allocating")
    result = await advance(store, "880002", PICKER, at=T0)
    assert result.ok and result.step is Step.PICK and result.before == "allocating"
    [event] = await steps(store, order_id)
    assert event[6]["started_at"] == (T0 - timedelta(hours=3)).isoformat()  # when ingest said 配货中


@pytest.mark.parametrize(
    ("code", "fields", "setup", "station"),
    [
        ("unknown", {}, None, None),
        ("held", {"status": "hold", "hold_reason": "地址有误"}, None, None),
        ("cancelled", {"status": "cancelled"}, None, None),
        ("shipped", {"status": "in_transit"}, None, None),
        ("unpaid", {"status": "pending_payment", "paid_at": None}, None, None),
        ("review", {"status": "review"}, None, None),
        ("refund", {"status": "allocating", "after_sale": "refund_requested"}, None, None),
        ("wrong_step", {"status": "allocating"}, None, Step.PACK),
        ("no_waybill", {"status": "allocating"}, {"wh_step": "packed"}, None),
    ],
)
async def test_a_wrong_scan_is_refused_and_changes_nothing(store: Store, code: str, fields: dict, setup: dict | None,
                                                           station: Step | None) -> None:
    order_id = await add(store, "880003", **fields)
    if setup:
        async with store.write() as conn:
            await conn.execute(update(Order.__table__).where(Order.__table__.c.id == order_id).values(**setup))
    before = await everything(store)

    result = await advance(store, "999999" if code == "unknown" else "880003", PICKER, station=station, at=T0)

    assert not result.ok and result.code == code and code in REFUSALS
    assert await everything(store) == before
    message = result.message()
    assert message.startswith("✗") and ("880003" in message or "999999" in message)


async def test_refusals_say_what_to_do(store: Store) -> None:
    await add(store, "880004", status="hold", hold_reason="地址冲突")
    held = await advance(store, "880004", PICKER, at=T0)
    assert "地址冲突" in held.message() and "不要发货" in held.message()
    await add(store, "880005", status="review")
    assert "审核" in (await advance(store, "880005", PICKER, at=T0)).message()
    await add(store, "880006", status="allocating")
    wrong = await advance(store, "880006", PICKER, station=Step.SHIP, at=T0)
    assert "拣货" in wrong.message() and "出库" in wrong.message()
    set_language("en")
    assert "do not ship" in held.message()


async def test_a_number_shared_by_two_orders_asks_for_the_waybill(store: Store) -> None:
    first = await add(store, "880007")
    await ingest(store, [NewOrder("pdd", "pdd1", "P1", T0 - timedelta(hours=2), order_no="880007",
                                  paid_at=T0 - timedelta(hours=2), lines=[NewLine("SKU-1", "杯", 1, 100)])],
                 actor=SYNC, at=T0)
    before = await everything(store)
    result = await advance(store, "880007", PICKER, at=T0)
    assert not result.ok and result.code == "ambiguous" and result.detail == "2"
    assert await everything(store) == before
    await parcel(store, first, "YT0001")
    assert (await advance(store, "YT0001", PICKER, at=T0)).ok


def test_scanned_codes_are_folded_and_trimmed() -> None:
    assert normalise_code(" ＳＦ１２３\t") == "SF123"
    assert normalise_code("12 34\x1b[31m") == "1234"  # a terminal escape is not part of a code
    assert normalise_code("") == ""
