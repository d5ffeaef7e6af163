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

from db.fields import normalise_query, strip_country_code

_ID_LIKE = re.compile(r"^[0-9A-Za-z_\-]+$")
_PHONE_SEPARATORS = re.compile(r"[\s\-()+]")

LIMIT = 50


@dataclass(frozen=True, slots=True)
class Probe:
    """One index to ask: a kind (shown to the agent as "matched by"), its rank, SQL and values.

    ``sql`` selects one column named ``id``; its parameters are written ``:{p}name`` so that
    several probes can share one statement (see :func:`compose`).
    """

    kind: str
    rank: int
    sql: str
    params: dict


def _next_prefix(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _limited(sql: str) -> str:
    return f"{sql} LIMIT {LIMIT}"


_EXACT_NO = "SELECT id FROM orders WHERE order_no = :{p}q OR channel_order_id = :{p}q"
_EXACT_WAYBILL = "SELECT order_id AS id FROM parcel WHERE waybill_no = :{p}q"
_PREFIX_NO = _limited("SELECT id FROM orders WHERE order_no >= :{p}lo AND order_no < :{p}hi ORDER BY order_no")
_PREFIX_CHANNEL_NO = _limited(
    "SELECT id FROM orders WHERE channel_order_id >= :{p}lo AND channel_order_id < :{p}hi "
    "ORDER BY channel_order_id"
)
_PREFIX_WAYBILL = _limited(
    "SELECT order_id AS id FROM parcel WHERE waybill_no >= :{p}lo AND waybill_no < :{p}hi ORDER BY waybill_no"
)
_PHONE = _limited("SELECT id FROM orders WHERE phone_norm = :{p}q ORDER BY id DESC")
_TAIL4 = _limited("SELECT id FROM orders WHERE phone_tail4 = :{p}q ORDER BY id DESC")
_GRAM = _limited("SELECT order_id AS id FROM name_gram WHERE gram = :{p}q ORDER BY order_id DESC")
_SURNAME = _limited(
    "SELECT id FROM orders WHERE receiver_name >= :{p}lo AND receiver_name < :{p}hi ORDER BY receiver_name"
)
_FTS_SQLITE = _limited("SELECT rowid AS id FROM order_fts WHERE order_fts MATCH :{p}q ORDER BY rowid DESC")
# ILIKE: case-insensitive like SQLite's trigram tokenizer; pg_trgm indexes both.
_TRGM_PG = _limited("SELECT id FROM orders WHERE search_text ILIKE :{p}q ESCAPE '\\' ORDER BY id DESC")


def compose(found: list[Probe]) -> tuple[str, dict]:
    """All probes as one statement — one round trip — yielding ``(probe index, order id)`` rows.

    Returns SQL with ``:name`` parameters (what both ``text()`` and the sqlite3 driver take).
    """
    parts, params = [], {}
    for index, probe in enumerate(found):
        prefix = f"p{index}_"
        parts.append(f"SELECT {index} AS probe, x{index}.id FROM ({probe.sql.format(p=prefix)}) AS x{index}")
        params.update({prefix + key: value for key, value in probe.params.items()})
    return " UNION ALL ".join(parts), params


def probes(query: str, *, dialect: str, limit: int = LIMIT) -> list[Probe]:
    """The index probes that answer ``query``, best first (empty for an empty query).

    ``limit``: most ids each probe returns (``deskapp export --query`` asks for more than a lookup shows).
    """
    found = _probes(query, dialect)
    if limit == LIMIT:
        return found
    bound = f" LIMIT {LIMIT}"
    return [Probe(p.kind, p.rank, p.sql.replace(bound, f" LIMIT {int(limit)}") if p.sql.endswith(bound) else p.sql,
                  p.params) for p in found]


def _probes(query: str, dialect: str) -> list[Probe]:
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
            found.append(Probe("address", 5, _FTS_SQLITE, {"q": phrase}))
        else:
            pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            found.append(Probe("address", 5, _TRGM_PG, {"q": pattern}))
    return found
