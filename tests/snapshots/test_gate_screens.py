"""Snapshot tests: the sign-in screen and the lock screen at 80×24, in Chinese.

Fixed seed, fixed clock, blink off, workers awaited. Update with ``pytest tests/snapshots
--snapshot-update`` after looking at the new pictures.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.appkit import OPERATOR, WAREHOUSE
from tests.sessionkit import PIN, desk, give_pins
from widgets.i18n import set_language


@pytest.fixture(autouse=True)
def chinese():
    set_language("zh")


async def _settle(pilot) -> None:  # noqa: ANN001
    for _ in range(2):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def test_sign_in_screen(snap_compare, demo_db: Path) -> None:  # noqa: ANN001
    asyncio.run(give_pins(demo_db, {OPERATOR: PIN, WAREHOUSE: PIN}))

    async def pick(pilot) -> None:  # noqa: ANN001
        await _settle(pilot)
        await pilot.press(*"小")  # filtered to two, the first highlighted
        await _settle(pilot)

    assert snap_compare(desk(demo_db, require_sign_in=True), terminal_size=(80, 24), run_before=pick)


def test_lock_screen_over_a_card(snap_compare, demo_db: Path) -> None:  # noqa: ANN001
    asyncio.run(give_pins(demo_db, {OPERATOR: PIN}))

    async def lock(pilot) -> None:  # noqa: ANN001
        await _settle(pilot)
        await pilot.press(*"王")
        await _settle(pilot)
        await pilot.press("enter")  # the first order's card
        await _settle(pilot)
        pilot.app.lock(idle_minutes=10)
        await _settle(pilot)

    assert snap_compare(desk(demo_db), terminal_size=(80, 24), run_before=lock)
