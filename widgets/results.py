"""The lookup results list: one row per order, keyboard-driven, CJK columns aligned."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from db.sanitize import clean_text
from db.views import OrderHit
from widgets.format import aftersale_label, channel_label, money, short_time, status_label
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
    ResultsTable { height: 1fr; }
    """

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._ids: list[int] = []

    def on_mount(self) -> None:
        for key in ("order_no", "channel", "status", "receiver", "phone", "region", "paid", "amount", "matched"):
            self.add_column(tr(f"col.{key}"), key=key)

    def show_hits(self, hits: Sequence[OrderHit], now: datetime) -> None:
        """Replace the rows with ``hits`` (keeps the cursor on the first row)."""
        self.clear()
        self._ids = [hit.id for hit in hits]
        for hit in hits:
            status = Text(status_label(hit.status), style=STATUS_STYLE.get(hit.status, ""))
            after = aftersale_label(hit.after_sale)
            if after:
                status.append(" " + after, style="yellow")
            self.add_row(
                _plain(hit.order_no),
                Text(channel_label(hit.channel)),
                status,
                _plain(hit.receiver_name),
                _plain(hit.receiver_phone),
                _plain(hit.city + hit.district),
                Text(short_time(hit.paid_at or hit.created_at, now)),
                Text(money(hit.total_fen), justify="right"),
                Text(tr(f"matched.{hit.matched_by}"), style="dim"),
                key=str(hit.id),
            )
        if hits:
            self.move_cursor(row=0)

    @property
    def highlighted_order(self) -> int | None:
        """The id of the order under the cursor, if any."""
        if not self._ids or self.cursor_row < 0 or self.cursor_row >= len(self._ids):
            return None
        return self._ids[self.cursor_row]

    def action_select_cursor(self) -> None:
        order_id = self.highlighted_order
        if order_id is not None:
            self.post_message(self.Chosen(self, order_id))
