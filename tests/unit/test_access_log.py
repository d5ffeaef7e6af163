"""The access log: append-only in the database, chained record to record, and checked by
``deskapp audit verify`` — which passes a clean log and names the first edited, deleted or moved record.

Tests that take ``store`` run on SQLite and on PostgreSQL (see conftest).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from db.access import GENESIS, append_access, log_access, recent, record_hash, verify
from db.store import Store
from deskapp.__main__ import main

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESKAPP_LOG_FILE", str(tmp_path / "deskapp.log"))
    monkeypatch.delenv("DESKAPP_LANG", raising=False)
    monkeypatch.chdir(tmp_path)


async def _fill(store: Store, n: int = 6) -> None:
    kinds = ["sign_in", "reveal", "export", "sign_in_failed", "refused", "sign_out"]
    for i in range(n):
        await log_access(store, "li" if i % 2 else "wang", kinds[i % len(kinds)], order_id=100 + i if i % 3 else None,
                         field="phone" if kinds[i % len(kinds)] == "reveal" else None, reason=f"原因 {i}",
                         detail={"n": i, "订单": [1, 2]} if i % 2 else None, at=T0 + timedelta(minutes=i))


async def test_records_chain_and_verify_on_both_backends(store: Store) -> None:
    assert (await verify(store)).ok and (await verify(store)).checked == 0
    await _fill(store)
    result = await verify(store, chunk=4)  # several snapshots
    assert (result.ok, result.checked, result.last_id) == (True, 6, 6)
    assert result.text() == "审计日志完好：6 条"
    records = list(reversed(await recent(store, 10)))
    assert [r.id for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in pairwise(records))
    assert records[1].detail == {"n": 1, "订单": [1, 2]} and records[1].at == T0 + timedelta(minutes=1)
    assert [r.id for r in await recent(store, 10, kind="reveal")] == [2]
    assert [r.id for r in await recent(store, 2, operator="li")] == [6, 4]


async def test_the_database_refuses_to_change_or_delete_a_record(store: Store) -> None:
    await _fill(store, 2)
    for statement in ("UPDATE access_log SET reason = 'x' WHERE id = 1", "DELETE FROM access_log WHERE id = 2"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with store.write() as conn:
                await conn.execute(text(statement))
    if store.dialect == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"):
            async with store.write() as conn:
                await conn.execute(text("TRUNCATE access_log"))
    assert (await verify(store)).checked == 2


async def test_two_hosts_appending_at_once_keep_one_chain(store: Store) -> None:
    """Two Stores on one database (two terminals, or two hosts on PostgreSQL) never fork the chain."""
    other = await Store.open(store.url.render_as_string(hide_password=False) if store.dialect == "postgresql"
                             else store.url.database)
    try:
        await asyncio.gather(*(log_access(s, f"op{i}", "sign_in") for i in range(15) for s in (store, other)))
    finally:
        await other.close()
    result = await verify(store)
    assert (result.ok, result.checked) == (True, 30)


async def test_append_inside_a_callers_transaction_rolls_back_with_it(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.write() as conn:
            await append_access(conn, "li", "export", reason="导出 3 单")
            raise RuntimeError("the export failed")
    assert await recent(store) == []
    with pytest.raises(ValueError):
        await log_access(store, "li", "not_a_kind")


async def _log_file(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    store = await Store.open(path)
    try:
        await _fill(store, 6)
    finally:
        await store.close()
    return path


def _raw(path: Path) -> sqlite3.Connection:
    """The file as someone with a plain sqlite3 shell sees it."""
    return sqlite3.connect(path, isolation_level=None)


def test_a_plain_update_is_refused_by_the_trigger(tmp_path: Path) -> None:
    path = asyncio.run(_log_file(tmp_path))
    with _raw(path) as db:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE access_log SET reason = '无' WHERE id = 3")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM access_log WHERE id = 3")


def _tamper(path: Path, *statements: str) -> None:
    db = _raw(path)
    try:
        db.execute("DROP TRIGGER access_log_no_update")
        db.execute("DROP TRIGGER access_log_no_delete")
        for statement in statements:
            db.execute(statement)
    finally:
        db.close()


def test_audit_verify_passes_a_clean_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = asyncio.run(_log_file(tmp_path))
    assert main(["--db", str(path), "audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "审计日志完好：6 条"
    assert main(["--db", str(path), "--lang", "en", "audit", "verify"]) == 0
    assert capsys.readouterr().out.startswith("Audit log intact: 6 records")
    assert main(["--db", str(tmp_path / "nope.db"), "audit", "verify"]) == 2


def test_audit_verify_finds_an_edited_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = asyncio.run(_log_file(tmp_path))
    _tamper(path, "UPDATE access_log SET reason = '客户要求' WHERE id = 3")
    assert main(["--db", str(path), "audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert "第 3 条" in err and "内容被改过" in err
    result = asyncio.run(_verify(path))
    assert (result.ok, result.first_bad_id, result.problem, result.last_id) == (False, 3, "edited", 2)


def test_audit_verify_finds_a_deleted_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = asyncio.run(_log_file(tmp_path))
    _tamper(path, "DELETE FROM access_log WHERE id = 3")
    assert main(["--db", str(path), "--lang", "en", "audit", "verify"]) == 1
    assert "record 4" in capsys.readouterr().err
    result = asyncio.run(_verify(path))
    assert (result.first_bad_id, result.problem) == (4, "missing")


def test_a_forger_who_renumbers_and_rehashes_still_breaks_the_chain(tmp_path: Path) -> None:
    """Delete record 3, close the gap and recompute each moved record's own hash: the link from
    the record now numbered 3 to record 2 no longer holds."""
    path = asyncio.run(_log_file(tmp_path))
    _tamper(path, "DELETE FROM access_log WHERE id = 3", "UPDATE access_log SET id = id - 1 WHERE id > 3")
    db = _raw(path)
    try:
        for row in db.execute("SELECT id, at, operator_id, kind, order_id, field, reason, detail, prev_hash "
                              "FROM access_log WHERE id >= 3").fetchall():
            at = datetime.fromisoformat(row[1]).replace(tzinfo=UTC)
            detail = json.loads(row[7]) if row[7] else None
            db.execute("UPDATE access_log SET hash = ? WHERE id = ?",
                       (record_hash(row[0], at, row[2], row[3], row[4], row[5], row[6], detail, row[8]), row[0]))
    finally:
        db.close()
    result = asyncio.run(_verify(path))
    assert (result.ok, result.first_bad_id, result.problem) == (False, 3, "reordered")
    assert "链接断开" in result.text()


async def _verify(path: Path):
    store = await Store.open(path)
    try:
        return await verify(store)
    finally:
        await store.close()
