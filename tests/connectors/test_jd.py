"""JD over real HTTP against the JOS emulator: exactly once under faults, signatures, the per-second
call limit, single-flight token refresh, the one-month window, unknown states, malformed payloads."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Quarantine, Window
from connectors.http import PermanentError, TransientError
from connectors.platforms import Tokens, cst_text
from connectors.platforms.jd import ORDER_STATES, JdAdapter, jd_sign
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


def _jd(emulator, **options):
    emu = emulator("jd", shops=("shop1", "shop2"), **options)
    emu.world.platform.rate_limit = None  # only the rate-limit test keeps JD's 10 calls/s
    return emu


async def _search(emu, business: dict, *, tamper: bool = False) -> dict:
    creds = emu.credentials("shop1")
    params = {
        "method": "jingdong.pop.order.search", "app_key": creds["app_key"], "access_token": creds["access_token"],
        "timestamp": cst_text(NOW), "v": "2.0", "360buy_param_json": json.dumps(business),
    }
    params["sign"] = jd_sign(params, creds["app_secret"])
    if tamper:
        params["360buy_param_json"] = json.dumps({**business, "page_size": "1"})
    async with httpx.AsyncClient() as client:
        return (await client.post(f"{emu.url}/routerjson", data=params)).json()


def _window(hours: float) -> dict:
    return {
        "start_date": cst_text(NOW - timedelta(hours=hours)), "end_date": cst_text(NOW),
        "order_state": ",".join(ORDER_STATES), "page": "1", "page_size": "10",
    }


async def test_every_order_exactly_once_on_a_bad_day(emulator, full_scan) -> None:
    emu = _jd(emulator, orders=150, days=2, faults=BAD_DAY)

    got, truth, _ = await full_scan(emu, days=2, page_size=5)

    assert len(truth) == 150
    assert checksums_of(got) == truth
    injected = emu.world.stats()["faults"]
    for kind in ("429", "limit", "500", "truncate", "shift", "dup"):
        assert injected.get(kind, 0) > 0, f"the {kind} fault never fired"
    assert {o.status for o in got.values()} >= {"paid", "shipped"}
    assert any(o.parcels and o.parcels[0].carrier for o in got.values())


async def test_a_bad_signature_is_refused_and_never_retried(emulator, source_for) -> None:
    emu = _jd(emulator, orders=5)
    source, _ = source_for(emu, "shop1", app_secret="wrong")

    with pytest.raises(PermanentError, match="12 无效签名"):
        async for _ in source.pages(Window(NOW - timedelta(hours=1), NOW)):
            pass
    assert emu.world.stats()["calls"]["jingdong.pop.order.search"] == 1

    ok = await _search(emu, _window(1))
    assert ok["jingdong_pop_order_search_responce"]["searchorderinfo_result"]["apiResult"]["success"] is True
    refused = await _search(emu, _window(1), tamper=True)  # business JSON changed after signing
    assert refused["error_response"]["code"] == "12"


async def test_over_ten_calls_a_second_are_answered_with_jds_limit_error(emulator, source_for) -> None:
    emu = emulator("jd", orders=40, days=1, shops=("shop1",))
    bucket = emu.world.platform.bucket
    assert emu.world.platform.rate_limit == 10
    bucket.clock = lambda: 1000.0  # a frozen second: nothing refills while the burst arrives

    burst = await asyncio.gather(*(_search(emu, _window(24)) for _ in range(25)))

    limited = [b for b in burst if "error_response" in b]
    assert len(limited) == 15 and bucket.refused == 15
    assert all(b["error_response"]["code"] == "2" and b["error_response"]["en_desc"] == "App Call Limited" for b in limited)

    # on the real clock the Source's own limiter keeps under it (and refused calls are retried)
    bucket.clock = time.monotonic
    bucket.reset()
    source, adapter = source_for(emu, "shop1", page_size=5, rate=10.0)
    got: dict = {}
    await collect(source, adapter, Window(NOW - timedelta(days=1, minutes=5), NOW), got)
    assert set(got) == set(emu.world.orders)


async def test_an_expired_token_is_refreshed_once_for_many_concurrent_calls(emulator, source_for) -> None:
    emu = _jd(emulator, orders=30)
    source, _ = source_for(emu, "shop2")
    original = emu.credentials("shop2")
    emu.world.expire_tokens()
    end = NOW

    answers = await asyncio.gather(
        *(
            source.call({"start_date": cst_text(end - timedelta(hours=i + 1)), "end_date": cst_text(end - timedelta(hours=i)),
                         "order_state": ",".join(ORDER_STATES), "page": "1", "page_size": "100"})
            for i in range(6)
        )
    )

    assert all("orderTotal" in a for a in answers)
    assert emu.world.refreshes == 1 and source.tokens.refreshes == 1
    stale, _ = source_for(emu, "shop2")
    stale.tokens = Tokens(original["access_token"], original["refresh_token"])  # used up by the refresh
    with pytest.raises(PermanentError, match="refresh_token"):
        await stale.call(_window(1))


async def test_a_window_over_a_month_is_refused_and_the_source_cuts_it(emulator, source_for) -> None:
    emu = _jd(emulator, orders=60, days=40)
    refused = await _search(emu, {**_window(24 * 31)})
    api = refused["jingdong_pop_order_search_responce"]["searchorderinfo_result"]["apiResult"]
    assert api["success"] is False and "1个月" in api["chineseErrCode"]

    source, adapter = source_for(emu, "shop1")
    got: dict = {}
    await collect(source, adapter, Window(NOW - timedelta(days=41), NOW), got)
    assert set(got) == {o.oid for o in emu.world.orders.values() if o.shop == "shop1"}

    with pytest.raises(PermanentError, match="1个月"):
        await source.call(_window(24 * 31))  # what a caller ignoring max_window would meet


async def test_an_unknown_state_is_only_returned_when_asked_for_and_then_quarantined(emulator, source_for) -> None:
    emu = _jd(emulator, orders=15)
    target = next(o for o in emu.world.orders.values() if o.shop == "shop2")
    emu.world.modify(target.oid, "raw_status", value="POP_ORDER_PAUSE")
    emu.world.advance(1)
    window = Window(NOW, NOW + timedelta(seconds=1))

    source, adapter = source_for(emu, "shop2")
    assert [raw async for page in source.pages(window) for raw in page] == []  # JD filters by order_state

    source, adapter = source_for(emu, "shop2", order_states=(*ORDER_STATES, "POP_ORDER_PAUSE"))
    raws = [raw async for page in source.pages(window) for raw in page]
    assert [r["orderId"] for r in raws] == [target.oid]
    with pytest.raises(Quarantine) as held:
        adapter.to_order(raws[0], shop_code="shop2")
    assert held.value.code == "unknown_status" and "'POP_ORDER_PAUSE'" in held.value.reason


async def test_transient_gateway_errors_give_up_as_transient_after_the_budget(emulator, source_for) -> None:
    emu = _jd(emulator, orders=5, faults="500=1")
    source, _ = source_for(emu, "shop1")
    with pytest.raises(TransientError):
        await source.call(_window(1))


def test_amounts_receivers_parcels_and_the_locked_state() -> None:
    samples = platform_samples("jd")
    sample = next(s for s in samples if s["waybill"])
    order = JdAdapter().to_order({**sample, "orderPayment": "129.90", "freightPrice": "0.1", "waybill": "JD1,JD2"}, shop_code="s")
    assert order.total_fen == 12990 and order.post_fee_fen == 10
    assert [p.waybill_no for p in order.parcels] == ["JD1", "JD2"]
    assert order.receiver_phone == sample["consigneeInfo"]["mobile"]  # masked / virtual kept as delivered
    assert not order.address_detail.startswith(sample["consigneeInfo"]["province"])
    assert order.address_detail.startswith(sample["consigneeInfo"]["town"])
    locked = JdAdapter().to_order({**sample, "orderState": "LOCKED", "afterSaleState": "0"}, shop_code="s")
    assert locked.status == "hold" and locked.after_sale == "refund_requested"
    with pytest.raises(Quarantine, match="more than two decimals"):
        JdAdapter().to_order({**sample, "orderPayment": "1.234"}, shop_code="s")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_malformed_orders_map_or_quarantine_never_crash(data) -> None:
    payload = data.draw(mutated(platform_samples("jd")))
    assert_maps_or_quarantines(JdAdapter(), payload)
