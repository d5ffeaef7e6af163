"""Snapshot tests: the address form with a conflict, and the exceptions screen, in Chinese.

Fixed demo seed and clock, orders held by the real checks at fixed times (tests/heldorders.py),
the address check run at once (no debounce), the text cursor's blink off, workers awaited.
Update with ``pytest tests/snapshots --snapshot-update`` after looking at the new pictures.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Input

from deskapp.screens import address_form
from tests.appkit import app_on
from tests.heldorders import add_held_orders
from widgets.i18n import set_language


@pytest.fixture(autouse=True)
def chinese(monkeypatch: pytest.MonkeyPatch):
    set_language("zh")
    monkeypatch.setattr(address_form, "DEBOUNCE_S", 0)


async def _settle(pilot) -> None:
    for _ in range(2):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def test_address_form_with_a_conflict(snap_compare, demo_db: Path) -> None:
    order_id = asyncio.run(add_held_orders(demo_db))["T-CONFLICT-1"]

    async def open_form(pilot) -> None:
        await _settle(pilot)
        pilot.app.open_order(order_id)
        await _settle(pilot)
        await pilot.press("e")
        await _settle(pilot)
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False

    assert snap_compare(app_on(demo_db), terminal_size=(80, 24), run_before=open_form)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_exceptions_screen(snap_compare, demo_db: Path, size: tuple[int, int]) -> None:
    asyncio.run(add_held_orders(demo_db))

    async def open_exceptions(pilot) -> None:
        await _settle(pilot)
        await pilot.press("f6")
        await _settle(pilot)
        await pilot.press(*["down"] * 5)  # a conflict the checks held: its reason below the list
        await _settle(pilot)

    assert snap_compare(app_on(demo_db), terminal_size=size, run_before=open_exceptions)
