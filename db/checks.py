"""The pool's side of the order checks: which orders wait to be checked, what the checks need to
know, and recording what they found — holds, releases and cancellations as timeline events.

The checks themselves live in ``deskapp.services.checks`` (pure); this module only reads and
writes. An order waits to be checked while ``checked_at`` is NULL: new orders start so, and
``db.ingest`` sets it back to NULL whenever a channel changes an order, so a crash between ingest
and check leaves the order waiting, never unchecked. Recording is guarded: if the order changed
after it was read, the result is dropped and the order is checked again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, insert, text, update

from db.codes import ActorKind, Status
from db.ingest import CHINA, _sqlite_time
from db.models import Order, TimelineEvent
from db.privacy import mask_name, mask_text
from db.reads import Query, utc
from db.roles import Refused, permit
from db.store import OrderNotFound, Store, append_event
from db.views import Actor

#: The checker's name on the timeline.
CHECKS = Actor(ActorKind.RULE, "checks")
#: Statuses a blocking problem holds: not yet handed to the warehouse floor.
HOLDABLE = frozenset({Status.PAID, Status.REVIEW, Status.ALLOCATING})
_o = Order.__table__.c

_PENDING = "SELECT id FROM orders WHERE checked_at IS NULL ORDER BY id LIMIT :n"
_COLUMNS = ("id", "order_no", "status", "receiver_name", "receiver_phone", "province", "city", "district",
            "address_detail", "total_fen", "paid_fen", "buyer_note", "seller_memo", "tags", "presale",
            "presale_ship_at", "ship_by", "updated_at", "check_codes")


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One order as the checks read it (``lines``: (sku, title, quantity, price_fen, gift))."""

    id: int
    order_no: str
    status: str
    receiver_name: str
    receiver_phone: str
    province: str
    city: str
    district: str
    address_detail: str
    total_fen: int
    paid_fen: int
    buyer_note: str
    seller_memo: str
    tags: tuple[str, ...]
    presale: bool
    presale_ship_at: datetime | None
    ship_by: datetime | None
    updated_at: object  # as the driver gave it: compared, never shown
    check_codes: tuple[str, ...]
    carrier: str
    lines: tuple[tuple[str, str, int, int, bool], ...]


@dataclass(frozen=True, slots=True)
class Found:
    """What the checks found for one order: ``problems`` as (code, severity, message)."""

    order_id: int
    seen_updated_at: object
    problems: tuple[tuple[str, str, str], ...]

    @property
    def blocking(self) -> list[tuple[str, str, str]]:
        return [p for p in self.problems if p[1] == "block"]


def _json_list(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = json.loads(value)
    return tuple(value or ())


def load_rows(q: Query, ids: Sequence[int]) -> list[CheckRow]:
    """The orders ``ids`` with their lines and first carrier, in one snapshot."""
    if not ids:
        return []
    marks = ", ".join(f":i{n}" for n in range(len(ids)))
    params = {f"i{n}": order_id for n, order_id in enumerate(ids)}
    rows = q(f"SELECT {', '.join(_COLUMNS)} FROM orders WHERE id IN ({marks})", params)
    lines: dict[int, list] = {}
    for order_id, *line in q(
        f"SELECT order_id, sku, title, quantity, price_fen, gift FROM order_line WHERE order_id IN ({marks}) "
        "ORDER BY id", params,
    ):
        lines.setdefault(order_id, []).append((line[0], line[1], line[2], line[3], bool(line[4])))
    carriers: dict[int, str] = {}
    for order_id, carrier in q(
        f"SELECT order_id, carrier FROM parcel WHERE order_id IN ({marks}) AND carrier != '' ORDER BY id", params
    ):
        carriers.setdefault(order_id, carrier)
    out = []
    for row in rows:
        v = dict(zip(_COLUMNS, row))
        out.append(CheckRow(
            id=v["id"], order_no=v["order_no"], status=v["status"], receiver_name=v["receiver_name"] or "",
            receiver_phone=v["receiver_phone"] or "", province=v["province"] or "", city=v["city"] or "",
            district=v["district"] or "", address_detail=v["address_detail"] or "", total_fen=v["total_fen"],
            paid_fen=v["paid_fen"], buyer_note=v["buyer_note"] or "", seller_memo=v["seller_memo"] or "",
            tags=_json_list(v["tags"]), presale=bool(v["presale"]), presale_ship_at=utc(v["presale_ship_at"]),
            ship_by=utc(v["ship_by"]), updated_at=v["updated_at"], check_codes=_json_list(v["check_codes"]),
            carrier=carriers.get(v["id"], ""), lines=tuple(lines.get(v["id"], ())),
        ))
    return out


def _pending(q: Query, limit: int) -> list[CheckRow]:
    ids = [r[0] for r in q(_PENDING, {"n": limit})]
    return load_rows(q, ids)


def _usual_prices(q: Query, skus: Sequence[str]) -> dict[str, tuple[int, int]]:
    if not skus:
        return {}
    marks = ", ".join(f":s{n}" for n in range(len(skus)))
    rows = q(
        f"SELECT sku_norm, CAST(AVG(price_fen) AS INTEGER), COUNT(*) FROM order_line "
        f"WHERE sku_norm IN ({marks}) AND price_fen > 0 GROUP BY sku_norm",
        {f"s{n}": sku for n, sku in enumerate(skus)},
    )
    return {sku: (avg, count) for sku, avg, count in rows}


async def pending(store: Store, limit: int = 1000) -> list[CheckRow]:
    """Up to ``limit`` orders waiting to be checked, oldest first."""
    return await store._read(_pending, limit)


async def rows(store: Store, ids: Sequence[int]) -> list[CheckRow]:
    """These orders as the checks read them."""
    return await store._read(load_rows, list(ids))


async def usual_prices(store: Store, skus: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Normalised SKU → (average price in fen, how many lines) over the pool."""
    out: dict[str, tuple[int, int]] = {}
    skus = sorted(set(skus))
    for i in range(0, len(skus), 500):
        out.update(await store._read(_usual_prices, skus[i : i + 500]))
    return out


def _message(problems: Sequence[tuple[str, str, str]]) -> str:
    return "；".join(p[2] for p in problems)


async def record(store: Store, found: Sequence[Found], *, at: datetime | None = None,
                 actor: Actor = CHECKS) -> tuple[int, int]:
    """Store what the checks found; hold orders with a blocking problem that are still holdable.

    Returns (orders recorded, orders held). An order that changed since it was read is skipped
    (it is waiting to be checked again). One read, two executemany updates and one insert of
    events per call, whatever the batch size.
    """
    at = at or datetime.now(UTC)
    if not found:
        return 0, 0
    plain, holds, events = [], [], []
    async with store.write() as conn:
        current: dict[int, tuple] = {}
        ids = [item.order_id for item in found]
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ", ".join(f":i{n}" for n in range(len(chunk)))
            for row in await conn.execute(
                text(f"SELECT id, status, check_codes, updated_at FROM orders WHERE id IN ({marks})"),
                {f"i{n}": order_id for n, order_id in enumerate(chunk)},
            ):
                current[row[0]] = tuple(row[1:])
        for item in found:
            row = current.get(item.order_id)
            if row is None or row[2] != item.seen_updated_at:
                continue  # changed (or gone) since it was read: checked again on the next round
            status, old_codes, _ = row
            codes = sorted({p[0] for p in item.problems})
            if codes != sorted(_json_list(old_codes)) and item.problems:
                events.append(_event(item.order_id, actor, at, "check", _message(item.problems),
                                     detail={"problems": [list(p) for p in item.problems]}))
            blocking = item.blocking
            if blocking and status in HOLDABLE:
                holds.append({"b_id": item.order_id, "checked_at": at, "check_codes": codes or None,
                              "status": Status.HOLD.value, "hold_reason": _message(blocking)[:256], "updated_at": at})
                events.append(_event(item.order_id, actor, at, "held", _message(blocking), from_value=status,
                                     to_value=Status.HOLD.value, detail={"codes": sorted({p[0] for p in blocking})}))
            else:
                plain.append({"b_id": item.order_id, "checked_at": at, "check_codes": codes or None})
        by_id = update(Order.__table__).where(_o.id == bindparam("b_id"))
        if plain:
            await conn.execute(by_id, plain)
        if holds:
            await conn.execute(by_id, holds)
        if events:
            await conn.execute(insert(TimelineEvent.__table__), events)
    return len(plain) + len(holds), len(holds)


def _event(order_id: int, actor: Actor, at: datetime, kind: str, message: str, *, from_value: str | None = None,
           to_value: str | None = None, detail: dict | None = None) -> dict:
    return {"order_id": order_id, "parcel_id": None, "at": at, "actor_kind": actor.kind, "actor_id": actor.id,
            "kind": kind, "from_value": from_value, "to_value": to_value, "message": message, "detail": detail,
            "dedupe_key": None}


async def _status_before_hold(conn, order_id: int) -> str:  # noqa: ANN001
    row = (await conn.execute(text(
        "SELECT from_value FROM timeline_event WHERE order_id = :id AND kind = 'held' ORDER BY id DESC LIMIT 1"
    ), {"id": order_id})).first()
    value = row[0] if row else None
    return value if value in {s.value for s in HOLDABLE} else Status.PAID.value


async def blocking_codes(conn, order_id: int) -> list[str]:
    """The codes of the blocking checks that hold this order now (none: not held by the checks).

    Read from the order's last ``held`` or ``released`` event: a ``held`` by ``rule:checks``
    carries the blocking codes (:func:`record`); a release after it means the present hold, if
    any, came from elsewhere (a channel, a person).
    """
    row = (await conn.execute(text(
        "SELECT kind, actor_kind, actor_id, detail FROM timeline_event WHERE order_id = :id "
        "AND kind IN ('held', 'released') ORDER BY id DESC LIMIT 1"
    ), {"id": order_id})).first()
    if row is None or row[0] != "held" or (row[1], row[2]) != (CHECKS.kind, CHECKS.id):
        return []
    detail = row[3]
    if isinstance(detail, str):  # JSON handed back as text
        detail = json.loads(detail)
    codes = detail.get("codes") if isinstance(detail, dict) else None
    return [str(c) for c in codes or ()]


async def release(store: Store, order_id: int, reason: str, actor: Actor, *, at: datetime | None = None) -> str:
    """Release a held order back to the status it had before the hold; returns that status.

    Needs ``release_hold`` (``db.roles``) — and ``override_check`` when a blocking check holds the
    order (:func:`blocking_codes`): releasing it without fixing the problem overrides the check.
    A refusal raises :class:`db.roles.Refused`, changes nothing and is put on the access log.
    """
    at = at or datetime.now(UTC)
    async with store.write() as conn:
        outcome = await _release(conn, order_id, reason, actor, at)
    if isinstance(outcome, Refused):
        raise outcome
    return outcome


async def _release(conn, order_id: int, reason: str, actor: Actor, at: datetime) -> str | Refused:
    refused = await permit(conn, actor, "release_hold", order_id=order_id, at=at)
    if refused is not None:
        return refused
    row = (await conn.execute(text("SELECT status FROM orders WHERE id = :id"), {"id": order_id})).first()
    if row is None:
        raise OrderNotFound(order_id)
    if row[0] != Status.HOLD:
        raise ValueError(f"order {order_id} is not held")
    codes = await blocking_codes(conn, order_id)
    if codes:
        refused = await permit(conn, actor, "override_check", order_id=order_id, at=at)
        if refused is not None:
            return refused
    back = await _status_before_hold(conn, order_id)
    await conn.execute(update(Order.__table__).where(_o.id == order_id)
                       .values(status=back, hold_reason=None, updated_at=at))
    await append_event(conn, order_id, actor, "released", at=at, from_value=Status.HOLD.value,
                       to_value=back, message=reason, detail={"override": codes} if codes else None)
    return back


async def cancel(store: Store, order_id: int, reason: str, actor: Actor, *, at: datetime | None = None) -> None:
    """Cancel an order that has not left the warehouse (a held test order, a resubmit ...).

    Needs ``cancel_order`` (``db.roles``); a refusal raises :class:`db.roles.Refused`, changes
    nothing and is put on the access log.
    """
    at = at or datetime.now(UTC)
    async with store.write() as conn:
        refused = await permit(conn, actor, "cancel_order", order_id=order_id, at=at)
        if refused is None:
            row = (await conn.execute(text("SELECT status FROM orders WHERE id = :id"), {"id": order_id})).first()
            if row is None:
                raise OrderNotFound(order_id)
            if row[0] not in {*HOLDABLE, Status.HOLD, Status.PENDING_PAYMENT}:
                raise ValueError(f"order {order_id} has left the warehouse ({row[0]}): it cannot be cancelled here")
            await conn.execute(update(Order.__table__).where(_o.id == order_id)
                               .values(status=Status.CANCELLED.value, hold_reason=None, updated_at=at))
            await append_event(conn, order_id, actor, "status", at=at, from_value=row[0],
                               to_value=Status.CANCELLED.value, message=reason)
    if refused is not None:
        raise refused


@dataclass(frozen=True, slots=True)
class HeldOrder:
    """A held order as the exceptions screen lists it (receiver masked, see ``db.privacy``)."""

    id: int
    order_no: str
    channel: str
    receiver_name: str
    city: str
    hold_reason: str
    codes: tuple[str, ...]
    held_at: datetime | None


def _held(q: Query, limit: int) -> list[HeldOrder]:
    rows = q(
        "SELECT id, order_no, channel, receiver_name, city, hold_reason, check_codes, updated_at FROM orders "
        "WHERE status = 'hold' ORDER BY updated_at LIMIT :n", {"n": limit},
    )
    # Shown on the exceptions screen: the receiver masked, phone numbers a check quoted too (db.privacy).
    return [HeldOrder(r[0], r[1], r[2], mask_name(r[3]), r[4] or "", mask_text(r[5]), _json_list(r[6]), utc(r[7]))
            for r in rows]


async def held_orders(store: Store, limit: int = 2000) -> list[HeldOrder]:
    """Held orders, longest held first."""
    return await store._read(_held, limit)


def _interceptions(q: Query, start: datetime, end: datetime) -> tuple[int, int]:
    held = q("SELECT COUNT(*) FROM timeline_event WHERE kind = 'held' AND actor_kind = 'rule' "
             "AND at >= :a AND at < :b", {"a": start, "b": end})[0][0]
    orders = q("SELECT COUNT(*) FROM orders WHERE created_at >= :a AND created_at < :b", {"a": start, "b": end})[0][0]
    return held, orders


async def interceptions(store: Store, day: datetime | None = None) -> tuple[int, int]:
    """(orders the checks held, orders created) on the China day containing ``day`` (default today)."""
    day = (day or datetime.now(UTC)).astimezone(CHINA)
    start = day.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    end = start + timedelta(days=1)
    if store.dialect == "sqlite":  # stored as naive UTC text
        return await store._read(_interceptions, _sqlite_time(start), _sqlite_time(end))
    return await store._read(_interceptions, start, end)
