"""Kuaidi100 tracking over real HTTP: emulator ⇄ push receiver ⇄ the pool, and pull mode.

The emulator (connectors/emulators/kuaidi100.py) and the receiver (push_app) are served on
127.0.0.1 free ports; the client speaks httpx to the emulator. Nothing is mocked.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import stamina
from sqlalchemy import select

from connectors.carriers.kuaidi100 import (
    Kuaidi100Client,
    PushError,
    parse_push,
    poll_once,
    push_app,
    sign,
    state_of,
    verify_push,
)
from connectors.emulators.kuaidi100 import Kuaidi100Emulator, serve
from connectors.http import PermanentError
from db.codes import ActorKind
from db.ingest import ingest, quarantine_list
from db.models import Order, Parcel, TimelineEvent
from db.store import NewLine, NewOrder, NewParcel, Store
from db.tracking import TrackState
from db.views import Actor

SALT = "pepper-salt"
T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
SHOP = Actor(ActorKind.CONNECTOR, "taobao:main")


@dataclass
class Rig:
    store: Store
    emulator: Kuaidi100Emulator
    client: Kuaidi100Client
    callback: str


@pytest.fixture(autouse=True)
def no_retry_waits() -> object:
    """Retries stay (three attempts); their waits go."""
    with stamina.set_testing(True, attempts=3):
        yield


@pytest.fixture
async def rig(store: Store) -> AsyncIterator[Rig]:
    emulator = Kuaidi100Emulator(key="k-123", customer="CUST9")
    async with serve(emulator.app, push_app(store, lambda: SALT)) as (carrier_url, desk_url), httpx.AsyncClient() as http:
        client = Kuaidi100Client(client=http, key=lambda: "k-123", customer=lambda: "CUST9", base_url=carrier_url)
        yield Rig(store, emulator, client, desk_url + "/kuaidi100/push")


async def add_order(store: Store, no: str, waybills: list[str], *, status: str = "shipped",
                    carrier: str = "SF", phone: str = "13812345678") -> int:
    order = NewOrder(
        channel="taobao", shop_code="main", channel_order_id=no, created_at=T0, modified_at=T0, status=status,
        receiver_name="张三", receiver_phone=phone, lines=[NewLine(sku="A-1", quantity=1, price_fen=1000)],
        parcels=[NewParcel(waybill_no=w, carrier=carrier, warehouse="杭州仓") for w in waybills],
    )
    await ingest(store, [order], actor=SHOP)
    order_id = await store.order_id_by_no(no)
    assert order_id is not None
    return order_id


async def order_state(store: Store, order_id: int) -> tuple[str, list[tuple[str, str]], list[TimelineEvent]]:
    o, p, t = Order.__table__.c, Parcel.__table__.c, TimelineEvent.__table__.c
    async with store.engine.connect() as conn:
        status = (await conn.execute(select(o.status).where(o.id == order_id))).scalar_one()
        parcels = [tuple(r) for r in (await conn.execute(
            select(p.waybill_no, p.state).where(p.order_id == order_id).order_by(p.id))).all()]
        events = (await conn.execute(
            select(TimelineEvent.__table__).where(t.order_id == order_id, t.kind.in_(("track", "deliver")))
            .order_by(t.at, t.id))).all()
    return status, parcels, events


async def subscribe(rig: Rig, number: str, carrier: str = "SF") -> None:
    assert await rig.client.subscribe(carrier, number, callback_url=rig.callback, salt=SALT, phone="5678")


async def test_scans_land_once_whatever_the_push_order(rig: Rig) -> None:
    order_id = await add_order(rig.store, "TB1001", ["SF100"])
    await subscribe(rig, "SF100")
    emu = rig.emulator
    emu.scan("SF100", "【杭州市】顺丰速运 已收取快件", state=1, at=T0 + timedelta(hours=1), area="杭州市")
    assert all(o.ok for o in await emu.push("SF100"))
    status, parcels, events = await order_state(rig.store, order_id)
    assert status == "in_transit"
    assert parcels == [("SF100", "in_transit")]
    assert [(e.kind, e.from_value, e.to_value, e.actor_kind, e.actor_id) for e in events] == [
        ("track", "shipped", "in_transit", "carrier", "SF")]

    emu.scan("SF100", "快件已从杭州转运中心发出，发往上海", state=0, at=T0 + timedelta(hours=6))
    outcomes = await emu.push("SF100", duplicate=True)  # the same push twice
    assert [o.ok for o in outcomes] == [True, True]
    await emu.push_out_of_order("SF100", older=0)  # a stale snapshot after a newer one
    status, parcels, events = await order_state(rig.store, order_id)
    assert len(events) == 2
    assert status == "in_transit"

    emu.scan("SF100", "【上海市】已签收，签收人：本人", state=3, at=T0 + timedelta(days=1))
    await emu.push("SF100")
    await emu.push_out_of_order("SF100", older=1)  # late: must not wind the parcel back
    status, parcels, events = await order_state(rig.store, order_id)
    assert status == "delivered"
    assert parcels == [("SF100", "delivered")]
    assert [e.kind for e in events] == ["track", "track", "deliver"]
    assert (events[-1].from_value, events[-1].to_value) == ("in_transit", "delivered")
    card = await rig.store.order_card(order_id)
    assert card is not None
    assert card.parcels[0].last_track_text == "【上海市】已签收，签收人：本人"
    assert card.parcels[0].delivered_at == T0 + timedelta(days=1)
    assert emu.pending == []


async def test_bad_sign_is_rejected_logged_and_not_applied(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    order_id = await add_order(rig.store, "TB1002", ["SF200"])
    await subscribe(rig, "SF200")
    rig.emulator.scan("SF200", "已揽收", state=1, at=T0)
    with caplog.at_level(logging.WARNING, logger="connectors.carriers.kuaidi100"):
        [outcome] = await rig.emulator.push("SF200", bad_sign=True)
    assert outcome.status_code == 400 and outcome.body["result"] is False
    assert "bad sign" in caplog.text
    status, _, events = await order_state(rig.store, order_id)
    assert (status, events) == ("shipped", [])
    assert len(rig.emulator.pending) == 1  # Kuaidi100 would retry it; correctly signed it now lands
    rig.emulator.shipments["SF200"].salt = SALT
    [retried] = await rig.emulator.retry_pending()
    assert not retried.ok  # the retry carries the same bad signature: still refused


async def test_unknown_waybill_is_quarantined_not_crashed(rig: Rig) -> None:
    await subscribe(rig, "ZT999", carrier="ZTO")
    rig.emulator.scan("ZT999", "已揽收", state=1, at=T0)
    [outcome] = await rig.emulator.push("ZT999")
    assert outcome.ok  # acknowledged: pushing it again would not make the parcel appear
    [entry] = await quarantine_list(rig.store)
    assert entry.code == "unknown_waybill" and entry.external_id == "ZT999"
    assert "ZT999" in entry.reason
    await rig.emulator.push("ZT999")
    [entry] = await quarantine_list(rig.store)  # the same payload again: one entry, more attempts
    assert entry.attempts == 2


async def test_a_signed_but_unreadable_push_is_quarantined_and_acknowledged(rig: Rig) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.post(rig.callback, data={"param": "{not json", "sign": sign("{not json", SALT)})
        assert answer.status_code == 200 and answer.json()["result"] is True
        [entry] = await quarantine_list(rig.store)
        assert entry.code == "bad_push" and entry.payload == "{not json"
        missing = await http.post(rig.callback, data={"param": "{}"})
        assert missing.status_code == 400 and missing.json()["result"] is False


async def test_order_is_delivered_only_when_every_parcel_is(rig: Rig) -> None:
    order_id = await add_order(rig.store, "TB1003", ["SF301", "SF302"])
    for number in ("SF301", "SF302"):
        await subscribe(rig, number)
    rig.emulator.scan("SF301", "已签收", state=3, at=T0)
    await rig.emulator.push("SF301")
    status, parcels, _ = await order_state(rig.store, order_id)
    assert status == "in_transit" and parcels == [("SF301", "delivered"), ("SF302", "shipped")]
    rig.emulator.scan("SF302", "已签收", state=3, at=T0 + timedelta(hours=3))
    await rig.emulator.push("SF302")
    status, _, _ = await order_state(rig.store, order_id)
    assert status == "delivered"


async def test_a_return_is_an_alert_and_never_moves_the_order_back(rig: Rig) -> None:
    order_id = await add_order(rig.store, "TB1004", ["SF400"])
    await subscribe(rig, "SF400")
    rig.emulator.scan("SF400", "已签收", state=3, at=T0)
    await rig.emulator.push("SF400")
    rig.emulator.scan("SF400", "收件人拒收，快件退回寄件人", state=6, at=T0 + timedelta(days=1))
    await rig.emulator.push("SF400")
    status, parcels, events = await order_state(rig.store, order_id)
    assert status == "delivered"  # never backwards
    assert parcels == [("SF400", "returned")]
    assert events[-1].detail["alert"] == "returned"
    assert events[-1].detail["state"] == TrackState.RETURNING


async def test_held_order_records_scans_but_keeps_its_status(rig: Rig) -> None:
    order_id = await add_order(rig.store, "TB1005", ["SF500"], status="hold")
    await subscribe(rig, "SF500")
    rig.emulator.scan("SF500", "已揽收", state=1, at=T0)
    await rig.emulator.push("SF500")
    status, parcels, events = await order_state(rig.store, order_id)
    assert status == "hold" and parcels == [("SF500", "in_transit")] and len(events) == 1


async def test_pull_mode_queries_and_retries_a_5xx(rig: Rig) -> None:
    order_id = await add_order(rig.store, "TB1006", ["SF600"], phone="13900005678")
    rig.emulator.ship("shunfeng", "SF600", phone="13900005678")
    rig.emulator.scan("SF600", "已揽收", state=1, at=T0)
    rig.emulator.scan("SF600", "派件中", state=5, at=T0 + timedelta(hours=20))
    rig.emulator.fail_next("query", 502)
    summary = await poll_once(rig.store, rig.client)
    assert (summary.queried, summary.failed, summary.added, summary.status_changes) == (1, 0, 2, 1)
    assert rig.emulator.requests.count("query") == 2
    status, _, events = await order_state(rig.store, order_id)
    assert status == "in_transit" and len(events) == 2
    again = await poll_once(rig.store, rig.client)
    assert again.added == 0  # nothing new: nothing appended


async def test_query_before_the_first_scan_is_no_record_not_an_error(rig: Rig) -> None:
    rig.emulator.ship("zhongtong", "ZT1")
    assert await rig.client.query("ZTO", "ZT1") is None


async def test_subscribe_refusals_are_permanent_errors(rig: Rig) -> None:
    with pytest.raises(PermanentError, match="600"):
        await Kuaidi100Client(client=rig.client.client, key=lambda: "wrong", base_url=rig.client.base_url).subscribe(
            "ZTO", "ZT2", callback_url=rig.callback)
    with pytest.raises(PermanentError, match="700"):  # SF needs the phone
        await rig.client.subscribe("SF", "SF700", callback_url=rig.callback, salt=SALT)
    with pytest.raises(PermanentError, match="no company code"):
        await rig.client.subscribe("NOPE", "X1", callback_url=rig.callback)
    assert await rig.client.subscribe("ZTO", "ZT3", callback_url=rig.callback, salt=SALT)
    assert await rig.client.subscribe("ZTO", "ZT3", callback_url=rig.callback, salt=SALT)  # 501: already


def test_states_sign_and_malformed_pushes() -> None:
    assert state_of("3") is TrackState.DELIVERED
    assert state_of(301) is TrackState.DELIVERED
    assert state_of("1002") is TrackState.IN_TRANSIT
    assert state_of("14") is TrackState.REFUSED
    assert state_of("99") is TrackState.UNKNOWN and state_of("x") is TrackState.UNKNOWN
    assert sign("abc", "salt") == sign("abcsalt") and sign("x").isupper()
    assert verify_push("{}", sign("{}", "s"), "s") and not verify_push("{}", sign("{}", "t"), "s")
    for bad in ("not json", "[]", '{"lastResult": {"nu": ""}}',
                '{"lastResult": {"nu": "1", "data": [{"context": "x", "ftime": "yesterday"}]}}'):
        with pytest.raises(PushError):
            parse_push(bad)
    good = parse_push('{"status":"polling","lastResult":{"nu":"1","state":"0","com":"yuantong","data":['
                      '{"context":"b","ftime":"2025-03-02 10:00:00"},{"context":"a","ftime":"2025-03-01 10:00:00"}]}}')
    assert good.carrier == "YTO"
    assert [e.state for e in good.events] == [TrackState.IN_TRANSIT, TrackState.UNKNOWN]
    assert good.events[0].at == datetime(2025, 3, 2, 2, 0, tzinfo=UTC)
