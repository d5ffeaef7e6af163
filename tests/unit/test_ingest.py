"""Ingest into the pool: exactly once, never backwards, desk decisions kept, nothing lost.

Every test that takes ``store`` runs on SQLite and on PostgreSQL (see conftest).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update

from db.codes import ActorKind
from db.engine import make_engine
from db.ingest import (
    DUPLICATE_TAG,
    CursorUpdate,
    QuarantineItem,
    connector_statuses,
    cursor_get,
    cursor_record_error,
    ingest,
    lease_acquire,
    lease_holder,
    lease_release,
    quarantine_discard,
    quarantine_list,
    quarantine_mark_retried,
    status_decision,
)
from db.migrate import downgrade, upgrade
from db.models import Order, OrderLine, Parcel, QuarantineEntry, TimelineEvent
from db.privacy import FIELDS
from db.store import NewLine, NewOrder, NewParcel, Store
from db.views import Actor

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
KEY = "taobao:tb1"
SYNC = Actor(ActorKind.CONNECTOR, KEY)
ALICE = Actor(ActorKind.OPERATOR, "alice")


def order(no: str, *, minute: int = 0, modified: int | None = None, **fields) -> NewOrder:
    fields.setdefault("lines", [NewLine("SKU-A", "杯子", 1, 1990)])
    return NewOrder(
        "taobao", "tb1", no, T0 + timedelta(minutes=minute),
        modified_at=T0 + timedelta(minutes=modified if modified is not None else minute),
        raw_status=fields.pop("raw_status", "WAIT_SELLER_SEND_GOODS"), **fields,
    )


async def counts(store: Store) -> dict[str, int]:
    async with store.engine.connect() as conn:
        return {
            t.name: (await conn.execute(select(func.count()).select_from(t))).scalar_one()
            for t in (Order.__table__, OrderLine.__table__, Parcel.__table__, TimelineEvent.__table__,
                      QuarantineEntry.__table__)
        }


async def timeline(store: Store, no: str) -> list[tuple[str, str | None, str | None, str]]:
    card = await store.order_card(await store.order_id_by_no(no), reveal=FIELDS)  # what is recorded, unmasked
    return [(e.kind, e.from_value, e.to_value, e.actor_id) for e in card.timeline]


# -- the status rule -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "incoming", "decision"),
    [
        ("paid", "shipped", "apply"),
        ("pending_payment", "paid", "apply"),
        ("shipped", "paid", "regression"),
        ("completed", "delivered", "regression"),
        ("review", "paid", "keep"),  # the desk moved on; the channel does not know
        ("allocating", "paid", "keep"),
        ("hold", "paid", "keep"),
        ("hold", "pending_payment", "regression"),
        ("hold", "shipped", "apply"),  # goods left: the physical world wins
        ("in_transit", "shipped", "keep"),  # the carrier knows more than the channel
        ("delivered", "shipped", "keep"),
        ("delivered", "completed", "apply"),
        ("allocating", "cancelled", "apply"),
        ("shipped", "cancelled", "apply"),
        ("cancelled", "paid", "regression"),
        ("paid", "hold", "apply"),
        ("shipped", "hold", "regression"),
        ("paid", "paid", "same"),
    ],
)
def test_status_decision(current: str, incoming: str, decision: str) -> None:
    assert status_decision(current, incoming) == decision


# -- exactly once ------------------------------------------------------------------------------


async def test_new_orders_arrive_whole_and_searchable(store: Store) -> None:
    batch = [
        order("TB1", receiver_name="欧阳娜娜", receiver_phone="13800001111", province="浙江省", city="杭州市",
              district="西湖区", address_detail="文三路100号", shop_name="淘宝旗舰店",
              lines=[NewLine("SKU-A", "杯子", 2, 1990), NewLine("SKU-B", "盖子", 1, 500)],
              parcels=[NewParcel("SF100", "SF", "杭州仓", T0, ["SKU-A"])], status="shipped"),
        order("TB2", minute=1, receiver_name="张三", receiver_phone="13800001111"),
    ]
    result = await ingest(store, batch, actor=SYNC, at=T0)
    assert (result.inserted, result.updated, result.unchanged, result.events) == (2, 0, 0, 2)
    assert await counts(store) == {"orders": 2, "order_line": 3, "parcel": 1, "timeline_event": 2, "quarantine": 0}
    card = await store.order_card(await store.order_id_by_no("TB1"), reveal=FIELDS)
    assert (card.shop_name, card.status, card.receiver_name) == ("淘宝旗舰店", "shipped", "欧阳娜娜")
    assert [(l.sku, l.quantity) for l in card.lines] == [("SKU-A", 2), ("SKU-B", 1)]
    assert [(p.waybill_no, p.lines) for p in card.parcels] == [("SF100", (("SKU-A", 2),))]
    assert [(e.kind, e.actor_kind, e.actor_id) for e in card.timeline] == [("created", "connector", KEY)]
    # one customer by phone across both orders, as Store.add_order would match them
    other = await store.order_card(await store.order_id_by_no("TB2"))
    assert other.customer.id == card.customer.id and other.customer.match_reason == "phone"
    # the search indexes were kept in step: substring, two-character name, waybill
    assert [h.order_no for h in await store.find_orders("文三路")] == ["TB1"]
    assert [h.order_no for h in await store.find_orders("张三")] == ["TB2"]
    assert [h.order_no for h in await store.find_orders("SF100")] == ["TB1"]


async def test_the_same_page_twice_changes_nothing(store: Store) -> None:
    page = [order(f"TB{i}", minute=i, lines=[NewLine("SKU-A"), NewLine("SKU-B", quantity=3)],
                  parcels=[NewParcel(f"YT{i}", "YTO", skus=["SKU-B"])]) for i in range(20)]
    first = await ingest(store, page, actor=SYNC)
    before = await counts(store)
    again = await ingest(store, page, actor=SYNC)
    assert first.inserted == 20 and again.unchanged == 20
    assert (again.inserted, again.updated, again.events, again.changed_ids) == (0, 0, 0, [])
    assert await counts(store) == before


async def test_repeated_row_in_one_batch_keeps_the_later_version(store: Store) -> None:
    batch = [order("TB1", modified=5, status="shipped"), order("TB1", modified=1, status="paid")]
    result = await ingest(store, batch, actor=SYNC)
    assert result.inserted == 1
    assert (await store.order_card(await store.order_id_by_no("TB1"))).status == "shipped"


async def test_older_modified_time_is_ignored(store: Store) -> None:
    await ingest(store, [order("TB1", modified=10, seller_memo="新备注")], actor=SYNC)
    result = await ingest(store, [order("TB1", modified=5, seller_memo="旧备注")], actor=SYNC)
    assert (result.stale, result.updated) == (1, 0)
    card = await store.order_card(await store.order_id_by_no("TB1"))
    assert card.seller_memo == "新备注" and [e.kind for e in card.timeline] == ["created"]


async def test_changes_are_applied_and_each_recorded(store: Store) -> None:
    await ingest(store, [order("TB1", receiver_name="李四", receiver_phone="13900002222", city="杭州市",
                               address_detail="文一路1号")], actor=SYNC)
    changed = order(
        "TB1", modified=30, status="shipped", raw_status="WAIT_BUYER_CONFIRM_GOODS", after_sale="refunding",
        raw_after_sale="WAIT_SELLER_AGREE", seller_memo="加急", receiver_name="李四",
        receiver_phone="13900002222", city="杭州市", address_detail="文二路2号", total_fen=5000,
        lines=[NewLine("SKU-A", "杯子", 2, 1990)], parcels=[NewParcel("SF9", "SF", skus=["SKU-A"])],
    )
    result = await ingest(store, [changed], actor=SYNC)
    assert (result.updated, result.changed_ids) == (1, [await store.order_id_by_no("TB1")])
    card = await store.order_card(result.changed_ids[0], reveal=FIELDS)
    assert (card.status, card.raw_status, card.after_sale, card.seller_memo, card.total_fen) == (
        "shipped", "WAIT_BUYER_CONFIRM_GOODS", "refunding", "加急", 5000)
    assert card.address_detail == "文二路2号" and [l.quantity for l in card.lines] == [2]
    assert [p.waybill_no for p in card.parcels] == ["SF9"]
    events = {(kind, frm, to) for kind, frm, to, who in await timeline(store, "TB1") if who == KEY}
    assert ("status", "paid", "shipped") in events
    assert ("aftersale", "none", "refunding") in events
    assert ("memo", "", "加急") in events
    assert ("lines", "SKU-A×1", "SKU-A×2") in events
    assert ("ship", None, "SF9") in events
    assert any(kind == "address" and "文二路2号" in to for kind, _f, to in events)
    assert any(kind == "updated" for kind, _f, _t in events)  # total_fen
    assert [h.order_no for h in await store.find_orders("文二路")] == ["TB1"]
    assert await store.find_orders("文一路") == []


async def test_status_going_backwards_is_recorded_once_not_applied(store: Store) -> None:
    await ingest(store, [order("TB1", status="shipped", raw_status="WAIT_BUYER_CONFIRM_GOODS")], actor=SYNC)
    back = order("TB1", modified=10, status="paid", raw_status="WAIT_SELLER_SEND_GOODS")
    result = await ingest(store, [back], actor=SYNC)
    assert result.regressions == 1
    card = await store.order_card(await store.order_id_by_no("TB1"))
    assert (card.status, card.raw_status) == ("shipped", "WAIT_BUYER_CONFIRM_GOODS")
    assert ("status_regression", "shipped", "paid", KEY) in await timeline(store, "TB1")
    again = await ingest(store, [back], actor=SYNC)  # the same payload again: nothing new to say
    assert (again.regressions, again.events) == (0, 0)


async def test_desk_decisions_survive_the_channel_repeating_itself(store: Store) -> None:
    await ingest(store, [order("TB1", seller_memo="渠道备注", address_detail="文三路1号", city="杭州市",
                               receiver_name="王五")], actor=SYNC)
    order_id = await store.order_id_by_no("TB1")
    async with store.write() as conn:  # a rule / operator moved it on to review, the rules made it S
        await conn.execute(update(Order.__table__).where(Order.__table__.c.id == order_id).values(status="review",
                                                                                                  priority="S"))
    await store.ensure_operator("alice", "王小丽", role="cs")
    await store.set_seller_memo(order_id, "客服改的备注", actor=ALICE)
    # the channel changes only the buyer note; it still says "paid" and still has its old memo (and an
    # order made by an older deskapp, whose snapshot holds another starting priority, is no different)
    result = await ingest(store, [order("TB1", modified=10, seller_memo="渠道备注", address_detail="文三路1号",
                                        city="杭州市", receiver_name="王五", buyer_note="请周末送", priority="B")],
                          actor=SYNC)
    assert result.updated == 1
    card = await store.order_card(order_id)
    assert (card.status, card.seller_memo, card.buyer_note, card.priority) == ("review", "客服改的备注", "请周末送", "S")
    # the channel then really changes its memo: that is news, and it is applied and recorded
    await ingest(store, [order("TB1", modified=20, seller_memo="渠道新备注", address_detail="文三路1号",
                               city="杭州市", receiver_name="王五", buyer_note="请周末送")], actor=SYNC)
    assert (await store.order_card(order_id)).seller_memo == "渠道新备注"
    assert ("memo", "客服改的备注", "渠道新备注", KEY) in await timeline(store, "TB1")


async def test_orders_without_a_snapshot_are_updated_against_their_stored_values(store: Store) -> None:
    order_id = await store.add_order(order("TB1"), actor=ALICE)  # written before ingest existed
    result = await ingest(store, [order("TB1", modified=5, status="shipped")], actor=SYNC)
    assert result.updated == 1
    assert (await store.order_card(order_id)).status == "shipped"
    assert (await ingest(store, [order("TB1", modified=5, status="shipped")], actor=SYNC)).unchanged == 1


# -- watermark, quarantine -----------------------------------------------------------------------


async def test_watermark_and_orders_commit_together(store: Store) -> None:
    batch = [order(f"TB{i}", minute=i) for i in range(5)]
    bad_cursor = CursorUpdate(KEY, datetime(2026, 3, 1, 9, 0))  # naive: fails at the very end of the write
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises, the point is what is left
        await ingest(store, batch, actor=SYNC, cursor=bad_cursor,
                     quarantined=[QuarantineItem(KEY, "taobao", "tb1", {"tid": "X"}, "bad")])
    assert await counts(store) == {"orders": 0, "order_line": 0, "parcel": 0, "timeline_event": 0, "quarantine": 0}
    assert await cursor_get(store, KEY) is None

    await ingest(store, batch, actor=SYNC, cursor=CursorUpdate(KEY, T0 + timedelta(hours=1)))
    assert (await counts(store))["orders"] == 5
    cursor = await cursor_get(store, KEY)
    assert cursor.watermark == T0 + timedelta(hours=1) and cursor.day_new == 5
    await ingest(store, [], actor=SYNC, cursor=CursorUpdate(KEY, T0))  # never moves backwards
    assert (await cursor_get(store, KEY)).watermark == T0 + timedelta(hours=1)


async def test_quarantine_keeps_one_row_per_payload_and_resolves(store: Store) -> None:
    raw = {"tid": "TB7", "status": "SOMETHING_NEW"}
    item = QuarantineItem(KEY, "taobao", "tb1", raw, "unknown status SOMETHING_NEW", "unknown_status", "TB7")
    await ingest(store, [], actor=SYNC, quarantined=[item])
    await ingest(store, [], actor=SYNC, quarantined=[item, item])
    changed = QuarantineItem(KEY, "taobao", "tb1", {**raw, "memo": "x"}, "unknown status", "unknown_status", "TB7")
    await ingest(store, [], actor=SYNC, quarantined=[changed])
    rows = await quarantine_list(store, connector=KEY)
    assert sorted(r.attempts for r in rows) == [1, 3]
    first = next(r for r in rows if r.attempts == 3)
    assert first.payload == '{"status": "SOMETHING_NEW", "tid": "TB7"}' and first.reason.startswith("unknown")

    assert await quarantine_discard(store, first.id, ALICE)
    await ingest(store, [], actor=SYNC, quarantined=[item])  # seen again: stays discarded
    (discarded,) = await quarantine_list(store, state="discarded")
    assert (discarded.attempts, discarded.resolved_by) == (4, "operator:alice")

    other = next(r for r in rows if r.attempts == 1)
    assert await quarantine_mark_retried(store, other.id, ALICE)
    await ingest(store, [order("TB7")], actor=SYNC)  # the order now maps: its quarantine is resolved
    (resolved,) = await quarantine_list(store, state="resolved")
    assert (resolved.id, resolved.resolved_by) == (other.id, f"connector:{KEY}")
    assert await quarantine_list(store, state="open") == []


async def test_invalid_orders_are_quarantined_and_the_rest_ingested(store: Store) -> None:
    batch = [
        order("TB1"),
        order("TB2", status="paid_maybe"),
        NewOrder("taobao", "tb1", "TB3", datetime(2026, 3, 1)),  # no time zone
        order("TB4", lines=[NewLine("SKU", quantity=1.5)]),
        order("", minute=1),
        order("TB6", province="省" * 40),
    ]
    result = await ingest(store, batch, actor=SYNC)
    assert (result.inserted, result.quarantined) == (1, 5)
    reasons = sorted(r.reason for r in await quarantine_list(store))
    assert any("unknown standard status 'paid_maybe'" in r for r in reasons)
    assert any("created_at is not a time with a zone" in r for r in reasons)
    assert any("quantity" in r for r in reasons)
    assert any("channel_order_id is missing" in r for r in reasons)
    assert any("province is longer than 32" in r for r in reasons)


async def test_probable_duplicates_are_flagged_not_merged(store: Store) -> None:
    same = dict(receiver_phone="13700007777", lines=[NewLine("SKU-A"), NewLine("SKU-B")])
    await ingest(store, [order("TB1", minute=0, **same)], actor=SYNC)
    result = await ingest(store, [
        order("TB2", minute=10, **same),  # resubmitted 10 min later: flagged
        order("TB3", minute=200, **same),  # hours later: a new purchase
        order("TB4", minute=12, receiver_phone="13700007777", lines=[NewLine("SKU-A")]),  # other items
        order("TB5", minute=11, receiver_phone="137****7777", lines=[NewLine("SKU-A"), NewLine("SKU-B")]),
    ], actor=SYNC)
    assert (result.inserted, result.duplicates) == (4, 1)
    flagged = await store.order_card(await store.order_id_by_no("TB2"))
    assert DUPLICATE_TAG in flagged.tags
    assert ("duplicate_suspected", None, "TB1", KEY) in await timeline(store, "TB2")
    for no in ("TB1", "TB3", "TB4", "TB5"):
        assert DUPLICATE_TAG not in (await store.order_card(await store.order_id_by_no(no))).tags
    assert (await counts(store))["orders"] == 5  # never merged
    # the channel changing its tags later keeps the desk's flag
    await ingest(store, [order("TB2", minute=10, modified=30, tags=["VIP"], **same)], actor=SYNC)
    assert set((await store.order_card(flagged.id)).tags) == {"VIP", DUPLICATE_TAG}


async def test_duplicates_within_one_batch(store: Store) -> None:
    same = dict(receiver_phone="13700008888", lines=[NewLine("SKU-A")])
    result = await ingest(store, [order("TB2", minute=5, **same), order("TB1", minute=0, **same)], actor=SYNC)
    assert result.duplicates == 1
    assert DUPLICATE_TAG in (await store.order_card(await store.order_id_by_no("TB2"))).tags


async def test_connector_health_for_the_connectors_screen(store: Store) -> None:
    now = T0 + timedelta(hours=1)
    await ingest(store, [order("TB1"), order("TB2")], actor=SYNC, at=now,
                 cursor=CursorUpdate(KEY, T0 + timedelta(minutes=50)),
                 quarantined=[QuarantineItem(KEY, "taobao", "tb1", "{trunc", "cut short", "truncated")])
    await cursor_record_error(store, KEY, "HTTP 500 from gw.api.taobao.com", at=now + timedelta(minutes=1))
    (status,) = await connector_statuses(store, now=now + timedelta(minutes=2))
    assert (status.connector, status.state, status.orders_today, status.errors_today) == (KEY, "failing", 2, 1)
    assert (status.open_quarantine, status.quarantined_today) == (1, 1)
    assert status.lag == timedelta(minutes=12) and "HTTP 500" in status.last_error
    await ingest(store, [], actor=SYNC, at=now + timedelta(minutes=3), cursor=CursorUpdate(KEY, now))
    (status,) = await connector_statuses(store, now=now + timedelta(minutes=3))
    assert (status.state, status.consecutive_errors) == ("ok", 0)
    (tomorrow,) = await connector_statuses(store, now=now + timedelta(days=1))
    assert (tomorrow.orders_today, tomorrow.errors_today) == (0, 0)


# -- the lease ---------------------------------------------------------------------------------


async def test_one_lease_holder_at_a_time(store: Store) -> None:
    ttl = timedelta(seconds=30)
    assert await lease_acquire(store, "sync", "host-a:1", ttl, now=T0)
    assert not await lease_acquire(store, "sync", "host-b:2", ttl, now=T0 + timedelta(seconds=10))
    assert await lease_acquire(store, "sync", "host-a:1", ttl, now=T0 + timedelta(seconds=20))  # renew
    assert not await lease_acquire(store, "sync", "host-b:2", ttl, now=T0 + timedelta(seconds=45))
    assert await lease_acquire(store, "sync", "host-b:2", ttl, now=T0 + timedelta(seconds=51))  # expired
    assert (await lease_holder(store, "sync", now=T0 + timedelta(seconds=52)))[0] == "host-b:2"
    assert not await lease_release(store, "sync", "host-a:1")
    assert await lease_release(store, "sync", "host-b:2")
    assert await lease_holder(store, "sync") is None


# -- the migration -----------------------------------------------------------------------------


async def test_upgrade_from_0001_keeps_orders_and_downgrade_keeps_them_too(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        await upgrade(engine, "0001")
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO channel (code, name) VALUES ('taobao', 'taobao')"))
            await conn.execute(text("INSERT INTO shop (id, channel, code, name) VALUES (1, 'taobao', 'tb1', 'tb1')"))
            await conn.execute(text(
                "INSERT INTO orders (id, channel, shop_id, channel_order_id, order_no, status, raw_status, after_sale,"
                " raw_after_sale, total_fen, paid_fen, post_fee_fen, discount_fen, created_at, priority, tags,"
                " presale, buyer_note, seller_memo, receiver_name, receiver_phone, phone_kind, province, city,"
                " district, address_detail, customer_match, search_text) VALUES (1, 'taobao', 1, 'TB1', 'TB1',"
                " 'paid', '', 'none', '', 100, 100, 0, 0, :at, 'B', '[]', false, '', '', '赵小六', '', 'none', '',"
                " '', '', '', '', '赵小六')"
            ), {"at": T0})
        if engine.dialect.name == "postgresql":  # the rows came with their own ids
            async with engine.begin() as conn:
                for table in ("shop", "orders"):
                    await conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 1)"))
        await upgrade(engine)
    finally:
        await engine.dispose()

    store = await Store.open(empty_db_url)
    try:
        assert (await store.order_card(1, reveal=FIELDS)).receiver_name == "赵小六"
        result = await ingest(store, [order("TB1", status="shipped", receiver_name="赵小六"), order("TB2")],
                              actor=SYNC, cursor=CursorUpdate(KEY, T0))
        assert (result.updated, result.inserted) == (1, 1)
        assert [h.order_no for h in await store.find_orders("赵小六")] == ["TB1"]
    finally:
        await store.close()

    engine = make_engine(empty_db_url)
    try:
        await downgrade(engine, "0001")
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT COUNT(*) FROM orders"))).scalar() == 2
            assert (await conn.execute(text("SELECT COUNT(*) FROM timeline_event"))).scalar() >= 2
            if engine.dialect.name == "sqlite":  # the search triggers survived the column drop
                hits = await conn.execute(text("SELECT rowid FROM order_fts WHERE order_fts MATCH '赵小六'"))
                assert [r[0] for r in hits] == [1]
        await upgrade(engine)
    finally:
        await engine.dispose()


# -- malformed orders ----------------------------------------------------------------------------

_HOSTILE = [
    None, "", " ", "\x1b[2J\x1b]52;c;cGF5bG9hZA==\x07", "\ud800", "张" * 600, 0, -1, 2**40, 1.5, True,
    float("nan"), [], {}, ["x"], datetime(2026, 3, 1), datetime.max.replace(tzinfo=UTC), "[link=x]y[/]",
]


def mutated_orders(n: int, seed: int) -> list[NewOrder]:
    """Orders with one to three fields replaced by hostile values (seeded: the same every run)."""
    import random
    from dataclasses import fields

    rng = random.Random(seed)
    names = [f.name for f in fields(NewOrder)]
    out = []
    for i in range(n):
        new = order(f"FZ{i}", minute=i % 50, receiver_phone="13800000000",
                    parcels=[NewParcel(f"SF{i}", "SF", skus=["SKU-A"])] if i % 4 == 0 else [])
        for _ in range(rng.randint(1, 3)):
            target = rng.random()
            if target < 0.7:
                setattr(new, rng.choice(names), rng.choice(_HOSTILE))
            elif target < 0.85 and isinstance(new.lines, list) and new.lines and isinstance(new.lines[0], NewLine):
                setattr(new.lines[0], rng.choice(["sku", "title", "quantity", "price_fen", "gift", "combo_sku"]),
                        rng.choice(_HOSTILE))
            elif isinstance(new.parcels, list) and new.parcels and isinstance(new.parcels[0], NewParcel):
                setattr(new.parcels[0], rng.choice(["waybill_no", "carrier", "shipped_at", "skus"]),
                        rng.choice(_HOSTILE))
        out.append(new)
    return out


async def test_a_thousand_malformed_orders_are_each_stored_or_quarantined(store: Store) -> None:
    batch = mutated_orders(1000, seed=3)
    result = await ingest(store, batch, actor=SYNC)  # must not raise
    quarantined = await quarantine_list(store, state=None, limit=2000)
    stored = await counts(store)
    assert result.inserted == stored["orders"] > 0
    assert result.quarantined == 1000 - result.inserted - result.unchanged - result.updated - result.stale
    assert sum(q.attempts for q in quarantined) == result.quarantined > 0
    assert all(q.reason and q.code == "invalid_order" for q in quarantined)
    # what was stored is clean: no terminal controls or surrogates made it into the pool
    async with store.engine.connect() as conn:
        texts = [v for row in await conn.execute(select(Order.__table__)) for v in row if isinstance(v, str)]
    assert not any("\x1b" in t or "\ud800" in t for t in texts)
