"""The Store: the one door to the order pool, with methods named by intent.

Screens, the CLI and connectors ask the Store; they never hold SQL or a session. Reads return
read models (``db.views``); every write runs in one write transaction (``BEGIN IMMEDIATE`` on
SQLite) that rolls back unless it completes, and appends a timeline event naming its author.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Table,
    TypeDecorator,
    bindparam,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db import reads, search
from db.codes import DEFAULT_PRIORITY
from db.engine import WRITE, is_sqlite, make_engine
from db.fields import name_grams, normalise_query, phone_fields, search_text
from db.migrate import upgrade
from db.models import (
    AfterSale,
    Channel,
    Customer,
    NameGram,
    Operator,
    Order,
    OrderLine,
    Parcel,
    ParcelLine,
    PhoneKind,
    Shop,
    Status,
    TimelineEvent,
)
from db.reader import Reader
from db.roles import permit
from db.sanitize import clean_text, is_clean
from db.views import Actor, OrderCard, OrderHit

_o = Order.__table__.c
_s = Shop.__table__.c
_l = OrderLine.__table__.c
_p = Parcel.__table__.c
_pl = ParcelLine.__table__.c
_t = TimelineEvent.__table__.c
_c = Customer.__table__.c
_op = Operator.__table__.c

_BY_NO = select(_o.id).where((_o.order_no == bindparam("q")) | (_o.channel_order_id == bindparam("q")))

T = TypeVar("T")

#: SQLite: every insert into ``orders`` writes its full-text row too, in the same transaction
#: (one executemany per batch; a trigger cost 3x the rest of the insert: migration 0003).
FTS_INSERT = "INSERT INTO order_fts(rowid, search_text) VALUES (?, ?)"


@dataclass
class NewLine:
    """An order line to add."""

    sku: str
    title: str = ""
    quantity: int = 1
    price_fen: int = 0
    gift: bool = False
    combo_sku: str | None = None
    channel_line_id: str = ""


@dataclass
class NewParcel:
    """A parcel a channel reports as sent: carrier and waybill, and the SKUs it carries if known."""

    waybill_no: str
    carrier: str = ""
    warehouse: str = ""
    shipped_at: datetime | None = None
    skus: list[str] = field(default_factory=list)


@dataclass
class NewOrder:
    """A canonical order to add: what a connector, an import or a test hands the Store."""

    channel: str
    shop_code: str
    channel_order_id: str
    created_at: datetime
    order_no: str = ""
    status: str = "paid"
    raw_status: str = ""
    after_sale: str = "none"
    raw_after_sale: str = ""
    hold_reason: str | None = None
    total_fen: int = 0
    paid_fen: int = 0
    post_fee_fen: int = 0
    discount_fen: int = 0
    paid_at: datetime | None = None
    ship_by: datetime | None = None
    modified_at: datetime | None = None
    priority: str = DEFAULT_PRIORITY
    tags: list[str] = field(default_factory=list)
    presale: bool = False
    buyer_note: str = ""
    seller_memo: str = ""
    receiver_name: str = ""
    receiver_phone: str = ""
    province: str = ""
    city: str = ""
    district: str = ""
    address_detail: str = ""
    lines: list[NewLine] = field(default_factory=list)
    parcels: list[NewParcel] = field(default_factory=list)
    shop_name: str = ""


class OrderNotFound(LookupError):
    """No order with that id or number."""


class Store:
    """Async facade over the order pool. Create with :meth:`open`; close with :meth:`close`."""

    def __init__(self, engine: AsyncEngine, reader: Reader | None = None) -> None:
        self.engine = engine
        self._writer = engine.execution_options(**WRITE)
        self.dialect = engine.dialect.name
        self.url = engine.url
        if reader is None and is_sqlite(engine) and engine.url.database not in (None, "", ":memory:"):
            reader = Reader(engine.url.database)
        self.reader = reader
        # SQLite takes one writer at a time: writers of this process queue here, in order, instead
        # of spinning on busy_timeout against each other (8 sync runners under load ran past it).
        self._write_turn = asyncio.Lock() if self.dialect == "sqlite" else None

    async def _read(self, fn: Callable[..., T], *args: object) -> T:
        """Run a whole read (``fn(q, *args)``, see ``db.reads``) in one snapshot.

        SQLite: in one thread hop on plain sqlite3 connections (``db.reader``).
        PostgreSQL: on an async connection through ``run_sync`` (asyncpg needs no thread).
        """
        if self.reader is not None:
            return await self.reader.read(fn, *args)
        async with self.engine.connect() as conn:
            return await conn.run_sync(_read_with_sqlalchemy, fn, args)

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    async def open(cls, url_or_path: str | Path, *, synchronous: str = "FULL", cache_mb: int = 32,
                   reader: Reader | None = None) -> Store:
        """Open (creating and migrating as needed) the database at a path or URL.

        ``reader``: an already open Reader of the same SQLite file to answer reads (``db.lazy``).
        """
        engine = make_engine(url_or_path, synchronous=synchronous, cache_mb=cache_mb)
        await upgrade(engine)
        return cls(engine, reader)

    async def close(self) -> None:
        """Close every pooled connection."""
        if self.reader is not None:
            self.reader.close()
        await self.engine.dispose()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction: commits when the block ends, rolls back if it raises.

        Never nest: a write inside another write of the same Store waits for itself.
        """
        if self._write_turn is None:
            async with self._writer.begin() as conn:
                yield conn
            return
        async with self._write_turn, self._writer.begin() as conn:
            yield conn

    async def checkpoint(self) -> None:
        """Fold the WAL back into the database file (SQLite); harmless elsewhere."""
        if is_sqlite(self.engine):
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    # -- reads -------------------------------------------------------------------------------

    async def find_orders(self, query: str, *, limit: int = search.LIMIT) -> list[OrderHit]:
        """Orders matching what an agent typed: exact ids first, then phone, name, address."""
        probes = search.probes(query, dialect=self.dialect)
        if not probes:
            return []
        return await self._read(reads.find_orders, probes, limit, self.dialect == "sqlite")

    async def order_id_by_no(self, order_no: str) -> int | None:
        """The id of the order with this number or channel order id."""
        async with self.engine.connect() as conn:
            return (await conn.execute(_BY_NO, {"q": order_no.strip()})).scalar()

    async def order_card(self, order_id: int, *, now: datetime | None = None,
                         reveal: frozenset[str] = frozenset()) -> OrderCard | None:
        """Everything the lifecycle card shows, read in one snapshot; None if there is no such order.

        The receiver's name, phone and detail address (and phone numbers quoted in notes and the
        timeline) come masked (``db.privacy``). ``reveal``: fields to return unmasked — any of
        ``name``, ``phone``, ``address`` — the only way to get them. The caller has checked the
        operator's ``reveal`` permission (``db.roles``) and logged the reveal (``db.access``).
        """
        return await self._read(reads.order_card, order_id, now or datetime.now(UTC), frozenset(reveal))

    async def operator_name(self, login: str) -> str:
        """The display name of an operator (the login itself when unknown)."""
        return await self._read(reads.operator_name, login) or login

    async def operators(self) -> list[Operator]:
        """Every operator, active first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(Operator.__table__).order_by(_op.active.desc(), _op.id))).all()
        return [Operator(**row._mapping) for row in rows]

    async def count_orders(self) -> int:
        """How many orders the pool holds."""
        return await self._read(reads.count_orders)

    # -- writes ------------------------------------------------------------------------------

    async def ensure_operator(self, login: str, display_name: str | None = None, role: str = "cs") -> None:
        """Make sure an operator row exists for a login (scripts, the demo, tests).

        No permission is asked: the app and the CLI add people through
        ``deskapp.services.auth`` (``resolve_operator``, ``add_operator``) instead.
        """
        async with self.engine.connect() as conn:  # the common case needs no write lock
            if (await conn.execute(select(_op.id).where(_op.id == login))).scalar() is not None:
                return
        async with self.write() as conn:
            exists = (await conn.execute(select(_op.id).where(_op.id == login))).scalar()
            if exists is None:
                await conn.execute(
                    insert(Operator.__table__).values(
                        id=login, display_name=clean_text(display_name or login), role=role, active=True
                    )
                )

    async def ensure_shop(self, conn: AsyncConnection, channel: str, shop_code: str, shop_name: str = "") -> int:
        """The id of a shop, creating the channel and shop rows on first sight."""
        channel, shop_code, shop_name = clean_text(channel), clean_text(shop_code), clean_text(shop_name)
        shop_id = (
            await conn.execute(select(_s.id).where(_s.channel == channel, _s.code == shop_code))
        ).scalar()
        if shop_id is not None:
            return shop_id
        ch = Channel.__table__.c
        if (await conn.execute(select(ch.code).where(ch.code == channel))).scalar() is None:
            await conn.execute(insert(Channel.__table__).values(code=channel, name=channel))
        result = await conn.execute(
            insert(Shop.__table__).values(channel=channel, code=shop_code, name=shop_name or shop_code)
        )
        return result.inserted_primary_key[0]

    async def add_order(self, new: NewOrder, *, actor: Actor, at: datetime | None = None) -> int:
        """Add one order with its lines, match its customer, and record who added it."""
        at = at or datetime.now(UTC)
        async with self.write() as conn:
            shop_id = await self.ensure_shop(conn, new.channel, new.shop_code)
            values = _order_values(new)
            customer_id, reason = await _match_customer(conn, values, at)
            values.update(shop_id=shop_id, customer_id=customer_id, customer_match=reason, updated_at=at)
            order_id = (await conn.execute(insert(Order.__table__).values(**values))).inserted_primary_key[0]
            if self.dialect == "sqlite":
                await conn.exec_driver_sql(FTS_INSERT, (order_id, values["search_text"]))
            if new.lines:
                await conn.execute(
                    insert(OrderLine.__table__),
                    [
                        {
                            "order_id": order_id,
                            "channel_line_id": clean_text(line.channel_line_id),
                            "sku": clean_text(line.sku),
                            "sku_norm": normalise_sku(clean_text(line.sku)),
                            "title": clean_text(line.title),
                            "quantity": line.quantity,
                            "price_fen": line.price_fen,
                            "gift": line.gift,
                            "combo_sku": clean_text(line.combo_sku) or None,
                        }
                        for line in new.lines
                    ],
                )
            await _write_grams(conn, order_id, values["receiver_name"])
            await append_event(
                conn, order_id, actor, "created", to_value=values["status"], at=at,
                message=f"{values['channel']} {values['order_no']}",
            )
            return order_id

    async def set_seller_memo(self, order_id: int, memo: str, *, actor: Actor) -> None:
        """Replace the seller memo, recording old → new on the timeline.

        Needs ``edit_memo`` (``db.roles``): a refusal raises ``db.roles.Refused``, changes nothing
        and is put on the access log.
        """
        memo = clean_text(memo, multiline=True)
        now = datetime.now(UTC)
        async with self.write() as conn:
            refused = await permit(conn, actor, "edit_memo", order_id=order_id, at=now)
            if refused is None:
                old = (await conn.execute(select(_o.seller_memo).where(_o.id == order_id))).first()
                if old is None:
                    raise OrderNotFound(order_id)
                if old[0] == memo:
                    return
                await conn.execute(
                    update(Order.__table__).where(_o.id == order_id).values(seller_memo=memo, updated_at=now)
                )
                await append_event(conn, order_id, actor, "memo", from_value=old[0], to_value=memo, at=now)
        if refused is not None:
            raise refused

    async def bulk_load(self, tables: dict[str, Sequence[dict]]) -> None:
        """Insert prepared rows into several tables in one write transaction (demo and imports).

        Rows must already carry their ids and derived fields (see ``db.fields``). On SQLite the
        rows go to the driver's ``executemany`` with values formatted exactly as SQLAlchemy stores
        them: its per-row argument handling cost ~270 µs an order, more than SQLite's own work.
        """
        order = ["channel", "shop", "customer", "operator", "orders", "order_line", "parcel",
                 "parcel_line", "timeline_event", "name_gram"]
        by_name = {t.name: t for t in _TABLES}
        async with self.write() as conn:
            driver = (await conn.get_raw_connection()).driver_connection if self.dialect == "sqlite" else None
            for name in order:
                rows = tables.get(name)
                if not rows:
                    continue
                if driver is not None:
                    await driver.executemany(*_sqlite_insert(by_name[name], rows))
                    if name == "orders":
                        await driver.executemany(FTS_INSERT, [(row["id"], row["search_text"]) for row in rows])
                    continue
                await conn.execute(insert(by_name[name]), list(rows))
                if self.dialect == "postgresql":
                    await _advance_sequence(conn, by_name[name])


def _sqlite_value(column: Column) -> Callable[[object], object] | None:
    """How SQLAlchemy would store a Python value of this column in SQLite (None: as it is)."""
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl
    if isinstance(kind, DateTime):
        def as_text(value):  # noqa: ANN001, ANN202
            if value is None:
                return None
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            return value.isoformat(" ", "microseconds")  # SQLAlchemy's "YYYY-MM-DD HH:MM:SS.ffffff"
        return as_text
    if isinstance(kind, JSON):
        return lambda value: None if value is None else json.dumps(value)
    if isinstance(kind, Boolean):
        return lambda value: None if value is None else int(value)
    return None


def _sqlite_insert(table: Table, rows: Sequence[dict]) -> tuple[str, list]:
    """An INSERT for ``table`` and its rows as driver tuples (missing keys take column defaults)."""
    columns = list(table.columns)
    names = [c.name for c in columns]
    defaults = {c.name: c.default.arg for c in columns if c.default is not None and c.default.is_scalar}
    converters = [(i, f) for i, f in enumerate(map(_sqlite_value, columns)) if f is not None]
    pick = itemgetter(*names)
    values = []
    for row in rows:
        if len(row) != len(names):
            row = {**defaults, **{n: None for n in names if n not in row and n not in defaults}, **row}
        value = list(pick(row))
        for i, convert in converters:
            value[i] = convert(value[i])
        values.append(value)
    sql = f'INSERT INTO "{table.name}" ({", ".join(names)}) VALUES ({", ".join("?" * len(names))})'
    return sql, values


def _read_with_sqlalchemy(conn: Connection, fn: Callable[..., T], args: tuple) -> T:
    def q(sql: str, params: dict | Sequence = ()) -> list[tuple]:
        return [tuple(row) for row in conn.execute(text(sql), params or {})]

    return fn(q, *args)


_TABLES = [
    Channel.__table__, Shop.__table__, Customer.__table__, Operator.__table__, Order.__table__,
    OrderLine.__table__, Parcel.__table__, ParcelLine.__table__, TimelineEvent.__table__,
    NameGram.__table__,
]


async def _advance_sequence(conn: AsyncConnection, table) -> None:  # noqa: ANN001
    """After rows arrived with their own ids, move PostgreSQL's id sequence past them.

    Otherwise the next ordinary insert (add_order, ensure_shop ...) draws an id that is taken.
    SQLite's rowid allocation already starts after the largest id.
    """
    id_column = table.c.get("id")
    if id_column is None or not id_column.primary_key or id_column.type.python_type is not int:
        return
    await conn.execute(
        text(
            "SELECT setval(pg_get_serial_sequence(:table, 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) "
            f'FROM "{table.name}"'
        ),
        {"table": table.name},
    )


def normalise_sku(sku: str) -> str:
    """SKU codes as warehouses compare them: no spaces, upper case, full-width folded."""
    return normalise_query(sku).replace(" ", "").upper()


_MAX_INT = 2**31 - 1  # PostgreSQL INTEGER
_STATUSES = frozenset(s.value for s in Status)
_AFTER_SALES = frozenset(a.value for a in AfterSale)
_LIMITS = {  # column widths (PostgreSQL enforces them; SQLite would silently store longer text)
    "channel": 32, "shop_code": 64, "channel_order_id": 64, "order_no": 64, "raw_status": 64,
    "raw_after_sale": 64, "hold_reason": 256, "priority": 1, "receiver_name": 128,
    "receiver_phone": 256, "province": 32, "city": 32, "district": 32, "address_detail": 512,
    "shop_name": 128,
}


_NOTE_LIMIT = 2**62  # notes are TEXT columns: no limit


class InvalidOrder(ValueError):
    """A canonical order that cannot be stored as it is; the message says why in plain words."""


def _text(new: object, name: str, limit: int, *, multiline: bool = False) -> str:
    """The cleaned text of one field, or :class:`InvalidOrder` (cleaning only ever shortens)."""
    value = getattr(new, name)
    if type(value) is not str and not isinstance(value, str):
        raise InvalidOrder(f"{name} is not text: {type(value).__name__}")
    cleaned = clean_text(value, multiline=multiline)
    if len(cleaned) > limit:
        raise InvalidOrder(f"{name} is longer than {limit} characters ({len(value)})")
    return cleaned


def _fen(new: object, name: str, what: str = "a whole number of fen") -> int:
    value = getattr(new, name)
    if type(value) is not int or abs(value) > _MAX_INT:
        if not isinstance(value, int) or isinstance(value, bool) or abs(value) > _MAX_INT:
            raise InvalidOrder(f"{name} is not {what} in range: {value!r}")
    return value


def _time(new: object, name: str, *, optional: bool = True) -> datetime | None:
    value = getattr(new, name)
    if value is None and optional:
        return None
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidOrder(f"{name} is not a time with a zone: {value!r}")
    try:
        value.astimezone(UTC)
    except OverflowError:  # 9999-12-31 23:00-08:00 is past year 9999 in UTC: no database stores it
        raise InvalidOrder(f"{name} is out of range: {value.isoformat()}") from None
    return value


#: One-line text fields of an order, checked and cleaned together.
_ONE_LINE = ("channel", "shop_code", "channel_order_id", "order_no", "receiver_name", "receiver_phone",
             "province", "city", "district", "address_detail", "raw_status", "raw_after_sale", "shop_name")
_ONE_LINE_LIMITS = tuple(_LIMITS[name] for name in _ONE_LINE)
_get_one_line = attrgetter(*_ONE_LINE)


def _one_line_texts(new: NewOrder) -> tuple[str, ...]:
    """The one-line text fields, cleaned and checked: one search over all of them when none holds
    anything to clean (nearly every order), field by field otherwise."""
    values = _get_one_line(new)
    try:
        joined = "".join(values)
    except TypeError:  # something is not text: the field-by-field pass names it
        joined = None
    if joined is None or not is_clean(joined):
        values = tuple(_text(new, name, limit) for name, limit in zip(_ONE_LINE, _ONE_LINE_LIMITS))
    for name, value in zip(_ONE_LINE[:3], values):
        if not value.strip():
            raise InvalidOrder(f"{name} is missing")
    for name, value, limit in zip(_ONE_LINE, values, _ONE_LINE_LIMITS):
        if len(value) > limit:
            raise InvalidOrder(f"{name} is longer than {limit} characters ({len(value)})")
    return values


def _order_fields(new: NewOrder) -> tuple[dict, str, str]:
    """Checked, cleaned column values of an order (lines and parcels apart), its shop code and name."""
    (channel, shop_code, channel_order_id, order_no, name, phone, province, city, district, detail,
     raw_status, raw_after_sale, shop_name) = _one_line_texts(new)
    ids = {"channel": channel, "shop_code": shop_code, "channel_order_id": channel_order_id}
    hold = None if new.hold_reason is None else _text(new, "hold_reason", _LIMITS["hold_reason"])
    priority = new.priority
    if not isinstance(priority, str) or len(priority) != 1 or not priority.isascii() or not priority.isalnum():
        raise InvalidOrder(f"priority {priority!r} is not one letter or digit")
    status = new.status
    if not isinstance(status, str) or status not in _STATUSES:
        raise InvalidOrder(f"unknown standard status {status!r}")
    after_sale = new.after_sale
    if not isinstance(after_sale, str) or after_sale not in _AFTER_SALES:
        raise InvalidOrder(f"unknown after-sale state {after_sale!r}")
    created_at = _time(new, "created_at", optional=False)
    paid_at, ship_by, modified_at = _time(new, "paid_at"), _time(new, "ship_by"), _time(new, "modified_at")
    total, paid = _fen(new, "total_fen"), _fen(new, "paid_fen")
    post_fee, discount = _fen(new, "post_fee_fen"), _fen(new, "discount_fen")
    buyer_note = _text(new, "buyer_note", _NOTE_LIMIT, multiline=True)
    seller_memo = _text(new, "seller_memo", _NOTE_LIMIT, multiline=True)
    if not isinstance(new.presale, bool):
        raise InvalidOrder("presale is not true/false")
    tags = new.tags
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidOrder("tags is not a list of text")
    kind, norm, tail4 = phone_fields(phone)
    return {
        "channel": ids["channel"],
        "channel_order_id": ids["channel_order_id"],
        "order_no": order_no or ids["channel_order_id"],
        "status": status,
        "raw_status": raw_status,
        "after_sale": after_sale,
        "raw_after_sale": raw_after_sale,
        "hold_reason": hold or None,
        "total_fen": total,
        "paid_fen": paid,
        "post_fee_fen": post_fee,
        "discount_fen": discount,
        "created_at": created_at,
        "paid_at": paid_at,
        "ship_by": ship_by,
        "modified_at": modified_at,
        "priority": priority,
        "tags": [clean_text(t) for t in tags],
        "presale": new.presale,
        "buyer_note": buyer_note,
        "seller_memo": seller_memo,
        "receiver_name": name,
        "receiver_phone": phone,
        "phone_kind": kind,
        "phone_norm": norm if kind in (PhoneKind.PLAIN, PhoneKind.VIRTUAL) else None,
        "phone_tail4": tail4,
        "province": province,
        "city": city,
        "district": district,
        "address_detail": detail,
        "search_text": search_text(name, province, city, district, detail),
    }, ids["shop_code"], shop_name


def _order_values(new: NewOrder) -> dict:
    """Column values for a new order: checked (:class:`InvalidOrder`), text cleaned, phone and
    search fields derived."""
    return _order_fields(new)[0]


def customer_match_key(name: str, province: str, city: str, district: str, detail: str) -> str | None:
    """The key that ties orders without a plain phone to one customer: name + full address."""
    if not name or "*" in name or not detail:
        return None
    squeeze = "".join((province + city + district + detail).split())
    return f"{name}|{squeeze}"


async def _match_customer(conn: AsyncConnection, values: dict, at: datetime) -> tuple[int, str]:
    """Find the customer an order belongs to, or create one; return (id, why)."""
    key = customer_match_key(
        values["receiver_name"], values["province"], values["city"], values["district"], values["address_detail"]
    )
    if values["phone_kind"] == PhoneKind.PLAIN and values["phone_norm"]:
        found = (await conn.execute(select(_c.id).where(_c.phone_norm == values["phone_norm"]))).scalar()
        if found is not None:
            return found, "phone"
    if key:
        found = (await conn.execute(select(_c.id).where(_c.match_key == key))).scalar()
        if found is not None:
            return found, "name+address"
    result = await conn.execute(
        insert(Customer.__table__).values(
            name=values["receiver_name"],
            phone_norm=values["phone_norm"] if values["phone_kind"] == PhoneKind.PLAIN else None,
            match_key=key,
            city=values["city"],
            first_seen_at=at,
        )
    )
    return result.inserted_primary_key[0], "new"


async def _write_grams(conn: AsyncConnection, order_id: int, *names: str) -> None:
    await conn.execute(delete(NameGram.__table__).where(NameGram.__table__.c.order_id == order_id))
    grams = name_grams(*names)
    if grams:
        await conn.execute(insert(NameGram.__table__), [{"gram": g, "order_id": order_id} for g in grams])


async def append_event(
    conn: AsyncConnection,
    order_id: int,
    actor: Actor,
    kind: str,
    *,
    at: datetime,
    from_value: str | None = None,
    to_value: str | None = None,
    message: str = "",
    detail: dict | None = None,
    parcel_id: int | None = None,
) -> None:
    """Append one timeline event inside the caller's write transaction."""
    await conn.execute(
        insert(TimelineEvent.__table__).values(
            order_id=order_id,
            parcel_id=parcel_id,
            at=at,
            actor_kind=actor.kind,
            actor_id=actor.id,
            kind=kind,
            from_value=from_value,
            to_value=to_value,
            message=message,
            detail=detail,
        )
    )

