"""The app keeps one card screen for the session: each card must look as if the screen were new."""

from __future__ import annotations

from pathlib import Path

import pytest

from deskapp.screens.card import CardScreen
from deskapp.screens.lookup import LookupScreen
from tests.appkit import app_on, screen_text
from widgets.i18n import set_language
from widgets.order_card import OrderCardView


@pytest.fixture(autouse=True)
def chinese():
    set_language("zh")
    yield
    set_language("zh")


async def _open(pilot, order_id: int) -> None:  # noqa: ANN001
    pilot.app.open_order(order_id)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_each_order_opens_on_the_same_screen_from_the_top(demo_db: Path) -> None:
    app = app_on(demo_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(pilot, 332)
        card_screen = app.screen
        assert isinstance(card_screen, CardScreen)
        first = card_screen.card
        assert first is not None and first.order_no in screen_text(app)
        await pilot.press("pagedown")
        await pilot.pause()
        assert card_screen.query_one(OrderCardView).scroll_y > 0

        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, LookupScreen)
        assert card_screen.card is None  # nothing of the last order left to copy

        await _open(pilot, 399)
        assert app.screen is card_screen
        assert card_screen.order_id == 399 and card_screen.card is not None
        assert card_screen.card.order_no in screen_text(app)
        assert first.order_no not in screen_text(app)
        assert card_screen.query_one(OrderCardView).scroll_y == 0


async def test_a_missing_order_says_so_and_stays_on_the_lookup(demo_db: Path) -> None:
    app = app_on(demo_db)
    said: list[str] = []
    notify = app.notify
    app.notify = lambda message, **kwargs: said.append(message) or notify(message, **kwargs)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(pilot, 10_000_000)
        assert isinstance(app.screen, LookupScreen)
        assert said == ["订单不存在或已被删除"]


async def test_the_card_speaks_the_language_chosen_since_it_was_last_shown(demo_db: Path) -> None:
    app = app_on(demo_db)
    async with app.run_test(size=(100, 24)) as pilot:
        await _open(pilot, 332)
        assert "复制单号" in screen_text(app)
        await pilot.press("f2")  # back to the lookup, in English
        await pilot.pause()
        await _open(pilot, 399)
        lines = screen_text(app).splitlines()
        assert "Order desk" in lines[0]  # the header
        assert "Copy no." in lines[-1] and "复制单号" not in lines[-1]  # the keys
