"""Escalation in running apps: two sessions on one database, one sender, a toast in each; the S
breaker on the queue screen; a broken escalation file said once.

Each app runs on its own small SQLite file under ``tmp_path`` with a clock the test moves; the
group robots are the local receiver (connectors/emulators/robots.py) over real HTTP.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import stamina

from connectors.emulators.robots import RobotReceiver, serve_robots
from db.codes import ActorKind
from db.engine import make_engine
from db.ingest import ingest, lease_acquire
from db.store import NewLine, NewOrder, Store
from db.views import Actor
from deskapp.__main__ import make_app
from deskapp.services.queue import S_BREAKER_LEASE
from deskapp.settings import Settings
from tests.appkit import OPERATOR, OPERATOR_NAME, screen_text
from widgets.i18n import set_language

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)  # 14:00 in China

ESCALATION = """
[escalation]
interval_seconds = 3600
[escalation.robots.floor]
kind = "wecom"
webhook_env = "TEST_ESC_FLOOR"
[escalation.people.lead]
name = "王组长"
robot = "floor"
[[escalation.levels]]
name = "组长"
after_minutes = { S = 30 }
notify = ["lead"]
"""


@pytest.fixture(autouse=True)
def chinese() -> None:
    set_language("zh")


@pytest.fixture(autouse=True)
def no_retry_waits() -> object:
    with stamina.set_testing(True, attempts=3):
        yield


async def pool(sqlite_template: Path, tmp_path: Path) -> Path:
    """A migrated database with one S order paid 20 minutes before T0 (level 1 is at 30)."""
    path = tmp_path / "pool.db"
    shutil.copyfile(sqlite_template, path)
    store = await Store.open(path)
    try:
        paid = T0 - timedelta(minutes=20)
        await ingest(store, [NewOrder("taobao", "tb1", "TB[b]77", paid, order_no="TB[b]77", paid_at=paid,
                                      modified_at=paid, priority="S", lines=[NewLine("SKU-1", "杯子", 1, 100)])],
                     actor=Actor(ActorKind.CONNECTOR, "taobao:tb1"), at=paid)
        await store.ensure_operator(OPERATOR, OPERATOR_NAME, role="supervisor")
    finally:
        await store.close()
    return path


def session(path: Path, escalation: Path, clock):
    settings = Settings(db=str(path), operator=OPERATOR, language="zh", escalation=str(escalation))
    return make_app(Store(make_engine(path)), settings, operator_name=OPERATOR_NAME, clock=clock)


async def until(pilot, check, timeout: float = 10) -> None:
    """Wait (never sleep blindly) until ``check()``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "timed out"
        await pilot.pause(0.02)


def toasts(app) -> list[tuple[str, str, str]]:
    return [(str(n.title), str(n.message), n.severity) for n in app._notifications]


def checked(app) -> bool:
    """The app's escalation has made its first check."""
    runner = getattr(app, "escalation", None)
    return runner is not None and runner.ticks >= 1 and not runner._lock.locked()


async def test_two_sessions_one_sender_a_toast_in_each_and_the_breaker_on_the_queue(
        sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = await pool(sqlite_template, tmp_path)
    escalation = tmp_path / "deskapp.escalation.toml"
    escalation.write_text(ESCALATION, encoding="utf-8")
    now = [T0]
    receiver = RobotReceiver()
    async with serve_robots(receiver) as url:
        bot = receiver.add("wecom")
        monkeypatch.setenv("TEST_ESC_FLOOR", receiver.webhook(url, bot))
        first = session(path, escalation, lambda: now[0])
        async with first.run_test(size=(100, 30)) as pilot1:
            await until(pilot1, lambda: checked(first))
            assert first.escalation.holding  # the first session on the database sends
            second = session(path, escalation, lambda: now[0])
            async with second.run_test(size=(100, 30)) as pilot2:
                await until(pilot2, lambda: checked(second))
                assert not second.escalation.holding

                now[0] = T0 + timedelta(minutes=15)  # the S order has waited 35 minutes
                await first.escalation.tick()
                await second.escalation.tick()

                expected = ("一级升级（组长）：1 张加急单超时未发货", "TB[b]77；已通知 王组长", "information")
                await until(pilot1, lambda: expected in toasts(first))
                await until(pilot2, lambda: expected in toasts(second))
                (message,) = receiver.messages("wecom")  # once, by the sender
                assert "TB[b]77" in message["text"]["content"]

                # another process trips the S breaker: the queue says so while it lasts
                store = await second.full_store()
                assert await lease_acquire(store, S_BREAKER_LEASE, "sync:1", timedelta(minutes=15), now=now[0])
                await pilot2.press("f5")
                await until(pilot2, lambda: "S 熔断中 至 14:30" in screen_text(second))
                now[0] = T0 + timedelta(minutes=31)
                await until(pilot2, lambda: "S 熔断中" not in screen_text(second) and "待处理" in screen_text(second))
        assert len(receiver.received) == 1


async def test_a_broken_escalation_file_is_said_once_and_the_app_runs_without_it(
        sqlite_template: Path, tmp_path: Path) -> None:
    path = await pool(sqlite_template, tmp_path)
    escalation = tmp_path / "deskapp.escalation.toml"
    escalation.write_text(ESCALATION.replace("S = 30", "S = 30, X = 5"), encoding="utf-8")
    app = session(path, escalation, lambda: T0 + timedelta(hours=2))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: hasattr(app, "escalation") and toasts(app))
        await pilot.pause()
        ((title, message, severity),) = toasts(app)
        assert severity == "warning" and title == "升级提醒配置有误"
        assert "未知的优先级「X」" in message and str(escalation) in message
        assert app.escalation is None  # no worker: nothing checks, nothing sends
        assert "订单" in screen_text(app)  # the desk works as ever
