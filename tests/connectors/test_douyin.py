"""Douyin shop over real HTTP against the 抖店 emulator: exactly once under faults, signatures,
single-flight token refresh, the per-query row cap (windows halved), unknown statuses, and
malformed payloads."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Quarantine, Window
from connectors.http import PermanentError
from connectors.platforms import cst_text
from connectors.platforms.douyin import DouyinAdapter, douyin_sign, param_json
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


async def _search(emu, body: dict, *, tamper: bool = False) -> dict:  # noqa: ANN001
    creds = emu.credentials("shop1")
    text = param_json(body)
    stamp = cst_text(datetime.now(UTC))
    query = {
        "app_key": creds["app_key"], "method": "order.searchList", "access_token": creds["access_token"],
        "timestamp": stamp, "v": "2", "sign_method": "hmac-sha256",
        "sign": douyin_sign(creds["app_key"], "order.searchList", text, stamp, creds["app_secret"]),
    }
    if tamper:
        body = {**body, "size": 1}
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{emu.url}/order/searchList", params=query, content=json.dumps(body))
    return answer.json()


async def test_every_order_exactly_once_on_a_bad_day(emulator, full_scan) -> None:
    emu = emulator("douyin", orders=160, days=2, faults=BAD_DAY)

    got, truth, _ = await full_scan(emu, days=2, page_size=5)

    assert len(truth) == 160
    assert checksums_of(got) == truth
    injected = emu.world.stats()["faults"]
    for kind in ("429", "500", "truncate", "shift", "dup"):
        assert injected.get(kind, 0) > 0, f"the {kind} fault never fired"


async def test_a_bad_signature_is_refused(emulator, source_for) -> None:
    emu = emulator("douyin", orders=5)
    source, _ = source_for(emu, "shop1", app_secret="wrong")

    with pytest.raises(PermanentError, match="isv.signature-invalid"):
        async for _ in source.pages(Window(NOW - timedelta(hours=1), NOW)):
            pass

    window = {"update_time_start": int(NOW.timestamp()) - 3600, "update_time_end": int(NOW.timestamp()), "page": 0, "size": 10}
    assert (await _search(emu, window))["code"] == 10000
    refused = await _search(emu, window, tamper=True)
    assert refused["code"] == 40003 and refused["sub_code"] == "isv.signature-invalid"


async def test_an_expired_token_is_refreshed_once_for_many_concurrent_calls(emulator, source_for) -> None:
    emu = emulator("douyin", orders=30)
    source, _ = source_for(emu, "shop1")
    emu.world.expire_tokens()
    end = int(NOW.timestamp())

    answers = await asyncio.gather(
        *(
            source.call("order.searchList", {"update_time_start": end - 3600 * (i + 1), "update_time_end": end - 3600 * i,
                                             "page": 0, "size": 100})
            for i in range(8)
        )
    )

    assert all("shop_order_list" in a for a in answers)
    assert emu.world.refreshes == 1 and source.tokens.refreshes == 1


async def test_a_window_over_the_row_cap_is_halved_until_it_fits(emulator, source_for) -> None:
    emu = emulator("douyin", orders=200, days=1, shops=("shop1",), max_rows=40)
    over = await _search(emu, {"update_time_start": int(NOW.timestamp()) - 86_400, "update_time_end": int(NOW.timestamp()),
                               "page": 4, "size": 10})
    assert over["code"] == 40004 and "40" in over["sub_msg"]

    source, adapter = source_for(emu, "shop1", max_rows=40)
    got: dict = {}
    await collect(source, adapter, Window(NOW - timedelta(days=1, minutes=5), NOW), got)

    assert set(got) == set(emu.world.orders)
    assert source.splits >= 4  # 200 rows in pieces of at most 40


async def test_an_unknown_status_is_quarantined_with_the_reason(emulator, source_for) -> None:
    emu = emulator("douyin", orders=15)
    target = next(o for o in emu.world.orders.values() if o.shop == "shop2")
    emu.world.modify(target.oid, "raw_status", value="106")
    emu.world.advance(1)
    source, adapter = source_for(emu, "shop2")

    raws = [raw async for page in source.pages(Window(NOW, NOW + timedelta(seconds=1))) for raw in page]

    assert [r["order_id"] for r in raws] == [target.oid]
    with pytest.raises(Quarantine) as held:
        adapter.to_order(raws[0], shop_code="shop2")
    assert held.value.code == "unknown_status" and "'106'" in held.value.reason


def test_fen_amounts_and_receivers_as_delivered() -> None:
    sample = next(s for s in platform_samples("douyin") if s["logistics_info"])
    sample = {**sample, "pay_amount": 12345, "post_amount": 0, "promotion_amount": 500, "post_tel": "", "post_receiver": ""}

    order = DouyinAdapter().to_order(sample, shop_code="s")

    assert order.total_fen == 12345 and order.discount_fen == 500
    assert order.receiver_phone == sample["encrypt_post_tel"]  # ciphertext kept as delivered
    assert order.parcels[0].waybill_no == sample["logistics_info"][0]["tracking_no"]
    with pytest.raises(Quarantine):
        DouyinAdapter().to_order({**sample, "pay_amount": "12.5"}, shop_code="s")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_malformed_orders_map_or_quarantine_never_crash(data) -> None:
    payload = data.draw(mutated(platform_samples("douyin")))
    assert_maps_or_quarantines(DouyinAdapter(), payload)
