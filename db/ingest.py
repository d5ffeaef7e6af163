"""Ingest: channel orders into the pool exactly once, with their watermark and quarantine, in one go.

:func:`ingest` takes a batch of canonical orders (``db.store.NewOrder``) from a connector, an import
or a test and applies it in **one write transaction** together with the connector's watermark
(:class:`CursorUpdate`) and the payloads it could not map (:class:`QuarantineItem`): either all of
it commits or none of it does, so a crash can never move the watermark past orders that were lost.

The rules, in the order they are applied to each order (upsert on channel + shop + channel order id):

1. **Invalid** orders (missing ids, naive datetimes, unknown status codes, text longer than its
   column ...) are quarantined with the reason, never half-written (:func:`prepare`).
2. The same order twice in one batch: the one with the later ``modified_at`` wins (platforms repeat
   rows across pages).
3. **Older** than what is stored (``modified_at`` earlier than the stored one) → ignored (``stale``).
   An order without ``modified_at`` (a file import) is never older.
4. **Unchanged** — the fingerprint (hash of the canonical content, lines and parcels included) equals
   the stored one → skipped: no write, no event.
5. **Changed** → merged *three ways* against the order's source snapshot (``order_source``: what the
   channel delivered last time). A field the channel did not change keeps what the desk made of it
   (an operator's memo or address edit); a field the channel changed is applied, and each applied
   change appends a timeline event by the connector saying from → to: ``status``, ``aftersale``,
   ``memo``, ``buyer_note``, ``address``, ``lines``, ``ship`` (a new waybill), ``updated`` (amounts,
   times, tags and the rest, listed in ``detail``). Orders written before this module (demo data,
   ``Store.add_order``) have no snapshot: their stored values stand in for it.
6. **Status** — see :func:`status_decision`. In short: a channel may move an order *forward* in
   ``LIFECYCLE`` and may always cancel it; it never moves an order *back* (that is recorded as a
   ``status_regression`` event with from/to and not applied); and the channel's coarse view never
   overwrites the desk's finer one — "paid" does not undo 审核中/配货中/异常 set by operators or
   rules, "shipped" does not undo 运输中/已签收 learned from the carrier. An order on hold
   (异常) leaves it only when the channel reports it shipped or cancelled: releasing a hold is a
   person's decision. A cancelled order does not come back by itself.
7. **Probable duplicates**: a new order whose plain phone and SKU set equal those of another
   (not cancelled) order created within :data:`DUPLICATE_WINDOW` is tagged :data:`DUPLICATE_TAG`
   and gets a ``duplicate_suspected`` event naming the other order. Never merged.

Speed: every statement is batched — one query per batch finds the existing orders, ids for new
rows are drawn up front (SQLite: past ``MAX(id)`` under the write lock; PostgreSQL: from the
sequence) and the rows go in as one ``executemany`` per table (on SQLite straight to the driver, as
``Store.bulk_load`` does). Full-text triggers keep the search index in step.

Also here: the quarantine (list / discard / mark retried / auto-resolve when the order later
ingests), watermarks and connector health for a Connectors screen, and the sync lease that lets one
runner per database sync.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, case, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.codes import LIFECYCLE, PhoneKind, Status
from db.fields import name_grams, phone_fields, search_text
from db.models import (
    Customer,
    NameGram,
    Order,
    OrderLine,
    OrderSource,
    Parcel,
    ParcelLine,
    QuarantineEntry,
    SyncCursor,
    SyncLease,
    TimelineEvent,
)
from db.sanitize import clean_text, is_clean
from db.store import (
    _MAX_INT,
    FTS_INSERT,
    InvalidOrder,
    NewLine,
    NewOrder,
    NewParcel,
    Store,
    _fen,
    _order_fields,
    _sqlite_insert,
    customer_match_key,
    normalise_sku,
)
from db.views import Actor

#: The tag a probable duplicate gets (it shows on the card and in lists).
DUPLICATE_TAG = "疑似重复"
#: Two orders with the same plain phone and SKU set created this close together look like a resubmit.
DUPLICATE_WINDOW = timedelta(minutes=30)
#: The platforms' own zone: "orders today" counts China days whatever the host zone is.
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
#: Most ids in one IN (...) list (SQLite allows 32,766 parameters; PostgreSQL 32,767).
_CHUNK = 500

_o = Order.__table__.c
_l = OrderLine.__table__.c
_p = Parcel.__table__.c
_pl = ParcelLine.__table__.c
_c = Customer.__table__.c
_src = OrderSource.__table__.c
_q = QuarantineEntry.__table__.c
_cur = SyncCursor.__table__.c
_lease = SyncLease.__table__.c

# -- the shapes callers pass and get back ------------------------------------------------------


@dataclass(frozen=True)
class CursorUpdate:
    """Move a connector stream's watermark, in the same transaction as the orders it covers."""

    connector: str  # "<channel>:<shop>"
    watermark: datetime  # aware; never moves backwards
    stream: str = "orders"


@dataclass(frozen=True)
class QuarantineItem:
    """A payload that could not be mapped, with the reason in plain words.

    ``payload`` is kept raw: a dict/list is stored as JSON text, a str as it is, bytes decoded
    with replacement characters.
    """

    connector: str
    channel: str
    shop_code: str
    payload: Any
    reason: str
    code: str = "invalid"
    external_id: str | None = None


@dataclass
class IngestResult:
    """What one :func:`ingest` call did."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0  # same fingerprint (or nothing the desk does not already have): no write
    stale: int = 0  # older than the stored version: ignored
    regressions: int = 0  # status going backwards: recorded, not applied
    duplicates: int = 0  # new orders flagged as probable duplicates
    quarantined: int = 0
    events: int = 0
    changed_ids: list[int] = field(default_factory=list)  # orders inserted or updated

    def add(self, other: IngestResult) -> None:
        """Fold another result into this one (a runner summing its batches)."""
        for name in ("inserted", "updated", "unchanged", "stale", "regressions", "duplicates",
                     "quarantined", "events"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.changed_ids.extend(other.changed_ids)


@dataclass(frozen=True)
class QuarantineView:
    """One quarantined payload, for the Connectors screen (payload raw: clean it to show it)."""

    id: int
    connector: str
    channel: str
    shop_code: str
    external_id: str | None
    payload: str
    reason: str
    code: str
    first_seen: datetime
    last_seen: datetime
    attempts: int
    state: str
    resolved_by: str | None
    resolved_at: datetime | None


@dataclass(frozen=True)
class CursorView:
    """A connector stream's watermark and health counters."""

    connector: str
    stream: str
    watermark: datetime | None
    updated_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_errors: int
    day: str
    day_new: int
    day_updated: int
    day_errors: int
    day_quarantined: int


@dataclass(frozen=True)
class ConnectorStatus:
    """One row of the Connectors screen.

    ``state``: ``ok`` (last run succeeded), ``failing`` (the last run failed), ``never`` (no
    successful run yet). ``lag`` is how far behind now the watermark is.
    """

    connector: str
    stream: str
    state: str
    watermark: datetime | None
    lag: timedelta | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_errors: int
    orders_today: int  # new orders ingested today (China date)
    updated_today: int
    errors_today: int
    quarantined_today: int
    open_quarantine: int


# -- status rule -------------------------------------------------------------------------------

_RANK = {status: i for i, status in enumerate(LIFECYCLE)}
#: The channel's coarse status that the desk's (or carrier's) finer one refines: the channel keeps
#: saying "paid" while operators review and allocate, "shipped" while the carrier reports transit.
_REFINES: dict[str, frozenset[str]] = {
    Status.REVIEW: frozenset({Status.PAID}),
    Status.ALLOCATING: frozenset({Status.PAID, Status.REVIEW}),
    Status.HOLD: frozenset({Status.PAID, Status.REVIEW, Status.ALLOCATING}),
    Status.IN_TRANSIT: frozenset({Status.SHIPPED}),
    Status.DELIVERED: frozenset({Status.SHIPPED, Status.IN_TRANSIT}),
}
_BEFORE_SHIPPING = frozenset({Status.PENDING_PAYMENT, Status.PAID, Status.REVIEW, Status.ALLOCATING})


def status_decision(current: str, incoming: str) -> str:
    """What a channel's new standard status does to the stored one.

    Returns ``"same"`` (nothing to do), ``"apply"``, ``"keep"`` (the stored status is a finer view
    of the same stage: keep it silently) or ``"regression"`` (backwards: record, do not apply).
    Called only when the channel's own status changed since its last payload.
    """
    if incoming == current:
        return "same"
    if incoming == Status.CANCELLED:
        return "apply"  # a cancel stops the warehouse whatever stage we are at
    if current == Status.CANCELLED:
        return "regression"
    if incoming == Status.HOLD:  # the channel (an ERP's 异常) holds an order not yet shipped
        return "apply" if current in _BEFORE_SHIPPING else "regression"
    if incoming in _REFINES.get(current, ()):
        return "keep"
    if current == Status.HOLD:
        return "apply" if _RANK.get(incoming, -1) >= _RANK[Status.SHIPPED] else "regression"
    if _RANK.get(incoming, -1) > _RANK.get(current, -1):
        return "apply"
    return "regression"


# -- validation --------------------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")


def _line_values(line: object) -> dict:
    """Checked, cleaned values of one order line."""
    if type(line) is NewLine:  # the common shape, checked in one go
        sku, title, line_id, combo = line.sku, line.title, line.channel_line_id, line.combo_sku
        quantity, price = line.quantity, line.price_fen
        if (type(sku) is str and type(title) is str and type(line_id) is str and combo is None
                and type(quantity) is int and type(price) is int and type(line.gift) is bool
                and 0 <= quantity <= _MAX_INT and abs(price) <= _MAX_INT
                and 0 < len(sku) <= 64 and len(line_id) <= 64 and is_clean(sku + title + line_id)
                and sku.strip()):
            return {
                "channel_line_id": line_id, "sku": sku, "sku_norm": normalise_sku(sku), "title": title,
                "quantity": quantity, "price_fen": price, "gift": line.gift, "combo_sku": None,
            }
    if not isinstance(line, NewLine):
        raise InvalidOrder("not an order line")
    sku = line.sku
    if not isinstance(sku, str) or not sku.strip() or not clean_text(sku).strip() or _too_long(sku, 64):
        raise InvalidOrder("SKU missing or longer than 64 characters")
    quantity = _fen(line, "quantity", "a whole number")
    price = _fen(line, "price_fen", "a whole number")
    if quantity < 0:
        raise InvalidOrder(f"negative quantity {quantity}")
    if not isinstance(line.title, str) or not isinstance(line.channel_line_id, str):
        raise InvalidOrder("title/line id is not text")
    if (line.combo_sku is not None and not isinstance(line.combo_sku, str)) or \
            _too_long(line.channel_line_id, 64) or _too_long(line.combo_sku or "", 64):
        raise InvalidOrder("line id or combo SKU longer than 64 characters")
    if not isinstance(line.gift, bool):
        raise InvalidOrder("gift is not true/false")
    sku = clean_text(sku)
    return {
        "channel_line_id": clean_text(line.channel_line_id),
        "sku": sku,
        "sku_norm": normalise_sku(sku),
        "title": clean_text(line.title),
        "quantity": quantity,
        "price_fen": price,
        "gift": line.gift,
        "combo_sku": clean_text(line.combo_sku) or None,
    }


def _parcel_values(parcel: object) -> dict:
    """Checked, cleaned values of one parcel."""
    if not isinstance(parcel, NewParcel):
        raise InvalidOrder("not a parcel")
    if not isinstance(parcel.waybill_no, str) or not clean_text(parcel.waybill_no).strip():
        raise InvalidOrder("waybill number missing")
    if not isinstance(parcel.carrier, str) or not isinstance(parcel.warehouse, str):
        raise InvalidOrder("carrier or warehouse is not text")
    if _too_long(parcel.waybill_no, 64) or _too_long(parcel.carrier, 32) or _too_long(parcel.warehouse, 64):
        raise InvalidOrder("waybill, carrier or warehouse too long")
    if parcel.shipped_at is not None and (
        not isinstance(parcel.shipped_at, datetime) or parcel.shipped_at.utcoffset() is None
    ):
        raise InvalidOrder("shipped_at is not a time with a zone")
    if not isinstance(parcel.skus, list) or not all(isinstance(s, str) for s in parcel.skus):
        raise InvalidOrder("skus is not a list of text")
    return {
        "waybill_no": clean_text(parcel.waybill_no),
        "carrier": clean_text(parcel.carrier),
        "warehouse": clean_text(parcel.warehouse),
        "shipped_at": parcel.shipped_at,
        "skus": [normalise_sku(clean_text(s)) for s in parcel.skus],
    }


def _too_long(value: str, limit: int) -> bool:
    return len(value) > limit and len(clean_text(value)) > limit


def storable(text: str) -> str:
    """Text any database can store: lone surrogates become visible ``\\udXXX`` escapes."""
    if _SURROGATE.search(text):
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


# -- canonical content -------------------------------------------------------------------------

#: Order columns a channel owns (the snapshot compares them); derived columns follow from them.
_SCALARS = (
    "order_no", "status", "raw_status", "after_sale", "raw_after_sale", "hold_reason", "total_fen",
    "paid_fen", "post_fee_fen", "discount_fen", "created_at", "paid_at", "ship_by", "priority", "tags",
    "presale", "buyer_note", "seller_memo", "receiver_name", "receiver_phone", "province", "city",
    "district", "address_detail",
)
_TIMES = frozenset({"created_at", "paid_at", "ship_by"})
_ADDRESS = ("receiver_name", "receiver_phone", "province", "city", "district", "address_detail")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _snapshot(values: dict, lines: list[dict], parcels: list[dict]) -> dict:
    """The JSON form of what the channel delivered (cleaned), compared field by field next time."""
    snap = {name: (_iso(values[name]) if name in _TIMES else values[name]) for name in _SCALARS}
    snap["lines"] = [
        [l["channel_line_id"], l["sku"], l["title"], l["quantity"], l["price_fen"], l["gift"], l["combo_sku"]]
        for l in lines
    ]
    snap["parcels"] = [
        [p["waybill_no"], p["carrier"], p["warehouse"], _iso(p["shipped_at"]), p["skus"]] for p in parcels
    ]
    return snap


def snapshot_json(snapshot: dict) -> str:
    """A snapshot as the JSON text stored (keys sorted: equal content, equal text)."""
    return orjson.dumps(snapshot, option=orjson.OPT_SORT_KEYS).decode()


def fingerprint(blob: str) -> str:
    """The hash of a snapshot's JSON: equal fingerprints mean nothing the channel sent has changed."""
    return hashlib.sha1(blob.encode()).hexdigest()


@dataclass
class Prepared:
    """A checked, cleaned order and its snapshot, ready for :func:`ingest` (see :func:`prepare`)."""

    new: NewOrder
    shop_code: str
    shop_name: str
    values: dict
    lines: list[dict]
    parcels: list[dict]
    snapshot: dict
    blob: str
    fingerprint: str


def _each(items: list, values: Callable[[object], dict], what: str) -> list[dict]:
    """``values`` of each item; an invalid one is named by its place ("line 2: ...")."""
    out = []
    for i, item in enumerate(items, 1):
        try:
            out.append(values(item))
        except InvalidOrder as exc:
            raise InvalidOrder(f"{what} {i}: {exc}") from None
    return out


def prepare(new: object) -> Prepared:
    """Check and clean one canonical order in a single pass; :class:`InvalidOrder` says what is wrong.

    A connector calls this while it maps (so the check and the cleaning are done once, off the
    write transaction) and hands :func:`ingest` the results.
    """
    if not isinstance(new, NewOrder):
        raise InvalidOrder(f"not a canonical order: {type(new).__name__}")
    values, shop_code, shop_name = _order_fields(new)
    if not isinstance(new.lines, list) or not isinstance(new.parcels, list):
        raise InvalidOrder("lines/parcels are not lists")
    lines = _each(new.lines, _line_values, "line")
    parcels = _each(new.parcels, _parcel_values, "parcel")
    snap = _snapshot(values, lines, parcels)
    blob = snapshot_json(snap)
    return Prepared(new, shop_code, shop_name, values, lines, parcels, snap, blob, fingerprint(blob))


# -- ingest ------------------------------------------------------------------------------------


async def ingest(
    store: Store,
    orders: Sequence[NewOrder | Prepared],
    *,
    actor: Actor,
    cursor: CursorUpdate | None = None,
    quarantined: Sequence[QuarantineItem] = (),
    at: datetime | None = None,
    duplicate_window: timedelta = DUPLICATE_WINDOW,
) -> IngestResult:
    """Apply a batch of canonical orders, its quarantine and its watermark in one transaction.

    See the module docstring for the rules. ``actor`` is the author of every event (a connector:
    ``Actor(ActorKind.CONNECTOR, "<channel>:<shop>")``); ``at`` is the events' time (default now).
    ``orders`` are ``NewOrder``s, or :class:`Prepared` ones (:func:`prepare`, as the sync runner
    does while it maps). Invalid orders are quarantined under ``actor.id`` as connector. Raises only
    on database failure, and then nothing of the batch is written.
    """
    at = at or datetime.now(UTC)
    result = IngestResult()
    quarantine = list(quarantined)
    incoming: dict[tuple[str, str, str], Prepared] = {}
    for new in orders:
        if type(new) is Prepared:
            item = new
        else:
            try:
                item = prepare(new)
            except Exception as exc:  # noqa: BLE001 - InvalidOrder, or a value too odd to check
                problem = str(exc) if isinstance(exc, InvalidOrder) else \
                    f"could not check this order: {type(exc).__name__}: {exc}"
                quarantine.append(_invalid_item(new, problem, actor))
                continue
        key = (item.values["channel"], item.shop_code, item.values["channel_order_id"])
        seen = incoming.get(key)
        if seen is None or not _older(item.values["modified_at"], seen.values["modified_at"]):
            incoming[key] = item  # the later version of a row repeated across pages wins
    async with store.write() as conn:
        work = _Batch(store, conn, actor, at, result, duplicate_window)
        await work.run(list(incoming.values()))
        if quarantine:
            await _quarantine(conn, quarantine, at)
            result.quarantined = len(quarantine)
        if cursor is not None:
            await _advance_cursor(conn, cursor, result, at)
    return result


def _older(a: datetime | None, b: datetime | None) -> bool:
    """True when ``a`` is known to be older than ``b``."""
    return a is not None and b is not None and a < b


def _invalid_item(new: object, problem: str, actor: Actor) -> QuarantineItem:
    if isinstance(new, NewOrder):
        payload = asdict(new)
        return QuarantineItem(
            actor.id, str(new.channel)[:32], str(new.shop_code)[:64], payload, problem, "invalid_order",
            external_id=str(new.channel_order_id)[:128] if new.channel_order_id else None,
        )
    return QuarantineItem(actor.id, "", "", repr(new), problem, "invalid_order")


class _Batch:
    """The work of one ingest call inside its write transaction."""

    def __init__(
        self, store: Store, conn: AsyncConnection, actor: Actor, at: datetime, result: IngestResult,
        duplicate_window: timedelta,
    ) -> None:
        self.store = store
        self.conn = conn
        self.actor = actor
        self.at = at
        self.result = result
        self.window = duplicate_window
        self.sqlite = store.dialect == "sqlite"
        self.driver = None
        self.events: list[dict] = []

    async def run(self, items: list[Prepared]) -> None:
        if not items:
            return
        if self.sqlite:
            self.driver = (await self.conn.get_raw_connection()).driver_connection
        by_shop: dict[tuple[str, str], list[Prepared]] = {}
        for item in items:
            by_shop.setdefault((item.values["channel"], item.shop_code), []).append(item)
        new_items: list[Prepared] = []
        changed: list[tuple[Prepared, int]] = []
        for (channel, shop_code), group in by_shop.items():
            shop_name = next((i.shop_name for i in group if i.shop_name), "")
            shop_id = await self.store.ensure_shop(self.conn, channel, shop_code, shop_name)
            existing = await self._existing(shop_id, [i.values["channel_order_id"] for i in group])
            for item in group:
                item.values["shop_id"] = shop_id
                found = existing.get(item.values["channel_order_id"])
                if found is None:
                    new_items.append(item)
                    continue
                order_id, stored_fp, stored_modified = found
                if _older(item.values["modified_at"], stored_modified):
                    self.result.stale += 1
                elif stored_fp == item.fingerprint:
                    self.result.unchanged += 1
                else:
                    changed.append((item, order_id))
        if new_items:
            await self._insert(new_items)
        if changed:
            await self._update(changed)
        await self._resolve_quarantine(items)
        if self.events:
            await self._rows(TimelineEvent.__table__, self.events)
            self.result.events += len(self.events)

    # -- helpers -------------------------------------------------------------------------------

    async def _rows(self, table, rows: list[dict]) -> None:  # noqa: ANN001
        """Insert prepared rows: straight to the SQLite driver, or one Core executemany."""
        if not rows:
            return
        if self.driver is not None:
            sql, convert = _sqlite_writer(table)
            await self.driver.executemany(sql, [convert(row) for row in rows])
        else:
            await self.conn.execute(insert(table), rows)

    async def _ids(self, table, n: int) -> list[int]:  # noqa: ANN001
        """``n`` fresh ids for ``table`` (we hold the write lock, so nobody else draws them)."""
        if n == 0:
            return []
        if self.sqlite:
            first = (await self.conn.execute(select(func.coalesce(func.max(table.c.id), 0)))).scalar_one() + 1
            return list(range(first, first + n))
        rows = await self.conn.execute(
            text(f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) FROM generate_series(1, :n)"),
            {"n": n},
        )
        return [r[0] for r in rows]

    async def _existing(self, shop_id: int, ids: list[str]) -> dict[str, tuple[int, str | None, datetime | None]]:
        found: dict[str, tuple[int, str | None, datetime | None]] = {}
        for chunk in _chunks(ids):
            rows = await self.conn.execute(
                select(_o.channel_order_id, _o.id, _o.fingerprint, _o.modified_at).where(
                    _o.shop_id == shop_id, _o.channel_order_id.in_(chunk)
                )
            )
            for cid, order_id, fp, modified in rows:
                found[cid] = (order_id, fp, modified)
        return found

    def _event(self, order_id: int, kind: str, *, from_value: str | None = None, to_value: str | None = None,
               message: str = "", detail: dict | None = None, parcel_id: int | None = None) -> None:
        self.events.append({
            "order_id": order_id, "parcel_id": parcel_id, "at": self.at,
            "actor_kind": self.actor.kind, "actor_id": self.actor.id, "kind": kind,
            "from_value": from_value, "to_value": to_value, "message": message, "detail": detail,
            "dedupe_key": None,
        })

    # -- new orders ----------------------------------------------------------------------------

    async def _insert(self, items: list[Prepared]) -> None:
        await self._match_customers(items)
        order_ids = await self._ids(Order.__table__, len(items))
        line_ids = iter(await self._ids(OrderLine.__table__, sum(len(i.lines) for i in items)))
        parcel_ids = iter(await self._ids(Parcel.__table__, sum(len(i.parcels) for i in items)))
        duplicates = await self._duplicates(items, order_ids)
        orders, lines, parcels, parcel_lines, sources, grams = [], [], [], [], [], []
        for item, order_id in zip(items, order_ids):
            values = item.values
            other = duplicates.get(order_id)
            if other is not None and DUPLICATE_TAG not in values["tags"]:
                values["tags"] = [*values["tags"], DUPLICATE_TAG]
            orders.append({
                **values, "id": order_id, "updated_at": self.at, "fingerprint": item.fingerprint,
            })
            by_sku: dict[str, tuple[int, int]] = {}
            for line in item.lines:
                line_id = next(line_ids)
                lines.append({**line, "id": line_id, "order_id": order_id})
                by_sku.setdefault(line["sku_norm"], (line_id, line["quantity"]))
            for parcel in item.parcels:
                parcel_id = next(parcel_ids)
                parcels.append(_parcel_row(parcel, parcel_id, order_id))
                parcel_lines.extend(_parcel_line_rows(parcel, parcel_id, by_sku))
            sources.append({"order_id": order_id, "snapshot": item.blob if self.sqlite else item.snapshot})
            grams.extend({"gram": g, "order_id": order_id} for g in name_grams(values["receiver_name"]))
            self._event(order_id, "created", to_value=values["status"],
                        message=f"{values['channel']} {values['order_no']}")
            if other is not None:
                other_id, other_no = other
                self._event(order_id, "duplicate_suspected", to_value=other_no,
                            message=f"same phone and items as {other_no}",
                            detail={"other_order_id": other_id, "other_order_no": other_no})
                self.result.duplicates += 1
        await self._rows(Order.__table__, orders)
        if self.driver is not None:
            await self.driver.executemany(FTS_INSERT, [(row["id"], row["search_text"]) for row in orders])
        await self._rows(OrderLine.__table__, lines)
        await self._rows(Parcel.__table__, parcels)
        await self._rows(ParcelLine.__table__, parcel_lines)
        await self._rows(OrderSource.__table__, sources)
        await self._rows(NameGram.__table__, grams)
        self.result.inserted += len(items)
        self.result.changed_ids.extend(order_ids)

    async def _match_customers(self, items: list[Prepared]) -> None:
        """Customer matching as ``Store.add_order`` does it (plain phone, then name + full address,
        else a new customer), for the whole batch in two queries and one insert."""
        keys: dict[int, str | None] = {}
        phones: set[str] = set()
        for i, item in enumerate(items):
            v = item.values
            keys[i] = customer_match_key(v["receiver_name"], v["province"], v["city"], v["district"],
                                         v["address_detail"])
            if v["phone_kind"] == PhoneKind.PLAIN and v["phone_norm"]:
                phones.add(v["phone_norm"])
        by_phone: dict[str, int] = {}
        by_key: dict[str, int] = {}
        for chunk in _chunks(sorted(phones)):
            rows = await self.conn.execute(
                select(_c.phone_norm, func.min(_c.id)).where(_c.phone_norm.in_(chunk)).group_by(_c.phone_norm)
            )
            by_phone.update(rows.all())
        for chunk in _chunks(sorted({k for k in keys.values() if k})):
            rows = await self.conn.execute(
                select(_c.match_key, func.min(_c.id)).where(_c.match_key.in_(chunk)).group_by(_c.match_key)
            )
            by_key.update(rows.all())
        creating: list[tuple[int, dict]] = []  # (index of the item, customer row without id)
        pending: list[int] = []
        for i, item in enumerate(items):
            v = item.values
            plain = v["phone_norm"] if v["phone_kind"] == PhoneKind.PLAIN and v["phone_norm"] else None
            if plain and plain in by_phone:
                v["customer_id"], v["customer_match"] = by_phone[plain], "phone"
            elif keys[i] and keys[i] in by_key:
                v["customer_id"], v["customer_match"] = by_key[keys[i]], "name+address"
            else:
                marker = -(len(creating) + 1)  # a placeholder id until real ids are drawn
                creating.append((i, {
                    "name": v["receiver_name"], "phone_norm": plain, "match_key": keys[i],
                    "city": v["city"], "first_seen_at": self.at,
                }))
                v["customer_id"], v["customer_match"] = marker, "new"
                if plain:
                    by_phone[plain] = marker
                if keys[i]:
                    by_key[keys[i]] = marker
            pending.append(i)
        if not creating:
            return
        ids = await self._ids(Customer.__table__, len(creating))
        real = {-(n + 1): cid for n, cid in enumerate(ids)}
        await self._rows(Customer.__table__, [{**row, "id": cid} for (_, row), cid in zip(creating, ids)])
        for i in pending:
            v = items[i].values
            if v["customer_id"] < 0:
                v["customer_id"] = real[v["customer_id"]]

    async def _duplicates(self, items: list[Prepared], order_ids: list[int]) -> dict[int, tuple[int, str]]:
        """New orders that repeat another order's plain phone and SKU set within the window:
        {new order id: (other order id, its number)}. The earlier-created order is the original."""
        candidates = []
        for item, order_id in zip(items, order_ids):
            v = item.values
            skus = frozenset(l["sku_norm"] for l in item.lines)
            if v["phone_kind"] == PhoneKind.PLAIN and v["phone_norm"] and skus and v["status"] != Status.CANCELLED:
                candidates.append((order_id, v["phone_norm"], skus, v["created_at"], v["order_no"]))
        if not candidates:
            return {}
        lo = min(c[3] for c in candidates) - self.window
        hi = max(c[3] for c in candidates) + self.window
        pool: dict[int, list] = {}  # existing order id -> [phone, skus, created_at, order_no]
        for chunk in _chunks(sorted({c[1] for c in candidates})):
            rows = await self.conn.execute(
                select(_o.id, _o.phone_norm, _o.created_at, _o.order_no, _l.sku_norm)
                .join(OrderLine.__table__, _l.order_id == _o.id)
                .where(_o.phone_norm.in_(chunk), _o.created_at >= lo, _o.created_at <= hi,
                       _o.status != Status.CANCELLED)
            )
            for order_id, phone, created, order_no, sku in rows:
                entry = pool.setdefault(order_id, [phone, set(), created, order_no])
                entry[1].add(sku)
        others = [(oid, e[0], frozenset(e[1]), e[2], e[3]) for oid, e in pool.items()] + candidates
        by_key: dict[tuple[str, frozenset], list] = {}
        for other in others:
            by_key.setdefault((other[1], other[2]), []).append(other)
        found: dict[int, tuple[int, str]] = {}
        for order_id, phone, skus, created, _no in candidates:
            best = None
            for other_id, _p, _s, other_created, other_no in by_key[(phone, skus)]:
                if other_id == order_id or abs(other_created - created) > self.window:
                    continue
                # the other one is the original if it was created earlier (ties: the lower id)
                if (other_created, other_id) < (created, order_id):
                    if best is None or (other_created, other_id) < (best[2], best[0]):
                        best = (other_id, other_no, other_created)
            if best is not None:
                found[order_id] = (best[0], best[1])
        return found

    # -- changed orders ------------------------------------------------------------------------

    async def _update(self, changed: list[tuple[Prepared, int]]) -> None:
        ids = [order_id for _, order_id in changed]
        current: dict[int, Any] = {}
        snapshots: dict[int, dict] = {}
        lines: dict[int, list] = {}
        waybills: dict[int, set[str]] = {}
        for chunk in _chunks(ids):
            for row in await self.conn.execute(select(Order.__table__).where(_o.id.in_(chunk))):
                current[row.id] = row
            for order_id, snap in await self.conn.execute(select(_src.order_id, _src.snapshot).where(_src.order_id.in_(chunk))):
                snapshots[order_id] = snap
            for row in await self.conn.execute(select(OrderLine.__table__).where(_l.order_id.in_(chunk)).order_by(_l.id)):
                lines.setdefault(row.order_id, []).append(row)
            for order_id, waybill in await self.conn.execute(select(_p.order_id, _p.waybill_no).where(_p.order_id.in_(chunk))):
                waybills.setdefault(order_id, set()).add(waybill)
        updates: dict[frozenset[str], list[dict]] = {}
        bookkeeping: list[dict] = []
        source_updates, source_inserts, regram = [], [], []
        new_lines, line_updates, gone_lines, new_parcels = [], [], [], []
        for item, order_id in changed:
            row = current[order_id]
            old_snap = snapshots.get(order_id)
            base = old_snap if old_snap is not None else _snapshot(
                {n: getattr(row, n) for n in _SCALARS}, [_line_dict(l) for l in lines.get(order_id, [])], []
            )
            before = len(self.events)
            changes = self._merge(order_id, row, base, item)
            line_work = self._merge_lines(order_id, base, item, lines.get(order_id, []))
            parcels = [p for p in item.parcels if p["waybill_no"] not in waybills.get(order_id, set())]
            if line_work or parcels:
                added, updated, removed = line_work or ([], [], [])
                new_lines.append((order_id, added, lines.get(order_id, []), updated, removed))
                line_updates.extend(updated)
                gone_lines.extend(removed)
                for parcel in parcels:
                    new_parcels.append((order_id, parcel))
            if "receiver_name" in changes:
                regram.append((order_id, changes["receiver_name"]))
            if old_snap is not None:
                source_updates.append({"b_order_id": order_id, "snapshot": item.snapshot})
            else:
                source_inserts.append({"order_id": order_id,
                                       "snapshot": item.blob if self.sqlite else item.snapshot})
            modified = item.values["modified_at"] or row.modified_at
            if changes or len(self.events) > before or line_work or parcels:
                # checked_at NULL: the order checks look at it again (db.checks)
                changes.update(fingerprint=item.fingerprint, modified_at=modified, updated_at=self.at, checked_at=None)
                updates.setdefault(frozenset(changes), []).append({"b_id": order_id, **changes})
                self.result.updated += 1
                self.result.changed_ids.append(order_id)
            else:  # the channel's news is already what the desk has: remember it, nothing to record
                bookkeeping.append({"b_id": order_id, "fingerprint": item.fingerprint, "modified_at": modified})
                self.result.unchanged += 1
        # executemany UPDATEs: the SET clause comes from each group's parameter keys
        by_id = update(Order.__table__).where(_o.id == bindparam("b_id"))
        for rows in updates.values():
            await self.conn.execute(by_id, rows)
        if bookkeeping:
            await self.conn.execute(by_id, bookkeeping)
        if source_updates:
            await self.conn.execute(
                update(OrderSource.__table__).where(_src.order_id == bindparam("b_order_id")), source_updates
            )
        await self._rows(OrderSource.__table__, source_inserts)
        await self._apply_lines(new_lines, line_updates, gone_lines, new_parcels)
        for order_id, name in regram:
            await self.conn.execute(delete(NameGram.__table__).where(NameGram.__table__.c.order_id == order_id))
            await self._rows(NameGram.__table__, [{"gram": g, "order_id": order_id} for g in name_grams(name)])

    def _merge(self, order_id: int, row: Any, base: dict, item: Prepared) -> dict:
        """Column changes for one order, three-way against ``base``; appends their events."""
        inc = item.snapshot
        values = item.values
        changes: dict[str, Any] = {}
        other: dict[str, list] = {}
        for name in _SCALARS:
            if name in ("status", "priority") or inc[name] == base.get(name):
                # the channel did not change it: whatever the desk made of it stands. No channel
                # sends a priority: the desk's rules own it (status is decided below)
                continue
            new_value = values[name]
            if name == "tags":
                desk = [t for t in (row.tags or []) if t not in (base.get("tags") or []) and t not in new_value]
                new_value = [*new_value, *desk]
            if name == "raw_status":
                continue  # follows the status decision below
            stored = getattr(row, name)
            if stored == new_value:
                continue
            changes[name] = new_value
            if name == "after_sale":
                self._event(order_id, "aftersale", from_value=stored, to_value=new_value,
                            message=values["raw_after_sale"])
            elif name == "seller_memo":
                self._event(order_id, "memo", from_value=stored, to_value=new_value)
            elif name == "buyer_note":
                self._event(order_id, "buyer_note", from_value=stored, to_value=new_value)
            elif name not in _ADDRESS:
                other[name] = [_jsonable(stored), _jsonable(new_value)]
        if inc["status"] != base.get("status") or inc["raw_status"] != base.get("raw_status"):
            decision = status_decision(row.status, values["status"])
            if decision == "apply":
                changes["status"] = values["status"]
                self._event(order_id, "status", from_value=row.status, to_value=values["status"],
                            message=values["raw_status"])
            elif decision == "regression":
                self._event(order_id, "status_regression", from_value=row.status, to_value=values["status"],
                            message=f"channel says {values['raw_status'] or values['status']}; not applied")
                self.result.regressions += 1
            if decision != "regression" and row.raw_status != values["raw_status"]:
                changes["raw_status"] = values["raw_status"]
                if decision != "apply":
                    other["raw_status"] = [row.raw_status, values["raw_status"]]
        address = [n for n in _ADDRESS if n in changes]
        if address:
            merged = {n: changes.get(n, getattr(row, n)) for n in _ADDRESS}
            kind, norm, tail4 = phone_fields(merged["receiver_phone"])
            changes.update(
                phone_kind=kind,
                phone_norm=norm if kind in (PhoneKind.PLAIN, PhoneKind.VIRTUAL) else None,
                phone_tail4=tail4,
                search_text=search_text(merged["receiver_name"], merged["province"], merged["city"],
                                        merged["district"], merged["address_detail"]),
            )
            self._event(order_id, "address", from_value=_address_text({n: getattr(row, n) for n in _ADDRESS}),
                        to_value=_address_text(merged), detail={"fields": address})
        if other:
            self._event(order_id, "updated", message=", ".join(sorted(other)), detail=other)
        return changes

    def _merge_lines(self, order_id: int, base: dict, item: Prepared, stored: list) -> tuple | None:
        """(lines to add, line updates, line ids to remove) when the channel changed the lines."""
        if item.snapshot["lines"] == base.get("lines"):
            return None
        old = {key: row for key, row in zip(_line_keys([_line_dict(r) for r in stored]), stored)}
        added, updated, seen = [], [], set()
        for key, line in zip(_line_keys(item.lines), item.lines):
            row = old.get(key)
            if row is None:
                added.append(line)
                continue
            seen.add(key)
            diff = {k: v for k, v in line.items() if getattr(row, k) != v}
            if diff:
                updated.append({"b_id": row.id, **{k: line[k] for k in _LINE_COLUMNS}})
        removed = [row.id for key, row in old.items() if key not in seen]
        if not (added or updated or removed):
            return None
        self._event(order_id, "lines", from_value=_lines_text(_line_dict(r) for r in stored),
                    to_value=_lines_text(item.lines))
        return added, updated, removed

    async def _apply_lines(self, new_lines: list, line_updates: list, gone: list, new_parcels: list) -> None:
        if line_updates:
            await self.conn.execute(update(OrderLine.__table__).where(_l.id == bindparam("b_id")), line_updates)
        for chunk in _chunks(gone):
            await self.conn.execute(delete(ParcelLine.__table__).where(_pl.line_id.in_(chunk)))
            await self.conn.execute(delete(OrderLine.__table__).where(_l.id.in_(chunk)))
        ids = iter(await self._ids(OrderLine.__table__, sum(len(entry[1]) for entry in new_lines)))
        rows, by_sku = [], {}
        for order_id, added, stored, updated, removed in new_lines:
            skus: dict[str, tuple[int, int]] = {}
            gone_ids = set(removed)
            fresh = {u["b_id"]: u for u in updated}
            for row in stored:
                if row.id not in gone_ids:
                    quantity = fresh[row.id]["quantity"] if row.id in fresh else row.quantity
                    skus.setdefault(fresh.get(row.id, {}).get("sku_norm", row.sku_norm), (row.id, quantity))
            for line in added:
                line_id = next(ids)
                rows.append({**line, "id": line_id, "order_id": order_id})
                skus.setdefault(line["sku_norm"], (line_id, line["quantity"]))
            by_sku[order_id] = skus
        await self._rows(OrderLine.__table__, rows)
        if not new_parcels:
            return
        parcel_ids = await self._ids(Parcel.__table__, len(new_parcels))
        parcels, parcel_lines = [], []
        for (order_id, parcel), parcel_id in zip(new_parcels, parcel_ids):
            parcels.append(_parcel_row(parcel, parcel_id, order_id))
            parcel_lines.extend(_parcel_line_rows(parcel, parcel_id, by_sku.get(order_id, {})))
            self._event(order_id, "ship", to_value=parcel["waybill_no"], parcel_id=parcel_id,
                        message=f"{parcel['carrier']} {parcel['waybill_no']}".strip())
        await self._rows(Parcel.__table__, parcels)
        await self._rows(ParcelLine.__table__, parcel_lines)

    async def _resolve_quarantine(self, items: list[Prepared]) -> None:
        """Payloads of these orders quarantined earlier are resolved: the order is in the pool now."""
        open_any = (await self.conn.execute(
            select(_q.id).where(_q.state.in_(("open", "retried"))).limit(1)
        )).first()
        if open_any is None:
            return
        by_shop: dict[tuple[str, str], list[str]] = {}
        for item in items:
            by_shop.setdefault((item.values["channel"], item.shop_code), []).append(
                item.values["channel_order_id"]
            )
        who = f"{self.actor.kind}:{self.actor.id}"
        for (channel, shop), ids in by_shop.items():
            for chunk in _chunks(ids):
                await self.conn.execute(
                    update(QuarantineEntry.__table__)
                    .where(_q.channel == channel, _q.shop_code == shop, _q.external_id.in_(chunk),
                           _q.state.in_(("open", "retried")))
                    .values(state="resolved", resolved_by=who, resolved_at=self.at)
                )


_WRITERS: dict[str, tuple[str, Any]] = {}
#: order_source.snapshot arrives as JSON text already (the fingerprint's own encoding).
_PRESERIALISED = {("order_source", "snapshot")}


def _sqlite_writer(table) -> tuple[str, Any]:  # noqa: ANN001
    """The INSERT for ``table`` and a function turning a row dict into driver values, stored as
    SQLAlchemy stores them (``Store._sqlite_insert``'s rules; missing keys take column defaults).
    Built once per table: per-row generic handling cost more than SQLite's own work."""
    cached = _WRITERS.get(table.name)
    if cached is not None:
        return cached
    sql, _ = _sqlite_insert(table, [])
    names = [c.name for c in table.columns]
    defaults = {c.name: c.default.arg for c in table.columns if c.default is not None and c.default.is_scalar}
    filler = {name: defaults.get(name) for name in names}
    converters = []
    for i, column in enumerate(table.columns):
        kind = column.type.impl if hasattr(column.type, "impl") else column.type
        kind_name = type(kind).__name__
        if (table.name, column.name) in _PRESERIALISED:
            continue
        if kind_name == "DateTime":
            converters.append((i, _sqlite_time))
        elif kind_name == "JSON":
            converters.append((i, _json_text))
        elif kind_name == "Boolean":
            converters.append((i, int))
    pick = itemgetter(*names)
    width = len(names)

    def convert(row: dict) -> list:
        if len(row) != width:
            row = {**filler, **row}
        values = list(pick(row))
        for i, f in converters:
            value = values[i]
            if value is not None:
                values[i] = f(value)
        return values

    _WRITERS[table.name] = (sql, convert)
    return sql, convert


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _sqlite_time(value: datetime) -> str:
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


_LINE_COLUMNS = ("channel_line_id", "sku", "sku_norm", "title", "quantity", "price_fen", "gift", "combo_sku")


def _line_dict(row: Any) -> dict:
    return {name: getattr(row, name) for name in _LINE_COLUMNS}


def _line_keys(lines: Iterable[dict]) -> list[str]:
    """Identity of each line: the channel's line id, else its SKU and how many times it came before."""
    keys, counts = [], {}
    for line in lines:
        if line["channel_line_id"]:
            keys.append("id:" + line["channel_line_id"])
        else:
            n = counts.get(line["sku_norm"], 0)
            counts[line["sku_norm"]] = n + 1
            keys.append(f"sku:{line['sku_norm']}#{n}")
    return keys


def _lines_text(lines: Iterable[dict]) -> str:
    return ", ".join(f"{l['sku']}×{l['quantity']}" for l in lines)


def _address_text(v: dict) -> str:
    place = "".join(v[n] or "" for n in ("province", "city", "district", "address_detail"))
    return " ".join(part for part in (v["receiver_name"], v["receiver_phone"], place) if part)


def _jsonable(value: Any) -> Any:
    return _iso(value) if isinstance(value, datetime) else value


def _parcel_row(parcel: dict, parcel_id: int, order_id: int) -> dict:
    return {
        "id": parcel_id, "order_id": order_id, "warehouse": parcel["warehouse"], "carrier": parcel["carrier"],
        "waybill_no": parcel["waybill_no"], "state": "shipped", "printed_at": None,
        "shipped_at": parcel["shipped_at"], "delivered_at": None, "last_track_at": None, "last_track_text": "",
    }


def _parcel_line_rows(parcel: dict, parcel_id: int, by_sku: dict[str, tuple[int, int]]) -> list[dict]:
    rows, seen = [], set()
    for sku in parcel["skus"]:
        line = by_sku.get(sku)
        if line is not None and line[0] not in seen:  # an unknown SKU: the parcel stays, unlinked
            seen.add(line[0])
            rows.append({"parcel_id": parcel_id, "line_id": line[0], "quantity": line[1]})
    return rows


def _chunks(values: Sequence) -> Iterable[list]:
    values = list(values)
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


# -- quarantine --------------------------------------------------------------------------------


def payload_text(payload: Any) -> str:
    """A payload as stored: JSON text for data, the text itself for text, bytes decoded leniently."""
    if isinstance(payload, str):
        return storable(payload)
    if isinstance(payload, bytes | bytearray):
        return bytes(payload).decode("utf-8", "replace")
    try:
        return storable(json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str))
    except (TypeError, ValueError):
        return storable(repr(payload))


def _identity(connector: str, external_id: str | None, payload: str) -> str:
    blob = "\x00".join((connector, external_id or "", payload)).encode("utf-8", "replace")
    return hashlib.sha256(blob).hexdigest()


async def _quarantine(conn: AsyncConnection, items: Sequence[QuarantineItem], at: datetime) -> None:
    """Record quarantined payloads: the same one again is one row with more attempts."""
    rows: dict[str, dict] = {}
    for item in items:
        payload = payload_text(item.payload)
        external_id = storable(clean_text(item.external_id))[:128] or None if item.external_id is not None else None
        connector = storable(clean_text(item.connector))[:96]
        identity = _identity(connector, external_id, payload)
        if identity in rows:
            rows[identity]["attempts"] += 1
            continue
        rows[identity] = {
            "identity": identity, "connector": connector, "channel": storable(clean_text(item.channel))[:32],
            "shop_code": storable(clean_text(item.shop_code))[:64], "external_id": external_id, "payload": payload,
            "reason": storable(clean_text(item.reason, multiline=True))[:2000] or "no reason given",
            "code": storable(clean_text(item.code))[:32] or "invalid", "first_seen": at, "last_seen": at,
            "attempts": 1, "state": "open", "resolved_by": None, "resolved_at": None,
        }
    make = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    stmt = make(QuarantineEntry.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=[_q.identity],
        set_={
            "attempts": _q.attempts + stmt.excluded.attempts,
            "last_seen": stmt.excluded.last_seen,
            "reason": stmt.excluded.reason,
            "code": stmt.excluded.code,
            # seen again: open again, unless a person discarded exactly this payload
            "state": case((_q.state == "discarded", "discarded"), else_="open"),
            "resolved_by": case((_q.state == "discarded", _q.resolved_by), else_=None),
            "resolved_at": case((_q.state == "discarded", _q.resolved_at), else_=None),
        },
    )
    await conn.execute(stmt, list(rows.values()))


def _quarantine_view(row: Any) -> QuarantineView:
    return QuarantineView(
        row.id, row.connector, row.channel, row.shop_code, row.external_id, row.payload, row.reason, row.code,
        row.first_seen, row.last_seen, row.attempts, row.state, row.resolved_by, row.resolved_at,
    )


async def quarantine_list(
    store: Store, state: str | None = "open", connector: str | None = None, *, limit: int = 200
) -> list[QuarantineView]:
    """Quarantined payloads, most recently seen first (``state=None``: every state)."""
    query = select(QuarantineEntry.__table__).order_by(_q.last_seen.desc(), _q.id.desc()).limit(limit)
    if state is not None:
        query = query.where(_q.state == state)
    if connector is not None:
        query = query.where(_q.connector == connector)
    async with store.engine.connect() as conn:
        return [_quarantine_view(row) for row in await conn.execute(query)]


async def quarantine_get(store: Store, quarantine_id: int) -> QuarantineView | None:
    """One quarantined payload by id."""
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(QuarantineEntry.__table__).where(_q.id == quarantine_id))).first()
    return None if row is None else _quarantine_view(row)


async def _set_state(store: Store, quarantine_id: int, state: str, actor: Actor, *, from_states: tuple) -> bool:
    async with store.write() as conn:
        result = await conn.execute(
            update(QuarantineEntry.__table__)
            .where(_q.id == quarantine_id, _q.state.in_(from_states))
            .values(state=state, resolved_by=f"{actor.kind}:{actor.id}", resolved_at=datetime.now(UTC))
        )
        return result.rowcount > 0


async def quarantine_discard(store: Store, quarantine_id: int, actor: Actor) -> bool:
    """A person decided this payload is not wanted; seen again, it stays discarded. False if not open."""
    return await _set_state(store, quarantine_id, "discarded", actor, from_states=("open", "retried"))


async def quarantine_mark_retried(store: Store, quarantine_id: int, actor: Actor) -> bool:
    """Mark a payload as sent through its adapter again (see ``connectors.sync.retry_quarantined``):
    if it fails again it reopens; if its order ingests it is resolved."""
    return await _set_state(store, quarantine_id, "retried", actor, from_states=("open",))


# -- watermarks and connector health ------------------------------------------------------------


def china_day(at: datetime) -> str:
    """The China date of a moment, as YYYY-MM-DD."""
    return at.astimezone(CHINA).date().isoformat()


async def _cursor_row(conn: AsyncConnection, connector: str, stream: str) -> Any:
    return (await conn.execute(
        select(SyncCursor.__table__).where(_cur.connector == connector, _cur.stream == stream)
    )).first()


async def _advance_cursor(conn: AsyncConnection, cursor: CursorUpdate, result: IngestResult, at: datetime) -> None:
    row = await _cursor_row(conn, cursor.connector, cursor.stream)
    day = china_day(at)
    if row is None:
        await conn.execute(insert(SyncCursor.__table__).values(
            connector=cursor.connector, stream=cursor.stream, watermark=cursor.watermark, updated_at=at,
            last_success_at=at, last_error=None, last_error_at=None, consecutive_errors=0, day=day,
            day_new=result.inserted, day_updated=result.updated, day_errors=0,
            day_quarantined=result.quarantined,
        ))
        return
    same_day = row.day == day
    watermark = cursor.watermark if row.watermark is None else max(row.watermark, cursor.watermark)
    await conn.execute(
        update(SyncCursor.__table__)
        .where(_cur.connector == cursor.connector, _cur.stream == cursor.stream)
        .values(
            watermark=watermark, updated_at=at, last_success_at=at, consecutive_errors=0, day=day,
            day_new=(row.day_new if same_day else 0) + result.inserted,
            day_updated=(row.day_updated if same_day else 0) + result.updated,
            day_errors=row.day_errors if same_day else 0,
            day_quarantined=(row.day_quarantined if same_day else 0) + result.quarantined,
        )
    )


async def cursor_record_error(
    store: Store, connector: str, error: str, *, stream: str = "orders", at: datetime | None = None
) -> None:
    """A run failed: remember why (plain words) without moving the watermark."""
    at = at or datetime.now(UTC)
    error = storable(clean_text(error, multiline=True))[:2000]
    day = china_day(at)
    async with store.write() as conn:
        row = await _cursor_row(conn, connector, stream)
        if row is None:
            await conn.execute(insert(SyncCursor.__table__).values(
                connector=connector, stream=stream, watermark=None, updated_at=at, last_success_at=None,
                last_error=error, last_error_at=at, consecutive_errors=1, day=day, day_new=0,
                day_updated=0, day_errors=1, day_quarantined=0,
            ))
            return
        same_day = row.day == day
        await conn.execute(
            update(SyncCursor.__table__)
            .where(_cur.connector == connector, _cur.stream == stream)
            .values(
                last_error=error, last_error_at=at, consecutive_errors=row.consecutive_errors + 1, day=day,
                day_new=row.day_new if same_day else 0, day_updated=row.day_updated if same_day else 0,
                day_errors=(row.day_errors if same_day else 0) + 1,
                day_quarantined=row.day_quarantined if same_day else 0,
            )
        )


def _cursor_view(row: Any) -> CursorView:
    return CursorView(
        row.connector, row.stream, row.watermark, row.updated_at, row.last_success_at, row.last_error,
        row.last_error_at, row.consecutive_errors, row.day, row.day_new, row.day_updated, row.day_errors,
        row.day_quarantined,
    )


async def cursor_get(store: Store, connector: str, stream: str = "orders") -> CursorView | None:
    """A connector stream's watermark and counters, or None if it never ran."""
    async with store.engine.connect() as conn:
        row = await _cursor_row(conn, connector, stream)
    return None if row is None else _cursor_view(row)


async def connector_statuses(store: Store, *, now: datetime | None = None) -> list[ConnectorStatus]:
    """Every connector the pool has heard from, with its health, for the Connectors screen."""
    now = now or datetime.now(UTC)
    today = china_day(now)
    async with store.engine.connect() as conn:
        cursors = (await conn.execute(select(SyncCursor.__table__).order_by(_cur.connector, _cur.stream))).all()
        open_counts = dict((await conn.execute(
            select(_q.connector, func.count()).where(_q.state.in_(("open", "retried"))).group_by(_q.connector)
        )).all())
    out = []
    for row in cursors:
        same_day = row.day == today
        if row.last_error_at is not None and (row.last_success_at is None or row.last_error_at > row.last_success_at):
            state = "failing"
        elif row.last_success_at is None:
            state = "never"
        else:
            state = "ok"
        out.append(ConnectorStatus(
            connector=row.connector, stream=row.stream, state=state, watermark=row.watermark,
            lag=None if row.watermark is None else max(timedelta(0), now - row.watermark),
            last_success_at=row.last_success_at, last_error=row.last_error, last_error_at=row.last_error_at,
            consecutive_errors=row.consecutive_errors,
            orders_today=row.day_new if same_day else 0, updated_today=row.day_updated if same_day else 0,
            errors_today=row.day_errors if same_day else 0,
            quarantined_today=row.day_quarantined if same_day else 0,
            open_quarantine=open_counts.pop(row.connector, 0) if row.stream == "orders" else 0,
        ))
    for connector, count in sorted(open_counts.items()):  # imports and the like: quarantine, no cursor
        out.append(ConnectorStatus(connector, "orders", "never", None, None, None, None, None, 0, 0, 0, 0, 0, count))
    return out


# -- the sync lease ----------------------------------------------------------------------------


async def lease_acquire(
    store: Store, name: str, holder: str, ttl: timedelta, *, now: datetime | None = None
) -> bool:
    """Take (or renew) the lease ``name`` for ``holder`` until now + ``ttl``.

    True when ``holder`` has it now; False while someone else holds an unexpired one. A
    compare-and-set inside one write transaction (writers are serialised on both backends).
    """
    now = now or datetime.now(UTC)
    async with store.write() as conn:
        row = (await conn.execute(select(_lease.holder, _lease.expires_at).where(_lease.name == name))).first()
        if row is None:
            await conn.execute(insert(SyncLease.__table__).values(
                name=name, holder=holder, acquired_at=now, expires_at=now + ttl))
            return True
        if row.holder != holder and row.expires_at > now:
            return False
        values = {"holder": holder, "expires_at": now + ttl}
        if row.holder != holder:
            values["acquired_at"] = now
        result = await conn.execute(
            update(SyncLease.__table__).where(_lease.name == name, _lease.holder == row.holder).values(**values)
        )
        return result.rowcount == 1


async def lease_take_over(store: Store, name: str, old_holder: str, holder: str, ttl: timedelta,
                          *, now: datetime | None = None) -> bool:
    """Take the lease from ``old_holder`` (known to be dead) — only if it still holds it."""
    now = now or datetime.now(UTC)
    async with store.write() as conn:
        result = await conn.execute(
            update(SyncLease.__table__).where(_lease.name == name, _lease.holder == old_holder)
            .values(holder=holder, acquired_at=now, expires_at=now + ttl)
        )
        return result.rowcount == 1


async def lease_release(store: Store, name: str, holder: str) -> bool:
    """Give the lease up (only its holder can); True if it was held by ``holder``."""
    async with store.write() as conn:
        result = await conn.execute(
            delete(SyncLease.__table__).where(and_(_lease.name == name, _lease.holder == holder))
        )
        return result.rowcount > 0


async def lease_holder(store: Store, name: str, *, now: datetime | None = None) -> tuple[str, datetime] | None:
    """Who holds the lease ``name`` and until when; None when nobody holds an unexpired one."""
    now = now or datetime.now(UTC)
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(_lease.holder, _lease.expires_at).where(_lease.name == name))).first()
    if row is None or row.expires_at <= now:
        return None
    return row.holder, row.expires_at
