"""The fast painters draw exactly what the general ones did.

* The results list paints its rows itself (widgets/results.py): compared with DataTable's own
  painting of the same table, cell by cell — character and style — for the header, zebra rows, the
  cursor row, a hovered row, focused and not, narrow and wide column sets.
* QuickTable (widgets/quick_table.py) is compared with the Rich table it wraps, segment for segment,
  for every demo order's facts, timeline and order lines, at widths from 1 to 160 columns.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from rich.segment import Segment
from textual.coordinate import Coordinate
from textual.strip import Strip
from textual.widgets import DataTable

from db.store import Store
from deskapp.services.demo import DEMO_NOW
from tests.appkit import app_on
from widgets import order_card
from widgets.i18n import set_language
from widgets.quick_table import QuickTable
from widgets.results import ResultsTable


@pytest.fixture(autouse=True)
def chinese():
    set_language("zh")


def _cells(strip: Strip) -> list[tuple]:
    """What each terminal cell shows: its character and every visible part of its style."""
    cells = []
    for segment in strip:
        style = segment.style
        look = (
            None
            if style is None
            else (style.color, style.bgcolor, style.bold, style.dim, style.italic, style.underline,
                  style.strike, style.reverse, style.link)
        )
        cells.extend((char, look) for char in segment.text)
    return cells


def _assert_paints_like_datatable(table: ResultsTable) -> None:
    for y in range(table.size.height):
        assert _cells(table.render_line(y)) == _cells(DataTable.render_line(table, y)), f"line {y}"


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["narrow", "wide"])
async def test_results_rows_paint_as_datatable_paints_them(demo_db: Path, size: tuple[int, int]) -> None:
    app = app_on(demo_db)
    async with app.run_test(size=size) as pilot:
        await pilot.press("王")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(ResultsTable)
        assert table.row_count > 5
        _assert_paints_like_datatable(table)  # the box has focus: the table's cursor is blurred

        table.focus()
        await pilot.press("down", "down", "down")
        await pilot.pause()
        assert table.cursor_row == 3
        _assert_paints_like_datatable(table)

        table.hover_coordinate = Coordinate(1, 0)
        table._set_hover_cursor(True)  # noqa: SLF001 - what a mouse move does
        await pilot.pause()
        _assert_paints_like_datatable(table)


async def test_quick_table_renders_the_same_segments_as_rich(demo_db: Path) -> None:
    store = await Store.open(demo_db)
    try:
        cards = [await store.order_card(order_id, now=DEMO_NOW) for order_id in range(1, 401, 3)]
    finally:
        await store.close()
    cards = [card for card in cards if card is not None]
    assert len(cards) > 100
    console = Console(width=200, color_system="truecolor", legacy_windows=False)
    tables = {
        "facts": lambda card: order_card.card_facts(card, DEMO_NOW),
        "timeline": lambda card: order_card.timeline_table(card.timeline, DEMO_NOW),
        "lines": lambda card: order_card.lines_table(card),
    }
    for width in (1, 8, 20, 33, 40, 57, 76, 78, 116, 118, 138, 160):
        options = console.options.update_width(width)
        for card in cards:
            for name, make in tables.items():
                table = make(card)
                if not hasattr(table, "columns"):
                    continue  # "—": no lines
                expected: list[Segment] = list(console.render(make(card), options))
                assert list(console.render(QuickTable(table), options)) == expected, (name, card.order_no, width)
