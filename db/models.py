"""The canonical order pool as SQLModel tables.

One row per thing a person can point at: a channel and its shops, a customer (one identity across
channels), an order with its lines, the parcels it ships as, and the append-only timeline that is
also the audit log. Values are stored as the channel delivered them (raw status beside the standard
one; masked or encrypted receiver fields as delivered) so nothing is lost in translation.

Amounts are integers in fen (分); times are timezone-aware ``datetime``s stored in UTC (the UI shows
UTC+8, the platforms' own zone, whatever the host zone is).
Schema changes go through ``db/migrations`` — never "delete and resync": this database holds what
no channel can give back (operators' actions, scans, address edits).
"""

from __future__ import annotations

from datetime import datetime
from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from db.codes import (  # noqa: F401 - re-exported: the codes belong with the tables
    LIFECYCLE,
    RETURN_STATES,
    UNSHIPPED,
    ActorKind,
    AfterSale,
    PhoneKind,
    Status,
)


class Channel(SQLModel, table=True):
    """A sales channel (taobao, pdd, douyin, pos ...)."""

    code: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=64)


class Shop(SQLModel, table=True):
    """A shop on a channel; one team often runs several on the same platform."""

    __table_args__ = (UniqueConstraint("channel", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(foreign_key="channel.code", max_length=32)
    code: str = Field(max_length=64)
    name: str = Field(max_length=128)


class Customer(SQLModel, table=True):
    """One buyer across channels, matched on normalised phone, or name + address."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=128)
    phone_norm: str | None = Field(default=None, max_length=32, index=True)
    match_key: str | None = Field(default=None, max_length=256, index=True)
    city: str = Field(default="", max_length=64)
    first_seen_at: datetime | None = None
    vip_level: str = Field(default="", max_length=8)


class Order(SQLModel, table=True):
    """The canonical order, whatever channel it came from."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("channel", "shop_id", "channel_order_id"),
        Index("ix_orders_status_ship_by", "status", "ship_by"),
        Index("ix_orders_customer_paid", "customer_id", "paid_at"),
        Index("ix_orders_unchecked", "id", sqlite_where=text("checked_at IS NULL"),
              postgresql_where=text("checked_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(foreign_key="channel.code", max_length=32)
    shop_id: int = Field(foreign_key="shop.id")
    channel_order_id: str = Field(max_length=64, index=True)
    order_no: str = Field(max_length=64, index=True)  # the number agents and buyers quote

    status: str = Field(default=Status.PAID, max_length=24)
    raw_status: str = Field(default="", max_length=64)
    after_sale: str = Field(default=AfterSale.NONE, max_length=24)
    raw_after_sale: str = Field(default="", max_length=64)
    hold_reason: str | None = Field(default=None, max_length=256)

    total_fen: int = 0
    paid_fen: int = 0
    post_fee_fen: int = 0
    discount_fen: int = 0

    created_at: datetime
    paid_at: datetime | None = None
    ship_by: datetime | None = None  # the promise to the buyer
    modified_at: datetime | None = None  # the channel's own modified time
    updated_at: datetime | None = None  # our last write

    priority: str = Field(default="B", max_length=1)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    presale: bool = False
    buyer_note: str = ""
    seller_memo: str = ""

    receiver_name: str = Field(default="", max_length=128, index=True)
    receiver_phone: str = Field(default="", max_length=256)  # as delivered
    phone_kind: str = Field(default=PhoneKind.NONE, max_length=12)
    phone_norm: str | None = Field(default=None, max_length=32, index=True)  # digits of a plain phone
    phone_tail4: str | None = Field(default=None, max_length=4, index=True)  # also from masked
    province: str = Field(default="", max_length=32)
    city: str = Field(default="", max_length=32)
    district: str = Field(default="", max_length=32)
    address_detail: str = Field(default="", max_length=512)

    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    customer_match: str = Field(default="", max_length=32)  # why this customer: phone, name+address ...
    search_text: str = ""  # receiver, customer and address, for the substring index
    # Hash of the canonical content a channel last delivered (lines and parcels included): an
    # unchanged payload is skipped with no write and no event (db.ingest).
    fingerprint: str | None = Field(default=None, max_length=40)

    # Order checks (deskapp.services.checks): when they last ran, and the codes of what they found.
    checked_at: datetime | None = None
    check_codes: list[str] | None = Field(default=None, sa_column=Column(JSON(none_as_null=True)))
    # What the warehouse rules read and decided (deskapp.services.rules / sla).
    is_live: bool = False  # a live-stream order
    presale_ship_at: datetime | None = None  # the presale's promised ship date
    sla_due: datetime | None = None  # the computed ship-by deadline
    priority_why: str | None = Field(default=None, max_length=256)  # the rule that set the priority
    rules_version: str | None = Field(default=None, max_length=40)
    wh_step: str | None = Field(default=None, max_length=16)  # picked / packed, inside 配货中


class OrderLine(SQLModel, table=True):
    """One SKU line of an order; combo components point at the combo SKU they came from."""

    __tablename__ = "order_line"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    channel_line_id: str = Field(default="", max_length=64)
    sku: str = Field(max_length=64)
    sku_norm: str = Field(max_length=64, index=True)
    title: str = ""
    quantity: int = 1
    price_fen: int = 0
    gift: bool = False
    combo_sku: str | None = Field(default=None, max_length=64)


class Parcel(SQLModel, table=True):
    """A physical parcel; one order can ship as several, from several warehouses."""

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    warehouse: str = Field(max_length=64)
    carrier: str = Field(default="", max_length=32)
    waybill_no: str | None = Field(default=None, max_length=64, index=True)
    state: str = Field(default="pending", max_length=16)  # pending printed shipped in_transit delivered returned
    printed_at: datetime | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    last_track_at: datetime | None = None
    last_track_text: str = ""


class ParcelLine(SQLModel, table=True):
    """Which order lines (and how many of each) a parcel carries."""

    __tablename__ = "parcel_line"

    parcel_id: int = Field(foreign_key="parcel.id", primary_key=True)
    line_id: int = Field(foreign_key="order_line.id", primary_key=True)
    quantity: int = 1


class TimelineEvent(SQLModel, table=True):
    """An append-only record of one step or change: the order's history and its audit log.

    ``dedupe_key`` names an event that must be recorded once however often it is reported (a
    carrier scan pushed twice): unique per order where set, NULL (no constraint) otherwise.
    """

    __tablename__ = "timeline_event"
    __table_args__ = (
        Index("ix_timeline_order_at", "order_id", "at"),
        Index(
            "ux_timeline_order_dedupe", "order_id", "dedupe_key", unique=True,
            sqlite_where=text("dedupe_key IS NOT NULL"), postgresql_where=text("dedupe_key IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id")
    parcel_id: int | None = Field(default=None, foreign_key="parcel.id")
    at: datetime
    actor_kind: str = Field(max_length=16)
    actor_id: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    from_value: str | None = None
    to_value: str | None = None
    message: str = ""
    detail: dict | None = Field(default=None, sa_column=Column(JSON(none_as_null=True)))  # None → SQL NULL
    dedupe_key: str | None = Field(default=None, max_length=128)


class Operator(SQLModel, table=True):
    """A person who signs in and changes orders; what they may do is their role (``db.roles``)."""

    id: str = Field(primary_key=True, max_length=64)  # login name
    display_name: str = Field(max_length=64)
    role: str = Field(default="cs", max_length=16)  # cs warehouse supervisor admin
    active: bool = True
    pin_hash: str | None = Field(default=None, max_length=255)  # Argon2id of the PIN (deskapp.services.auth)
    failed_pins: int = 0  # wrong PINs in a row: kept here so a restart does not reset the count
    locked_until: datetime | None = None
    created_at: datetime | None = None


class AccessLog(SQLModel, table=True):
    """Append-only, hash-chained record of who saw or tried what (``db.access``).

    Sign-ins, failed PINs, reveals of masked customer data, exports, operator changes and refused
    actions. Each row's ``hash`` covers its content and the previous row's hash, so an edited,
    deleted or reordered row breaks the chain (``deskapp audit verify``); triggers refuse UPDATE
    and DELETE (migration 0005). ``order_id`` has no foreign key: the log outlives what it names.
    """

    __tablename__ = "access_log"
    __table_args__ = (
        Index("ix_access_log_kind", "kind", "id"),  # audit list --kind
        Index("ix_access_log_order", "order_id", sqlite_where=text("order_id IS NOT NULL"),
              postgresql_where=text("order_id IS NOT NULL")),  # who saw this order
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime
    operator_id: str = Field(max_length=64)
    kind: str = Field(max_length=24)
    order_id: int | None = None
    field: str | None = Field(default=None, max_length=64)
    reason: str = ""
    detail: dict | None = Field(default=None, sa_column=Column(JSON(none_as_null=True)))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class NameGram(SQLModel, table=True):
    """Two-character pieces of receiver and customer names.

    A trigram index cannot find a two-character name (张三) — on SQLite 3.40 it silently returns
    nothing — and a LIKE scan of a million rows takes ~100 ms, so names get their own index.
    Kept in step by ``Store`` in the same transaction as the order it points at.
    """

    __tablename__ = "name_gram"
    __table_args__ = (Index("ix_name_gram_order_id", "order_id"),)  # rewriting one order's grams

    gram: str = Field(primary_key=True, max_length=8)
    order_id: int = Field(primary_key=True, foreign_key="orders.id")


class OrderSource(SQLModel, table=True):
    """What the channel last delivered for an order, as canonical values (lines and parcels too).

    Ingest compares a new payload field by field with this snapshot, not with the order row: a
    field the channel did not change keeps what the desk made of it (an operator's memo or
    address edit, a status moved on to 审核中), and a field it did change is applied and recorded.
    """

    __tablename__ = "order_source"

    order_id: int = Field(primary_key=True, foreign_key="orders.id")
    snapshot: dict = Field(sa_column=Column(JSON, nullable=False))


class SyncCursor(SQLModel, table=True):
    """One connector stream's watermark, committed with the orders it covers, and its health.

    ``connector`` is ``"<channel>:<shop>"``; ``stream`` is ``"orders"`` (a connector may sync more
    than one list). The ``day_*`` counters are for the China date in ``day`` (the Connectors screen).
    """

    __tablename__ = "sync_cursor"

    connector: str = Field(primary_key=True, max_length=96)
    stream: str = Field(primary_key=True, max_length=32)
    watermark: datetime | None = None  # every change modified before this is in the pool
    updated_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_errors: int = 0
    day: str = Field(default="", max_length=10)
    day_new: int = 0
    day_updated: int = 0
    day_errors: int = 0
    day_quarantined: int = 0


class QuarantineEntry(SQLModel, table=True):
    """A payload that could not be ingested as it is, kept with the reason, for a person to decide.

    The payload is stored raw (exactly as received); it is cleaned only when shown. ``identity`` is
    a hash of (connector, external id, payload): the same payload quarantined again is this row
    with ``attempts`` + 1, not a new row. States: open → retried / discarded / resolved.
    """

    __tablename__ = "quarantine"
    __table_args__ = (
        Index("ix_quarantine_state_connector", "state", "connector"),
        Index("ix_quarantine_external", "channel", "shop_code", "external_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    identity: str = Field(max_length=64, unique=True)
    connector: str = Field(max_length=96)
    channel: str = Field(max_length=32)
    shop_code: str = Field(max_length=64)
    external_id: str | None = Field(default=None, max_length=128)
    payload: str = ""
    reason: str = ""
    code: str = Field(default="invalid", max_length=32)
    first_seen: datetime
    last_seen: datetime
    attempts: int = 1
    state: str = Field(default="open", max_length=12)
    resolved_by: str | None = Field(default=None, max_length=96)
    resolved_at: datetime | None = None


class SyncLease(SQLModel, table=True):
    """Who may sync this database: one holder at a time until ``expires_at`` (renewed while alive)."""

    __tablename__ = "sync_lease"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    acquired_at: datetime
    expires_at: datetime
