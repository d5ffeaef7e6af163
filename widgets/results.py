"""The lookup results list: one row per order, keyboard-driven, CJK columns aligned."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text
from textual.message import Message
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


def _plain(value: str) -> Text:
    """Untrusted text as an inert cell: cleaned, never parsed as markup."""
    return Text(clean_text(value), no_wrap=True, overflow="ellipsis")


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

    def on_resize(self) -> None:
        wanted = self.WIDE_COLUMNS if self.size.width >= self.WIDE else self.NARROW_COLUMNS
        if wanted != self._columns:
            self._columns = wanted
            self.set_class(wanted == self.NARROW_COLUMNS, "-narrow")  # every cell counts at 80
            self.clear(columns=True)
            for key in wanted:
                self.add_column(tr(f"col.{key}") + ("" if key == wanted[-1] else " "), key=key)
            if self._now is not None:
                self.show_hits(self._hits, self._now)

    def relabel(self) -> None:
        """Rebuild the columns (and rows) in the current language."""
        self._columns = ()
        self.on_resize()

    def show_hits(self, hits: Sequence[OrderHit], now: datetime) -> None:
        """Replace the rows with ``hits`` (keeps the cursor on the first row)."""
        self._hits, self._now = list(hits), now
        self.clear()
        if not self._columns:
            return  # not sized yet; on_resize adds the columns and shows the hits
        narrow = self._columns == self.NARROW_COLUMNS
        for hit in hits:
            paid = short_date(hit.paid_at or hit.created_at, now)
            status = Text(status_label(hit.status), style=STATUS_STYLE.get(hit.status, ""))
            after = aftersale_label(hit.after_sale)
            if after:
                status.append(" " + after, style="yellow")
            cells = {
                "order_no": _plain(hit.order_no),
                "channel": Text(channel_label(hit.channel)),
                "status": status,
                "receiver": _plain(fit(hit.receiver_name, 10)),
                "phone": _plain(fit(phone_display(hit.receiver_phone), 16)),
                "region": _plain(fit(hit.city + hit.district, 14)),
                "paid": Text(paid if narrow else short_time(hit.paid_at or hit.created_at, now)),
                "amount": Text(money(hit.total_fen), justify="right"),
                "matched": Text(tr(f"matched.{hit.matched_by}"), style="dim"),
            }
            row = [cells[key] for key in self._columns]
            for cell in row[:-1]:
                cell.append(" ")
            self.add_row(*row, key=str(hit.id))
        if hits:
            self.move_cursor(row=0)

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
