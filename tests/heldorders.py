"""Orders the checks hold (and some they only warn about), added to a demo database for app tests.

The demo's own holds carry no check codes (其他); these come through ingest and the real Checker,
at fixed times against the demo's clock, so screens and snapshots show the same thing every run.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from db import checks as pool
from db.ingest import ingest
from db.store import NewLine, NewOrder, Store
from db.views import Actor
from deskapp.services.checker import Checker
from deskapp.services.demo import DEMO_NOW

SYNC = Actor("connector", "taobao:tb9")
ARRIVED = DEMO_NOW - timedelta(hours=1)
CHECKED = DEMO_NOW - timedelta(minutes=40)


def new_order(no: str, **fields) -> NewOrder:
    """A paid Taobao order to 浙江省杭州市西湖区 unless ``fields`` say otherwise."""
    values = {"receiver_name": "张三", "receiver_phone": "13812345678", "province": "浙江省", "city": "杭州市",
              "district": "西湖区", "address_detail": "文三路100号", "total_fen": 12900, "paid_fen": 12900,
              "raw_status": "WAIT_SELLER_SEND_GOODS", "paid_at": DEMO_NOW - timedelta(hours=2),
              "modified_at": DEMO_NOW - timedelta(hours=2), "lines": [NewLine("SKU-1", "连衣裙", 1, 12900)]}
    values.update(fields)
    return NewOrder("taobao", "tb9", no, DEMO_NOW - timedelta(hours=2), **values)


#: order no. → what is wrong with it (and what the checks do about it).
ORDERS = {
    "T-CONFLICT-1": {"city": "宁波市"},  # 西湖区 is in 杭州市: held
    "T-CONFLICT-2": {"city": "宁波市", "receiver_name": "李四", "receiver_phone": "13912345678"},  # held
    "T-TEST-1": {"buyer_note": "测试单 勿发", "receiver_name": "王五", "receiver_phone": "13712345678"},  # held
    "T-LEGACY-1": {"province": "上海市", "city": "上海市", "district": "闸北区", "address_detail": "共和新路1号",
                   "receiver_phone": "13612345678"},  # 闸北区 is 静安区 now: a warning only
    "T-AMBIG-1": {"province": "", "city": "", "district": "朝阳区", "address_detail": "建国路88号",
                  "receiver_phone": "13512345678"},  # 北京 or 长春: a warning only
}


async def add_held_orders(path: Path) -> dict[str, int]:
    """Add :data:`ORDERS` and run the order checks on them; order no. → id."""
    store = await Store.open(path)
    try:
        result = await ingest(store, [new_order(no, **f) for no, f in ORDERS.items()], actor=SYNC, at=ARRIVED)
        await Checker(store).check(await pool.rows(store, result.changed_ids), at=CHECKED)
        async with store.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT order_no, id FROM orders WHERE shop_id IN "
                                            "(SELECT id FROM shop WHERE code = 'tb9')"))).all()
        return {no: order_id for no, order_id in rows}
    finally:
        await store.close()


async def order_state(path: Path, order_id: int) -> tuple[dict, list[tuple]]:
    """The order's status and address columns, and its timeline (kind, actor kind, actor, from, to, message)."""
    store = await Store.open(path)
    try:
        async with store.engine.connect() as conn:
            row = (await conn.execute(text(
                "SELECT status, hold_reason, receiver_name, receiver_phone, province, city, district, address_detail, "
                "checked_at, phone_tail4, search_text FROM orders WHERE id = :i"), {"i": order_id})).one()
            events = (await conn.execute(text(
                "SELECT kind, actor_kind, actor_id, from_value, to_value, message FROM timeline_event "
                "WHERE order_id = :i ORDER BY id"), {"i": order_id})).all()
    finally:
        await store.close()
    return dict(row._mapping), [tuple(e) for e in events]
