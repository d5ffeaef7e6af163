"""A per-order checksum over the canonical fields, so the pool can be compared with a channel exactly.

The emulators publish their ground truth as ``order id → checksum`` where the checksum is taken over
what the platform's Adapter makes of the order (:class:`db.store.NewOrder`). The same function
applied to what the pool holds (:class:`db.views.OrderCard`, whose attributes have the same names)
must give the same value once the order was ingested — a test or bench script can then compare
counts *and* contents with one dictionary comparison.

Covered: the channel order id, both status axes with their raw values, the four amounts, created /
paid / ship-by times (UTC, to the second), presale, notes, receiver and address, lines (sku, title,
quantity, price, gift, combo) and parcels (carrier, waybill, shipped time). Not covered: things the
pool adds or owns (ids, customer match, priority, tags, hold reason), the shop's display name, and
the channel's modified time (the card does not carry it). Text is compared as ``db.sanitize.clean_text``
leaves it, which is how the Store stores it; lines and parcels are compared as sets.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from db.sanitize import clean_text

#: Scalar attributes of NewOrder / OrderCard that the checksum covers.
SCALARS: tuple[str, ...] = (
    "channel_order_id",
    "status",
    "raw_status",
    "after_sale",
    "raw_after_sale",
    "total_fen",
    "paid_fen",
    "post_fee_fen",
    "discount_fen",
    "created_at",
    "paid_at",
    "ship_by",
    "presale",
    "receiver_name",
    "receiver_phone",
    "province",
    "city",
    "district",
    "address_detail",
)
_MULTILINE = ("buyer_note", "seller_memo")


def canonical(order: Any) -> dict[str, Any]:
    """The compared fields of an order (a NewOrder, an OrderCard, or anything with those attributes)."""
    out: dict[str, Any] = {}
    for name in SCALARS:
        out[name] = _value(getattr(order, name))
    for name in _MULTILINE:
        out[name] = clean_text(getattr(order, name) or "", multiline=True)
    out["lines"] = sorted(_line(line) for line in getattr(order, "lines", ()) or ())
    out["parcels"] = sorted(_parcel(parcel) for parcel in getattr(order, "parcels", ()) or ())
    return out


def order_checksum(order: Any) -> str:
    """A short hex digest of :func:`canonical` (stable across runs, processes and backends)."""
    text = json.dumps(canonical(order), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def checksums(orders: Iterable[Any]) -> dict[str, str]:
    """``channel_order_id → checksum`` for several orders."""
    return {clean_text(str(o.channel_order_id)): order_checksum(o) for o in orders}


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return _time(value)
    if isinstance(value, str):
        return clean_text(value)
    if hasattr(value, "value"):  # a StrEnum member: compare by its text
        return str(value.value)
    return value


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # the pool hands back naive UTC on some paths
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def _line(line: Any) -> tuple:
    return (
        clean_text(line.sku),
        clean_text(line.title),
        int(line.quantity),
        int(line.price_fen),
        bool(line.gift),
        clean_text(line.combo_sku or "") or "",
    )


def _parcel(parcel: Any) -> tuple:
    return (
        clean_text(parcel.carrier or ""),
        clean_text(parcel.waybill_no or ""),
        _time(parcel.shipped_at) or "",
    )
