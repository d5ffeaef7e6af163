"""The lookup results list: one row per order, keyboard-driven, CJK columns aligned."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text
from textual._segment_tools import line_crop
from textual.geometry import Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.widgets import DataTable

from db.sanitize import clean_text
from db.views import OrderHit
from widgets.format import (
    aftersale_label,
    channel_label,
    fit,
    money,
    phone_display,
    short_date,
    short_time,
    status_label,
)
from widgets.i18n import tr

STATUS_STYLE = {
    "pending_payment": "dim",
    "hold": "bold red",
    "cancelled": "dim strike",
    "delivered": "green",
    "completed": "green",
    "in_transit": "cyan",
    "shipped": "cyan",
}


#: The key of the one DataTable column (see ResultsTable.on_resize).
ROW = "row"


class _Cell(NamedTuple):
    """One cell's content: text (already cleaned), its style, styled runs inside it, justification."""

    text: str
    style: str = ""
    spans: tuple[Span, ...] = ()
    right: bool = False


class _Placed(NamedTuple):
    """A cell placed in its column: the text as shown, its styled runs, and the blank after it."""

    text: str
    style: str
    spans: list[Span]
    blank: int


class _Line(NamedTuple):
    """A laid-out row: its cells and its width in cells.

    DataTable holds these as its cells: measuring one is free (DataTable measures every new cell)
    and, should DataTable ever paint one itself, it renders as the same single line of text.
    """

    cells: list[_Placed]
    width: int

    @property
    def text(self) -> Text:
        line = Text(end="", no_wrap=True)
        for cell in self.cells:
            line.append_text(Text(cell.text, style=cell.style, spans=cell.spans))
            line.append(" " * cell.blank)
        return line

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.text

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)


def _segments(cell: _Placed, console: Console) -> list[Segment]:
    """A placed cell as Rich renders it (text in its styles, then the blank), before table styles."""
    if cell.spans:  # styled runs inside the cell: let Rich combine the styles
        base = [Span(0, len(cell.text), cell.style)] if cell.style else []
        segments = list(Text(cell.text, spans=[*base, *cell.spans]).render(console))
    elif cell.text:
        segments = [Segment(cell.text, console.get_style(cell.style) if cell.style else None)]
    else:
        segments = []
    if cell.blank:
        segments.append(Segment(" " * cell.blank))
    return segments


def _spaced(cells: list[_Cell]) -> list[_Cell]:
    """One space after every cell but the last (see ResultsTable.__init__)."""
    return [_Cell(cell.text + " ", cell.style, cell.spans, cell.right) for cell in cells[:-1]] + cells[-1:]


class ResultsTable(DataTable):
    """Lookup hits. Posts :class:`ResultsTable.Chosen` when the agent presses Enter on a row.

    | Key | Action |
    | :- | :- |
    | enter | Open the highlighted order. |
    | up/down | Move between orders. |
    """

    class Chosen(Message):
        """The agent chose an order to open."""

        def __init__(self, table: ResultsTable, order_id: int) -> None:
            super().__init__()
            self.table = table
            self.order_id = order_id

        @property
        def control(self) -> ResultsTable:
            return self.table

    DEFAULT_CSS = """
    ResultsTable { height: 1fr; scrollbar-size-vertical: 1; }
    ResultsTable.-narrow { scrollbar-size-vertical: 0; }
    """

    NARROW_COLUMNS = ("order_no", "channel", "status", "receiver", "phone", "paid", "amount")
    WIDE_COLUMNS = ("order_no", "channel", "status", "receiver", "phone", "region", "paid", "amount", "matched")
    WIDE = 110

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        # One space after each cell instead of padding on both sides: the narrow column set then
        # fits 80 columns with a 22-character Pinduoduo order number.
        super().__init__(cursor_type="row", zebra_stripes=True, cell_padding=0, **kwargs)
        self._hits: list[OrderHit] = []
        self._now: datetime | None = None
        self._columns: tuple[str, ...] = ()
        self._widths: dict[str, int] = {}
        self._header = _Line([], 0)
        self._rows: list[_Line] = []
        self._cell_segments: dict[int, list[list[Segment]]] = {}
        self._strips: dict[tuple, Strip] = {}
        self._pass_styles: dict[object, Style] | None = None

    # Speed. A fresh result list has to paint ~35 rows × 9 cells, and DataTable paints each cell
    # through Rich's whole console pipeline and looks up its CSS styles again for every row: ~100 ms
    # per keystroke on the agents' PCs. So the table holds one DataTable cell per row (the whole
    # line, laid out here in :meth:`_line`), and :meth:`render_line` paints it with DataTable's
    # own recipe — zebra, cursor and hover styles, per-cell metadata — in a few list operations per
    # row, with styles looked up once per repaint. The picture is DataTable's to the cell and the
    # style (tests/pilot/test_render_equivalence.py compares the two).

    def on_resize(self) -> None:
        wanted = self.WIDE_COLUMNS if self.size.width >= self.WIDE else self.NARROW_COLUMNS
        if wanted != self._columns:
            self._columns = wanted
            self.set_class(wanted == self.NARROW_COLUMNS, "-narrow")  # every cell counts at 80
            self._widths = {key: cell_len(label) for key, label in zip(wanted, self._labels(), strict=True)}
            self._fill([])
            if self._now is not None:
                self.show_hits(self._hits, self._now)

    def relabel(self) -> None:
        """Rebuild the columns (and rows) in the current language."""
        self._columns = ()
        self.on_resize()

    def _labels(self) -> list[str]:
        last = self._columns[-1]
        return [tr(f"col.{key}") + ("" if key == last else " ") for key in self._columns]

    def _cells(self, hit: OrderHit, now: datetime) -> list[_Cell]:
        # Untrusted fields are cleaned here and end up in a Text as data, never parsed as markup.
        narrow = self._columns == self.NARROW_COLUMNS
        status, style = status_label(hit.status), STATUS_STYLE.get(hit.status, "")
        spans: tuple[Span, ...] = ()
        after = aftersale_label(hit.after_sale)
        if after and narrow:  # at 80 columns the after-sale state says more than the status
            status, style = after, "yellow"
        elif after:
            spans = (Span(len(status), len(status) + 1 + len(after), "yellow"),)
            status += " " + after
        at = hit.paid_at or hit.created_at
        cells = {
            "order_no": _Cell(clean_text(hit.order_no)),
            "channel": _Cell(channel_label(hit.channel)),
            "status": _Cell(status, style, spans),
            "receiver": _Cell(fit(hit.receiver_name, 10)),
            "phone": _Cell(fit(phone_display(hit.receiver_phone), 16)),
            "region": _Cell(fit(hit.city + hit.district, 14)),
            "paid": _Cell(short_date(at, now) if narrow else short_time(at, now)),
            # At 80 columns the header (金额) says what the ¥ would: one cell for the worst-case row.
            "amount": _Cell(money(hit.total_fen).lstrip("¥") if narrow else money(hit.total_fen), right=True),
            "matched": _Cell(tr(f"matched.{hit.matched_by}"), "dim"),
        }
        return _spaced([cells[key] for key in self._columns])

    def _line(self, cells: Sequence[_Cell], lengths: Sequence[int]) -> _Line:
        """One row (or the header) with each cell placed as DataTable places it.

        A column is as wide as its widest label or cell so far (widths only grow until the columns
        are rebuilt). A cell's style covers its text, the rest of the column is blank — except that
        a right-justified cell is, as Rich justifies, stripped of trailing space and padded on the
        left, inside its style.
        """
        placed: list[_Placed] = []
        for key, cell, length in zip(self._columns, cells, lengths, strict=True):
            width = self._widths[key]
            if cell.right:
                text = cell.text.rstrip()
                shift = width - cell_len(text)
                text = " " * shift + text
                spans = [
                    Span(span.start + shift, min(span.end + shift, len(text)), span.style)
                    for span in cell.spans
                    if span.start + shift < len(text)
                ]
                placed.append(_Placed(text, cell.style, spans, 0))
            else:
                placed.append(_Placed(cell.text, cell.style, list(cell.spans), width - length))
        return _Line(placed, sum(self._widths.values()))

    def show_hits(self, hits: Sequence[OrderHit], now: datetime) -> None:
        """Replace the rows with ``hits`` (keeps the cursor on the first row)."""
        self._hits, self._now = list(hits), now
        if not self._columns:
            self.clear()
            return  # not sized yet; on_resize adds the columns and shows the hits
        rows = [self._cells(hit, now) for hit in hits]
        lengths = [[cell_len(cell.text) for cell in cells] for cells in rows]
        widths = self._widths
        for row_lengths in lengths:
            for key, length in zip(self._columns, row_lengths, strict=True):
                if length > widths[key]:
                    widths[key] = length
        lines = [self._line(cells, row_lengths) for cells, row_lengths in zip(rows, lengths, strict=True)]
        self._fill([(str(hit.id), line) for hit, line in zip(hits, lines, strict=True)])
        if hits:
            self.move_cursor(row=0)

    def _fill(self, rows: list[tuple[str, _Line]]) -> None:
        """Replace header and rows (the header follows the columns, which may have grown)."""
        labels = self._labels()
        self._header = self._line([_Cell(label) for label in labels], [cell_len(label) for label in labels])
        self._rows = [line for _, line in rows]
        self._cell_segments.clear()
        self._strips.clear()
        self.clear(columns=True)
        self.add_column(self._header.text, key=ROW)
        for key, line in rows:
            self.add_row(line, key=key)
        # DataTable sizes itself on idle, after the first repaint; the layout that follows shows or
        # hides the scrollbar, which narrows or widens the table, which then repaints every row
        # again. Size it now (to the very figures DataTable will compute) and settle the scrollbar
        # with it, so a new result list costs one layout and one repaint.
        self.virtual_size = Size(self._header.width, len(rows) + (self.header_height if self.show_header else 0))
        self._refresh_scrollbars()

    # -- painting ----------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def render_lines(self, crop: Region) -> list[Strip]:
        # The widget's and the components' styles cost a walk up the DOM each; once per repaint.
        self._pass_styles = {}
        try:
            return super().render_lines(crop)
        finally:
            self._pass_styles = None

    def _style(self, row: int | None) -> Style:
        """The widget's rich style (None) or a row's style (-1: header), cached per repaint."""
        styles = self._pass_styles if self._pass_styles is not None else {}
        if None not in styles:
            styles[None] = self.rich_style
        if row is None:
            return styles[None]
        key = row if row < 0 else row % 2  # header, even or odd row (zebra stripes)
        if key not in styles:
            styles[key] = self._get_row_style(key, styles[None])
        return styles[key]

    def _segments(self, row: int) -> list[list[Segment]]:
        """The row's (-1: the header's) cells as segments, before the table's styles."""
        segments = self._cell_segments.get(row)
        if segments is None:
            line = self._header if row < 0 else self._rows[row]
            console = self.app.console
            segments = self._cell_segments[row] = [_segments(cell, console) for cell in line.cells]
        return segments

    def render_line(self, y: int) -> Strip:
        """DataTable.render_line for this table (one line per row, no fixed rows or columns)."""
        width = self.size.width
        scroll_x, scroll_y = self.scroll_offset
        header = self.header_height if self.show_header else 0
        if y >= header:
            y += scroll_y
        row = y - header if self.show_header else y
        base_style = self._style(None)
        if not (-1 if self.show_header else 0) <= row < len(self._rows):
            return Strip.blank(width, base_style)
        cursor = self.show_cursor and self.cursor_coordinate.row == row
        hover = self.hover_coordinate.row == row
        key = (row, cursor, hover, scroll_x, width, base_style, self._pseudo_class_state, self._show_hover_cursor)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._paint(row, cursor, hover, scroll_x, width, base_style)
        return strip

    def _paint(self, row: int, cursor: bool, hover: bool, scroll_x: int, width: int, base_style: Style) -> Strip:
        # DataTable._render_line_in_row + _render_cell + _render_line, for cursor_type "row".
        row_style = self._style(row)
        component_style, post_style = self._get_styles_to_render_cell(
            row == -1, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css",
        )
        line: list[Segment] = []
        cell_style = row_style + component_style  # + the cell's metadata (adding styles is associative)
        for column, cell in enumerate(self._segments(row)):
            pre_style = cell_style + Style.from_meta({"row": row, "column": column})
            line.extend(Segment.apply_style(cell, pre_style, post_style))
        extend_style, _ = self._get_styles_to_render_cell(
            row == -1, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor, False, False
        )
        extend_style = row_style + extend_style + Style.from_meta({"row": row, "column": 0, "out_of_bounds": True})
        table_width = sum(self._widths.values())
        line.append(Segment(" " * max(0, width - table_width), extend_style))
        segments = line_crop(line, scroll_x, scroll_x + width, width)
        return Strip(segments).adjust_cell_length(width, base_style).simplify()

    @property
    def highlighted_order(self) -> int | None:
        """The id of the order under the cursor, if any."""
        if not self._hits or not 0 <= self.cursor_row < len(self._hits):
            return None
        return self._hits[self.cursor_row].id

    def action_select_cursor(self) -> None:
        order_id = self.highlighted_order
        if order_id is not None:
            self.post_message(self.Chosen(self, order_id))
