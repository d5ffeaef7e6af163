"""One connector's quarantined payloads: inspect, retry through its adapter, or discard.

A payload lands here when its adapter could not map it or the pool refused it (``db.ingest``);
nothing is dropped silently. Everything shown is a stranger's text: payloads and reasons are
cleaned (``db.sanitize.clean_text``) and shown as ``Text``/``Content`` built from plain strings,
never as markup. Retry and discard are recorded under the operator.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import DataTable, Static

from db.privacy import mask_payload, mask_text
from db.sanitize import clean_text
from widgets.footer import DeskFooter
from widgets.format import fit, short_time
from widgets.i18n import tr

from deskapp.screens.base import DeskScreen, localize_bindings
from deskapp.screens.connectors import REFRESH_S, KeyedTable, connector_label

if TYPE_CHECKING:
    from db.ingest import QuarantineView
    from deskapp.app import DeskApp

#: Most characters of a payload shown when inspecting it (the rest is cut, and says so).
PAYLOAD_SHOWN = 200_000
#: The entries one screen lists (most recently seen first).
LIST_LIMIT = 200


def pretty_payload(payload: str) -> str:
    """A stored payload for reading: JSON indented (CJK as is), anything else as text; cleaned, and
    the receiver's phone, address and name masked (``db.privacy.mask_payload``) like every screen.

    JSON escapes C0 controls inside strings (``\\u001b``), so they show as inert text; C1 controls
    and bidi overrides, which it leaves as they are, are removed by ``clean_text``.
    """
    try:
        text = json.dumps(mask_payload(json.loads(payload)), ensure_ascii=False, indent=2)
    except (ValueError, RecursionError):
        text = mask_text(payload)
    if len(text) > PAYLOAD_SHOWN:
        text = text[:PAYLOAD_SHOWN] + "\n…"
    return clean_text(text, multiline=True).expandtabs(4)


class PayloadScreen(ModalScreen[None]):
    """One quarantined payload, pretty-printed and scrollable; Escape closes it."""

    BINDINGS = [
        Binding("escape,i", "close", "bind.close", id="payload.close", tooltip="bind.close"),
    ]
    DEFAULT_CSS = """
    PayloadScreen { align: center middle; }
    PayloadScreen > Vertical {
        width: 90%; height: 90%; border: round $accent; background: $surface; padding: 0 1;
    }
    PayloadScreen #payload-title { height: auto; text-style: bold; }
    PayloadScreen #payload-scroll { height: 1fr; }
    PayloadScreen #payload-keys { height: 1; color: $text-muted; }
    """

    def __init__(self, entry: QuarantineView) -> None:
        super().__init__()
        self.entry = entry
        localize_bindings(self)

    def compose(self) -> ComposeResult:
        entry = self.entry
        title = tr("quar.payload_title", id=entry.id, connector=clean_text(entry.connector),
                   external_id=clean_text(entry.external_id or "—"))
        with Vertical():
            yield Static(Content(title), id="payload-title")
            with VerticalScroll(id="payload-scroll"):
                yield Static(Content(pretty_payload(entry.payload)), id="payload", expand=True)
            yield Static(Content(tr("quar.payload_keys")), id="payload-keys")

    def on_mount(self) -> None:
        self.query_one("#payload-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question: y or Enter says yes, n or Escape says no."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "bind.yes", id="confirm.yes", tooltip="bind.yes"),
        Binding("n,escape", "answer(False)", "bind.no", id="confirm.no", tooltip="bind.no"),
    ]
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical {
        width: 64; max-width: 95%; height: auto; border: round $warning; background: $surface; padding: 0 1;
    }
    ConfirmScreen #confirm-keys { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question
        localize_bindings(self)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(self.question), id="confirm-question")
            yield Static(Content(f"y / Enter {tr('bind.yes')} · n / Esc {tr('bind.no')}"), id="confirm-keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class QuarantineScreen(DeskScreen):
    """The open quarantined payloads of one connector.

    | Key | Action |
    | :- | :- |
    | up/down | Move between payloads. |
    | i | Inspect the payload (pretty-printed JSON). |
    | r | Retry it through the connector's adapter. |
    | d | Discard it (asks first; recorded under your name). |
    | escape | Back to the connectors. |
    """

    BINDINGS = [
        Binding("escape", "back", "bind.back", id="quarantine.back", tooltip="bind.back"),
        Binding("i", "inspect", "bind.inspect", id="quarantine.inspect", tooltip="bind.inspect"),
        Binding("r", "retry", "bind.retry", id="quarantine.retry", tooltip="bind.retry"),
        Binding("d", "discard", "bind.discard", id="quarantine.discard", tooltip="bind.discard"),
    ]

    DEFAULT_CSS = """
    QuarantineScreen #quar-title { height: 1; padding: 0 1; color: $text-muted; }
    QuarantineScreen #quarantine { height: 1fr; }
    QuarantineScreen #quar-none { display: none; height: 1fr; content-align: center middle; color: $text-muted; }
    QuarantineScreen #quar-detail {
        height: auto; max-height: 9; padding: 0 1; border-top: solid $primary-muted;
    }
    QuarantineScreen.-empty #quarantine, QuarantineScreen.-empty #quar-detail { display: none; }
    QuarantineScreen.-empty #quar-none { display: block; }
    """

    app: DeskApp

    def __init__(self, connector: str, channel: str, shop: str) -> None:
        super().__init__()
        self.connector = connector
        self.channel = channel
        self.shop = shop
        self.entries: list[QuarantineView] = []
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield self.header()
        yield Static(Content(self._title()), id="quar-title")
        yield KeyedTable(
            [("time", "quar.col.time"), ("external_id", "quar.col.external_id"),
             ("attempts", "quar.col.attempts"), ("reason", "quar.col.reason")],
            id="quarantine",
        )
        yield Static(Content(tr("quar.none")), id="quar-none")  # instead of an empty table
        yield Static(Content(""), id="quar-detail")
        yield DeskFooter()

    def _title(self) -> str:
        return tr("quar.title", connector=connector_label(self.channel, self.shop), n=len(self.entries))

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

    def on_resize(self) -> None:
        if self.entries:
            self.show(self.entries, self.app.clock())

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#quarantine", KeyedTable)

    @work(group="quarantine-read", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        """Read this connector's open (and retried) payloads once and show them."""
        from db.ingest import quarantine_list

        store = await self.app.full_store()
        entries = [*await quarantine_list(store, "open", self.connector, limit=LIST_LIMIT),
                   *await quarantine_list(store, "retried", self.connector, limit=LIST_LIMIT)]
        entries.sort(key=lambda e: (e.last_seen, e.id), reverse=True)
        self.show(entries[:LIST_LIMIT], self.app.clock())

    def show(self, entries: list[QuarantineView], now: datetime) -> None:
        """Fill the list and the detail; the reason column takes the width that is left."""
        self.entries = entries
        reason_cells = max(12, self.size.width - 11 - 20 - 4 - 8 - 2)
        rows = [
            (str(e.id), (
                Text(short_time(e.last_seen, now)),
                Text(fit(e.external_id or "—", 20)),
                Text(str(e.attempts), justify="right"),
                Text(fit(e.reason, reason_cells)),
            ))
            for e in entries
        ]
        self.table.show_rows(rows)
        if self.has_class("-empty") != (not entries):
            self.set_class(not entries, "-empty")
            self.refresh_bindings()  # i / r / d leave the footer while there is nothing to act on
        if entries and self.focused is None:
            self.table.focus()  # it was hidden while the list was empty
        self.query_one("#quar-title", Static).update(Content(self._title()))
        self._show_detail()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("inspect", "retry", "discard") and not self.entries:
            return False
        return True

    @property
    def highlighted(self) -> QuarantineView | None:
        """The payload under the cursor."""
        key = self.table.highlighted_key
        return next((e for e in self.entries if str(e.id) == key), None)

    def _show_detail(self) -> None:
        entry = self.highlighted
        if entry is None:
            text = tr("quar.empty")
        else:
            head = tr("quar.detail", code=clean_text(entry.code), n=entry.attempts,
                      state=tr(f"quar.state.{entry.state}"))
            text = head + "\n" + clean_text(entry.reason, multiline=True)
        self.query_one("#quar-detail", Static).update(Content(text))

    @on(DataTable.RowHighlighted, "#quarantine")
    def _highlighted(self) -> None:
        self._show_detail()

    @on(DataTable.RowSelected, "#quarantine")
    def _selected(self) -> None:
        self.action_inspect()

    def action_back(self) -> None:
        self.dismiss()

    def action_inspect(self) -> None:
        entry = self.highlighted
        if entry is not None:
            self.app.push_screen(PayloadScreen(entry))

    def action_retry(self) -> None:
        entry = self.highlighted
        if entry is not None:
            self._retry(entry)

    @work(group="quarantine-write", exit_on_error=False)
    async def _retry(self, entry: QuarantineView) -> None:
        from connectors.sync import retry_quarantined
        from deskapp.services.livesync import fallback_adapter

        live = self.app.live
        adapter = live.adapter_for(entry.connector, entry.channel) if live is not None else None
        adapter = adapter or fallback_adapter(entry.channel)
        if adapter is None:
            self.app.notify(tr("quar.no_adapter"), severity="warning", markup=False)
            return
        store = await self.app.full_store()
        outcome = await retry_quarantined(store, adapter, entry.id, self.app.actor)
        if outcome.ok:
            self.app.notify(tr("quar.retry_ok"), markup=False)
        else:
            self.app.notify(tr("quar.retry_failed", reason=fit(outcome.reason or "", 160)),
                            severity="warning", markup=False)
        self.reload()

    def action_discard(self) -> None:
        entry = self.highlighted
        if entry is None:
            return
        question = tr("quar.confirm_discard", external_id=fit(entry.external_id or f"#{entry.id}", 32))
        self.app.push_screen(ConfirmScreen(question), lambda yes: self._discard(entry, yes))

    @work(group="quarantine-write", exit_on_error=False)
    async def _discard(self, entry: QuarantineView, yes: bool | None) -> None:
        if not yes:
            return
        from db.ingest import quarantine_discard

        store = await self.app.full_store()
        if await quarantine_discard(store, entry.id, self.app.actor):
            self.app.notify(tr("quar.discarded"), markup=False, timeout=3)
        else:
            self.app.notify(tr("quar.gone"), severity="warning", markup=False)
        self.reload()
