"""Strangers' text is data: markup stays literal, escape sequences never reach the terminal."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from db.models import Order
from db.store import NewLine, NewOrder, Store
from db.views import Actor
from deskapp.__main__ import main
from deskapp.screens.card import CardScreen
from deskapp.services.demo import DEMO_NOW
from tests.appkit import app_on, screen_text
from widgets.i18n import set_language
from widgets.results import ResultsTable

MARKUP = ["[bold red]x[/]", "[@click=app.quit]点我[/]", "[/]", "[link=https://evil.example]ok[/link]", "[$x]", "[B]"]
CONTROLS = [
    "\x1b[2J",  # clear screen
    "\x1b]52;c;aGVsbG8=\x07",  # OSC 52: write the clipboard
    "\x1b]8;;https://evil.example\x07link\x1b]8;;\x07",  # OSC 8 hyperlink
    "\x1b]0;pwned\x07",  # window title
    "\x9b2J",  # 8-bit CSI
    "\u202e",  # right-to-left override
    "\u2066",
]
DANGEROUS = ["\x1b", "\x9b", "\x9d", "\u202e", "\u2066", "\x07"]


def _evil(label: str) -> str:
    return label + "".join(MARKUP) + "".join(CONTROLS) + "尾"


async def _plant(path: Path) -> int:
    """One order full of hostile text, in through the Store and then raw past it (render must hold)."""
    store = await Store.open(path)
    try:
        order_id = await store.add_order(
            NewOrder(
                channel="taobao",
                shop_code="evil-shop",
                channel_order_id="6660000000000000001",
                created_at=DEMO_NOW - timedelta(hours=3),
                paid_at=DEMO_NOW - timedelta(hours=3),
                ship_by=DEMO_NOW + timedelta(hours=21),
                receiver_name="毒蛇" + "[bold red]x[/]",
                receiver_phone="13800001111",
                province="浙江省",
                city="杭州市",
                district="西湖区",
                address_detail=_evil("文三路"),
                buyer_note=_evil("留言"),
                tags=["[@click=app.quit]"],
                lines=[NewLine(sku="[/]", title=_evil("商品"), quantity=1, price_fen=100)],
            ),
            actor=Actor("connector", "taobao:evil-shop"),
            at=DEMO_NOW - timedelta(hours=3),
        )
        # The same text written straight into the table, as if it came by another road.
        async with store.write() as conn:
            await conn.execute(
                update(Order.__table__)
                .where(Order.__table__.c.id == order_id)
                .values(seller_memo=_evil("备注"), receiver_phone="138\x1b[2J0000\u202e1111")
            )
    finally:
        await store.close()
    return order_id


@pytest.fixture(autouse=True)
def chinese():
    set_language("zh")


async def test_every_screen_shows_hostile_text_as_inert_literal_text(demo_db: Path) -> None:
    order_id = await _plant(demo_db)
    app = app_on(demo_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press(*"毒蛇")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(ResultsTable)
        assert table.highlighted_order == order_id
        lookup_svg = app.export_screenshot()
        assert "毒**" in screen_text(app)  # the name masked (db.privacy): nothing of it to interpret

        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, CardScreen)
        card_svg = app.export_screenshot()
        text = screen_text(app)
        for literal in ("[bold red]x[/]", "[@click=app.quit]点我[/]", "[link=https://evil.example]ok[/link]"):
            assert literal in text
        assert "尾" in text  # the text after the sequences is still shown
        for svg in (lookup_svg, card_svg):
            for char in DANGEROUS:
                assert char not in svg
        await pilot.click(offset=(30, 8))  # clicking on the text runs nothing
        await pilot.pause()
        assert app.is_running


def test_cli_output_is_inert(
    demo_db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # one line per row, so literals are not wrapped apart
    asyncio.run(_plant(demo_db))
    assert main(["show", "6660000000000000001", "--db", str(demo_db)]) == 0
    shown = capsys.readouterr().out
    assert "[bold red]x[/]" in shown and "尾" in shown
    assert main(["lookup", "毒蛇", "--db", str(demo_db), "--json"]) == 0
    found = capsys.readouterr().out
    assert json.loads(found)[0]["receiver_name"] == "毒***"  # masked
    # revealed, the name is the literal text it was
    assert main(["show", "6660000000000000001", "--db", str(demo_db), "--operator", "wang", "--json",
                 "--reveal", "name", "--reason", "核对收货人"]) == 0
    revealed = capsys.readouterr().out
    assert json.loads(revealed)["receiver_name"] == "毒蛇[bold red]x[/]"
    for char in DANGEROUS:
        assert char not in shown
        assert char not in found
        assert char not in revealed
