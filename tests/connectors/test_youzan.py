"""Youzan over real HTTP against the 有赞云 emulator: exactly once under faults, the same tid on two
pages, date-only and over-long windows, the 100-page cap, single-flight token refresh, unknown
statuses, and malformed payloads."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Quarantine, Window
from connectors.http import PermanentError
from connectors.platforms import Tokens, cst_text
from connectors.platforms.youzan import METHOD, VERSION, YouzanAdapter
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


def _youzan(emulator, **options):
    return emulator("youzan", **{"shops": ("shop1", "shop2"), **options})


async def _sold(emu, body: dict, *, token: str | None = None) -> dict:
    token = emu.credentials("shop1")["access_token"] if token is None else token
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{emu.url}/api/{METHOD}/{VERSION}", params={"access_token": token}, json=body)
    return answer.json()


async def test_every_trade_exactly_once_on_a_bad_day(emulator, full_scan) -> None:
    emu = _youzan(emulator, orders=150, days=2, faults=BAD_DAY)

    got, truth, _ = await full_scan(emu, days=2, page_size=5)

    assert len(truth) == 150
    assert checksums_of(got) == truth
    injected = emu.world.stats()["faults"]
    for kind in ("429", "limit", "500", "truncate", "shift", "dup"):
        assert injected.get(kind, 0) > 0, f"the {kind} fault never fired"


async def test_the_same_tid_on_two_pages_is_delivered_once(emulator, source_for) -> None:
    emu = _youzan(emulator, orders=60, days=1, shops=("shop1",), faults="dup=1")
    source, adapter = source_for(emu, "shop1", page_size=7)

    seen = [adapter.external_id(raw) async for page in source.pages(Window(NOW - timedelta(days=1, minutes=5), NOW)) for raw in page]

    assert emu.world.stats()["faults"]["dup"] > 0  # every page carried a row of its neighbour
    assert sorted(seen) == sorted(emu.world.orders)  # ... and each tid still came exactly once


async def test_date_only_and_over_three_month_windows_are_refused(emulator) -> None:
    emu = _youzan(emulator, orders=5)
    end = cst_text(NOW)

    date_only = await _sold(emu, {"start_update": "2026-11-19", "end_update": end})
    assert date_only["success"] is False and date_only["code"] == 5001 and "日期" in date_only["message"]
    unpaired = await _sold(emu, {"start_update": cst_text(NOW - timedelta(days=1))})
    assert unpaired["code"] == 5001
    too_long = await _sold(emu, {"start_update": cst_text(NOW - timedelta(days=93)), "end_update": end})
    assert too_long["code"] == 5001 and "3个月" in too_long["message"]
    ok = await _sold(emu, {"start_update": cst_text(NOW - timedelta(days=90)), "end_update": end})
    assert ok["success"] is True
    assert ok["data"]["total_results"] == sum(o.shop == "shop1" for o in emu.world.orders.values())


async def test_a_window_past_the_hundred_page_cap_is_halved_until_it_fits(emulator, source_for) -> None:
    emu = _youzan(emulator, orders=130, days=1, shops=("shop1",))
    over = await _sold(emu, {"start_update": cst_text(NOW - timedelta(days=1)), "end_update": cst_text(NOW),
                             "page_no": 101, "page_size": 1})
    assert over["code"] == 5001 and "page_no" in over["message"]

    source, adapter = source_for(emu, "shop1", page_size=1)  # 100 pages of 1 reach 100 of the 130
    got: dict = {}
    await collect(source, adapter, Window(NOW - timedelta(days=1, minutes=5), NOW), got)

    assert set(got) == set(emu.world.orders)
    assert source.splits >= 1


async def test_an_expired_token_is_refreshed_once_for_many_concurrent_calls(emulator, source_for) -> None:
    emu = _youzan(emulator, orders=30)
    source, _ = source_for(emu, "shop2")
    original = emu.credentials("shop2")
    emu.world.expire_tokens()
    expired = await _sold(emu, {"start_update": cst_text(NOW - timedelta(hours=1)), "end_update": cst_text(NOW)},
                          token=original["access_token"])
    assert expired["gw_err_resp"]["err_code"] == 4202

    answers = await asyncio.gather(
        *(
            source.call({"start_update": cst_text(NOW - timedelta(hours=i + 1)), "end_update": cst_text(NOW - timedelta(hours=i)),
                         "page_no": 1, "page_size": 100})
            for i in range(6)
        )
    )

    assert all("total_results" in a for a in answers)
    assert emu.world.refreshes == 1 and source.tokens.refreshes == 1
    stale, _ = source_for(emu, "shop2")
    stale.tokens = Tokens(original["access_token"], original["refresh_token"])
    with pytest.raises(PermanentError, match="1106"):
        await stale.call({"start_update": cst_text(NOW - timedelta(hours=1)), "end_update": cst_text(NOW)})


async def test_a_token_outside_the_query_counts_as_missing(emulator) -> None:
    emu = _youzan(emulator, orders=3)
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{emu.url}/api/{METHOD}/{VERSION}", json={"access_token": emu.credentials("shop1")["access_token"]}
        )
        no_version = await client.post(f"{emu.url}/api/{METHOD}", params={"access_token": "x"}, json={})
    assert answer.json()["gw_err_resp"]["err_code"] == 4201
    assert no_version.json()["gw_err_resp"]["err_code"] == 4001


async def test_an_unknown_status_is_quarantined_with_the_reason(emulator, source_for) -> None:
    emu = _youzan(emulator, orders=15)
    target = next(o for o in emu.world.orders.values() if o.shop == "shop2")
    emu.world.modify(target.oid, "raw_status", value="WAIT_GROUP")
    emu.world.advance(1)
    source, adapter = source_for(emu, "shop2")

    raws = [raw async for page in source.pages(Window(NOW, NOW + timedelta(seconds=1))) for raw in page]

    assert [adapter.external_id(r) for r in raws] == [target.oid]
    with pytest.raises(Quarantine) as held:
        adapter.to_order(raws[0], shop_code="shop2")
    assert held.value.code == "unknown_status" and "'WAIT_GROUP'" in held.value.reason


def test_yuan_amounts_fen_deduction_refunds_gifts_and_parcels() -> None:
    samples = platform_samples("youzan")
    sample = next(s for s in samples if s["full_order_info"]["delivery_order"])
    info = sample["full_order_info"]
    order = YouzanAdapter().to_order(
        {"full_order_info": {**info, "pay_info": {**info["pay_info"], "payment": "88.8", "deduction_pay": 500}}},
        shop_code="s",
    )
    assert order.total_fen == 8880 and order.discount_fen == 500
    assert order.parcels and order.parcels[0].waybill_no == info["delivery_order"][0]["dists"][0]["express_info"]["express_no"]
    assert order.receiver_phone == info["address_info"]["receiver_tel"]
    assert order.after_sale == "none"  # refund_state 0: no refund

    refunding = {**info, "order_info": {**info["order_info"], "refund_state": 11}}
    assert YouzanAdapter().to_order({"full_order_info": refunding}, shop_code="s").after_sale == "refund_requested"
    gifted = {**info, "orders": [*info["orders"], {"oid": "9", "outer_sku_id": "GIFT-CARD", "title": "卡", "num": 1,
                                                     "price": "0.00", "is_present": True}]}
    assert YouzanAdapter().to_order({"full_order_info": gifted}, shop_code="s").lines[-1].gift is True
    with pytest.raises(Quarantine):
        YouzanAdapter().to_order({"full_order_info": {**info, "pay_info": {**info["pay_info"], "deduction_pay": "5.5"}}},
                                 shop_code="s")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_malformed_trades_map_or_quarantine_never_crash(data) -> None:
    payload = data.draw(mutated(platform_samples("youzan")))
    assert_maps_or_quarantines(YouzanAdapter(), payload)


def test_a_refused_refund_reads_as_no_after_sale_in_the_map_the_emulator_and_the_demo() -> None:
    """Youzan's refund_state 0 means "no refund", which is also where a refused request goes back to:
    the map, the emulator and the demo agree, so no Youzan order is ever shown as 售后已拒绝."""
    from connectors import statusmap
    from connectors.emulators.core import Clock, World, make_platform
    from deskapp.services.demo import DEMO_NOW, _Demo

    table = statusmap.load("youzan")
    assert [table.after_sale(raw) for raw in ("0", "1", "2", "11", "12")] == [
        "none", "refund_requested", "refunded", "refund_requested", "refunded"]

    world = World(make_platform("youzan"), orders=300, seed=3, clock=Clock(NOW, 0), days=20)
    refused = [o for o in world.orders.values() if o.state(o.truth_n).after == "rejected"]
    assert refused  # the emulator's sellers do refuse some requests
    for emu_order in refused:
        raw = world.platform.render(emu_order, emu_order.state(emu_order.truth_n))
        assert raw["full_order_info"]["order_info"]["refund_state"] == 0
        order = YouzanAdapter().to_order(raw, shop_code=emu_order.shop)
        assert (order.after_sale, order.raw_after_sale) == ("none", "")

    demo = _Demo(1500, 16, DEMO_NOW)  # a seed whose Youzan orders include refused requests
    tables: dict[str, list[dict]] = {}
    while demo.done < 1500:
        for name, rows in demo.batch(1500 - demo.done).items():
            tables.setdefault(name, []).extend(rows)
    youzan = {o["id"]: o for o in tables["orders"] if o["channel"] == "youzan"}
    refusals = {e["order_id"] for e in tables["timeline_event"]
                if e["order_id"] in youzan and (e["message"] or "").startswith("卖家拒绝售后")}
    assert refusals
    for order_id in refusals:
        assert (youzan[order_id]["after_sale"], youzan[order_id]["raw_after_sale"]) == ("none", "")
    assert all(o["after_sale"] != "rejected" and o["raw_after_sale"] != "0" for o in youzan.values())
