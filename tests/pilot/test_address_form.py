"""The address form, driven with keys from the order card: what the agent sees and what is recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual import events
from textual.widgets import Input, Static

from deskapp.screens import address_form
from deskapp.screens.address_form import AddressForm, CandidatePicker
from deskapp.screens.card import CardScreen
from tests.appkit import OPERATOR, app_on, screen_text
from tests.heldorders import add_held_orders, order_state
from widgets.i18n import set_language


@pytest.fixture(autouse=True)
def chinese_and_no_debounce(monkeypatch: pytest.MonkeyPatch):
    set_language("zh")
    monkeypatch.setattr(address_form, "DEBOUNCE_S", 0)  # check at once: nothing to wait for but workers
    yield
    set_language("zh")


@pytest.fixture
async def held(demo_db: Path) -> dict[str, int]:
    return await add_held_orders(demo_db)


async def _settle(pilot) -> None:
    for _ in range(2):  # a check can start another (a fix applied, a value set)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def _open_form(pilot, order_id: int) -> AddressForm:
    pilot.app.open_order(order_id)
    await _settle(pilot)
    assert isinstance(pilot.app.screen, CardScreen)
    await pilot.press("e")
    await _settle(pilot)
    form = pilot.app.screen
    assert isinstance(form, AddressForm)
    return form


def _value(form: AddressForm, name: str) -> str:
    return form.query_one(f"#{name}", Input).value


def _problems(form: AddressForm) -> str:
    return str(form.query_one("#address-problems", Static).render())


def _hint(form: AddressForm) -> str:
    return str(form.query_one("#address-hint", Static).render())


async def test_a_conflict_blocks_saving_and_says_why(demo_db: Path, held: dict[str, int]) -> None:
    order_id = held["T-CONFLICT-1"]
    app = app_on(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await _open_form(pilot, order_id)
        assert "西湖区属于杭州市，不属于宁波市" in _problems(form)
        assert "回车改为 杭州市" in screen_text(app)

        await pilot.press("ctrl+s")
        await _settle(pilot)
        assert app.screen is form  # still open: refused
        assert "无法保存" in _hint(form) and "西湖区属于杭州市" in _hint(form)
    state, events_ = await order_state(demo_db, order_id)
    assert (state["city"], state["status"]) == ("宁波市", "hold")
    assert "address" not in [e[0] for e in events_]


async def test_one_key_fixes_the_conflict_then_save_records_it_and_releases(
    demo_db: Path, held: dict[str, int]
) -> None:
    order_id = held["T-CONFLICT-1"]
    app = app_on(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await _open_form(pilot, order_id)
        await pilot.press("enter")  # "回车改为 杭州市"
        await _settle(pilot)
        assert _value(form, "city") == "杭州市"
        assert _problems(form) == "✓ 地址与电话无误"  # checked again: nothing blocks any more
        assert "已改为 杭州市" in _hint(form)
        before = await order_state(demo_db, order_id)
        assert before[0]["city"] == "宁波市"  # applying the fix is not saving it

        await pilot.press("ctrl+s")
        await _settle(pilot)
        assert isinstance(app.screen, CardScreen)  # saved and closed; the card shows the edit
        assert "改地址" in screen_text(app)
    state, timeline = await order_state(demo_db, order_id)
    assert (state["city"], state["status"], state["hold_reason"]) == ("杭州市", "paid", None)
    assert state["checked_at"] is None  # the order checks look at it again
    assert "杭州市西湖区" in state["search_text"]
    address, released = timeline[-2], timeline[-1]
    assert address[:3] == ("address", "operator", OPERATOR)
    assert "宁波市" in address[3] and "杭州市" in address[4] and "宁波市" not in address[4]
    assert released == ("released", "operator", OPERATOR, "hold", "paid", "地址已更正")


async def test_a_legacy_district_is_replaced_with_one_key(demo_db: Path, held: dict[str, int]) -> None:
    order_id = held["T-LEGACY-1"]
    app = app_on(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await _open_form(pilot, order_id)
        assert "闸北区已于2015年撤销" in _problems(form)
        assert "回车改为 静安区" in _hint(form)
        await pilot.press("enter")
        await _settle(pilot)
        assert _value(form, "district") == "静安区"
        await pilot.press("ctrl+s")
        await _settle(pilot)
        assert isinstance(app.screen, CardScreen)
    state, timeline = await order_state(demo_db, order_id)
    assert state["district"] == "静安区" and state["status"] == "paid"
    assert timeline[-1][0] == "address" and "闸北区" in timeline[-1][3] and "静安区" in timeline[-1][4]


async def test_an_ambiguous_district_offers_a_picker(demo_db: Path, held: dict[str, int]) -> None:
    order_id = held["T-AMBIG-1"]
    app = app_on(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await _open_form(pilot, order_id)
        picker = form.query_one(CandidatePicker)
        assert picker.display and picker.option_count == 2
        assert "北京市 朝阳区" in screen_text(app) and "吉林省 长春市 朝阳区" in screen_text(app)
        await pilot.press("enter")  # to the candidates
        assert picker.has_focus
        await pilot.press("down", "enter")  # the second: 长春
        await _settle(pilot)
        assert (_value(form, "province"), _value(form, "city"), _value(form, "district")) == ("吉林省", "长春市", "朝阳区")
        assert not picker.display  # nothing left to pick
        await pilot.press("ctrl+s")
        await _settle(pilot)
        assert isinstance(app.screen, CardScreen)
    state, _ = await order_state(demo_db, order_id)
    assert (state["province"], state["city"]) == ("吉林省", "长春市")


async def test_a_pasted_address_is_split_into_the_fields(demo_db: Path, held: dict[str, int]) -> None:
    app = app_on(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await _open_form(pilot, held["T-TEST-1"])
        detail = form.query_one("#detail", Input)
        assert detail.has_focus
        detail.post_message(events.Paste("收货人：赵六 13698765432 北京市朝阳区建国路88号 8楼"))
        await _settle(pilot)
        assert _value(form, "name") == "赵六"
        assert _value(form, "phone") == "13698765432"
        assert (_value(form, "province"), _value(form, "city"), _value(form, "district")) == ("北京市", "北京市", "朝阳区")
        assert "建国路88号" in _value(form, "detail") and "北京" not in _value(form, "detail")
        assert "已拆分" in _hint(form)

        # a paste that is not an address is typed in where the cursor is
        detail.value, detail.cursor_position = "建国路88号", len("建国路88号")
        detail.post_message(events.Paste("8楼801"))
        await _settle(pilot)
        assert _value(form, "detail") == "建国路88号8楼801"


async def test_an_invalid_phone_blocks_saving(demo_db: Path, held: dict[str, int]) -> None:
    order_id = held["T-TEST-1"]
    app = app_on(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await _open_form(pilot, order_id)
        phone = form.query_one("#phone", Input)
        phone.focus()
        await pilot.press("backspace")  # 1371234567: ten digits
        await _settle(pilot)
        assert "手机号应为11位数字" in _problems(form)
        await pilot.press("ctrl+s")
        await _settle(pilot)
        assert app.screen is form and "无法保存" in _hint(form)
        await pilot.press("escape")
        assert isinstance(app.screen, CardScreen)
    state, timeline = await order_state(demo_db, order_id)
    assert state["receiver_phone"] == "13712345678" and timeline[-1][0] != "address"


async def test_a_shipped_order_says_its_address_cannot_change_here(demo_db: Path) -> None:
    from sqlalchemy import select

    from db.models import Order
    from db.store import Store

    store = await Store.open(demo_db)
    async with store.engine.connect() as conn:
        order_id = (await conn.execute(select(Order.id).where(Order.status == "delivered").limit(1))).scalar_one()
    await store.close()
    app = app_on(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        pilot.app.open_order(order_id)
        await _settle(pilot)
        await pilot.press("e")
        await _settle(pilot)
        assert isinstance(app.screen, CardScreen)  # no form
        assert any("不能在这里修改地址" in n.message for n in app._notifications)  # the toast says why
