"""Revealing one order's customer details on the card: asked for with a reason, allowed by role,
one access-log record per field, a countdown, masked again when the time is up, the card is left
or the screen locks — and opening the address form is a logged reveal too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from textual.widgets import Input

from db.roles import Refused
from db.store import Store
from db.views import Actor
from deskapp.screens import address_form
from deskapp.screens.address_form import AddressForm
from deskapp.screens.card import CardScreen, RevealDialog
from deskapp.screens.lock import LockScreen
from deskapp.services.auth import SecurityPolicy
from deskapp.services.reveal import reveal_card
from tests.appkit import OPERATOR, WAREHOUSE, screen_text
from tests.sessionkit import PIN, IdleClock, access_log, desk, give_pins
from widgets.i18n import set_language


@pytest.fixture(autouse=True)
def chinese(monkeypatch: pytest.MonkeyPatch):
    set_language("zh")
    monkeypatch.setattr(address_form, "DEBOUNCE_S", 0)
    yield
    set_language("zh")


async def _customer(path: Path) -> dict:
    """An editable demo order (a full mobile number, a name) and its receiver as stored (unmasked),
    read past the read models."""
    store = await Store.open(path)
    try:
        async with store.engine.connect() as conn:
            row = (await conn.execute(text(
                "SELECT id, order_no, receiver_name, receiver_phone, address_detail FROM orders "
                "WHERE status IN ('allocating', 'review', 'hold') AND receiver_phone GLOB :mobile "
                "AND length(receiver_name) >= 2 AND receiver_name NOT LIKE '%*%' "
                "ORDER BY id LIMIT 1"), {"mobile": "1" + "[0-9]" * 10})).one()
    finally:
        await store.close()
    return dict(zip(("id", "no", "name", "phone", "street"), row, strict=True))


async def _settle(pilot) -> None:
    for _ in range(2):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def _open(pilot, order_id: int) -> CardScreen:
    pilot.app.open_order(order_id)
    await _settle(pilot)
    card = pilot.app.screen
    assert isinstance(card, CardScreen)
    return card


def _said(app) -> list[tuple[str, str]]:
    return [(str(n.message), n.severity) for n in app._notifications]


async def test_a_reveal_with_a_common_reason_shows_everything_and_logs_each_field(demo_db: Path) -> None:
    who = await _customer(demo_db)
    app = desk(demo_db)  # customer service
    async with app.run_test(size=(100, 30)) as pilot:
        card = await _open(pilot, who["id"])
        assert who["phone"] not in screen_text(app) and who["name"] not in screen_text(app)
        await pilot.press("v")
        await _settle(pilot)
        assert isinstance(app.screen, RevealDialog)
        assert "[x] 姓名  [x] 电话  [x] 地址" in screen_text(app)
        await pilot.press("1")  # 客户来电核实
        await _settle(pilot)
        assert app.screen is card
        shown = screen_text(app)
        assert who["phone"] in shown and who["name"] in shown and who["street"][:6] in shown
        assert "完整信息（姓名、电话、地址）5:00 后隐藏 · v 立即隐藏" in shown
    reveals = await access_log(demo_db, "reveal")
    assert reveals == [(OPERATOR, "reveal", who["id"], field, "客户来电核实") for field in ("name", "phone", "address")]


async def test_only_the_phone_for_a_typed_reason(demo_db: Path) -> None:
    who = await _customer(demo_db)
    app = desk(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await _open(pilot, who["id"])
        await pilot.press("v")
        await _settle(pilot)
        await pilot.press("n", "a")  # untick name and address
        assert "[ ] 姓名  [x] 电话  [ ] 地址" in screen_text(app)
        await pilot.press("4", "enter")  # another reason: an empty one is not taken
        await _settle(pilot)
        assert isinstance(app.screen, RevealDialog) and "请填写原因" in screen_text(app)
        await pilot.press(*"核对退款账户", "enter")
        await _settle(pilot)
        shown = screen_text(app)
        assert who["phone"] in shown and who["name"] not in shown
        assert "完整信息（电话）5:00 后隐藏" in shown
    assert await access_log(demo_db, "reveal") == [(OPERATOR, "reveal", who["id"], "phone", "核对退款账户")]


async def test_warehouse_staff_are_told_why_and_nothing_is_revealed_or_logged_as_a_reveal(demo_db: Path) -> None:
    who = await _customer(demo_db)
    app = desk(demo_db, operator=WAREHOUSE)
    async with app.run_test(size=(100, 30)) as pilot:
        card = await _open(pilot, who["id"])
        await _settle(pilot)  # the role is read after the first frame
        await pilot.press("v")
        await _settle(pilot)
        assert app.screen is card
        assert ("仓库人员不能查看完整的客户信息（需要 客服、主管或管理员）", "error") in _said(app)
        assert who["phone"] not in screen_text(app)
    # The service refuses on its own too (a script, a stale screen): refused on record, no reveal.
    store = await Store.open(demo_db)
    try:
        with pytest.raises(Refused):
            await reveal_card(store, who["id"], frozenset({"phone"}), "看看", Actor("operator", WAREHOUSE))
    finally:
        await store.close()
    assert await access_log(demo_db, "reveal") == []
    assert [r[:3] for r in await access_log(demo_db, "refused")] == [(WAREHOUSE, "refused", who["id"])]


async def test_the_details_hide_again_when_the_time_is_up(demo_db: Path) -> None:
    who = await _customer(demo_db)
    clock = IdleClock()
    app = desk(demo_db, idle_clock=clock, policy=SecurityPolicy(reveal_minutes=5, idle_lock_minutes=0))
    async with app.run_test(size=(100, 30)) as pilot:
        card = await _open(pilot, who["id"])
        await pilot.press("v")
        await _settle(pilot)
        await pilot.press("3")  # 快递联系不上
        await _settle(pilot)
        clock.advance(minutes=1, seconds=30)
        card.tick_reveal()
        await pilot.pause()
        assert "完整信息（姓名、电话、地址）3:30 后隐藏" in screen_text(app) and who["phone"] in screen_text(app)
        clock.advance(minutes=3, seconds=30)
        card.tick_reveal()
        await _settle(pilot)
        shown = screen_text(app)
        assert who["phone"] not in shown and who["name"] not in shown and "后隐藏" not in shown
        assert app.screen is card and card.order_id == who["id"] and who["no"] in shown  # still the card, masked


async def test_leaving_the_card_or_v_again_hides_them(demo_db: Path) -> None:
    who = await _customer(demo_db)
    app = desk(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        card = await _open(pilot, who["id"])
        await pilot.press("v", "1")
        await _settle(pilot)
        assert who["phone"] in screen_text(app)
        await pilot.press("v")  # hides at once
        await _settle(pilot)
        assert who["phone"] not in screen_text(app) and ("完整信息已隐藏", "information") in _said(app)
        await pilot.press("v", "2")
        await _settle(pilot)
        assert who["phone"] in screen_text(app)
        await pilot.press("escape")
        await _settle(pilot)
        await _open(pilot, who["id"])
        assert who["phone"] not in screen_text(app) and not card.revealed


async def test_the_lock_hides_them_and_they_stay_hidden_after_unlocking(demo_db: Path) -> None:
    await give_pins(demo_db, {OPERATOR: PIN})
    who = await _customer(demo_db)
    clock = IdleClock()
    app = desk(demo_db, idle_clock=clock, policy=SecurityPolicy(idle_lock_minutes=10))
    async with app.run_test(size=(100, 30)) as pilot:
        card = await _open(pilot, who["id"])
        await pilot.press("v", "1")
        await _settle(pilot)
        clock.advance(minutes=10)
        app.check_idle_lock()
        await _settle(pilot)
        assert isinstance(app.screen, LockScreen)
        await pilot.press(*PIN, "enter")
        await _settle(pilot)
        assert app.screen is card
        assert who["phone"] not in screen_text(app) and who["no"] in screen_text(app)


async def test_opening_the_address_form_is_a_logged_reveal(demo_db: Path) -> None:
    who = await _customer(demo_db)
    app = desk(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await _open(pilot, who["id"])
        await pilot.press("e")
        await _settle(pilot)
        form = app.screen
        assert isinstance(form, AddressForm)
        assert form.query_one("#phone", Input).value == who["phone"]
        assert form.query_one("#name", Input).value == who["name"]
    reveals = await access_log(demo_db, "reveal")
    assert reveals == [(OPERATOR, "reveal", who["id"], field, "修改地址") for field in ("name", "phone", "address")]


async def test_editing_a_memo_that_quotes_a_phone_is_a_logged_reveal_of_the_phone(demo_db: Path) -> None:
    who = await _customer(demo_db)
    store = await Store.open(demo_db)
    try:
        await store.set_seller_memo(who["id"], f"客户另一号码 {who['phone']}", actor=Actor("operator", OPERATOR))
    finally:
        await store.close()
    app = desk(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await _open(pilot, who["id"])
        assert who["phone"] not in screen_text(app)  # the memo shows it masked
        await pilot.press("m")
        await _settle(pilot)
        assert app.screen.query_one("#memo", Input).value == f"客户另一号码 {who['phone']}"  # saved as stored
    assert await access_log(demo_db, "reveal") == [(OPERATOR, "reveal", who["id"], "phone", "修改备注")]
