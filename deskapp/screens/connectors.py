"""The Connectors screen (F4): every channel shop's sync health at a glance, and its quarantine.

One row per connector: state (正常 / 异常 / 从未成功 / 已暂停), last success, lag, orders today
(new / updated), errors today and open quarantined payloads; below, the highlighted connector's last
error in plain words. The numbers come from the database (``db.ingest.connector_statuses``), so
every terminal shows the same ones; what only this process knows (a shop that could not start, a
shop switched off in the config) comes from the app's :class:`~deskapp.services.livesync.LiveSync`.
The data is read again every few seconds while the screen shows — one read, rows updated in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.timer import Timer
from textual.widgets import DataTable, Static

from db.sanitize import clean_text
from widgets.footer import DeskFooter
from widgets.format import channel_label, duration, fit, short_time
from widgets.header import ago
from widgets.i18n import tr

from deskapp.screens.base import DeskScreen

if TYPE_CHECKING:
    from db.ingest import ConnectorStatus
    from deskapp.app import DeskApp
    from deskapp.services.livesync import LiveConnector, LiveSync

#: Seconds between two reads while the screen shows.
REFRESH_S = 3.0

STATE_STYLE = {"ok": "green", "failing": "bold red", "never": "yellow", "paused": "dim"}


class KeyedTable(DataTable):
    """A row-cursor DataTable filled from ``(key, cells)`` rows; a refill keeps the cursor on its row.

    When the keys are the same as shown, only changed cells are rewritten (no scroll jump, no
    flicker); otherwise the rows are rebuilt in the same handler, so one frame shows the new list.
    Cells must be ``Text`` (a ``str`` cell would be parsed as markup).
    """

    def __init__(self, columns: Sequence[tuple[str, str]], **kwargs) -> None:  # noqa: ANN003
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self._columns = list(columns)
        self._shown: list[tuple[str, tuple[Text, ...]]] = []

    def on_mount(self) -> None:
        self.relabel()

    def relabel(self) -> None:
        """(Re)build the column headers in the current language."""
        self.clear(columns=True)
        for key, label in self._columns:
            self.add_column(Text(tr(label)), key=key)
        shown, self._shown = self._shown, []
        self.show_rows(shown)

    @property
    def highlighted_key(self) -> str | None:
        """The key of the row under the cursor, if any."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def show_rows(self, rows: Sequence[tuple[str, tuple[Text, ...]]]) -> None:
        """Show ``rows``; unchanged ones are left alone."""
        rows = list(rows)
        if [k for k, _ in rows] == [k for k, _ in self._shown]:
            for (key, cells), (_, before) in zip(rows, self._shown, strict=True):
                for (column, _), cell, old in zip(self._columns, cells, before, strict=True):
                    if cell != old:
                        self.update_cell(key, column, cell, update_width=True)
            self._shown = rows
            return
        keep = self.highlighted_key
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        self._shown = rows
        keys = [k for k, _ in rows]
        if keep in keys:
            self.move_cursor(row=keys.index(keep), animate=False)


@dataclass(frozen=True)
class ConnectorRow:
    """One connector as the screen shows it: the database's counters and this process's notes."""

    key: str  # connector, or connector/stream for a stream other than orders
    connector: str
    channel: str
    shop: str
    state: str  # ok | failing | never | paused
    status: ConnectorStatus | None
    note: LiveConnector | None


def merge_rows(statuses: Sequence[ConnectorStatus], live: LiveSync | None) -> list[ConnectorRow]:
    """The screen's rows: every connector the pool has heard from plus every configured one."""
    notes = dict(live.connectors) if live is not None else {}
    rows: list[ConnectorRow] = []
    seen: set[str] = set()
    for status in statuses:
        key = status.connector if status.stream == "orders" else f"{status.connector}/{status.stream}"
        note = notes.get(status.connector) if status.stream == "orders" else None
        seen.add(status.connector)
        rows.append(_row(key, status.connector, status.state, status, note))
    for connector, note in sorted(notes.items()):
        if connector not in seen:
            rows.append(_row(connector, connector, "never", None, note))
    return rows


def _row(key: str, connector: str, state: str, status: ConnectorStatus | None,
         note: LiveConnector | None) -> ConnectorRow:
    channel, _, shop = connector.partition(":")
    if note is not None and note.state == "paused":
        state = "paused"
    elif note is not None and note.state == "not_started":
        state = "failing"
    return ConnectorRow(key, connector, note.channel if note is not None else channel, shop, state, status, note)


def connector_label(channel: str, shop: str, stream: str = "orders") -> str:
    """'淘宝 live1' (the channel's name and the shop code), cleaned and cut to fit a column."""
    label = fit(f"{channel_label(channel)} {shop}".strip(), 18)
    return label if stream == "orders" else f"{label} ({clean_text(stream)})"


def row_cells(row: ConnectorRow, now: datetime) -> tuple[Text, ...]:
    """The table cells of one connector."""
    s = row.status
    dim = "dim"
    last_ok = ago(max(timedelta(0), now - s.last_success_at)) if s and s.last_success_at else "—"
    lag = duration(s.lag, units=1) if s and s.lag is not None else "—"
    quarantine = s.open_quarantine if s else 0
    return (
        Text(connector_label(row.channel, row.shop, s.stream if s else "orders")),
        Text(tr(f"conn.state.{row.state}"), style=STATE_STYLE.get(row.state, "")),
        Text(last_ok, style="" if s and s.last_success_at else dim),
        Text(lag, style="" if s and s.lag is not None else dim),
        Text(f"{s.orders_today if s else 0}/{s.updated_today if s else 0}", justify="right"),
        Text(str(s.errors_today if s else 0), justify="right", style="red" if s and s.errors_today else dim),
        Text(str(quarantine), justify="right", style="bold yellow" if quarantine else dim),
    )


def row_detail(row: ConnectorRow, now: datetime) -> Content:
    """The detail lines of one connector: where it stands and its last error in plain words."""
    s = row.status
    facts = [connector_label(row.channel, row.shop, s.stream if s else "orders")]
    if s is not None and s.watermark is not None:
        facts.append(tr("conn.watermark", at=short_time(s.watermark, now)))
    if s is not None and s.consecutive_errors:
        facts.append(tr("conn.streak", n=s.consecutive_errors))
    lines = [" · ".join(facts)]
    note = row.note
    if note is not None and note.state == "paused":
        lines.append(tr("conn.paused"))
    elif note is not None and note.state == "not_started":
        lines.append(tr("conn.not_started", reason=clean_text(note.reason or "")))
    elif s is not None and s.last_error:  # failing now, or the last error before it recovered
        when = ago(max(timedelta(0), now - s.last_error_at)) if s.last_error_at else "—"
        lines.append(tr("conn.last_error", ago=when, error=clean_text(s.last_error, multiline=True)))
    else:
        lines.append(tr("conn.no_error"))
    if s is not None and s.open_quarantine:
        lines.append(tr("conn.hint"))
    return Content("\n".join(lines))


class ConnectorsScreen(DeskScreen):
    """Sync health per connector.

    | Key | Action |
    | :- | :- |
    | up/down | Move between connectors. |
    | enter / q | The highlighted connector's quarantined payloads. |
    | escape | Back to where you were. |
    """

    BINDINGS = [
        Binding("escape", "back", "bind.back", id="connectors.back", tooltip="bind.back"),
        Binding("q", "quarantine", "bind.quarantine", id="connectors.quarantine", tooltip="bind.quarantine"),
    ]

    DEFAULT_CSS = """
    ConnectorsScreen #conn-summary { height: 1; padding: 0 1; color: $text-muted; }
    ConnectorsScreen #connectors { height: 1fr; }
    ConnectorsScreen #conn-detail {
        height: auto; max-height: 9; padding: 0 1; border-top: solid $primary-muted;
    }
    """

    app: DeskApp

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[ConnectorRow] = []
        self._timer: Timer | None = None
        self._summary = ""

    def compose(self) -> ComposeResult:
        yield self.header()
        yield Static(Content(tr("conn.title")), id="conn-summary")
        yield KeyedTable(
            [("connector", "conn.col.connector"), ("state", "conn.col.state"), ("last_ok", "conn.col.last_ok"),
             ("lag", "conn.col.lag"), ("today", "conn.col.today"), ("errors", "conn.col.errors"),
             ("quarantine", "conn.col.quarantine")],
            id="connectors",
        )
        yield Static(Content(""), id="conn-detail")
        yield DeskFooter()

    def on_mount(self) -> None:
        self.table.focus()
        self._timer = self.set_interval(REFRESH_S, self.reload)
        self.reload()

    def on_screen_suspend(self, _: events.ScreenSuspend) -> None:
        if self._timer is not None:
            self._timer.pause()

    def on_screen_resume(self, _: events.ScreenResume) -> None:
        if self._timer is not None and self.is_mounted:
            self._timer.resume()
            self.reload()

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#connectors", KeyedTable)

    @work(group="connectors-read", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        """Read every connector's health once and show it."""
        from connectors.sync import LEASE_NAME, PROCESS_HOLDER
        from db.ingest import connector_statuses, lease_holder

        store = await self.app.full_store()
        now = self.app.clock()
        statuses = await connector_statuses(store, now=now)
        holder = await lease_holder(store, LEASE_NAME)
        self.show(statuses, holder[0] if holder else None, PROCESS_HOLDER, now)

    def show(self, statuses: Sequence[ConnectorStatus], holder: str | None, me: str, now: datetime) -> None:
        """Fill the table, the summary line and the detail from one read."""
        live = self.app.live
        self.rows = merge_rows(statuses, live)
        self.table.show_rows([(row.key, row_cells(row, now)) for row in self.rows])
        if holder is None:
            who = tr("conn.holder.none")
        elif holder == me:
            who = tr("conn.holder.here")
        else:
            who = tr("conn.holder.other", who=fit(holder, 32))
        failing = sum(row.state == "failing" for row in self.rows)
        waiting = sum(row.status.open_quarantine for row in self.rows if row.status is not None)
        summary = who + " · " + tr("conn.summary", n=len(self.rows), bad=failing, q=waiting)
        self._set("#conn-summary", summary)
        self._show_detail(now)

    def _set(self, selector: str, text: str | Content) -> None:
        content = text if isinstance(text, Content) else Content(text)
        self.query_one(selector, Static).update(content)

    def _show_detail(self, now: datetime | None = None) -> None:
        now = now or self.app.clock()
        live = self.app.live
        lines: list[str] = []
        if live is not None and live.problems:
            path = clean_text(str(live.config_path or ""))
            from widgets.i18n import language

            lines.append(tr("conn.config_problems", path=path))
            lines.extend("· " + clean_text(p.text(language())) for p in live.problems[:6])
            self._set("#conn-detail", Content("\n".join(lines)))
            return
        row = self.highlighted
        if row is not None:
            self._set("#conn-detail", row_detail(row, now))
        elif live is None or not live.configured:
            self._set("#conn-detail", tr("conn.not_configured"))
        else:
            self._set("#conn-detail", tr("conn.empty"))

    @property
    def highlighted(self) -> ConnectorRow | None:
        """The connector under the cursor."""
        key = self.table.highlighted_key
        return next((row for row in self.rows if row.key == key), None)

    @on(DataTable.RowHighlighted, "#connectors")
    def _highlighted(self) -> None:
        self._show_detail()

    @on(DataTable.RowSelected, "#connectors")
    def _selected(self) -> None:
        self.action_quarantine()

    def action_quarantine(self) -> None:
        """Show the highlighted connector's quarantined payloads."""
        row = self.highlighted
        if row is None:
            return
        from deskapp.screens.quarantine import QuarantineScreen

        self.app.push_screen(QuarantineScreen(row.connector, row.channel, row.shop))

    def action_back(self) -> None:
        self.dismiss()
