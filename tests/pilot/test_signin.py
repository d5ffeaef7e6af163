"""Shared PCs: the sign-in screen, wrong PINs and the lockout as the screen says them, switching
user with F12, the name and role in the header, and the idle lock.

Real PINs (Argon2id at a test cost) in a real database; the idle lock's clock is moved on by the
test, never slept through.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from db.store import Store
from deskapp.screens.card import CardScreen, MemoDialog
from deskapp.screens.lock import LockScreen
from deskapp.screens.lookup import LookupScreen
from deskapp.screens.signin import SignInScreen
from deskapp.services.auth import SecurityPolicy
from tests.appkit import OPERATOR, SUPERVISOR, WAREHOUSE, screen_text
from tests.sessionkit import PIN, IdleClock, access_log, desk, give_pins, visible_text
from widgets.i18n import set_language


@pytest.fixture(autouse=True)
def chinese():
    set_language("zh")
    yield
    set_language("zh")


@pytest.fixture
async def pins(demo_db: Path) -> Path:
    await give_pins(demo_db, {OPERATOR: PIN, WAREHOUSE: "1357", SUPERVISOR: "9753"})
    return demo_db


async def _settle(pilot) -> None:
    for _ in range(2):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def _an_order(path: Path) -> tuple[int, str, str]:
    """A demo order: (id, order no., its masked receiver name as the card shows it)."""
    store = await Store.open(path)
    try:
        hits = await store.find_orders("王")
        card = await store.order_card(hits[0].id)
        return card.id, card.order_no, card.receiver_name
    finally:
        await store.close()


async def _sign_in(pilot, name_filter: str, pin: str) -> None:
    await pilot.press(*name_filter, "enter")
    await _settle(pilot)
    await pilot.press(*pin, "enter")
    await _settle(pilot)


def _said(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


# -- the sign-in screen ------------------------------------------------------------------------------


async def test_a_shared_pc_starts_on_the_sign_in_screen_and_the_pin_opens_the_desk(pins: Path) -> None:
    app = desk(pins, require_sign_in=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        screen = app.screen
        assert isinstance(screen, SignInScreen)
        assert "王小二  客服" in screen_text(app) and "钱小库  仓库人员" in screen_text(app)
        await pilot.press(*"王小")  # type to filter
        await _settle(pilot)
        assert [op.id for op in screen.shown] == [OPERATOR]
        await pilot.press("enter")
        await _settle(pilot)
        assert "王小二（客服）的 PIN：" in screen_text(app)
        assert screen.query_one("#signin-pin", Input).password
        await pilot.press(*PIN)
        assert PIN not in screen_text(app)  # typed as dots
        await pilot.press("enter")
        await _settle(pilot)
        assert isinstance(app.screen, LookupScreen)
        assert app.actor.id == OPERATOR
        assert "操作员：王小二（客服）" in screen_text(app).splitlines()[0]
    log = await access_log(pins)
    assert (OPERATOR, "sign_in", None, None, "") in log
    assert log[-1] == (OPERATOR, "sign_out", None, None, "")  # quitting a shared PC's session is on record


async def test_arrows_pick_and_escape_goes_back_to_the_names(pins: Path) -> None:
    app = desk(pins, require_sign_in=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        screen = app.screen
        await pilot.press(*"小")  # 王小二, 钱小库
        await _settle(pilot)
        assert [op.id for op in screen.shown] == [WAREHOUSE, OPERATOR]  # by login
        first, second = screen.shown
        assert screen.highlighted == first
        await pilot.press("down")
        assert screen.highlighted == second
        await pilot.press("enter")
        await _settle(pilot)
        assert screen.chosen == second
        await pilot.press("escape")  # pick again
        assert screen.chosen is None
        await pilot.press("escape", "escape")  # the filter cleared; at start-up there is no way past
        await _settle(pilot)
        assert app.screen is screen


async def test_wrong_pins_say_the_tries_left_then_lock_and_even_the_right_pin_is_refused(pins: Path) -> None:
    app = desk(pins, require_sign_in=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        screen = app.screen
        await pilot.press(*"钱小库", "enter")
        await _settle(pilot)
        for left in (4, 3, 2, 1):
            await pilot.press(*"0000", "enter")
            await _settle(pilot)
            assert f"PIN 不对；还可以再试 {left} 次" in screen_text(app)
        await pilot.press(*"0000", "enter")  # the fifth
        await _settle(pilot)
        # 5 minutes after the demo's 14:00 China time: the lock's end, in China time
        assert "PIN 错误次数太多，已锁定到 14:05" in screen_text(app)
        assert screen.chosen is None  # back to the names: someone else may sign in meanwhile
        await _sign_in(pilot, "钱小库", "1357")  # the right PIN, while locked
        assert isinstance(app.screen, SignInScreen)
        assert "已锁定到 14:05" in screen_text(app)
        assert app.actor.id == ""
    kinds = [r[1] for r in await access_log(pins) if r[0] == WAREHOUSE]
    assert kinds == ["sign_in_failed"] * 5 + ["pin_locked", "sign_in_failed"]


async def test_an_operator_without_a_pin_is_told_to_ask_an_admin(demo_db: Path) -> None:
    await give_pins(demo_db, {OPERATOR: PIN})
    app = desk(demo_db, require_sign_in=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        await pilot.press(*"钱小库", "enter")
        await _settle(pilot)
        assert "钱小库 还没有设置 PIN；请管理员运行 deskapp operators" in screen_text(app)
        assert app.screen.chosen is None


async def test_the_sign_in_screen_in_english(pins: Path) -> None:
    app = desk(pins, require_sign_in=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        await pilot.press("f2")
        await _settle(pilot)
        text = screen_text(app)
        assert "Sign in to the deskapp order desk" in text and "王小二  customer service" in text
        await pilot.press(*"wang", "enter")
        await _settle(pilot)
        assert "PIN for 王小二 (customer service):" in screen_text(app)
        assert isinstance(app.screen, SignInScreen)


# -- switch user ---------------------------------------------------------------------------------------


async def test_f12_switch_user_resets_the_desk_and_the_next_write_is_the_new_persons(pins: Path) -> None:
    order_id, order_no, _ = await _an_order(pins)
    app = desk(pins)  # 王小二 works
    async with app.run_test(size=(100, 30)) as pilot:
        await _settle(pilot)
        await pilot.press(*order_no)
        await _settle(pilot)
        app.open_order(order_id)
        await _settle(pilot)
        assert isinstance(app.screen, CardScreen)
        await pilot.press("m")  # a memo dialog open, half typed
        await _settle(pilot)
        assert isinstance(app.screen, MemoDialog)

        await pilot.press("f12")  # from inside a text box
        await _settle(pilot)
        assert isinstance(app.screen, SignInScreen)
        await pilot.press("escape")  # changed my mind: back where I was
        await _settle(pilot)
        assert isinstance(app.screen, MemoDialog)

        await pilot.press("f12")
        await _settle(pilot)
        await _sign_in(pilot, "周主管", "9753")
        assert len(app.screen_stack) == 1 and isinstance(app.screen, LookupScreen)
        assert app.screen.query_one("#search", Input).value == ""  # nothing of 王小二's work
        assert order_no not in screen_text(app)
        assert app.actor.id == SUPERVISOR
        assert "操作员：周主管（主管）" in screen_text(app).splitlines()[0]
        assert "已换成 周主管（主管）" in _said(app)

        app.open_order(order_id)
        await _settle(pilot)
        assert "操作员：周主管（主管）" in screen_text(app).splitlines()[0]  # the card's own header too
        await pilot.press("m")
        await _settle(pilot)
        app.screen.query_one("#memo", Input).value = "周主管改的"
        await pilot.press("enter")
        await _settle(pilot)
    store = await Store.open(pins)
    try:
        card = await store.order_card(order_id, reveal=frozenset({"phone"}))
    finally:
        await store.close()
    memo = [item for item in card.timeline if item.kind == "memo"][-1]
    assert (memo.actor_kind, memo.actor_id) == ("operator", SUPERVISOR)
    log = await access_log(pins)
    assert (OPERATOR, "sign_out", None, None, "") in log and (SUPERVISOR, "switch_user", None, None, "") in log


async def test_the_header_shows_name_and_role_at_80_columns(pins: Path) -> None:
    app = desk(pins, operator=WAREHOUSE)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        header = screen_text(app).splitlines()[0]
        assert "操作员：钱小库（仓库人员）" in header
        assert header.rstrip().endswith("14:00:00")  # the clock still fits: CJK counted double


# -- the idle lock ------------------------------------------------------------------------------------


async def test_idle_lock_hides_the_card_and_the_same_pin_returns_to_it(pins: Path) -> None:
    order_id, order_no, masked_name = await _an_order(pins)
    clock = IdleClock()
    app = desk(pins, idle_clock=clock, policy=SecurityPolicy(idle_lock_minutes=10))
    async with app.run_test(size=(100, 30)) as pilot:
        await _settle(pilot)
        app.open_order(order_id)
        await _settle(pilot)
        card = app.screen
        assert isinstance(card, CardScreen) and order_no in screen_text(app)

        clock.advance(minutes=9, seconds=59)
        app.check_idle_lock()
        await _settle(pilot)
        assert app.screen is card
        await pilot.press("down")  # a key: the ten minutes start again
        clock.advance(minutes=9)
        app.check_idle_lock()
        await _settle(pilot)
        assert app.screen is card

        clock.advance(minutes=1)
        app.check_idle_lock()
        await _settle(pilot)
        assert isinstance(app.screen, LockScreen)
        shown = visible_text(app)
        assert "已锁定 — 王小二，输入 PIN 继续 / 换人 F12" in shown
        assert "10 分钟没有操作，屏幕已锁定" in shown
        for secret in (order_no, masked_name, "时间线"):
            assert secret not in shown
        assert app.screen.styles.background.a == 1  # opaque: nothing behind it is drawn

        await pilot.press(*"1111", "enter")
        await _settle(pilot)
        assert "PIN 不对；还可以再试 4 次" in screen_text(app) and isinstance(app.screen, LockScreen)
        await pilot.press(*PIN, "enter")
        await _settle(pilot)
        assert app.screen is card and card.order_id == order_id and order_no in screen_text(app)
        assert app.actor.id == OPERATOR
    assert (OPERATOR, "idle_lock", None, None, "") in await access_log(pins)


async def test_no_screen_key_or_palette_opens_past_the_lock(pins: Path) -> None:
    clock = IdleClock()
    app = desk(pins, idle_clock=clock, policy=SecurityPolicy(idle_lock_minutes=1))
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        clock.advance(minutes=1)
        app.check_idle_lock()
        await _settle(pilot)
        lock = app.screen
        for key in ("f4", "f5", "f6", "ctrl+p"):
            await pilot.press(key)
            await _settle(pilot)
            assert app.screen is lock, key


async def test_without_a_pin_the_lock_goes_with_any_key(demo_db: Path) -> None:
    clock = IdleClock()
    app = desk(demo_db, idle_clock=clock, policy=SecurityPolicy(idle_lock_minutes=5))  # 王小二 has no PIN
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        clock.advance(minutes=5)
        app.check_idle_lock()
        await _settle(pilot)
        assert "已锁定 — 王小二，按任意键继续 / 换人 F12" in screen_text(app)
        await pilot.press("x")
        await _settle(pilot)
        assert isinstance(app.screen, LookupScreen)
        assert app.screen.query_one("#search", Input).value == ""  # the key unlocked, typed nothing


async def test_someone_else_signing_in_at_the_lock_gets_a_fresh_desk(pins: Path) -> None:
    order_id, _, _ = await _an_order(pins)
    clock = IdleClock()
    app = desk(pins, idle_clock=clock, policy=SecurityPolicy(idle_lock_minutes=10))
    async with app.run_test(size=(100, 30)) as pilot:
        await _settle(pilot)
        app.open_order(order_id)
        await _settle(pilot)
        clock.advance(minutes=10)
        app.check_idle_lock()
        await _settle(pilot)
        await pilot.press("f12")
        await _settle(pilot)
        await pilot.press("escape")  # backed out: still locked
        await _settle(pilot)
        assert isinstance(app.screen, LockScreen)
        await pilot.press("f12")
        await _settle(pilot)
        await _sign_in(pilot, "钱小库", "1357")
        assert len(app.screen_stack) == 1 and isinstance(app.screen, LookupScreen)
        assert app.actor.id == WAREHOUSE and app.card_screen.order_id is None
