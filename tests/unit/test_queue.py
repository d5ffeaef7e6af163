"""The warehouse queue: rules applied to the open orders, written back only where they changed.

Every test that takes ``store`` runs on SQLite and on PostgreSQL (see conftest).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from db import queue as dbq
from db.codes import ActorKind
from db.ingest import ingest
from db.models import Customer, Order, Parcel, TimelineEvent
from db.store import NewLine, NewOrder, Store
from db.views import Actor
from deskapp.services.queue import (
    BoardIndex,
    Filters,
    QueueService,
    choices,
    decide,
    left_text,
    merge,
    merge_tags,
    next_value,
)
from deskapp.services.rules import RulesFile
from deskapp.services.scan import advance
from deskapp.services.sla import BoardThresholds, Colour, board_colour, board_counts
from widgets.i18n import set_language

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
SYNC = Actor(ActorKind.CONNECTOR, "taobao:tb1")

RULES = """
[[priority]]
id = "vip-big"
name = "VIP 大单"
when = 'vip_level in ["S", "A"] && amount > 5000'
level = "S"

[[priority]]
id = "urgent"
name = "加急"
when = 'notes.contains("加急")'
level = "A"

[[tag]]
id = "live"
when = 'is_live || "直播" in channel_tags'
text = "直播"

[[tag]]
id = "fresh"
when = 'skus.exists(s, s.startsWith("FRESH-"))'
text = "生鲜"

[[hold]]
id = "returns"
name = "退货多"
when = 'returns_30d >= 2'
reason = "30 天退货 2 次以上，人工审核"

[sla]
hours = 24
"""


def rules(text: str = RULES) -> RulesFile:
    return RulesFile.from_text(text)


def new(no: str, *, hours_ago: float = 1.0, **fields) -> NewOrder:
    created = NOW - timedelta(hours=hours_ago)
    fields.setdefault("lines", [NewLine("SKU-1", "杯子", 1, 1990)])
    fields.setdefault("paid_at", created + timedelta(minutes=1))
    fields.setdefault("receiver_name", f"顾客{no}")
    fields.setdefault("receiver_phone", f"1380000{int(no) % 10000:04d}" if no.isdigit() else "")
    fields.setdefault("province", "浙江省")
    fields.setdefault("city", "杭州市")
    fields.setdefault("district", "西湖区")
    fields.setdefault("address_detail", f"文三路{no}号")
    return NewOrder("taobao", "tb1", no, created, order_no=no, modified_at=created,
                    total_fen=fields.pop("total_fen", 1990), **fields)


async def add(store: Store, *orders: NewOrder, source: bool = True) -> dict[str, int]:
    """Orders as a channel delivers them (ingest: with a source snapshot) or typed in (no snapshot)."""
    if source:
        await ingest(store, list(orders), actor=SYNC, at=NOW - timedelta(hours=3))
    else:
        for o in orders:
            await store.add_order(o, actor=SYNC, at=NOW - timedelta(hours=3))
    o = Order.__table__.c
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(o.order_no, o.id).where(o.order_no.in_([x.order_no for x in orders])))
        return dict(rows.all())


async def set_order(store: Store, order_id: int, **values) -> None:
    async with store.write() as conn:
        await conn.execute(update(Order.__table__).where(Order.__table__.c.id == order_id).values(**values))


async def add_parcel(store: Store, order_id: int, warehouse: str, *, waybill: str | None = None,
                     printed: bool = False) -> None:
    async with store.write() as conn:
        await conn.execute(insert(Parcel.__table__).values(
            order_id=order_id, warehouse=warehouse, carrier="SF" if waybill else "", waybill_no=waybill,
            state="printed" if printed else "pending", printed_at=NOW - timedelta(hours=1) if printed else None))


async def stored(store: Store, order_id: int) -> dict:
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(Order.__table__).where(Order.__table__.c.id == order_id))).first()
    return dict(row._mapping)


async def rule_events(store: Store, order_id: int) -> list[tuple]:
    t = TimelineEvent.__table__.c
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(t.kind, t.actor_kind, t.actor_id, t.from_value, t.to_value, t.message, t.detail)
            .where(t.order_id == order_id, t.actor_kind == ActorKind.RULE).order_by(t.id))
        return [tuple(r) for r in rows]


def service(store: Store, ruleset: RulesFile | None = None) -> QueueService:
    async def get() -> Store:
        return store

    return QueueService(get, rules=ruleset or rules(), clock=lambda: NOW)


async def test_facts_are_read_from_the_order_its_lines_parcels_customer_and_neighbours(store: Store) -> None:
    ids = await add(
        store,
        new("1001", lines=[NewLine("FRESH-APPLE", "苹果", 2, 990), NewLine("SKU-1", "杯子", 1, 1990)],
            tags=["直播"], buyer_note="加急", receiver_phone="13800001111"),
        # the same buyer: two returns within 30 days, one long ago; all shipped (not open)
        new("1002", hours_ago=24 * 5, status="completed", after_sale="returned", receiver_phone="13800001111"),
        new("1003", hours_ago=24 * 20, status="completed", after_sale="refunded", receiver_phone="13800001111"),
        new("1004", hours_ago=24 * 60, status="completed", after_sale="returned", receiver_phone="13800001111"),
        # three open orders to one receiver and address within 24 h, and a fourth 30 h before them
        new("2001", hours_ago=1, receiver_name="李雷", address_detail="文一路1号"),
        new("2002", hours_ago=5, receiver_name="李雷", address_detail="文一路1号"),
        new("2003", hours_ago=20, receiver_name="李雷", address_detail="文一路1号"),
        new("2004", hours_ago=50, receiver_name="李雷", address_detail="文一路1号"),
        # not on the queue
        new("3001", status="hold", hold_reason="地址有误"),
        new("3002", status="shipped"),
        new("3003", status="pending_payment", paid_at=None),
    )
    await add_parcel(store, ids["1001"], "杭州仓")
    customer = (await stored(store, ids["1001"]))["customer_id"]
    async with store.write() as conn:
        await conn.execute(update(Customer.__table__).where(Customer.__table__.c.id == customer).values(vip_level="A"))
    await set_order(store, ids["1001"], tags=["直播", "疑似重复"], is_live=True)  # the desk added a tag

    facts = {f.id: f for f in await dbq.read(store, dbq.fact_rows, None, store.dialect == "sqlite", NOW)}

    assert set(facts) == {ids[n] for n in ("1001", "2001", "2002", "2003", "2004")}
    f = facts[ids["1001"]]
    assert f.skus == ("FRESH-APPLE", "SKU-1") and f.item_count == 3
    assert f.warehouse == "杭州仓" and f.vip_level == "A" and f.is_live
    assert f.returns_30d == 2
    assert f.channel_tags == ("直播",) and f.tags == ("直播", "疑似重复") and f.has_source
    assert f.buyer_note == "加急" and f.shop == "tb1" and f.channel == "taobao"
    same = {n: facts[ids[n]].same_address_24h for n in ("2001", "2002", "2003", "2004")}
    assert same == {"2001": 3, "2002": 3, "2003": 3, "2004": 1}  # 2004 is 30 h before the next one

    # only what changes to these orders can affect: the order, its customer's and its address's open orders
    some = await dbq.read(store, dbq.fact_rows, [ids["2001"]], store.dialect == "sqlite", NOW)
    assert {f.id for f in some} == {ids[n] for n in ("2001", "2002", "2003", "2004")}
    shipped = await dbq.read(store, dbq.fact_rows, [ids["1002"]], store.dialect == "sqlite", NOW)
    assert {f.id for f in shipped} == {ids["1001"]}  # a return on a shipped order: its buyer's open order


async def test_a_recompute_writes_changed_orders_once_each_with_an_event_naming_rule_and_version(store: Store) -> None:
    ids = await add(store, new("1001", buyer_note="请加急，谢谢"), new("1002"))
    svc = service(store)

    first = await svc.recompute()

    assert first.evaluated == 2 and set(first.changed) == {ids["1001"], ids["1002"]}
    urgent = await stored(store, ids["1001"])
    assert urgent["priority"] == "A" and urgent["priority_why"] == "加急（urgent）"
    assert urgent["rules_version"] == svc.rules.version
    assert dbq.utc(urgent["sla_due"]) == NOW - timedelta(hours=1) + timedelta(minutes=1) + timedelta(hours=24)
    [(kind, actor_kind, actor_id, old, new_, message, detail)] = await rule_events(store, ids["1001"])
    assert (kind, actor_kind, actor_id, old, new_) == ("priority", "rule", svc.rules.version, "C", "A")
    assert "C → A" in message and "加急（urgent）" in message
    assert detail["reasons"][0]["rule"] == "urgent" and detail["rules_version"] == svc.rules.version
    plain = await stored(store, ids["1002"])
    assert plain["priority"] == "C" and plain["priority_why"] is None

    again = await svc.recompute()
    assert again.changed == () and len(await rule_events(store, ids["1001"])) == 1  # nothing new: nothing written


async def test_a_new_rules_file_changes_only_the_orders_it_decides_differently(store: Store) -> None:
    ids = await add(store, new("1001", buyer_note="加急"), new("1002"), new("1003", buyer_note="急"))
    svc = service(store)
    await svc.recompute()
    svc.rules = rules(RULES.replace('notes.contains("加急")', 'notes.contains("急")').replace('level = "A"', 'level = "B"'))

    result = await svc.recompute()

    assert set(result.changed) == {ids["1001"], ids["1003"]}
    assert (await stored(store, ids["1001"]))["priority"] == "B"
    assert (await stored(store, ids["1003"]))["priority"] == "B"
    assert (await stored(store, ids["1002"]))["rules_version"] != svc.rules.version  # unchanged, untouched
    events = await rule_events(store, ids["1001"])
    assert [(e[3], e[4]) for e in events] == [("C", "A"), ("A", "B")]
    assert events[-1][2] == svc.rules.version


async def test_a_hold_rule_holds_an_open_order_with_its_reason_and_leaves_it_to_a_person(store: Store) -> None:
    ids = await add(
        store, new("1001", receiver_phone="13800002222"),
        new("1002", hours_ago=24 * 3, status="completed", after_sale="returned", receiver_phone="13800002222"),
        new("1003", hours_ago=24 * 4, status="completed", after_sale="refunded", receiver_phone="13800002222"),
    )
    svc = service(store)

    result = await svc.recompute()

    assert result.held == (ids["1001"],)
    held = await stored(store, ids["1001"])
    assert held["status"] == "hold" and held["hold_reason"] == "30 天退货 2 次以上，人工审核"
    kinds = [(e[0], e[3], e[4]) for e in await rule_events(store, ids["1001"])]
    assert ("hold", "paid", "hold") in kinds
    assert (await svc.recompute()).evaluated == 0  # held orders are off the queue: nothing re-holds or releases


async def test_rule_tags_follow_the_rules_and_the_channel_and_desk_tags_stay(store: Store) -> None:
    ids = await add(store, new("1001", tags=["直播", "双11"], lines=[NewLine("FRESH-A", "鱼", 1, 100)]),
                    new("1002", lines=[NewLine("FRESH-A", "鱼", 1, 100)]))
    typed = await add(store, new("1003", lines=[NewLine("FRESH-A", "鱼", 1, 100)]), source=False)
    await set_order(store, ids["1002"], tags=["疑似重复"])  # the desk's own tag
    svc = service(store)
    await svc.recompute()
    assert (await stored(store, ids["1001"]))["tags"] == ["直播", "双11", "生鲜"]
    assert (await stored(store, ids["1002"]))["tags"] == ["疑似重复", "生鲜"]

    svc.rules = rules(RULES.replace('text = "生鲜"', 'text = "冷链"').replace('when = \'is_live || "直播" in channel_tags\'',
                                                                          "when = 'is_live'"))
    await svc.recompute()

    assert (await stored(store, ids["1001"]))["tags"] == ["直播", "双11", "冷链"]  # the channel's 直播 stays
    assert (await stored(store, ids["1002"]))["tags"] == ["疑似重复", "冷链"]
    # typed in (no channel snapshot): rule tags are only ever added
    assert (await stored(store, typed["1003"]))["tags"] == ["生鲜", "冷链"]


async def test_synced_changes_recompute_the_orders_they_affect(store: Store) -> None:
    same_place = RULES + """
[[priority]]
id = "repeat"
name = "同地址多单"
when = 'orders_24h_same_address >= 2'
level = "B"
"""
    ids = await add(store, new("1001", receiver_name="韩梅", address_detail="文二路2号"), new("1002"))
    svc = service(store, rules(same_place))
    await svc.recompute()
    assert (await stored(store, ids["1001"]))["priority"] == "C"

    later = await add(store, new("1003", hours_ago=0.5, receiver_name="韩梅", address_detail="文二路2号"))
    result = await svc.recompute([later["1003"]])

    assert set(result.changed) == {ids["1001"], later["1003"]} and result.evaluated == 2
    assert (await stored(store, ids["1001"]))["priority"] == "B"
    assert (await stored(store, ids["1002"]))["priority"] == "C"


async def test_an_order_that_left_the_queue_meanwhile_is_not_overwritten(store: Store) -> None:
    ids = await add(store, new("1001", buyer_note="加急"))
    svc = service(store)
    rows = await dbq.read(store, dbq.fact_rows, None, store.dialect == "sqlite", NOW)
    outcomes, _ = decide(svc.rules, rows, NOW)
    await set_order(store, ids["1001"], status="shipped")  # the sync shipped it while the rules ran

    changed, _ = await svc._write(store, outcomes, frozenset(), svc.rules.version, NOW)

    assert changed == []
    row = await stored(store, ids["1001"])
    assert row["status"] == "shipped" and row["priority"] == "C" and await rule_events(store, ids["1001"]) == []


async def test_the_queue_is_sorted_by_priority_then_deadline_and_knows_printed_and_picked(store: Store) -> None:
    ids = await add(
        store,
        new("1001", hours_ago=2), new("1002", hours_ago=10, buyer_note="加急"), new("1003", hours_ago=1, buyer_note="加急"),
        new("1004", presale=True), new("1005", status="allocating"), new("1006", hours_ago=1.5, status="review"),
    )
    await service(store).recompute()
    await add_parcel(store, ids["1005"], "杭州仓", waybill="SF100", printed=True)
    await add_parcel(store, ids["1005"], "广州仓")
    await set_order(store, ids["1005"], wh_step="picked")

    rows = await dbq.read(store, dbq.queue_rows, store.dialect == "sqlite")

    # A by deadline, then C by deadline, the presale without a date last
    assert [r.order_no for r in rows] == ["1002", "1003", "1001", "1006", "1005", "1004"]
    picked = next(r for r in rows if r.order_no == "1005")
    assert picked.printed and picked.picked and picked.progress == "picked"
    assert picked.warehouses == ("杭州仓", "广州仓") and picked.warehouse == "杭州仓"
    assert next(r for r in rows if r.order_no == "1004").due is None
    assert next(r for r in rows if r.order_no == "1006").progress == "review"


def _row(i: int, due: datetime | None, printed: bool, picked: bool, warehouse: str = "杭州仓") -> dbq.QueueRow:
    return dbq.QueueRow(i, str(i), "taobao", "店", "allocating", "picked" if picked else None, "C",
                        None if due is None else due.timestamp(), (),
                        "", "", 0, None, (warehouse,), printed)


def test_board_counts_match_the_colour_of_every_order_at_any_moment() -> None:
    rng = random.Random(5)
    rows = [_row(i, None if rng.random() < 0.1 else NOW + timedelta(minutes=rng.randrange(-600, 900)),
                 rng.random() < 0.4, rng.random() < 0.4) for i in range(500)]
    board = BoardThresholds(2, 6)
    index, _ = BoardIndex.build(rows, board)
    for minutes in range(-120, 900, 7):
        now = NOW + timedelta(minutes=minutes)
        expected = board_counts(((r.due, r.printed, r.picked) for r in rows), now, board)
        counts = index.counts(now)
        assert counts == expected and sum(counts.values()) == len(rows)
        colours = {r.id: board_colour(r.due, now, printed=r.printed, picked=r.picked, board=board) for r in rows}
        urgent = index.urgent(now)
        assert {r.id for r in urgent} == {i for i, c in colours.items() if c != Colour.GREEN}
        assert [colours[r.id] for r in urgent] == sorted((colours[r.id] for r in urgent), key=lambda c: c != Colour.RED)


def test_an_order_exactly_at_the_threshold_is_as_board_colour_says() -> None:
    rows = [_row(1, NOW + timedelta(hours=2), False, False), _row(2, NOW + timedelta(hours=6), True, False)]
    counts = BoardIndex.build(rows, BoardThresholds())[0].counts(NOW)
    assert counts == board_counts(((r.due, r.printed, r.picked) for r in rows), NOW, BoardThresholds())


def test_filters_cycle_through_the_values_present_and_back_to_all() -> None:
    rows = [_row(1, NOW, False, False, "杭州仓"), _row(2, NOW, False, True, "广州仓"),
            _row(3, NOW, False, False, "")._replace(tags=("直播",), channel="pdd", status="paid")]
    found = choices(rows)
    assert found.warehouses == ["广州仓", "杭州仓", ""] and found.channels == ["pdd", "taobao"]
    assert found.progress == ["paid", "allocating", "picked"] and found.tags == ["直播"]
    assert [next_value(None, ["a", "b"]), next_value("a", ["a", "b"]), next_value("b", ["a", "b"])] == ["a", "b", None]
    assert [r.id for r in Filters(warehouse="").apply(rows)] == [3]
    assert [r.id for r in Filters(progress="picked").apply(rows)] == [2]
    assert [r.id for r in Filters(tag="直播", channel="pdd").apply(rows)] == [3]
    assert not Filters().active and Filters(channel="pdd").active


def test_time_left_is_short_and_says_overdue() -> None:
    set_language("zh")
    assert left_text(timedelta(hours=2, minutes=13, seconds=40)) == "2小时13分"
    assert left_text(timedelta(minutes=-35)) == "超时 35分"
    assert left_text(timedelta(days=1, hours=3)) == "1天3小时"
    assert left_text(None) == "无期限"
    set_language("en")
    try:
        assert left_text(timedelta(minutes=-35)) == "late 35m"
    finally:
        set_language("zh")


def test_merging_tags_keeps_the_channel_and_the_desk() -> None:
    assert merge_tags(["直播", "旧", "疑似重复"], ["新"], {"旧", "新", "直播"}, ["直播"], True) == ("直播", "疑似重复", "新")
    assert merge_tags(["旧"], ["新"], {"旧", "新"}, ["旧"], False) == ("旧", "新")


async def test_the_timeline_is_the_change_feed_and_changed_rows_merge_into_place(store: Store) -> None:
    ids = await add(store, *(new(str(1000 + i), hours_ago=1 + i / 10, buyer_note="加急" if i % 4 == 0 else "")
                             for i in range(12)))
    svc = service(store)
    await svc.recompute()
    rows = await svc.queue()
    last, none = await svc.changes(None)
    assert none is None and (await svc.changes(last)) == (last, [])

    # elsewhere: a scan ships nothing but moves one order; new rules re-prioritise others; one is cancelled
    await store.ensure_operator("wang", "王仓管", role="warehouse")
    await advance(store, "1005", Actor(ActorKind.OPERATOR, "wang"), at=NOW)
    svc.rules = rules(RULES.replace('notes.contains("加急")', 'notes.contains("加急") || amount_fen == 1990 && '
                                                              'created_at < now - duration("2h")'))
    await svc.recompute()
    await set_order(store, ids["1003"], status="cancelled")  # no event: the full read's safety net
    newest, changed = await svc.changes(last)

    assert newest > last and ids["1005"] in changed and ids["1003"] not in changed
    merged = merge(rows, await svc.queue(changed), changed)

    full = await svc.queue()
    assert [r for r in merged if r.id != ids["1003"]] == full  # the same rows, in the same order as SQL
    assert ids["1003"] in {r.id for r in merged}  # written without an event: only a full read sees it
    assert next(r for r in merged if r.id == ids["1005"]).progress == "allocating"


async def test_the_card_says_which_rule_made_an_order_urgent(store: Store) -> None:
    from rich.console import Console

    from widgets.order_card import card_facts

    ids = await add(store, new("1001", buyer_note="请加急，谢谢"), new("1002"))
    await service(store).recompute()

    urgent, plain = await store.order_card(ids["1001"]), await store.order_card(ids["1002"])
    console = Console(width=100, record=True)
    console.print(card_facts(urgent, NOW))
    assert urgent.priority_why == "加急（urgent）" and "A · 加急（urgent）" in console.export_text()
    console.print(card_facts(plain, NOW))
    assert plain.priority_why is None and console.export_text().count("加急（urgent）") == 0  # export cleared it
