"""A refused action in the running app: the reason in plain words where the person looks, never a
traceback, nothing changed — and a supervisor's override of a blocking check, on record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from textual.widgets import Input

from db.store import Store
from deskapp.screens import address_form
from deskapp.screens.address_form import AddressForm
from deskapp.screens.card import CardScreen
from deskapp.screens.exceptions import ExceptionsScreen, ReasonDialog
from deskapp.screens.queue import QueueScreen
from tests.appkit import SUPERVISOR, WAREHOUSE, app_on, screen_text
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


def _said(app) -> list[tuple[str, str]]:
    return [(str(n.message), n.severity) for n in app._notifications]


async def _refused_count(path: Path) -> int:
    store = await Store.open(path)
    try:
        async with store.engine.connect() as conn:
            return (await conn.execute(text("SELECT COUNT(*) FROM access_log WHERE kind = 'refused'"))).scalar_one()
    finally:
        await store.close()


async def test_customer_service_cannot_override_a_blocking_check(demo_db: Path, held: dict[str, int]) -> None:
    order_id = held["T-TEST-1"]
    app = app_on(demo_db)  # customer service
    async with app.run_test(size=(100, 30)) as pilot:
        await _settle(pilot)
        await pilot.press("f6")
        await _settle(pilot)
        screen = app.screen
        assert isinstance(screen, ExceptionsScreen)
        for _ in range(screen.table.row_count):
            if screen.highlighted is not None and screen.highlighted.id == order_id:
                break
            await pilot.press("down")
        assert screen.highlighted.id == order_id
        await pilot.press("r")
        await _settle(pilot)
        assert isinstance(app.screen, ReasonDialog)
        await pilot.press(*"客户说是真的", "enter")
        await _settle(pilot)
        assert app.screen is screen
        assert ("客服不能越过拦截检查（需要 主管或管理员）", "error") in _said(app)
        assert "T-TEST-1" in screen_text(app)  # still held, still listed
    state, _ = await order_state(demo_db, order_id)
    assert state["status"] == "hold"
    assert await _refused_count(demo_db) == 1


async def test_warehouse_staff_cannot_change_a_memo(demo_db: Path, held: dict[str, int]) -> None:
    order_id = held["T-LEGACY-1"]
    app = app_on(demo_db, operator=WAREHOUSE)
    async with app.run_test(size=(100, 30)) as pilot:
        app.open_order(order_id)
        await _settle(pilot)
        await pilot.press("m")
        await pilot.pause()
        app.screen.query_one("#memo", Input).value = ""
        await pilot.press(*"改一下", "enter")
        await _settle(pilot)
        assert isinstance(app.screen, CardScreen)
        assert ("仓库人员不能修改卖家备注（需要 客服、主管或管理员）", "error") in _said(app)
    _, timeline = await order_state(demo_db, order_id)
    assert "memo" not in [e[0] for e in timeline]


async def test_customer_service_scanning_is_refused_loudly(demo_db: Path, held: dict[str, int]) -> None:
    app = app_on(demo_db)
    bells: list[int] = []
    app.bell = lambda: bells.append(1)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f5")
        await _settle(pilot)
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        await pilot.press(*"T-LEGACY-1", "enter")
        await _settle(pilot)
        assert "✗ 客服不能扫码确认仓库作业（需要 仓库人员、主管或管理员）" in screen_text(app)
        assert bells == [1] and "-error" in screen.query_one("#q-result").classes
    state, timeline = await order_state(demo_db, held["T-LEGACY-1"])
    assert state["status"] == "paid" and timeline[-1][0] != "allocate"


@pytest.mark.parametrize(("operator", "saved"), [(SUPERVISOR, True), (None, False)], ids=["supervisor", "cs"])
async def test_ctrl_s_twice_saves_despite_a_blocking_problem_for_a_supervisor_only(
    demo_db: Path, held: dict[str, int], operator: str | None, saved: bool
) -> None:
    order_id = held["T-CONFLICT-1"]
    app = app_on(demo_db, **({"operator": operator} if operator else {}))
    async with app.run_test(size=(100, 30)) as pilot:
        app.open_order(order_id)
        await _settle(pilot)
        await pilot.press("e")
        await _settle(pilot)
        form = app.screen
        assert isinstance(form, AddressForm)
        form.query_one("#detail", Input).value = "文三路101号"  # the conflict (西湖区 in 宁波市) stays
        await _settle(pilot)
        await pilot.press("ctrl+s")
        await _settle(pilot)
        assert app.screen is form and "主管可再按 Ctrl+S 强制保存" in screen_text(app)
        await pilot.press("ctrl+s")
        await _settle(pilot)
        if saved:
            assert isinstance(app.screen, CardScreen)
            assert ("已强制保存；订单仍挂起，需另行放行", "information") in _said(app)
        else:
            assert app.screen is form
            assert ("客服不能越过拦截检查（需要 主管或管理员）", "error") in _said(app)
    state, timeline = await order_state(demo_db, order_id)
    assert state["status"] == "hold"  # an override never releases the hold by itself
    assert (state["address_detail"] == "文三路101号") is saved
    if saved:
        store = await Store.open(demo_db)
        try:
            async with store.engine.connect() as conn:
                detail = (await conn.execute(text(
                    "SELECT detail FROM timeline_event WHERE order_id = :i AND kind = 'address'"), {"i": order_id})
                ).scalar_one()
        finally:
            await store.close()
        detail = json.loads(detail) if isinstance(detail, str) else detail
        assert detail["override"] is True and timeline[-1][:3] == ("address", "operator", SUPERVISOR)
