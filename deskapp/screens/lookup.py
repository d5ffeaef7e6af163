"""The lookup screen: one box, results as you type, Enter opens the card.

The results follow background sync by themselves: when a sync run changed orders, the query on
screen is asked again (≤ 50 rows, about a millisecond) and the list is redrawn only if its rows
differ — with the same order highlighted wherever it moved to, and focus left where it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import Input, Static

from db.search import LIMIT
from widgets.footer import DeskFooter
from widgets.header import DeskHeader
from widgets.i18n import tr
from widgets.results import ResultsTable

from deskapp.screens.base import DeskScreen, localize_bindings

if TYPE_CHECKING:
    from db.views import OrderHit
    from deskapp.app import DeskApp
    from deskapp.services.livesync import OrdersChanged


class SearchBox(Input):
    """The query box; ↓ moves to the results so hands never leave the keyboard."""

    BINDINGS = [Binding("down", "screen.to_results", show=False)]


class LookupScreen(DeskScreen):
    """Find an order by anything the customer says.

    | Key | Action |
    | :- | :- |
    | (type) | Search as you type; the previous search is cancelled. |
    | down | From the box into the results. |
    | enter | Open the highlighted order (from the box: the first result). |
    | escape | Back to the box; press again to clear it. |
    | f3 / ctrl+l | Focus the search box. |
    """

    BINDINGS = [
        Binding("enter", "open", "bind.open", id="lookup.open", tooltip="bind.open", priority=True),
        Binding("escape", "clear", "bind.clear", id="lookup.clear", tooltip="bind.clear"),
        Binding("f3,ctrl+l", "focus_search", "bind.search", id="lookup.search", tooltip="bind.search"),
    ]

    DEFAULT_CSS = """
    LookupScreen SearchBox { margin: 0 0; }
    LookupScreen #lookup-status { height: 1; padding: 0 1; color: $text-muted; }
    """

    app: DeskApp

    def __init__(self) -> None:
        super().__init__()
        self._shown_query = ""  # the query whose answer the list shows
        self._shown_hits: list[OrderHit] = []
        self._searches = 0  # bumped by every search: a refresh that started before one gives way

    def compose(self) -> ComposeResult:
        yield self.header()
        yield SearchBox(placeholder=tr("lookup.placeholder"), id="search")
        yield Static(Content(tr("lookup.hint")), id="lookup-status")
        yield ResultsTable(id="results")
        yield DeskFooter()

    def on_mount(self) -> None:
        self.query_one("#search", SearchBox).focus()
        self.app.orders_changed_signal.subscribe(self, self._orders_changed)

    def relabel(self) -> None:
        """Redraw every word on this screen in the current language (after F2)."""
        localize_bindings(self)
        self.refresh_bindings()
        box = self.query_one("#search", SearchBox)
        box.placeholder = tr("lookup.placeholder")
        self._status(tr("lookup.hint"))
        self.results.relabel()
        self.query_one(DeskHeader).refresh()
        self.search(box.value)

    @property
    def results(self) -> ResultsTable:
        return self.query_one("#results", ResultsTable)

    def _status(self, text: str) -> None:
        # One line whatever it says: repaint it, without a layout pass over the whole screen.
        self.query_one("#lookup-status", Static).update(Content(text), layout=False)

    @on(Input.Changed, "#search")
    def _query_changed(self, event: Input.Changed) -> None:
        self.search(event.value)

    @work(exclusive=True, group="search", exit_on_error=False)
    async def search(self, query: str) -> None:
        """Run one search; a newer keystroke cancels this one before it paints."""
        self._searches += 1
        query = query.strip()
        if not query:
            self._shown_query, self._shown_hits = "", []
            self.results.show_hits([], self.app.clock())
            self._status(tr("lookup.hint"))
            return
        hits = await self.app.store.find_orders(query)
        self._shown_query, self._shown_hits = query, hits
        self.results.show_hits(hits, self.app.clock())
        self._found(query, hits)

    def _orders_changed(self, _change: OrdersChanged) -> None:
        # Any change may touch a row shown or add one that matches: asking again is cheaper than
        # working out which. Nothing on screen: nothing to do.
        if self._shown_query:
            self._refresh_results()

    @work(exclusive=True, group="refresh", exit_on_error=False)
    async def _refresh_results(self) -> None:
        """The query on screen, asked again after a sync; the list redrawn only if it changed, the
        highlighted order kept highlighted (by id), focus left where it is."""
        query, searches = self._shown_query, self._searches
        if self.query_one("#search", SearchBox).value.strip() != query:
            return  # the agent is typing: the search on its way shows the new rows anyway
        hits = await self.app.store.find_orders(query)
        if searches != self._searches or query != self._shown_query or hits == self._shown_hits:
            return  # a search painted in the meantime, or nothing the list shows has changed
        table = self.results
        keep, row, scroll = table.highlighted_order, table.cursor_row, table.scroll_y
        self._shown_hits = hits
        table.show_hits(hits, self.app.clock())
        if hits:
            ids = [hit.id for hit in hits]
            table.scroll_to(y=scroll, animate=False, immediate=True)
            # Scrolls only if the row is out of view now (scroll_to_region keeps a visible one still).
            table.move_cursor(row=ids.index(keep) if keep in ids else min(row, len(hits) - 1))
        self._found(query, hits)

    def _found(self, query: str, hits: list[OrderHit]) -> None:
        if not hits:
            self._status(tr("lookup.none", q=query))
        elif len(hits) >= LIMIT:
            self._status(tr("lookup.more", n=len(hits)))
        else:
            self._status(tr("lookup.found", n=len(hits)) + " · " + tr("lookup.hint"))

    @on(Input.Submitted, "#search")
    def _submitted(self) -> None:
        self.action_open()

    @on(ResultsTable.Chosen)
    def _chosen(self, event: ResultsTable.Chosen) -> None:
        self.app.open_order(event.order_id)

    def action_open(self) -> None:
        order_id = self.results.highlighted_order
        if order_id is not None:
            self.app.open_order(order_id)

    def action_to_results(self) -> None:
        if self.results.row_count:
            self.results.focus()

    def action_focus_search(self) -> None:
        self.query_one("#search", SearchBox).focus()

    def action_clear(self) -> None:
        box = self.query_one("#search", SearchBox)
        if not box.has_focus:
            box.focus()
        else:
            box.value = ""
