"""Masked everywhere an agent looks: lookup, the card, the exceptions (F6) and the queue (F5).

One known customer, with her phone also in her note and memo and an address edit on her timeline;
the app is walked screen by screen and no screen shows her full name, phone or street.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from db import checks as pool
from db.edits import AddressFields, save_address
from db.ingest import ingest
from db.store import NewLine, Store
from db.views import Actor
from deskapp.screens.card import CardScreen
from deskapp.screens.exceptions import ExceptionsScreen
from deskapp.screens.lookup import LookupScreen
from deskapp.screens.queue import QueueScreen
from deskapp.services.checker import Checker
from tests.appkit import OPERATOR, app_on, screen_text
from tests.heldorders import ARRIVED, CHECKED, SYNC, new_order
from widgets.i18n import set_language
from widgets.results import ResultsTable

NAME, PHONE, STREET = "欧阳娜娜", "13987654321", "文三路478号华星时代广场B座1203室"
SECRETS = (NAME, "阳娜娜", PHONE, "1398765", "98765", "文三路", "华星时代")


@pytest.fixture(autouse=True)
def chinese():
    set_language("zh")


async def _customer(path: Path) -> dict[str, int]:
    """Two orders of one customer: one the checks hold (wrong city), one on the warehouse queue."""
    customer = {"receiver_name": NAME, "receiver_phone": PHONE, "address_detail": STREET,
                "buyer_note": f"到了打{PHONE}，别放门口", "seller_memo": f"客户另一号码 {PHONE[:3]}-{PHONE[3:7]}-{PHONE[7:]}"}
    store = await Store.open(path)
    try:
        result = await ingest(store, [new_order("M-HELD", city="宁波市", **customer), new_order("M-OPEN", lines=[NewLine("SKU-2", "围巾", 1, 5900)], **customer)],
                              actor=SYNC, at=ARRIVED)
        await Checker(store).check(await pool.rows(store, result.changed_ids), at=CHECKED)
        ids = {no: await store.order_id_by_no(no) for no in ("M-HELD", "M-OPEN")}
        # an agent corrected the street: old → new on the timeline, quoting both
        await save_address(store, ids["M-HELD"], AddressFields(NAME, PHONE, "浙江省", "宁波市", "西湖区",
                                                               STREET.replace("1203", "1204")),
                           Actor("operator", OPERATOR), at=CHECKED)
        return ids
    finally:
        await store.close()


async def _settle(pilot) -> None:
    for _ in range(2):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def _shown(app) -> str:
    """Everything on the screen: its lines as text, and the exported screenshot."""
    return screen_text(app) + "\n" + app.export_screenshot()


async def test_no_screen_shows_a_customers_full_name_phone_or_street(demo_db: Path) -> None:
    ids = await _customer(demo_db)
    app = app_on(demo_db)
    seen: dict[str, str] = {}
    async with app.run_test(size=(160, 48)) as pilot:
        await _settle(pilot)
        assert isinstance(app.screen, LookupScreen)
        await pilot.press(*"4321")  # search matches the real phone …
        await _settle(pilot)
        table = app.screen.query_one(ResultsTable)
        assert {ids["M-HELD"], ids["M-OPEN"]} <= {hit.id for hit in table._hits}
        seen["lookup by last 4"] = _shown(app)
        assert "欧***" in seen["lookup by last 4"] and "139****4321" in seen["lookup by last 4"]  # … shows it masked
        await pilot.press("escape")
        await pilot.press(*"欧阳")  # and the real name
        await _settle(pilot)
        assert ids["M-HELD"] in {hit.id for hit in table._hits}
        seen["lookup by name"] = _shown(app)

        for _ in range(table.row_count):  # Enter on her held order opens its card
            if table.highlighted_order == ids["M-HELD"]:
                break
            await pilot.press("down")
        await pilot.press("enter")
        await _settle(pilot)
        assert isinstance(app.screen, CardScreen) and app.screen.order_id == ids["M-HELD"]
        seen["card (held, address edited)"] = _shown(app)
        assert "浙江省 宁波市 西湖区 ****" in seen["card (held, address edited)"]
        assert "到了打139****4321" in seen["card (held, address edited)"]
        await pilot.press("escape")
        await _settle(pilot)
        app.open_order(ids["M-OPEN"])
        await _settle(pilot)
        seen["card (open)"] = _shown(app)
        await pilot.press("escape")
        await _settle(pilot)

        await pilot.press("f6")
        await _settle(pilot)
        screen = app.screen
        assert isinstance(screen, ExceptionsScreen)
        for _ in range(screen.table.row_count):  # her order highlighted: its details under the list
            if screen.highlighted is not None and screen.highlighted.id == ids["M-HELD"]:
                break
            await pilot.press("down")
        await _settle(pilot)
        seen["exceptions"] = _shown(app)
        assert "M-HELD · 淘宝 · 欧***" in seen["exceptions"]
        await pilot.press("escape")
        await _settle(pilot)

        await pilot.press("f5")
        await _settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        seen["queue"] = _shown(app)
        assert "M-OPEN" in seen["queue"] and "欧***" in seen["queue"]

    for where, text in seen.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} shown on {where}"


async def test_the_suggested_reply_to_an_address_hold_never_reads_out_a_mask(demo_db: Path) -> None:
    from db.privacy import FIELDS, MASK
    from deskapp.services.insights import replies
    from tests.heldorders import add_held_orders

    order_id = (await add_held_orders(demo_db))["T-CONFLICT-1"]  # 宁波市 with 西湖区: held for the address
    store = await Store.open(demo_db)
    try:
        masked = await store.order_card(order_id, now=CHECKED)
        whole = await store.order_card(order_id, now=CHECKED, reveal=FIELDS)
    finally:
        await store.close()
    asked = replies(masked, CHECKED)[0]
    assert MASK not in asked and "文三路" not in asked
    assert "浙江省 宁波市 西湖区" in asked and "街道和门牌号" in asked  # what the agent can say, and what to ask
    assert "浙江省 宁波市 西湖区 文三路100号" in replies(whole, CHECKED)[0]  # revealed: the address to confirm
