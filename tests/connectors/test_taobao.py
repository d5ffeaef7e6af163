"""Taobao / Tmall over real HTTP against the TOP emulator: exactly once under faults, signatures,
single-flight token refresh, window limits, unknown statuses, and malformed payloads."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Quarantine, Window
from connectors.http import PermanentError
from connectors.platforms import cst_text
from connectors.platforms.taobao import LIST_FIELDS, TaobaoAdapter, top_sign
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


@pytest.mark.parametrize("channel", ["taobao", "tmall"])
async def test_every_trade_exactly_once_on_a_bad_day(channel, emulator, full_scan) -> None:
    emu = emulator(channel, orders=160, days=2, faults=BAD_DAY)

    got, truth, rows = await full_scan(emu, days=2)

    assert len(truth) == 160
    assert checksums_of(got) == truth  # nothing missed, nothing extra, every order's latest content
    injected = emu.world.stats()["faults"]
    for kind in ("429", "500", "truncate", "shift", "dup"):
        assert injected.get(kind, 0) > 0, f"the {kind} fault never fired: the test proved nothing about it"
    assert rows >= 160


async def test_a_bad_signature_is_refused_with_tops_error(emulator, source_for) -> None:
    emu = emulator("taobao", orders=10)
    source, _ = source_for(emu, "shop1", app_secret="not-the-secret")

    with pytest.raises(PermanentError) as refused:
        async for _ in source.pages(Window(NOW - timedelta(hours=1), NOW)):
            pass
    assert "25" in str(refused.value) and "Invalid signature" in str(refused.value)
    assert emu.world.stats()["calls"]["taobao.trades.sold.increment.get"] == 1  # never retried

    good = emu.credentials("shop1")
    params = {
        "method": "taobao.trades.sold.increment.get", "app_key": good["app_key"], "session": good["access_token"],
        "timestamp": cst_text(NOW), "format": "json", "v": "2.0", "sign_method": "md5", "fields": LIST_FIELDS,
        "start_modified": cst_text(NOW - timedelta(hours=1)), "end_modified": cst_text(NOW),
    }
    params["sign"] = top_sign(params, good["app_secret"])
    async with httpx.AsyncClient() as client:
        ok = (await client.post(f"{emu.url}/router/rest", data=params)).json()
        params["page_size"] = "5"  # changed after signing
        bad = (await client.post(f"{emu.url}/router/rest", data=params)).json()
    assert "trades_sold_increment_get_response" in ok
    assert bad["error_response"]["code"] == 25


async def test_an_expired_session_is_refreshed_once_for_many_concurrent_calls(emulator, source_for) -> None:
    emu = emulator("taobao", orders=40)
    source, _ = source_for(emu, "shop1")
    tids = [o.oid for o in emu.world.orders.values() if o.shop == "shop1"][:8]
    emu.world.expire_tokens()

    answers = await asyncio.gather(
        *(source.call("taobao.trade.fullinfo.get", {"tid": tid, "fields": "tid,status"}) for tid in tids)
    )

    assert [a["trade_fullinfo_get_response"]["trade"]["tid_str"] for a in answers] == tids
    assert emu.world.refreshes == 1
    assert source.tokens.refreshes == 1
    assert source.tokens.access_token == emu.credentials("shop1")["access_token"]
    assert emu.world.stats()["calls"]["taobao.top.auth.token.refresh"] == 1


async def test_a_window_over_one_day_is_refused_and_the_source_cuts_it(emulator, source_for) -> None:
    emu = emulator("taobao", orders=60, days=3)
    creds = emu.credentials("shop1")
    params = {
        "method": "taobao.trades.sold.increment.get", "app_key": creds["app_key"], "session": creds["access_token"],
        "timestamp": cst_text(NOW), "format": "json", "v": "2.0", "sign_method": "md5", "fields": LIST_FIELDS,
        "start_modified": cst_text(NOW - timedelta(days=2)), "end_modified": cst_text(NOW),
    }
    params["sign"] = top_sign(params, creds["app_secret"])
    async with httpx.AsyncClient() as client:
        refused = (await client.post(f"{emu.url}/router/rest", data=params)).json()["error_response"]
    assert refused["code"] == 41 and refused["sub_code"] == "isv.invalid-parameter"

    source, adapter = source_for(emu, "shop1")
    got: dict = {}
    await collect(source, adapter, Window(NOW - timedelta(days=3, hours=1), NOW), got)
    expected = {o.oid for o in emu.world.orders.values() if o.shop == "shop1"}
    assert set(got) == expected
    assert emu.world.stats()["calls"]["taobao.trades.sold.increment.get"] >= 4  # four one-day pieces at least


async def test_an_unknown_status_is_quarantined_with_the_reason(emulator, source_for) -> None:
    emu = emulator("taobao", orders=20)
    target = next(o for o in emu.world.orders.values() if o.shop == "shop2")
    emu.world.modify(target.oid, "raw_status", value="WAIT_MARS_DELIVERY")
    emu.world.advance(1)
    source, adapter = source_for(emu, "shop2")

    outcomes = {}
    async for page in source.pages(Window(NOW - timedelta(minutes=1), NOW + timedelta(seconds=1))):
        for raw in page:
            try:
                outcomes[adapter.external_id(raw)] = adapter.to_order(raw, shop_code="shop2")
            except Quarantine as exc:
                outcomes[adapter.external_id(raw)] = exc

    problem = outcomes[target.oid]
    assert isinstance(problem, Quarantine) and problem.code == "unknown_status"
    assert "WAIT_MARS_DELIVERY" in problem.reason and "taobao.toml" in problem.reason
    truth = {e["id"]: e for e in emu.truth()}
    assert truth[target.oid]["checksum"] is None and "WAIT_MARS_DELIVERY" in truth[target.oid]["quarantine"]


def test_amounts_times_and_receivers_map_exactly() -> None:
    trade = next(t for t in platform_samples("taobao") if t["status"] == "TRADE_FINISHED")
    trade = {**trade, "payment": "1234.56", "post_fee": "0.10", "discount_fee": "0", "created": "2026-11-20 00:30:00"}
    trade["receiver_mobile"] = "138****1234"

    order = TaobaoAdapter().to_order(trade, shop_code="shop1")

    assert order.total_fen == 123456 and order.post_fee_fen == 10 and order.discount_fen == 0
    assert order.created_at.isoformat() == "2026-11-19T16:30:00+00:00"  # Beijing midnight+30 → UTC
    assert order.receiver_phone == "138****1234"
    assert order.status == "completed" and order.raw_status == "TRADE_FINISHED"
    assert order.parcels and order.parcels[0].waybill_no == trade["orders"]["order"][0]["invoice_no"]

    with pytest.raises(Quarantine, match="more than two decimals"):
        TaobaoAdapter().to_order({**trade, "payment": "12.345"}, shop_code="shop1")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_malformed_trades_map_or_quarantine_never_crash(data) -> None:
    payload = data.draw(mutated(platform_samples("taobao")))
    assert_maps_or_quarantines(TaobaoAdapter(), payload)
