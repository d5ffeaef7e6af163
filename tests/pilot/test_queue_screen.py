"""The warehouse queue in a running app: rules edited while it runs, scans at the bench, the board.

The app runs on a copy of the demo database with a few fresh orders, its clock fixed at the
demo's "now"; the rules file lives in ``tmp_path`` and is edited while the app runs.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from db.codes import ActorKind
from db.ingest import ingest
from db.models import Order, Parcel, TimelineEvent
from db.store import NewLine, NewOrder, Store
from db.views import Actor
from deskapp.screens.queue import QueueScreen
from deskapp.services.demo import DEMO_NOW
from tests.appkit import WAREHOUSE, app_on, screen_text
from widgets.i18n import set_language

RULES = """
[[priority]]
id = "urgent"
name = "加急"
when = 'notes.contains("{word}")'
level = "{level}"
"""


@pytest.fixture(autouse=True)
def chinese() -> None:
    set_language("zh")


def write_rules(path: Path, word: str, level: str, bump: int) -> None:
    path.write_text(RULES.format(word=word, level=level), encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))  # a later mtime, however fast


async def add_orders(path: Path) -> None:
    """Fresh orders at the demo's 'now': one the rules will care about, one ready to ship."""
    store = await Store.open(path)
    try:
        created = DEMO_NOW - timedelta(hours=2)
        await ingest(store, [
            NewOrder("taobao", "q1", "QQ-1", created, order_no="QQ-1", paid_at=created, modified_at=created,
                     buyer_note="请尽快发货", lines=[NewLine("SKU-1", "杯子", 1, 100)]),
            NewOrder("taobao", "q1", "QQ-2", created, order_no="QQ-2", paid_at=created, modified_at=created,
                     status="allocating", lines=[NewLine("SKU-2", "碗", 1, 100)]),
        ], actor=Actor(ActorKind.CONNECTOR, "taobao:q1"), at=created)
        async with store.write() as conn:
            order_id = (await conn.execute(select(Order.__table__.c.id).where(Order.__table__.c.order_no == "QQ-2"))).scalar_one()
            await conn.execute(insert(Parcel.__table__).values(order_id=order_id, warehouse="杭州仓", carrier="SF",
                                                               waybill_no="SF9000001", state="printed",
                                                               printed_at=DEMO_NOW - timedelta(hours=1)))
    finally:
        await store.close()


def line_of(app, text: str) -> str:
    return next((line for line in screen_text(app).splitlines() if text in line), "")


async def until(pilot, check, timeout: float = 10) -> float:
    """Wait (never sleep blindly) until ``check()``; return how long it took."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "timed out"
        await pilot.pause(0.05)
    return time.monotonic() - start


async def test_a_rule_change_reprioritises_the_running_queue_within_two_seconds(demo_db: Path, tmp_path: Path) -> None:
    await add_orders(demo_db)
    rules = tmp_path / "deskapp.rules.toml"
    write_rules(rules, "加急", "A", 0)
    app = app_on(demo_db)
    app.settings.rules = str(rules)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f5")
        await until(pilot, lambda: line_of(app, "QQ-1").strip().startswith("C"))

        write_rules(rules, "尽快", "S", 1)  # the team lead saves the file
        took = await until(pilot, lambda: line_of(app, "QQ-1").strip().startswith("S"))
        assert took < 2.0, f"re-prioritised after {took:.2f} s"
        assert line_of(app, "QQ-1") == screen_text(app).splitlines()[3]  # S: the top of the queue
        runner = app.queue_runner
        good = runner.service.rules.version

        write_rules(rules, "尽快", "SS", 2)  # a typo
        await until(pilot, lambda: "规则文件有错" in screen_text(app))
        assert any("SS" in n.message and "urgent" in n.message for n in app._notifications)
        assert runner.service.rules.version == good  # the broken file was read and not taken
        assert line_of(app, "QQ-1").strip().startswith("S")  # the old rules keep working

        write_rules(rules, "尽快", "B", 3)  # fixed
        await until(pilot, lambda: line_of(app, "QQ-1").strip().startswith("B"))
        assert "规则文件有错" not in screen_text(app)


async def _events(path: Path) -> int:
    store = await Store.open(path)
    try:
        async with store.engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(TimelineEvent.__table__))).scalar_one()
    finally:
        await store.close()


async def test_scans_at_the_bench_advance_or_refuse_loudly(demo_db: Path) -> None:
    await add_orders(demo_db)
    app = app_on(demo_db, operator=WAREHOUSE)  # warehouse staff confirm steps (db.roles)
    bells = []
    app.bell = lambda: bells.append(1)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f5")
        screen = app.screen
        assert isinstance(screen, QueueScreen) and screen.scan_box.has_focus
        await until(pilot, lambda: "QQ-2" in screen_text(app))

        await pilot.press(*"SF9000001", "enter")  # the gun: the waybill, then Enter
        await app.workers.wait_for_complete()
        await until(pilot, lambda: "拣货完成" in screen_text(app))
        assert "-ok" in screen.query_one("#q-result").classes and not bells
        await until(pilot, lambda: "已拣货" in line_of(app, "QQ-2"))
        assert screen.scan_box.value == "" and screen.scan_box.has_focus

        before = await _events(demo_db)
        await pilot.press(*"QQ-404", "enter")
        await app.workers.wait_for_complete()
        await until(pilot, lambda: "找不到" in screen_text(app))
        assert bells == [1] and "-error" in screen.query_one("#q-result").classes
        assert "-error" in screen.scan_box.classes
        assert await _events(demo_db) == before

        await pilot.press("ctrl+t", "ctrl+t", "ctrl+t", "ctrl+t")  # station: ship
        await pilot.press(*"QQ-2", "enter")  # picked, not packed: the shipping bench refuses it
        await app.workers.wait_for_complete()
        await until(pilot, lambda: "本工位只做" in screen_text(app))
        assert bells == [1, 1] and await _events(demo_db) == before


async def test_the_board_counts_add_up_to_the_queue(demo_db: Path) -> None:
    await add_orders(demo_db)
    app = app_on(demo_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5")
        await until(pilot, lambda: "QQ-1" in screen_text(app))
        await pilot.press("f5")
        await pilot.pause()
        screen = app.screen
        counts = [int(str(screen.query_one(s).render()).split()[1]) for s in ("#q-red", "#q-yellow", "#q-green")]
        assert sum(counts) == len(screen.rows) == 12
        assert f"红 {counts[0]} 黄 {counts[1]} 绿 {counts[2]}" in screen_text(app)
        await pilot.press("f7")  # one warehouse: the board follows the filter
        await pilot.pause()
        assert "仓库：" in screen_text(app) and len(screen.rows) < 12
