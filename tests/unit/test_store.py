"""The Store as the app uses it: lookup by anything, the order card, attributed writes, clean text.

Every test runs on SQLite and on PostgreSQL (see the ``store`` fixture in conftest).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from db.models import ActorKind, Parcel, ParcelLine, TimelineEvent
from db.privacy import FIELDS
from db.store import NewLine, NewOrder, OrderNotFound, Store, append_event
from db.views import Actor

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SYNC = Actor(ActorKind.CONNECTOR, "taobao-sync")
ALICE = Actor(ActorKind.OPERATOR, "alice")


def new_order(no: str, *, minutes: int = 0, channel: str = "taobao", shop: str = "tb-main", **fields) -> NewOrder:
    return NewOrder(
        channel=channel, shop_code=shop, channel_order_id=no, created_at=T0 + timedelta(minutes=minutes), **fields
    )


async def add(store: Store, no: str, **fields) -> int:
    """Add an order; later calls should pass larger ``minutes`` so insertion order is time order."""
    return await store.add_order(new_order(no, **fields), actor=SYNC)


async def find(store: Store, query: str, **kw) -> list[tuple[str, str]]:
    return [(hit.order_no, hit.matched_by) for hit in await store.find_orders(query, **kw)]


async def add_parcel(store: Store, order_id: int, waybill: str, lines: list[tuple[int, int]] = ()) -> int:
    async with store.write() as conn:
        result = await conn.execute(
            insert(Parcel.__table__).values(
                order_id=order_id, warehouse="杭州仓", carrier="SF", waybill_no=waybill, state="shipped",
                last_track_text="",
            )
        )
        parcel_id = result.inserted_primary_key[0]
        for line_id, quantity in lines:
            await conn.execute(
                insert(ParcelLine.__table__).values(parcel_id=parcel_id, line_id=line_id, quantity=quantity)
            )
    return parcel_id


# -- lookup ------------------------------------------------------------------------------------


async def test_exact_order_no_ranks_above_newer_phone_tail_matches(store: Store) -> None:
    await add(store, "5678", channel="pos", shop="store-1", minutes=0)
    await add(store, "TB1", receiver_phone="13900005678", minutes=10)
    await add(store, "TB2", receiver_phone="138****5678", minutes=20)
    assert await find(store, "5678") == [
        ("5678", "order_no"),
        ("TB2", "phone_tail4"),
        ("TB1", "phone_tail4"),
    ]


async def test_exact_channel_order_id_ranks_above_newer_prefix_matches(store: Store) -> None:
    await add(store, "3915667788", order_no="DY-0042", channel="douyin", shop="dy", minutes=0)
    await add(store, "39156677881", minutes=10)
    await add(store, "39156677882", minutes=20)
    assert await find(store, "3915667788") == [
        ("DY-0042", "order_no"),
        ("39156677882", "order_no"),
        ("39156677881", "order_no"),
    ]
    assert await store.order_id_by_no("3915667788") == await store.order_id_by_no("DY-0042") is not None
    assert await store.order_id_by_no("NO-SUCH") is None


async def test_order_no_exact_ignores_case_and_full_width(store: Store) -> None:
    await add(store, "TB20260301001")
    assert await find(store, "tb20260301001") == [("TB20260301001", "order_no")]
    assert await find(store, "ＴＢ２０２６０３０１００１") == [("TB20260301001", "order_no")]


async def test_order_no_prefix_newest_first(store: Store) -> None:
    await add(store, "TB20260301001", minutes=0)
    await add(store, "TB20260302001", minutes=10)
    await add(store, "TB20260301002", minutes=20)
    assert await find(store, "TB20260301") == [("TB20260301002", "order_no"), ("TB20260301001", "order_no")]
    assert await find(store, "TB2026030") == [
        ("TB20260301002", "order_no"),
        ("TB20260302001", "order_no"),
        ("TB20260301001", "order_no"),
    ]


async def test_waybill_exact_and_prefix(store: Store) -> None:
    first = await add(store, "TB1", minutes=0)
    second = await add(store, "TB2", minutes=10)
    await add(store, "TB3", minutes=20)
    await add_parcel(store, first, "SF1234567890")
    await add_parcel(store, second, "SF1234500000")
    assert await find(store, "SF1234567890") == [("TB1", "waybill")]
    assert await find(store, "sf1234567890") == [("TB1", "waybill")]
    assert await find(store, "SF12345") == [("TB2", "waybill"), ("TB1", "waybill")]
    assert await find(store, "SF9") == []


async def test_full_phone_however_typed(store: Store) -> None:
    await add(store, "TB1", receiver_phone="13812345678", minutes=0)
    await add(store, "PDD1", channel="pdd", shop="pdd-1", receiver_phone="+86 138 1234 5678", minutes=10)
    await add(store, "TB2", receiver_phone="13900005678", minutes=20)  # same last four, other phone
    typed_forms = [
        "13812345678", "138 1234 5678", "138-1234-5678", "１３８１２３４５６７８", "１３８ １２３４ ５６７８",
        "+86 138 1234 5678", "+8613812345678", " 13812345678 ",
    ]
    for typed in typed_forms:
        assert await find(store, typed) == [("PDD1", "phone"), ("TB1", "phone")], typed


async def test_landline(store: Store) -> None:
    await add(store, "TB1", receiver_phone="0571-88886666")
    await add(store, "TB2", receiver_phone="0571-88887777", minutes=10)
    for typed in ["0571-88886666", "057188886666", "(0571) 8888 6666"]:
        assert await find(store, typed) == [("TB1", "phone")], typed


async def test_last_four_on_plain_masked_and_virtual_phones(store: Store) -> None:
    await add(store, "PLAIN", receiver_phone="13812345678", minutes=0)
    await add(store, "MASKED", receiver_phone="138****5678", minutes=10)
    await add(store, "VIRTUAL", receiver_phone="18877775678-123", minutes=20)
    await add(store, "VIRTUAL2", receiver_phone="17000005678转4321", minutes=30)
    await add(store, "MASKEDVIRT", receiver_phone="188****5678-123", minutes=40)
    await add(store, "OTHER", receiver_phone="13856780000", minutes=50)
    await add(store, "CIPHER", receiver_phone="ZW0xMjM0NTY3OA==5678", minutes=60)
    assert await find(store, "5678") == [
        ("MASKEDVIRT", "phone_tail4"),
        ("VIRTUAL2", "phone_tail4"),
        ("VIRTUAL", "phone_tail4"),
        ("MASKED", "phone_tail4"),
        ("PLAIN", "phone_tail4"),
    ]
    assert await find(store, "５６７８") == await find(store, "5678")


async def test_virtual_number_found_by_its_main_number(store: Store) -> None:
    await add(store, "VIRTUAL", receiver_phone="18877775678-123")
    assert await find(store, "18877775678") == [("VIRTUAL", "phone")]


async def test_two_character_name_and_surname(store: Store) -> None:
    await add(store, "A", receiver_name="张三", minutes=0)
    await add(store, "B", receiver_name="李四", minutes=10)
    await add(store, "C", receiver_name="张三丰", minutes=20)
    await add(store, "D", receiver_name="小张", minutes=30)
    await add(store, "E", receiver_name="张*", minutes=40)
    assert await find(store, "张三") == [("C", "name"), ("A", "name")]
    assert await find(store, "三丰") == [("C", "name")]
    assert await find(store, "张") == [("E", "name"), ("C", "name"), ("A", "name")]
    assert await find(store, "王五") == []


async def test_name_substring_of_three_or_more_characters(store: Store) -> None:
    await add(store, "A", receiver_name="欧阳娜娜", minutes=0)
    await add(store, "B", receiver_name="张三丰", minutes=10)
    await add(store, "C", receiver_name="张三", minutes=20)
    assert [no for no, _ in await find(store, "阳娜娜")] == ["A"]
    assert [no for no, _ in await find(store, "张三丰")] == ["B"]


async def test_address_fragment(store: Store) -> None:
    await add(store, "A", province="浙江省", city="杭州市", district="西湖区", address_detail="文三路100号", minutes=0)
    await add(store, "B", province="浙江省", city="宁波市", district="鄞州区", address_detail="Wanda Plaza 3F", minutes=10)
    await add(store, "C", province="上海市", city="上海市", district="浦东新区", address_detail="文三路8号", minutes=20)
    assert await find(store, "文三路") == [("C", "address"), ("A", "address")]
    assert await find(store, "文三路100") == [("A", "address")]
    assert await find(store, "西湖区文三路") == [("A", "address")]  # spans district and street
    assert await find(store, "杭州市西湖区") == [("A", "address")]
    assert await find(store, "宁波市") == [("B", "address")]
    assert await find(store, "wanda plaza") == [("B", "address")]  # case does not matter
    assert await find(store, "北京市") == []


async def test_empty_query_finds_nothing(store: Store) -> None:
    await add(store, "TB1", receiver_name="张三")
    for query in ["", "   ", "\u3000"]:
        assert await store.find_orders(query) == []


async def test_markup_and_wildcard_queries_are_plain_text(store: Store) -> None:
    await add(store, "TB1", receiver_name="张三", address_detail="文三路100号")
    await add(store, "TB2", receiver_name="李四", address_detail="A栋[/]301 [bold red]x[/] 100%", minutes=10)
    for query in ["[/]", "[bold red]x[/]", "100%"]:  # found literally, and only there
        assert await find(store, query) == [("TB2", "address")], query
    for query in ["[@click=app.quit]", '"', '"张三" OR *', "%", "%%%", "_", "___", "\\", "\\\\%", "a_b", "*", "NEAR(a b)"]:
        # no crash, and wildcards or FTS syntax never match everything
        assert await find(store, query) == [], query


async def test_limit_keeps_the_newest(store: Store) -> None:
    for i in range(6):
        await add(store, f"TB1{i}", receiver_name=f"张{'一二三四五六'[i]}", receiver_phone=f"13{i}00001111", minutes=i)
    assert [no for no, _ in await find(store, "张", limit=3)] == ["TB15", "TB14", "TB13"]
    assert [no for no, _ in await find(store, "1111", limit=2)] == ["TB15", "TB14"]
    assert [no for no, _ in await find(store, "TB1", limit=4)] == ["TB15", "TB14", "TB13", "TB12"]
    assert len(await store.find_orders("TB1")) == 6


async def test_limit_keeps_newest_of_a_kind_across_its_indexes(store: Store) -> None:
    # "SF00" is one order's number, an older order's number prefix and a newer order's waybill
    # prefix: the two prefix hits are one kind, so the newer must win the second place even though
    # the order-number index answered first
    await add(store, "SF00", channel="pos", shop="store-1", minutes=0)
    await add(store, "SF001", minutes=10)
    newer = await add(store, "TB9", minutes=20)
    await add_parcel(store, newer, "SF00999")
    assert await find(store, "SF00", limit=2) == [("SF00", "order_no"), ("TB9", "waybill")]
    assert await find(store, "SF00") == [("SF00", "order_no"), ("TB9", "waybill"), ("SF001", "order_no")]


async def test_hits_carry_what_the_result_row_shows(store: Store) -> None:
    await add(
        store, "TB1", receiver_name="张三", receiver_phone="138****5678", city="杭州市", district="西湖区",
        total_fen=12_900, status="shipped", paid_at=T0,
    )
    (hit,) = await store.find_orders("TB1")
    assert (hit.channel, hit.shop_name, hit.status, hit.receiver_name, hit.receiver_phone) == (
        "taobao", "tb-main", "shipped", "张*", "138****5678"  # masked: a result row never shows more
    )
    assert (hit.city, hit.district, hit.total_fen, hit.paid_at, hit.created_at) == ("杭州市", "西湖区", 12_900, T0, T0)


# -- order card --------------------------------------------------------------------------------


async def test_order_card_lines_parcels_and_timeline(store: Store) -> None:
    await store.ensure_operator("alice", "王小丽")
    order_id = await store.add_order(
        new_order(
            "TB1", receiver_name="张三", receiver_phone="13812345678", buyer_note="周末送",
            lines=[NewLine("SKU-A", "保温杯", 2, 4_900), NewLine("SKU-B", "杯套", 1, 0, gift=True)],
        ),
        actor=SYNC,
        at=T0,
    )
    card = await store.order_card(order_id)
    assert [(l.sku, l.title, l.quantity, l.price_fen, l.gift) for l in card.lines] == [
        ("SKU-A", "保温杯", 2, 4_900, False),
        ("SKU-B", "杯套", 1, 0, True),
    ]
    line_a, line_b = (l.id for l in card.lines)
    p1 = await add_parcel(store, order_id, "SF1", [(line_a, 1), (line_b, 1)])
    p2 = await add_parcel(store, order_id, "YT2", [(line_a, 1)])

    await store.set_seller_memo(order_id, "已联系", actor=ALICE)
    async with store.write() as conn:  # an older carrier event written last: the timeline sorts by time
        await append_event(
            conn, order_id, Actor(ActorKind.CARRIER, "SF"), "shipped", at=T0 + timedelta(days=1), parcel_id=p1
        )

    card = await store.order_card(order_id)
    assert [(p.id, p.waybill_no, p.lines) for p in card.parcels] == [
        (p1, "SF1", (("SKU-A", 1), ("SKU-B", 1))),
        (p2, "YT2", (("SKU-A", 1),)),
    ]
    assert [(e.kind, e.actor_kind, e.actor_id, e.actor_name) for e in card.timeline] == [
        ("created", "connector", "taobao-sync", "taobao-sync"),
        ("shipped", "carrier", "SF", "SF"),
        ("memo", "operator", "alice", "王小丽"),
    ]
    assert [e.at for e in card.timeline] == sorted(e.at for e in card.timeline)
    assert card.buyer_note == "周末送" and card.seller_memo == "已联系"
    assert card.to_json()["timeline"][2]["actor_name"] == "王小丽"


async def test_order_card_of_a_missing_order_is_none(store: Store) -> None:
    assert await store.order_card(12345) is None


async def test_same_plain_phone_on_two_channels_is_one_customer(store: Store) -> None:
    tb = await add(store, "TB1", receiver_name="张三", receiver_phone="13812345678", minutes=0)
    pdd = await add(
        store, "PDD1", channel="pdd", shop="pdd-1", receiver_name="张先生", receiver_phone="+86 138-1234-5678",
        minutes=10,
    )
    other = await add(store, "TB2", receiver_name="张三", receiver_phone="13900000000", minutes=20)
    tb_card, pdd_card, other_card = [await store.order_card(i) for i in (tb, pdd, other)]
    assert pdd_card.customer.id == tb_card.customer.id != other_card.customer.id
    assert pdd_card.customer.match_reason == "phone"
    assert pdd_card.customer.order_count == 2
    assert pdd_card.customer.channels == ("pdd", "taobao")
    assert [o.order_no for o in pdd_card.customer.others] == ["TB1"]
    assert [o.order_no for o in tb_card.customer.others] == ["PDD1"]
    assert other_card.customer.order_count == 1 and other_card.customer.others == ()


async def test_masked_phone_with_same_name_and_address_is_the_same_customer(store: Store) -> None:
    address = dict(province="浙江省", city="杭州市", district="西湖区", address_detail="文三路100号")
    first = await add(store, "TB1", receiver_name="张三", receiver_phone="13812345678", **address)
    masked = await add(
        store, "PDD1", channel="pdd", shop="pdd-1", receiver_name="张三", receiver_phone="138****5678",
        province="浙江省", city="杭州市", district="西湖区", address_detail="文三路 100号", minutes=10,
    )
    elsewhere = await add(
        store, "PDD2", channel="pdd", shop="pdd-1", receiver_name="张三", receiver_phone="138****5678",
        province="浙江省", city="杭州市", district="西湖区", address_detail="文一路1号", minutes=20,
    )
    first_card, masked_card, elsewhere_card = [await store.order_card(i) for i in (first, masked, elsewhere)]
    assert masked_card.customer.id == first_card.customer.id
    assert masked_card.customer.match_reason == "name+address"
    assert elsewhere_card.customer.id != first_card.customer.id


async def test_customer_return_counts(store: Store) -> None:
    now = T0 + timedelta(days=100)
    phone = {"receiver_name": "张三", "receiver_phone": "13812345678"}
    await add(store, "OLD-RETURN", after_sale="returned", paid_at=now - timedelta(days=60), **phone)
    await add(store, "RECENT-REFUND", after_sale="refunded", paid_at=now - timedelta(days=10), minutes=1, **phone)
    await add(store, "REJECTED", after_sale="rejected", paid_at=now - timedelta(days=5), minutes=2, **phone)
    latest = await add(store, "FINE", paid_at=now - timedelta(days=1), minutes=3, **phone)
    customer = (await store.order_card(latest, now=now)).customer
    assert (customer.order_count, customer.return_count, customer.returns_30d) == (4, 2, 1)


# -- writes are attributed -----------------------------------------------------------------------


async def _events(store: Store, order_id: int) -> list[tuple]:
    t = TimelineEvent.__table__.c
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(t.kind, t.actor_kind, t.actor_id, t.from_value, t.to_value).where(t.order_id == order_id)
            .order_by(t.id)
        )
        return [tuple(r) for r in rows]


async def test_add_order_records_who_created_it(store: Store) -> None:
    order_id = await store.add_order(new_order("TB1", status="paid"), actor=ALICE, at=T0)
    assert await _events(store, order_id) == [("created", "operator", "alice", None, "paid")]
    (item,) = (await store.order_card(order_id)).timeline
    assert item.at == T0
    assert await store.count_orders() == 1


async def test_seller_memo_change_is_on_the_timeline(store: Store) -> None:
    await store.ensure_operator("alice", "王小丽", role="cs")
    order_id = await add(store, "TB1", seller_memo="旧备注")
    await store.set_seller_memo(order_id, "新备注\n第二行", actor=ALICE)
    assert (await store.order_card(order_id)).seller_memo == "新备注\n第二行"
    assert (await _events(store, order_id))[1:] == [("memo", "operator", "alice", "旧备注", "新备注\n第二行")]

    await store.set_seller_memo(order_id, "新备注\n第二行", actor=ALICE)  # no change: no event
    await store.set_seller_memo(order_id, "新备注\x1b[2J\n第二行", actor=ALICE)  # same once cleaned
    assert len(await _events(store, order_id)) == 2

    with pytest.raises(OrderNotFound):
        await store.set_seller_memo(order_id + 1000, "x", actor=ALICE)


async def test_ensure_operator_is_idempotent(store: Store) -> None:
    await store.ensure_operator("bob", "鲍勃\x1b]0;x\x07")
    await store.ensure_operator("bob", "Someone Else")
    await store.ensure_operator("alice")
    assert [(o.id, o.display_name, o.active) for o in await store.operators()] == [
        ("alice", "alice", True),
        ("bob", "鲍勃", True),
    ]


# -- what comes out is clean -----------------------------------------------------------------------


async def test_text_stored_via_add_order_comes_back_clean(store: Store) -> None:
    order_id = await add(
        store,
        "TB\x1b[2J1",
        shop="shop\x1b]0;title\x07-1",
        receiver_name="张\u202e三\x9b2J",
        receiver_phone="138\x1b[0m12345678",
        address_detail="文三路\n100号\x1b]8;;https://evil.example/\x07点我\x1b]8;;\x07",
        buyer_note="第一行\n第二行\x1b]52;c;aGVsbG8=\x07",
        seller_memo="\x07备注",
        hold_reason="\x1b[31m地址异常",
        tags=["加急\x1b[5m"],
        lines=[NewLine("SKU\x1b[1m-1", "杯子\x1b]8;;http://x/\x07链接\x1b]8;;\x07", combo_sku="C\x1b[0m1")],
    )
    card = await store.order_card(order_id, reveal=FIELDS)
    assert card.order_no == "TB1" and card.channel_order_id == "TB1"
    assert card.shop_name == "shop-1"
    assert card.receiver_name == "张三"
    assert card.receiver_phone == "13812345678" and card.phone_kind == "plain"
    assert card.address_detail == "文三路 100号点我"
    assert card.buyer_note == "第一行\n第二行"
    assert card.seller_memo == "备注" and card.hold_reason == "地址异常" and card.tags == ("加急",)
    assert [(l.sku, l.title, l.combo_sku) for l in card.lines] == [("SKU-1", "杯子链接", "C1")]
    assert await find(store, "13812345678") == [("TB1", "phone")]
    assert await find(store, "张三") == [("TB1", "name")]


async def test_markup_looking_text_is_stored_literally(store: Store) -> None:
    order_id = await add(
        store, "TB1", receiver_name="[bold red]x[/]", buyer_note="[@click=app.quit]退出[/]",
        address_detail="[link=https://evil.example]点[/link]",
    )
    card = await store.order_card(order_id, reveal=FIELDS)
    assert card.receiver_name == "[bold red]x[/]"
    assert card.buyer_note == "[@click=app.quit]退出[/]"
    assert card.address_detail == "[link=https://evil.example]点[/link]"


# -- bulk load ---------------------------------------------------------------------------------------


async def test_bulk_loaded_orders_are_found_and_later_adds_still_work(store: Store) -> None:
    order = dict(
        channel="taobao", shop_id=1, status="shipped", created_at=T0, tags=[], receiver_name="王五",
        receiver_phone="13700001111", phone_kind="plain", phone_norm="13700001111", phone_tail4="1111",
        city="杭州市", address_detail="文三路100号", customer_id=1, customer_match="new",
        search_text="王五 杭州市 文三路100号",
    )
    await store.bulk_load({
        "channel": [{"code": "taobao", "name": "淘宝"}],
        "shop": [{"id": 1, "channel": "taobao", "code": "tb-main", "name": "旗舰店"}],
        "customer": [{"id": 1, "name": "王五", "phone_norm": "13700001111", "city": "杭州市"}],
        "orders": [
            {**order, "id": 1, "channel_order_id": "B1", "order_no": "B1"},
            {**order, "id": 2, "channel_order_id": "B2", "order_no": "B2", "created_at": T0 + timedelta(hours=1)},
        ],
        "order_line": [{"id": 1, "order_id": 2, "sku": "SKU-A", "sku_norm": "SKU-A", "title": "杯"}],
        "parcel": [{"id": 1, "order_id": 2, "warehouse": "杭州仓", "waybill_no": "SF777", "last_track_text": ""}],
        "parcel_line": [{"parcel_id": 1, "line_id": 1, "quantity": 1}],
        "timeline_event": [{"id": 1, "order_id": 2, "at": T0, "actor_kind": "system", "actor_id": "demo",
                            "kind": "created"}],
        "name_gram": [{"gram": "王五", "order_id": 1}, {"gram": "王五", "order_id": 2}],
    })
    assert await find(store, "SF777") == [("B2", "waybill")]
    assert await find(store, "王五") == [("B2", "name"), ("B1", "name")]
    assert await find(store, "文三路") == [("B2", "address"), ("B1", "address")]
    assert await find(store, "13700001111") == [("B2", "phone"), ("B1", "phone")]
    card = await store.order_card(2)
    assert card.shop_name == "旗舰店" and card.parcels[0].lines == (("SKU-A", 1),)
    assert card.customer.order_count == 2

    # ordinary writes after a bulk load draw fresh ids (same shop, a new shop, a new customer ...)
    added = await add(store, "TB3", receiver_phone="13700001111", lines=[NewLine("SKU-B")], minutes=120)
    await add(store, "PDD4", channel="pdd", shop="pdd-1", receiver_phone="13911112222", minutes=130)
    await store.ensure_operator("alice", "王小丽", role="cs")
    await store.set_seller_memo(2, "批量导入", actor=ALICE)
    assert added > 2
    assert (await store.order_card(added)).customer.id == 1
    assert await store.count_orders() == 4
