"""The order card screen: the lifecycle card of one order, with copy keys and the seller memo."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label

from db.views import OrderCard
from widgets.header import DeskHeader
from widgets.i18n import tr
from widgets.order_card import OrderCardView

from deskapp.screens.base import DeskScreen, localize_bindings
from deskapp.services.insights import alerts, replies

if TYPE_CHECKING:
    from deskapp.app import DeskApp


class MemoDialog(ModalScreen[str | None]):
    """Edit the seller memo: Enter saves, Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "bind.back")]
    DEFAULT_CSS = """
    MemoDialog { align: center middle; }
    MemoDialog > Vertical { width: 70; max-width: 95%; height: auto; border: round $accent; padding: 0 1; background: $surface; }
    """

    def __init__(self, memo: str) -> None:
        super().__init__()
        self._memo = memo
        localize_bindings(self)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Content(tr("card.memo_prompt")))
            yield Input(value=self._memo, id="memo")

    @on(Input.Submitted)
    def _save(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class CardScreen(DeskScreen):
    """One order's lifecycle card.

    | Key | Action |
    | :- | :- |
    | escape | Back to the lookup, query and results kept. |
    | c | Copy the order no. |
    | w | Copy the (first) waybill no. |
    | m | Edit the seller memo (recorded on the timeline under your name). |
    | 1-4 | Copy a suggested reply. |
    | up/down/pgup/pgdn | Scroll. |
    """

    BINDINGS = [
        Binding("escape", "back", "bind.back", id="card.back", tooltip="bind.back"),
        Binding("c", "copy_no", "bind.copy_no", id="card.copy_no", tooltip="bind.copy_no"),
        Binding("w", "copy_waybill", "bind.copy_waybill", id="card.copy_waybill", tooltip="bind.copy_waybill"),
        Binding("m", "memo", "bind.memo", id="card.memo", tooltip="bind.memo"),
        *(Binding(str(i), f"copy_reply({i})", show=False, id=f"card.reply{i}") for i in range(1, 5)),
    ]

    app: DeskApp

    def __init__(self, order_id: int) -> None:
        super().__init__()
        self.order_id = order_id
        self.card: OrderCard | None = None
        self.replies: list[str] = []

    def compose(self) -> ComposeResult:
        yield DeskHeader(clock=self.app.clock)
        yield OrderCardView(id="card")
        yield Footer()

    def on_mount(self) -> None:
        header = self.query_one(DeskHeader)
        header.operator = self.app.operator_name
        header.sync_state = self.app.sync_state
        self.query_one(OrderCardView).focus()
        self.load()

    @work(exclusive=True, group="card", exit_on_error=False)
    async def load(self) -> None:
        """Read the card and render it."""
        now = self.app.clock()
        card = await self.app.store.order_card(self.order_id, now=now)
        if card is None:
            self.app.notify(tr("card.not_found"), severity="error", markup=False)
            self.dismiss()
            return
        self.card = card
        self.replies = replies(card, now)
        self.query_one(OrderCardView).show(card, alerts=alerts(card, now), replies=self.replies, now=now)

    def action_back(self) -> None:
        self.dismiss()

    def _copy(self, value: str, what: str = "") -> None:
        self.app.copy_to_clipboard(value)
        self.app.notify(what or tr("card.copied", v=value), markup=False, timeout=2)

    def action_copy_no(self) -> None:
        if self.card:
            self._copy(self.card.order_no)

    def action_copy_waybill(self) -> None:
        if not self.card:
            return
        waybills = [p.waybill_no for p in self.card.parcels if p.waybill_no]
        if waybills:
            self._copy(waybills[0] if len(waybills) == 1 else " ".join(waybills))
        else:
            self.app.notify(tr("card.no_waybill"), severity="warning", markup=False, timeout=2)

    def action_copy_reply(self, number: int) -> None:
        if 0 < number <= len(self.replies):
            self._copy(self.replies[number - 1], tr("reply.copied"))

    def action_memo(self) -> None:
        if self.card:
            self.app.push_screen(MemoDialog(self.card.seller_memo), self._memo_entered)

    @work(group="card-write", exit_on_error=False)
    async def _memo_entered(self, memo: str | None) -> None:
        if memo is None or self.card is None:
            return
        await self.app.store.set_seller_memo(self.order_id, memo, actor=self.app.actor)
        self.app.notify(tr("card.memo_saved"), markup=False, timeout=2)
        self.load()
