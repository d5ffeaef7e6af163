"""save_address: an agent's address correction, written as ingest writes one and put on record."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from db.checks import held_orders
from db.codes import ActorKind
from db.edits import AddressChanged, AddressFields, NotEditable, save_address
from db.ingest import ingest
from db.privacy import FIELDS
from db.store import NewLine, NewOrder, Store
from db.views import Actor
from deskapp.services.checker import Checker

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
SYNC = Actor(ActorKind.CONNECTOR, "taobao:tb1")
ALICE = Actor(ActorKind.OPERATOR, "alice")


@pytest.fixture(autouse=True)
async def alice(store: Store) -> None:
    """Alice works in customer service: she may correct addresses (db.roles)."""
    await store.ensure_operator("alice", "王小丽", role="cs")


def new(no: str, **fields) -> NewOrder:
    values = {"receiver_name": "张三", "receiver_phone": f"138{sum(map(ord, no)) % 10**8:08d}", "province": "浙江省",
              "city": "杭州市", "district": "西湖区", "address_detail": "文三路100号", "total_fen": 12900, "paid_fen": 12900,
              "raw_status": "WAIT_SELLER_SEND_GOODS", "paid_at": T0, "modified_at": T0,
              "lines": [NewLine("SKU-1", "连衣裙", 1, 12900)]}
    values.update(fields)
    return NewOrder("taobao", "tb1", no, T0, **values)


async def _add(store: Store, *orders: NewOrder) -> list[int]:
    result = await ingest(store, list(orders), actor=SYNC, at=T0)
    await Checker(store).run_once()
    return result.changed_ids


async def _row(store: Store, order_id: int) -> dict:
    async with store.engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT status, hold_reason, receiver_name, receiver_phone, city, phone_kind, phone_norm, phone_tail4, "
            "search_text, checked_at FROM orders WHERE id = :i"), {"i": order_id})).one()
    return dict(row._mapping)


async def _events(store: Store, order_id: int) -> list[tuple]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT kind, actor_kind, actor_id, from_value, to_value, message FROM timeline_event "
            "WHERE order_id = :i ORDER BY id"), {"i": order_id})).all()
    return [tuple(r) for r in rows]


async def _grams(store: Store, order_id: int) -> set[str]:
    async with store.engine.connect() as conn:
        return {r[0] for r in await conn.execute(text("SELECT gram FROM name_gram WHERE order_id = :i"),
                                                 {"i": order_id})}


def fields(**changes: str) -> AddressFields:
    base = AddressFields("张三", "13800000001", "浙江省", "杭州市", "西湖区", "文三路100号")
    return dataclasses.replace(base, **changes)


async def test_a_corrected_address_is_written_with_its_derived_columns_and_on_record(store: Store) -> None:
    (order_id,) = await _add(store, new("E1", city="宁波市"))
    old = AddressFields.of(await store.order_card(order_id, reveal=FIELDS))
    saved = await save_address(store, order_id, dataclasses.replace(old, city="杭州市", receiver_name="张三丰",
                                                                     receiver_phone="0571-88886666"),
                               ALICE, expected=old, clean=True, at=T0 + timedelta(hours=1))
    assert saved.changed == ("receiver_name", "receiver_phone", "city")
    assert (saved.released, saved.status) == (True, "paid")
    row = await _row(store, order_id)
    assert (row["city"], row["status"], row["hold_reason"], row["checked_at"]) == ("杭州市", "paid", None, None)
    assert (row["phone_kind"], row["phone_norm"], row["phone_tail4"]) == ("plain", "057188886666", "6666")
    assert row["search_text"] == "张三丰 浙江省杭州市西湖区文三路100号"
    assert await _grams(store, order_id) == {"张三", "三丰"}
    assert [hit.id for hit in await store.find_orders("张三丰")] == [order_id]  # the search index followed
    *_, address, released = await _events(store, order_id)
    assert address[:3] == ("address", "operator", "alice")
    assert "宁波市" in address[3] and "杭州市" in address[4] and address[4].startswith("张三丰 0571-88886666")
    assert released == ("released", "operator", "alice", "hold", "paid", "地址已更正")
    assert await held_orders(store) == []


async def test_a_hold_for_another_reason_stays(store: Store) -> None:
    (order_id,) = await _add(store, new("E2", city="宁波市", buyer_note="测试 勿发"))
    old = AddressFields.of(await store.order_card(order_id, reveal=FIELDS))
    saved = await save_address(store, order_id, dataclasses.replace(old, city="杭州市"), ALICE, clean=True)
    assert (saved.changed, saved.released, saved.status) == (("city",), False, "hold")
    assert (await _row(store, order_id))["status"] == "hold"  # the test-order hold is a person's to release


async def test_a_person_set_hold_is_not_released_by_an_address_edit(store: Store) -> None:
    (order_id,) = await _add(store, new("E3", status="hold", hold_reason="客户要求暂缓发货"))
    saved = await save_address(store, order_id, fields(address_detail="文三路200号"), ALICE, clean=True)
    assert saved.released is False and (await _row(store, order_id))["status"] == "hold"


async def test_not_clean_means_not_released(store: Store) -> None:
    (order_id,) = await _add(store, new("E4", city="宁波市"))
    saved = await save_address(store, order_id, fields(address_detail="文三路200号", city="宁波市"), ALICE)
    assert saved.released is False and saved.status == "hold"


async def test_nothing_changed_writes_nothing(store: Store) -> None:
    (order_id,) = await _add(store, new("E5"))
    before = await _events(store, order_id)
    saved = await save_address(store, order_id, AddressFields.of(await store.order_card(order_id, reveal=FIELDS)), ALICE)
    assert saved.changed == () and await _events(store, order_id) == before


async def test_an_address_changed_meanwhile_is_not_overwritten(store: Store) -> None:
    (order_id,) = await _add(store, new("E6"))
    shown = AddressFields.of(await store.order_card(order_id, reveal=FIELDS))
    later = T0 + timedelta(minutes=5)
    await ingest(store, [new("E6", address_detail="文三路300号", modified_at=later)], actor=SYNC, at=later)
    with pytest.raises(AddressChanged):
        await save_address(store, order_id, dataclasses.replace(shown, address_detail="文三路200号"), ALICE,
                           expected=shown)
    assert (await store.order_card(order_id, reveal=FIELDS)).address_detail == "文三路300号"


async def test_a_shipped_order_keeps_its_address(store: Store) -> None:
    (order_id,) = await _add(store, new("E7", status="shipped", raw_status="WAIT_BUYER_CONFIRM_GOODS"))
    with pytest.raises(NotEditable):
        await save_address(store, order_id, fields(address_detail="文三路200号"), ALICE)


async def test_controls_are_cleaned_from_what_is_saved(store: Store) -> None:
    (order_id,) = await _add(store, new("E8"))
    await save_address(store, order_id, fields(address_detail=" 文三路\x1b]52;c;aGk=\x07200号 "), ALICE)
    assert (await store.order_card(order_id, reveal=FIELDS)).address_detail == "文三路200号"
