"""Pinduoduo over real HTTP against the PDD emulator: exactly once under faults, signatures,
single-flight token refresh, the 30-minute window, unknown statuses, and malformed payloads."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Quarantine, Window
from connectors.http import PermanentError
from connectors.platforms import Tokens
from connectors.platforms.pdd import METHOD, PddAdapter, pdd_sign
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


def _signed(creds: dict, **business: object) -> dict[str, str]:
    params = {k: str(v) for k, v in business.items()}
    params.update(
        type=METHOD, client_id=creds["app_key"], access_token=creds["access_token"], timestamp=str(int(time.time())),
        data_type="JSON", version="V1",
    )
    params["sign"] = pdd_sign(params, creds["app_secret"])
    return params


async def test_every_order_exactly_once_on_a_bad_day(emulator, full_scan) -> None:
    emu = emulator("pdd", orders=150, days=0.5, faults=BAD_DAY.replace("timeout=0.02", "timeout=0.01"))

    got, truth, _ = await full_scan(emu, days=0.5, page_size=5)

    assert len(truth) == 150
    assert checksums_of(got) == truth
    injected = emu.world.stats()["faults"]
    for kind in ("429", "limit", "500", "truncate", "shift", "dup"):
        assert injected.get(kind, 0) > 0, f"the {kind} fault never fired"


async def test_a_bad_signature_is_refused(emulator, source_for) -> None:
    emu = emulator("pdd", orders=5)
    source, _ = source_for(emu, "shop1", app_secret="wrong")

    with pytest.raises(PermanentError, match="10016"):
        async for _ in source.pages(Window(NOW - timedelta(minutes=20), NOW)):
            pass

    creds = emu.credentials("shop1")
    params = _signed(
        creds, start_updated_at=int(NOW.timestamp()) - 600, end_updated_at=int(NOW.timestamp()),
        order_status=5, refund_status=5, is_lucky_flag=0,
    )
    params["page"] = "2"  # not covered by the signature
    async with httpx.AsyncClient() as client:
        error = (await client.post(f"{emu.url}/api/router", data=params)).json()["error_response"]
    assert error["error_code"] == 10016


async def test_an_expired_token_is_refreshed_once_for_many_concurrent_calls(emulator, source_for) -> None:
    emu = emulator("pdd", orders=30)
    source, _ = source_for(emu, "shop2")
    original = emu.credentials("shop2")
    emu.world.expire_tokens()
    end = int(NOW.timestamp())
    windows = [(end - 1800 * (i + 1), end - 1800 * i) for i in range(6)]

    answers = await asyncio.gather(
        *(
            source.call(METHOD, {"start_updated_at": a, "end_updated_at": b, "order_status": 5, "refund_status": 5,
                                 "is_lucky_flag": 0, "page": 1, "page_size": 100})
            for a, b in windows
        )
    )

    assert all("order_sn_increment_get_response" in a for a in answers)
    assert emu.world.refreshes == 1 and source.tokens.refreshes == 1

    # the refresh token was used up: a second client holding the old one cannot refresh
    stale, _ = source_for(emu, "shop2")
    stale.tokens = Tokens(original["access_token"], original["refresh_token"])
    with pytest.raises(PermanentError, match="refresh_token"):
        await stale.call(METHOD, {"start_updated_at": end - 60, "end_updated_at": end, "order_status": 5,
                                  "refund_status": 5, "is_lucky_flag": 0})


async def test_a_window_over_thirty_minutes_is_refused_and_the_source_cuts_it(emulator, source_for) -> None:
    emu = emulator("pdd", orders=40, days=0.25)
    end = int(NOW.timestamp())
    params = _signed(
        emu.credentials("shop1"), start_updated_at=end - 31 * 60, end_updated_at=end,
        order_status=5, refund_status=5, is_lucky_flag=0,
    )
    async with httpx.AsyncClient() as client:
        error = (await client.post(f"{emu.url}/api/router", data=params)).json()["error_response"]
    assert error["error_code"] == 10000 and "30分钟" in error["sub_msg"]

    source, adapter = source_for(emu, "shop1")
    got: dict = {}
    await collect(source, adapter, Window(NOW - timedelta(hours=6, minutes=5), NOW), got)
    assert set(got) == {o.oid for o in emu.world.orders.values() if o.shop == "shop1"}
    assert emu.world.stats()["calls"][METHOD] >= 13  # 6 h in 30-minute pieces


async def test_an_unknown_status_is_quarantined_with_the_reason(emulator, source_for) -> None:
    emu = emulator("pdd", orders=15)
    target = next(o for o in emu.world.orders.values() if o.shop == "shop3")
    emu.world.modify(target.oid, "raw_status", value="7")
    emu.world.advance(1)
    source, adapter = source_for(emu, "shop3")

    raws = [raw async for page in source.pages(Window(NOW, NOW + timedelta(seconds=1))) for raw in page]

    assert [r["order_sn"] for r in raws] == [target.oid]
    with pytest.raises(Quarantine) as held:
        adapter.to_order(raws[0], shop_code="shop3")
    assert held.value.code == "unknown_status" and "'7'" in held.value.reason


def test_amounts_in_yuan_numbers_and_the_refund_close_rule() -> None:
    sample = next(s for s in platform_samples("pdd") if s["order_status"] == 1)
    order = PddAdapter().to_order({**sample, "pay_amount": 29.9, "postage": "0.1", "discount_amount": 0}, shop_code="s")
    assert order.total_fen == 2990 and order.post_fee_fen == 10 and order.discount_fen == 0
    assert order.receiver_phone == sample["receiver_phone"]  # plain while 待发货, kept as delivered

    refunded = PddAdapter().to_order({**sample, "refund_status": 4}, shop_code="s")
    assert refunded.status == "cancelled" and refunded.raw_status == "1" and refunded.after_sale == "refunded"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_malformed_orders_map_or_quarantine_never_crash(data) -> None:
    payload = data.draw(mutated(platform_samples("pdd")))
    assert_maps_or_quarantines(PddAdapter(), payload)
