"""The hot reads — lookup, the order card, an operator's name — as plain SQL, without SQLAlchemy.

Customer data leaves here masked (``db.privacy``): lookup hits always, the order card unless the
caller asks to ``reveal`` fields — search itself still matches on the real values.

Every function takes ``q(sql, params) -> list[tuple]``: on SQLite the ``sqlite3`` driver itself
(``db.reader``), on PostgreSQL a SQLAlchemy connection running ``text(sql)``. Parameters are
``:name`` style, which both accept. Keeping SQLAlchemy (and pydantic, through SQLModel) off this
path lets the app answer its first search before those ~0.5 s of imports have finished, and saves
their per-row result processing on every keystroke. Values arrive as the driver gives them
(SQLite: text datetimes, 0/1 booleans, JSON text) and are normalised here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from db import search
from db.codes import RETURN_STATES, ActorKind
from db.privacy import mask_address_line, mask_name, mask_order, mask_phone, mask_text
from db.views import (
    CustomerView,
    LineView,
    OrderCard,
    OrderHit,
    OtherOrder,
    ParcelView,
    TimelineItem,
)

#: ``q(sql, params)``: run one statement, return all its rows as tuples.
Query = Callable[[str, "dict | Sequence"], list[tuple]]

#: How many of a customer's other orders the card lists.
OTHER_ORDERS_SHOWN = 8

# Selected in OrderHit's field order (this runs for 50 rows on every keystroke).
_HITS = (
    "SELECT o.id, o.order_no, o.channel, s.name, o.status, o.after_sale, o.receiver_name, "
    "o.receiver_phone, o.city, o.district, o.paid_at, o.created_at, o.total_fen "
    "FROM orders o JOIN shop s ON o.shop_id = s.id WHERE o.id "
)
_CARD_COLUMNS = (
    "id", "order_no", "channel", "channel_order_id", "shop_name", "status", "raw_status", "after_sale",
    "raw_after_sale", "hold_reason", "total_fen", "paid_fen", "post_fee_fen", "discount_fen", "created_at",
    "paid_at", "ship_by", "priority", "tags", "presale", "buyer_note", "seller_memo", "receiver_name",
    "receiver_phone", "phone_kind", "province", "city", "district", "address_detail", "customer_id",
    "customer_match", "priority_why", "check_codes",
)
_CARD = (
    "SELECT " + ", ".join("s.name" if c == "shop_name" else f"o.{c}" for c in _CARD_COLUMNS)
    + " FROM orders o JOIN shop s ON o.shop_id = s.id WHERE o.id = :id"
)
_LINES = (
    "SELECT id, sku, title, quantity, price_fen, gift, combo_sku FROM order_line "
    "WHERE order_id = :id ORDER BY id"
)
_PARCELS = (
    "SELECT id, warehouse, carrier, waybill_no, state, printed_at, shipped_at, delivered_at, "
    "last_track_at, last_track_text FROM parcel WHERE order_id = :id ORDER BY id"
)
# Driven from parcel.order_id, so it is an index seek, never a scan of parcel_line.
_PARCEL_LINES = (
    "SELECT pl.parcel_id, l.sku, pl.quantity FROM parcel p "
    "JOIN parcel_line pl ON pl.parcel_id = p.id JOIN order_line l ON l.id = pl.line_id "
    "WHERE p.order_id = :id ORDER BY pl.parcel_id, l.id"
)
_TIMELINE = (
    "SELECT t.at, t.actor_kind, t.actor_id, op.display_name, t.kind, t.from_value, t.to_value, t.message "
    "FROM timeline_event t LEFT OUTER JOIN operator op "
    f"ON t.actor_kind = '{ActorKind.OPERATOR}' AND t.actor_id = op.id "
    "WHERE t.order_id = :id ORDER BY t.at, t.id"
)
_CUSTOMER = "SELECT name FROM customer WHERE id = :customer_id"
_CUSTOMER_ORDERS = (
    "SELECT id, order_no, channel, status, after_sale, paid_at, total_fen, created_at FROM orders "
    "WHERE customer_id = :customer_id ORDER BY created_at DESC LIMIT 200"
)
_OPERATOR_NAME = "SELECT display_name FROM operator WHERE id = :login"
_COUNT = "SELECT count(*) FROM orders"


def find_orders(q: Query, probes: list[search.Probe], limit: int, sqlite: bool) -> list[OrderHit]:
    """One compound probe statement, then the hit rows: best rank first, newest first within."""
    sql, params = search.compose(probes)
    ranked: dict[int, tuple[int, str]] = {}
    for probe_index, order_id in q(sql, params):
        probe = probes[probe_index]
        if order_id not in ranked or probe.rank < ranked[order_id][0]:
            ranked[order_id] = (probe.rank, probe.kind)
    if not ranked:
        return []
    ids = sorted(ranked, key=lambda i: (ranked[i][0], -i))[:limit]
    if sqlite:
        rows = q(_HITS + f"IN ({','.join('?' * len(ids))})", ids)
    else:
        rows = q(_HITS + "= ANY(:ids)", {"ids": ids})  # asyncpg sends the list as one int[] parameter
    by_id = {row[0]: row for row in rows}
    hits = []
    for i in ids:
        row = by_id.get(i)
        if row is not None:
            oid, no, channel, shop, status, after_sale, name, phone, city, district, paid_at, created_at, total = row
            hits.append(OrderHit(oid, no, channel, shop, status, after_sale, mask_name(name), mask_phone(phone),
                                 city, district, utc(paid_at), utc(created_at), total, ranked[i][1]))
    return hits


#: Timeline kinds whose old → new values are codes, statuses or numbers the desk wrote, never a
#: customer's words: shown as they are. Every other kind's values go through ``mask_text``.
_CODE_VALUES = frozenset({"created", "status", "status_regression", "aftersale", "ship", "duplicate_suspected",
                          "priority", "hold", "held", "released", "lines", "picked", "packed", "shipped"})


def order_card(q: Query, order_id: int, now: datetime, reveal: frozenset[str] = frozenset()) -> OrderCard | None:
    """Everything the lifecycle card shows; call inside one read snapshot.

    Masked (``db.privacy``) except the fields in ``reveal``: ``name`` (receiver and customer name),
    ``phone`` (the receiver phone, and phone / ID numbers quoted in notes, the hold reason and the
    timeline), ``address`` (the detail address). Whoever passes ``reveal`` has checked the
    operator may see them and logged it.
    """
    rows = q(_CARD, {"id": order_id})
    if not rows:
        return None
    row = dict(zip(_CARD_COLUMNS, rows[0], strict=True))
    mask_order(row, reveal)
    for name in ("created_at", "paid_at", "ship_by"):
        row[name] = utc(row[name])
    tags = row.pop("tags")
    row["tags"] = tuple(json.loads(tags) if isinstance(tags, str) else tags or ())
    codes = row.pop("check_codes")
    row["check_codes"] = tuple(json.loads(codes) if isinstance(codes, str) else codes or ())
    row["presale"] = bool(row["presale"])
    customer_id, customer_match = row.pop("customer_id"), row.pop("customer_match")
    params = {"id": order_id}
    carried: dict[int, list[tuple[str, int]]] = {}
    for parcel_id, sku, qty in q(_PARCEL_LINES, params):
        carried.setdefault(parcel_id, []).append((sku, qty))
    lines = tuple(LineView(i, sku, t, n, p, bool(g), c) for i, sku, t, n, p, g, c in q(_LINES, params))
    parcels = tuple(
        ParcelView(pid, wh, carrier, waybill, state, utc(printed), utc(shipped), utc(delivered),
                   utc(tracked), text, tuple(carried.get(pid, ())))
        for pid, wh, carrier, waybill, state, printed, shipped, delivered, tracked, text in q(_PARCELS, params)
    )
    timeline = tuple(
        _timeline_item(utc(at), kind, actor, name or actor, what, old, new, message, reveal)
        for at, kind, actor, name, what, old, new, message in q(_TIMELINE, params)
    )
    customer = None
    if customer_id is not None:
        names = q(_CUSTOMER, {"customer_id": customer_id})
        name = (names[0][0] if names else None) or row["receiver_name"]
        if "name" not in reveal:
            name = mask_name(name)
        others = q(_CUSTOMER_ORDERS, {"customer_id": customer_id})
        customer = _customer_view(order_id, customer_id, customer_match, name, others, now)
    return OrderCard(**row, lines=lines, parcels=parcels, timeline=timeline, customer=customer)


def _timeline_item(at: datetime | None, actor_kind: str, actor_id: str, actor_name: str, kind: str,
                   old: str | None, new: str | None, message: str | None, reveal: frozenset[str]) -> TimelineItem:
    """One timeline event, with the customer data its texts quote masked as the card's fields are."""
    if kind == "address":  # old → new receiver and address: "name phone place"
        old = mask_address_line(old, reveal) if old else old
        new = mask_address_line(new, reveal) if new else new
    elif "phone" not in reveal and kind not in _CODE_VALUES:
        old = mask_text(old) if old else old
        new = mask_text(new) if new else new
    if message and "phone" not in reveal:
        message = mask_text(message)
    return TimelineItem(at, actor_kind, actor_id, actor_name, kind, old, new, message)


def operator_name(q: Query, login: str) -> str | None:
    """The display name of an operator, or None when the login is unknown."""
    rows = q(_OPERATOR_NAME, {"login": login})
    return rows[0][0] if rows else None


def count_orders(q: Query) -> int:
    """How many orders the pool holds."""
    return q(_COUNT, {})[0][0]


def utc(value: datetime | str | None) -> datetime | None:
    """An aware UTC datetime from what the driver gave (SQLite: naive UTC text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _customer_view(order_id: int, customer_id: int, match: str, name: str, rows: list[tuple],
                   now: datetime) -> CustomerView:
    orders = [OtherOrder(i, no, ch, st, af, utc(paid), total) for i, no, ch, st, af, paid, total, _ in rows]
    created = {row[0]: utc(row[7]) for row in rows}
    returns = [o for o in orders if o.after_sale in RETURN_STATES]
    recent = now - timedelta(days=30)
    returns_30d = sum(1 for o in returns if (o.paid_at or created[o.id]) >= recent)
    return CustomerView(
        id=customer_id,
        name=name,
        match_reason=match,
        order_count=len(orders),
        return_count=len(returns),
        returns_30d=returns_30d,
        channels=tuple(sorted({o.channel for o in orders})),
        others=tuple(o for o in orders if o.id != order_id)[:OTHER_ORDERS_SHOWN],
    )
