"""The access log: who signed in, saw, exported or tried what — append-only and hash-chained.

The timeline records every change to an order; this log records access: sign-ins and failed PINs,
reveals of masked customer data, exports, operator changes and refused actions (:data:`KINDS`).

Each record's ``hash`` is SHA-256 over a canonical encoding (:func:`record_hash`) of its id, time
(UTC, ISO, microseconds), operator, kind, order, field, reason, detail and ``prev_hash`` — the hash
of the record before it (64 zeros for the first). Ids are consecutive from 1 (given here, not by
the database, so the hash can cover them). So:

* a changed record no longer matches its own hash (``edited``);
* a deleted record leaves a gap in the ids (``missing``);
* records moved, renumbered or replaced with recomputed hashes break a link (``reordered``).

:func:`verify` walks the whole log in chunks (one snapshot per chunk: the app keeps writing
meanwhile) and names the first record that is wrong. The database refuses UPDATE and DELETE on
the table (triggers, migration 0005). A chain without a secret cannot stop someone who owns the
file from rewriting it *whole* — or from cutting records off its end: compare the last record's
hash (``deskapp audit verify`` prints it) with one noted earlier to catch that.

Appending reads the last record and inserts the next inside one write transaction: SQLite's
``BEGIN IMMEDIATE`` already serialises writers; on PostgreSQL a transaction-scoped advisory lock is
taken first so two hosts cannot fork the chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from db import lazy
from db.reads import utc
from db.sanitize import clean_text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

#: What the log records.
KINDS: tuple[str, ...] = (
    "reveal", "sign_in", "sign_in_failed", "pin_locked", "sign_out", "switch_user", "idle_lock", "export",
    "operator_added", "operator_disabled", "pin_reset", "refused",
)
#: ``prev_hash`` of the first record.
GENESIS = "0" * 64
#: PostgreSQL advisory lock key held while a record is appended ("alog").
PG_ACCESS_LOCK = 0x616C6F67
#: Records read per snapshot by :func:`verify`.
CHUNK = 5000

_COLUMNS = "id, at, operator_id, kind, order_id, field, reason, detail, prev_hash, hash"


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """One access-log record as stored (``detail`` decoded)."""

    id: int
    at: datetime
    operator_id: str
    kind: str
    order_id: int | None
    field: str | None
    reason: str
    detail: dict | None
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditCheck:
    """What :func:`verify` found.

    ``ok``: every record matches its hash and its link; ``checked``: records read;
    ``first_bad_id``: the first record that is wrong; ``problem``: ``edited``, ``missing`` (deleted:
    the ids jump) or ``reordered`` (a broken link: moved, renumbered or replaced);
    ``last_id`` / ``last_hash``: the newest good record (note it down to catch a cut-off end).
    """

    ok: bool
    checked: int
    first_bad_id: int | None = None
    problem: str | None = None
    last_id: int | None = None
    last_hash: str = GENESIS

    def text(self, lang: str = "zh") -> str:
        """One plain line: 「审计日志完好：N 条」 or the first broken record and what is wrong with it."""
        zh = lang == "zh"
        if self.ok:
            return f"审计日志完好：{self.checked} 条" if zh else f"Audit log intact: {self.checked} records"
        what = {
            "edited": ("内容被改过（与它的哈希不符）", "its content was changed (it no longer matches its hash)"),
            "missing": ("之前的记录被删除了（编号不连续）", "a record before it was deleted (the ids jump)"),
            "reordered": ("链接断开：记录被移动、重新编号或替换",
                          "the chain is broken: records were moved, renumbered or replaced"),
        }.get(self.problem or "", (self.problem or "", self.problem or ""))[0 if zh else 1]
        if zh:
            return f"审计日志已被篡改：第 {self.first_bad_id} 条记录{what}（之前 {self.checked - 1} 条完好）"
        return f"Audit log tampered with: record {self.first_bad_id}: {what} ({self.checked - 1} records before it are intact)"


def _canonical_detail(detail: Any) -> Any:
    """The detail as it will read back from a JSON column (keys as text, tuples as lists)."""
    if detail is None:
        return None
    return json.loads(json.dumps(detail, ensure_ascii=False))


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


def record_hash(record_id: int, at: datetime, operator_id: str, kind: str, order_id: int | None,
                field: str | None, reason: str, detail: Any, prev_hash: str) -> str:
    """SHA-256 (hex) over the canonical JSON of one record's content and the previous hash:
    ``[id, at (UTC ISO, microseconds), operator_id, kind, order_id, field, reason, detail, prev_hash]``
    with sorted keys, no spaces, UTF-8."""
    return _digest(record_id, _iso(at), operator_id, kind, order_id, field, reason, detail, prev_hash)


def _digest(record_id: int, at_iso: str, operator_id: str, kind: str, order_id: int | None, field: str | None,
            reason: str, detail: Any, prev_hash: str) -> str:
    body = _ENCODE([record_id, at_iso, operator_id, kind, order_id, field, reason, detail, prev_hash])
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _at_iso(value: datetime | str) -> str:
    """:func:`_iso` of a stored time; SQLite's naive-UTC text ``YYYY-MM-DD HH:MM:SS.ffffff`` is
    rewritten as text (parsing a million datetimes is most of a verify)."""
    if isinstance(value, str) and len(value) == 26 and value[10] == " ":
        return f"{value[:10]}T{value[11:]}+00:00"
    return _iso(utc(value))


async def append_access(conn: AsyncConnection, operator_id: str, kind: str, *, order_id: int | None = None,
                        field: str | None = None, reason: str = "", detail: dict | None = None,
                        at: datetime | None = None) -> int:
    """Append one chained record inside the caller's write transaction; returns its id.

    For a caller already inside ``store.write()``; otherwise use :func:`log_access`.
    """
    from sqlalchemy import insert, text

    from db.models import AccessLog

    if kind not in KINDS:
        raise ValueError(f"unknown access-log kind {kind!r}")
    at = at or datetime.now(UTC)
    if at.utcoffset() is None:
        raise ValueError("the access-log time needs a zone")
    at = at.astimezone(UTC)
    operator_id = clean_text(operator_id)[:64]
    field = (clean_text(field)[:64] or None) if field is not None else None
    reason = clean_text(reason, multiline=True)
    detail = _canonical_detail(detail)
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"SELECT pg_advisory_xact_lock({PG_ACCESS_LOCK})"))
    last = (await conn.execute(text("SELECT id, hash FROM access_log ORDER BY id DESC LIMIT 1"))).first()
    record_id, prev = (last[0] + 1, last[1]) if last is not None else (1, GENESIS)
    digest = record_hash(record_id, at, operator_id, kind, order_id, field, reason, detail, prev)
    await conn.execute(insert(AccessLog.__table__).values(
        id=record_id, at=at, operator_id=operator_id, kind=kind, order_id=order_id, field=field, reason=reason,
        detail=detail, prev_hash=prev, hash=digest,
    ))
    return record_id


async def log_access(store, operator_id: str, kind: str, *, order_id: int | None = None,
                     field: str | None = None, reason: str = "", detail: dict | None = None,
                     at: datetime | None = None) -> int:
    """Append one chained record in its own write transaction (``store.write()``); returns its id.

    ``store``: a ``db.store.Store`` or a ``db.lazy.LazyStore`` (which then finishes opening).
    Never call it inside another ``store.write()`` of the same Store: use :func:`append_access`.
    """
    full = await lazy.full(store)
    async with full.write() as conn:
        return await append_access(conn, operator_id, kind, order_id=order_id, field=field, reason=reason,
                                   detail=detail, at=at)


# -- reading -----------------------------------------------------------------------------------


def _record(row: tuple) -> AccessRecord:
    detail = row[7]
    if isinstance(detail, str):  # JSON handed back as text
        detail = json.loads(detail)
    return AccessRecord(int(row[0]), utc(row[1]), row[2], row[3], row[4], row[5], row[6] or "", detail,
                        row[8], row[9])


def _chunk(q, after: int, limit: int) -> list[tuple[int, str, str, str]]:
    """The next records after ``after`` as (id, hash recomputed, prev_hash, hash stored).

    Hashed here, inside the read (on SQLite, the Reader's thread): the event loop stays free.
    """
    out = []
    for record_id, at, operator_id, kind, order_id, field, reason, detail, prev, stored in q(
        f"SELECT {_COLUMNS} FROM access_log WHERE id > :after ORDER BY id LIMIT :n", {"after": after, "n": limit},
    ):
        if isinstance(detail, str):  # JSON handed back as text
            detail = json.loads(detail)
        digest = _digest(record_id, _at_iso(at), operator_id, kind, order_id, field, reason or "", detail, prev)
        out.append((record_id, digest, prev, stored))
    return out


def _recent(q, limit: int, kind: str | None, operator: str | None) -> list[AccessRecord]:
    where, params = [], {"n": limit}
    if kind:
        where.append("kind = :kind")
        params["kind"] = kind
    if operator:
        where.append("operator_id = :op")
        params["op"] = operator
    sql = f"SELECT {_COLUMNS} FROM access_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return [_record(r) for r in q(sql + " ORDER BY id DESC LIMIT :n", params)]


async def verify(store, *, chunk: int = CHUNK) -> AuditCheck:
    """Check every record against its hash and its link to the one before, oldest first.

    Streams the log ``chunk`` records per read snapshot (fine for millions); stops at the first
    record that is wrong.
    """
    checked, prev_id, prev_hash = 0, 0, GENESIS
    while True:
        records = await lazy.read(store, _chunk, prev_id, chunk)
        if not records:
            return AuditCheck(True, checked, last_id=prev_id or None, last_hash=prev_hash)
        for record_id, digest, link, stored in records:
            checked += 1
            if digest != stored:
                problem = "edited"
            elif record_id != prev_id + 1:
                problem = "missing"
            elif link != prev_hash:
                # Every record is whole and the ids run on, yet this one does not follow the one
                # before: records were moved, or renumbered after a deletion, or one was replaced.
                problem = "reordered"
            else:
                prev_id, prev_hash = record_id, stored
                continue
            return AuditCheck(False, checked, record_id, problem, prev_id or None, prev_hash)


async def recent(store, limit: int = 50, kind: str | None = None,
                 operator: str | None = None) -> list[AccessRecord]:
    """The newest records, newest first; only of ``kind`` / by ``operator`` when given."""
    return await lazy.read(store, _recent, limit, kind, operator)
