"""The exceptions screen (F6): held orders by reason, released or cancelled with a reason, on record."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import OptionList

from db.access import recent
from db.store import Store
from deskapp.screens import address_form
from deskapp.screens.address_form import AddressForm
from deskapp.screens.card import CardScreen
from deskapp.screens.exceptions import ExceptionsScreen, ReasonDialog
from deskapp.screens.quarantine import ConfirmScreen
from tests.appkit import OPERATOR, SUPERVISOR, app_on, screen_text
from tests.heldorders import add_held_orders, order_state
from widgets.i18n import set_language


@pytest.fixture(autouse=True)
def chinese(monkeypatch: pytest.MonkeyPatch):
    set_language("zh")
    monkeypatch.setattr(address_form, "DEBOUNCE_S", 0)
    yield
    set_language("zh")


@pytest.fixture
async def held(demo_db: Path) -> dict[str, int]:
    return await add_held_orders(demo_db)


async def _settle(pilot) -> None:
    for _ in range(2):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def _open(pilot) -> ExceptionsScreen:
    await _settle(pilot)
    await pilot.press("f6")
    await _settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, ExceptionsScreen)
    return screen


def _groups(screen: ExceptionsScreen) -> list[tuple[str, int]]:
    """The reasons column as the agent reads it: (label, count)."""
    out = []
    for option in screen.query_one("#exc-groups", OptionList).options:
        label, count = str(option.prompt).split()
        out.append((label, int(count)))
    return out


async def _pick(pilot, screen: ExceptionsScreen, order_id: int) -> None:
    """Move the cursor down to ``order_id`` as an agent would."""
    for _ in range(screen.table.row_count):
        if screen.highlighted is not None and screen.highlighted.id == order_id:
            return
        await pilot.press("down")
    assert screen.highlighted is not None and screen.highlighted.id == order_id


async def test_held_orders_are_grouped_by_reason_with_counts_and_todays_kpi(
    demo_db: Path, held: dict[str, int]
) -> None:
    app = app_on(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        # the demo's 5 holds have no check codes: 其他; ours were held by the checks
        assert _groups(screen) == [("全部", 8), ("地址冲突", 2), ("疑似测试单", 1), ("其他", 5)]
        shown = screen_text(app)
        assert "今日拦截 3 单 · 每千单" in shown
        assert "T-CONFLICT-1" in shown and "T-TEST-1" in shown

        screen.query_one("#exc-groups", OptionList).focus()
        await pilot.press("down")  # 地址冲突
        await _settle(pilot)
        assert screen.table.row_count == 2
        assert "T-TEST-1" not in screen_text(app)
        await pilot.press("enter")  # Enter in the reasons goes to the orders
        assert screen.table.has_focus
        await pilot.press("enter")  # and on an order opens its card
        await _settle(pilot)
        assert isinstance(app.screen, CardScreen) and app.screen.order_id == held["T-CONFLICT-1"]
        await pilot.press("escape")
        await _settle(pilot)
        assert app.screen is screen


async def test_release_asks_for_a_reason_and_puts_it_on_record(demo_db: Path, held: dict[str, int]) -> None:
    order_id = held["T-TEST-1"]
    app = app_on(demo_db, operator=SUPERVISOR)  # a blocking check holds it: releasing it overrides the check
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        await _pick(pilot, screen, order_id)
        await pilot.press("r")
        await _settle(pilot)
        assert isinstance(app.screen, ReasonDialog)
        await pilot.press("enter")  # no reason: refused, the dialog stays
        assert isinstance(app.screen, ReasonDialog)
        assert "请填写原因" in screen_text(app)
        await pilot.press(*"客户确认是真实订单")
        await pilot.press("enter")
        await _settle(pilot)
        assert app.screen is screen
        assert "T-TEST-1" not in screen_text(app)
        assert _groups(screen) == [("全部", 7), ("地址冲突", 2), ("其他", 5)]
    state, timeline = await order_state(demo_db, order_id)
    assert state["status"] == "paid"
    assert timeline[-1] == ("released", "operator", SUPERVISOR, "hold", "paid", "客户确认是真实订单")


async def test_cancel_asks_for_a_reason_and_a_confirmation(demo_db: Path, held: dict[str, int]) -> None:
    order_id = held["T-CONFLICT-2"]
    app = app_on(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        await _pick(pilot, screen, order_id)
        await pilot.press("x")
        await _settle(pilot)
        await pilot.press(*"客户要求取消")
        await pilot.press("enter")
        await _settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert "T-CONFLICT-2" in screen_text(app) and "客户要求取消" in screen_text(app)
        await pilot.press("y")
        await _settle(pilot)
        assert app.screen is screen and "T-CONFLICT-2" not in screen_text(app)
    state, timeline = await order_state(demo_db, order_id)
    assert state["status"] == "cancelled"
    assert timeline[-1] == ("status", "operator", OPERATOR, "hold", "cancelled", "客户要求取消")


async def test_cancel_backed_out_of_changes_nothing(demo_db: Path, held: dict[str, int]) -> None:
    order_id = held["T-CONFLICT-2"]
    app = app_on(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        await _pick(pilot, screen, order_id)
        await pilot.press("x", *"不要了", "enter")
        await _settle(pilot)
        await pilot.press("n")
        await _settle(pilot)
        assert app.screen is screen
    state, _ = await order_state(demo_db, order_id)
    assert state["status"] == "hold"


async def test_e_fixes_the_address_straight_from_the_list(demo_db: Path, held: dict[str, int]) -> None:
    order_id = held["T-CONFLICT-1"]
    app = app_on(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        await _pick(pilot, screen, order_id)
        await pilot.press("e")
        await _settle(pilot)
        assert isinstance(app.screen, AddressForm)
        await pilot.press("enter", "ctrl+s")  # the one-key fix, then save
        await _settle(pilot)
        assert app.screen is screen
        assert "T-CONFLICT-1" not in screen_text(app)  # released by the corrected address
        assert ("地址冲突", 1) in _groups(screen)
    state, _ = await order_state(demo_db, order_id)
    assert (state["status"], state["city"]) == ("paid", "杭州市")
    # the form showed the real receiver: that read is on record like any reveal, by who and why
    store = await Store.open(demo_db)
    try:
        reveals = [(r.operator_id, r.field, r.reason) for r in await recent(store, 20, kind="reveal")
                   if r.order_id == order_id]
    finally:
        await store.close()
    assert sorted(reveals) == [(OPERATOR, f, "修改地址") for f in ("address", "name", "phone")]


async def test_nothing_held_says_so(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    store = await Store.open(path)
    await store.ensure_operator(OPERATOR)
    await store.close()
    app = app_on(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(pilot)
        assert "没有异常订单" in screen_text(app)
        assert "今日拦截 0 单" in screen_text(app)
        footer = screen_text(app).splitlines()[-1]
        assert "放行" not in footer and "返回" in footer  # nothing to act on: only the way back
