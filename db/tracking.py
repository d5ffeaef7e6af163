"""Carrier tracking, the database side: scans onto parcels' timelines, orders onto 运输中 / 已签收.

A carrier connector (``connectors.carriers``) turns its own format into :class:`CarrierEvent`s in a
neutral vocabulary (:class:`TrackState`) and calls :func:`apply_tracking`. In one write
transaction it:

* finds every parcel with that waybill number (two merged orders can ship in one parcel);
* appends each event to the parcel's order timeline **exactly once**: the event's ``key`` (a hash
  of the carrier's own time and text, never the free-text place alone) goes into
  ``timeline_event.dedupe_key``, which is unique per order, and events already there are skipped —
  a push repeated, or the full history pushed again, adds nothing;
* moves the parcel's state and last-scan fields forward by the newest scan — an older push that
  arrives late fills in history but never winds the parcel back;
* moves the order along the lifecycle: 运输中 when a parcel is on the road, 已签收 when every
  parcel with a waybill is signed for — never backwards, never out of 异常 / 已取消;
* records a return, a refusal or a carrier problem as an alert-worthy event (``detail.alert``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.codes import LIFECYCLE, Status
from db.models import Order, Parcel, TimelineEvent
from db.reads import utc
from db.sanitize import clean_text
from db.views import Actor

_o = Order.__table__.c
_p = Parcel.__table__.c
_t = TimelineEvent.__table__.c


class TrackState(StrEnum):
    """What a carrier scan means, whatever the carrier's own code."""

    COLLECTED = "collected"  # 揽收
    IN_TRANSIT = "in_transit"  # 在途
    DELIVERING = "delivering"  # 派件
    DELIVERED = "delivered"  # 签收
    PROBLEM = "problem"  # 疑难
    RETURN_SIGNED = "return_signed"  # 退签: refused or undeliverable, signed back by the sender
    RETURNING = "returning"  # 退回: on its way back to the sender
    REDIRECTED = "redirected"  # 转投
    REFUSED = "refused"  # 拒签
    UNKNOWN = "unknown"  # a code we do not know: recorded, moves nothing


#: Scans that deserve a person's attention, and the alert code recorded on them.
ALERTS: dict[TrackState, str] = {
    TrackState.PROBLEM: "carrier_problem",
    TrackState.RETURN_SIGNED: "returned",
    TrackState.RETURNING: "returned",
    TrackState.REFUSED: "refused",
}
_RETURNS = frozenset({TrackState.RETURN_SIGNED, TrackState.RETURNING, TrackState.REFUSED})
_ON_THE_ROAD = frozenset({"in_transit", "delivered", "returned"})


@dataclass(frozen=True)
class CarrierEvent:
    """One carrier scan. ``key`` identifies it across pushes (see :func:`event_key`)."""

    at: datetime  # aware
    text: str
    state: TrackState = TrackState.UNKNOWN
    area: str = ""
    key: str = ""


def event_key(waybill_no: str, when: str, text: str) -> str:
    """A scan's identity: the waybill, the carrier's own time string and text — not the place alone."""
    digest = hashlib.sha1(f"{waybill_no}\x1f{when}\x1f{text}".encode()).hexdigest()[:24]
    return f"trk:{digest}"


@dataclass
class TrackingResult:
    """What :func:`apply_tracking` did."""

    found: bool
    parcels: int = 0
    added: int = 0
    duplicates: int = 0
    order_ids: list[int] = field(default_factory=list)
    status_changes: list[tuple[int, str, str]] = field(default_factory=list)  # (order id, from, to)
    alerts: list[str] = field(default_factory=list)


async def apply_tracking(
    store,  # noqa: ANN001 - db.store.Store (not imported: store imports nothing of this module)
    carrier: str,
    waybill_no: str,
    events: Iterable[CarrierEvent],
    *,
    actor: Actor,
    now: datetime | None = None,
) -> TrackingResult:
    """Apply a carrier's scans for one waybill (see the module docstring). ``found`` is False, and
    nothing is written, when no parcel has this waybill: the caller quarantines the payload."""
    waybill_no = clean_text(waybill_no).strip()
    carrier = clean_text(carrier).strip().upper()
    events = sorted(
        (e if e.key else _with_key(waybill_no, e) for e in events),
        key=lambda e: (e.at, e.key),
    )
    now = now or datetime.now(UTC)
    async with store.write() as conn:
        return await apply_in(conn, carrier, waybill_no, events, actor=actor, now=now)


def _with_key(waybill_no: str, event: CarrierEvent) -> CarrierEvent:
    from dataclasses import replace

    return replace(event, key=event_key(waybill_no, event.at.isoformat(), event.text))


async def apply_in(conn: AsyncConnection, carrier: str, waybill_no: str, events: list[CarrierEvent], *,
                   actor: Actor, now: datetime) -> TrackingResult:
    """:func:`apply_tracking` inside the caller's write transaction (events sorted oldest first)."""
    rows = (await conn.execute(select(Parcel.__table__).where(_p.waybill_no == waybill_no).order_by(_p.id))).all()
    if carrier:
        # A waybill number is unique per carrier only: skip parcels of another (known) carrier.
        rows = [r for r in rows if not r.carrier or r.carrier.upper() == carrier]
    result = TrackingResult(found=bool(rows), parcels=len(rows))
    for parcel in rows:
        await _apply_parcel(conn, parcel, carrier, events, actor, now, result)
    return result


async def _apply_parcel(conn: AsyncConnection, parcel, carrier: str, events: list[CarrierEvent],  # noqa: ANN001
                        actor: Actor, now: datetime, result: TrackingResult) -> None:
    order_id = parcel.order_id
    if order_id not in result.order_ids:
        result.order_ids.append(order_id)
    keys = [e.key for e in events]
    known = set(
        (await conn.execute(
            select(_t.dedupe_key).where(and_(_t.order_id == order_id, _t.dedupe_key.in_(keys)))
        )).scalars()
    ) if keys else set()
    fresh = []
    for event in events:
        if event.key in known:
            result.duplicates += 1
            continue
        known.add(event.key)
        fresh.append(event)
    if not fresh:
        return

    # The parcel moves forward by its newest scan only; older scans arriving late fill in history.
    last_at = utc(parcel.last_track_at)
    newest = fresh[-1]
    values: dict = {}
    state = parcel.state
    if last_at is None or newest.at >= last_at:
        values.update(last_track_at=newest.at, last_track_text=clean_text(newest.text)[:500])
        state = _parcel_state(parcel.state, newest.state)
        if state != parcel.state:
            values["state"] = state
        if state == "delivered" and parcel.delivered_at is None:
            values["delivered_at"] = newest.at
    if parcel.shipped_at is None and fresh[0].state is not TrackState.UNKNOWN:
        values["shipped_at"] = fresh[0].at  # the carrier has it, so it left the warehouse
    if values:
        await conn.execute(update(Parcel.__table__).where(_p.id == parcel.id).values(**values))

    change = await _order_change(conn, order_id, parcel.id, state)
    rows = []
    for event in fresh:
        detail = {"carrier": carrier or parcel.carrier, "waybill": parcel.waybill_no, "state": str(event.state)}
        if event.area:
            detail["area"] = clean_text(event.area)
        alert = ALERTS.get(event.state)
        if alert:
            detail["alert"] = alert
            result.alerts.append(alert)
        rows.append({
            "order_id": order_id, "parcel_id": parcel.id, "at": event.at, "actor_kind": actor.kind,
            "actor_id": actor.id, "kind": "deliver" if event.state is TrackState.DELIVERED else "track",
            "from_value": None, "to_value": None, "message": clean_text(event.text, multiline=False),
            "detail": detail, "dedupe_key": event.key,
        })
    if change is not None:
        # The status change is carried by the scan that caused it (the newest), as the demo does.
        rows[-1]["from_value"], rows[-1]["to_value"] = change
        await conn.execute(
            update(Order.__table__).where(_o.id == order_id).values(status=change[1], updated_at=now)
        )
        result.status_changes.append((order_id, *change))
    await conn.execute(insert(TimelineEvent.__table__), rows)
    result.added += len(rows)


def _parcel_state(current: str, scan: TrackState) -> str:
    """The parcel state after its newest scan: forward only, a return from anywhere."""
    if scan in _RETURNS:
        return "returned"
    if scan is TrackState.DELIVERED:
        return "returned" if current == "returned" else "delivered"
    if scan is TrackState.UNKNOWN or current in ("delivered", "returned"):
        return current
    return "in_transit"


async def _order_change(conn: AsyncConnection, order_id: int, parcel_id: int, parcel_state: str) -> tuple[str, str] | None:
    """(from, to) when the order should move to 运输中 / 已签收; None when it stays."""
    current = (await conn.execute(select(_o.status).where(_o.id == order_id))).scalar()
    if current not in LIFECYCLE:  # 异常 (held) and 已取消 are a person's business, not a carrier's
        return None
    states = {
        pid: state
        for pid, state, waybill in (await conn.execute(
            select(_p.id, _p.state, _p.waybill_no).where(_p.order_id == order_id)
        )).all()
        if waybill
    }
    states[parcel_id] = parcel_state
    if states and all(s == "delivered" for s in states.values()):
        target = Status.DELIVERED
    elif any(s in _ON_THE_ROAD for s in states.values()):
        target = Status.IN_TRANSIT
    else:
        return None
    if LIFECYCLE.index(target) <= LIFECYCLE.index(Status(current)):
        return None
    return current, target.value


async def parcels_to_track(store, *, carrier: str | None = None, limit: int = 500) -> list[tuple[str, str, str]]:  # noqa: ANN001
    """(carrier, waybill, receiver phone) of parcels on the road, oldest scan first: for pull mode."""
    query = (
        select(_p.carrier, _p.waybill_no, _o.receiver_phone)
        .join(Order.__table__, _o.id == _p.order_id)
        .where(_p.waybill_no.is_not(None), _p.waybill_no != "", _p.state.in_(("shipped", "in_transit")))
        .order_by(_p.last_track_at.is_not(None), _p.last_track_at, _p.id)
        .limit(limit)
    )
    if carrier:
        query = query.where(_p.carrier == carrier.upper())
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    seen: set[tuple[str, str]] = set()
    out = []
    for carrier_code, waybill, phone in rows:
        if (carrier_code, waybill) not in seen:
            seen.add((carrier_code, waybill))
            out.append((carrier_code or "", waybill, phone or ""))
    return out
