"""Lookup by anything: what a query looks like decides which indexes answer it.

An agent types whatever the customer gives: an order number (or its start), a waybill number, a
full phone, its last four digits, a name, a piece of the address. Each kind has its own index so
every lookup stays an index seek at a million orders:

=================  ==========================================  =====
query looks like   indexes asked                                rank
=================  ==========================================  =====
digits / letters   order no., channel order id, waybill: exact  0
11-digit mobile    phone (digits of plain numbers)              1
digits / letters   order no., channel order id, waybill: prefix 2
4 digits           phone last four (also on masked numbers)     3
2-char name        name_gram                                    4
1 CJK character    receiver name prefix (surname)               4
≥ 3 characters     trigram index (FTS5 / pg_trgm)               5
=================  ==========================================  =====

Exact id matches rank first; within a kind the newest orders come first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import bindparam, select, text
from sqlalchemy.sql import Select

from db.fields import normalise_query, strip_country_code
from db.models import NameGram, Order, Parcel

_ID_LIKE = re.compile(r"^[0-9A-Za-z_\-]+$")
_PHONE_SEPARATORS = re.compile(r"[\s\-()+]")

LIMIT = 50

_o = Order.__table__.c
_p = Parcel.__table__.c
_g = NameGram.__table__.c


@dataclass(frozen=True, slots=True)
class Probe:
    """One index to ask: a kind (shown to the agent as "matched by"), its rank and statement."""

    kind: str
    rank: int
    statement: Select
    params: dict


def _next_prefix(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


_EXACT_NO = select(_o.id).where((_o.order_no == bindparam("q")) | (_o.channel_order_id == bindparam("q")))
_EXACT_WAYBILL = select(_p.order_id).where(_p.waybill_no == bindparam("q"))
_PREFIX_NO = (
    select(_o.id)
    .where(_o.order_no >= bindparam("lo"), _o.order_no < bindparam("hi"))
    .order_by(_o.order_no)
    .limit(LIMIT)
)
_PREFIX_CHANNEL_NO = (
    select(_o.id)
    .where(_o.channel_order_id >= bindparam("lo"), _o.channel_order_id < bindparam("hi"))
    .order_by(_o.channel_order_id)
    .limit(LIMIT)
)
_PREFIX_WAYBILL = (
    select(_p.order_id)
    .where(_p.waybill_no >= bindparam("lo"), _p.waybill_no < bindparam("hi"))
    .order_by(_p.waybill_no)
    .limit(LIMIT)
)
_PHONE = select(_o.id).where(_o.phone_norm == bindparam("q")).order_by(_o.id.desc()).limit(LIMIT)
_TAIL4 = select(_o.id).where(_o.phone_tail4 == bindparam("q")).order_by(_o.id.desc()).limit(LIMIT)
_GRAM = select(_g.order_id).where(_g.gram == bindparam("q")).order_by(_g.order_id.desc()).limit(LIMIT)
_SURNAME = (
    select(_o.id)
    .where(_o.receiver_name >= bindparam("lo"), _o.receiver_name < bindparam("hi"))
    .order_by(_o.receiver_name)
    .limit(LIMIT)
)
_FTS_SQLITE = text(
    "SELECT rowid FROM order_fts WHERE order_fts MATCH :q ORDER BY rowid DESC LIMIT :limit"
)
_TRGM_PG = text(  # ILIKE: case-insensitive like SQLite's trigram tokenizer; pg_trgm indexes both
    "SELECT id FROM orders WHERE search_text ILIKE :q ESCAPE '\\' ORDER BY id DESC LIMIT :limit"
)


def probes(query: str, *, dialect: str) -> list[Probe]:
    """The index probes that answer ``query``, best first (empty for an empty query)."""
    q = normalise_query(query)
    if not q:
        return []
    found: list[Probe] = []
    compact = _PHONE_SEPARATORS.sub("", q)
    # The digits of a phone as typed (138 1234 5678, +86 138…, 0571-88886666), as stored in phone_norm.
    phone = strip_country_code(compact) if compact.isdigit() and len(compact) >= 7 else None
    if compact.isdigit() and len(compact) in (11, 13) and q != compact:
        q = compact  # a phone typed with spaces or dashes: 138 1234 5678
    if _ID_LIKE.match(q):
        upper = q.upper()
        ids = {q, upper}
        for value in ids:
            found.append(Probe("order_no", 0, _EXACT_NO, {"q": value}))
            found.append(Probe("waybill", 0, _EXACT_WAYBILL, {"q": value}))
        if phone:
            found.append(Probe("phone", 1, _PHONE, {"q": phone}))
        if len(q) >= 3:
            for value in ids:
                bounds = {"lo": value, "hi": _next_prefix(value)}
                found.append(Probe("order_no", 2, _PREFIX_NO, bounds))
                found.append(Probe("order_no", 2, _PREFIX_CHANNEL_NO, bounds))
                found.append(Probe("waybill", 2, _PREFIX_WAYBILL, bounds))
        if q.isdigit() and len(q) == 4:
            found.append(Probe("phone_tail4", 3, _TAIL4, {"q": q}))
        if q.isdigit():
            return found
    elif phone:  # (0571) 8888 6666: a phone, not a name or an address
        return [Probe("phone", 1, _PHONE, {"q": phone})]
    if len(q) == 1:
        found.append(Probe("name", 4, _SURNAME, {"lo": q, "hi": _next_prefix(q)}))
    elif len(q) == 2:
        found.append(Probe("name", 4, _GRAM, {"q": q}))
    if len(q) >= 3:
        if dialect == "sqlite":
            phrase = '"' + q.replace('"', '""') + '"'
            found.append(Probe("address", 5, _FTS_SQLITE, {"q": phrase, "limit": LIMIT}))
        else:
            pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            found.append(Probe("address", 5, _TRGM_PG, {"q": pattern, "limit": LIMIT}))
    return found
