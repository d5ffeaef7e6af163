"""Background sync keeps what the agent looks at fresh, without moving the agent.

A 聚水潭 emulator (its ERP order ids run 38000001, 38000002 …, so the query ``380000`` matches
every order, newest first), a ``deskapp.toml`` pointing at it, the app polling it every second.
Orders are created and changed on the "platform" while the agent looks at a result list or a card;
the list and the card refresh by themselves — the highlighted order stays highlighted (by order, not
by row), and focus stays where the agent is typing. The test never asks the app to search again.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Input

from connectors.emulators import RunningEmulator, start_emulator
from connectors.emulators.jst import so_id
from db.engine import make_engine
from db.store import Store
from deskapp.__main__ import make_app
from deskapp.screens.card import CardScreen
from deskapp.screens.lookup import LookupScreen
from deskapp.services.livesync import LiveSync
from deskapp.settings import Settings
from tests.appkit import OPERATOR, OPERATOR_NAME, screen_text
from widgets.i18n import set_language
from widgets.results import ResultsTable

QUERY = "380000"


@pytest.fixture(autouse=True)
def chinese() -> None:
    set_language("zh")


@pytest.fixture
def jst() -> Iterator[RunningEmulator]:
    emulator = start_emulator("jst", 0, orders=6, seed=3, days=0.2, shops=("live1",))
    yield emulator
    emulator.stop()


def _config(path: Path, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    creds = emulator.credentials("live1")
    monkeypatch.setenv("LIVE_TEST_JST_SECRET", creds["app_secret"])
    monkeypatch.setenv("LIVE_TEST_JST_TOKEN", creds["access_token"])
    path.write_text(f"""
[sync]
poll_seconds = 1
overlap_minutes = 1
lag_minutes = 0

[channels.jst]
base_url = "{emulator.url}"
app_key = "{creds["app_key"]}"
secret_env = "LIVE_TEST_JST_SECRET"

[[channels.jst.shops]]
code = "live1"
access_token_env = "LIVE_TEST_JST_TOKEN"
""", encoding="utf-8")
    return path


async def _until(pilot, check, timeout: float = 15) -> None:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "timed out"
        await pilot.pause(0.05)


def _line_of(app, text: str) -> str:
    """The screen line showing ``text`` ('' if none does)."""
    return next((line for line in screen_text(app).splitlines() if text in line), "")


async def test_the_list_and_the_card_follow_sync_without_moving_the_agent(
    jst: RunningEmulator, sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "pool.db"
    shutil.copyfile(sqlite_template, db)
    sync = LiveSync.from_config(_config(tmp_path / "deskapp.toml", jst, monkeypatch))
    settings = Settings(db=str(db), operator=OPERATOR, language="zh")
    app = make_app(Store(make_engine(db)), settings, operator_name=OPERATOR_NAME, sync=sync)
    async with app.run_test(size=(110, 30)) as pilot:
        await _until(pilot, lambda: sync.connectors["jst:live1"].state == "ok")
        screen = app.screen
        assert isinstance(screen, LookupScreen)
        box = screen.query_one("#search", Input)
        results = screen.query_one(ResultsTable)
        box.value = QUERY
        await _until(pilot, lambda: results.row_count >= 3)
        shown = results.row_count

        # The agent walks into the list, to the third order.
        for key in ("down", "down", "down"):
            await pilot.press(key)
        assert app.focused is results and results.cursor_row == 2
        chosen = results.highlighted_order

        # A new order on the platform matches the query: it appears on top, by itself; the
        # highlight stays on the same order, now one row further down.
        (new,) = jst.world.create(shop="live1", paid=True)
        await _until(pilot, lambda: results.row_count == shown + 1)
        new_no = so_id(jst.world.orders[new])
        assert new_no in _line_of(app, new_no)
        assert results.highlighted_order == chosen and results.cursor_row == 3
        assert app.focused is results

        # The platform cancels it: its row says so, nothing else moves.
        jst.world.modify(new, "cancel")
        await _until(pilot, lambda: "已取消" in _line_of(app, new_no))
        assert results.highlighted_order == chosen and app.focused is results

        # Back in the box, typing: another new order arrives; the box keeps focus and its text.
        await pilot.press("escape")
        assert app.focused is box
        jst.world.create(shop="live1", paid=True)
        await _until(pilot, lambda: results.row_count == shown + 2)
        assert app.focused is box and box.value == QUERY
        assert results.highlighted_order == chosen

        # The card of the highlighted order is open when the platform adds a memo: it shows it.
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, CardScreen) and app.screen.order_id == chosen)
        card = app.screen
        focused = app.focused
        store = await app.full_store()
        oid = (await store.order_card(chosen, now=app.clock())).channel_order_id
        jst.world.modify(oid, "memo", text="改发顺丰，客户加急")
        await _until(pilot, lambda: "改发顺丰，客户加急" in screen_text(app))
        assert app.screen is card and app.focused is focused
