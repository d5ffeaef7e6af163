"""The warehouse queue's reads and writes, as plain SQL: open orders, their rule facts, scans.

*Open* orders are the ones the warehouse still has to ship and may work on: 已付款, 审核中 and
配货中 (:data:`OPEN`). Held (异常), unpaid, shipped and cancelled orders are not on the queue.

Reads follow ``db.reads``: every function takes ``q(sql, params) -> list[tuple]`` and runs inside
one read snapshot (``Store._read``: plain sqlite3 on a reader thread for a SQLite file, a
SQLAlchemy connection on PostgreSQL). Values are normalised here (SQLite hands back text times,
0/1 booleans and JSON text).

- :func:`queue_rows` — every open order as a :class:`QueueRow`, sorted as the warehouse works:
  priority (S, A, B, C, anything else), then the ship-by deadline (``sla_due``; none last), then id;
  or just the given orders, to merge into a queue already shown.
- :func:`changes_since` — the orders changed after a timeline event: every write to an order
  appends one, so the timeline is the change feed that keeps a queue screen current.
- :func:`waiting_rows` / :func:`escalated_levels` / :func:`escalations_since` — what escalation
  reads: the unshipped orders of the priorities that escalate, the levels already reached (from the
  timeline), and the escalation events after a point (how every session hears of them).
- :func:`fact_rows` — what the priority rules read about open orders (:class:`FactRow`): the order,
  its lines, warehouses, the customer's VIP level and returns in 30 days, and how many open orders
  go to the same receiver and address within 24 hours. With ``ids``: only the open orders those
  changes can affect (the changed orders, and open orders of the same customer or address).

Writes take an ``AsyncConnection`` inside the caller's ``Store.write()`` transaction:
:func:`current_state` (re-read what the rules may change), :func:`store_rule_changes` (batched
UPDATEs and timeline events; on SQLite straight to the driver, as ``db.ingest`` does),
:func:`scan_targets` / :func:`scan_row` / :func:`step_started` / :func:`set_step` for
scan-to-confirm. SQLAlchemy is imported by those functions only, so the read side loads without it.

Measured on 50,000 open orders (``bench/warehouse.py``): the full sorted read is about twice the
raw sqlite3 floor of the same statement. A partial covering index of the open orders' 13 columns
was tried (a migration): the statement went from ~185 to ~165 ms, but every new order paid for it
at ingest (−11 % orders/s), so it was taken out again.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from db.codes import RETURN_STATES, Status
from db.privacy import mask_name
from db.reads import utc

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from db.store import Store
    from db.views import Actor

#: ``q(sql, params)``: run one statement, return all its rows as tuples.
Query = Callable[[str, "dict | Sequence"], list[tuple]]

#: Statuses on the warehouse queue: paid, in review, allocating (picked / packed inside it).
OPEN: tuple[str, ...] = (Status.PAID.value, Status.REVIEW.value, Status.ALLOCATING.value)
_OPEN_SQL = "(" + ", ".join(f"'{s}'" for s in OPEN) + ")"  # constants, never user input
#: Warehouse steps inside 配货中, in order (``orders.wh_step``; NULL = not picked yet).
PICKED, PACKED = "picked", "packed"
#: Ids per ``IN (...)`` list (SQLite allows 32,766 parameters; PostgreSQL 65,535).
CHUNK = 500

_RANK_SQL = "CASE o.priority WHEN 'S' THEN 0 WHEN 'A' THEN 1 WHEN 'B' THEN 2 WHEN 'C' THEN 3 ELSE 4 END"
# No JOIN for the shop's name: a dict of the few shops is cheaper than 50,000 lookups.
# The deadline comes as seconds since the epoch: SQLite computes that for free while it reads the
# row, Python's parsing of the text and the tz-aware datetime cost ~40 ms over 50,000 rows. The
# order is by that same number, so :func:`queue_key` sorts merged rows exactly as SQL does.
_QUEUE_SELECT = (
    "SELECT o.id, o.order_no, o.channel, o.shop_id, o.status, o.wh_step, o.priority, {epoch}, o.tags, "
    "o.receiver_name, o.city, o.total_fen, o.priority_why FROM orders o "
    f"WHERE o.status IN {_OPEN_SQL}"
)
_QUEUE = _QUEUE_SELECT + f" ORDER BY {_RANK_SQL}, {{epoch}} IS NULL, {{epoch}}, o.id"
_EPOCH = {True: "unixepoch(o.sla_due)", False: "EXTRACT(EPOCH FROM o.sla_due)"}
_SHOPS = "SELECT id, name FROM shop"
# Driven from the open orders (status index), then each one's parcels (order_id index).
_QUEUE_PARCELS = (
    "SELECT p.order_id, p.warehouse, p.printed_at FROM orders o JOIN parcel p ON p.order_id = o.id "
    f"WHERE o.status IN {_OPEN_SQL}"
)  # parcels come in id order per order (the order_id index holds rowids in order)


class QueueRow(NamedTuple):
    """One open order as the queue, the board and ``deskapp queue`` show it.

    A NamedTuple: a busy pool puts 50,000 of these on the queue. Text is as stored (cleaned at
    ingest); renderers still clean it again and never parse it as markup.
    """

    id: int
    order_no: str
    channel: str
    shop: str  # the shop's name
    status: str  # paid | review | allocating
    wh_step: str | None  # picked | packed inside 配货中
    priority: str
    due_ts: float | None  # the ship-by deadline the rules computed (orders.sla_due), POSIX seconds
    tags: tuple[str, ...]
    receiver: str  # masked (db.privacy): 张*
    city: str
    total_fen: int
    why: str | None  # the rule that set the priority
    warehouses: tuple[str, ...]  # of its parcels, in parcel order ('' for none assigned yet)
    printed: bool  # a waybill of it has been printed

    @property
    def due(self) -> datetime | None:
        """The ship-by deadline (aware UTC), or None."""
        return None if self.due_ts is None else datetime.fromtimestamp(self.due_ts, UTC)

    @property
    def picked(self) -> bool:
        """Picking is done (picked or packed)."""
        return self.wh_step in (PICKED, PACKED)

    @property
    def progress(self) -> str:
        """Where it is in the warehouse: paid, review, allocating, picked or packed."""
        return self.wh_step if self.status == Status.ALLOCATING and self.wh_step else self.status

    @property
    def warehouse(self) -> str:
        """The first parcel's warehouse ('' when none is assigned yet)."""
        return self.warehouses[0] if self.warehouses else ""


def queue_rows(q: Query, sqlite: bool = True, ids: Sequence[int] | None = None) -> list[QueueRow]:
    """Every open order in queue order (priority, deadline, id) — or, with ``ids``, those of these
    orders that are open (in no particular order); call inside one read snapshot."""
    houses: dict[int, list[str]] = {}
    printed: set[int] = set()
    for order_id, warehouse, printed_at in _filtered(q, _QUEUE_PARCELS, ids, "o.id"):
        names = houses.setdefault(order_id, [])
        if warehouse not in names:
            names.append(warehouse)
        if printed_at is not None:
            printed.add(order_id)
    shops = dict(q(_SHOPS, {}))
    out: list[QueueRow] = []
    # tuple.__new__ rather than QueueRow(...): the NamedTuple constructor is a Python function,
    # three times the cost per row (50,000 rows: ~50 ms).
    append, new, get_houses, get_shop, empty = out.append, tuple.__new__, houses.get, shops.get, ()
    epoch = _EPOCH[sqlite]
    found = q(_QUEUE.format(epoch=epoch), {}) if ids is None else \
        _filtered(q, _QUEUE_SELECT.format(epoch=epoch), ids, "o.id")
    for oid, no, channel, shop, status, step, priority, due, tags, receiver, city, total, why in found:
        append(new(QueueRow, (
            oid, no, channel, get_shop(shop, ""), status, step, priority, None if due is None else float(due),
            empty if tags == "[]" or not tags else _tags(tags), mask_name(receiver), city, total, why,
            tuple(get_houses(oid, empty)), oid in printed,
        )))
    return out



# -- what the rules read ----------------------------------------------------------------------


class FactRow(NamedTuple):
    """What the rules and the SLA read about one open order, and what they last decided for it."""

    id: int
    channel: str
    shop: str  # the shop code
    total_fen: int
    created_at: datetime
    paid_at: datetime | None
    vip_level: str
    buyer_note: str
    seller_memo: str
    channel_tags: tuple[str, ...]  # as the channel delivered them (the desk's own tags excluded)
    tags: tuple[str, ...]  # as stored: the channel's, the desk's and the rules'
    has_source: bool  # the channel's own tags are known (an order_source snapshot exists)
    presale: bool
    presale_ship_at: datetime | None
    ship_by: datetime | None  # the platform's promised ship time
    is_live: bool
    skus: tuple[str, ...]
    item_count: int
    province: str
    city: str
    warehouse: str
    returns_30d: int
    same_address_24h: int  # open orders to the same receiver and address within 24 h, this one included
    status: str
    priority: str
    priority_why: str | None
    rules_version: str | None
    sla_due: datetime | None


def _facts_sql(sqlite: bool) -> str:
    source_tags = "json_extract(src.snapshot, '$.tags')" if sqlite else "CAST(src.snapshot -> 'tags' AS TEXT)"
    return (
        "SELECT o.id, o.channel, s.code, o.total_fen, o.created_at, o.paid_at, c.vip_level, o.buyer_note, "
        f"o.seller_memo, {source_tags}, o.tags, src.order_id, o.presale, o.presale_ship_at, o.ship_by, o.is_live, "
        "o.province, o.city, o.customer_id, o.status, o.priority, o.priority_why, o.rules_version, o.sla_due, "
        "o.search_text, o.receiver_name, o.address_detail "
        "FROM orders o JOIN shop s ON s.id = o.shop_id LEFT JOIN customer c ON c.id = o.customer_id "
        f"LEFT JOIN order_source src ON src.order_id = o.id WHERE o.status IN {_OPEN_SQL}"
    )


_LINES = (
    "SELECT l.order_id, l.sku, l.quantity FROM orders o JOIN order_line l ON l.order_id = o.id "
    f"WHERE o.status IN {_OPEN_SQL}"
)
_PARCELS = (
    "SELECT p.order_id, p.warehouse FROM orders o JOIN parcel p ON p.order_id = o.id "
    f"WHERE o.status IN {_OPEN_SQL}"
)
# Every open order's receiver-and-address key (search_text: the name, then the address run
# together) and creation time: what "orders to the same address within 24 h" counts.
_ADDRESSES = f"SELECT o.id, o.search_text, o.receiver_name, o.address_detail, o.created_at FROM orders o WHERE o.status IN {_OPEN_SQL}"
_RETURN_STATES_SQL = "(" + ", ".join(f"'{s.value}'" for s in sorted(RETURN_STATES)) + ")"
# COALESCE(paid_at, created_at) >= :since, spelled so the (customer_id, paid_at) index bounds it.
_RETURNS = (
    "SELECT r.customer_id, count(*) FROM orders r "
    f"WHERE r.after_sale IN {_RETURN_STATES_SQL} "
    "AND (r.paid_at >= :since OR (r.paid_at IS NULL AND r.created_at >= :since)) "
    "AND r.customer_id IN ({customers}) GROUP BY r.customer_id"
)
_OPEN_CUSTOMERS = f"SELECT customer_id FROM orders WHERE status IN {_OPEN_SQL}"
# The open orders a change to these orders can affect: themselves, the same customer's (returns),
# the same receiver-and-address's (merge counts).
_AFFECTED = (
    "SELECT o.id FROM orders o WHERE o.status IN " + _OPEN_SQL + " AND (o.id IN ({ids}) "
    "OR o.customer_id IN (SELECT customer_id FROM orders WHERE id IN ({ids})) "
    "OR o.search_text IN (SELECT search_text FROM orders WHERE id IN ({ids})))"
)
#: The window of "orders to the same address".
SAME_ADDRESS_WINDOW = timedelta(hours=24)
#: The window of "returns in 30 days" (as the order card counts them).
RETURNS_WINDOW = timedelta(days=30)


def fact_rows(q: Query, ids: Sequence[int] | None, sqlite: bool, now: datetime) -> list[FactRow]:
    """Facts of every open order (``ids`` None), or of the open orders changes to ``ids`` affect."""
    if ids is not None:
        affected: set[int] = set()
        for chunk in _chunks(ids):
            names, params = _in(chunk)
            affected.update(row[0] for row in q(_AFFECTED.format(ids=names), params))
        if not affected:
            return []
        targets: list[int] | None = sorted(affected)
    else:
        targets = None
    facts_sql = _facts_sql(sqlite)
    base = list(_filtered(q, facts_sql, targets, "o.id"))
    if not base:
        return []
    skus: dict[int, list[str]] = {}
    counts: dict[int, int] = {}
    for order_id, sku, quantity in _filtered(q, _LINES, targets, "o.id"):
        skus.setdefault(order_id, []).append(sku)
        counts[order_id] = counts.get(order_id, 0) + (quantity or 0)
    houses: dict[int, str] = {}
    for order_id, warehouse in _filtered(q, _PARCELS, targets, "o.id"):
        houses.setdefault(order_id, warehouse)
    since = _param_time(now - RETURNS_WINDOW, sqlite)
    returns: dict[int, int] = {}
    if targets is None:
        for customer_id, n in q(_RETURNS.format(customers=_OPEN_CUSTOMERS), {"since": since}):
            returns[customer_id] = n
        same = _same_address_counts((row[0], row[24], row[25], row[26], row[4]) for row in base)
    else:
        customers = sorted({row[18] for row in base if row[18] is not None})
        for chunk in _chunks(customers):
            names, params = _in(chunk)
            for customer_id, n in q(_RETURNS.format(customers=names), {**params, "since": since}):
                returns[customer_id] = n
        # every open order to the same receiver and address as one of these, wherever it is
        keys = sorted({row[24] for row in base if row[24]})
        found = []
        for chunk in _chunks(keys):
            params = {f"k{n}": key for n, key in enumerate(chunk)}
            found.extend(q(f"{_ADDRESSES} AND o.search_text IN ({', '.join(':' + k for k in params)})", params))
        same = _same_address_counts(found)
    out: list[FactRow] = []
    append, new, empty = out.append, tuple.__new__, ()
    for (oid, channel, shop, total, created, paid, vip, note, memo, source_tags, tags, source, presale, presale_at,
         ship_by, live, province, city, customer_id, status, priority, why, version, due, _key, _name,
         _detail) in base:
        stored = empty if tags == "[]" or not tags else _tags(tags)
        if source is None:
            channel_tags = stored
        else:
            channel_tags = empty if source_tags == "[]" or not source_tags else _tags(source_tags)
        append(new(FactRow, (
            oid, channel, shop, total, _time(created), _time(paid), vip or "", note or "", memo or "",
            channel_tags, stored, source is not None, bool(presale), _time(presale_at), _time(ship_by), bool(live),
            tuple(skus.get(oid, empty)), counts.get(oid, 0), province or "", city or "", houses.get(oid, ""),
            returns.get(customer_id, 0) if customer_id is not None else 0, same.get(oid, 1), status, priority, why,
            version, _time(due),
        )))
    return out


_FROM_TEXT = datetime.fromisoformat


def _time(value: Any) -> datetime | None:
    """``utc``, fast for SQLite's text (naive UTC, as SQLAlchemy stores it): a recompute converts
    250,000 of these, and ``replace(tzinfo=...)`` costs nine times the parse itself."""
    if value is None:
        return None
    if type(value) is str:
        try:
            return _FROM_TEXT(value + "+00:00")
        except ValueError:  # it carries an offset already
            return utc(value)
    return utc(value)


_LAST_EVENT = "SELECT max(id) FROM timeline_event"
_CHANGED = "SELECT DISTINCT order_id FROM timeline_event WHERE id > :after AND id <= :upto"


def changes_since(q: Query, after: int | None) -> tuple[int, list[int] | None]:
    """The newest timeline event id, and the orders with an event after ``after`` (None: not asked).

    Every write to an order appends a timeline event, so the timeline is the pool's change feed:
    what another terminal scanned, the sync changed or the rules decided, read by primary key.
    """
    last = q(_LAST_EVENT, {})[0][0] or 0
    if after is None or last <= after:
        return last, None if after is None else []
    return last, [row[0] for row in q(_CHANGED, {"after": after, "upto": last})]


# -- what escalation reads --------------------------------------------------------------------


class WaitingRow(NamedTuple):
    """An order escalation watches: unshipped, of a priority that escalates (see
    ``deskapp.services.escalation.OpenOrder``). ``waiting_since``: paid (else created), aware UTC."""

    id: int
    order_no: str
    priority: str
    status: str
    waiting_since: datetime
    sla_due: datetime | None
    warehouse: str  # the first parcel's ('' when none is assigned yet)


_WAITING = (
    "SELECT o.id, o.order_no, o.priority, o.status, COALESCE(o.paid_at, o.created_at), o.sla_due, "
    "(SELECT p.warehouse FROM parcel p WHERE p.order_id = o.id ORDER BY p.id LIMIT 1) "
    "FROM orders o WHERE o.status IN ({statuses}) AND o.priority IN ({priorities})"
)
# Driven from the open orders (status index), then each one's events (order_id index): the
# timeline itself is never scanned.
_ESCALATED = (
    "SELECT o.order_no, e.to_value FROM orders o JOIN timeline_event e ON e.order_id = o.id "
    "WHERE o.status IN ({statuses}) AND e.kind = 'escalated'"
)
_ESCALATED_SINCE = (
    "SELECT e.id, o.order_no, e.to_value, e.detail FROM timeline_event e JOIN orders o ON o.id = e.order_id "
    "WHERE e.id > :after AND e.id <= :upto AND e.kind = 'escalated' ORDER BY e.id"
)
#: The timeline event kind escalation writes (``Escalation.event``).
ESCALATED = "escalated"


def _waiting_statuses(include_held: bool) -> tuple[dict, str]:
    statuses = OPEN + ((Status.HOLD.value,) if include_held else ())
    params = {f"s{n}": s for n, s in enumerate(statuses)}
    return params, ", ".join(f":{name}" for name in params)


def waiting_rows(q: Query, priorities: Sequence[str], include_held: bool = False) -> list[WaitingRow]:
    """The open orders (and held ones, ``include_held``) of these priorities, for escalation."""
    if not priorities:
        return []
    params, statuses = _waiting_statuses(include_held)
    wanted = {f"p{n}": p for n, p in enumerate(priorities)}
    sql = _WAITING.format(statuses=statuses, priorities=", ".join(f":{name}" for name in wanted))
    new = tuple.__new__  # as in queue_rows: a third of the NamedTuple constructor's cost
    return [new(WaitingRow, (oid, no, priority, status, _time(since), _time(due), house or ""))
            for oid, no, priority, status, since, due, house in q(sql, {**params, **wanted})]


def escalated_levels(q: Query, include_held: bool = False) -> dict[str, int]:
    """The highest level each waiting order has been escalated to, from its timeline (a new
    sender starts from here, so nobody is told twice)."""
    params, statuses = _waiting_statuses(include_held)
    levels: dict[str, int] = {}
    for no, level in q(_ESCALATED.format(statuses=statuses), params):
        try:
            value = int(level)
        except (TypeError, ValueError):
            continue
        if value > levels.get(no, 0):
            levels[no] = value
    return levels


def escalations_since(q: Query, after: int | None) -> tuple[int, list[tuple[int, str, int, dict]]]:
    """The newest timeline event id, and the escalation events after ``after`` — ``(event id,
    order no, level, detail)`` — oldest first; ``after`` None: only where the timeline ends now
    (a session that starts is told of no escalation from before it)."""
    last = q(_LAST_EVENT, {})[0][0] or 0
    if after is None or last <= after:
        return last, []
    out = []
    for event_id, no, level, detail in q(_ESCALATED_SINCE, {"after": after, "upto": last}):
        if isinstance(detail, str):
            try:
                detail = orjson.loads(detail)
            except orjson.JSONDecodeError:
                detail = None
        try:
            value = int(level)
        except (TypeError, ValueError):
            continue
        out.append((event_id, no, value, detail if isinstance(detail, dict) else {}))
    return last, out


def _same_address_counts(rows: Iterable[tuple]) -> dict[int, int]:
    """Per open order: open orders with the same receiver and address created within 24 h of it."""
    groups: dict[str, list[tuple[datetime, int]]] = {}
    for oid, key, name, detail, created in rows:
        if not key or not detail or "*" in (name or ""):  # no address, or a masked name: no key
            continue
        groups.setdefault(key, []).append((_time(created), oid))
    counts: dict[int, int] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort()
        times = [t for t, _ in members]
        for at, oid in members:
            counts[oid] = bisect_right(times, at + SAME_ADDRESS_WINDOW) - bisect_left(times, at - SAME_ADDRESS_WINDOW)
    return counts


def _filtered(q: Query, sql: str, ids: list[int] | None, column: str) -> Iterable[tuple]:
    if ids is None:
        yield from q(sql, {})
        return
    for chunk in _chunks(ids):
        names, params = _in(chunk)
        yield from q(f"{sql} AND {column} IN ({names})", params)


def _in(ids: Sequence[int]) -> tuple[str, dict[str, int]]:
    """``:i0, :i1 …`` and their values: named parameters both backends take from a dict."""
    params = {f"i{n}": value for n, value in enumerate(ids)}
    return ", ".join(f":{name}" for name in params), params


def _chunks(values: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def _param_time(value: datetime, sqlite: bool) -> datetime | str:
    """A time parameter as the column stores it (SQLite: SQLAlchemy's naive UTC text)."""
    if not sqlite:
        return value
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = orjson.loads(value)
    return tuple(str(t) for t in value or ()) if isinstance(value, list) else ()


async def read(store: Store, fn: Callable[..., Any], *args: object) -> Any:
    """Run ``fn(q, *args)`` in one read snapshot of the Store (reader thread on SQLite)."""
    return await store._read(fn, *args)


# -- what the rules write ---------------------------------------------------------------------


class Current(NamedTuple):
    """What the rules may change on an order, as stored now (read inside the write transaction)."""

    id: int
    status: str
    priority: str
    tags: tuple[str, ...]
    priority_why: str | None
    rules_version: str | None
    sla_due: datetime | None
    hold_reason: str | None


async def current_state(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, Current]:
    """The stored state of these orders (inside the caller's write transaction)."""
    found: dict[int, Current] = {}
    driver = await _sqlite_driver(conn)
    if driver is not None:  # straight to the driver: SQLAlchemy's row handling cost ~25 µs a row
        for chunk in _chunks(list(ids)):
            rows = await driver.execute_fetchall(f"{_CURRENT} WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
            for oid, status, priority, tags, why, version, due, hold in rows:
                found[oid] = Current(oid, status, priority, _tags(tags), why, version, _time(due), hold)
        return found
    from sqlalchemy import select

    from db.models import Order

    o = Order.__table__.c
    for chunk in _chunks(list(ids)):
        rows = await conn.execute(
            select(o.id, o.status, o.priority, o.tags, o.priority_why, o.rules_version, o.sla_due, o.hold_reason)
            .where(o.id.in_(list(chunk)))
        )
        for oid, status, priority, tags, why, version, due, hold in rows:
            found[oid] = Current(oid, status, priority, _tags(tags), why, version, utc(due), hold)
    return found


_CURRENT = "SELECT id, status, priority, tags, priority_why, rules_version, sla_due, hold_reason FROM orders"
_SET_RULES = ("UPDATE orders SET priority = ?, tags = ?, priority_why = ?, rules_version = ?, sla_due = ?, "
              "updated_at = ? WHERE id = ?")
_SET_HOLD = f"UPDATE orders SET status = 'hold', hold_reason = ?, updated_at = ? WHERE id = ? AND status IN {_OPEN_SQL}"


async def store_rule_changes(
    conn: AsyncConnection, updates: Sequence[dict], holds: Sequence[dict], events: Sequence[dict]
) -> None:
    """Write what the rules changed, inside the caller's write transaction, as three batches.

    ``updates``: ``{"b_id", "priority", "tags", "priority_why", "rules_version", "sla_due",
    "updated_at"}``; ``holds``: ``{"b_id", "hold_reason", "updated_at"}`` (status → 异常, only if
    the order is still open); ``events``: timeline rows (``order_id, at, actor_kind, actor_id,
    kind, from_value, to_value, message, detail``). On SQLite the rows go to the driver's
    executemany, stored exactly as SQLAlchemy stores them (as ``db.ingest`` does).
    """
    driver = await _sqlite_driver(conn)
    if driver is not None:
        from db.ingest import _json_text, _sqlite_time, _sqlite_writer
        from db.models import TimelineEvent

        if updates:
            await driver.executemany(_SET_RULES, [
                (u["priority"], _json_text(u["tags"]), u["priority_why"], u["rules_version"],
                 None if u["sla_due"] is None else _sqlite_time(u["sla_due"]), _sqlite_time(u["updated_at"]), u["b_id"])
                for u in updates])
        if holds:
            await driver.executemany(_SET_HOLD, [(h["hold_reason"], _sqlite_time(h["updated_at"]), h["b_id"])
                                                 for h in holds])
        if events:
            sql, convert = _sqlite_writer(TimelineEvent.__table__)
            await driver.executemany(sql, [convert(e) for e in events])
        return
    from sqlalchemy import bindparam, insert, update

    from db.models import Order, TimelineEvent

    o = Order.__table__.c
    by_id = update(Order.__table__).where(o.id == bindparam("b_id"))
    if updates:
        await conn.execute(by_id, list(updates))
    if holds:
        await conn.execute(
            by_id.where(o.status.in_(OPEN)).values(status=Status.HOLD.value), list(holds)
        )
    if events:
        await conn.execute(insert(TimelineEvent.__table__), list(events))


async def _sqlite_driver(conn: AsyncConnection) -> Any:
    """The aiosqlite connection under a SQLite write transaction (None on PostgreSQL)."""
    if conn.dialect.name != "sqlite":
        return None
    return (await conn.get_raw_connection()).driver_connection


# -- scan-to-confirm --------------------------------------------------------------------------


class ScanRow(NamedTuple):
    """An order as a scan finds it (inside the scan's write transaction)."""

    id: int
    order_no: str
    status: str
    wh_step: str | None
    after_sale: str
    hold_reason: str | None
    paid_at: datetime | None
    waybills: tuple[tuple[int, str, str], ...]  # (parcel id, waybill, carrier) of parcels with a waybill


async def scan_targets(conn: AsyncConnection, code: str) -> list[int]:
    """Ids of the orders a scanned code names: order no., channel order id or waybill no."""
    from sqlalchemy import or_, select

    from db.models import Order, Parcel

    o, p = Order.__table__.c, Parcel.__table__.c
    ids = set((await conn.execute(select(o.id).where(or_(o.order_no == code, o.channel_order_id == code)))).scalars())
    ids.update((await conn.execute(select(p.order_id).where(p.waybill_no == code))).scalars())
    return sorted(ids)


async def scan_row(conn: AsyncConnection, order_id: int) -> ScanRow | None:
    """The order a scan advances, with its parcels that have a waybill."""
    from sqlalchemy import select

    from db.models import Order, Parcel

    o, p = Order.__table__.c, Parcel.__table__.c
    row = (await conn.execute(
        select(o.id, o.order_no, o.status, o.wh_step, o.after_sale, o.hold_reason, o.paid_at).where(o.id == order_id)
    )).first()
    if row is None:
        return None
    waybills = tuple(
        (pid, waybill, carrier) for pid, waybill, carrier in await conn.execute(
            select(p.id, p.waybill_no, p.carrier).where(p.order_id == order_id, p.waybill_no.is_not(None)).order_by(p.id)
        )
    )
    oid, no, status, step, after_sale, hold, paid = row
    return ScanRow(oid, no, status, step, after_sale, hold, utc(paid), waybills)


async def step_started(conn: AsyncConnection, order_id: int, kinds: Sequence[str],
                       to_status: str | None = None) -> tuple[datetime, str] | None:
    """When (and by whom) the step before this one ended: the newest event of ``kinds`` on the
    order's timeline, or the one that put it in ``to_status`` (a status change, or its creation)."""
    from sqlalchemy import and_, or_, select

    from db.models import TimelineEvent

    t = TimelineEvent.__table__.c
    match = t.kind.in_(list(kinds))
    if to_status is not None:
        match = or_(match, and_(t.kind.in_(["status", "created"]), t.to_value == to_status))
    row = (await conn.execute(
        select(t.at, t.actor_id).where(t.order_id == order_id, match).order_by(t.at.desc(), t.id.desc()).limit(1)
    )).first()
    return None if row is None else (utc(row[0]), row[1])


async def set_step(conn: AsyncConnection, order_id: int, *, status: str, wh_step: str | None, at: datetime,
                   ship_parcels: Sequence[int] = ()) -> bool:
    """Move the order to ``status`` / ``wh_step``; ship the given parcels. False if it changed meanwhile."""
    from sqlalchemy import update

    from db.models import Order, Parcel

    o, p = Order.__table__.c, Parcel.__table__.c
    result = await conn.execute(
        update(Order.__table__).where(o.id == order_id).values(status=status, wh_step=wh_step, updated_at=at)
    )
    if ship_parcels:
        await conn.execute(
            update(Parcel.__table__).where(p.id.in_(list(ship_parcels)), p.shipped_at.is_(None))
            .values(state="shipped", shipped_at=at)
        )
    return result.rowcount == 1


def event_row(order_id: int, actor: Actor, kind: str, *, at: datetime, from_value: str | None = None,
              to_value: str | None = None, message: str = "", detail: dict | None = None) -> dict:
    """A timeline row for a batched insert (``store_rule_changes``)."""
    return {"order_id": order_id, "parcel_id": None, "at": at, "actor_kind": actor.kind, "actor_id": actor.id,
            "kind": kind, "from_value": from_value, "to_value": to_value, "message": message, "detail": detail,
            "dedupe_key": None}
