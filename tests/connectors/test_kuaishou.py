"""Kuaishou over real HTTP against the 快手小店 emulator: exactly once under faults with cursor paging,
short pages that are not the last, signatures, the 7-day window, rotating refresh tokens refreshed
once for concurrent callers, unknown statuses, and malformed payloads."""

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
from connectors.http import PermanentError, TruncatedRead
from connectors.platforms import Tokens
from connectors.platforms.kuaishou import (
    NOMORE,
    KuaishouAdapter,
    check_page,
    kuaishou_sign,
)
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
MS = int(NOW.timestamp()) * 1000


def _kuaishou(emulator, **options):
    return emulator("kuaishou", **{"shops": ("shop1", "shop2"), **options})


async def _list(emu, param: dict, *, sign_method: str = "MD5", tamper: bool = False) -> dict:
    creds = emu.credentials("shop1")
    params = {
        "appkey": creds["app_key"], "method": "open.order.cursor.list", "version": "1",
        "access_token": creds["access_token"], "timestamp": str(int(time.time() * 1000)), "signMethod": sign_method,
        "param": json.dumps(param),
    }
    params["sign"] = kuaishou_sign(params, creds["app_secret"])
    if tamper:
        params["param"] = json.dumps({**param, "pageSize": 1})
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{emu.url}/open/order/cursor/list", params=params)).json()


async def test_every_order_exactly_once_on_a_bad_day(emulator, full_scan) -> None:
    emu = _kuaishou(emulator, orders=150, days=2, faults=BAD_DAY)

    got, truth, _ = await full_scan(emu, days=2, page_size=5)

    assert len(truth) == 150
    assert checksums_of(got) == truth
    injected = emu.world.stats()["faults"]
    for kind in ("429", "limit", "500", "truncate", "shift", "dup"):
        assert injected.get(kind, 0) > 0, f"the {kind} fault never fired"


async def test_the_cursor_walks_every_order_once_and_ends_at_nomore(emulator) -> None:
    emu = _kuaishou(emulator, orders=23, days=1, shops=("shop1",))
    seen, cursor, calls = [], "", 0
    while cursor != NOMORE:
        answer = await _list(emu, {"beginTime": MS - 86_400_000 - 60_000, "endTime": MS, "pageSize": 5, "cursor": cursor},
                             sign_method="HMAC_SHA256" if calls % 2 else "MD5")
        assert answer["result"] == 1, answer
        seen += [row["orderBaseInfo"]["oid"] for row in answer["data"]["orderList"]]
        cursor, calls = answer["data"]["cursor"], calls + 1
    assert sorted(str(oid) for oid in seen) == sorted(emu.world.orders)
    assert calls == 5  # 23 rows in pages of 5: the fifth page is short and says nomore


def test_a_short_page_that_is_not_the_last_fails_loudly() -> None:
    rows = [{"orderBaseInfo": {"oid": 1}}]
    check_page({"orderList": rows, "cursor": NOMORE}, 5, "", "t")  # short and last: fine
    for data in (
        {"orderList": rows, "cursor": "MTox"},  # short, yet more to come
        {"orderList": rows * 5},  # no cursor at all
        {"cursor": NOMORE},  # no list
        {"orderList": rows * 5, "cursor": "same"},  # the cursor did not move
    ):
        with pytest.raises(TruncatedRead):
            check_page(data, 5, "same", "t")


async def test_signatures_windows_and_their_error_codes(emulator, source_for) -> None:
    emu = _kuaishou(emulator, orders=5)
    window = {"beginTime": MS - 3_600_000, "endTime": MS, "pageSize": 10, "cursor": ""}
    assert (await _list(emu, window))["result"] == 1
    assert (await _list(emu, window, tamper=True))["result"] == 25
    assert (await _list(emu, {**window, "beginTime": MS - 8 * 86_400_000}))["result"] == 300004
    assert (await _list(emu, {**window, "beginTime": MS, "endTime": MS - 1}))["result"] == 300003
    assert (await _list(emu, {**window, "beginTime": MS - 91 * 86_400_000, "endTime": MS - 90 * 86_400_000}))["result"] == 300005
    assert (await _list(emu, {**window, "pageSize": 51}))["result"] == 40002

    bad, _ = source_for(emu, "shop1", app_secret="wrong")
    with pytest.raises(PermanentError, match="25"):
        async for _ in bad.pages(Window(NOW - timedelta(hours=1), NOW)):
            pass

    source, adapter = source_for(emu, "shop1", page_size=50)  # a 20-day window read as 7-day pieces
    before = emu.world.stats()["calls"]["open.order.cursor.list"]
    got: dict = {}
    await collect(source, adapter, Window(NOW - timedelta(days=20), NOW), got)
    assert set(got) == {o.oid for o in emu.world.orders.values() if o.shop == "shop1"}
    assert emu.world.stats()["calls"]["open.order.cursor.list"] - before == 3  # 7 + 7 + 6 days, one page each


async def test_rotating_refresh_tokens_are_refreshed_once_for_concurrent_calls(emulator, source_for) -> None:
    emu = _kuaishou(emulator, orders=30)
    source, _ = source_for(emu, "shop2")
    original = emu.credentials("shop2")
    emu.world.expire_tokens()

    answers = await asyncio.gather(
        *(
            source.call({"beginTime": MS - 3_600_000 * (i + 1), "endTime": MS - 3_600_000 * i, "pageSize": 50,
                         "cursor": "", "queryType": 2, "sort": 2})
            for i in range(8)
        )
    )

    assert all("orderList" in a for a in answers)
    assert emu.world.refreshes == 1 and source.tokens.refreshes == 1
    assert source.tokens.refresh_token != original["refresh_token"]  # it rotated: persist the new one

    # the old refresh token died on use: a second holder of it cannot refresh any more ...
    stale, _ = source_for(emu, "shop2")
    stale.tokens = Tokens(original["access_token"], original["refresh_token"])
    with pytest.raises(PermanentError, match="refreshToken.discarded"):
        await stale.call({"beginTime": MS - 60_000, "endTime": MS, "pageSize": 50, "cursor": ""})
    # ... while the holder of the new pair refreshes again when its token expires
    emu.world.expire_tokens()
    await source.call({"beginTime": MS - 60_000, "endTime": MS, "pageSize": 50, "cursor": ""})
    assert emu.world.refreshes == 2 and source.tokens.refreshes == 2


async def test_an_unknown_status_is_quarantined_with_the_reason(emulator, source_for) -> None:
    emu = _kuaishou(emulator, orders=15)
    target = next(o for o in emu.world.orders.values() if o.shop == "shop2")
    emu.world.modify(target.oid, "raw_status", value="60")
    emu.world.advance(1)
    source, adapter = source_for(emu, "shop2")

    raws = [raw async for page in source.pages(Window(NOW, NOW + timedelta(seconds=1))) for raw in page]

    assert [adapter.external_id(r) for r in raws] == [target.oid]
    with pytest.raises(Quarantine) as held:
        adapter.to_order(raws[0], shop_code="shop2")
    assert held.value.code == "unknown_status" and "'60'" in held.value.reason


def test_fen_amounts_ms_times_and_receivers_as_delivered() -> None:
    samples = platform_samples("kuaishou")
    cipher = next(s for s in samples if not s["orderAddress"]["desensitiseMobile"])
    order = KuaishouAdapter().to_order(cipher, shop_code="s")
    assert order.receiver_phone == cipher["orderAddress"]["encryptedMobile"]  # ciphertext kept as delivered
    assert order.total_fen == cipher["orderBaseInfo"]["totalFee"]
    assert int(order.created_at.timestamp()) * 1000 == cipher["orderBaseInfo"]["createTime"]

    shipped = next(s for s in samples if s["orderLogisticsInfo"])
    parcel = KuaishouAdapter().to_order(shipped, shop_code="s").parcels[0]
    assert parcel.waybill_no == shipped["orderLogisticsInfo"][0]["expressNo"] and parcel.carrier in {"EMS", "SF", "YTO", "ZTO", "YD", "JT"}
    refunding = {**shipped, "orderRefundList": [{"refundId": 1, "refundStatus": 10}]}
    assert KuaishouAdapter().to_order(refunding, shop_code="s").after_sale == "refund_requested"
    with pytest.raises(Quarantine):
        KuaishouAdapter().to_order({**shipped, "orderBaseInfo": {**shipped["orderBaseInfo"], "totalFee": "12.50"}}, shop_code="s")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_malformed_orders_map_or_quarantine_never_crash(data) -> None:
    payload = data.draw(mutated(platform_samples("kuaishou")))
    assert_maps_or_quarantines(KuaishouAdapter(), payload)
