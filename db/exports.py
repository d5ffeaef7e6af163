"""The read side of ``deskapp export``: the orders a filter selects, a chunk at a time, masked.

Reads follow ``db.reads``: every function takes ``q(sql, params) -> list[tuple]`` and runs inside
one read snapshot (``db.lazy.read``). An export of 100,000 orders is read in chunks of
:data:`CHUNK` orders by id (keyset: ``id > last id``), each chunk in its own short snapshot, so
neither the whole result nor a long read transaction is ever held (a held snapshot stops WAL
checkpoints; see PITFALLS.md). Orders changed while an export runs appear as each chunk read them.

Customer data comes masked (``db.privacy``) unless the caller, having checked ``export_revealed``,
asks for it unmasked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from db import search
from db.privacy import mask_order
from db.queue import _param_time
from db.reads import Query, utc

#: Orders per chunk (and per ``IN (...)`` list of a chunk's lines and parcels).
CHUNK = 1000
#: Most orders a ``--query`` export takes from the search indexes.
QUERY_LIMIT = 100_000

_COLUMNS = (
    "o.id, o.order_no, o.channel, s.name, o.status, o.after_sale, o.created_at, o.paid_at, o.total_fen, "
    "o.paid_fen, o.post_fee_fen, o.discount_fen, o.receiver_name, o.receiver_phone, o.province, o.city, "
    "o.district, o.address_detail, o.buyer_note, o.seller_memo, o.hold_reason, o.tags"
)


class ExportRow(NamedTuple):
    """One order as an export writes it (times aware UTC; customer data masked unless revealed)."""

    id: int
    order_no: str
    channel: str
    shop: str
    status: str
    after_sale: str
    created_at: datetime | None
    paid_at: datetime | None
    total_fen: int
    paid_fen: int
    post_fee_fen: int
    discount_fen: int
    receiver_name: str
    receiver_phone: str
    province: str
    city: str
    district: str
    address_detail: str
    buyer_note: str
    seller_memo: str
    hold_reason: str
    tags: tuple[str, ...]
    lines: tuple[tuple[str, str, int], ...]  # (sku, title, quantity)
    parcels: tuple[tuple[str, str], ...]  # (carrier, waybill no.)


@dataclass(frozen=True, slots=True)
class ExportFilter:
    """Which orders: ``status`` / ``channel`` exactly; created in ``[since, until)`` (aware times)."""

    status: str | None = None
    channel: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self, sqlite: bool) -> tuple[str, dict]:
        """SQL conditions (``AND …``, possibly empty) and their parameters."""
        parts, params = [], {}
        if self.status:
            parts.append("o.status = :f_status")
            params["f_status"] = self.status
        if self.channel:
            parts.append("o.channel = :f_channel")
            params["f_channel"] = self.channel
        if self.since is not None:
            parts.append("o.created_at >= :f_since")
            params["f_since"] = _param_time(self.since, sqlite)
        if self.until is not None:
            parts.append("o.created_at < :f_until")
            params["f_until"] = _param_time(self.until, sqlite)
        return "".join(f" AND {p}" for p in parts), params


def matching_ids(q: Query, query: str, dialect: str, limit: int = QUERY_LIMIT) -> list[int]:
    """Ids of the orders a lookup of ``query`` finds (every index kind, up to ``limit`` each), ascending."""
    probes = search.probes(query, dialect=dialect, limit=limit)
    if not probes:
        return []
    sql, params = search.compose(probes)
    return sorted({order_id for _, order_id in q(sql, params)})


def count(q: Query, where: ExportFilter, sqlite: bool, ids: Sequence[int] | None = None) -> int:
    """How many orders the export will write (for its progress line)."""
    conditions, params = where.where(sqlite)
    if ids is None:
        return q(f"SELECT COUNT(*) FROM orders o WHERE 1 = 1{conditions}", params)[0][0]
    total = 0
    for start in range(0, len(ids), CHUNK):
        names, id_params = _in(ids[start:start + CHUNK])
        total += q(f"SELECT COUNT(*) FROM orders o WHERE o.id IN ({names}){conditions}",
                   {**params, **id_params})[0][0]
    return total


def chunk(q: Query, where: ExportFilter, sqlite: bool, *, after: int = 0, ids: Sequence[int] | None = None,
          reveal: bool = False, limit: int | None = None) -> list[ExportRow]:
    """The next ``limit`` (default :data:`CHUNK`) orders after id ``after`` — or the orders ``ids``
    (at most :data:`CHUNK` of them) — by id."""
    limit = limit or CHUNK
    conditions, params = where.where(sqlite)
    base = f"SELECT {_COLUMNS} FROM orders o JOIN shop s ON s.id = o.shop_id WHERE "
    if ids is None:
        rows = q(base + f"o.id > :after{conditions} ORDER BY o.id LIMIT {int(limit)}", {**params, "after": after})
    else:
        names, id_params = _in(ids)
        rows = q(base + f"o.id IN ({names}){conditions} ORDER BY o.id", {**params, **id_params})
    if not rows:
        return []
    names, id_params = _in([row[0] for row in rows])
    lines: dict[int, list[tuple[str, str, int]]] = {}
    for order_id, sku, title, quantity in q(
        f"SELECT order_id, sku, title, quantity FROM order_line WHERE order_id IN ({names}) ORDER BY id", id_params
    ):
        lines.setdefault(order_id, []).append((sku, title or "", quantity or 0))
    parcels: dict[int, list[tuple[str, str]]] = {}
    for order_id, carrier, waybill in q(
        f"SELECT order_id, carrier, waybill_no FROM parcel WHERE order_id IN ({names}) ORDER BY id", id_params
    ):
        parcels.setdefault(order_id, []).append((carrier or "", waybill or ""))
    return [_row(row, lines.get(row[0], ()), parcels.get(row[0], ()), reveal) for row in rows]


def _row(row: tuple, lines: Sequence, parcels: Sequence, reveal: bool) -> ExportRow:
    (oid, no, channel, shop, status, after_sale, created, paid, total, paid_fen, post_fee, discount, name, phone,
     province, city, district, detail, note, memo, hold, tags) = row
    person = {"receiver_name": name or "", "receiver_phone": phone or "", "province": province, "city": city,
              "district": district, "address_detail": detail or "", "buyer_note": note or "",
              "seller_memo": memo or "", "hold_reason": hold or ""}
    if not reveal:
        mask_order(person)
    name, phone, detail = person["receiver_name"], person["receiver_phone"], person["address_detail"]
    note, memo, hold = person["buyer_note"], person["seller_memo"], person["hold_reason"]
    if isinstance(tags, str):
        tags = json.loads(tags)
    return ExportRow(
        oid, no, channel, shop or "", status, after_sale or "", utc(created), utc(paid), total or 0, paid_fen or 0,
        post_fee or 0, discount or 0, name, phone, province or "", city or "", district or "", detail, note, memo,
        hold, tuple(str(t) for t in tags or ()), tuple(lines), tuple(parcels),
    )


def _in(ids: Sequence[int]) -> tuple[str, dict[str, int]]:
    params = {f"i{n}": int(value) for n, value in enumerate(ids)}
    return ", ".join(f":{name}" for name in params), params
