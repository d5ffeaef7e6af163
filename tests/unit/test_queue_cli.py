"""``deskapp queue``: the queue for scripts — order, JSON shape, rules applied on request, exit codes."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.codes import ActorKind
from db.ingest import ingest
from db.models import TimelineEvent
from db.store import NewLine, NewOrder, Store
from db.views import Actor
from deskapp.__main__ import main

RULES = """
[[priority]]
id = "urgent"
name = "加急"
when = 'notes.contains("加急")'
level = "A"

[[tag]]
id = "fresh"
when = 'skus.exists(s, s.startsWith("FRESH-"))'
text = "生鲜"
"""


@pytest.fixture(autouse=True)
def _environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESKAPP_LOG_FILE", str(tmp_path / "deskapp.log"))
    monkeypatch.delenv("DESKAPP_LANG", raising=False)
    monkeypatch.delenv("DESKAPP_RULES", raising=False)
    monkeypatch.chdir(tmp_path)  # no deskapp.rules.toml or deskapp.toml found by accident


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    path = tmp_path / "orders.db"
    now = datetime.now(UTC)

    def order(no: str, hours_ago: float, **fields) -> NewOrder:
        created = now - timedelta(hours=hours_ago)
        return NewOrder("taobao", "tb1", no, created, order_no=no, paid_at=created, modified_at=created,
                        lines=fields.pop("lines", [NewLine("SKU-1", "杯子", 1, 100)]), **fields)

    async def build() -> None:
        store = await Store.open(path)
        try:
            await ingest(store, [
                order("Q-1", 5), order("Q-2", 1, buyer_note="加急"), order("Q-3", 47, lines=[NewLine("FRESH-1", "鱼")]),
                order("[red]Q-4[/red]", 3, status="allocating"), order("Q-5", 2, status="shipped"),
            ], actor=Actor(ActorKind.CONNECTOR, "taobao:tb1"), at=now)
        finally:
            await store.close()

    asyncio.run(build())
    return path


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(["queue", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def _rule_events(path: Path) -> int:
    async def count() -> int:
        store = await Store.open(path)
        try:
            async with store.engine.connect() as conn:
                t = TimelineEvent.__table__.c
                return (await conn.execute(select(func.count()).where(t.actor_kind == "rule"))).scalar_one()
        finally:
            await store.close()

    return asyncio.run(count())


def test_apply_rules_then_print_the_queue_as_json(pool: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")

    code, data = _json(capsys, "--db", str(pool), "--rules", str(rules), "--apply-rules")

    assert code == 0
    orders = data["orders"]
    assert [o["order_no"] for o in orders] == ["Q-2", "Q-3", "Q-1", "[red]Q-4[/red]"]  # A, then C by deadline
    assert orders[0]["priority"] == "A" and orders[0]["why"] == "加急（urgent）" and orders[1]["tags"] == ["生鲜"]
    assert orders[1]["colour"] == "red" and orders[1]["minutes_left"] < 120  # 1 h left of 48, not printed
    assert sum(data["counts"].values()) == data["total"] == 4
    assert len(data["rules_version"]) == 12  # the rules file's content hash
    assert not any("receiver" in o for o in orders)
    assert _rule_events(pool) == 4

    # without --apply-rules: the stored queue, the same order; nothing written
    code, again = _json(capsys, "--db", str(pool))
    assert code == 0 and [o["order_no"] for o in again["orders"]] == [o["order_no"] for o in orders]
    assert _rule_events(pool) == 4


def test_the_table_prints_untrusted_text_as_text(pool: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["queue", "--db", str(pool), "--progress", "allocating"])
    out = capsys.readouterr().out
    assert code == 0
    assert "[red]Q-4[/red]" in out and "Q-1" not in out
    assert out.splitlines()[0].startswith("待处理 1 单")


def test_a_broken_rules_file_is_explained_and_nothing_is_applied(pool: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.replace('level = "A"', 'level = "AA"'), encoding="utf-8")

    code = main(["queue", "--db", str(pool), "--rules", str(rules), "--apply-rules", "--json"])

    captured = capsys.readouterr()
    assert code == 1
    assert "AA" in captured.err and "urgent" in captured.err and "Traceback" not in captured.err
    assert json.loads(captured.out)["total"] == 4
    assert _rule_events(pool) == 0


def test_no_such_database_is_one_line_and_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.db"
    assert main(["queue", "--db", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "Traceback" not in err and not missing.exists()
