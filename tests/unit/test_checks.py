"""Order checks: bad orders are held before the warehouse sees them, good ones pass untouched.

``check_order`` is pure; the Checker tests run on SQLite and PostgreSQL through the real pool.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from db import checks as pool
from db.codes import ActorKind
from db.ingest import ingest
from db.store import NewLine, NewOrder, Store
from db.views import Actor
from deskapp.services.checker import Checker
from deskapp.services.checks import CheckContext, LineFacts, OrderFacts, check_order

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
SYNC = Actor(ActorKind.CONNECTOR, "taobao:tb1")
ALICE = Actor(ActorKind.OPERATOR, "alice")

GOOD = OrderFacts(
    order_no="T1", receiver_name="张三", receiver_phone="13812345678", province="浙江省", city="杭州市",
    district="西湖区", address_detail="文三路100号", total_fen=12900, paid_fen=12900,
    lines=(LineFacts("SKU-1", "连衣裙", 1, 12900),),
)


def codes(order: OrderFacts, context: CheckContext | None = None) -> dict[str, str]:
    return {p.code: p.severity for p in check_order(order, context)}


def test_a_good_order_has_no_problem() -> None:
    assert check_order(GOOD) == []
    # masked receiver data is delivered that way by the platform: never judged
    masked = dataclasses.replace(GOOD, receiver_name="张*", receiver_phone="138****5678",
                                 address_detail="文三路****")
    assert check_order(masked) == []


def test_a_district_of_another_city_blocks_with_the_fix() -> None:
    (problem,) = check_order(dataclasses.replace(GOOD, city="宁波市"))
    assert (problem.code, problem.severity) == ("address_conflict", "block")
    assert "杭州市" in problem.message


def test_phone_problems() -> None:
    assert codes(dataclasses.replace(GOOD, receiver_phone="1381234567")) == {"phone_invalid": "block"}
    assert codes(dataclasses.replace(GOOD, receiver_phone="0574-88886666")) == {"phone_area_mismatch": "warn"}
    assert codes(dataclasses.replace(GOOD, receiver_phone="13812345678-1234")) == {}  # virtual: not judged


def test_test_orders_and_amounts() -> None:
    assert codes(dataclasses.replace(GOOD, buyer_note="测试单，勿发")) == {"test_order": "block"}
    assert codes(dataclasses.replace(GOOD, paid_fen=1, total_fen=1,
                                     lines=(LineFacts("SKU-1", "连衣裙", 1, 1),))) == {"test_order": "block"}
    assert codes(dataclasses.replace(GOOD, lines=(LineFacts("TEST-001", "x", 1, 100),))) == {"test_order": "block"}
    assert codes(dataclasses.replace(GOOD, total_fen=-500)) == {"amount_negative": "block"}
    usual = CheckContext(usual_price={"SKU-1": (3000, 40)})
    pricey = dataclasses.replace(GOOD, lines=(LineFacts("SKU-1", "连衣裙", 1, 99900),))
    assert codes(pricey, usual) == {"amount_unusual": "warn"}
    assert codes(pricey, CheckContext(usual_price={"SKU-1": (3000, 2)})) == {}  # too little history to judge
    assert codes(GOOD, usual) == {}  # a 129-yuan dress is not far above its usual 30 yuan × 5


def test_missing_duplicate_presale_carrier() -> None:
    assert codes(dataclasses.replace(GOOD, receiver_name="", address_detail=""))["missing_field"] == "block"
    assert codes(dataclasses.replace(GOOD, lines=())) == {"missing_field": "block"}
    assert codes(dataclasses.replace(GOOD, tags=("疑似重复",))) == {"duplicate": "block"}
    assert codes(dataclasses.replace(GOOD, presale=True)) == {"presale_no_date": "warn"}
    assert codes(dataclasses.replace(GOOD, presale=True, presale_ship_at=T0)) == {}
    remote = CheckContext(not_served={"韵达": frozenset({"西藏自治区"})})
    tibet = dataclasses.replace(GOOD, carrier="韵达", province="西藏自治区", city="拉萨市", district="城关区",
                                receiver_phone="13912345678")
    assert codes(tibet, remote) == {"carrier_region": "block"}
    assert codes(dataclasses.replace(tibet, carrier="顺丰"), remote) == {}


# -- through the pool ------------------------------------------------------------------------------


def new(no: str, **fields) -> NewOrder:
    phone = f"138{sum(map(ord, no)) % 10**8:08d}"  # one buyer each: not probable duplicates of each other
    values = dict(receiver_name="张三", receiver_phone=phone, province="浙江省", city="杭州市",
                  district="西湖区", address_detail="文三路100号", total_fen=12900, paid_fen=12900,
                  raw_status="WAIT_SELLER_SEND_GOODS", paid_at=T0, modified_at=T0,
                  lines=[NewLine("SKU-1", "连衣裙", 1, 12900)])
    values.update(fields)
    return NewOrder("taobao", "tb1", no, T0, **values)


async def state(store: Store, no: str) -> tuple[str, str | None, list]:
    async with store.engine.connect() as conn:
        row = (await conn.execute(text("SELECT status, hold_reason, id FROM orders WHERE order_no = :n"),
                                  {"n": no})).one()
        events = (await conn.execute(text(
            "SELECT kind, actor_kind, actor_id, from_value, to_value FROM timeline_event "
            "WHERE order_id = :i ORDER BY id"), {"i": row[2]})).all()
    return row[0], row[1], [tuple(e) for e in events]


async def test_the_checker_holds_bad_orders_and_leaves_good_ones(store: Store) -> None:
    await ingest(store, [new("OK1"), new("BAD1", city="宁波市"), new("TEST1", seller_memo="测试 勿发"),
                         new("GONE", raw_status="WAIT_BUYER_CONFIRM_GOODS", status="shipped", city="宁波市")],
                 actor=SYNC, at=T0)
    report = await Checker(store).run_once()
    assert (report.checked, report.held) == (4, 2)

    status, reason, events = await state(store, "OK1")
    assert (status, reason) == ("paid", None) and [e[0] for e in events] == ["created"]
    status, reason, events = await state(store, "BAD1")
    assert status == "hold" and "西湖区属于杭州市" in reason
    assert events[-1] == ("held", "rule", "checks", "paid", "hold")
    assert (await state(store, "TEST1"))[0] == "hold"
    # already shipped: the problem is recorded, the order is not pulled back
    status, _, events = await state(store, "GONE")
    assert status == "shipped" and [e[0] for e in events] == ["created", "check"]

    assert (await Checker(store).run_once()).checked == 0  # nothing waits any more
    assert (await pool.interceptions(store))[0] == 2  # held today (the checks ran now)
    assert (await pool.interceptions(store, T0))[1] == 4  # created on T0's day
    assert sorted(h.order_no for h in await pool.held_orders(store)) == ["BAD1", "TEST1"]
    assert {h.order_no: h.codes for h in await pool.held_orders(store)}["BAD1"] == ("address_conflict",)


async def test_a_changed_order_is_checked_again(store: Store) -> None:
    await ingest(store, [new("A1")], actor=SYNC, at=T0)
    assert (await Checker(store).run_once()).held == 0
    later = T0 + timedelta(minutes=5)
    await ingest(store, [new("A1", city="宁波市", modified_at=later)], actor=SYNC, at=later)
    assert (await Checker(store).run_once()).held == 1
    assert (await state(store, "A1"))[0] == "hold"


async def test_release_and_cancel_are_a_persons_decision_on_record(store: Store) -> None:
    # R1 is held by a blocking check: releasing it as it is overrides the check (a supervisor's call).
    await store.ensure_operator("alice", "王小丽", role="supervisor")
    await ingest(store, [new("R1", city="宁波市"), new("C1", buyer_note="测试")], actor=SYNC, at=T0)
    await Checker(store).run_once()
    r1 = (await state(store, "R1"))
    order_id = (await pool.held_orders(store))[0].id
    assert await pool.release(store, order_id, "客户确认地址无误", ALICE) == "paid"
    status, reason, events = await state(store, "R1")
    assert (status, reason) == ("paid", None)
    assert events[-1] == ("released", "operator", "alice", "hold", "paid")
    assert r1[0] == "hold"

    (c1,) = await pool.held_orders(store)
    await pool.cancel(store, c1.id, "测试单", ALICE)
    status, _, events = await state(store, "C1")
    assert status == "cancelled" and events[-1] == ("status", "operator", "alice", "hold", "cancelled")


async def test_a_result_for_an_order_changed_meanwhile_is_dropped(store: Store) -> None:
    await ingest(store, [new("M1", city="宁波市")], actor=SYNC, at=T0)
    (row,) = await pool.pending(store)
    later = T0 + timedelta(minutes=1)
    await ingest(store, [new("M1", modified_at=later)], actor=SYNC, at=later)  # fixed by the channel
    checker = Checker(store)
    assert (await checker.check([row])).checked == 0  # the stale verdict is not recorded
    assert (await checker.run_once()).held == 0  # the fresh one finds nothing wrong
    assert (await state(store, "M1"))[0] == "paid"
