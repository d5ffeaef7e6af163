"""Read models: what the Store returns to screens, CLI and scripts.

Plain frozen dataclasses — never ORM rows, never a session — so nothing lazy-loads after a session
closed and widgets can hold them freely. Text in them is as stored (already cleaned at ingest);
renderers still clean it again and never parse it as markup. Customer data in them is masked
(``db.privacy``: ``138****1234``, ``张*``, the address to the district) unless a caller asked
``Store.order_card`` to reveal a field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import NamedTuple

from db.sanitize import clean_text


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is writing: an operator, a connector, a rule, a carrier or the system."""

    kind: str
    id: str


class OrderHit(NamedTuple):
    """One row of a lookup result (a NamedTuple: fifty are built on every keystroke)."""

    id: int
    order_no: str
    channel: str
    shop_name: str
    status: str
    after_sale: str
    receiver_name: str
    receiver_phone: str
    city: str
    district: str
    paid_at: datetime | None
    created_at: datetime
    total_fen: int
    matched_by: str  # order_no, phone, phone_tail4, name, waybill, address


@dataclass(frozen=True, slots=True)
class LineView:
    """One order line."""

    id: int
    sku: str
    title: str
    quantity: int
    price_fen: int
    gift: bool
    combo_sku: str | None


@dataclass(frozen=True, slots=True)
class ParcelView:
    """One parcel with the lines it carries."""

    id: int
    warehouse: str
    carrier: str
    waybill_no: str | None
    state: str
    printed_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    last_track_at: datetime | None
    last_track_text: str
    lines: tuple[tuple[str, int], ...]  # (sku, quantity)


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One step in an order's history."""

    at: datetime
    actor_kind: str
    actor_id: str
    actor_name: str  # operator display name where known
    kind: str
    from_value: str | None
    to_value: str | None
    message: str


@dataclass(frozen=True, slots=True)
class OtherOrder:
    """Another order of the same customer, on any channel."""

    id: int
    order_no: str
    channel: str
    status: str
    after_sale: str
    paid_at: datetime | None
    total_fen: int


@dataclass(frozen=True, slots=True)
class CustomerView:
    """The customer behind an order, across channels."""

    id: int
    name: str
    match_reason: str
    order_count: int
    return_count: int  # all time
    returns_30d: int
    channels: tuple[str, ...]
    others: tuple[OtherOrder, ...]


@dataclass(frozen=True, slots=True)
class OrderCard:
    """Everything the lifecycle card shows about one order."""

    id: int
    order_no: str
    channel: str
    channel_order_id: str
    shop_name: str
    status: str
    raw_status: str
    after_sale: str
    raw_after_sale: str
    hold_reason: str | None
    total_fen: int
    paid_fen: int
    post_fee_fen: int
    discount_fen: int
    created_at: datetime
    paid_at: datetime | None
    ship_by: datetime | None
    priority: str
    tags: tuple[str, ...]
    presale: bool
    buyer_note: str
    seller_memo: str
    receiver_name: str
    receiver_phone: str
    phone_kind: str
    province: str
    city: str
    district: str
    address_detail: str
    lines: tuple[LineView, ...]
    parcels: tuple[ParcelView, ...]
    timeline: tuple[TimelineItem, ...]
    customer: CustomerView | None = None
    extra: dict = field(default_factory=dict)
    priority_why: str | None = None  # the rule (and rules-file version) that set the priority
    check_codes: tuple[str, ...] = ()  # the problems the order checks last found (address_conflict …)

    def to_json(self) -> dict:
        """A JSON-ready dict (times as ISO strings) for ``deskapp show --json``."""
        return _jsonable(asdict(self))


def _jsonable(value):  # noqa: ANN001, ANN202
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return clean_text(value, multiline=True)  # JSON goes to terminals and scripts too
    return value


def hit_to_json(hit: OrderHit) -> dict:
    """A JSON-ready dict of a lookup hit."""
    return _jsonable(hit._asdict())
