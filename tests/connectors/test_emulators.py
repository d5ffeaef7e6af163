"""The emulator machinery, fault specs, status maps and the checksum that ties the pool to the truth."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors import statusmap
from connectors.base import Quarantine, Window
from connectors.checksum import canonical, order_checksum
from connectors.emulators import FaultSpec, FaultSpecError, make_emulator, serve_emulator
from connectors.emulators.core import Clock, World, make_platform
from connectors.platforms.douyin import DouyinAdapter
from connectors.platforms.pdd import PddAdapter
from connectors.platforms.taobao import TaobaoAdapter
from db.codes import ActorKind, AfterSale, Status
from db.privacy import FIELDS
from db.views import Actor
from tests.connectors.conftest import NOW, platform_samples

# -- fault specs ---------------------------------------------------------------------------------------


def test_a_fault_spec_reads_every_kind_and_explains_mistakes() -> None:
    spec = FaultSpec.parse("429=0.05, 5xx=0.05,timeout=0.02,truncate=0.03,shift=0.05,late=0.05,dup=0.05,limit=0.01")
    assert spec.rate("500") == 0.05 and spec.rate("late") == 0.05 and spec.rate("limit") == 0.01
    assert FaultSpec.parse("none").rates == {} and FaultSpec.parse("").rates == {}

    for bad, words in [
        ("429", "needs a fraction"),
        ("teapot=0.1", "unknown fault 'teapot'"),
        ("429=lots", "must be a number"),
        ("dup=1.5", "between 0 and 1"),
        ("429=0.6,500=0.6", "add up to more than 1"),
    ]:
        with pytest.raises(FaultSpecError, match=words):
            FaultSpec.parse(bad)


# -- the world -----------------------------------------------------------------------------------------


def _world(channel: str = "taobao", **options: object) -> World:
    options = {"orders": 60, "seed": 4, "clock": Clock(NOW, 0), "days": 3, **options}
    return World(make_platform(channel), **options)


def test_a_world_is_deterministic_for_a_seed() -> None:
    first, again, other = _world(), _world(), _world(seed=5)
    key = lambda w: sorted((e["id"], e["checksum"], e["modified"]) for e in w.truth())  # noqa: E731
    assert key(first) == key(again)
    assert key(first) != key(other)


def test_orders_live_on_the_clock_and_modified_times_follow() -> None:
    world = _world("taobao", orders=80, days=1)  # every Taobao stage has its own status
    before = {e["id"]: e for e in world.truth()}
    states = lambda: {o.oid: o.state(o.truth_n).stage for o in world.orders.values()}  # noqa: E731
    start = states()

    world.advance(5 * 86_400)

    after = {e["id"]: e for e in world.truth()}
    end = states()
    moved = [oid for oid in before if after[oid]["modified"] > before[oid]["modified"]]
    assert len(moved) > 40  # most orders were stocked, shipped, signed or finished meanwhile
    assert all(after[oid]["checksum"] != before[oid]["checksum"] for oid in moved if start[oid] != end[oid])
    assert sum(stage in ("shipped", "signed", "finished") for stage in end.values()) > sum(
        stage in ("shipped", "signed", "finished") for stage in start.values()
    )
    assert max(e["modified"] for e in after.values()) <= world.clock.now()


def test_a_late_change_stays_out_of_queries_until_it_shows() -> None:
    world = _world("taobao", orders=1, days=0.01, faults="late=1")
    (order,) = world.orders.values()
    next_change = order.events[order.truth_n].at
    world.advance(next_change - world.clock.now())  # the order changes now, late

    entry = world.truth()[0]
    assert entry["modified"] == next_change and entry["visible"] is False
    assert world.window("shop1", next_change, next_change + 1) == []  # queries still show the old state

    world.advance(600)
    assert world.truth()[0]["visible"] is True
    assert world.window("shop1", next_change, next_change + 1) == [order]  # visible, at its real modified time


def test_a_settled_world_holds_still_with_its_late_changes_visible() -> None:
    world = _world("taobao", orders=1, days=0.01, faults="late=1,500=1")
    world.clock.speed = 1.0  # a real-time clock, as `deskapp emulate` runs
    (order,) = world.orders.values()
    next_change = order.events[order.truth_n].at
    world.advance(next_change - world.clock.now())  # the order changes now, late
    assert world.truth()[0]["visible"] is False

    now = world.settle()
    assert world.truth()[0]["visible"] is True and world.clock.now() == now  # the lag is over; time stopped
    assert world.window("shop1", next_change, next_change + 1) == [order]
    assert not world.faults.happens("500")


def test_new_orders_arrive_live_at_the_configured_rate() -> None:
    world = _world("pdd", orders=0, new_per_minute=6)
    world.advance(600)
    assert len(world.orders) == 60
    assert all(NOW.timestamp() <= o.created <= world.clock.now() for o in world.orders.values())


def test_generated_receivers_look_like_the_platforms_deliver_them() -> None:
    taobao = platform_samples("taobao")
    phones = {t["receiver_mobile"] for t in taobao}
    assert any("****" in p for p in phones) and any(p.startswith("~AgAAAAB") for p in phones)
    pdd = platform_samples("pdd")
    assert {type(s["pay_amount"]) for s in pdd} == {float}  # 元 as JSON numbers, as PDD sends them
    douyin = platform_samples("douyin")
    assert all(isinstance(s["pay_amount"], int) for s in douyin)  # 分


# -- HTTP: control routes and fault bodies ---------------------------------------------------------------


async def test_control_routes_create_modify_advance_and_report(emulator) -> None:
    emu = emulator("pdd", orders=10)
    async with httpx.AsyncClient(base_url=emu.url) as client:
        ids = (await client.post("/_emu/orders", json={"shop": "shop2", "count": 2})).json()["ids"]
        assert (await client.post("/_emu/modify", json={"id": ids[0], "action": "memo", "text": "加急"})).json()["ok"]
        assert (await client.post("/_emu/modify", json={"id": "nope", "action": "memo"})).status_code == 404
        assert (await client.post("/_emu/modify", json={"id": ids[0], "action": "fly"})).status_code == 400
        now = (await client.post("/_emu/advance", json={"seconds": 90})).json()["now"]
        truth = (await client.get("/_emu/truth")).json()
        creds = (await client.get("/_emu/credentials")).json()
        faults = (await client.post("/_emu/faults", json={"spec": "dup=0.5"})).json()
        bad_spec = await client.post("/_emu/faults", json={"spec": "dup=2"})
        stats = (await client.get("/_emu/stats")).json()

    assert now == int(NOW.timestamp()) + 90
    by_id = {e["id"]: e for e in truth["orders"]}
    assert len(by_id) == 12 and by_id[ids[0]]["shop"] == "shop2"
    memo_order = emu.world.orders[ids[0]]
    assert memo_order.state(memo_order.truth_n).memo == "加急"
    assert set(creds["shops"]) == {"shop1", "shop2", "shop3"}
    assert faults["spec"] == "dup=0.5" and bad_spec.status_code == 400
    assert stats["orders"] == 12


@pytest.mark.parametrize(
    ("channel", "path", "limited"),
    [
        ("taobao", "/router/rest", lambda b: b["error_response"]["code"] == 7 and "1 more seconds" in b["error_response"]["sub_msg"]),
        ("pdd", "/api/router", lambda b: b["error_response"]["error_code"] == 70031),
        ("douyin", "/order/searchList", lambda b: b["code"] == 60000),
    ],
)
async def test_fault_answers_use_the_platforms_own_bodies(emulator, channel, path, limited) -> None:
    emu = emulator(channel, orders=3, faults="429=1")
    async with httpx.AsyncClient(base_url=emu.url) as client:
        rate_limited = await client.post(path, json={})
        emu.world.set_faults("limit=1")
        in_body = await client.post(path, json={})
        emu.world.set_faults("500=1")
        unavailable = await client.post(path, json={})
        emu.world.set_faults("truncate=1")
        cut = await client.post(path, json={})

    assert rate_limited.status_code == 429 and rate_limited.headers["Retry-After"] == "1"
    assert limited(rate_limited.json())
    assert in_body.status_code == 200 and limited(in_body.json())  # the gateways' way: 200 with an error body
    assert unavailable.status_code in (500, 502, 503) and unavailable.json()
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)
    assert len(cut.content) == int(cut.headers["content-length"])  # cut cleanly: only the JSON is short


async def test_an_emulator_runs_on_the_event_loop_and_its_connector_reads_it(fast_retries) -> None:
    async with serve_emulator("douyin", orders=12, now=NOW, speed=0) as emu:
        source, adapter = emu.connector("shop1", page_size=5)
        try:
            rows = [raw async for page in source.pages(Window(NOW - timedelta(days=3), NOW)) for raw in page]
        finally:
            await source.aclose()
        assert {adapter.external_id(r) for r in rows} == {o.oid for o in emu.world.orders.values() if o.shop == "shop1"}
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"{emu.url}/_emu/clock")


def test_the_cli_factory_builds_an_app_for_every_emulated_channel() -> None:
    for channel in ("taobao", "tmall", "pdd", "douyin", "jd", "youzan", "kuaishou", "jst"):
        app, world = make_emulator(channel, orders=5, now=NOW, speed=0)
        assert app.state.world is world and len(world.orders) == 5
    with pytest.raises(ValueError, match="no emulator for channel 'wechat'"):
        make_emulator("wechat")


# -- status maps ---------------------------------------------------------------------------------------


def test_every_demo_channel_has_a_status_map_covering_the_demos_raw_codes() -> None:
    from deskapp.services.demo import _RAW_AFTER_SALE, _RAW_PARTIAL, _RAW_STATUS, _RAW_UNPAID_CLOSED

    assert set(_RAW_STATUS) <= set(statusmap.channels())
    for channel, table in _RAW_STATUS.items():
        smap = statusmap.load(channel)
        for raw in table.values():
            assert isinstance(smap.status(raw), Status)
        for raw in _RAW_AFTER_SALE[channel].values():
            assert isinstance(smap.after_sale(raw), AfterSale)
    for channel, raw in {**_RAW_PARTIAL, **_RAW_UNPAID_CLOSED}.items():
        statusmap.load(channel).status(raw)
    assert statusmap.load("taobao").status("WAIT_BUYER_CONFIRM_GOODS") == Status.SHIPPED
    assert statusmap.load("douyin").status(105) == Status.PAID  # numbers and their text are one key


def test_an_unknown_raw_status_is_quarantined_never_guessed() -> None:
    smap = statusmap.load("pdd")
    with pytest.raises(Quarantine) as held:
        smap.status("9")
    assert held.value.code == "unknown_status" and "'9'" in held.value.reason and "[status]" in held.value.reason
    with pytest.raises(Quarantine, match="after-sale state 'x'"):
        smap.after_sale("x")
    assert smap.after_sale("") == AfterSale.NONE


def test_overrides_extend_the_map_and_wrong_values_are_explained() -> None:
    smap = statusmap.load("pdd", {"status": {"9": "hold"}, "after_sale": {"5": "refunding"}})
    assert smap.status("9") == Status.HOLD and smap.after_sale("5") == AfterSale.REFUNDING
    assert smap.status("1") == Status.PAID  # the packaged entries stay
    assert statusmap.load("pdd").statuses.get("9") is None  # overrides do not leak into other loads

    with pytest.raises(statusmap.StatusMapError, match="'shiped' is not a standard status"):
        statusmap.load("pdd", {"status": {"2": "shiped"}})
    with pytest.raises(statusmap.StatusMapError, match="unknown section"):
        statusmap.load("pdd", {"statuses": {"2": "shipped"}})
    with pytest.raises(statusmap.StatusMapError, match="no status map for channel 'ebay'"):
        statusmap.load("ebay")


# -- checksum ------------------------------------------------------------------------------------------


def _mapped() -> list:
    out = []
    for channel, adapter in (("taobao", TaobaoAdapter()), ("pdd", PddAdapter()), ("douyin", DouyinAdapter())):
        for raw in platform_samples(channel)[:12]:
            try:
                out.append(adapter.to_order(raw, shop_code="shop1"))
            except Quarantine:
                continue
    return out


def test_the_checksum_covers_content_not_order_of_lines() -> None:
    order = next(o for o in _mapped() if len(o.lines) > 1)
    same = dataclasses.replace(order, lines=list(reversed(order.lines)))
    assert order_checksum(same) == order_checksum(order)
    for change in (
        {"receiver_phone": order.receiver_phone + "0"},
        {"total_fen": order.total_fen + 1},
        {"status": "cancelled"},
        {"created_at": order.created_at + timedelta(seconds=1)},
        {"lines": order.lines[1:]},
    ):
        assert order_checksum(dataclasses.replace(order, **change)) != order_checksum(order), change
    naive = dataclasses.replace(order, created_at=order.created_at.astimezone(UTC).replace(tzinfo=None))
    assert canonical(naive)["created_at"] == canonical(order)["created_at"]


async def test_what_the_pool_holds_checksums_like_what_the_adapter_made(store) -> None:
    from db.ingest import ingest

    orders = _mapped()
    assert len(orders) > 20
    actor = Actor(ActorKind.CONNECTOR, "emulated:shop1")
    await ingest(store, orders, actor=actor, at=datetime(2026, 11, 20, 7, 0, tzinfo=UTC))

    for order in orders:
        order_id = await store.order_id_by_no(order.channel_order_id)
        card = await store.order_card(order_id, now=NOW, reveal=FIELDS)  # compared whole, never masked
        assert order_checksum(card) == order_checksum(order), order.channel_order_id


# -- the paging rule ------------------------------------------------------------------------------------


async def _read_backwards(rows: list[str], *, size: int, between=None) -> list[str]:  # noqa: ANN001
    """Read an in-memory ordered row set with ``backwards``; ``between(page_no)`` changes the set."""
    from connectors.platforms import Page, backwards, expect_rows

    async def fetch(number: int) -> Page:
        if between is not None:
            between(number)
        page = [{"id": r} for r in rows[(number - 1) * size : number * size]]
        expect_rows(page, len(rows), number - 1, size, "test")
        return Page(page, len(rows))

    seen = []
    async for chunk in backwards(fetch, first=1, size=size, key=lambda r: r["id"]):
        seen += [r["id"] for r in chunk]
    return seen


async def test_backwards_paging_survives_rows_leaving_and_restarts_when_rows_arrive() -> None:
    rows = [f"o{i:03d}" for i in range(47)]
    leaving = list(rows)

    def leave(number: int) -> None:  # after each page, the first unread row leaves the window
        if number < 5 and len(leaving) > 40:
            leaving.pop(0)

    assert set(await _read_backwards(leaving, size=10, between=leave)) >= set(leaving)

    growing = list(rows)
    arrived: list[str] = []

    def arrive(number: int) -> None:  # one late change shows up inside the window mid-scan
        if number == 3 and not arrived:
            arrived.append("n0")
            growing.insert(0, "n0")

    seen = await _read_backwards(growing, size=10, between=arrive)
    assert set(seen) == set(growing) and len(seen) == len(set(seen))  # complete, each row once

    def keep_arriving(number: int) -> None:
        if number == 3:
            growing.insert(0, f"n{len(growing)}")

    from connectors.http import TruncatedRead

    with pytest.raises(TruncatedRead, match="kept growing"):
        await _read_backwards(growing, size=10, between=keep_arriving)


async def test_a_page_shorter_than_its_total_is_a_truncated_read() -> None:
    from connectors.http import TruncatedRead
    from connectors.platforms import expect_rows

    expect_rows([{}] * 10, 25, 1, 10, "ok")  # page 2 of 25 rows: 10 expected
    expect_rows([{}] * 5, 25, 2, 10, "ok")  # the last page: 5
    with pytest.raises(TruncatedRead, match="page 2 holds 9 rows but the platform's total of 25 means 10"):
        expect_rows([{}] * 9, 25, 1, 10, "shop")
