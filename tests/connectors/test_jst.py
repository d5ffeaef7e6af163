"""聚水潭 over real HTTP against the ERP emulator: exactly once under faults, signatures, the 7-day
window, single-flight token refresh, Merged / Split as links (status from the order's own facts, the
link in tags and on the timeline), unknown statuses, and malformed payloads."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Quarantine, Window
from connectors.http import PermanentError
from connectors.platforms import Tokens, cst_text
from connectors.platforms.jst import JstAdapter, jst_sign
from db.codes import ActorKind
from db.views import Actor
from tests.connectors.conftest import (
    BAD_DAY,
    NOW,
    assert_maps_or_quarantines,
    checksums_of,
    collect,
    mutated,
    platform_samples,
)

pytestmark = pytest.mark.usefixtures("fast_retries")


def _jst(emulator, **options):
    return emulator("jst", **{"shops": ("shop1", "shop2"), **options})


async def _query(emu, biz: dict, *, tamper: bool = False) -> dict:
    creds = emu.credentials("shop1")
    params = {
        "app_key": creds["app_key"], "access_token": creds["access_token"], "timestamp": str(int(time.time())),
        "charset": "utf-8", "version": "2", "biz": json.dumps(biz),
    }
    params["sign"] = jst_sign(params, creds["app_secret"])
    if tamper:
        params["biz"] = json.dumps({**biz, "page_size": 1})
    async with httpx.AsyncClient() as client:
        return (await client.post(f"{emu.url}/open/orders/single/query", data=params)).json()


def _window(days: float) -> dict:
    return {"modified_begin": cst_text(NOW - timedelta(days=days)), "modified_end": cst_text(NOW), "page_index": 1, "page_size": 10}


async def test_every_order_exactly_once_on_a_bad_day(emulator, full_scan) -> None:
    emu = _jst(emulator, orders=150, days=2, faults=BAD_DAY)

    got, truth, _ = await full_scan(emu, days=2, page_size=5)

    assert len(truth) == 150
    assert checksums_of(got) == truth
    injected = emu.world.stats()["faults"]
    for kind in ("429", "limit", "500", "truncate", "shift", "dup"):
        assert injected.get(kind, 0) > 0, f"the {kind} fault never fired"
    raw = {o.raw_status for o in got.values()}
    assert {"WaitConfirm", "Delivering", "Sent", "Merged", "Split"} <= raw
    assert {o.status for o in got.values()} >= {"paid", "allocating", "shipped"}


async def test_signatures_pages_and_the_seven_day_window(emulator, source_for) -> None:
    emu = _jst(emulator, orders=60, days=12)
    ok = await _query(emu, _window(7))
    assert ok["code"] == 0 and ok["data"]["page_index"] == 1 and len(ok["data"]["orders"]) == 10
    assert ok["data"]["page_count"] == -(-ok["data"]["data_count"] // 10) and ok["data"]["has_next"] is True
    assert (await _query(emu, _window(7), tamper=True))["code"] == 120
    too_long = await _query(emu, _window(7.01))
    assert too_long["code"] == 140 and "七天" in too_long["msg"]
    assert (await _query(emu, {"modified_begin": cst_text(NOW - timedelta(days=1))}))["code"] == 140

    bad, _ = source_for(emu, "shop1", app_secret="wrong")
    with pytest.raises(PermanentError, match="120"):
        async for _ in bad.pages(Window(NOW - timedelta(hours=1), NOW)):
            pass

    source, adapter = source_for(emu, "shop1")  # 13 days in 7-day pieces
    got: dict = {}
    await collect(source, adapter, Window(NOW - timedelta(days=13), NOW), got)
    assert set(got) == {o.oid for o in emu.world.orders.values() if o.shop == "shop1"}


async def test_an_expired_token_is_refreshed_once_for_many_concurrent_calls(emulator, source_for) -> None:
    emu = _jst(emulator, orders=30)
    source, _ = source_for(emu, "shop2")
    original = emu.credentials("shop2")
    emu.world.expire_tokens()
    assert (await _query(emu, _window(1)))["code"] == 100

    answers = await asyncio.gather(
        *(
            source.call({"modified_begin": cst_text(NOW - timedelta(hours=i + 1)), "modified_end": cst_text(NOW - timedelta(hours=i)),
                         "page_index": 1, "page_size": 100})
            for i in range(6)
        )
    )

    assert all("data_count" in a for a in answers)
    assert emu.world.refreshes == 1 and source.tokens.refreshes == 1
    stale, _ = source_for(emu, "shop2")
    stale.tokens = Tokens(original["access_token"], original["refresh_token"])
    with pytest.raises(PermanentError, match="refresh_token"):
        await stale.call(_window(1))


def test_merged_and_split_are_links_not_statuses() -> None:
    samples = platform_samples("jst")
    merged = next(s for s in samples if s["status"] == "Merged" and s["l_id"])
    order = JstAdapter().to_order(merged, shop_code="s")
    assert order.raw_status == "Merged" and order.status == "shipped"  # its own shipment decides
    assert order.tags == [f"聚水潭合并→{merged['link_o_id']}"]

    unshipped = {**merged, "l_id": "", "send_date": ""}
    assert JstAdapter().to_order(unshipped, shop_code="s").status == "paid"
    closed = {**unshipped, "shop_status": "TRADE_CLOSED"}
    assert JstAdapter().to_order(closed, shop_code="s").status == "cancelled"
    unpaid = {**unshipped, "pay_date": ""}
    assert JstAdapter().to_order(unpaid, shop_code="s").status == "pending_payment"

    split = next(s for s in samples if s["status"] == "Split")
    assert JstAdapter().to_order(split, shop_code="s").tags == [f"聚水潭拆分→{split['link_o_id']}"]
    result = next(s for s in samples if s["is_merge"])
    assert JstAdapter().to_order(result, shop_code="s").tags == [f"聚水潭合并单:{result['merge_so_id']}"]
    assert JstAdapter().to_order(next(s for s in samples if s["is_split"]), shop_code="s").tags == ["聚水潭拆分单"]
    question = {**unshipped, "status": "Question", "question_type": "地址异常"}
    assert JstAdapter().to_order(question, shop_code="s").status == "hold"  # 异常 is a status: the map decides


async def test_the_link_reaches_the_orders_timeline(store) -> None:
    from db.ingest import ingest

    merged = next(s for s in platform_samples("jst") if s["status"] == "Merged")
    adapter, actor = JstAdapter(), Actor(ActorKind.CONNECTOR, "jst:shop1")
    plain = adapter.to_order({**merged, "status": "WaitConfirm", "link_o_id": "", "l_id": "", "send_date": ""}, shop_code="shop1")
    await ingest(store, [plain], actor=actor, at=datetime(2026, 11, 20, 7, 0, tzinfo=UTC))
    linked = adapter.to_order({**merged, "l_id": "", "send_date": "", "modified": cst_text(NOW + timedelta(minutes=1))},
                              shop_code="shop1")
    await ingest(store, [linked], actor=actor, at=datetime(2026, 11, 20, 7, 1, tzinfo=UTC))

    card = await store.order_card(await store.order_id_by_no(plain.order_no), now=NOW)
    assert f"聚水潭合并→{merged['link_o_id']}" in card.tags
    assert card.status == "paid"  # the link did not change what the order is
    updated = [e for e in card.timeline if e.actor_id == "jst:shop1" and e.kind == "updated" and "tags" in e.message]
    assert updated, [(e.kind, e.actor_id, e.message) for e in card.timeline]  # the connector wrote the link's arrival


async def test_an_unknown_status_is_quarantined_with_the_reason(emulator, source_for) -> None:
    emu = _jst(emulator, orders=15)
    target = next(o for o in emu.world.orders.values() if o.shop == "shop2")
    emu.world.modify(target.oid, "raw_status", value="WaitSomethingNew")
    emu.world.advance(1)
    source, adapter = source_for(emu, "shop2")

    raws = [raw async for page in source.pages(Window(NOW, NOW + timedelta(seconds=1))) for raw in page]

    assert [adapter.external_id(r) for r in raws] == [target.oid]
    with pytest.raises(Quarantine) as held:
        adapter.to_order(raws[0], shop_code="shop2")
    assert held.value.code == "unknown_status" and "'WaitSomethingNew'" in held.value.reason


def test_yuan_numbers_plain_receivers_and_parcels() -> None:
    sample = next(s for s in platform_samples("jst") if s["l_id"])
    order = JstAdapter().to_order({**sample, "pay_amount": 29.9, "freight": "5", "free_amount": 0.1}, shop_code="s")
    assert order.total_fen == 2990 and order.post_fee_fen == 500 and order.discount_fen == 10
    assert order.receiver_phone == sample["receiver_mobile"] and "*" not in order.receiver_name
    assert order.order_no == sample["so_id"] and order.channel_order_id == str(sample["o_id"])
    assert order.parcels[0].waybill_no == sample["l_id"] and order.parcels[0].carrier in {"ZTO", "YTO", "YD", "SF", "JT", "EMS"}
    with pytest.raises(Quarantine):
        JstAdapter().to_order({**sample, "is_merge": "maybe"}, shop_code="s")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_malformed_orders_map_or_quarantine_never_crash(data) -> None:
    payload = data.draw(mutated(platform_samples("jst")))
    assert_maps_or_quarantines(JstAdapter(), payload)
