"""Drive the app with keys, as an agent would: type → results → open card → back."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from db.store import Store
from deskapp.screens.card import CardScreen
from deskapp.screens.lookup import LookupScreen
from tests.appkit import OPERATOR, OPERATOR_NAME, app_on, screen_text
from widgets.i18n import set_language
from widgets.results import ResultsTable


@pytest.fixture(autouse=True)
def chinese():
    set_language("zh")
    yield
    set_language("zh")


async def _settle(pilot) -> None:  # noqa: ANN001
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def _an_order(path: Path, **where) -> tuple[int, str, str]:  # noqa: ANN003
    """(id, order_no, receiver) of the newest demo order matching simple column filters."""
    from sqlalchemy import select

    from db.models import Order

    store = await Store.open(path)
    try:
        async with store.engine.connect() as conn:
            query = select(Order.id, Order.order_no, Order.receiver_name).order_by(Order.id.desc())
            for column, value in where.items():
                query = query.where(getattr(Order, column) == value)
            row = (await conn.execute(query.limit(1))).one()
    finally:
        await store.close()
    return row.id, row.order_no, row.receiver_name


@pytest.mark.parametrize("lazy", [False, True], ids=["opened", "lazy"])
async def test_type_order_no_enter_opens_card_and_escape_returns(demo_db: Path, lazy: bool) -> None:
    order_id, order_no, _ = await _an_order(demo_db, channel="taobao")
    app = app_on(demo_db, lazy=lazy)
    async with app.run_test(size=(80, 24)) as pilot:
        assert isinstance(app.screen, LookupScreen)
        assert app.screen.query_one("#search", Input).has_focus  # ready to type at once
        await pilot.press(*order_no)
        await _settle(pilot)
        table = app.screen.query_one(ResultsTable)
        assert table.row_count >= 1
        assert table.highlighted_order == order_id  # the exact match ranks first

        await pilot.press("enter")
        await _settle(pilot)
        assert isinstance(app.screen, CardScreen)
        assert app.screen.order_id == order_id
        assert order_no in screen_text(app)

        await pilot.press("escape")
        await _settle(pilot)
        assert isinstance(app.screen, LookupScreen)
        assert app.screen.query_one("#search", Input).value == order_no  # query kept


async def test_arrows_pick_another_result(demo_db: Path) -> None:
    app = app_on(demo_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("张")
        await _settle(pilot)
        table = app.screen.query_one(ResultsTable)
        assert table.row_count >= 2
        second = table._hits[1].id
        await pilot.press("down", "down", "enter")  # into the list, one row down, open
        await _settle(pilot)
        assert isinstance(app.screen, CardScreen)
        assert app.screen.order_id == second


async def test_results_follow_typing_and_no_match_says_so(demo_db: Path) -> None:
    app = app_on(demo_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(*"zzqq不存在的")
        await _settle(pilot)
        assert app.screen.query_one(ResultsTable).row_count == 0
        assert "没有找到" in screen_text(app)
        await pilot.press("escape")  # focus is in the box: clears it
        await _settle(pilot)
        assert app.screen.query_one("#search", Input).value == ""
        assert app.screen.query_one(ResultsTable).row_count == 0


async def test_phone_tail_finds_masked_numbers(demo_db: Path) -> None:
    store = await Store.open(demo_db)
    try:
        from sqlalchemy import select

        from db.models import Order

        async with store.engine.connect() as conn:
            tail = (await conn.execute(
                select(Order.phone_tail4).where(Order.phone_kind == "masked").limit(1)
            )).scalar_one()
    finally:
        await store.close()
    app = app_on(demo_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(*tail)
        await _settle(pilot)
        table = app.screen.query_one(ResultsTable)
        assert table.row_count >= 1
        assert all(hit.receiver_phone.endswith(tail) or tail in hit.receiver_phone for hit in table._hits)


@pytest.mark.parametrize("lazy", [False, True], ids=["opened", "lazy"])
async def test_memo_edit_is_recorded_under_the_operator(demo_db: Path, lazy: bool) -> None:
    order_id, order_no, _ = await _an_order(demo_db, status="allocating")
    app = app_on(demo_db, lazy=lazy)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_order(order_id)
        await _settle(pilot)
        await pilot.press("m")
        await pilot.pause()
        box = app.screen.query_one("#memo", Input)
        box.value = ""
        await pilot.press(*"顺丰加急", "enter")
        await _settle(pilot)
        await _settle(pilot)
        assert isinstance(app.screen, CardScreen)
        assert "顺丰加急" in screen_text(app)
    store = await Store.open(demo_db)
    try:
        card = await store.order_card(order_id)
    finally:
        await store.close()
    assert card is not None and card.seller_memo == "顺丰加急"
    memo = [e for e in card.timeline if e.kind == "memo"][-1]
    assert (memo.actor_kind, memo.actor_id, memo.actor_name, memo.to_value) == (
        "operator", OPERATOR, OPERATOR_NAME, "顺丰加急"
    )


async def test_f2_switches_to_english_and_keeps_the_query(demo_db: Path) -> None:
    app = app_on(demo_db)
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.press("张")
        await _settle(pilot)
        await pilot.press("f2")
        await _settle(pilot)
        text = screen_text(app)
        assert "Quit" in text and "Order no." in text
        assert app.screen.query_one("#search", Input).value == "张"
        await pilot.press("f2")
        await _settle(pilot)
        assert "退出" in screen_text(app)


async def test_header_shows_operator_and_china_time(demo_db: Path) -> None:
    app = app_on(demo_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        first_line = screen_text(app).splitlines()[0]
        assert OPERATOR_NAME in first_line
        assert "11-20 14:00:00" in first_line  # DEMO_NOW 06:00 UTC is 14:00 in China


async def test_ctrl_p_opens_the_command_palette_with_the_connectors_screen_in_it(demo_db: Path) -> None:
    from textual.command import CommandPalette

    app = app_on(demo_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"连接器")
        await _settle(pilot)
        await pilot.press("enter")
        await _settle(pilot)
        assert type(app.screen).__name__ == "ConnectorsScreen"
