"""The app syncs by itself: an order created on a platform is in the lookup within 2 s.

A real Taobao emulator on a free port, a ``deskapp.toml`` in tmp pointing at it (secrets through
environment variables, as in production), the app on a fresh database with that config, polling
every second. Nothing is mocked: HTTP through httpx, a real SQLite file, the real sync runner.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from textual.widgets import Input

from connectors.emulators import RunningEmulator, start_emulator
from connectors.sync import LEASE_NAME
from db.engine import make_engine
from db.lazy import LazyStore, quick_reader
from db.ingest import lease_holder
from db.store import Store
from deskapp.__main__ import make_app
from deskapp.screens.lookup import LookupScreen
from deskapp.services.livesync import LiveSync
from deskapp.settings import Settings
from tests.appkit import OPERATOR, OPERATOR_NAME, screen_text
from widgets.header import DeskHeader
from widgets.i18n import set_language
from widgets.results import ResultsTable

#: The promise: a new platform order is findable this soon at a 1 s poll interval.
DEADLINE_S = 2.0


@pytest.fixture(autouse=True)
def chinese() -> None:
    set_language("zh")


@pytest.fixture
def taobao() -> Iterator[RunningEmulator]:
    """A Taobao emulator on real time (the runner's clock is the host's), shop live1."""
    emulator = start_emulator("taobao", 0, orders=12, seed=5, days=0.2, shops=("live1",))
    yield emulator
    emulator.stop()


def write_config(path: Path, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch, *,
                 with_unset: bool = True) -> Path:
    """A deskapp.toml for the emulator's shop: poll every second, no lag, secrets by env name;
    ``with_unset``: also a shop whose secret's variable is not set."""
    creds = emulator.credentials("live1")
    monkeypatch.setenv("LIVE_TEST_TB_SECRET", creds["app_secret"])
    monkeypatch.setenv("LIVE_TEST_TB_SESSION", creds["access_token"])
    monkeypatch.setenv("LIVE_TEST_TB_REFRESH", creds["refresh_token"])
    unset = """
[[channels.taobao.shops]]
code = "nokey"
name = "没配密钥的店"
session_env = "LIVE_TEST_TB_UNSET"
""" if with_unset else ""
    path.write_text(f"""
[sync]
poll_seconds = 1
overlap_minutes = 1
lag_minutes = 0

[channels.taobao]
base_url = "{emulator.url}"
app_key = "{creds["app_key"]}"
secret_env = "LIVE_TEST_TB_SECRET"

[[channels.taobao.shops]]
code = "live1"
name = "测试店"
session_env = "LIVE_TEST_TB_SESSION"
refresh_token_env = "LIVE_TEST_TB_REFRESH"
{unset}""", encoding="utf-8")
    return path


def _app(db: Path, sync: LiveSync, *, lazy: bool = False):  # noqa: ANN202
    """The app as ``deskapp`` opens it (``lazy``: reads from plain sqlite3, the Store behind)."""
    settings = Settings(db=str(db), operator=OPERATOR, language="zh")
    store = LazyStore(quick_reader(db), login=OPERATOR) if lazy else Store(make_engine(db))
    return make_app(store, settings, operator_name=OPERATOR_NAME, sync=sync)


async def _until(pilot, check, timeout: float) -> float:  # noqa: ANN001
    """Poll ``check()`` (pausing the pilot between tries) until it is true; the seconds it took."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "timed out"
        await pilot.pause(0.05)
    return time.monotonic() - start


@pytest.mark.parametrize("lazy", [False, True], ids=["opened", "lazy"])
async def test_a_new_platform_order_is_in_the_lookup_within_two_seconds(
    taobao: RunningEmulator, sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lazy: bool,
) -> None:
    db = tmp_path / "pool.db"
    shutil.copyfile(sqlite_template, db)
    sync = LiveSync.from_config(write_config(tmp_path / "deskapp.toml", taobao, monkeypatch))
    app = _app(db, sync, lazy=lazy)
    async with app.run_test(size=(100, 30)) as pilot:
        # The first run brings in the shop's history; the shop without its secret cannot start.
        await _until(pilot, lambda: sync.connectors["taobao:live1"].state == "ok", 20)
        assert sync.connectors["taobao:nokey"].state == "not_started"
        assert "LIVE_TEST_TB_UNSET" in (sync.connectors["taobao:nokey"].reason or "")
        assert app.sync_state.state == "failing" and app.sync_state.failing == 1
        await pilot.pause()
        assert "同步：1 个异常" in screen_text(app)  # the header says so, in plain words

        async with httpx.AsyncClient() as client:
            answer = await client.post(f"{taobao.url}/_emu/orders", json={"shop": "live1"})
        created = time.monotonic()
        (tid,) = answer.json()["ids"]
        assert isinstance(app.screen, LookupScreen)
        box = app.screen.query_one("#search", Input)
        box.value = tid
        results = app.screen.query_one(ResultsTable)

        def found() -> bool:
            if results.row_count and tid in screen_text(app):
                return True
            app.screen.search(tid)  # what the agent does: ask again
            return False

        await _until(pilot, found, 10)
        elapsed = time.monotonic() - created
        assert elapsed < DEADLINE_S, f"the new order took {elapsed:.2f} s to reach the lookup"
        store = await app.full_store()
        assert await store.order_id_by_no(tid) is not None
        assert (await lease_holder(store, LEASE_NAME)) is not None  # this app is the syncing one
    # Quitting stopped the runners and gave the lease back before the Store closed.
    assert not sync.running
    check = await Store.open(db)
    try:
        assert await lease_holder(check, LEASE_NAME) is None
    finally:
        await check.close()


async def test_a_second_terminal_shows_that_another_one_syncs(
    taobao: RunningEmulator, sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "pool.db"
    shutil.copyfile(sqlite_template, db)
    config = write_config(tmp_path / "deskapp.toml", taobao, monkeypatch, with_unset=False)
    # Another process holds the lease (its holder name is not ours).
    from datetime import timedelta

    from db.ingest import lease_acquire

    other = await Store.open(db)
    try:
        assert await lease_acquire(other, LEASE_NAME, "otherhost:1:abc", timedelta(minutes=5))
    finally:
        await other.close()
    sync = LiveSync.from_config(config)
    app = _app(db, sync)
    async with app.run_test(size=(100, 30)) as pilot:
        await _until(pilot, lambda: sync.connectors["taobao:live1"].state != "waiting", 20)
        assert sync.connectors["taobao:live1"].state == "other"
        assert sync.health.state == "other"
        await pilot.pause()
        assert app.screen.query_one(DeskHeader).sync_state == sync.health
        assert "同步：其他终端同步中" in screen_text(app)
        store = await app.full_store()
        assert await store.count_orders() == 0  # it did not sync beside the other terminal


async def test_a_config_with_problems_syncs_nothing_and_says_so(sqlite_template: Path, tmp_path: Path) -> None:
    db = tmp_path / "pool.db"
    shutil.copyfile(sqlite_template, db)
    bad = tmp_path / "deskapp.toml"
    bad.write_text('[channels.taobao]\nsecret = "literal-secret"\n', encoding="utf-8")
    sync = LiveSync.from_config(bad)
    app = _app(db, sync)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert "同步：配置有误" in screen_text(app)
        await pilot.press("f4")
        await app.workers.wait_for_complete()
        await pilot.pause()
        text = screen_text(app)
        assert "配置有误" in text and "环境变量" in text  # what is wrong, in plain words
        assert "literal-secret" not in text  # a secret is never echoed
    assert not sync.running


def test_the_health_follows_each_connectors_last_report() -> None:
    from connectors.sync import SyncReport
    from deskapp.services.livesync import DemoPlan

    sync = LiveSync(demo=DemoPlan(channels=()))
    shown: list = []
    sync.on_change = shown.append
    sync.record(SyncReport("taobao:a"))
    assert shown[-1].state == "ok" and shown[-1].last_ok is not None
    sync.record(SyncReport("pdd:b", error="the platform answered 503"))
    assert (shown[-1].state, shown[-1].failing) == ("failing", 1)
    assert sync.connectors["pdd:b"].reason == "the platform answered 503"
    sync.record(SyncReport("pdd:b"))
    assert shown[-1].state == "ok"
    count = len(shown)
    sync.record(SyncReport("taobao:a"))  # a second later, still fine: the header is not touched
    assert len(shown) == count
    for connector in ("taobao:a", "pdd:b"):
        sync.record(SyncReport(connector, skipped="another process holds the sync lease"))
    assert shown[-1].state == "other"


async def test_a_test_order_from_a_platform_is_held_by_the_checks_within_seconds(
    taobao: RunningEmulator, sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The order checks run beside the sync: a seller memo "测试单 勿发" holds the new order (异常)
    before anyone could hand it to the warehouse, and the timeline says the checks did it."""
    from sqlalchemy import text

    db = tmp_path / "pool.db"
    shutil.copyfile(sqlite_template, db)
    sync = LiveSync.from_config(write_config(tmp_path / "deskapp.toml", taobao, monkeypatch, with_unset=False))
    app = _app(db, sync)
    async with app.run_test(size=(100, 30)) as pilot:
        await _until(pilot, lambda: sync.connectors["taobao:live1"].state == "ok", 20)
        async with httpx.AsyncClient() as client:
            (tid,) = (await client.post(f"{taobao.url}/_emu/orders", json={"shop": "live1", "paid": True})).json()["ids"]
            await client.post(f"{taobao.url}/_emu/modify", json={"id": tid, "action": "memo", "text": "测试单 勿发"})
        store = await app.full_store()

        async def held() -> tuple | None:
            async with store.engine.connect() as conn:
                return (await conn.execute(text(
                    "SELECT o.status, e.actor_id FROM orders o JOIN timeline_event e ON e.order_id = o.id "
                    "WHERE o.channel_order_id = :t AND e.kind = 'held'"), {"t": tid})).first()

        start = time.monotonic()
        while (found := await held()) is None:
            assert time.monotonic() - start < 5, "the test order was not held"
            await pilot.pause(0.1)
        assert tuple(found) == ("hold", "checks")
